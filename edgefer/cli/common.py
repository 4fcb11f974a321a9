"""What every command shares: the one-line failure, the missing-extra check, the rich progress bars, the
options of the training commands, list parsing, the exit code of an interrupt. (Native stderr filtering and
silencing live in :mod:`edgefer.nativelog`.)"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from pathlib import Path
from typing import Annotated

import typer

from edgefer import interrupt
from edgefer.errors import BackendUnavailable, InputError
from edgefer.textsafe import printable

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = interrupt.EXIT_INTERRUPTED


@contextlib.contextmanager
def needs_extra(extra: str, command: str) -> Iterator[None]:
    """Turn a missing optional dependency into a one-line BackendUnavailable naming the extra."""
    try:
        yield
    except ModuleNotFoundError as err:
        raise BackendUnavailable(f"{command} needs {err.name}, which is not installed: "
                                 f"pip install 'edgefer[{extra}]'") from None


def error(message: str) -> None:
    """A one-line error on stderr (the command goes on: ``fail`` for one that stops)."""
    typer.echo(f"edgefer: error: {printable(' '.join(message.split()))}", err=True)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    error(message)
    return typer.Exit(code)


def warn(message: str) -> None:
    """A one-line warning on stderr."""
    typer.echo(f"edgefer: warning: {printable(' '.join(message.split()))}", err=True)


def interrupted(what: str = "") -> typer.Exit:
    """Say that Ctrl-C stopped the command (and what it left behind); return the Exit (130) to raise."""
    typer.echo("edgefer: interrupted" + (f": {printable(what)}" if what else ""), err=True)
    interrupt.reported()
    return typer.Exit(EXIT_INTERRUPTED)


class ProgressBars:
    """Progress bars on stderr (rich, imported when they open): description, bar, count, time elapsed and left.

    ``rate`` adds a column of each bar's ``rate`` field with that unit (e.g. "frames/s"); ``transient`` bars
    vanish when they close.
    """

    def __init__(self, *, rate: str = "", transient: bool = False) -> None:
        self._rate, self._transient = rate, transient

    def __enter__(self) -> ProgressBars:
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            MofNCompleteColumn,
            Progress,
            TextColumn,
            TimeElapsedColumn,
            TimeRemainingColumn,
        )

        rate = [TextColumn("{task.fields[rate]:.0f} " + self._rate)] if self._rate else []
        self._progress = Progress(TextColumn("{task.description:<44}"), BarColumn(), MofNCompleteColumn(), *rate,
                                  TimeElapsedColumn(), TextColumn("elapsed, left"), TimeRemainingColumn(),
                                  console=Console(stderr=True), transient=self._transient)
        self._progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._progress.stop()

    def bar(self, description: str, total: int | None = None, completed: int = 0) -> Bar:
        fields = {"rate": 0.0} if self._rate else {}
        return Bar(self._progress, self._progress.add_task(description[:44], total=total, completed=completed,
                                                           **fields))


class Bar:
    """One progress bar; ``start``, ``doing`` and ``advance`` are the progress protocol of edgefer.bench."""

    def __init__(self, progress, task) -> None:
        self._progress, self._task = progress, task

    def start(self, total: int) -> None:
        self._progress.update(self._task, total=total)

    def doing(self, what: str) -> None:
        self._progress.update(self._task, description=what[:44])

    def advance(self, steps: int = 1, rate: float | None = None) -> None:
        self._progress.update(self._task, advance=steps, **({"rate": rate} if rate is not None else {}))

    def update(self, completed: int, description: str | None = None) -> None:
        self._progress.update(self._task, completed=completed,
                              **({"description": description[:44]} if description else {}))

    def reset(self, description: str) -> None:
        self._progress.reset(self._task, description=description[:44])

    def remove(self) -> None:
        self._progress.remove_task(self._task)


# The options `edgefer train` and `edgefer study` share.
Data = Annotated[Path, typer.Option("--data", help="Dataset folder.", show_default=False)]
Dataset = Annotated[str, typer.Option("--dataset", help="Layout: ck, oulu or folder.", show_default=False)]
SubjectRegex = Annotated[str | None, typer.Option(help="folder layout: regex pulling the subject id out of a file "
                                                       "name (group 'subject', else group 1).")]
Split = Annotated[str, typer.Option("--split", help="random or subject (subject-independent).")]
Folds = Annotated[int, typer.Option(min=2, help="Number of folds.")]
SplitSeed = Annotated[int, typer.Option(help="Seed of the split (keep it equal for teacher and students).")]
Lr = Annotated[float, typer.Option(help="Adam learning rate.")]
BatchSize = Annotated[int, typer.Option(min=1, help="Batch size.")]
Dropout = Annotated[float, typer.Option(help="Dropout probability (the authors' keep probability 0.5).")]
Seed = Annotated[int, typer.Option(help="Seed of initialisation, batch order and dropout.")]
NoDetect = Annotated[bool, typer.Option("--no-detect", help="Images are face crops already: skip Haar detection.")]
Cache = Annotated[Path | None, typer.Option(help="Crop cache folder (default ~/.cache/edgefer/crops).")]
Temperature = Annotated[float, typer.Option(help="Distillation temperature T.")]
Lam = Annotated[float, typer.Option(help="Weight of the teacher's soft targets (lambda).")]
Recipe = Annotated[str, typer.Option(help="Students' training recipe: authors (their code as written: the slides' "
                                          "table; v-XXS and p1-XXS collapse to one class) or robust (fc2 starts "
                                          "at zero: every member trains). README, Training recipes and collapse.")]
Imagenet = Annotated[Path | None, typer.Option(help="torchvision inception_v3 ImageNet state dict (.pth or "
                                                    ".safetensors) the teacher starts from; read with weights_only.")]



def names(text: str, option: str) -> tuple[str, ...]:
    """A comma-separated option as unique names, in order; empty is an error."""
    values = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    if not values:
        raise InputError(f"{option} is empty")
    return values


def ints(text: str, option: str) -> tuple[int, ...]:
    """A comma-separated option of positive integers."""
    values = names(text, option)
    if not all(v.isdigit() and int(v) > 0 for v in values):
        raise InputError(f"{option} {text!r}: expected positive integers, comma-separated")
    return tuple(int(v) for v in values)


def numbers(text: str, option: str) -> tuple[float, ...]:
    """A comma-separated option of numbers."""
    try:
        return tuple(float(x) for x in names(text, option))
    except ValueError:
        raise InputError(f"{option} {text!r}: expected numbers separated by commas") from None
