"""The teacher's logits for every training crop of one fold: computed once, reused by every student.

A safetensors file with one tensor ``logits`` (n_images * 8, classes), in the order of the
``sample_ids`` in its header (each image's 8 crops consecutive), and the data fingerprint and split
it belongs to. A student refuses a file made for another dataset, preprocessing, split or fold.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch

from edgefer.errors import InputError
from edgefer.fileio import atomic_path
from edgefer.train.data.folds import FoldData

METADATA_KEY = "edgefer.teacher_logits"
FORMAT = 1


def save_teacher_logits(path: str | os.PathLike, logits: torch.Tensor, fold: FoldData,
                        teacher: dict[str, object]) -> Path:
    from safetensors.torch import save_file

    header = {"format": FORMAT, **fold.fingerprint(), "sample_ids": list(fold.train_ids),
              "crops_per_sample": fold.crops.crops_per_sample, "teacher": teacher}
    with atomic_path(path) as tmp:
        save_file({"logits": logits.detach().float().contiguous()}, str(tmp),
                  metadata={METADATA_KEY: json.dumps(header)})
    return Path(path)


def load_teacher_logits(path: str | os.PathLike, fold: FoldData) -> tuple[torch.Tensor, dict]:
    """Logits aligned with ``fold.train`` (crop by crop), and the file's header."""
    logits, header = _read(Path(path))
    _check_matches(Path(path), header, fold)
    per = header["crops_per_sample"]
    row_of = {sample_id: i for i, sample_id in enumerate(header["sample_ids"])}
    rows = torch.tensor([row_of[s] * per + c for s in fold.train_ids for c in range(per)])
    return logits[rows], header


def _read(path: Path) -> tuple[torch.Tensor, dict]:
    from safetensors import SafetensorError, safe_open

    if not path.is_file():
        raise InputError(f"{path}: teacher logits file not found (edgefer train teacher writes it)")
    try:
        with safe_open(str(path), framework="pt") as handle:
            header = json.loads((handle.metadata() or {})[METADATA_KEY])
            logits = handle.get_tensor("logits")
    except (SafetensorError, OSError, ValueError, KeyError) as err:
        raise InputError(f"{path}: not a teacher logits file written by edgefer train teacher ({err})") from None
    if header.get("format") != FORMAT or logits.ndim != 2 or not torch.isfinite(logits).all():
        raise InputError(f"{path}: teacher logits file of an unknown format or with non-finite values")
    if logits.shape[0] != len(header["sample_ids"]) * header["crops_per_sample"]:
        raise InputError(f"{path}: {logits.shape[0]} rows of logits for {len(header['sample_ids'])} images")
    return logits, header


def _check_matches(path: Path, header: dict, fold: FoldData) -> None:
    mine = fold.fingerprint()
    if header["data"] != mine["data"]:
        raise InputError(f"{path}: teacher logits of another dataset, labelling or preprocessing "
                         f"(data {header['data'][:12]} here {mine['data'][:12]})")
    keys = ("split", "folds", "fold", "split_seed")
    if any(header[k] != mine[k] for k in keys):
        raise InputError(f"{path}: teacher logits of fold {header['fold']} of a {header['folds']}-fold "
                         f"{header['split']} split (seed {header['split_seed']}); this run trains fold "
                         f"{mine['fold']} of a {mine['folds']}-fold {mine['split']} split (seed {mine['split_seed']})")
    if sorted(header["sample_ids"]) != sorted(fold.train_ids) or header["crops_per_sample"] != \
            fold.crops.crops_per_sample:
        raise InputError(f"{path}: teacher logits do not cover exactly this fold's training images")


