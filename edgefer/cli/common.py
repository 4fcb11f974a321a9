"""What every command shares: the one-line failure, the missing-extra check, native stderr silencing,
list parsing, the exit code of an interrupt."""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Iterator

import typer

from edgefer.errors import BackendUnavailable, InputError
from edgefer.textsafe import printable

EXIT_BAD_INPUT = 2
EXIT_INTERRUPTED = 130


@contextlib.contextmanager
def needs_extra(extra: str, command: str) -> Iterator[None]:
    """Turn a missing optional dependency into a one-line BackendUnavailable naming the extra."""
    try:
        yield
    except ModuleNotFoundError as err:
        raise BackendUnavailable(f"{command} needs {err.name}, which is not installed: "
                                 f"pip install 'edgefer[{extra}]'") from None


@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Send what C libraries print straight to file descriptor 2 (libpng's "libpng error: ...") to
    /dev/null meanwhile: edgefer's own one-line error says what went wrong."""
    sys.stderr.flush()
    saved, devnull = os.dup(2), os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, 2)
        yield
    finally:
        os.dup2(saved, 2)
        os.close(saved)
        os.close(devnull)


def fail(message: str, code: int = EXIT_BAD_INPUT) -> typer.Exit:
    """Print a one-line error to stderr and return the Exit to raise."""
    typer.echo(f"edgefer: error: {printable(' '.join(message.split()))}", err=True)
    return typer.Exit(code)



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
