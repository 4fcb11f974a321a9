"""What `edgefer convert` starts from: a bundled model, a family member, or a training checkpoint."""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path

import torch
from torch import nn

from edgefer.errors import ModelError, UnsafeModelError
from edgefer.fileio import file_sha256
from edgefer.spec import RANDOM_SEED, RANDOM_SOURCE, ModelSpec
from edgefer.train.models.registry import TEACHER, canonical_name, create_model
from edgefer.train.models.teacher import teacher_spec
from edgefer.train.models.weights import load_weights
from edgefer.train.safe_load import load_torch_file
from edgefer.zoo import PRETRAINED

PICKLE_SUFFIXES = {".pt", ".pth", ".ckpt"}


@dataclass(frozen=True)
class Source:
    """A PyTorch model in eval mode, the spec its artifacts will carry, and a name for their files."""

    model: nn.Module
    spec: ModelSpec
    name: str


def load_source(model: str) -> Source:
    """A bundled name, a family/teacher name (random weights, seeded) or a .safetensors checkpoint."""
    if model in PRETRAINED:
        return _from_checkpoint(PRETRAINED[model].safetensors, model)
    path = Path(model)
    if path.suffix:
        if path.suffix.lower() in PICKLE_SUFFIXES:
            _refuse_if_unsafe(path)
        if path.suffix.lower() != ".safetensors":
            raise ModelError(f"{path}: unsupported checkpoint type {path.suffix!r}, expected a "
                             ".safetensors file written by edgefer train")
        return _from_checkpoint(path, run_name(path))
    name = canonical_name(model)
    torch.manual_seed(RANDOM_SEED)
    module = create_model(name).eval()
    origin = {"model": name, "source": RANDOM_SOURCE}
    spec = teacher_spec(**origin) if name == TEACHER else ModelSpec(**origin)
    return Source(module, spec, name)


def run_name(path: Path) -> str:
    """A training run's ``RUN/model.safetensors`` is named after its folder (``micro-f0``), any other
    checkpoint after its own file name."""
    if path.stem == "model" and path.absolute().parent.name:
        return path.absolute().parent.name
    return path.stem


def _refuse_if_unsafe(path: Path) -> None:
    """A pickle that would run code is refused as unsafe (exit 3); any other one is just not what convert reads."""
    try:
        load_torch_file(path, "a PyTorch checkpoint")
    except UnsafeModelError:
        raise
    except ModelError:
        pass


def _from_checkpoint(path: Path, name: str) -> Source:
    module, spec = load_weights(path)
    digest = file_sha256(path)
    spec = replace(spec, source=Path(path).name, source_sha256=digest)
    return Source(module.eval(), spec, name)
