"""The errors edgefer raises on purpose: each carries a one-line message naming the thing at fault."""


class EdgeferError(Exception):
    """Base class: the CLI prints the message on one line and exits with code 2."""


class InputError(EdgeferError, ValueError):
    """An image, array or file given to edgefer is not what was expected."""


class ModelError(EdgeferError, ValueError):
    """A model name is unknown, or a model file is missing, broken or not of the expected kind."""


class BackendUnavailable(EdgeferError, RuntimeError):
    """The runtime asked for (OpenVINO, TensorRT, a CUDA device...) is not installed or not usable here."""
