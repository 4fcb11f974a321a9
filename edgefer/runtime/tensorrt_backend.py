"""TensorRT backend: .engine/.plan files built by ``edgefer convert``, run with pycuda buffers and streams.

An engine's metadata lives in a JSON sidecar (``model.engine.json``): the edgefer spec, the TensorRT
version and the GPU it was built for, and the plan's sha256. All of it is checked before the plan is
deserialised, because a plan from another TensorRT version or GPU can crash the process instead of
failing cleanly (and a deserialised plan is executable code: only load your own).

Concurrency: one backend may serve many threads. Each concurrent call borrows its own execution
context, CUDA stream and I/O buffers from a bounded pool (:class:`~edgefer.runtime.pool.WorkerPool`),
and pushes the device's primary CUDA context around the call (never ``pycuda.autoinit``), so threads
created after the backend work too. ``close()`` waits for the calls in flight before it frees anything.
The primary context is retained once per process and device and only ever pushed and popped.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import json
import logging
import os
import threading
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from edgefer.errors import BackendUnavailable, EdgeferError, InputError, ModelError, one_line
from edgefer.runtime.base import Backend, GraphIO, check_graph, check_model_file
from edgefer.runtime.pool import WorkerPool
from edgefer.spec import ModelSpec
from edgefer.trust import read_verified_plan

LOG = logging.getLogger(__name__)

SIDECAR_FORMAT = "edgefer-tensorrt-sidecar/1"
#: Keys every sidecar must carry; the build also records batch range, flags and driver.
SIDECAR_KEYS = ("format", "spec", "precision", "tensorrt", "gpu", "compute_capability", "plan_sha256")
REBUILD = "rebuild with edgefer convert"

#: Workers (execution context + stream + buffers) one backend makes at most; more callers wait.
MAX_WORKERS = 8

_LOGGER = None
_LOCK = threading.Lock()
_PRIMARY: dict[int, object] = {}  # device index -> pycuda Context, retained once per process


def sidecar_path(engine: str | os.PathLike) -> Path:
    """``model.engine`` -> ``model.engine.json``."""
    engine = Path(engine)
    return engine.with_name(engine.name + ".json")


#: The largest TensorRT sidecar read (a spec of at most 64 KiB and a few build facts).
MAX_SIDECAR_BYTES = 1024 * 1024


def read_sidecar(engine: str | os.PathLike) -> dict:
    """The engine's sidecar as a dict; ModelError if it is missing, unreadable or incomplete."""
    path = sidecar_path(engine)
    if not path.is_file():
        raise ModelError(f"{engine}: no sidecar {path.name} beside it (it holds the engine's metadata); {REBUILD}")
    if path.stat().st_size > MAX_SIDECAR_BYTES:
        raise ModelError(f"{path}: sidecar of {path.stat().st_size} bytes, over the {MAX_SIDECAR_BYTES}-byte "
                         f"limit; {REBUILD}")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError, RecursionError) as err:
        raise ModelError(f"{path}: broken sidecar ({one_line(err)}); {REBUILD}") from None
    missing = [key for key in SIDECAR_KEYS if not isinstance(data, dict) or key not in data]
    if missing:
        raise ModelError(f"{path}: sidecar lacks {', '.join(missing)}; {REBUILD}")
    if data["format"] != SIDECAR_FORMAT:
        raise ModelError(f"{path}: sidecar format {data['format']!r}, expected {SIDECAR_FORMAT!r}; {REBUILD}")
    return data


def spec_from_sidecar(engine: str | os.PathLike, sidecar: Mapping) -> ModelSpec:
    try:
        return ModelSpec.from_json(json.dumps(sidecar["spec"]))
    except (TypeError, ValueError) as err:
        raise ModelError(f"{sidecar_path(engine)}: broken edgefer spec ({one_line(err)}); {REBUILD}") from None


def check_compatible(engine: str | os.PathLike, built: Mapping[str, str], here: Mapping[str, str]) -> None:
    """Refuse a plan built by another TensorRT version or on another GPU (model or architecture).

    ``built`` (the sidecar) and ``here`` (:func:`gpu_identity`) carry ``tensorrt``, ``gpu`` and
    ``compute_capability`` ("major.minor"). TensorRT plans only run on the exact version that built
    them, and NVIDIA ties them to the GPU model they were built on.
    """
    keys = ("tensorrt", "gpu", "compute_capability")
    if all(str(built[key]) == str(here[key]) for key in keys):
        return
    raise BackendUnavailable(f"{engine}: built for {_describe(built)}; this machine has {_describe(here)}; "
                             f"{REBUILD}")


def _describe(identity: Mapping[str, str]) -> str:
    sm = str(identity["compute_capability"]).replace(".", "")
    return f"TensorRT {identity['tensorrt']} on {identity['gpu']} (sm_{sm})"


def load_tensorrt():
    """The ``tensorrt`` and ``pycuda.driver`` modules, CUDA initialised; BackendUnavailable with the reason."""
    try:
        import tensorrt as trt
    except Exception as err:  # noqa: BLE001 - ImportError, or OSError for a missing libnvinfer
        raise BackendUnavailable(f"TensorRT is not installed or does not load ({one_line(err)}); "
                                 "pip install 'edgefer[tensorrt]' on a machine with an NVIDIA GPU") from None
    try:
        import pycuda.driver as cuda
    except Exception as err:  # noqa: BLE001
        raise BackendUnavailable(f"pycuda is not installed or does not load ({one_line(err)}); "
                                 "pip install 'edgefer[tensorrt]'") from None
    try:
        cuda.init()
        count = cuda.Device.count()
    except cuda.Error as err:
        raise BackendUnavailable(f"no usable CUDA driver ({one_line(err)})") from None
    if count == 0:
        raise BackendUnavailable("no CUDA GPU found")
    return trt, cuda


def device_index(device: str) -> int:
    """``"cuda"`` or ``"cuda:N"`` -> N."""
    kind, _, index = device.partition(":")
    if kind != "cuda" or (index and not index.isdigit()):
        raise BackendUnavailable(f"tensorrt runs on CUDA devices ('cuda' or 'cuda:N'), not {device!r}")
    return int(index or 0)


def gpu_identity(trt, cuda, index: int = 0) -> dict[str, str]:
    """What a plan is tied to: the TensorRT version, GPU name and compute capability of device ``index``."""
    count = cuda.Device.count()
    if index >= count:
        raise BackendUnavailable(f"no CUDA device {index} (this machine has {count})")
    device = cuda.Device(index)
    major, minor = device.compute_capability()
    return {"tensorrt": trt.__version__, "gpu": device.name(), "compute_capability": f"{major}.{minor}"}


def primary_context(cuda, index: int):
    """Device ``index``'s primary CUDA context, retained once per process and kept: backends push and pop
    it around their work and never detach it (detaching one backend's handle would release the context
    every other backend on that device shares)."""
    with _LOCK:
        if index not in _PRIMARY:
            _PRIMARY[index] = cuda.Device(index).retain_primary_context()
        return _PRIMARY[index]


def trt_logger(trt):
    """The process-wide TensorRT logger (TensorRT wants one): warnings and errors go to Python logging."""
    global _LOGGER
    with _LOCK:
        if _LOGGER is None:
            _LOGGER = _make_logger(trt)
        return _LOGGER


def _make_logger(trt):
    class Logger(trt.ILogger):
        def __init__(self):
            trt.ILogger.__init__(self)
            self.errors: collections.deque[str] = collections.deque(maxlen=8)

        def log(self, severity, msg):
            if severity in (trt.ILogger.INTERNAL_ERROR, trt.ILogger.ERROR):
                self.errors.append(msg)
                LOG.error("TensorRT: %s", msg)
            elif severity == trt.ILogger.WARNING:
                LOG.warning("TensorRT: %s", msg)

        def last_error(self) -> str:
            return one_line(self.errors[-1]) if self.errors else "see the TensorRT log"

    return Logger()


