"""Training recipes for the students: the authors' exact one (the default) and a robust one (issue 18).

``authors``: their code as written: pixels 0..255, Xavier-uniform weights, N(0, 0.5) biases. Measured
(tools/collapse_study.py, README "Training recipes"): fc2's random start makes the first logits large
and alike for every input, so Adam pushes each fc1 unit the same way on every input at once; a unit
pushed down dies on all of them, and v-XXS and p1-XXS (16 units fed by 3,872 features) lose all of
fc1 within a few epochs: the run predicts one class. ``robust`` starts fc2 (weights and bias) at zero,
everything else the authors': the first logits are equal, fc1's first gradients depend on each
input's label, and no member collapsed on any seed measured. No torch at import (the studies name
recipes without it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from edgefer.errors import InputError

if TYPE_CHECKING:
    import torch
    from torch import nn


@dataclass(frozen=True)
class Recipe:
    name: str
    summary: str
    zero_fc2: bool = False  # fc2 starts at zero: the first logits are equal for every input

    def initialise(self, model: nn.Module) -> None:
        """The authors' initialisation (Xavier-uniform weights, N(0, 0.5) biases), then the recipe's changes."""
        from torch import nn

        for module in model.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(module.weight)
                nn.init.normal_(module.bias, 0.0, 0.5)
        if self.zero_fc2:
            nn.init.zeros_(model.fc2.weight)
            nn.init.zeros_(model.fc2.bias)

    def prepare(self, inputs: torch.Tensor) -> torch.Tensor:
        """Crops (uint8, 0..255) as the network's input: float pixels 0..255, as the authors fed them."""
        return inputs.float()


AUTHORS = Recipe("authors", "the authors' code as written: pixels 0..255, Xavier weights, N(0, 0.5) biases")
ROBUST = Recipe("robust", "the authors' with fc2 (weights, bias) starting at zero", zero_fc2=True)
RECIPES = {r.name: r for r in (AUTHORS, ROBUST)}


def get_recipe(name: str) -> Recipe:
    try:
        return RECIPES[name.lower()]
    except KeyError:
        raise InputError(f"--recipe {name!r}: expected one of {', '.join(RECIPES)}") from None
