"""The FBNet chain-structured space of HW-NAS-Bench, on CIFAR-100.

An architecture picks one of nine blocks for each of 22 searchable layers (9^22, about 9.8e20
networks). The blocks and the macro-architecture are those of FBNet (Wu et al., "FBNet:
Hardware-Aware Efficient ConvNet Design via Differentiable Neural Architecture Search", CVPR 2019,
Table 1 and Fig. 3), adapted to 32x32 inputs as HW-NAS-Bench does (Li et al., "HW-NAS-Bench:
Hardware-Aware Neural Architecture Search Benchmark", ICLR 2021, Sec. 3). Where the papers leave a
detail open we followed the network that HW-NAS-Bench measured, as its public code defines it
(GATECH-EIC/HW-NAS-Bench, ``hw_nas_bench_api/fbnet_models/model_infer.py`` for the network and
``hw_nas_bench_api.py`` for the per-layer shapes of its cost tables, dataset ``cifar100``):

- stem: 3x3 conv, 16 channels, stride 1 (2 on ImageNet), BN, ReLU;
- 7 stages of 1/4/4/4/4/4/1 layers with 16/24/32/64/112/184/352 channels and strides
  1/1/2/2/1/2/1 (ImageNet: 1/2/2/2/1/2/1); a stage's first layer changes channels and stride;
- head: 1x1 conv to 1504 channels (1984 on ImageNet), BN, ReLU; global average pool; linear
  classifier with bias. The feature map is 32->32->32->16->8->8->4->4 wide.
- block ``k{k}_e{e}[_g{g}]``: 1x1 conv (groups g) expanding the *input* channels e times, BN,
  ReLU, channel shuffle if g > 1 (ShuffleNet, Zhang et al., CVPR 2018), kxk depthwise conv with
  the layer's stride, BN, ReLU, 1x1 conv (groups g) to the output channels, BN; plus the input when
  the stride is 1 and the channels match (no activation after the sum).
- ``skip``: the identity; in a layer that changes channels or stride it is a 1x1 conv with that
  stride, BN and ReLU (HW-NAS-Bench's ``Skip``), so every architecture is a valid network.

Weights are initialised as in that code (conv: Kaiming normal, fan-out; BN: 1 and 0; linear: normal
with std 0.001, bias 0); latency does not depend on them.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence
from typing import ClassVar

import numpy as np
import torch
from torch import nn

from ..errors import ArchitectureError
from .space import Architecture, Gene, Graph, Space

__all__ = ["BLOCKS", "FBNetSpace"]

#: the nine blocks, in the order of HW-NAS-Bench's and HELP's choice indices (8 = skip)
BLOCKS: tuple[str, ...] = (
    "k3_e1", "k3_e1_g2", "k3_e3", "k3_e6", "k5_e1", "k5_e1_g2", "k5_e3", "k5_e6", "skip",
)  # fmt: skip
#: (kernel, expansion, groups) of every block but skip
_BLOCK_SPEC: dict[str, tuple[int, int, int]] = {
    "k3_e1": (3, 1, 1), "k3_e1_g2": (3, 1, 2), "k3_e3": (3, 3, 1), "k3_e6": (3, 6, 1),
    "k5_e1": (5, 1, 1), "k5_e1_g2": (5, 1, 2), "k5_e3": (5, 3, 1), "k5_e6": (5, 6, 1),
}  # fmt: skip

_STEM_CHANNELS = 16
_STAGE_CHANNELS = (16, 24, 32, 64, 112, 184, 352)
_STAGE_DEPTHS = (1, 4, 4, 4, 4, 4, 1)
_STAGE_STRIDES = (1, 1, 2, 2, 1, 2, 1)  # CIFAR: the ImageNet stride of stage 1 and the stem is 1
_HEAD_CHANNELS = 1504
_N_LAYERS = sum(_STAGE_DEPTHS)  # 22


def _layer_shapes() -> tuple[tuple[int, int, int], ...]:
    """(in channels, out channels, stride) of the 22 searchable layers."""
    out, c_in = [], _STEM_CHANNELS
    for c_out, depth, stride in zip(_STAGE_CHANNELS, _STAGE_DEPTHS, _STAGE_STRIDES, strict=True):
        for i in range(depth):
            out.append((c_in, c_out, stride if i == 0 else 1))
            c_in = c_out
    return tuple(out)


_LAYERS = _layer_shapes()


def _conv_bn_relu(c_in: int, c_out: int, kernel: int, stride: int) -> nn.Sequential:
    return nn.Sequential(
        nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
        nn.BatchNorm2d(c_out),
        nn.ReLU(inplace=True),
    )


class _ChannelShuffle(nn.Module):
    """Interleave the channels of ``groups`` groups (reshape-transpose-reshape, ONNX friendly)."""

    def __init__(self, groups: int):
        super().__init__()
        self.groups = groups

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unflatten(1, (self.groups, -1)).transpose(1, 2).flatten(1, 2)


class _FBNetBlock(nn.Module):
    """FBNet's inverted-residual block (Wu et al., CVPR 2019, Fig. 3)."""

    def __init__(
        self, c_in: int, c_out: int, stride: int, kernel: int, expansion: int, groups: int
    ):
        super().__init__()
        mid = c_in * expansion
        layers: list[nn.Module] = [
            nn.Conv2d(c_in, mid, 1, groups=groups, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
        ]
        if groups > 1:
            layers.append(_ChannelShuffle(groups))
        layers += [
            nn.Conv2d(mid, mid, kernel, stride, padding=kernel // 2, groups=mid, bias=False),
            nn.BatchNorm2d(mid),
            nn.ReLU(inplace=True),
            nn.Conv2d(mid, c_out, 1, groups=groups, bias=False),
            nn.BatchNorm2d(c_out),
        ]
        self.body = nn.Sequential(*layers)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.body(x)
        return out + x if self.residual else out


def _make_layer(block: str, c_in: int, c_out: int, stride: int) -> nn.Module:
    if block == "skip":
        if stride == 1 and c_in == c_out:
            return nn.Identity()
        return _conv_bn_relu(c_in, c_out, 1, stride)
    kernel, expansion, groups = _BLOCK_SPEC[block]
    return _FBNetBlock(c_in, c_out, stride, kernel, expansion, groups)


def _init_weights(model: nn.Module) -> None:
    for m in model.modules():
        if isinstance(m, nn.Conv2d):
            nn.init.kaiming_normal_(m.weight, mode="fan_out")
        elif isinstance(m, nn.BatchNorm2d):
            nn.init.ones_(m.weight)
            nn.init.zeros_(m.bias)
        elif isinstance(m, nn.Linear):
            nn.init.normal_(m.weight, std=0.001)
            nn.init.zeros_(m.bias)


class FBNetSpace(Space):
    """HW-NAS-Bench's FBNet space: 22 layers, each one of :data:`BLOCKS` (Li et al., ICLR 2021).

    The canonical string is the 22 block names joined by ``-``, layer 0 first.

    Example:
        >>> s = FBNetSpace()
        >>> a = s.parse("-".join(["k3_e1"] * 21 + ["skip"]))
        >>> a.genes[-1], s.input_shape(a)
        (8, (3, 32, 32))
    """

    name: ClassVar[str] = "fbnet"
    kind: ClassVar[str] = "chain"
    num_classes: int = 100
    genes: tuple[Gene, ...] = tuple(Gene(f"layer{i:02d}", BLOCKS) for i in range(_N_LAYERS))

    # ------------------------------------------------------------------ strings
    def from_blocks(self, blocks: Sequence[str]) -> Architecture:
        """The architecture choosing ``blocks[i]`` in layer ``i`` (e.g. a row of the table).

        Raises:
            ArchitectureError: not 22 blocks, or a name not in :data:`BLOCKS` (says which layer).
        """
        if isinstance(blocks, str):
            raise ArchitectureError(
                f"{self.name}: from_blocks takes a sequence; use parse() for {blocks!r}"
            )
        names = [str(b).strip() for b in blocks]
        if len(names) != _N_LAYERS:
            raise ArchitectureError(f"{self.name}: expected {_N_LAYERS} layers, got {len(names)}")
        genes = []
        for i, b in enumerate(names):
            if b not in BLOCKS:
                raise ArchitectureError(
                    f"{self.name}: layer {i} is {b!r}; valid: {', '.join(BLOCKS)}"
                )
            genes.append(BLOCKS.index(b))
        return self.from_genes(genes)

    def format(self, arch: Architecture) -> str:
        """The 22 block names joined by ``-``, e.g. ``k5_e6-skip-k3_e1_g2-...``."""
        return "-".join(self.values(arch))

    def parse(self, text: str) -> Architecture:
        """Inverse of :meth:`format` (surrounding whitespace ignored).

        Raises:
            ArchitectureError: not a string, not 22 ``-``-separated layers, or an unknown block.
        """
        if not isinstance(text, str):
            raise ArchitectureError(f"{self.name}: expected a string, got {type(text).__name__}")
        parts = text.strip().split("-")
        if len(parts) != _N_LAYERS:
            raise ArchitectureError(
                f"{self.name}: expected {_N_LAYERS} blocks separated by '-', "
                f"got {len(parts)} in {text.strip()!r}"
            )
        return self.from_blocks(parts)

    # ------------------------------------------------------------------ structure
    def graph(self, arch: Architecture) -> Graph:
        """A chain ``input -> layer00 -> ... -> layer21 -> output``; ops are block names."""
        ops = ("input", *self.values(arch), "output")
        return Graph(ops, np.eye(len(ops), k=1, dtype=np.uint8))

    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        """``(3, 32, 32)``: CIFAR-100 images, for every architecture."""
        self._check(arch)
        return (3, 32, 32)

    def build(self, arch: Architecture, num_classes: int | None = None) -> nn.Module:
        """HW-NAS-Bench's CIFAR network for ``arch`` (see the module docstring), training mode.

        Args:
            arch: an architecture of this space.
            num_classes: classifier outputs; default :attr:`num_classes` (100).

        Returns:
            A module mapping ``(N, 3, 32, 32)`` images to ``(N, num_classes)`` logits.

        Example:
            >>> s = FBNetSpace()
            >>> net = s.build(s.parse("-".join(["skip"] * 22)), num_classes=10)
            >>> tuple(net(torch.zeros(2, 3, 32, 32)).shape)
            (2, 10)
        """
        blocks = self.values(arch)
        n_out = self.num_classes if num_classes is None else int(num_classes)
        if n_out < 1:
            raise ValueError(f"num_classes must be positive, got {num_classes}")
        layers = [
            _make_layer(b, c_in, c_out, stride)
            for b, (c_in, c_out, stride) in zip(blocks, _LAYERS, strict=True)
        ]
        model = nn.Sequential(
            OrderedDict(
                stem=_conv_bn_relu(3, _STEM_CHANNELS, 3, 1),
                layers=nn.Sequential(*layers),
                head=_conv_bn_relu(_STAGE_CHANNELS[-1], _HEAD_CHANNELS, 1, 1),
                pool=nn.AdaptiveAvgPool2d(1),
                flatten=nn.Flatten(1),
                classifier=nn.Linear(_HEAD_CHANNELS, n_out),
            )
        )
        _init_weights(model)
        return model