@dataclass(frozen=True)
class _Io:
    """The engine's one input and one output, and the batch range of its optimisation profile."""

    input_name: str
    output_name: str
    input_dtype: np.dtype
    output_dtype: np.dtype
    sample_shape: tuple[int, ...]
    classes: int
    batch: tuple[int, int, int]  # profile 0's (min, opt, max)
    profiles: tuple[tuple[int, int, int], ...] = ()  # every profile's (min, opt, max)


class _Worker:
    """What one concurrent call owns: an execution context on its own optimisation profile, a stream, events
    and max-batch buffers."""

    def __init__(self, engine, io: _Io, cuda, profile: int = 0):
        self.profile = profile
        self.context = engine.create_execution_context()
        if self.context is None:
            raise EdgeferError("TensorRT could not create an execution context (out of GPU memory?)")
        self.stream = cuda.Stream()
        # Only the engine's first context takes profile 0 implicitly; every other one must be given its own.
        self.context.set_optimization_profile_async(profile, self.stream.handle)
        self.stream.synchronize()
        self.events = [cuda.Event() for _ in range(4)]
        self.host_in = cuda.pagelocked_empty((io.batch[2], *io.sample_shape), io.input_dtype)
        self.host_out = cuda.pagelocked_empty((io.batch[2], io.classes), io.output_dtype)
        self.dev_in = cuda.mem_alloc(self.host_in.nbytes)
        self.dev_out = cuda.mem_alloc(self.host_out.nbytes)
        self.context.set_tensor_address(io.input_name, int(self.dev_in))
        self.context.set_tensor_address(io.output_name, int(self.dev_out))

    def free(self) -> None:
        """Release device and pinned memory now; call with the CUDA context pushed."""
        self.dev_in.free()
        self.dev_out.free()
        self.host_in.base.free()
        self.host_out.base.free()
        self.context = self.stream = self.events = None


