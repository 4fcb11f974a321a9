"""Model weights on disk: safetensors with the model's name and spec in its metadata."""

from __future__ import annotations

import os
from pathlib import Path

import torch
from torch import nn

from edgefer.artifact import SAFETENSORS_MODEL_KEY
from edgefer.errors import ModelError
from edgefer.fileio import atomic_path
from edgefer.runtime.base import check_model_file
from edgefer.spec import METADATA_KEY, ModelSpec


def save_weights(model: nn.Module, path: str | os.PathLike, name: str, spec: ModelSpec) -> Path:
    """Write the model's weights atomically, with ``name`` and ``spec`` in the header."""
    from safetensors.torch import save_file

    state = {k: v.detach().contiguous().cpu() for k, v in model.state_dict().items()}
    with atomic_path(path) as tmp:
        save_file(state, str(tmp), metadata={SAFETENSORS_MODEL_KEY: name, METADATA_KEY: spec.to_json()})
    return Path(path)


def read_weights(path: str | os.PathLike) -> tuple[dict[str, torch.Tensor], dict[str, str]]:
    """Tensors and header metadata of a safetensors file, refusing broken files with a ModelError."""
    from safetensors import SafetensorError, safe_open

    path = check_model_file(path, "a safetensors weights file")
    try:
        with safe_open(str(path), framework="pt") as handle:
            metadata = handle.metadata() or {}
            tensors = {key: handle.get_tensor(key) for key in handle.keys()}
    except (SafetensorError, OSError, ValueError) as err:
        raise ModelError(f"{path}: not a readable safetensors file ({err})") from None
    return tensors, metadata


def load_weights(path: str | os.PathLike, name: str | None = None) -> tuple[nn.Module, ModelSpec]:
    """Build the model named in the file's header (or ``name``) and load the weights into it."""
    from edgefer.train.models.registry import create_model

    tensors, metadata = read_weights(path)
    name = name or metadata.get(SAFETENSORS_MODEL_KEY)
    if not name:
        raise ModelError(f"{path}: no model name in the safetensors header ({SAFETENSORS_MODEL_KEY}); pass name=")
    spec = ModelSpec.from_json(metadata[METADATA_KEY]) if METADATA_KEY in metadata else ModelSpec(model=name)
    model = create_model(name, num_classes=len(spec.labels))
    load_state(model, tensors, path)
    return model.eval(), spec


def load_state(model: nn.Module, tensors: dict[str, torch.Tensor], source: str | os.PathLike) -> None:
    """Load tensors into model, refusing wrong names, shapes and non-finite values with a ModelError."""
    expected = model.state_dict()
    missing = sorted(set(expected) - set(tensors))
    unexpected = sorted(set(tensors) - set(expected))
    if missing or unexpected:
        raise ModelError(f"{source}: weights do not fit {type(model).__name__} "
                         f"(missing {missing[:4]}, unexpected {unexpected[:4]})")
    for key, tensor in tensors.items():
        if tensor.shape != expected[key].shape:
            raise ModelError(f"{source}: {key} has shape {tuple(tensor.shape)}, "
                             f"expected {tuple(expected[key].shape)}")
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise ModelError(f"{source}: {key} holds NaN or infinite values")
    model.load_state_dict(tensors)


def load_pretrained(name: str) -> tuple[nn.Module, ModelSpec]:
    """A bundled pretrained model (``microexpnet-ck``, ``microexpnet-oulu``) as a torch module."""
    from edgefer.zoo import pretrained

    return load_weights(pretrained(name).safetensors)
