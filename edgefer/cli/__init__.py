"""The edgefer command line: one module per command; each imports its heavy stage only when it runs.

Exit codes (edgefer.errors): 0 success, 1 internal error, 2 bad input or usage (missing/broken files,
unknown names), 3 refused as unsafe, 4 a quality gate failed (parity, benchmark validity), 5 backend or
environment unavailable, 130 interrupted (Ctrl-C), 143 terminated (SIGTERM).
"""

from __future__ import annotations

import os
import sys

import typer

try:  # typer 0.2x carries its own copy of click, and raises that copy's exceptions
    from typer import _click as click
except ImportError:  # older typer: click itself
    import click

from edgefer import interrupt
from edgefer.cli.bench import bench
from edgefer.cli.common import EXIT_BAD_INPUT, EXIT_INTERRUPTED, fail
from edgefer.cli.convert import convert
from edgefer.cli.info import info
from edgefer.cli.models import models
from edgefer.cli.predict import predict
from edgefer.cli.report import report
from edgefer.cli.study import study_app
from edgefer.cli.train import train_app
from edgefer.errors import EdgeferError, one_line
from edgefer.interrupt import raise_on_sigterm


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


#: click >= 8.2 raises this for a bare group (its help printed already); older click exits by itself.
_NO_ARGS_IS_HELP = getattr(click.exceptions, "NoArgsIsHelpError", ())


def main() -> None:
    """Entry point: every error is one line on stderr with its exit code; EDGEFER_DEBUG=1 shows tracebacks.

    Typer runs with ``standalone_mode=False`` so that its usage errors (unknown option, bad value) reach
    here and become one line too, not its boxed panel. SIGTERM unwinds like Ctrl-C and exits 143.
    """
    debug = bool(os.environ.get("EDGEFER_DEBUG"))
    raise_on_sigterm()
    try:
        code = app(standalone_mode=False)
    except _NO_ARGS_IS_HELP:
        code = EXIT_BAD_INPUT  # the help is printed already
    except click.exceptions.UsageError as err:
        where = f" (see '{err.ctx.command_path} --help')" if err.ctx is not None else ""
        code = fail(err.format_message() + where, err.exit_code).exit_code
    except click.exceptions.ClickException as err:
        code = fail(err.format_message(), err.exit_code).exit_code
    except (typer.Abort, KeyboardInterrupt):
        code = EXIT_INTERRUPTED
    except EdgeferError as err:
        if debug:
            raise
        code = fail(str(err), err.exit_code).exit_code
    except Exception as err:  # noqa: BLE001 - a bug: still one line, the traceback on request
        if debug:
            raise
        code = fail(f"internal error: {one_line(err, typed=True)} (EDGEFER_DEBUG=1 shows the traceback)",
                    1).exit_code
    if code == EXIT_INTERRUPTED or interrupt.terminated():  # Typer turns Ctrl-C into exit 130 silently
        if not interrupt.was_reported():
            typer.echo("edgefer: interrupted", err=True)
        code = interrupt.exit_code()
    sys.exit(code if isinstance(code, int) else 0)
