"""Train one member of the MicroExpNet family on one fold: cross-entropy, or distillation from teacher logits.

The authors' settings are the defaults: Adam 1e-4, batch 64, dropout 0.5 (keep probability 0.5),
T = 8 and lambda = 0.5 for distillation, and the recipe ``authors``: Xavier-initialised weights and
N(0, 0.5) biases (their MicroExpNet.py), the 84x84 gray crops as pixels 0..255, no normalisation.
Another ``recipe`` (train.fit.recipes) keeps every family member from collapsing to one class; a run
that collapsed anyway is marked so in metrics.json (train.fit.collapse).
"""

from __future__ import annotations

from dataclasses import replace

import torch
import torch.nn.functional as F

from edgefer.errors import ModelError
from edgefer.fileio import file_sha256
from edgefer.spec import ModelSpec
from edgefer.train.data.crops import Progress
from edgefer.train.data.folds import load_fold
from edgefer.train.fit.collapse import diagnose
from edgefer.train.fit.loop import Hooks, fit, seed_everything
from edgefer.train.fit.losses import check_hyperparameters, distillation_loss
from edgefer.train.fit.recipes import get_recipe
from edgefer.train.fit.reports import MetricsLog
from edgefer.train.fit.runs import RunPaths, check_loop, finish_run, path_text, spec_extra, start_run
from edgefer.train.fit.settings import StudentRun, run_to_dict
from edgefer.train.fit.teacher_logits import load_teacher_logits
from edgefer.train.models.registry import TEACHER, canonical_name, create_model
from edgefer.zoo import PRETRAINED


def student_name(name: str) -> str:
    """The canonical family name; the teacher and the bundled pretrained models are refused."""
    key = canonical_name(name)
    if key == TEACHER or key in PRETRAINED:
        raise ModelError(f"{name!r} is not a family member to train as a student "
                         "(the teacher trains with 'edgefer train teacher')")
    return key


def train_student(run: StudentRun, hooks: Hooks | None = None, progress: Progress | None = None) -> dict:
    """Train (or resume) the run in ``run.out``; return its final metrics (also in RUN/metrics.json)."""
    name = student_name(run.model)
    recipe = get_recipe(run.recipe)
    check_loop(run.loop, run.dropout)
    check_hyperparameters(run.temperature, run.lam)
    paths = RunPaths(run.out)
    fold = load_fold(run.data, progress)
    train, fingerprint = fold.train, {**fold.fingerprint(), "model": name, "dropout": run.dropout}
    if run.teacher_logits is not None:
        logits, _ = load_teacher_logits(run.teacher_logits, fold)
        train = replace(train, targets=logits)
        fingerprint.update(teacher_logits=file_sha256(run.teacher_logits), temperature=run.temperature,
                           lam=run.lam)
    if recipe.name != "authors":
        fingerprint["recipe"] = recipe.name
    start_run(paths, fold, run_to_dict(run))
    seed_everything(run.loop.seed)
    model = create_model(name, dropout=run.dropout)
    recipe.initialise(model)
    result = fit(model, train, fold.test, _loss(run), recipe.prepare, run.loop, paths.checkpoint, fingerprint,
                 MetricsLog(paths.metrics_log), hooks)
    verdict = diagnose(model, fold.train, recipe.prepare)
    distilled = run.teacher_logits is not None
    summary = {"kind": "student", "model": name, "run": paths.root.name, "dataset": run.data.dataset,
               "loss": "distillation" if distilled else "cross-entropy",
               "temperature": run.temperature if distilled else None, "lam": run.lam if distilled else None,
               "teacher_logits": path_text(run.teacher_logits), "seed": run.loop.seed, "recipe": recipe.name,
               "collapsed": verdict.collapsed, "collapse": verdict.to_dict()}
    accuracy = float((result.test_logits.argmax(1) == fold.test.labels).float().mean())
    spec = ModelSpec(model=f"{name}:{paths.root.name}",
                     source=f"edgefer train student ({summary['loss']}, {len(result.history)} epochs)",
                     extra=spec_extra({**fold.fingerprint(), "dataset": run.data.dataset, "epochs": len(result.history),
                                       "temperature": summary["temperature"], "lambda": summary["lam"],
                                       "test_accuracy": f"{accuracy:.4f}", "recipe": recipe.name,
                                       "collapsed": verdict.reason}))
    return finish_run(paths, model, name, spec, fold, result, summary)


def _loss(run: StudentRun):
    def loss(logits: torch.Tensor, labels: torch.Tensor, targets: torch.Tensor | None) -> torch.Tensor:
        if targets is None:
            return F.cross_entropy(logits, labels)
        return distillation_loss(logits, targets, labels, run.temperature, run.lam)

    return loss
