"""Train the Inception v3 teacher on one fold, then save its logits for every training crop.

The teacher sees the students' 84x84 gray crops resized (bilinear) to ``input_size`` (299, its
native size; 139 or 75 run much faster on a CPU) and repeated to 3 channels, pixels 0..255 as
edgefer convert feeds it (edgefer.train.models.teacher.teacher_spec). It may start from a torchvision ImageNet
state dict the user downloaded (read with ``weights_only=True``; its first BatchNorm adapts the
0..255 scale within a few steps, since batch statistics are scale-free). The logits file written
at the end (RUN/teacher_logits.safetensors) is what ``edgefer train student --teacher-logits`` reads.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import torch
import torch.nn.functional as F

from edgefer.errors import InputError, ModelError, one_line
from edgefer.fileio import file_sha256
from edgefer.train.data.crops import Progress
from edgefer.train.data.folds import FoldData, load_fold
from edgefer.train.fit.loop import Hooks, Prepare, evaluate, fit, seed_everything
from edgefer.train.fit.reports import MetricsLog
from edgefer.train.fit.runs import RunPaths, check_loop, finish_run, path_text, spec_extra, start_run
from edgefer.train.fit.settings import TeacherRun, run_to_dict
from edgefer.train.fit.teacher_logits import load_teacher_logits, save_teacher_logits
from edgefer.train.models.registry import TEACHER
from edgefer.train.models.teacher import InceptionV3, load_imagenet_weights, teacher_spec

MIN_INPUT_SIZE = 75


def teacher_input(size: int) -> Prepare:
    """uint8 crops (N, 1, 84, 84) -> float (N, 3, size, size), 0..255."""
    def prepare(inputs: torch.Tensor) -> torch.Tensor:
        x = inputs.float()
        if x.shape[-1] != size:
            x = F.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
        return x.expand(-1, 3, -1, -1).contiguous()

    return prepare


def train_teacher(run: TeacherRun, hooks: Hooks | None = None, progress: Progress | None = None) -> dict:
    """Train (or resume) the teacher run in ``run.out``; write its logits; return the final metrics."""
    check_loop(run.loop, run.dropout)
    if run.input_size < MIN_INPUT_SIZE:
        raise InputError(f"--input-size {run.input_size}: Inception v3 needs at least {MIN_INPUT_SIZE}")
    paths = RunPaths(run.out)
    fold = load_fold(run.data, progress)
    fingerprint = {**fold.fingerprint(), "model": TEACHER, "input_size": run.input_size, "dropout": run.dropout,
                   "imagenet": file_sha256(run.imagenet) if run.imagenet else None}
    start_run(paths, fold, run_to_dict(run))
    seed_everything(run.loop.seed)
    model = InceptionV3(num_classes=8, in_channels=3, dropout=run.dropout)
    if run.imagenet is not None:
        _load_imagenet(model, run.imagenet)
    prepare = teacher_input(run.input_size)
    result = fit(model, fold.train, fold.test, _cross_entropy, prepare,
                 run.loop, paths.checkpoint, fingerprint, MetricsLog(paths.metrics_log), hooks)
    summary = {"kind": "teacher", "model": TEACHER, "run": paths.root.name, "dataset": run.data.dataset,
               "input_size": run.input_size, "imagenet": path_text(run.imagenet), "seed": run.loop.seed,
               "teacher_logits": str(paths.teacher_logits)}
    extra = spec_extra({**fold.fingerprint(), "dataset": run.data.dataset, "epochs": len(result.history)})
    spec = teacher_spec(run.input_size, model=f"{TEACHER}:{paths.root.name}", source="edgefer train teacher",
                        extra=extra)
    metrics = finish_run(paths, model, TEACHER, spec, fold, result, summary)
    _write_logits(paths, model, fold, run, prepare)
    return metrics


def weights_sha256(model: torch.nn.Module) -> str:
    """A digest of the weights themselves (a safetensors file's header order varies between processes)."""
    digest = hashlib.sha256()
    for name, tensor in sorted(model.state_dict().items()):
        digest.update(name.encode() + b"\0" + tensor.detach().cpu().contiguous().numpy().tobytes())
    return digest.hexdigest()


def _cross_entropy(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
    return F.cross_entropy(logits, labels)


def _load_imagenet(model: InceptionV3, path: Path) -> None:
    if not Path(path).is_file():
        raise InputError(f"{path}: ImageNet state dict not found")
    try:
        load_imagenet_weights(model, path)
    except ModelError:
        raise  # already names the file (UnsafeModelError keeps its exit code 3)
    except ValueError as err:
        raise ModelError(str(err)) from None
    except Exception as err:  # noqa: BLE001 - torch.load's refusals (pickle, zip) have many types
        raise ModelError(f"{path}: cannot read it as a state dict with weights_only=True "
                         f"({one_line(err, typed=True)})") from None


def _write_logits(paths: RunPaths, model: InceptionV3, fold: FoldData, run: TeacherRun, prepare: Prepare) -> None:
    """Logits of every training crop, in eval mode; kept when the file already holds these weights' logits."""
    weights = weights_sha256(model)
    if paths.teacher_logits.exists():
        try:
            _, header = load_teacher_logits(paths.teacher_logits, fold)
            if header["teacher"].get("weights_sha256") == weights:
                return
        except InputError:
            pass
    logits = evaluate(model, fold.train, prepare, run.loop.eval_batch_size)[2]
    save_teacher_logits(paths.teacher_logits, logits, fold,
                        {"run": str(paths.root), "weights_sha256": weights, "input_size": run.input_size})
