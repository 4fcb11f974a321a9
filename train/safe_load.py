"""The one way edgefer reads a PyTorch pickle (.pt/.pth): plain tensors and containers, never code.

A pickle can name any Python callable and have it called while loading. So before ``torch.load``
runs, the pickle's globals are listed statically (``get_unsafe_globals_in_checkpoint``: nothing is
executed) and the file is refused if it names any that torch's weights-only unpickler does not
allow. ``torch.load`` is then called with ``weights_only=True`` passed explicitly, which the
``TORCH_FORCE_NO_WEIGHTS_ONLY_LOAD`` environment variable cannot override. A refusal is final:
there is no retry without ``weights_only`` and no opt-in to unpickle code (safetensors is the
format for weights from elsewhere).
"""

from __future__ import annotations

import os
import pickle
import warnings
import zipfile
from pathlib import Path

from edgefer.errors import ModelError, UnsafeModelError, one_line
from edgefer.runtime.base import check_model_file

NO_OPT_IN = ("edgefer reads pickles with weights_only=True only and has no option to unpickle code; "
             "save the weights as .safetensors (safetensors.torch.save_file) instead")


def load_torch_file(path: str | os.PathLike, expected: str) -> object:
    """What ``path`` holds, read with ``weights_only=True`` after a static check of its pickle's globals."""
    import torch

    path = check_model_file(path, expected)
    refuse_unsafe_globals(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols on stderr; the refusal says enough
            warnings.simplefilter("ignore", UserWarning)
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as err:  # the weights-only unpickler's refusal: never retried unsafely
        raise UnsafeModelError(f"{path}: refused by torch's weights-only unpickler ({_refusal(err)}); "
                               f"{NO_OPT_IN}") from None
    except Exception as err:  # noqa: BLE001 - a broken zip or storage raises several types
        raise ModelError(f"{path}: not a readable PyTorch file ({one_line(err, typed=True)})") from None


def refuse_unsafe_globals(path: Path) -> None:
    """UnsafeModelError naming the globals torch would not allow (zip checkpoints; older files rely on torch.load)."""
    from torch.serialization import get_unsafe_globals_in_checkpoint

    if not zipfile.is_zipfile(path):
        return
    try:
        unsafe = get_unsafe_globals_in_checkpoint(str(path))
    except Exception as err:  # noqa: BLE001 - a zip without a readable pickle inside
        raise ModelError(f"{path}: not a readable PyTorch file ({one_line(err, typed=True)})") from None
    if unsafe:
        raise UnsafeModelError(f"{path}: refused: its pickle names code to run on load "
                               f"({', '.join(sorted(unsafe)[:5])}); {NO_OPT_IN}")


def _refusal(err: BaseException) -> str:
    """The line of torch's message that names what was refused (the rest suggests an unsafe retry)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines[1:]:
        if "WeightsUnpickler error:" in line:
            line = line.split("WeightsUnpickler error:", 1)[1].strip()
        if line and not line.startswith(("Check the documentation", "Please file an issue")):
            return line[:300]
    return one_line(err)
