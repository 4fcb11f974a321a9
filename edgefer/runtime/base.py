"""The one small interface every inference backend implements (Polygraphy's runner, in small)."""

from __future__ import annotations

import abc
import os
from pathlib import Path

import numpy as np

from edgefer import trust
from edgefer.errors import ModelError
from edgefer.spec import ModelSpec

LFS_POINTER_PREFIX = b"version https://git-lfs"


class Backend(abc.ABC):
    """A loaded model on one runtime: float32 (N, C, H, W) pixels in, float32 (N, classes) logits out.

    Implementations must be safe to call from several threads at once.
    """

    #: Registry name, e.g. "onnxruntime".
    name: str = ""

    def __init__(self, spec: ModelSpec, *, device: str, precision: str, threads: int | None):
        self.spec = spec
        self.device = device
        #: The precision the runtime really computes in (e.g. OpenVINO may pick bf16).
        self.precision = precision
        self.threads = threads

    @abc.abstractmethod
    def run(self, pixels: np.ndarray) -> np.ndarray:
        """Logits for a contiguous float32 batch shaped (N, *spec.input_shape)."""

    def close(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Release the runtime's resources; the default has nothing to release."""

    def describe(self) -> dict[str, object]:
        return {"backend": self.name, "device": self.device, "precision": self.precision,
                "threads": self.threads}

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def check_model_file(path: str | os.PathLike, expected: str) -> Path:
    """Refuse a missing, empty, Git-LFS-pointer or (for .onnx and .safetensors) malformed or unsafe model file
    before a runtime sees it."""
    path = Path(path)
    if not path.is_file():
        raise ModelError(f"{path}: no such model file, expected {expected}")
    size = path.stat().st_size
    if size == 0:
        raise ModelError(f"{path}: empty file, expected {expected}")
    with path.open("rb") as handle:
        head = handle.read(len(LFS_POINTER_PREFIX))
    if head == LFS_POINTER_PREFIX:
        raise ModelError(f"{path}: Git LFS pointer, run `git lfs pull` (expected {expected})")
    check_contents(path)
    return path


def check_contents(path: Path) -> None:
    """The format's own checks (edgefer.trust) for the formats that have them, chosen by suffix."""
    checks = {".onnx": trust.check_onnx_file, ".safetensors": trust.check_safetensors_file}
    check = checks.get(path.suffix.lower())
    if check:
        check(path)


def softmax(logits: np.ndarray) -> np.ndarray:
    """Row-wise softmax in float32, stable for large logits (one row, the hot path: whole-array reductions)."""
    if len(logits) == 1:  # ufuncs called directly: a third of the cost of the methods on 8 numbers
        shifted = np.exp(np.subtract(logits, np.maximum.reduce(logits, axis=None)))
        shifted /= np.add.reduce(shifted, axis=None)
        return shifted
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted
