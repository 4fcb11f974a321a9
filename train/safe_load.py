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

import io
import os
import pickle
import pickletools
import re
import struct
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
        if "global" not in str(err).lower():  # the static scan found no code: broken bytes, not a threat
            raise ModelError(f"{path}: not a readable PyTorch file ({_refusal(err)})") from None
        raise UnsafeModelError(f"{path}: refused by torch's weights-only unpickler ({_refusal(err)}); "
                               f"{NO_OPT_IN}") from None
    except Exception as err:  # noqa: BLE001 - a broken zip or storage raises several types
        raise ModelError(f"{path}: not a readable PyTorch file ({one_line(err, typed=True)})") from None


def refuse_unsafe_globals(path: Path) -> None:
    """UnsafeModelError naming the globals torch would not allow: first from edgefer's own static scan of the
    pickle opcodes (any file: legacy, zip, or either with bytes appended or cut), then from torch's checker
    (readable zip checkpoints). A pickle that names code is refused whatever else is wrong with the file."""
    from torch.serialization import get_unsafe_globals_in_checkpoint

    unsafe = sorted(set(scan_globals(path.read_bytes())) - _allowed_globals())
    if unsafe:
        raise UnsafeModelError(f"{path}: refused: its pickle names code to run on load "
                               f"({', '.join(unsafe[:5])}); {NO_OPT_IN}")
    if not zipfile.is_zipfile(path):
        return
    try:
        unsafe = get_unsafe_globals_in_checkpoint(str(path))
    except Exception as err:  # noqa: BLE001 - a zip without a readable pickle inside
        raise ModelError(f"{path}: not a readable PyTorch file ({one_line(err, typed=True)})") from None
    if unsafe:
        raise UnsafeModelError(f"{path}: refused: its pickle names code to run on load "
                               f"({', '.join(sorted(unsafe)[:5])}); {NO_OPT_IN}")


#: Opcodes that push a string STACK_GLOBAL may take as a module or a name.
_STRINGS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "STRING", "BINSTRING", "SHORT_BINSTRING"}
_ZIP_ENTRY = re.compile(rb"PK\x03\x04")
_MAX_PICKLES = 8


def scan_globals(data: bytes) -> list[str]:
    """Every global ("module.name") the pickles in ``data`` name, found without running them: the pickles of a
    legacy file one after another from byte 0, or each ``*.pkl`` member of a zip (found by its local header,
    so a damaged central directory or appended bytes do not hide it). A STACK_GLOBAL whose strings cannot be
    traced is named ``?.?`` (never allowed). Scanning stops quietly where the bytes stop being a pickle."""
    if data.startswith(b"PK\x03\x04"):
        starts = []
        for match in _ZIP_ENTRY.finditer(data):
            at = match.start()
            if at + 30 > len(data):
                break
            name_length, extra_length = struct.unpack_from("<HH", data, at + 26)
            if data[at + 30:at + 30 + name_length].endswith(b".pkl"):
                starts.append(at + 30 + name_length + extra_length)
    else:
        starts = [0]
    found: list[str] = []
    for start in starts:
        _scan_pickles(data, start, found)
    return found


def _scan_pickles(data: bytes, start: int, found: list[str]) -> None:
    position = start
    for _ in range(_MAX_PICKLES):
        strings: list[str] = []
        memo: dict[int, str] = {}
        end = None
        try:
            for opcode, arg, offset in pickletools.genops(io.BytesIO(data[position:])):
                name = opcode.name
                if name in ("GLOBAL", "INST"):
                    found.append(str(arg).replace(" ", ".", 1))
                elif name == "STACK_GLOBAL":
                    found.append(".".join(strings[-2:]) if len(strings) >= 2 else "?.?")
                elif name in _STRINGS:
                    strings.append(arg.decode("latin-1") if isinstance(arg, bytes) else str(arg))
                elif name in ("BINPUT", "LONG_BINPUT", "PUT", "MEMOIZE") and strings:
                    memo[len(memo) if arg is None else int(arg)] = strings[-1]
                elif name in ("BINGET", "LONG_BINGET", "GET") and int(arg) in memo:
                    strings.append(memo[int(arg)])
                elif name == "STOP":
                    end = offset + 1
                    break
        except Exception:  # noqa: BLE001 - not (or no longer) a pickle: what was found so far stands
            return
        if end is None:
            return
        position += end


def _allowed_globals() -> set[str]:
    """What torch's weights-only unpickler allows: its own list and the user's ``add_safe_globals``."""
    from torch._weights_only_unpickler import _get_allowed_globals
    from torch.serialization import get_safe_globals

    extra = {f"{g.__module__}.{g.__qualname__}" for g in get_safe_globals() if hasattr(g, "__qualname__")}
    return set(_get_allowed_globals()) | extra


def _refusal(err: BaseException) -> str:
    """The line of torch's message that names what was refused (the rest suggests an unsafe retry)."""
    lines = [line.strip() for line in str(err).splitlines() if line.strip()]
    for line in lines[1:]:
        if "WeightsUnpickler error:" in line:
            line = line.split("WeightsUnpickler error:", 1)[1].strip()
        if line and not line.startswith(("Check the documentation", "Please file an issue")):
            return line[:300]
    return one_line(err)
