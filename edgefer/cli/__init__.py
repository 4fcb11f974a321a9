"""The edgefer command line: one module per command; each imports its heavy stage only when it runs.

Exit codes (edgefer.errors): 0 success, 1 internal error, 2 bad input or usage (missing/broken files,
unknown names), 3 refused as unsafe, 4 a quality gate failed (parity, benchmark validity), 5 backend or
environment unavailable, 130 interrupted.
"""

from __future__ import annotations

import os
import sys

import typer

from edgefer.cli.bench import bench
from edgefer.cli.common import EXIT_INTERRUPTED, fail
from edgefer.cli.convert import convert
from edgefer.cli.info import info
from edgefer.cli.models import models
from edgefer.cli.predict import predict
from edgefer.cli.report import report
from edgefer.cli.study import study_app
from edgefer.cli.train import train_app
from edgefer.errors import EdgeferError


def _without_type_tags() -> None:
    """Typer (>= 0.20) prints each option's Python type (<str>, <bool>, <int range>) in a column of its own:
    noise for a user, and it squeezes the help text. Show an option's metavar there only when one is set."""
    from typer import core

    core.TyperOption.display_type_rich = lambda self, ctx: self.metavar
    core.TyperArgument.display_type_rich = lambda self, ctx: None


_without_type_tags()

app = typer.Typer(
    name="edgefer", no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False,
    help="Facial-expression recognition on edge devices: predict, convert, bench, train.")

for command in (predict, convert, models, info, bench, report):
    app.command()(command)
app.add_typer(train_app, name="train")
app.add_typer(study_app, name="study")


def main() -> None:
    """Entry point: edgefer's errors become one line and exit code 2; EDGEFER_DEBUG=1 shows tracebacks.

    Typer handles its own usage errors (exit 2) and typer.Exit; everything else arrives here.
    """
    debug = bool(os.environ.get("EDGEFER_DEBUG"))
    try:
        app()
    except EdgeferError as err:
        if debug:
            raise
        sys.exit(fail(str(err), err.exit_code).exit_code)
    except KeyboardInterrupt:
        typer.echo("edgefer: interrupted", err=True)
        sys.exit(EXIT_INTERRUPTED)
    except Exception as err:  # noqa: BLE001 - a bug: still one line, the traceback on request
        if debug:
            raise
        sys.exit(fail(f"internal error: {type(err).__name__}: {err} (EDGEFER_DEBUG=1 shows the traceback)",
                      1).exit_code)
