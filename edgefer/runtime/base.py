"""The one small interface every inference backend implements (Polygraphy's runner, in small)."""

from __future__ import annotations

import abc
import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer import trust
from edgefer.errors import BackendClosed, InputError, ModelError
from edgefer.spec import ModelSpec

LFS_POINTER_PREFIX = b"version https://git-lfs"


_FLOAT32 = np.dtype(np.float32)


class Backend(abc.ABC):
    """A loaded model on one runtime: float32 (N, C, H, W) pixels in, float32 (N, classes) logits out.

    :meth:`run` checks every call the same way for every backend (a C-contiguous float32 ndarray shaped
    (N, *spec.input_shape), else InputError; BackendClosed after :meth:`close`) and hands the batch to the
    backend's :meth:`_run`. Implementations must be safe to call from several threads at once.
    """

    #: Registry name, e.g. "onnxruntime".
    name: str = ""
    #: The artifact the backend was opened from (set by each backend).
    path: Path | str = ""

    def __init__(self, spec: ModelSpec, *, device: str, precision: str, threads: int | None):
        self.spec = spec
        self.device = device
        #: The precision the runtime really computes in (e.g. OpenVINO may pick bf16).
        self.precision = precision
        self.threads = threads
        self._closed = False
        self._close_lock = threading.Lock()
        self._sample_shape = spec.input_shape

    def run(self, pixels: np.ndarray) -> np.ndarray:
        """Logits (N, classes) for a C-contiguous float32 batch shaped (N, *spec.input_shape)."""
        if self._closed:
            self._raise_closed()
        if (not isinstance(pixels, np.ndarray) or pixels.shape[1:] != self._sample_shape or pixels.ndim != 4
                or pixels.dtype != _FLOAT32 or not pixels.flags.c_contiguous):
            self.check_input(pixels)
        return self._run(pixels)

    def run_checked(self, pixels: np.ndarray) -> np.ndarray:
        """:meth:`run` for a batch the caller has already checked the way :meth:`run` does (the
        Recognizer's one-crop path checks its crop inline); BackendClosed after :meth:`close`."""
        if self._closed:
            self._raise_closed()
        return self._run(pixels)

    def run_one(self, crop: np.ndarray) -> list[float]:
        """The logits of one crop, as floats: the batch-1 latency path. ``crop`` is a C-contiguous float32
        array shaped ``spec.input_size`` squared (one channel) or ``(1, *spec.input_shape)``, checked by
        the caller the way :meth:`run` checks a batch; BackendClosed after :meth:`close`."""
        return self.run_checked(crop.reshape(1, *self._sample_shape))[0].tolist()

    @abc.abstractmethod
    def _run(self, pixels: np.ndarray) -> np.ndarray:
        """The runtime's own call, on a batch :meth:`run` has checked."""

    def check_input(self, pixels: object) -> None:
        """InputError saying what is wrong with ``pixels`` (nothing when they are a batch :meth:`run` takes)."""
        expected = f"a C-contiguous float32 array shaped (N, {', '.join(map(str, self._sample_shape))})"
        if not isinstance(pixels, np.ndarray):
            raise InputError(f"{self.name} backend: pixels must be {expected}, got {type(pixels).__name__}")
        if pixels.ndim != 4 or pixels.shape[1:] != self._sample_shape:
            raise InputError(f"{self.name} backend: pixels must be {expected}, got shape {pixels.shape}")
        if pixels.dtype != _FLOAT32:
            raise InputError(f"{self.name} backend: pixels must be {expected}, got dtype {pixels.dtype}")
        if not pixels.flags.c_contiguous:
            raise InputError(f"{self.name} backend: pixels must be {expected}, got a non-contiguous view "
                             "(np.ascontiguousarray makes one)")

    def check_open(self) -> None:
        """BackendClosed if :meth:`close` was called."""
        if self._closed:
            self._raise_closed()

    def _raise_closed(self) -> None:
        raise BackendClosed(f"{self.path or self.spec.model}: the {self.name} backend is closed; open the model "
                            "again to run it")

    def close(self) -> None:
        """Release the runtime's resources; later calls to :meth:`run` raise BackendClosed. Idempotent and safe
        from any thread: of two concurrent calls, one releases and the other returns at once."""
        with self._close_lock:  # test-and-set
            if self._closed:
                return
            self._closed = True
        self._release()

    def _release(self) -> None:  # noqa: B027 - optional hook, not abstract
        """Free what the runtime holds; the default has nothing to free."""

    def describe(self) -> dict[str, object]:
        return {"backend": self.name, "device": self.device, "precision": self.precision,
                "threads": self.threads}

    def __enter__(self) -> Backend:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


