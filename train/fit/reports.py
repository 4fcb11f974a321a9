"""What a run leaves to read: metrics.jsonl (one line per epoch), the confusion matrix, a learning curve.

The learning-curve PNG needs matplotlib, imported only here and only when a curve is drawn.
"""

from __future__ import annotations

import csv
import io
import json
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from edgefer.errors import BackendUnavailable
from edgefer.fileio import atomic_path, atomic_write_text, csv_cell


class MetricsLog:
    """JSON lines, one record per epoch; rewritten from the checkpoint's history when a run resumes."""

    def __init__(self, path: str | os.PathLike):
        self.path = Path(path)

    def rewrite(self, history: Sequence[dict]) -> None:
        atomic_write_text(self.path, "".join(json.dumps(r) + "\n" for r in history))

    def append(self, record: dict) -> None:
        with open(self.path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")

    def read(self) -> list[dict]:
        if not self.path.exists():
            return []
        return [json.loads(line) for line in self.path.read_text().splitlines() if line.strip()]


def write_json(path: str | os.PathLike, data: object) -> Path:
    return atomic_write_text(path, json.dumps(data, indent=2) + "\n")


def confusion_matrix(labels: np.ndarray, predictions: np.ndarray, num_classes: int) -> np.ndarray:
    """Counts: row = true class, column = predicted class."""
    matrix = np.zeros((num_classes, num_classes), np.int64)
    np.add.at(matrix, (np.asarray(labels), np.asarray(predictions)), 1)
    return matrix


def write_confusion(matrix: np.ndarray, labels: Sequence[str], json_path: str | os.PathLike,
                    csv_path: str | os.PathLike) -> None:
    """The matrix as JSON ({labels, matrix, rows: true, columns: predicted}) and as a CSV table."""
    write_json(json_path, {"labels": list(labels), "rows": "true", "columns": "predicted",
                           "matrix": matrix.tolist()})
    text = io.StringIO()
    writer = csv.writer(text, lineterminator="\n")
    writer.writerow(["true \\ predicted", *map(csv_cell, labels)])  # labels come from folder names
    for label, row in zip(labels, matrix.tolist(), strict=True):
        writer.writerow([csv_cell(label), *row])
    atomic_write_text(csv_path, text.getvalue())


def _pyplot(what: str):
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BackendUnavailable(f"the {what} PNG needs matplotlib, which is not installed: "
                                 "pip install matplotlib") from None
    return plt


def plot_learning_curve(history: Sequence[dict], path: str | os.PathLike, title: str = "Learning curve") -> Path:
    """Loss (top panel) and accuracy (bottom panel) per epoch: each line on its own labelled axis, integer epoch
    ticks, legends beside the data; the loss axis is scaled to the epochs after the first, whose loss is often
    far above the rest (it stays drawn, clipped, and the panel says so)."""
    plt = _pyplot("learning-curve")
    from matplotlib.ticker import MaxNLocator

    epochs = [r["epoch"] for r in history]
    tested = [r for r in history if "test_loss" in r]
    fig, (loss_axis, accuracy_axis) = plt.subplots(2, 1, sharex=True, figsize=(9, 6.5),
                                                   gridspec_kw={"height_ratios": [1, 1]})
    train_loss = [r["train_loss"] for r in history]
    test_loss = [r["test_loss"] for r in tested]
    loss_axis.plot(epochs, train_loss, color="tab:red", marker="." if len(epochs) < 50 else None,
                   label="training loss")
    loss_axis.plot([r["epoch"] for r in tested], test_loss, color="tab:green",
                   marker="." if len(tested) < 50 else None, label="test loss")
    later = [v for r, v in zip(history, train_loss, strict=True) if r["epoch"] > epochs[0]]
    later += [v for r, v in zip(tested, test_loss, strict=True) if r["epoch"] > epochs[0]]
    if len(epochs) >= 3 and later and max(train_loss[:1] + test_loss[:1]) > 1.5 * max(later):
        loss_axis.set_ylim(min(later) * 0.9, max(later) * 1.1)
        loss_axis.set_title(f"epoch {epochs[0]}'s loss is above the axis (scaled to the later epochs)",
                            fontsize=8, loc="right")
    loss_axis.set_ylabel("loss (cross-entropy)")
    loss_axis.grid(True, alpha=0.3)
    loss_axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    accuracy_axis.plot(epochs, [r["train_accuracy"] for r in history], color="tab:orange",
                       label="training accuracy (per crop)")
    accuracy_axis.plot([r["epoch"] for r in tested], [r["test_accuracy"] for r in tested], color="tab:blue",
                       linewidth=2, label="test accuracy (per crop)")
    accuracy_axis.set_ylim(0, 1)
    accuracy_axis.set_ylabel("accuracy")
    accuracy_axis.set_xlabel("epoch")
    accuracy_axis.xaxis.set_major_locator(MaxNLocator(integer=True))
    accuracy_axis.grid(True, alpha=0.3)
    accuracy_axis.legend(loc="upper left", bbox_to_anchor=(1.01, 1.0), fontsize=8)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100, bbox_inches="tight")
    plt.close(fig)
    return Path(path)


def plot_confusion(per_image: np.ndarray, per_crop: np.ndarray, labels: Sequence[str], path: str | os.PathLike,
                   title: str = "Confusion matrix") -> Path:
    """The test confusion matrices side by side: per image (its crops' mean logits decide) and per crop;
    counts in the cells, rows true, columns predicted."""
    plt = _pyplot("confusion-matrix")
    fig, panels = plt.subplots(1, 2, figsize=(13, 6))
    for axes, matrix, what in ((panels[0], per_image, "per image"), (panels[1], per_crop, "per crop")):
        total = max(int(matrix.sum()), 1)
        axes.imshow(matrix, cmap="Blues")
        for (row, column), count in np.ndenumerate(matrix):
            if count:
                dark = count > matrix.max() / 2
                axes.text(column, row, str(count), ha="center", va="center", fontsize=8,
                          color="white" if dark else "black")
        axes.set_xticks(range(len(labels)), labels, rotation=45, ha="right", fontsize=8)
        axes.set_yticks(range(len(labels)), labels, fontsize=8)
        axes.set_xlabel("predicted")
        axes.set_ylabel("true")
        accuracy = np.trace(matrix) / total
        axes.set_title(f"{what}: {total} test {what.split()[1]}s, accuracy {accuracy:.1%}", fontsize=9)
    fig.suptitle(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)
