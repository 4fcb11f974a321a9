"""`edgefer study pooling|temperature|supervision`: the paper's studies as grids of training runs
(the Typer sub-app registered in edgefer.cli as ``study``).

Every run is a worker process trained from its settings (edgefer.train.studies); the study folder is
resumable (finished runs are skipped, a crashed one goes on from its checkpoint). Runs go in parallel on
this machine, or on a Ray cluster with --ray ADDRESS (pip install 'edgefer[ray]'; the folder must then be
on storage every node sees).
"""

from __future__ import annotations

import os
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
    Recipe,
    Seed,
    Split,
    SplitSeed,
    SubjectRegex,
    Temperature,
    fail,
    interrupted,
    names,
    numbers,
)
from edgefer.limits import check_options

study_app = typer.Typer(no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
                        help="The paper's studies: pooling table, temperature analysis, teacher supervision.")

EXIT_FAILED = 1

Out = Annotated[Path, typer.Option("--out", "-o", help="Study folder (resumed if it holds study.json).",
                                   show_default=False)]
Epochs = Annotated[int, typer.Option(min=1, help="Epochs per run (the paper: 3000).")]
Sizes = Annotated[str, typer.Option(help="Sizes, comma-separated (default: the paper's four).")]
Jobs = Annotated[int | None, typer.Option(min=1, help="Runs at once (default: cores // threads per run; "
                                                       "with --ray: cluster CPUs // threads per run).")]
ThreadsPerRun = Annotated[int, typer.Option(min=1, help="Torch threads of each run.")]
Ray = Annotated[str | None, typer.Option(help="Run on an existing Ray cluster at this address (e.g. auto, "
                                              "ray://head:10001), or 'local' to start one here.")]
DryRun = Annotated[bool, typer.Option("--dry-run", help="Print the grid and its estimated cost from a measured "
                                                        "short run; train nothing.")]
TeacherEpochs = Annotated[int | None, typer.Option(min=1, help="Epochs of each fold's teacher (default: --epochs).")]
TeacherInputSize = Annotated[int, typer.Option(min=75, help="Teacher input size: 299, or 139 / 75 (faster).")]
TeacherLogitsDir = Annotated[Path | None, typer.Option(help="Teachers trained already: DIR/fold-K/"
                                                            "teacher_logits.safetensors (e.g. another STUDY/teacher).")]
StudentVariants = Annotated[str, typer.Option(help="Student variants, comma-separated (the paper distils p12).")]


@study_app.command()
def pooling(
    data: Data, dataset: Dataset, out: Out, epochs: Epochs = 3000, split: Split = "subject", folds: Folds = 10,
    variants: Annotated[str, typer.Option(help="Variants, comma-separated.")] = "v,p1,p2,p12",
    sizes: Sizes = "m,s,xs,xxs", jobs: Jobs = None, threads_per_run: ThreadsPerRun = 1, ray: Ray = None,
    dry_run: DryRun = False, lr: Lr = 1e-4, batch_size: BatchSize = 64, dropout: Dropout = 0.5, seed: Seed = 0,
    split_seed: SplitSeed = 0, subject_regex: SubjectRegex = None, no_detect: NoDetect = False, cache: Cache = None,
    recipe: Recipe = "authors",
) -> None:
    """Max pooling vs. no pooling: variants v, p1, p2, p12 x sizes, cross-entropy (the slides' table)."""
    settings = _settings("pooling", **locals())
    _study(settings, out, jobs, threads_per_run, ray, dry_run)


