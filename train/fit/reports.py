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


def plot_learning_curve(history: Sequence[dict], path: str | os.PathLike, title: str = "Learning curve") -> Path:
    """Train/test loss (left axis) and accuracy (right axis) per epoch, as the authors plotted them."""
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise BackendUnavailable("the learning-curve PNG needs matplotlib, which is not installed: "
                                 "pip install matplotlib") from None
    epochs = [r["epoch"] for r in history]
    tested = [r for r in history if "test_loss" in r]
    fig, loss_axis = plt.subplots(figsize=(8, 5))
    loss_axis.plot(epochs, [r["train_loss"] for r in history], color="tab:red", alpha=0.6, label="training loss")
    loss_axis.plot([r["epoch"] for r in tested], [r["test_loss"] for r in tested], color="tab:green",
                   label="test loss")
    loss_axis.set_xlabel("epoch")
    loss_axis.set_ylabel("loss")
    accuracy_axis = loss_axis.twinx()
    accuracy_axis.plot(epochs, [r["train_accuracy"] for r in history], color="tab:orange",
                       label="training accuracy")
    accuracy_axis.plot([r["epoch"] for r in tested], [r["test_accuracy"] for r in tested], color="tab:blue",
                       linewidth=2, label="test accuracy")
    accuracy_axis.set_ylim(0, 1)
    accuracy_axis.set_ylabel("accuracy")
    lines = loss_axis.get_lines() + accuracy_axis.get_lines()
    loss_axis.legend(lines, [line.get_label() for line in lines], loc="center right")
    loss_axis.set_title(title)
    fig.tight_layout()
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=100)
    plt.close(fig)
    return Path(path)
