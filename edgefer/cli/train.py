"""`edgefer train teacher|student`: the Typer sub-app (registered in edgefer.cli as ``train``).

Torch is imported only when a command runs; without it the command says to install edgefer[train].
Ctrl-C finishes the current step, saves the run and exits with 130; the same command resumes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgefer.cli.common import EXIT_INTERRUPTED, needs_extra
from edgefer.limits import check_options

train_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                        help="Train the teacher and the students (knowledge distillation) on CK+, "
                             "Oulu-CASIA or a folder per class.")

Data = Annotated[Path, typer.Option("--data", help="Dataset folder.", show_default=False)]
Dataset = Annotated[str, typer.Option("--dataset", help="Layout: ck, oulu or folder.", show_default=False)]
SubjectRegex = Annotated[str | None, typer.Option(help="folder layout: regex pulling the subject id out of a file "
                                                       "name (group 'subject', else group 1).")]
Split = Annotated[str, typer.Option("--split", help="random or subject (subject-independent).")]
Folds = Annotated[int, typer.Option(min=2, help="Number of folds.")]
Fold = Annotated[int, typer.Option(min=0, help="Test fold (0-based).")]
SplitSeed = Annotated[int, typer.Option(help="Seed of the split (keep it equal for teacher and students).")]
Epochs = Annotated[int, typer.Option(min=1, help="Epochs to train (a resumed run trains up to this many).",
                                     show_default=False)]
Out = Annotated[Path, typer.Option("--out", "-o", help="Run folder (resumed if it holds a checkpoint).",
                                   show_default=False)]
Lr = Annotated[float, typer.Option(help="Adam learning rate.")]
BatchSize = Annotated[int, typer.Option(min=1, help="Batch size.")]
Dropout = Annotated[float, typer.Option(help="Dropout probability (the authors' keep probability 0.5).")]
Seed = Annotated[int, typer.Option(help="Seed of initialisation, batch order and dropout.")]
EvalEvery = Annotated[int, typer.Option(min=1, help="Evaluate on the test fold every N epochs.")]
Threads = Annotated[int | None, typer.Option(min=1, help="Torch CPU threads (default: all cores).")]
NoDetect = Annotated[bool, typer.Option("--no-detect", help="Images are face crops already: skip Haar detection.")]
Cache = Annotated[Path | None, typer.Option(help="Crop cache folder (default ~/.cache/edgefer/crops).")]
PeakFrames = Annotated[int, typer.Option(min=1, help="ck/oulu: last frames of a sequence labelled.")]
NeutralFrames = Annotated[int, typer.Option(min=0, help="ck/oulu: first frames of a sequence taken as neutral.")]
Modality = Annotated[str, typer.Option(help="oulu: VL or NI.")]
Illumination = Annotated[str, typer.Option(help="oulu: Strong, Weak, Dark or all.")]
CheckpointMinutes = Annotated[float, typer.Option(min=0, help="Also checkpoint within an epoch this often.")]


def _data_options(data, dataset, subject_regex, split, folds, fold, split_seed, no_detect, cache, peak_frames,
                  neutral_frames, modality, illumination):
    from edgefer.train.data.datasets import LayoutOptions
    from edgefer.train.data.folds import DataOptions

    layout = LayoutOptions(subject_regex, peak_frames, neutral_frames, modality, illumination)
    return DataOptions(data, dataset.lower(), layout, split.lower(), folds, fold, split_seed, not no_detect, cache)


@train_app.command()
def student(
    data: Data, dataset: Dataset, epochs: Epochs, out: Out,
    model: Annotated[str, typer.Option("--model", "-m", help="Family member, e.g. p12-xxs (MicroExpNet), p12-s, "
                                                             "v-m.")] = "p12-xxs",
    teacher_logits: Annotated[Path | None, typer.Option(help="Teacher logits of this fold (edgefer train teacher "
                                                             "writes RUN/teacher_logits.safetensors): distil.")] = None,
    temperature: Annotated[float, typer.Option(help="Distillation temperature T.")] = 8.0,
    lam: Annotated[float, typer.Option(help="Weight of the teacher's soft targets (lambda).")] = 0.5,
    subject_regex: SubjectRegex = None, split: Split = "subject", folds: Folds = 10, fold: Fold = 0,
    split_seed: SplitSeed = 0, lr: Lr = 1e-4, batch_size: BatchSize = 64, dropout: Dropout = 0.5, seed: Seed = 0,
    eval_every: EvalEvery = 1, threads: Threads = None, no_detect: NoDetect = False, cache: Cache = None,
    peak_frames: PeakFrames = 3, neutral_frames: NeutralFrames = 1, modality: Modality = "VL",
    illumination: Illumination = "Strong", checkpoint_minutes: CheckpointMinutes = 5.0,
) -> None:
    """Train a student: cross-entropy, or knowledge distillation with --teacher-logits."""
    check_options(locals())
    with needs_extra("train", "edgefer train"):
        from edgefer.train.fit.student import StudentRun, train_student

    options = _data_options(data, dataset, subject_regex, split, folds, fold, split_seed, no_detect, cache,
                            peak_frames, neutral_frames, modality, illumination)
    run = StudentRun(options, out, epochs, model, teacher_logits, temperature, lam, lr, batch_size, dropout, seed,
                     eval_every, checkpoint_minutes * 60)
    _run(train_student, run, threads, out)


@train_app.command()
def teacher(
    data: Data, dataset: Dataset, epochs: Epochs, out: Out,
    input_size: Annotated[int, typer.Option(min=75, help="Teacher input size: 299 (native), or 139 / 75 "
                                                         "to train faster on a CPU.")] = 299,
    imagenet: Annotated[Path | None, typer.Option(help="torchvision inception_v3 ImageNet state dict (.pth or "
                                                       ".safetensors) to start from; read with weights_only.")]
    = None,
    subject_regex: SubjectRegex = None, split: Split = "subject", folds: Folds = 10, fold: Fold = 0,
    split_seed: SplitSeed = 0, lr: Lr = 1e-4, batch_size: BatchSize = 64, dropout: Dropout = 0.5, seed: Seed = 0,
    eval_every: EvalEvery = 1, threads: Threads = None, no_detect: NoDetect = False, cache: Cache = None,
    peak_frames: PeakFrames = 3, neutral_frames: NeutralFrames = 1, modality: Modality = "VL",
    illumination: Illumination = "Strong", checkpoint_minutes: CheckpointMinutes = 5.0,
) -> None:
    """Train the Inception v3 teacher on a fold and save its logits for the students."""
    check_options(locals())
    with needs_extra("train", "edgefer train"):
        from edgefer.train.fit.teacher import TeacherRun, train_teacher

    options = _data_options(data, dataset, subject_regex, split, folds, fold, split_seed, no_detect, cache,
                            peak_frames, neutral_frames, modality, illumination)
    run = TeacherRun(options, out, epochs, input_size, imagenet, lr, batch_size, dropout, seed, eval_every,
                     checkpoint_minutes * 60)
    _run(train_teacher, run, threads, out)


def _run(train, run, threads: int | None, out: Path) -> None:
    import torch

    if threads:
        torch.set_num_threads(threads)
    try:
        with _RichProgress() as progress:
            metrics = train(run, hooks=progress, progress=progress.preprocess)
    except KeyboardInterrupt:
        typer.echo(f"edgefer: interrupted: {out} holds a resumable run; run the same command to go on", err=True)
        raise typer.Exit(EXIT_INTERRUPTED) from None
    _print_summary(metrics, out)


def _print_summary(metrics: dict, out: Path) -> None:
    typer.echo(f"{metrics['model']} on {metrics['dataset']} fold {metrics['fold']} ({metrics['split']} split, "
               f"{metrics['folds']} folds, {metrics['subjects']} subjects, {metrics['images']} images): "
               f"test accuracy {metrics['test_accuracy']:.2%} per crop, "
               f"{metrics['test_accuracy_image']:.2%} per image after {metrics['epochs']} epochs")
    typer.echo(f"weights: {out / 'model.safetensors'}  metrics: {out / 'metrics.json'}")
    if metrics.get("kind") == "teacher":
        typer.echo(f"teacher logits: {metrics['teacher_logits']} (pass it to edgefer train student --teacher-logits)")
    if not str(metrics.get("learning_curve", "")).endswith(".png"):
        typer.echo(f"learning curve {metrics['learning_curve']}", err=True)


class _RichProgress:
    """Progress bars on stderr: preprocessing, epochs, and the steps of the current epoch (loop Hooks)."""

    def __enter__(self) -> _RichProgress:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        self.bars = Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                             TimeElapsedColumn(), TextColumn("elapsed, left"), TimeRemainingColumn(),
                             console=Console(stderr=True))
        self.bars.start()
        self.preprocessing = self.epochs = self.steps = None
        return self

    def __exit__(self, *exc) -> None:
        self.bars.stop()

    def preprocess(self, done: int, total: int) -> None:
        if self.preprocessing is None:
            self.preprocessing = self.bars.add_task("face crops", total=total)
        self.bars.update(self.preprocessing, completed=done)

    def on_start(self, first_epoch: int, epochs: int, steps_per_epoch: int) -> None:
        self.epochs = self.bars.add_task("epochs", total=epochs, completed=first_epoch)
        self.total = epochs
        self.steps = self.bars.add_task(f"epoch {first_epoch + 1}", total=steps_per_epoch)

    def on_step(self, epoch: int, step: int, steps: int, loss: float) -> None:
        self.bars.update(self.steps, completed=step, description=f"epoch {epoch + 1} loss {loss:.3f}")

    def on_epoch(self, record: dict) -> None:
        tested = f" test acc {record['test_accuracy']:.1%}" if "test_accuracy" in record else ""
        self.bars.update(self.epochs, completed=record["epoch"], description=f"epochs{tested}")
        if record["epoch"] < self.total:
            self.bars.reset(self.steps, description=f"epoch {record['epoch'] + 1}")
        else:
            self.bars.remove_task(self.steps)
