"""How far bf16 moves MicroExpNet's probabilities, layer by layer: why the bf16 gate is not FP16's 1e-2.

Runs each bundled model in PyTorch on the validation faces the convert gate uses, with every layer in
float32 except the chosen ones, which take bf16 weights and bf16 inputs (bf16 rounding at their input and
in their weights, as a bf16 CPU kernel has; accumulation and outputs float32). Prints the largest change of
any probability against float32 and the top-1 agreement, for all layers in bf16, for all but one, and for
each layer alone.

    python tools/bf16_layers.py [--json out.json]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np
import torch
from torch import nn

from edgefer.convert.calibration import builtin_validation_crops
from edgefer.convert.torch_backend import TorchBackend
from edgefer.runtime.base import softmax
from edgefer.zoo import PRETRAINED

MODELS = ("microexpnet-ck", "microexpnet-oulu")


class Bf16Layer(nn.Module):
    """``layer`` with its weights rounded to bf16 and its input rounded to bf16; float32 in and out."""

    def __init__(self, layer: nn.Module):
        super().__init__()
        self.layer = layer.to(torch.bfloat16)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.layer(x.to(torch.bfloat16)).float()


def with_bf16(model: nn.Module, names: set[str]) -> nn.Module:
    """A copy of ``model`` whose layers named in ``names`` run as :class:`Bf16Layer`."""
    import copy

    model = copy.deepcopy(model)
    for name in names:
        parent, _, child = name.rpartition(".")
        owner = model.get_submodule(parent) if parent else model
        setattr(owner, child, Bf16Layer(getattr(owner, child)))
    return model.eval()


def layer_study(name: str, pixels: torch.Tensor) -> dict[str, dict[str, float]]:
    """Variant -> max |dp| and top-1 agreement against float32."""
    model = TorchBackend(PRETRAINED[name].safetensors).model  # in eval mode
    layers = [n for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]
    with torch.no_grad():
        reference = model(pixels).numpy()
    variants = {"all layers": set(layers)}
    variants.update({f"all but {layer}": set(layers) - {layer} for layer in layers})
    variants.update({f"only {layer}": {layer} for layer in layers})
    results = {}
    for variant, names in variants.items():
        with torch.no_grad():
            logits = with_bf16(model, names)(pixels).numpy()
        results[variant] = {
            "max_abs_dp": float(np.abs(softmax(logits) - softmax(reference)).max()),
            "top1_agreement": float((logits.argmax(1) == reference.argmax(1)).mean()),
        }
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--json", type=Path)
    args = parser.parse_args(argv)
    pixels = torch.from_numpy(builtin_validation_crops())  # float32 (16, 1, 84, 84), C-contiguous
    report = {name: layer_study(name, pixels) for name in MODELS}
    print(f"max |dp| against float32 (top-1 agreement) on {len(pixels)} validation faces")
    for variant in report[MODELS[0]]:
        cells = "  ".join(f"{name}: {report[name][variant]['max_abs_dp']:.2e} "
                          f"({report[name][variant]['top1_agreement']:.0%})" for name in MODELS)
        print(f"  {variant:<16} {cells}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
