"""The report's figure: per-image latency at batch 1 against parameter count, log-log, one line per
machine x backend, with the paper's three machines dashed. matplotlib is optional (the [bench] extra).
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgefer.bench.paper import PAPER_MACHINES, PAPER_ROWS
from edgefer.bench.records import BenchResult
from edgefer.bench.table import machine_labels
from edgefer.errors import BackendUnavailable
from edgefer.fileio import atomic_path
from edgefer.textsafe import plot_label


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise BackendUnavailable("edgefer report draws its plot with matplotlib, which is not installed: "
                                 "pip install 'edgefer[bench]', or pass --no-plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _series(results: Sequence[BenchResult]) -> dict[str, list[tuple[int, float]]]:
    """label -> [(params, per-image ms)] of measured batch-1 records."""
    several = len(results) > 1
    lines: dict[str, list[tuple[int, float]]] = {}
    for machine, result in zip(machine_labels(list(results)), results, strict=True):
        for r in result.records:
            if r.batch != 1 or not r.measured or not r.params:
                continue
            parts = ([machine] if several else []) + [r.backend] + ([r.precision] if r.precision != "fp32" else [])
            lines.setdefault(" ".join(parts) + f" {r.threads}T", []).append((r.params, r.per_image_ms))
    return lines


def _paper_series() -> dict[str, list[tuple[int, float]]]:
    from edgefer.train.models.registry import list_models

    params = {e.name: e.params for e in list_models()}
    return {f"paper {m}": [(params[row.model], row.ms[m]) for row in PAPER_ROWS if row.ms.get(m)]
            for m in PAPER_MACHINES}


def plot_latency(results: Sequence[BenchResult], path: Path) -> Path:
    plt = _pyplot()
    figure, axes = plt.subplots(figsize=(8, 5.5), dpi=120)
    for label, points in _series(results).items():
        xs, ys = zip(*sorted(points), strict=True)
        axes.plot(xs, ys, marker="o", label=plot_label(label))  # machine names come from result files
    for (label, points), style in zip(_paper_series().items(), ("--", ":", "-."), strict=True):
        xs, ys = zip(*sorted(points), strict=True)
        axes.plot(xs, ys, linestyle=style, marker="x", color="gray", label=label)
    axes.set_xscale("log")
    axes.set_yscale("log")
    axes.set_xlabel("parameters")
    axes.set_ylabel("per-image latency at batch 1 (ms, median)")
    axes.set_title("MicroExpNet family: latency vs. size")
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=7, loc="upper left")
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png")
    plt.close(figure)
    return path
