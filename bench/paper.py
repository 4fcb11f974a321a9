"""The paper's published "Model size and speed" table, and the authors' graph measured on a known machine.

Source: the MicroExpNet authors' IPTA 2019 slides (docs/authors-facts.md names the paper), table
"Memory requirements and average per-image running times". The paper's sizes are those of TensorFlow
checkpoints (weights plus Adam's two slots, hence ~3x four bytes per parameter), not of a deployable file.
"""

from __future__ import annotations

from dataclasses import dataclass

#: The paper's three timing columns, in its order.
PAPER_MACHINES = ("i7-7700HQ", "GTX1050", "Tesla K40")

#: The column the speed-up is measured against (the paper's CPU).
SPEEDUP_BASE = "i7-7700HQ"


@dataclass(frozen=True)
class PaperRow:
    name: str
    model: str  # edgefer's canonical name
    params: str
    size_mb: float
    ms: dict[str, float | None]


PAPER_ROWS: tuple[PaperRow, ...] = (
    PaperRow("TeacherExpNet", "inception-v3", "21.8M", 88.13,
             {"i7-7700HQ": 124.22, "GTX1050": 83.25, "Tesla K40": None}),
    PaperRow("StudentExpNet M", "p12-m", "900K", 10.88, {"i7-7700HQ": 0.89, "GTX1050": 1.13, "Tesla K40": 1.74}),
    PaperRow("StudentExpNet S", "p12-s", "232K", 2.91, {"i7-7700HQ": 0.78, "GTX1050": 1.08, "Tesla K40": 1.69}),
    PaperRow("StudentExpNet XS", "p12-xs", "121K", 1.52, {"i7-7700HQ": 0.63, "GTX1050": 0.97, "Tesla K40": 1.63}),
    PaperRow("MicroExpNet", "p12-xxs", "65K", 0.88, {"i7-7700HQ": 0.53, "GTX1050": 0.97, "Tesla K40": 1.52}),
)

#: The authors' own TensorFlow graph of MicroExpNet, measured here (docs/authors-facts.md): batch 1, one thread.
AUTHORS_TF_MS = 0.392
AUTHORS_TF_MACHINE = "authors' TF graph, 2-core AMD EPYC, 1 thread"

#: Models whose weights are MicroExpNet's (the bundled pretrained ones) share its paper row.
_PRETRAINED_ROW = "p12-xxs"


def network(model: str) -> str:
    """The architecture of an edgefer model name: a bundled pretrained model (microexpnet-ck) is p12-xxs."""
    from edgefer.zoo import PRETRAINED

    return _PRETRAINED_ROW if model in PRETRAINED or model == "microexpnet" else model


def paper_row(model: str) -> PaperRow | None:
    """The paper's row for an edgefer model name (canonical or bundled), or None when the paper has none."""
    key = network(model)
    return next((row for row in PAPER_ROWS if row.model == key), None)


def paper_order(model: str) -> int:
    """Sort key: the paper's row order first, then everything else."""
    row = paper_row(model)
    return PAPER_ROWS.index(row) if row else len(PAPER_ROWS)
