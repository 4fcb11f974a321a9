"""The Inception v3 teacher's channel plan and exact parameter count, in pure Python (no torch).

This is the one place the architecture's convolutions are written down: `edgefer.train.models.teacher`
builds its torch modules from these tables, and a CLI can report the teacher's size from them
without torch installed. The plan is torchvision's `inception_v3` without the auxiliary head.
"""

from __future__ import annotations

from typing import NamedTuple

#: Channels after Mixed_7c, the width of the global-pooled feature vector that fc reads.
NUM_FEATURES = 2048


class ConvSpec(NamedTuple):
    """One BasicConv2d: conv (no bias) + BatchNorm2d(eps=0.001) + ReLU, named as in torchvision."""

    name: str
    in_channels: int
    out_channels: int
    kernel_size: tuple[int, int]
    stride: int = 1
    padding: tuple[int, int] = (0, 0)

    @property
    def param_count(self) -> int:
        """Conv weights plus BN gamma and beta (running statistics are buffers, not parameters)."""
        kh, kw = self.kernel_size
        return self.out_channels * self.in_channels * kh * kw + 2 * self.out_channels


class BlockSpec(NamedTuple):
    """One Mixed_* block: its kind (A..E), input channels and kind-specific width (or None)."""

    name: str
    kind: str
    in_channels: int
    width: int | None = None  # pool_features for A, channels_7x7 for C


def _k(size: int | tuple[int, int]) -> tuple[int, int]:
    return (size, size) if isinstance(size, int) else size


def _conv(
    name: str, cin: int, cout: int, k: int | tuple[int, int], stride: int = 1, pad: int | tuple[int, int] = 0
) -> ConvSpec:
    return ConvSpec(name, cin, cout, _k(k), stride, _k(pad))


def stem_convs(in_channels: int = 3) -> tuple[ConvSpec, ...]:
    """Conv2d_1a_3x3 .. Conv2d_4a_3x3; max-pools (3x3, stride 2) follow 2b and 4a."""
    return (
        _conv("Conv2d_1a_3x3", in_channels, 32, 3, stride=2),
        _conv("Conv2d_2a_3x3", 32, 32, 3),
        _conv("Conv2d_2b_3x3", 32, 64, 3, pad=1),
        _conv("Conv2d_3b_1x1", 64, 80, 1),
        _conv("Conv2d_4a_3x3", 80, 192, 3),
    )


#: Stem convolutions that a 3x3/2 max-pool follows.
POOL_AFTER = ("Conv2d_2b_3x3", "Conv2d_4a_3x3")


def _inception_a(cin: int, pool_features: int) -> tuple[ConvSpec, ...]:
    return (
        _conv("branch1x1", cin, 64, 1),
        _conv("branch5x5_1", cin, 48, 1),
        _conv("branch5x5_2", 48, 64, 5, pad=2),
        _conv("branch3x3dbl_1", cin, 64, 1),
        _conv("branch3x3dbl_2", 64, 96, 3, pad=1),
        _conv("branch3x3dbl_3", 96, 96, 3, pad=1),
        _conv("branch_pool", cin, pool_features, 1),
    )


def _inception_b(cin: int) -> tuple[ConvSpec, ...]:
    return (
        _conv("branch3x3", cin, 384, 3, stride=2),
        _conv("branch3x3dbl_1", cin, 64, 1),
        _conv("branch3x3dbl_2", 64, 96, 3, pad=1),
        _conv("branch3x3dbl_3", 96, 96, 3, stride=2),
    )


def _inception_c(cin: int, c7: int) -> tuple[ConvSpec, ...]:
    return (
        _conv("branch1x1", cin, 192, 1),
        _conv("branch7x7_1", cin, c7, 1),
        _conv("branch7x7_2", c7, c7, (1, 7), pad=(0, 3)),
        _conv("branch7x7_3", c7, 192, (7, 1), pad=(3, 0)),
        _conv("branch7x7dbl_1", cin, c7, 1),
        _conv("branch7x7dbl_2", c7, c7, (7, 1), pad=(3, 0)),
        _conv("branch7x7dbl_3", c7, c7, (1, 7), pad=(0, 3)),
        _conv("branch7x7dbl_4", c7, c7, (7, 1), pad=(3, 0)),
        _conv("branch7x7dbl_5", c7, 192, (1, 7), pad=(0, 3)),
        _conv("branch_pool", cin, 192, 1),
    )


def _inception_d(cin: int) -> tuple[ConvSpec, ...]:
    return (
        _conv("branch3x3_1", cin, 192, 1),
        _conv("branch3x3_2", 192, 320, 3, stride=2),
        _conv("branch7x7x3_1", cin, 192, 1),
        _conv("branch7x7x3_2", 192, 192, (1, 7), pad=(0, 3)),
        _conv("branch7x7x3_3", 192, 192, (7, 1), pad=(3, 0)),
        _conv("branch7x7x3_4", 192, 192, 3, stride=2),
    )


