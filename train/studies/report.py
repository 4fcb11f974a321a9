"""A study's results in the paper's shape: mean +- std over folds, the pooling table, the temperature plot
and the supervision curves.

Accuracies are the runs' test accuracy per crop (the authors' figure) from RUN/metrics.json; std is the
sample standard deviation over the finished folds (0 with one fold). Only finished runs count, and a run
that collapsed to one class (metrics.json ``collapsed``) is counted apart, never averaged in: its accuracy
is one class's share, not a trained model's. Every table names the training recipe that produced it.
matplotlib is imported only when a plot is drawn.
"""

from __future__ import annotations

import csv
import io
import json
import statistics
from pathlib import Path

from edgefer.errors import BackendUnavailable
from edgefer.fileio import atomic_path, atomic_write_text, csv_cell
from edgefer.train.fit.recipes import RECIPES
from edgefer.train.fit.reports import MetricsLog, write_json
from edgefer.train.models.configs import SIZES, VARIANTS
from edgefer.train.studies.grid import PAPER_POOLING, StudyCell, StudySettings, cells

DATASET_TITLES = {"ck": "CK+", "oulu": "Oulu-CASIA", "folder": "folder"}
SPLIT_TITLES = {"random": "random split", "subject": "subject-independent split"}


def mean_std(values: list[float]) -> tuple[float | None, float | None]:
    if not values:
        return None, None
    return statistics.fmean(values), statistics.stdev(values) if len(values) > 1 else 0.0


def cell_result(s: StudySettings, study: Path, cell: StudyCell) -> dict[str, object]:
    """The finished folds of one cell: accuracies per fold and their mean +- std."""
    runs = [_metrics(study / "runs" / cell.name / f"fold-{k}") for k in range(s.folds)]
    collapsed = [k for k, m in enumerate(runs) if m and m.get("collapsed")]
    trained = [m for m in runs if m and not m.get("collapsed")]
    crop = [m["test_accuracy"] for m in trained]
    image = [m["test_accuracy_image"] for m in trained]
    mean, std = mean_std(crop)
    image_mean, image_std = mean_std(image)
    return {"cell": cell.name, "model": cell.model, "size": cell.model.partition("-")[2],
            "temperature": cell.temperature, "lam": cell.lam, "folds_finished": len(crop) + len(collapsed),
            "folds_trained": len(crop), "folds_collapsed": len(collapsed), "collapsed_folds": collapsed,
            "folds": s.folds, "accuracy_per_fold": [m["test_accuracy"] if m else None for m in runs],
            "mean": mean, "std": std, "image_mean": image_mean, "image_std": image_std}


def curve(s: StudySettings, study: Path, cell: StudyCell) -> list[dict[str, float]]:
    """Test accuracy per epoch, mean +- std over the cell's finished folds that did not collapse."""
    per_epoch: dict[int, list[float]] = {}
    for k in range(s.folds):
        folder = study / "runs" / cell.name / f"fold-{k}"
        metrics = _metrics(folder)
        if metrics and not metrics.get("collapsed"):
            for record in MetricsLog(folder / "metrics.jsonl").read():
                if "test_accuracy" in record:
                    per_epoch.setdefault(record["epoch"], []).append(record["test_accuracy"])
    return [{"epoch": e, "mean": mean_std(v)[0], "std": mean_std(v)[1], "folds": len(v)}
            for e, v in sorted(per_epoch.items())]


def _metrics(folder: Path) -> dict | None:
    path = folder / "metrics.json"
    return json.loads(path.read_text()) if path.exists() else None


def study_results(s: StudySettings, study: Path) -> list[dict[str, object]]:
    """Every cell's result (``cell_result``), in the order of the paper's tables."""
    return [cell_result(s, study, c) for c in cells(s)]


def write_reports(s: StudySettings, study: Path, results: list[dict], failed: list[str]) -> list[Path]:
    """results.json plus the study's table or plot from the cells' ``results``; returns the files written."""
    data = {"study": s.study, "settings": s.to_dict(), "cells": results, "failed": failed}
    if s.study == "supervision":
        data["curves"] = {c.name: curve(s, study, c) for c in cells(s)}
    written = [write_json(study / "results.json", data)]
    if s.study == "pooling":
        written += [pooling_csv(s, results, study / "pooling.csv"), pooling_markdown(s, results, study / "pooling.md")]
    elif s.study == "temperature":
        written += [write_csv(study / "temperature.csv", [{**r, "recipe": s.recipe} for r in results],
                              ["model", "size", "temperature", "lam", "mean", "std", "folds_trained",
                               "folds_collapsed", "recipe"])]
        written += _plot(plot_temperature, s, results, study / "temperature.png")
    else:
        rows = [{**r, "supervised": r["temperature"] is not None, **point, "recipe": s.recipe}
                for r in results for point in data["curves"][r["cell"]]]
        written += [write_csv(study / "supervision.csv", rows, ["model", "size", "supervised", "temperature", "lam",
                                                               "epoch", "mean", "std", "folds", "folds_collapsed",
                                                               "recipe"])]
        written += _plot(plot_supervision, s, results, study / "supervision.png", data["curves"])
    return written


def _plot(draw, *args) -> list[Path]:
    try:
        return [draw(*args)]
    except BackendUnavailable:
        return []


def write_csv(path: Path, rows: list[dict], columns: list[str]) -> Path:
    text = io.StringIO()
    writer = csv.DictWriter(text, columns, extrasaction="ignore", lineterminator="\n")
    writer.writeheader()
    writer.writerows({k: csv_cell(v) for k, v in row.items()} for row in rows)
    return atomic_write_text(path, text.getvalue())


