"""The parity gate: an artifact is compared with the PyTorch model before it may be written.

One comparator for any two backends (Polygraphy's Comparator, in small): :func:`infer` runs a backend
(PyTorch is one too: edgefer.convert.torch_backend) on the same face crops, :func:`compare` checks two
runs' logits, :func:`compare_backends` does both. A run can be kept and compared later (the bench's
``reference.npz`` is the PyTorch run its workers compare every backend with).

Four tiers, on probabilities and on the logits themselves (the figures are TOLERANCES and LOGIT_TOLERANCES):
- FP32: probabilities within 1e-4, and every logit within Polygraphy's elementwise check with
  atol = rtol = 1e-4 (an element fails when |got - ref| > atol + rtol * |ref|) on every runtime (ONNX
  Runtime, OpenVINO, TensorRT); float32 logits, no NaN/Inf.
- FP16: probabilities within 1e-2, logits within atol = rtol = 5e-2 (OpenVINO's FP16 eps; float16 logits
  allowed), top-1 the same for >= 99% of the faces.
- BF16: probabilities within 1e-1, top-1 >= 99%. bf16 keeps 8 significant bits to fp16's 11: on the bundled
  faces MicroExpNet's probabilities move by up to 1.6e-2 (CK) and 6.6e-2 (Oulu) in bf16, on OpenVINO and in
  PyTorch's bf16 autocast alike, with top-1 unchanged; FP16's 1e-2 would refuse every bf16 artifact, and
  no choice of float32 layers reaches it (tools/bf16_layers.py: conv1 alone in bf16 moves them 2.1e-2 / 5.5e-2).
- INT8: top-1 the same for >= 98% of the faces (no bound on the values); where labels exist, accuracy
  >= 99% of FP32's (MLPerf's rule, :func:`accuracy_ratio`).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgefer.runtime.base import Backend, softmax

#: precision -> (max |Δp| allowed or None, top-1 agreement required)
TOLERANCES: dict[str, tuple[float | None, float]] = {
    "fp32": (1e-4, 0.0),
    "fp16": (1e-2, 0.99),
    "bf16": (1e-1, 0.99),
    "int8": (None, 0.98),
}
#: (precision, artifact format) -> elementwise atol = rtol on logits; precisions not listed are not gated so.
#: FP32 is 1e-4 for every runtime: the family meets 1e-5 on ONNX Runtime (tests/convert/test_parity_matrix.py
#: holds it to that), but the 94-layer Inception v3 differs by 2e-5 relative from summation order alone.
LOGIT_TOLERANCES: dict[tuple[str, str], float] = {
    ("fp32", "onnx"): 1e-4, ("fp32", "openvino"): 1e-4, ("fp32", "tensorrt"): 1e-4,
    ("fp16", "onnx"): 5e-2, ("fp16", "openvino"): 5e-2, ("fp16", "tensorrt"): 5e-2,
}
#: INT8 must keep this share of FP32's accuracy on a labelled set (MLPerf closed division).
MIN_ACCURACY_RATIO = 0.99


@dataclass(frozen=True)
class ParityReport:
    precision: str
    samples: int
    max_abs_diff: float
    mean_abs_diff: float
    top1_agreement: float
    tolerance: float | None
    required_agreement: float
    passed: bool
    logits: LogitReport | None = None

    def summary(self) -> str:
        """One line; each figure carries its bound only where a bound applies to this precision."""
        limit = f" (<= {self.tolerance:g})" if self.tolerance is not None else ""
        verdict = "ok" if self.passed else "FAILED"
        logits = f", {self.logits.summary()}" if self.logits else ""
        required = f" (>= {self.required_agreement:.0%})" if self.required_agreement > 0 else ""
        return (f"{verdict}: max |dp| {self.max_abs_diff:.2e}{limit}{logits}, top-1 agreement "
                f"{self.top1_agreement:.1%}{required} on {self.samples} faces")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


@dataclass(frozen=True)
class LogitReport:
    """Polygraphy-style elementwise comparison of one output: |got - ref| <= atol + rtol * |ref|."""

    output: str
    dtype: str  # the candidate's; the reference is float32
    shape_equal: bool
    max_abs_diff: float
    max_rel_diff: float
    violations: int  # elements outside atol + rtol * |ref|
    nonfinite: int  # NaN or Inf elements in the candidate
    atol: float
    rtol: float
    passed: bool
    max_abs_reference: float = 0.0  # the largest |logit| of the reference: the scale of max_abs_diff

    def summary(self) -> str:
        """The relative difference first (the gate's scale: atol + rtol * |ref| per element), the absolute one
        beside the size of the logits it comes from (a random-weight teacher's logits reach 1e11)."""
        bad = f", {self.violations} outside" if self.violations else ""
        bad += f", {self.nonfinite} NaN/Inf" if self.nonfinite else ""
        bad += f", dtype {self.dtype}" if self.dtype != "float32" else ""
        return (f"{self.output}: max rel diff {self.max_rel_diff:.1e}, max abs diff {self.max_abs_diff:.1e} "
                f"on logits up to {self.max_abs_reference:.1e} (each within {self.atol:g} + {self.rtol:g}·|ref|"
                f"{bad})")


def compare_logits(reference: np.ndarray, candidate: np.ndarray, atol: float, rtol: float | None = None,
                   output: str = "logits") -> LogitReport:
    """Dtype, shape, NaN/Inf, then every element within ``atol + rtol * |ref|`` (rtol defaults to atol)."""
    rtol = atol if rtol is None else rtol
    got = np.asarray(candidate)
    ref = np.asarray(reference, dtype=np.float32)
    shape_equal = got.shape == ref.shape
    nonfinite = int((~np.isfinite(got)).sum()) if np.issubdtype(got.dtype, np.floating) else 0
    if not shape_equal or not got.size:
        return LogitReport(output, str(got.dtype), shape_equal, float("inf") if not shape_equal else 0.0,
                           float("inf") if not shape_equal else 0.0, int(got.size), nonfinite, atol, rtol,
                           shape_equal and not nonfinite)
    diff = np.abs(got.astype(np.float64) - ref)
    rel = diff / np.maximum(np.abs(ref), np.finfo(np.float32).tiny)
    violations = int((~(diff <= atol + rtol * np.abs(ref))).sum())
    passed = got.dtype == np.float32 and not violations and not nonfinite
    return LogitReport(output, str(got.dtype), True, float(np.nanmax(diff)), float(np.nanmax(rel)), violations,
                       nonfinite, atol, rtol, passed, float(np.abs(ref).max()))


def compare(reference_logits: np.ndarray, candidate_logits: np.ndarray, precision: str,
            fmt: str | None = None) -> ParityReport:
    """Compare two logit arrays (N, K) under the tolerance of ``precision`` (and of ``fmt``'s runtime,
    which adds the elementwise logit check of :data:`LOGIT_TOLERANCES`)."""
    if reference_logits.shape != candidate_logits.shape:
        raise ValueError(f"output shapes differ: {reference_logits.shape} vs {candidate_logits.shape}")
    tolerance, required = TOLERANCES[precision]
    expected = softmax(np.array(reference_logits, dtype=np.float32))
    got = softmax(np.array(candidate_logits, dtype=np.float32))
    diff = np.abs(expected - got)
    max_diff = float(diff.max()) if diff.size else 0.0
    agreement = float((expected.argmax(1) == got.argmax(1)).mean()) if len(got) else 1.0
    finite = bool(np.isfinite(got).all())
    passed = finite and agreement >= required and (tolerance is None or max_diff <= tolerance)
    logits = None
    if (precision, fmt) in LOGIT_TOLERANCES:
        logits = compare_logits(reference_logits, candidate_logits, LOGIT_TOLERANCES[precision, fmt])
        # fp16 artifacts may hand back float16 logits; only fp32 must keep the float32 dtype
        passed = passed and (logits.passed or (precision != "fp32" and not logits.violations
                                               and not logits.nonfinite))
    return ParityReport(precision, len(got), max_diff, float(diff.mean()) if diff.size else 0.0,
                        agreement, tolerance, required, passed, logits)


def infer(backend: Backend, pixels: np.ndarray, batch: int | None = None) -> np.ndarray:
    """The backend's logits for ``pixels`` (N, C, H, W); with ``batch``, in chunks of exactly that many (an
    artifact built for a fixed batch), the last one padded with copies of its last crop."""
    if batch is None:
        return backend.run(pixels)
    outputs = []
    for start in range(0, len(pixels), batch):
        chunk = pixels[start:start + batch]
        padded = np.concatenate([chunk, np.repeat(chunk[-1:], batch - len(chunk), axis=0)])
        outputs.append(backend.run(np.ascontiguousarray(padded))[:len(chunk)])
    return np.concatenate(outputs)


def compare_backends(reference: Backend, candidate: Backend, pixels: np.ndarray, precision: str,
                     fmt: str | None = None, batch: int | None = None) -> ParityReport:
    """Run both backends on ``pixels`` and compare the candidate with the reference (see :func:`compare`)."""
    return compare(infer(reference, pixels), infer(candidate, pixels, batch), precision, fmt)


def accuracy_ratio(labels: np.ndarray, reference_logits: np.ndarray, candidate_logits: np.ndarray,
                   minimum: float = MIN_ACCURACY_RATIO) -> AccuracyReport:
    """Top-1 accuracy of the candidate against that of the reference (FP32) on labelled faces."""
    labels = np.asarray(labels)
    reference = float((np.asarray(reference_logits).argmax(1) == labels).mean())
    candidate = float((np.asarray(candidate_logits).argmax(1) == labels).mean())
    ratio = candidate / reference if reference > 0 else (1.0 if candidate >= reference else 0.0)
    return AccuracyReport(len(labels), reference, candidate, ratio, minimum, ratio >= minimum)


@dataclass(frozen=True)
class AccuracyReport:
    samples: int
    reference_accuracy: float
    accuracy: float
    ratio: float
    minimum_ratio: float
    passed: bool

    def summary(self) -> str:
        verdict = "ok" if self.passed else "FAILED"
        return (f"{verdict}: accuracy {self.accuracy:.1%} vs FP32 {self.reference_accuracy:.1%} = "
                f"{self.ratio:.1%} of FP32 (>= {self.minimum_ratio:.0%}) on {self.samples} labelled faces")
