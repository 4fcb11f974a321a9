"""The training losses: cross-entropy, and the authors' knowledge-distillation loss (slides, eq. 2).

L = lam * H(softmax(t / T), softmax(s / T)) + (1 - lam) * H(y, softmax(s)), each H averaged over
the batch. As in the authors' MicroExpNet.py, the soft term is not multiplied by T**2 (Hinton et
al. suggest it; the paper's loss does not have it). The authors' defaults are T = 8, lam = 0.5.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F

from edgefer.errors import InputError
from edgefer.train.fit.settings import DEFAULT_LAMBDA, DEFAULT_TEMPERATURE


def soft_cross_entropy(target_probs: torch.Tensor, logits: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of H(p, softmax(logits)) = -sum_i p_i log softmax(logits)_i."""
    return -(target_probs * F.log_softmax(logits, dim=1)).sum(dim=1).mean()


def distillation_loss(student_logits: torch.Tensor, teacher_logits: torch.Tensor, labels: torch.Tensor,
                      temperature: float = DEFAULT_TEMPERATURE, lam: float = DEFAULT_LAMBDA) -> torch.Tensor:
    soft = soft_cross_entropy(F.softmax(teacher_logits / temperature, dim=1), student_logits / temperature)
    hard = F.cross_entropy(student_logits, labels)
    return lam * soft + (1.0 - lam) * hard


def check_hyperparameters(temperature: float, lam: float) -> None:
    if not temperature > 0:
        raise InputError(f"--temperature {temperature}: must be > 0")
    if not 0.0 <= lam <= 1.0:
        raise InputError(f"--lam {lam}: must be within 0..1")
