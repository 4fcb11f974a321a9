"""`edgefer info`: versions, backends and devices on this machine."""

from __future__ import annotations

from typing import Annotated

import typer

from edgefer.textsafe import json_text


def info(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """Versions, available backends and devices on this machine."""
    from edgefer.sysinfo import detect

    system = detect()
    if as_json:
        typer.echo(json_text(system.to_dict(), indent=2))
        return
    typer.echo(f"edgefer {system.libraries['edgefer']}  python {system.python}  {system.platform}")
    features = ", ".join(system.cpu_features) or "unknown"
    typer.echo(f"cpu: {system.cpu} ({system.cores} cores; {features})")
    typer.echo(f"gpus: {', '.join(system.gpus) or 'none'}")
    width = max((len(b.version or "-") for b in system.backends), default=1)
    for b in system.backends:
        detail = ", ".join(b.devices) if b.available else f"unavailable: {b.reason}"
        typer.echo(f"  {b.name:<12} {b.version or '-':<{width}}  {detail}")
