"""The knowledge-distillation teacher: Inception v3 (Szegedy et al. 2016) in PyTorch.

The architecture is torchvision's `inception_v3` without the auxiliary head and with
`transform_input=False`: the model does no input normalisation of its own. Module and parameter
names match torchvision's (Conv2d_1a_3x3, Mixed_5b, ..., fc) so an ImageNet state dict saved for
torchvision loads with `load_imagenet_weights`. The channel plan lives in
`edgefer.train.models.teacher_params`, which also counts parameters without torch.

Input: a float tensor [N, in_channels, 299, 299]; any size down to 75x75 also runs. torchvision's
ImageNet weights (ported from TensorFlow) expect pixels scaled to [-1, 1], i.e. x / 127.5 - 1.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

from edgefer.spec import ModelSpec, authors_preprocessing
from edgefer.train.models.teacher_params import (
    MIXED_BLOCKS,
    NUM_FEATURES,
    POOL_AFTER,
    BlockSpec,
    ConvSpec,
    block_convs,
    stem_convs,
)
from edgefer.train.safe_load import load_torch_file

#: Inception v3's native input size: the teacher sees the face crop as a 3-channel 299x299 image.
TEACHER_INPUT_SIZE = 299
FIRST_CONV = "Conv2d_1a_3x3.conv.weight"
FC_KEYS = ("fc.weight", "fc.bias")
_BN_COUNTER = ".num_batches_tracked"


def teacher_spec(input_size: int = TEACHER_INPUT_SIZE, **fields: object) -> ModelSpec:
    """The spec of every teacher artifact: the authors' crop at ``input_size``, gray repeated to 3 channels,
    pixels 0..255; ``fields`` (model, source, extra...) fill in the rest."""
    return ModelSpec(input_size=input_size, channels=3, preprocessing=authors_preprocessing(input_size, 3),
                     **fields)


class BasicConv2d(nn.Module):
    """Conv without bias, BatchNorm2d(eps=0.001), ReLU: torchvision's BasicConv2d."""

    def __init__(self, spec: ConvSpec):
        super().__init__()
        self.conv = nn.Conv2d(
            spec.in_channels,
            spec.out_channels,
            spec.kernel_size,
            stride=spec.stride,
            padding=spec.padding,
            bias=False,
        )
        self.bn = nn.BatchNorm2d(spec.out_channels, eps=0.001)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.relu(self.bn(self.conv(x)), inplace=True)


class _Mixed(nn.Module):
    """A Mixed_* block: one BasicConv2d child per ConvSpec of the block, named as in torchvision."""

    def __init__(self, block: BlockSpec):
        super().__init__()
        for spec in block_convs(block):
            self.add_module(spec.name, BasicConv2d(spec))

    def _chain(self, x: torch.Tensor, *names: str) -> torch.Tensor:
        for name in names:
            x = self.get_submodule(name)(x)
        return x

    def _pool_branch(self, x: torch.Tensor) -> torch.Tensor:
        return self.branch_pool(F.avg_pool2d(x, kernel_size=3, stride=1, padding=1))


class InceptionA(_Mixed):
    """35x35 block: 1x1, 5x5, double 3x3 and pooled 1x1 branches."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self._chain(x, "branch5x5_1", "branch5x5_2"),
                self._chain(x, "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"),
                self._pool_branch(x),
            ],
            1,
        )


class InceptionB(_Mixed):
    """35x35 -> 17x17 reduction: strided 3x3, strided double 3x3 and a max-pool."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch3x3(x),
                self._chain(x, "branch3x3dbl_1", "branch3x3dbl_2", "branch3x3dbl_3"),
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            1,
        )


class InceptionC(_Mixed):
    """17x17 block with factorised 1x7 / 7x1 convolutions."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self.branch1x1(x),
                self._chain(x, "branch7x7_1", "branch7x7_2", "branch7x7_3"),
                self._chain(x, *(f"branch7x7dbl_{i}" for i in range(1, 6))),
                self._pool_branch(x),
            ],
            1,
        )


class InceptionD(_Mixed):
    """17x17 -> 8x8 reduction: strided 3x3, 7x7-then-strided-3x3 and a max-pool."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.cat(
            [
                self._chain(x, "branch3x3_1", "branch3x3_2"),
                self._chain(x, *(f"branch7x7x3_{i}" for i in range(1, 5))),
                F.max_pool2d(x, kernel_size=3, stride=2),
            ],
            1,
        )