class BoundBatches:
    """For a :class:`Backend` whose small batches run on buffers bound to the runtime once, per thread and
    batch size: ``_bound(batch)`` makes this thread's ``(run, pixels, logits)``, where ``run()`` computes
    ``logits`` from ``pixels`` in place. A call is then one copy in, the runtime, one copy out: no feed
    dict, no allocation, no result wrapping. ``_local`` is a ``threading.local``; ``_bind`` False
    turns the bound path off (e.g. a GPU session)."""

    BOUND_BATCH_MAX = 8
    _bind = True

    def _run_bound(self, pixels: np.ndarray) -> np.ndarray:
        run, bound_pixels, logits = self._local.__dict__.get(len(pixels)) or self._bound(len(pixels))
        np.copyto(bound_pixels, pixels)
        run()
        return logits.copy()

    def run_one(self, crop: np.ndarray) -> list[float]:
        if not self._bind:
            return Backend.run_one(self, crop)
        if self._closed:
            self._raise_closed()
        run, pixels, logits = self._local.__dict__.get(1) or self._bound(1)
        np.copyto(pixels, crop)  # (S, S) broadcasts into (1, 1, S, S)
        run()
        return logits[0].tolist()


#: A tensor's dimensions as the graph declares them; None where a dimension is dynamic.
Dims = tuple[int | None, ...]


@dataclass(frozen=True)
class GraphIO:
    """What a loaded graph really has: its inputs and outputs, name -> dims."""

    inputs: dict[str, Dims]
    outputs: dict[str, Dims]


def check_graph(spec: ModelSpec, graph: GraphIO, path: str | os.PathLike) -> None:
    """Refuse (ModelError naming the field) a spec that does not describe ``graph``: edgefer backends feed one
    NCHW float input named ``input_name`` shaped (N, channels, input_size, input_size), and read one score per
    label from the output ``output_name`` (N, len(labels)). Dynamic dims in the graph are taken on trust."""
    spec.validate()
    if spec.layout != "NCHW":
        raise ModelError(f"{path}: spec field 'layout' is {spec.layout!r}; edgefer backends feed NCHW")
    if list(graph.inputs) != [spec.input_name]:
        raise ModelError(f"{path}: spec field 'input_name' is {spec.input_name!r}; the graph's inputs are "
                         f"{list(graph.inputs)} (expected exactly that one)")
    dims = graph.inputs[spec.input_name]
    if len(dims) != 4:
        raise ModelError(f"{path}: the graph's input {spec.input_name!r} has dims {list(dims)}, expected (N, C, H, W)")
    for field, got, want in (("channels", dims[1:2], (spec.channels,)),
                             ("input_size", dims[2:], (spec.input_size, spec.input_size))):
        if any(d is not None and d != w for d, w in zip(got, want, strict=True)):
            raise ModelError(f"{path}: spec field {field!r} says input {spec.input_shape} per face; the graph's "
                             f"input {spec.input_name!r} is {_dims_text(dims)}")
    if spec.output_name not in graph.outputs:
        raise ModelError(f"{path}: spec field 'output_name' is {spec.output_name!r}; the graph's outputs are "
                         f"{list(graph.outputs)}")
    out = graph.outputs[spec.output_name]
    if len(out) != 2 or out[1] != len(spec.labels):
        raise ModelError(f"{path}: spec field 'labels' names {len(spec.labels)} classes; the graph's output "
                         f"{spec.output_name!r} is {_dims_text(out)}, expected (N, {len(spec.labels)})")


def _dims_text(dims: Dims) -> str:
    return "(" + ", ".join("?" if d is None else str(d) for d in dims) + ")"


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
    """Row-wise softmax in float32, stable for large logits (Recognizer's one-row path has its own)."""
    shifted = logits - logits.max(axis=1, keepdims=True)
    np.exp(shifted, out=shifted)
    shifted /= shifted.sum(axis=1, keepdims=True)
    return shifted