@study_app.command()
def temperature(
    data: Data, dataset: Dataset, out: Out, epochs: Epochs = 3000, split: Split = "subject", folds: Folds = 10,
    temperatures: Annotated[str, typer.Option(help="Temperatures T, comma-separated.")] = "2,4,8,16,20,32,64",
    lam: Lam = 0.5, variants: StudentVariants = "p12", sizes: Sizes = "m,s,xs,xxs", jobs: Jobs = None,
    threads_per_run: ThreadsPerRun = 1, ray: Ray = None, dry_run: DryRun = False,
    teacher_epochs: TeacherEpochs = None, teacher_input_size: TeacherInputSize = 299,
    teacher_logits_dir: TeacherLogitsDir = None, imagenet: Imagenet = None,
    lr: Lr = 1e-4, batch_size: BatchSize = 64, dropout: Dropout = 0.5, seed: Seed = 0, split_seed: SplitSeed = 0,
    subject_regex: SubjectRegex = None, no_detect: NoDetect = False, cache: Cache = None,
    recipe: Recipe = "authors",
) -> None:
    """Temperature analysis: students x T, distilled from each fold's teacher (accuracy vs T)."""
    settings = _settings("temperature", **locals())
    _study(settings, out, jobs, threads_per_run, ray, dry_run)


@study_app.command()
def supervision(
    data: Data, dataset: Dataset, out: Out, epochs: Epochs = 3000, split: Split = "subject", folds: Folds = 10,
    lam: Lam = 0.5, temperature: Temperature = 8.0,
    variants: StudentVariants = "p12", sizes: Sizes = "m,s,xs,xxs", jobs: Jobs = None,
    threads_per_run: ThreadsPerRun = 1, ray: Ray = None, dry_run: DryRun = False,
    teacher_epochs: TeacherEpochs = None, teacher_input_size: TeacherInputSize = 299,
    teacher_logits_dir: TeacherLogitsDir = None, imagenet: Imagenet = None,
    lr: Lr = 1e-4, batch_size: BatchSize = 64, dropout: Dropout = 0.5, seed: Seed = 0, split_seed: SplitSeed = 0,
    subject_regex: SubjectRegex = None, no_detect: NoDetect = False, cache: Cache = None,
    recipe: Recipe = "authors",
) -> None:
    """The teacher's supervision: each student with (lambda) and without the teacher, accuracy per epoch."""
    settings = _settings("supervision", **locals())
    _study(settings, out, jobs, threads_per_run, ray, dry_run)


def _settings(study: str, **options):
    from edgefer.train.studies.grid import StudySettings

    check_options(options)
    fields = StudySettings.__dataclass_fields__
    values = {k: v for k, v in options.items() if k in fields}
    values.update(study=study, dataset=options["dataset"].lower(), split=options["split"].lower(),
                  recipe=options["recipe"].lower(),
                  detect=not options["no_detect"], variants=names(options["variants"].lower(), "--variants"),
                  sizes=names(options["sizes"].lower(), "--sizes"))
    if "temperatures" in options:
        values["temperatures"] = numbers(options["temperatures"], "--temperatures")
        check_options({"temperatures": values["temperatures"]})
    for key in ("data", "cache", "teacher_logits_dir", "imagenet"):
        if values.get(key) is not None:
            values[key] = os.fspath(Path(values[key]).expanduser().resolve())
    return StudySettings(**values)