class InceptionE(_Mixed):
    """8x8 block whose 3x3 branches end in parallel 1x3 and 3x1 halves."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b3 = self.branch3x3_1(x)
        d3 = self._chain(x, "branch3x3dbl_1", "branch3x3dbl_2")
        return torch.cat(
            [
                self.branch1x1(x),
                self.branch3x3_2a(b3),
                self.branch3x3_2b(b3),
                self.branch3x3dbl_3a(d3),
                self.branch3x3dbl_3b(d3),
                self._pool_branch(x),
            ],
            1,
        )


BLOCK_TYPES: dict[str, type[_Mixed]] = {
    "A": InceptionA,
    "B": InceptionB,
    "C": InceptionC,
    "D": InceptionD,
    "E": InceptionE,
}


class InceptionV3(nn.Module):
    """torchvision's Inception v3 without AuxLogits: [N, in_channels, H, W] -> [N, num_classes] logits.

    H and W are nominally 299 and must be at least 75. No input normalisation happens inside.
    """

    def __init__(
        self,
        num_classes: int = 8,
        in_channels: int = 3,
        dropout: float = 0.5,
        *,
        transform_input: bool = False,
    ):
        super().__init__()
        if transform_input:
            raise ValueError("InceptionV3 supports only transform_input=False: normalise inputs beforehand")
        self.num_classes = num_classes
        self.in_channels = in_channels
        self._stages: list[str] = []
        for spec in stem_convs(in_channels):
            self._add_stage(spec.name, BasicConv2d(spec))
            if spec.name in POOL_AFTER:
                self._add_stage(f"maxpool{POOL_AFTER.index(spec.name) + 1}", nn.MaxPool2d(3, stride=2))
        for block in MIXED_BLOCKS:
            self._add_stage(block.name, BLOCK_TYPES[block.kind](block))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.dropout = nn.Dropout(p=dropout)
        self.fc = nn.Linear(NUM_FEATURES, num_classes)
        self.reset_parameters()

    def _add_stage(self, name: str, module: nn.Module) -> None:
        self.add_module(name, module)
        self._stages.append(name)

    def reset_parameters(self) -> None:
        """torchvision's init: truncated normal (std 0.1, +-2) for conv/fc weights, BN to 1 and 0."""
        for module in self.modules():
            if isinstance(module, (nn.Conv2d, nn.Linear)):
                nn.init.trunc_normal_(module.weight, mean=0.0, std=0.1, a=-2.0, b=2.0)
            elif isinstance(module, nn.BatchNorm2d):
                nn.init.ones_(module.weight)
                nn.init.zeros_(module.bias)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The globally average-pooled Mixed_7c output, [N, 2048]."""
        for name in self._stages:
            x = self.get_submodule(name)(x)
        return torch.flatten(self.avgpool(x), 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.dropout(self.forward_features(x)))


def load_imagenet_weights(model: InceptionV3, path: str | os.PathLike[str]) -> list[str]:
    """Load a torchvision `inception_v3` ImageNet state dict (.pth/.pt, or .safetensors) into `model`.

    AuxLogits.* is dropped, and fc.* too unless its shape matches the model's classifier. For a
    1-channel model Conv2d_1a_3x3's weights are summed over the file's input channels, which is
    exact for a gray image copied to RGB. Raises ValueError naming the file and the missing,
    unexpected or mis-shaped keys if it does not fit.
    Returns the model's keys left as initialised (fc.* when dropped; BN num_batches_tracked excluded).
    """
    path = Path(path)
    state = _adapt_state_dict(_read_state_dict(path), model)
    _check_fits(state, model, path)
    model.load_state_dict(state, strict=False)
    return [key for key in model.state_dict() if key not in state and not key.endswith(_BN_COUNTER)]


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    if path.suffix == ".safetensors":
        from safetensors.torch import load_file

        state = load_file(str(path), device="cpu")
    else:
        state = load_torch_file(path, "a PyTorch state dict (.pth)")
    if not isinstance(state, Mapping) or not all(isinstance(v, torch.Tensor) for v in state.values()):
        raise ValueError(f"{path} does not hold a state dict of tensors (got {type(state).__name__})")
    return dict(state)


def _adapt_state_dict(state: dict[str, torch.Tensor], model: InceptionV3) -> dict[str, torch.Tensor]:
    """Drop AuxLogits.* and a classifier of the wrong size; fold RGB conv weights for 1 channel."""
    own = model.state_dict()
    state = {k: v for k, v in state.items() if not k.startswith("AuxLogits.")}
    if not all(k in state and state[k].shape == own[k].shape for k in FC_KEYS):
        state = {k: v for k, v in state.items() if not k.startswith("fc.")}
    first = state.get(FIRST_CONV)
    if model.in_channels == 1 and first is not None and first.ndim == 4 and first.shape[1] != 1:
        state[FIRST_CONV] = first.sum(dim=1, keepdim=True)
    return state


def _optional_key(key: str) -> bool:
    """Keys a file may lack: the classifier (re-initialised) and BN batch counters."""
    return key in FC_KEYS or key.endswith(_BN_COUNTER)


def _check_fits(state: Mapping[str, torch.Tensor], model: InceptionV3, path: Path) -> None:
    own = model.state_dict()
    missing = [k for k in own if k not in state and not _optional_key(k)]
    unexpected = [k for k in state if k not in own]
    mis_shaped = [
        f"{k} {tuple(v.shape)} vs {tuple(own[k].shape)}"
        for k, v in state.items()
        if k in own and v.shape != own[k].shape
    ]
    problems = [
        f"{what}: {_preview(keys)}"
        for what, keys in (
            ("missing keys", missing),
            ("unexpected keys", unexpected),
            ("shape mismatches (file vs model)", mis_shaped),
        )
        if keys
    ]
    if problems:
        raise ValueError(
            f"{path} is not a torchvision inception_v3 state dict that fits "
            f"InceptionV3(num_classes={model.num_classes}, in_channels={model.in_channels}): "
            + "; ".join(problems)
        )


def _preview(keys: list[str], limit: int = 8) -> str:
    shown = ", ".join(keys[:limit])
    return f"{shown}, ... ({len(keys)} in all)" if len(keys) > limit else shown
