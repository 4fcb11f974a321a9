"""`edgefer report`: merge bench results from several machines into tables and plots."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer


def report(
    results: Annotated[list[Path], typer.Argument(metavar="RESULT.json...", help="Files written by "
                                                                                "'edgefer bench --json'.")],
    out: Annotated[Path, typer.Option("--out", "-o", help="Folder for report.md, *.csv and latency.png.")]
    = Path("bench-report"),
    plot: Annotated[bool, typer.Option(help="Draw latency.png (needs matplotlib).")] = True,
) -> None:
    """Merge bench results from several machines into the paper-shaped table (Markdown, CSV, PNG)."""
    from edgefer.bench.report import Report, read_results, write_report

    merged = Report.of(read_results(results))
    written = write_report(merged, out, plot=plot)
    typer.echo(merged.markdown())
    typer.echo("wrote " + ", ".join(str(p) for p in written), err=True)
