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
    authors: Annotated[Path | None, typer.Option(help="The authors' TF graph timed beside bare ONNX Runtime in one "
                                                      "run (tools/time_authors_graph.py --json); without it the "
                                                      "authors' column is a labelled constant from another "
                                                      "machine.")] = None,
) -> None:
    """Merge bench results from several machines into the paper-shaped table (Markdown, CSV, PNG)."""
    from edgefer.bench.authors import read_authors_timing
    from edgefer.bench.report import Report, read_results, write_report

    timing = read_authors_timing(authors) if authors is not None else None
    merged = Report.of(read_results(results), authors=timing)
    written = write_report(merged, out, plot=plot)
    typer.echo(merged.markdown())
    typer.echo("wrote " + ", ".join(str(p) for p in written), err=True)