def _study(settings, out: Path, jobs: int | None, threads: int, ray: str | None, dry_run: bool) -> None:
    from edgefer.train.studies.grid import check_settings

    check_settings(settings)
    study = out.expanduser().resolve()
    local_jobs = jobs or max(1, (os.cpu_count() or 1) // threads)
    if dry_run:
        _dry_run(settings, local_jobs, threads)
        return
    from edgefer.train.studies.run import run_study

    try:
        result = run_study(settings, study, jobs if ray else local_jobs, threads, ray, _report)
    except KeyboardInterrupt:
        raise interrupted(f"{study} is resumable; run the same command to go on") from None
    _print_results(result, settings.recipe)
    if result.failed:
        for outcome in result.failed:
            typer.echo(f"failed: {outcome.key}: {outcome.message} (log: {study / outcome.key / 'train.log'})",
                       err=True)
        raise fail(f"{len(result.failed)} of {result.runs} runs failed; run the same command to retry them",
                   EXIT_FAILED)


def _report(task, outcome, done: int, total: int) -> None:
    status = f"test accuracy {outcome.test_accuracy:.2%}" if outcome.ok else f"FAILED ({outcome.message})"
    if outcome.collapsed:
        status += f", COLLAPSED ({outcome.collapsed}; counted apart)"
    typer.echo(f"[{done}/{total}] {task.key}: {status} ({outcome.seconds:.0f} s)", err=True)


def _print_results(result, recipe: str) -> None:
    typer.echo(f"{result.runs} runs: {result.skipped} finished before, {len(result.outcomes)} trained now, "
               f"{len(result.failed)} failed; recipe {recipe}")
    for cell in result.cells:
        accuracy = "-" if cell["mean"] is None else f"{cell['mean']:.2%} ± {cell['std']:.2%}"
        collapsed = f", {cell['folds_collapsed']} collapsed (not averaged)" if cell["folds_collapsed"] else ""
        typer.echo(f"  {cell['cell']:<16} {accuracy:>18}  ({cell['folds_trained']}/{cell['folds']} folds{collapsed})")
    typer.echo("written: " + ", ".join(str(p) for p in result.written))


def _dry_run(settings, jobs: int, threads: int) -> None:
    from edgefer.train.studies.estimate import estimate
    from edgefer.train.studies.grid import cells, tasks

    grid = cells(settings)
    runs = tasks(settings)
    teachers = sum(1 for t in runs if t.cell is None)
    typer.echo(f"{settings.study} study: {len(grid)} cells x {settings.folds} folds = {len(grid) * settings.folds} "
               f"runs" + (f" + {teachers} teacher runs" if teachers else "") + f", {settings.epochs} epochs each")
    typer.echo("cells: " + ", ".join(c.name for c in grid))
    typer.echo("measuring: the dry run prepares the crops and trains each kind of student briefly; this takes "
               "minutes", err=True)
    cost = estimate(settings, jobs, threads, progress=lambda line: typer.echo(line, err=True))
    students = cost.runs - cost.teacher_runs
    typer.echo(f"students: {cost.student_cpu_hours:,.1f} CPU-hours for {students} runs x {settings.epochs} epochs")
    if cost.teacher is not None:
        teacher_epochs = settings.teacher_epochs or settings.epochs
        typer.echo(f"teachers: {cost.teacher_cpu_hours:,.1f} CPU-hours for {cost.teacher_runs} runs x "
                   f"{teacher_epochs} epochs at {settings.teacher_input_size} px "
                   f"({cost.teacher.per_epoch:,.0f} s per epoch)")
    typer.echo(f"estimate: {cost.cpu_hours:,.1f} CPU-hours for {cost.runs} runs; about {_duration(cost.wall_hours)} "
               f"wall with --jobs {jobs} x {threads} thread(s) (crop preprocessing {cost.preprocessing:.0f} s, once)")
    for hint in _cheaper(settings, cost):
        typer.echo(f"hint: {hint}")


def _cheaper(settings, cost) -> list[str]:
    """Where the teachers dominate, the options that cut them down."""
    if cost.teacher is None or cost.teacher_cpu_hours < cost.student_cpu_hours:
        return []
    hints = []
    if settings.teacher_epochs is None:
        hints.append(f"the teachers train for --epochs ({settings.epochs}) unless --teacher-epochs says fewer "
                     "(e.g. --teacher-epochs 30)")
    if settings.teacher_input_size == 299:
        hints.append("the teacher was timed at 299 px; --teacher-input-size 139 trains it about 7x faster "
                     "(75: about 30x), at some cost in its accuracy")
    hints.append("--teacher-logits-dir reuses teachers trained already")
    return hints


def _duration(hours: float) -> str:
    if hours >= 48:
        return f"{hours / 24:.1f} days"
    return f"{hours:.1f} h" if hours >= 1 else f"{hours * 60:.1f} min"
