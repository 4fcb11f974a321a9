"""The report's figures (matplotlib, the optional [bench] extra).

- latency.png: per-image latency at batch 1 against parameter count, log-log. Colour = backend (the
  paper's three machines each in a colour of their own, dashed), marker = machine; each model is named
  on the top axis at its parameter count (models of one count share a tick, one name per line). Lines
  join the students only: nothing is drawn across the empty range between the 0.9M-parameter student
  and the 21.8M-parameter teacher.
- throughput.png: images/s of every cell at batch > 1 (and throughput mode), one panel per model,
  one labelled bar per machine x backend x precision x threads x batch (x requests in flight). A latency-mode
  bar is batch x 1000 / mean ms per call; a throughput-mode bar is completed images / wall time.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

from edgefer.bench.paper import PAPER_MACHINES, PAPER_ROWS, network
from edgefer.bench.records import BenchResult, Record
from edgefer.bench.table import machine_groups
from edgefer.errors import BackendUnavailable
from edgefer.fileio import atomic_path
from edgefer.textsafe import plot_label

#: Models above this many parameters are not joined by a line to the students.
GAP_PARAMS = 5_000_000
MARKERS = ("o", "s", "^", "D", "v", "P", "X", "*")
PAPER_COLOURS = {"i7-7700HQ": "#7f3b08", "GTX1050": "#542788", "Tesla K40": "#1b7837"}
PAPER_STYLES = {"i7-7700HQ": "--", "GTX1050": ":", "Tesla K40": "-."}
#: What a bar of throughput.png measures, per mode (see Record.throughput_ips); higher is better.
THROUGHPUT_AXIS = ("images per second, higher is better: one call at a time, batch × 1000 ÷ mean ms per call;\n"
                   "'N in flight' (throughput mode), images completed by the N requests ÷ wall time")


def _pyplot():
    try:
        import matplotlib
    except ImportError:
        raise BackendUnavailable("edgefer report draws its plots with matplotlib, which is not installed: "
                                 "pip install 'edgefer[bench]', or pass --no-plot") from None
    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _measured(results: Sequence[BenchResult]) -> list[tuple[str, Record]]:
    """(machine label, record) of every measured record, one per cell (later runs of a machine win)."""
    cells: dict[tuple, tuple[str, Record]] = {}
    for label, group in machine_groups(results):
        for result in group:
            for r in result.records:
                if r.measured and r.params and not getattr(r, "frame", ""):  # whole frames: their own table
                    key = (label, network(r.model), r.backend, r.precision, r.threads, r.batch,
                           r.extra.get("mode", "latency"))
                    cells[key] = (label, r)
    return list(cells.values())


def _draw_series(axes, points: list[tuple[float, float]], **style) -> None:
    """Markers for every point; a line only between neighbours on the same side of the parameter gap."""
    points = sorted(points)
    small = [p for p in points if p[0] <= GAP_PARAMS]
    large = [p for p in points if p[0] > GAP_PARAMS]
    label = style.pop("label")
    for index, part in enumerate((small, large)):
        if part:
            xs, ys = zip(*part, strict=True)
            axes.plot(xs, ys, label=label if index == 0 or not small else None, **style)


def _paper_series() -> dict[str, list[tuple[int, float]]]:
    from edgefer.train.models.registry import list_models

    params = {e.name: e.params for e in list_models()}
    return {m: [(params[row.model], row.ms[m]) for row in PAPER_ROWS if row.ms.get(m)] for m in PAPER_MACHINES}


def plot_latency(results: Sequence[BenchResult], path: Path) -> Path:
    plt = _pyplot()
    records = [(m, r) for m, r in _measured(results) if r.batch == 1 and r.extra.get("mode", "latency") == "latency"]
    machines = list(dict.fromkeys(m for m, _ in records))
    backends = list(dict.fromkeys(r.backend for _, r in records))
    colours = plt.get_cmap("tab10")
    figure, axes = plt.subplots(figsize=(10, 6), dpi=120)
    series: dict[tuple[str, str, str, int], list[tuple[float, float]]] = {}
    for machine, r in records:
        series.setdefault((machine, r.backend, r.precision, r.threads), []).append((r.params, r.per_image_ms))
    for (machine, backend, precision, threads), points in series.items():
        offset = 1 + 0.04 * (machines.index(machine) - (len(machines) - 1) / 2)  # machines side by side
        label = " ".join([*([machine] if len(machines) > 1 else []), backend,
                          *([precision] if precision != "fp32" else []), f"{threads}T"])
        _draw_series(axes, [(x * offset, y) for x, y in points], marker=MARKERS[machines.index(machine) % 8],
                     color=colours(backends.index(backend) % 10), linewidth=1.2, markersize=6,
                     label=plot_label(label))  # machine names come from result files
    for machine, points in _paper_series().items():
        _draw_series(axes, points, marker="x", color=PAPER_COLOURS[machine], linestyle=PAPER_STYLES[machine],
                     linewidth=1.2, markersize=7, label=f"paper {machine} (TensorFlow)")
    axes.set_xscale("log")
    axes.set_yscale("log")
    _name_models(axes, records)  # after the log scale: a scale change resets the top axis' ticks
    axes.set_xlabel("parameters (log scale)")
    axes.set_ylabel("milliseconds per image, batch 1 (median, log scale)")
    axes.set_title("Latency vs. model size: ours (colour = backend, marker = machine) and the paper's", pad=28)
    axes.grid(True, which="both", alpha=0.3)
    axes.legend(fontsize=8, loc="upper left", bbox_to_anchor=(1.01, 1.0), title="series", title_fontsize=8)
    return _save(plt, figure, path)


def _name_models(axes, records: list[tuple[str, Record]]) -> None:
    """The model names on a top axis, at their parameter counts (the paper's rows and ours)."""
    from matplotlib.ticker import FixedFormatter, FixedLocator, NullFormatter, NullLocator

    names = model_names(records)
    top = axes.secondary_xaxis("top")
    top.xaxis.set_major_locator(FixedLocator(list(names)))
    top.xaxis.set_major_formatter(FixedFormatter(list(names.values())))
    top.xaxis.set_minor_locator(NullLocator())
    top.xaxis.set_minor_formatter(NullFormatter())
    top.tick_params(axis="x", labelsize=8, labelrotation=30)
    top.set_xlabel("model", fontsize=8)
    for x in names:
        axes.axvline(x, color="gray", alpha=0.15, linewidth=0.8)


def model_names(records: list[tuple[str, Record]]) -> dict[int, str]:
    """The top axis' label at each parameter count, in increasing order: every model (the paper's rows and
    ours) with that count, one per line, so that two models of one size are both named (plot-safe text)."""
    from edgefer.train.models.registry import list_models

    params = {e.name: e.params for e in list_models()}
    named: dict[int, list[str]] = {}
    for count, name in [(params[row.model], row.model) for row in PAPER_ROWS] + [(r.params, network(r.model))
                                                                                  for _, r in records]:
        if name not in named.setdefault(count, []):
            named[count].append(name)
    return {count: "\n".join(plot_label(name) for name in named[count]) for count in sorted(named)}


def plot_throughput(results: Sequence[BenchResult], path: Path) -> Path:
    """One panel per model; one bar per cell at batch > 1 or in throughput mode, its images/s written on it."""
    plt = _pyplot()
    records = [(m, r) for m, r in _measured(results) if r.batch > 1 or r.extra.get("mode", "latency") != "latency"]
    nets = list(dict.fromkeys(network(r.model) for _, r in sorted(records, key=lambda mr: -mr[1].params)))
    several = len({m for m, _ in records}) > 1
    backends = list(dict.fromkeys(r.backend for _, r in records))
    colours = plt.get_cmap("tab10")
    heights = [max(1, sum(network(r.model) == n for _, r in records)) for n in nets] or [1]
    figure, panels = plt.subplots(len(heights), 1, figsize=(10, 1.2 + 0.32 * sum(heights) + 0.5 * len(heights)),
                                  dpi=120, squeeze=False, gridspec_kw={"height_ratios": heights})
    for axes, net in zip(panels[:, 0], nets, strict=False):
        bars = sorted(((m, r) for m, r in records if network(r.model) == net), key=lambda mr: mr[1].throughput_ips)
        labels = [" ".join([*([m] if several else []), r.backend, r.runtime_precision or r.precision,
                            f"{r.threads}T", f"b{r.batch}", *([f"{r.extra['in_flight']} in flight"]
                                                              if r.extra.get("in_flight") else []),
                            *(["† INVALID"] if r.status == "invalid" else [])])
                  for m, r in bars]
        values = [r.throughput_ips for _, r in bars]
        axes.barh([plot_label(label) for label in labels], values,
                  color=[colours(backends.index(r.backend) % 10) for _, r in bars])
        for y, value in enumerate(values):
            axes.text(value, y, f" {value:,.0f}", va="center", fontsize=8)
        axes.set_title(f"{plot_label(net)}: images per second", fontsize=9, loc="left")
        axes.set_xlim(0, max(values) * 1.18)
        axes.tick_params(axis="y", labelsize=8)
        axes.grid(True, axis="x", alpha=0.3)
    panels[-1, 0].set_xlabel(THROUGHPUT_AXIS)
    figure.suptitle("Throughput at batch > 1 and under load (T = threads, b = batch)", fontsize=10)
    return _save(plt, figure, path)


def _save(plt, figure, path: Path) -> Path:
    figure.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    with atomic_path(path) as tmp:
        figure.savefig(tmp, format="png", bbox_inches="tight")
    plt.close(figure)
    return path
