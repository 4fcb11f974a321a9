"""The parity gate: an artifact is compared with the PyTorch model before it may be written.

FP32 must match within 1e-4 on probabilities; FP16 within 1e-2 with the same top-1; INT8 must
agree on top-1 for at least 98% of the validation crops (optimum's validate step, in small).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np

from edgefer.runtime.base import softmax

#: precision -> (max |Δp| allowed or None, top-1 agreement required)
TOLERANCES: dict[str, tuple[float | None, float]] = {
    "fp32": (1e-4, 0.0),
    "fp16": (1e-2, 1.0),
    "int8": (None, 0.98),
}


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

    def summary(self) -> str:
        limit = f"<= {self.tolerance:g}" if self.tolerance is not None else "not gated"
        verdict = "ok" if self.passed else "FAILED"
        return (f"{verdict}: max |dp| {self.max_abs_diff:.2e} ({limit}), top-1 agreement "
                f"{self.top1_agreement:.1%} (>= {self.required_agreement:.0%}) on {self.samples} faces")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)


def compare(reference_logits: np.ndarray, candidate_logits: np.ndarray, precision: str) -> ParityReport:
    """Compare two logit arrays (N, K) under the tolerance of ``precision``."""
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
    return ParityReport(precision, len(got), max_diff, float(diff.mean()) if diff.size else 0.0,
                        agreement, tolerance, required, passed)
