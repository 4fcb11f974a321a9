"""`edgefer models`: the family, the teacher and the bundled pretrained models."""

from __future__ import annotations

from typing import Annotated

import typer

from edgefer.textsafe import json_text


def models(as_json: Annotated[bool, typer.Option("--json", help="Print JSON.")] = False) -> None:
    """List every model edgefer can build or ships: the family, the teacher, the pretrained ones."""
    from edgefer.train.models.registry import list_models

    entries = list_models()
    if as_json:
        typer.echo(json_text([e.to_dict() for e in entries], indent=2))
        return
    names = [e.name + (f" ({', '.join(e.aliases)})" if e.aliases else "") for e in entries]
    width = max(map(len, names)) + 2
    typer.echo(f"{'name':<{width}}{'kind':<12}{'variant':<14}{'size':<6}{'params':>12}  description")
    for name, e in zip(names, entries, strict=True):
        typer.echo(f"{name:<{width}}{e.kind:<12}{e.variant:<14}{e.size:<6}{e.params:>12,}  {e.description}")
