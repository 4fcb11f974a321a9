"""The pretrained models that ship inside the package (the authors' weights, MIT licence)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from edgefer.errors import InputError, ModelError

MODELS_DIR = Path(__file__).parent / "models"


@dataclass(frozen=True)
class Pretrained:
    name: str
    description: str

    @property
    def onnx(self) -> Path:
        return MODELS_DIR / f"{self.name}.onnx"

    @property
    def safetensors(self) -> Path:
        return MODELS_DIR / f"{self.name}.safetensors"


PRETRAINED: dict[str, Pretrained] = {
    p.name: p
    for p in (
        Pretrained("microexpnet-ck", "MicroExpNet trained by the paper's authors on CK+"),
        Pretrained("microexpnet-oulu", "MicroExpNet trained by the paper's authors on Oulu-CASIA"),
    )
}

DEFAULT_MODEL = "microexpnet-ck"


def pretrained(name: str) -> Pretrained:
    try:
        return PRETRAINED[name]
    except KeyError:
        raise ModelError(f"unknown model {name!r}: expected a bundled name "
                         f"({', '.join(PRETRAINED)}) or a path to a model file") from None


def resolve_artifact(model: str | Path) -> Path:
    """A bundled name -> its ONNX file; anything else is taken as a path (InputError if it is not one)."""
    if not isinstance(model, (str, os.PathLike)):
        raise InputError(f"model must be a bundled name or a model file path, got {type(model).__name__}")
    if isinstance(model, str) and model in PRETRAINED:
        return PRETRAINED[model].onnx
    path = Path(model)
    if path.suffix == "" and not path.exists():
        pretrained(str(model))  # raises: neither a bundled name nor a file
    return path
