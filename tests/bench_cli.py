"""`edgefer bench` and `edgefer report` run in-process (Typer's CliRunner): exit code and output, no subprocess."""

from __future__ import annotations

import typer
from typer.testing import CliRunner

from edgefer.cli.bench import bench
from edgefer.cli.report import report


def cli(*args) -> object:
    """The bench and report commands invoked with ``args`` (paths and numbers as text); a click Result."""
    app = typer.Typer()
    app.command()(bench)
    app.command()(report)
    return CliRunner().invoke(app, [str(a) for a in args])
