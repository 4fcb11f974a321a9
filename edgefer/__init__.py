"""edgefer: facial-expression recognition (MicroExpNet) for edge devices.

The device runtime needs numpy, OpenCV and one inference runtime; never torch.
"""

from edgefer._version import __version__
from edgefer.errors import BackendUnavailable, EdgeferError, InputError, ModelError
from edgefer.imagefile import set_opencv_pixel_limit
from edgefer.runtime import Face, Recognizer
from edgefer.spec import LABELS, ModelSpec

set_opencv_pixel_limit()  # before anything loads cv2: OpenCV reads its limit once, then

__all__ = [
    "LABELS", "BackendUnavailable", "EdgeferError", "Face", "InputError", "ModelError", "ModelSpec",
    "Recognizer", "__version__",
]
