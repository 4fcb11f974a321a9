"""The MicroExpNet family in PyTorch, laid out so the authors' TensorFlow weights load unchanged.

Two details make the port exact: TensorFlow's 'SAME' padding is asymmetric (the odd pixel goes
after), so convolutions pad explicitly; and fc1 reads the features flattened in H, W, C order.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from edgefer.train.models.configs import StudentConfig, same_padding


class StudentNet(nn.Module):
    """conv1 -> [pool] -> conv2 -> [pool] -> fc1 -> dropout -> fc2; input (N, 1, 84, 84) in 0..255."""

    def __init__(self, config: StudentConfig, dropout: float = 0.5):
        super().__init__()
        self.config = config
        (k1, f1), (k2, f2) = config.conv1, config.conv2
        s1, p1, _, _ = config.feature_sizes()
        self.conv1 = nn.Conv2d(1, f1, k1, stride=config.conv1_stride)
        self.conv2 = nn.Conv2d(f1, f2, k2, stride=2)
        self.pad1 = _pad_arg(same_padding(config.input_size, k1, config.conv1_stride))
        self.pad2 = _pad_arg(same_padding(p1, k2, 2))
        # TF 'SAME' max-pooling with a 2x2/2 window only ever pads after: ceil_mode is exactly that.
        self.pool1 = nn.MaxPool2d(2, 2, ceil_mode=True) if config.pool1 else nn.Identity()
        self.pool2 = nn.MaxPool2d(2, 2, ceil_mode=True) if config.pool2 else nn.Identity()
        self.fc1 = nn.Linear(config.flatten_size, config.fc1_width)
        self.dropout = nn.Dropout(dropout)
        self.fc2 = nn.Linear(config.fc1_width, config.num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.pool1(F.relu(self.conv1(_pad(x, self.pad1))))
        x = self.pool2(F.relu(self.conv2(_pad(x, self.pad2))))
        x = x.permute(0, 2, 3, 1).flatten(1)  # H, W, C order, as the authors' reshape
        x = self.dropout(F.relu(self.fc1(x)))
        return self.fc2(x)


def _pad_arg(pad: tuple[int, int]) -> tuple[int, int, int, int] | None:
    before, after = pad
    return (before, after, before, after) if before or after else None


def _pad(x: torch.Tensor, pad: tuple[int, int, int, int] | None) -> torch.Tensor:
    return F.pad(x, pad) if pad else x


#: TensorFlow checkpoint variable -> (module parameter, how to transpose from TF layout)
TF_VARIABLES = {
    "wc1": ("conv1.weight", (3, 2, 0, 1)),  # HWIO -> OIHW
    "bc1": ("conv1.bias", None),
    "wc2": ("conv2.weight", (3, 2, 0, 1)),
    "bc2": ("conv2.bias", None),
    "wfc": ("fc1.weight", (1, 0)),  # [in, out] -> [out, in]
    "bfc": ("fc1.bias", None),
    "wo": ("fc2.weight", (1, 0)),
    "bo": ("fc2.bias", None),
}


def state_dict_from_tf(variables: Mapping[str, np.ndarray]) -> dict[str, torch.Tensor]:
    """The authors' checkpoint variables (TF layout) as a StudentNet state dict."""
    missing = sorted(set(TF_VARIABLES) - set(variables))
    if missing:
        raise ValueError(f"TensorFlow variables missing: {missing}")
    state = {}
    for tf_name, (name, axes) in TF_VARIABLES.items():
        array = np.asarray(variables[tf_name], dtype=np.float32)
        state[name] = torch.from_numpy(np.ascontiguousarray(array.transpose(axes) if axes else array))
    return state
