"""The MicroExpNet candidate family as plain data (no torch): shapes and parameter counts.

docs/authors-facts.md: variants v, p1, p2, p12 differ in conv1's stride and where max-pooling sits;
sizes M, S, XS, XXS (squeeze 1, 4, 8, 16) set the width of fc1.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

VARIANTS = ("v", "p1", "p2", "p12")
SIZES = ("m", "s", "xs", "xxs")
SQUEEZE = {"m": 1, "s": 4, "xs": 8, "xxs": 16}
#: fc1 width at squeeze 1: 768 where the flatten is 6x6x32, 256 where it is 11x11x32.
FC1_BASE = {"v": 256, "p1": 256, "p2": 768, "p12": 768}
CONV1_STRIDE = {"v": 4, "p1": 2, "p2": 4, "p12": 2}
POOL_AFTER_CONV1 = {"v": False, "p1": True, "p2": False, "p12": True}
POOL_AFTER_CONV2 = {"v": False, "p1": False, "p2": True, "p12": True}


def same_padding(size: int, kernel: int, stride: int) -> tuple[int, int]:
    """TensorFlow 'SAME' padding (before, after) for one spatial axis; the odd pixel goes after."""
    out = math.ceil(size / stride)
    total = max((out - 1) * stride + kernel - size, 0)
    return total // 2, total - total // 2


def same_output(size: int, stride: int) -> int:
    return math.ceil(size / stride)


@dataclass(frozen=True)
class StudentConfig:
    """One member of the family: conv1 8x8x16, conv2 4x4x32 (stride 2), fc1, fc2."""

    variant: str
    size: str
    input_size: int = 84
    num_classes: int = 8
    conv1: tuple[int, int] = (8, 16)  # kernel, filters
    conv2: tuple[int, int] = (4, 32)

    def __post_init__(self) -> None:
        if self.variant not in VARIANTS or self.size not in SIZES:
            raise ValueError(f"unknown family member {self.variant}-{self.size}: "
                             f"variants {VARIANTS}, sizes {SIZES}")

    @property
    def name(self) -> str:
        return f"{self.variant}-{self.size}"

    @property
    def conv1_stride(self) -> int:
        return CONV1_STRIDE[self.variant]

    @property
    def pool1(self) -> bool:
        return POOL_AFTER_CONV1[self.variant]

    @property
    def pool2(self) -> bool:
        return POOL_AFTER_CONV2[self.variant]

    @property
    def fc1_width(self) -> int:
        return FC1_BASE[self.variant] // SQUEEZE[self.size]

    def feature_sizes(self) -> list[int]:
        """Spatial size after conv1, pool1, conv2, pool2 (a stage that is absent keeps the size)."""
        s1 = same_output(self.input_size, self.conv1_stride)
        p1 = same_output(s1, 2) if self.pool1 else s1
        s2 = same_output(p1, 2)
        p2 = same_output(s2, 2) if self.pool2 else s2
        return [s1, p1, s2, p2]

    @property
    def flatten_size(self) -> int:
        return self.feature_sizes()[-1] ** 2 * self.conv2[1]

    def param_count(self) -> int:
        (k1, f1), (k2, f2) = self.conv1, self.conv2
        conv = k1 * k1 * 1 * f1 + f1 + k2 * k2 * f1 * f2 + f2
        fc = self.flatten_size * self.fc1_width + self.fc1_width
        return conv + fc + self.fc1_width * self.num_classes + self.num_classes


def parse_member(name: str) -> StudentConfig:
    """'p12-xs' -> StudentConfig('p12', 'xs')."""
    variant, _, size = name.lower().partition("-")
    return StudentConfig(variant, size)
