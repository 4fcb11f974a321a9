"""`edgefer train teacher|student`: the Typer sub-app (registered in edgefer.cli as ``train``).

Torch is imported only when a command runs; without it the command says to install edgefer[train].
Ctrl-C finishes the current step, saves the run and exits with 130 (SIGTERM: 143); the same command resumes it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer

from edgefer.cli.common import (
    BatchSize,
    Cache,
    Data,
    Dataset,
    Dropout,
    Folds,
    Imagenet,
    Lam,
    Lr,
    NoDetect,
    ProgressBars,
    Recipe,
    Seed,
    Split,
    SplitSeed,
    SubjectRegex,
    Temperature,
    interrupted,
    needs_extra,
)
from edgefer.fileio import check_output_folder
from edgefer.limits import check_options

train_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                        help="Train the teacher and the students (knowledge distillation) on CK+, "
                             "Oulu-CASIA or a folder per class.")

Fold = Annotated[int, typer.Option(min=0, help="Test fold (0-based).")]
Epochs = Annotated[int, typer.Option(min=1, help="Epochs to train (a resumed run trains up to this many).",
                                     show_default=False)]
Out = Annotated[Path, typer.Option("--out", "-o", help="Run folder (resumed if it holds a checkpoint).",
                                   show_default=False)]
EvalEvery = Annotated[int, typer.Option(min=1, help="Evaluate on the test fold every N epochs.")]
Threads = Annotated[int | None, typer.Option(min=1, help="Torch CPU threads (default: all cores).")]
PeakFrames = Annotated[int, typer.Option(min=1, help="ck/oulu: last frames of a sequence labelled.")]
NeutralFrames = Annotated[int, typer.Option(min=0, help="ck/oulu: first frames of a sequence taken as neutral.")]
Modality = Annotated[str, typer.Option(help="oulu: VL or NI.")]
Illumination = Annotated[str, typer.Option(help="oulu: Strong, Weak, Dark or all.")]
CheckpointMinutes = Annotated[float, typer.Option(min=0, help="Also checkpoint within an epoch this often.")]


def _data_options(data, dataset, subject_regex, split, folds, fold, split_seed, no_detect, cache, peak_frames,
                  neutral_frames, modality, illumination):
    from edgefer.train.data.datasets import LayoutOptions
    from edgefer.train.data.options import DataOptions

    layout = LayoutOptions(subject_regex=subject_regex, peak_frames=peak_frames, neutral_frames=neutral_frames,
                           modality=modality, illumination=illumination)
    return DataOptions(root=data, dataset=dataset.lower(), layout=layout, split=split.lower(), folds=folds,
                       fold=fold, split_seed=split_seed, detect=not no_detect, cache_dir=cache)


@train_app.command()
def student(
    data: Data, dataset: Dataset, epochs: Epochs, out: Out,
    model: Annotated[str, typer.Option("--model", "-m", help="Family member, e.g. p12-xxs (MicroExpNet), p12-s, "
                                                             "v-m.")] = "p12-xxs",
    teacher_logits: Annotated[Path | None, typer.Option(help="Teacher logits of this fold (edgefer train teacher "
                                                             "writes RUN/teacher_logits.safetensors): distil.")] = None,
    temperature: Temperature = 8.0, lam: Lam = 0.5, recipe: Recipe = "authors",
    subject_regex: SubjectRegex = None, split: Split = "subject", folds: Folds = 10, fold: Fold = 0,
    split_seed: SplitSeed = 0, lr: Lr = 1e-4, batch_size: BatchSize = 64, dropout: Dropout = 0.5, seed: Seed = 0,
    eval_every: EvalEvery = 1, threads: Threads = None, no_detect: NoDetect = False, cache: Cache = None,
    peak_frames: PeakFrames = 3, neutral_frames: NeutralFrames = 1, modality: Modality = "VL",
    illumination: Illumination = "Strong", checkpoint_minutes: CheckpointMinutes = 5.0,
) -> None:
    """Train a student: cross-entropy, or knowledge distillation with --teacher-logits."""
    check_options(locals())
    with needs_extra("train", "edgefer train"):
        from edgefer.train.fit.settings import LoopConfig, StudentRun
        from edgefer.train.fit.student import train_student

    options = _data_options(data, dataset, subject_regex, split, folds, fold, split_seed, no_detect, cache,
                            peak_frames, neutral_frames, modality, illumination)
    loop = LoopConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, eval_every=eval_every,
                      checkpoint_seconds=checkpoint_minutes * 60)
    run = StudentRun(data=options, out=out, loop=loop, model=model, dropout=dropout, teacher_logits=teacher_logits,
                     temperature=temperature, lam=lam, recipe=recipe)
    _run(train_student, run, threads, out)


@train_app.command()
def teacher(
    data: Data, dataset: Dataset, epochs: Epochs, out: Out,
    input_size: Annotated[int, typer.Option(min=75, help="Teacher input size: 299 (native), or 139 / 75 "
                                                         "to train faster on a CPU.")] = 299,
    imagenet: Imagenet = None,
    subject_regex: SubjectRegex = None, split: Split = "subject", folds: Folds = 10, fold: Fold = 0,
    split_seed: SplitSeed = 0, lr: Lr = 1e-4, batch_size: BatchSize = 64, dropout: Dropout = 0.5, seed: Seed = 0,
    eval_every: EvalEvery = 1, threads: Threads = None, no_detect: NoDetect = False, cache: Cache = None,
    peak_frames: PeakFrames = 3, neutral_frames: NeutralFrames = 1, modality: Modality = "VL",
    illumination: Illumination = "Strong", checkpoint_minutes: CheckpointMinutes = 5.0,
) -> None:
    """Train the Inception v3 teacher on a fold and save its logits for the students."""
    check_options(locals())
    with needs_extra("train", "edgefer train"):
        from edgefer.train.fit.settings import TEACHER_EVAL_BATCH, LoopConfig, TeacherRun
        from edgefer.train.fit.teacher import train_teacher

    options = _data_options(data, dataset, subject_regex, split, folds, fold, split_seed, no_detect, cache,
                            peak_frames, neutral_frames, modality, illumination)
    loop = LoopConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed, eval_every=eval_every,
                      checkpoint_seconds=checkpoint_minutes * 60, eval_batch_size=TEACHER_EVAL_BATCH)
    run = TeacherRun(data=options, out=out, loop=loop, input_size=input_size, imagenet=imagenet, dropout=dropout)
    _run(train_teacher, run, threads, out)


def _run(train, run, threads: int | None, out: Path) -> None:
    import torch

    check_output_folder(out)  # before the progress bars start
    if threads:
        torch.set_num_threads(threads)
    try:
        with ProgressBars() as bars:
            progress = _TrainProgress(bars)
            metrics = train(run, hooks=progress, progress=progress.preprocess)
    except KeyboardInterrupt:
        raise interrupted(f"{out} holds a resumable run; run the same command to go on") from None
    _print_summary(metrics, out)


def _print_summary(metrics: dict, out: Path) -> None:
    collapsed = f"; COLLAPSED: {metrics['collapse']['reason']}" if metrics.get("collapsed") else ""
    typer.echo(f"{metrics['model']} on {metrics['dataset']} fold {metrics['fold']} ({metrics['split']} split, "
               f"{metrics['folds']} folds, {metrics['subjects']} subjects, {metrics['images']} images): "
               f"test accuracy {metrics['test_accuracy']:.2%} per crop, "
               f"{metrics['test_accuracy_image']:.2%} per image after {metrics['epochs']} epochs{collapsed}")
    if collapsed:
        typer.echo("edgefer: this run collapsed to one class: its accuracy is not a trained model's; "
                   "train again with --recipe robust (or another --seed)", err=True)
    typer.echo(f"weights: {out / 'model.safetensors'}  metrics: {out / 'metrics.json'}")
    if metrics.get("kind") == "teacher":
        typer.echo(f"teacher logits: {metrics['teacher_logits']} (pass it to edgefer train student --teacher-logits)")
    if not str(metrics.get("learning_curve", "")).endswith(".png"):
        typer.echo(f"learning curve {metrics['learning_curve']}", err=True)


class _TrainProgress:
    """The training loop's Hooks on progress bars: face crops, epochs, the steps of the current epoch."""

    def __init__(self, bars: ProgressBars) -> None:
        self.bars = bars
        self.crops = self.epochs = self.steps = None
        self.total = 0

    def preprocess(self, done: int, total: int) -> None:
        if self.crops is None:
            self.crops = self.bars.bar("face crops", total=total)
        self.crops.update(done)

    def on_start(self, first_epoch: int, epochs: int, steps_per_epoch: int) -> None:
        self.total = epochs
        self.epochs = self.bars.bar("epochs", total=epochs, completed=first_epoch)
        self.steps = self.bars.bar(f"epoch {first_epoch + 1}", total=steps_per_epoch)

    def on_step(self, epoch: int, step: int, steps: int, loss: float) -> None:
        self.steps.update(step, f"epoch {epoch + 1} loss {loss:.3f}")

    def on_epoch(self, record: dict) -> None:
        tested = f" test acc {record['test_accuracy']:.1%}" if "test_accuracy" in record else ""
        self.epochs.update(record["epoch"], f"epochs{tested}")
        if record["epoch"] < self.total:
            self.steps.reset(f"epoch {record['epoch'] + 1}")
        else:
            self.steps.remove()
