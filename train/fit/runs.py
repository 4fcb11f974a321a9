"""A run folder and what finishes a run: weights, confusion matrix, learning curve, metrics.json.

RUN/
  config.json        the settings the run was started with
  split.json         the fold of every image (seeded, so teacher and students agree)
  checkpoint.pt      the training state; a killed or interrupted run goes on from it
  metrics.jsonl      one line per epoch
  model.safetensors  the final weights, with the family name and a ModelSpec (edgefer convert takes it)
  confusion.json/csv the test confusion matrix (rows true, columns predicted; per crop)
  confusion.png      the test confusion matrices, per image and per crop, side by side
  learning_curve.png loss and accuracy per epoch
  metrics.json       the final figures: test accuracy (per crop, the authors' figure, and per image)
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from torch import nn

from edgefer.errors import BackendUnavailable, InputError
from edgefer.fileio import check_output_folder
from edgefer.spec import LABELS, ModelSpec
from edgefer.train.data.folds import FoldData, image_accuracy
from edgefer.train.data.splits import save_split
from edgefer.train.fit.loop import FitResult
from edgefer.train.fit.reports import (
    confusion_matrix,
    plot_confusion,
    plot_learning_curve,
    write_confusion,
    write_json,
)
from edgefer.train.fit.settings import LoopConfig
from edgefer.train.models.weights import save_weights


class RunPaths:
    """The files of one run folder."""

    def __init__(self, root: str | os.PathLike):
        self.root = Path(root)
        check_output_folder(self.root)
        self.config = self.root / "config.json"
        self.split = self.root / "split.json"
        self.checkpoint = self.root / "checkpoint.pt"
        self.metrics_log = self.root / "metrics.jsonl"
        self.model = self.root / "model.safetensors"
        self.confusion_json = self.root / "confusion.json"
        self.confusion_csv = self.root / "confusion.csv"
        self.curve = self.root / "learning_curve.png"
        self.confusion_png = self.root / "confusion.png"
        self.metrics = self.root / "metrics.json"
        self.teacher_logits = self.root / "teacher_logits.safetensors"


def check_loop(config: LoopConfig, dropout: float) -> None:
    if config.epochs < 1 or config.batch_size < 1 or config.eval_every < 1:
        raise InputError("--epochs, --batch-size and --eval-every must be >= 1")
    if not config.lr > 0:
        raise InputError(f"--lr {config.lr}: must be > 0")
    if not 0.0 <= dropout < 1.0:
        raise InputError(f"--dropout {dropout}: must be within [0, 1) (the probability of dropping)")


def start_run(paths: RunPaths, fold: FoldData, config: dict[str, object]) -> None:
    paths.root.mkdir(parents=True, exist_ok=True)
    write_json(paths.config, config)
    save_split(fold.split, paths.split)


def finish_run(paths: RunPaths, model: nn.Module, name: str, spec: ModelSpec, fold: FoldData,
               result: FitResult, summary: dict[str, object]) -> dict[str, object]:
    """Write the weights and reports; return (and write) the final metrics."""
    logits, labels = result.test_logits, fold.test.labels
    save_weights(model, paths.model, name, spec)
    matrix = confusion_matrix(labels.numpy(), logits.argmax(1).numpy(), len(LABELS))
    write_confusion(matrix, LABELS, paths.confusion_json, paths.confusion_csv)
    n = fold.crops.crops_per_sample
    per_image = confusion_matrix(labels.numpy()[::n], logits.reshape(-1, n, logits.shape[1]).mean(1).argmax(1).numpy(),
                                 len(LABELS))
    metrics = {
        **summary,
        "test_accuracy": float(np.trace(matrix) / max(matrix.sum(), 1)),
        "test_accuracy_image": image_accuracy(logits, labels, fold.crops.crops_per_sample),
        "test_loss": result.history[-1].get("test_loss") if result.history else None,
        "epochs": len(result.history),
        **fold.summary(),
        **fold.fingerprint(),
        "resumed_at": list(result.resumed_at) if result.resumed_at else None,
        "train_seconds": round(result.train_seconds, 3),
        "images_per_second": round(result.trained_items / result.train_seconds, 1) if result.train_seconds else None,
        "learning_curve": _curve(result, paths.curve, f"{name}: {paths.root.name}"),
        "confusion_png": _figure(plot_confusion, per_image, matrix, LABELS, paths.confusion_png,
                                 f"{name}: {paths.root.name}, test fold (rows true, columns predicted)"),
    }
    write_json(paths.metrics, metrics)
    return metrics


def _figure(draw, *args) -> str:
    """Draw a PNG; without matplotlib the run goes on and metrics.json says why there is none."""
    try:
        return draw(*args).name
    except BackendUnavailable as err:
        return f"not drawn: {err}"


def _curve(result: FitResult, path: Path, title: str) -> str:
    try:
        plot_learning_curve(result.history, path, title)
    except BackendUnavailable as err:
        return f"not drawn: {err}"
    return path.name


def spec_extra(values: dict[str, object]) -> dict[str, str]:
    """ModelSpec.extra holds strings only."""
    return {k: str(v) for k, v in values.items() if v is not None}


def path_text(path: str | os.PathLike | None) -> str | None:
    return str(path) if path is not None else None
