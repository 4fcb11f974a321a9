"""A run that learned nothing: its training-set predictions are (almost) all one class, or fc1 is all dead.

Such a run's test accuracy is the share of the majority class, not a trained model's figure: the
trainer marks it ``collapsed`` in metrics.json (with this evidence) and the studies count it apart.
A fc1 unit is dead when its pre-activation is <= 0 on every training crop: its ReLU passes no
gradient, so it never comes back (issue 18: v-XXS and p1-XXS with the authors' recipe).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
from torch import nn

from edgefer.spec import LABELS
from edgefer.train.fit.loop import Prepare, TrainData

#: Predictions on the training set this concentrated on one class mean the run collapsed.
MAJORITY_LIMIT = 0.95


@dataclass(frozen=True)
class Diagnosis:
    collapsed: bool
    majority_share: float  # share of training crops predicted as the most predicted class
    majority_class: int
    dead_fc1: float  # share of fc1 units whose pre-activation is <= 0 on every training crop
    fc1_units: int
    reason: str | None = None

    def to_dict(self) -> dict[str, object]:
        return {k: round(v, 4) if isinstance(v, float) else v for k, v in asdict(self).items()}


def fc1_preactivations(model: nn.Module, inputs: torch.Tensor) -> torch.Tensor:
    """fc1's outputs before the ReLU, (N, units), in eval mode."""
    return _forward_fc1(model, inputs)[1]


def dead_units(model: nn.Module, data: TrainData, prepare: Prepare, batch_size: int = 256) -> float:
    """The share of fc1 units that are <= 0 on every item of ``data``."""
    return 1.0 - float(_logits_and_alive(model, data, prepare, batch_size)[1].float().mean())


def diagnose(model: nn.Module, data: TrainData, prepare: Prepare, batch_size: int = 256) -> Diagnosis:
    """Is the model collapsed on its training set? One eval-mode pass gives both its logits and fc1's units."""
    logits, alive = _logits_and_alive(model, data, prepare, batch_size)
    counts = torch.bincount(logits.argmax(1), minlength=logits.shape[1])
    share, top = float(counts.max()) / max(len(logits), 1), int(counts.argmax())
    dead = 1.0 - float(alive.float().mean())
    reasons = []
    if dead == 1.0:
        reasons.append(f"all {model.fc1.out_features} fc1 units dead")
    if share >= MAJORITY_LIMIT:
        label = LABELS[top] if logits.shape[1] == len(LABELS) else f"class {top}"
        reasons.append(f"{share:.1%} of the training crops predicted as {label}")
    return Diagnosis(bool(reasons), share, top, dead, model.fc1.out_features, "; ".join(reasons) or None)


def _logits_and_alive(model: nn.Module, data: TrainData, prepare: Prepare,
                      batch_size: int) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits of ``data`` in eval mode and, from the same forward pass, which fc1 units are > 0 on some
    item."""
    logits, alive = [], []
    for i in range(0, len(data), batch_size):
        batch_logits, preactivations = _forward_fc1(model, prepare(data.inputs[i:i + batch_size]))
        logits.append(batch_logits)
        alive.append((preactivations > 0).any(0))
    return torch.cat(logits), torch.stack(alive).any(0)


def _forward_fc1(model: nn.Module, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """The logits of ``inputs`` and fc1's outputs before the ReLU, from one forward pass in eval mode without
    gradients; the model's training mode is restored after."""
    captured: list[torch.Tensor] = []
    handle = model.fc1.register_forward_hook(lambda module, args, output: captured.append(output.detach()))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            logits = model(inputs)
    finally:
        handle.remove()
        model.train(was_training)
    return logits, captured[0]