def pooling_csv(s: StudySettings, results: list[dict], path: Path) -> Path:
    ours = {r["model"]: r for r in results}
    paper = PAPER_POOLING[s.split]
    rows = [{"model": f"{v}-{z}", "variant": v, "size": z, "paper_ck": paper["ck"][f"{v}-{z}"],
             "paper_oulu": paper["oulu"][f"{v}-{z}"],
             **{k: ours.get(f"{v}-{z}", {}).get(k) for k in ("mean", "std", "folds_trained", "folds_collapsed")},
             "recipe": s.recipe}
            for z in SIZES for v in VARIANTS]
    for row in rows:
        row.update({k: None if row[k] is None else round(100 * row[k], 2) for k in ("mean", "std")})
    return write_csv(path, rows, ["model", "variant", "size", "paper_ck", "paper_oulu", "mean", "std",
                                  "folds_trained", "folds_collapsed", "recipe"])


def pooling_markdown(s: StudySettings, results: list[dict], path: Path) -> Path:
    """The slides' table (Model | CK+ | Oulu-CASIA, twice: M and S left, XS and XXS right) with ours beside."""
    ours = {r["model"]: r for r in results}
    paper = PAPER_POOLING[s.split]
    dataset = DATASET_TITLES[s.dataset]
    header = "| " + " | ".join(["Model", "CK+ (paper)", "Oulu-CASIA (paper)", "ours"] * 2) + " |"
    lines = [f"# Pooling study: {dataset}, {SPLIT_TITLES[s.split]}, {s.folds} folds x {s.epochs} epochs", "",
             f"Test accuracy per crop. ours: {dataset}, recipe `{s.recipe}` ({recipe_summary(s.recipe)}), "
             "mean ± std over the trained folds (count in brackets); folds that collapsed to one class are "
             f"counted apart, not averaged in; paper: MicroExpNet, IPTA 2019 slides, {SPLIT_TITLES[s.split]}.", "",
             header, "|---" * 8 + "|"]
    for row in range(8):
        cells_ = []
        for half in (SIZES[:2], SIZES[2:]):
            variant, size = VARIANTS[row % 4], half[row // 4]
            member = f"{variant}-{size}"
            cells_ += [f"{variant}_{size.upper()}", f"{paper['ck'][member]:.2f}%", f"{paper['oulu'][member]:.2f}%",
                       _ours(ours.get(member), s.folds)]
        lines.append("| " + " | ".join(cells_) + " |")
    return atomic_write_text(path, "\n".join(lines) + "\n")


def _ours(result: dict | None, folds: int) -> str:
    if not result or not result["folds_finished"]:
        return "-"
    collapsed = f", {result['folds_collapsed']} collapsed" if result["folds_collapsed"] else ""
    if result["mean"] is None:
        return f"collapsed ({result['folds_collapsed']}/{folds})"
    return f"{100 * result['mean']:.2f} ± {100 * result['std']:.2f}% ({result['folds_trained']}/{folds}{collapsed})"


def recipe_summary(name: str) -> str:
    return RECIPES[name].summary if name in RECIPES else "unknown recipe"


def _pyplot():
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BackendUnavailable("the study plots need matplotlib, which is not installed: pip install matplotlib") \
            from None
    return plt


def plot_temperature(s: StudySettings, results: list[dict], path: Path) -> Path:
    """Accuracy vs T, one line per student (the slides' temperature analysis)."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(8, 5))
    for model in dict.fromkeys(r["model"] for r in results):
        points = [r for r in results if r["model"] == model and r["mean"] is not None]
        axis.errorbar([r["temperature"] for r in points], [100 * r["mean"] for r in points],
                      yerr=[100 * r["std"] for r in points], marker="o", capsize=3, label=model)
    axis.set_xscale("log", base=2)
    axis.set_xticks(list(s.temperatures), [f"{t:g}" for t in s.temperatures])
    axis.set_xlabel("temperature T")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(f"Temperature analysis: {DATASET_TITLES[s.dataset]}, {SPLIT_TITLES[s.split]}, "
                   f"lambda {s.lam:g}, {s.folds} folds, recipe {s.recipe}")
    axis.legend()
    axis.grid(alpha=0.3)
    return _save(plt, fig, path)


def plot_supervision(s: StudySettings, results: list[dict], path: Path, curves: dict[str, list[dict]]) -> Path:
    """Test accuracy per epoch: solid with the teacher's supervision, dashed without; one colour per size."""
    plt = _pyplot()
    fig, axis = plt.subplots(figsize=(9, 5))
    colours = {}
    for r in results:
        points = curves[r["cell"]]
        if not points:
            continue
        colour = colours.setdefault(r["model"], f"C{len(colours)}")
        epochs = [p["epoch"] for p in points]
        mean = [100 * p["mean"] for p in points]
        std = [100 * p["std"] for p in points]
        supervised = r["temperature"] is not None
        label = f"{r['model']} " + (f"with teacher (lambda {r['lam']:g}, T {r['temperature']:g})" if supervised
                                    else "without teacher")
        axis.plot(epochs, mean, color=colour, linestyle="-" if supervised else "--", label=label)
        axis.fill_between(epochs, [m - d for m, d in zip(mean, std, strict=True)],
                          [m + d for m, d in zip(mean, std, strict=True)], color=colour, alpha=0.12)
    axis.xaxis.get_major_locator().set_params(integer=True)
    axis.set_xlabel("epoch")
    axis.set_ylabel("test accuracy (%)")
    axis.set_title(f"The effect of supervision: {DATASET_TITLES[s.dataset]}, {SPLIT_TITLES[s.split]}, "
                   f"{s.folds} folds, recipe {s.recipe}")
    axis.legend(fontsize="small")
    axis.grid(alpha=0.3)
    return _save(plt, fig, path)


def _save(plt, fig, path: Path) -> Path:
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return path