class TensorRtBackend(Backend):
    """A TensorRT plan on one CUDA device; ``threads`` is recorded but unused on the GPU; ``workers``
    bounds the concurrent calls (each has its own context, stream and buffers; more callers wait).

    TensorRT lets each execution context in concurrent use of a dynamic-shape engine hold its own
    optimisation profile: calls that pick the same profile run one at a time unless the engine repeats
    that profile (``edgefer convert --to tensorrt --contexts N`` builds N of each), one context per copy."""

    name = "tensorrt"

    def __init__(self, path: str | os.PathLike, *, spec: ModelSpec | None = None,
                 threads: int | None = None, device: str = "cuda:0", workers: int = MAX_WORKERS):
        path = check_model_file(path, "a TensorRT engine (.engine or .plan) built by edgefer convert")
        sidecar = read_sidecar(path)
        plan = read_verified_plan(path, sidecar["plan_sha256"], sidecar_path(path).name)
        spec = spec or spec_from_sidecar(path, sidecar)
        index = device_index(device)
        trt, cuda = load_tensorrt()
        self.identity = gpu_identity(trt, cuda, index)
        check_compatible(path, sidecar, self.identity)
        super().__init__(spec, device=f"cuda:{index}", precision=str(sidecar["precision"]), threads=threads)
        self.path = path
        self._cuda = cuda
        self._logger = trt_logger(trt)
        self._pools: dict[tuple[int, int, int], WorkerPool[_Worker]] = {}
        self._free_profiles: dict[tuple[int, int, int], list[int]] = {}
        self._profile_lock = threading.Lock()
        self._runtime = self._engine = None
        self._cuda_context = primary_context(cuda, index)
        try:
            with self._pushed():
                self._runtime = trt.Runtime(self._logger)
                self._engine = self._runtime.deserialize_cuda_engine(plan)
                if self._engine is None:
                    raise ModelError(f"{path}: TensorRT could not load the plan ({self._logger.last_error()})")
                self._io = _inspect(trt, self._engine, spec, path)
                groups = profile_groups(self._io.profiles)
                self._free_profiles = {shape: indexes[::-1] for shape, indexes in groups.items()}
                self._pools = {shape: WorkerPool(functools.partial(self._new_worker, shape),
                                                 min(workers, len(indexes)), f"{path}: TensorRT")
                               for shape, indexes in groups.items()}
                first = self._io.profiles[0]
                self._pools[first].add(self._new_worker(first))  # fail here, not on the first frame
        except BaseException:
            self.close()
            raise

    @property
    def batch_range(self) -> tuple[int, int, int]:
        """(min, opt, max) batch of the engine's optimisation profile."""
        return self._io.batch

    def _run(self, pixels: np.ndarray) -> np.ndarray:
        return self._infer(pixels)[0]

    def run_timed(self, pixels: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """Logits plus the GPU-measured milliseconds of host-to-device copy, compute and device-to-host copy."""
        self.check_open()
        self.check_input(pixels)
        return self._infer(pixels)

    def _release(self) -> None:
        """(close) Refuse new calls, wait for those in flight, then free every worker's buffers, the engine
        and the runtime; leaves no CUDA context pushed on the calling thread."""
        handed = [pool.close() or [] for pool in self._pools.values()]  # each waits for its calls in flight
        with self._pushed():
            for workers in handed:
                for worker in workers:
                    worker.free()
            self._engine = self._runtime = None

    def describe(self) -> dict[str, object]:
        lo, opt, hi = self._io.batch
        return {**super().describe(), **self.identity, "batch": {"min": lo, "opt": opt, "max": hi},
                "profiles_opt": [p[1] for p in self._io.profiles],
                "contexts_per_profile": {shape[1]: pool.limit for shape, pool in self._pools.items()}}

    @contextlib.contextmanager
    def _pushed(self) -> Iterator[None]:
        self._cuda_context.push()
        try:
            yield
        finally:
            self._cuda_context.pop()

    def _new_worker(self, shape: tuple[int, int, int]) -> _Worker:
        """A worker on a free copy of the profile ``shape``; called with the context pushed (at load, or by
        the pool inside a pushed call; the pool's limit is the number of copies, so one is free)."""
        with self._profile_lock:
            profile = self._free_profiles[shape].pop()
        try:
            return _Worker(self._engine, self._io, self._cuda, profile)
        except BaseException:
            self._release_profile(shape, profile)
            raise

    def _release_profile(self, shape: tuple[int, int, int], profile: int) -> None:
        with self._profile_lock:
            self._free_profiles[shape].append(profile)

    def _infer(self, pixels: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        check_batch(self._io.batch, len(pixels), self.path)
        pool = self._pools[self._io.profiles[pick_profile(self._io.profiles, len(pixels))]]
        with self._pushed():
            worker = pool.borrow()  # PoolClosed (a BackendClosed) once close() has begun
            try:
                result = self._enqueue(worker, pixels)
            except BaseException:
                self._settle(pool, worker)
                raise
            pool.give_back(worker)
            return result

    def _settle(self, pool: WorkerPool[_Worker], worker: _Worker) -> None:
        """After a failed call: back to the pool once its stream has drained, or freed if the stream is broken."""
        try:
            worker.stream.synchronize()
        except self._cuda.Error as err:
            LOG.warning("%s: dropping a TensorRT worker whose stream failed (%s)", self.path, one_line(err))
            pool.discard(worker).free()
            self._release_profile(self._io.profiles[worker.profile], worker.profile)
            return
        pool.give_back(worker)

    def _enqueue(self, worker: _Worker, pixels: np.ndarray) -> tuple[np.ndarray, float, float, float]:
        """One call on ``worker``; returns only after its stream is synchronised."""
        cuda, io, count = self._cuda, self._io, len(pixels)
        host_in, host_out = worker.host_in[:count], worker.host_out[:count]
        np.copyto(host_in, pixels, casting="same_kind")
        if not worker.context.set_input_shape(io.input_name, pixels.shape):
            raise InputError(f"{self.path}: TensorRT refused input shape {pixels.shape} "
                             f"({self._logger.last_error()})")
        start, copied, computed, done = worker.events
        start.record(worker.stream)
        cuda.memcpy_htod_async(worker.dev_in, host_in, worker.stream)
        copied.record(worker.stream)
        if not worker.context.execute_async_v3(worker.stream.handle):
            raise EdgeferError(f"{self.path}: TensorRT execution failed ({self._logger.last_error()})")
        computed.record(worker.stream)
        cuda.memcpy_dtoh_async(host_out, worker.dev_out, worker.stream)
        done.record(worker.stream)
        worker.stream.synchronize()
        logits = host_out.astype(np.float32, copy=True)
        return logits, copied.time_since(start), computed.time_since(copied), done.time_since(computed)



def pick_profile(profiles: tuple[tuple[int, int, int], ...], batch: int) -> int:
    """The index of the profile whose opt is nearest ``batch`` (by ratio; the smaller opt on a tie) among those
    whose range holds it; 0 when none does (check_batch refuses it)."""
    fits = [k for k, (lo, _, hi) in enumerate(profiles) if lo <= batch <= hi]
    if not fits:
        return 0
    return min(fits, key=lambda k: (max(profiles[k][1], batch) / min(profiles[k][1], batch), profiles[k][1]))


def profile_groups(profiles: tuple[tuple[int, int, int], ...]) -> dict[tuple[int, int, int], list[int]]:
    """Profile indexes by their (min, opt, max), in order: the copies of one profile that as many
    contexts may hold at once."""
    groups: dict[tuple[int, int, int], list[int]] = {}
    for index, shape in enumerate(profiles):
        groups.setdefault(tuple(shape), []).append(index)
    return groups


def check_batch(profile: tuple[int, int, int], batch: int, path: str | os.PathLike = "engine") -> None:
    """Refuse a batch outside the engine's optimisation profile (min, opt, max) before TensorRT sees it."""
    lo, opt, hi = profile
    if not lo <= batch <= hi:
        raise InputError(f"{path}: batch {batch} is outside the engine's profile "
                         f"(min {lo}, opt {opt}, max {hi}); split the batch or rebuild with a larger max batch")


def _inspect(trt, engine, spec: ModelSpec, path: Path) -> _Io:
    """Check the engine's I/O against the spec; read dtypes, class count and the profile's batch range."""
    names = [engine.get_tensor_name(i) for i in range(engine.num_io_tensors)]
    inputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.INPUT]
    outputs = [n for n in names if engine.get_tensor_mode(n) == trt.TensorIOMode.OUTPUT]
    dims = {n: tuple(int(d) if d >= 0 else None for d in engine.get_tensor_shape(n)) for n in names}
    check_graph(spec, GraphIO({n: dims[n] for n in inputs}, {n: dims[n] for n in outputs}), path)
    if inputs != [spec.input_name] or outputs != [spec.output_name]:
        raise ModelError(f"{path}: expected input {spec.input_name!r} and output {spec.output_name!r}, "
                         f"found inputs {inputs} and outputs {outputs}")
    input_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(spec.input_name)))
    output_dtype = np.dtype(trt.nptype(engine.get_tensor_dtype(spec.output_name)))
    if input_dtype != np.float32 or output_dtype not in (np.float32, np.float16):
        raise ModelError(f"{path}: expected float32 input and float output, found {input_dtype} and {output_dtype}")
    profiles = []
    for k in range(engine.num_optimization_profiles):
        low, opt, high = (tuple(shape) for shape in engine.get_tensor_profile_shape(spec.input_name, k))
        if tuple(high[1:]) != spec.input_shape:
            raise ModelError(f"{path}: engine input is {high[1:]} per sample, the spec says {spec.input_shape}")
        profiles.append((low[0], opt[0], high[0]))
    classes = tuple(engine.get_tensor_shape(spec.output_name))[-1]
    if classes != len(spec.labels):
        raise ModelError(f"{path}: engine gives {classes} outputs for {len(spec.labels)} labels")
    return _Io(spec.input_name, spec.output_name, input_dtype, output_dtype, spec.input_shape, classes,
               profiles[0], tuple(profiles))