def _inception_e(cin: int) -> tuple[ConvSpec, ...]:
    return (
        _conv("branch1x1", cin, 320, 1),
        _conv("branch3x3_1", cin, 384, 1),
        _conv("branch3x3_2a", 384, 384, (1, 3), pad=(0, 1)),
        _conv("branch3x3_2b", 384, 384, (3, 1), pad=(1, 0)),
        _conv("branch3x3dbl_1", cin, 448, 1),
        _conv("branch3x3dbl_2", 448, 384, 3, pad=1),
        _conv("branch3x3dbl_3a", 384, 384, (1, 3), pad=(0, 1)),
        _conv("branch3x3dbl_3b", 384, 384, (3, 1), pad=(1, 0)),
        _conv("branch_pool", cin, 192, 1),
    )


#: The Mixed_* blocks in order: torchvision's Inception3 without AuxLogits.
MIXED_BLOCKS: tuple[BlockSpec, ...] = (
    BlockSpec("Mixed_5b", "A", 192, 32),
    BlockSpec("Mixed_5c", "A", 256, 64),
    BlockSpec("Mixed_5d", "A", 288, 64),
    BlockSpec("Mixed_6a", "B", 288),
    BlockSpec("Mixed_6b", "C", 768, 128),
    BlockSpec("Mixed_6c", "C", 768, 160),
    BlockSpec("Mixed_6d", "C", 768, 160),
    BlockSpec("Mixed_6e", "C", 768, 192),
    BlockSpec("Mixed_7a", "D", 768),
    BlockSpec("Mixed_7b", "E", 1280),
    BlockSpec("Mixed_7c", "E", 2048),
)


def block_convs(block: BlockSpec) -> tuple[ConvSpec, ...]:
    """The BasicConv2d layers inside one Mixed_* block, with their torchvision names."""
    if block.kind == "A":
        return _inception_a(block.in_channels, _width(block))
    if block.kind == "B":
        return _inception_b(block.in_channels)
    if block.kind == "C":
        return _inception_c(block.in_channels, _width(block))
    if block.kind == "D":
        return _inception_d(block.in_channels)
    if block.kind == "E":
        return _inception_e(block.in_channels)
    raise ValueError(f"unknown Inception block kind {block.kind!r} in {block.name}")


def _width(block: BlockSpec) -> int:
    if block.width is None:
        raise ValueError(f"Inception{block.kind} block {block.name} needs a width")
    return block.width


def block_out_channels(block: BlockSpec) -> int:
    """Channels a block outputs: its branches concatenated (B and D also pass the max-pool through)."""
    convs = {conv.name: conv.out_channels for conv in block_convs(block)}
    if block.kind == "A":
        return convs["branch1x1"] + convs["branch5x5_2"] + convs["branch3x3dbl_3"] + convs["branch_pool"]
    if block.kind == "B":
        return convs["branch3x3"] + convs["branch3x3dbl_3"] + block.in_channels
    if block.kind == "C":
        return convs["branch1x1"] + convs["branch7x7_3"] + convs["branch7x7dbl_5"] + convs["branch_pool"]
    if block.kind == "D":
        return convs["branch3x3_2"] + convs["branch7x7x3_4"] + block.in_channels
    # E: the 3x3 branches split into a 1x3 and a 3x1 half that are concatenated
    return (
        convs["branch1x1"]
        + convs["branch3x3_2a"]
        + convs["branch3x3_2b"]
        + convs["branch3x3dbl_3a"]
        + convs["branch3x3dbl_3b"]
        + convs["branch_pool"]
    )


def check_plan() -> None:
    """Raise ValueError unless each block's input width is what the layer before it outputs."""
    channels = stem_convs()[-1].out_channels
    for block in MIXED_BLOCKS:
        if block.in_channels != channels:
            raise ValueError(f"{block.name} expects {block.in_channels} channels, gets {channels}")
        channels = block_out_channels(block)
    if channels != NUM_FEATURES:
        raise ValueError(f"the last block outputs {channels} channels, fc expects {NUM_FEATURES}")


def inception_v3_param_count(num_classes: int = 8, in_channels: int = 3) -> int:
    """Exact trainable parameters of `InceptionV3(num_classes, in_channels)` (no BN running stats).

    >>> inception_v3_param_count()
    21801960
    """
    if num_classes < 1 or in_channels < 1:
        raise ValueError(f"num_classes and in_channels must be >= 1, got {num_classes}, {in_channels}")
    convs = list(stem_convs(in_channels))
    for block in MIXED_BLOCKS:
        convs.extend(block_convs(block))
    fc = NUM_FEATURES * num_classes + num_classes
    return sum(conv.param_count for conv in convs) + fc
