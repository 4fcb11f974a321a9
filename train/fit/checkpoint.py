"""Training checkpoints: everything a killed run needs to go on exactly as if it had never stopped.

A checkpoint holds the model, the optimiser, the epoch and the step within it, the state of the
batch-order generator at the start of that epoch, the python / numpy / torch RNG states, the
epoch's running sums, the metrics history and the run's fingerprint (what it trains on and how).
It is written with torch.save from tensors and plain Python values only, atomically (temp file,
fsync, rename), and read back with ``weights_only=True``.
"""

from __future__ import annotations

import os
import random
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import torch

from edgefer.errors import ModelError, UnsafeModelError
from edgefer.fileio import atomic_path
from edgefer.train.safe_load import load_torch_file

FORMAT = 1


@dataclass
class TrainState:
    epoch: int  # epochs completed
    step: int  # optimiser steps done in the epoch after those (0: at an epoch boundary)
    model: dict[str, torch.Tensor]
    optimizer: dict
    rng: dict
    running: dict[str, float] = field(default_factory=dict)
    history: list[dict] = field(default_factory=list)
    fingerprint: dict[str, object] = field(default_factory=dict)


def capture_rng(batch_generator_state: torch.Tensor) -> dict:
    """The global RNG states, and the batch-order generator's state as given."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    version, internal, gauss = random.getstate()
    return {
        "torch": torch.get_rng_state(),
        "batch": batch_generator_state.clone(),
        "numpy": {"name": name, "keys": torch.from_numpy(keys.astype(np.int64)), "pos": int(pos),
                  "has_gauss": int(has_gauss), "cached": float(cached)},
        "python": [version, list(internal), gauss],
    }


def restore_rng(rng: dict) -> torch.Tensor:
    """Set the global RNG states; return the batch-order generator's state to set on its generator."""
    torch.set_rng_state(rng["torch"])
    n = rng["numpy"]
    np.random.set_state((n["name"], n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["cached"]))
    version, internal, gauss = rng["python"]
    random.setstate((version, tuple(internal), gauss))
    return rng["batch"]


def save_state(path: str | os.PathLike, state: TrainState) -> Path:
    with atomic_path(path) as tmp:
        torch.save({"format": FORMAT, **asdict(state)}, tmp)
    return Path(path)


def load_state(path: str | os.PathLike) -> TrainState | None:
    """The checkpoint at ``path``, None if there is none; ModelError if it cannot be read."""
    path = Path(path)
    if not path.exists():
        return None
    try:
        data = load_torch_file(path, "an edgefer training checkpoint")
    except UnsafeModelError:
        raise
    except ModelError as err:
        raise ModelError(f"unreadable training checkpoint: {err}; delete it to start the run over") from None
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise ModelError(f"{path}: not an edgefer training checkpoint of format {FORMAT}")
    data.pop("format")
    return TrainState(**data)


def remove_partial_files(path: str | os.PathLike) -> None:
    """Delete the temp files a killed run left in the run folder of checkpoint ``path``: those of the
    checkpoint and of every other file the run writes atomically (names '.NAME.*.tmp')."""
    for tmp in Path(path).parent.glob(".*.*.tmp"):
        tmp.unlink(missing_ok=True)
