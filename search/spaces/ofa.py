"""Once-for-all MobileNetV3: a hierarchical space of about 5e20 ImageNet networks.

Cai et al., "Once-for-All: Train One Network and Specialize it for Efficient Deployment", ICLR 2020
(code: github.com/mit-han-lab/once-for-all), as used by Lee et al., "HELP: Hardware-Adaptive
Efficient Latency Prediction for NAS via Meta-Learning", NeurIPS 2021 (github.com/HayeonLee/HELP).
Five searchable stages of up to four MBConv layers: per stage a depth 2, 3 or 4, per layer a
depthwise kernel 3, 5 or 7 and an expand ratio 3, 4 or 6, and an input resolution 128..224 in steps
of 4 (the 25 sizes of HELP's OFA encoding, ``utils.arch_encoding_ofa``). Layers beyond a stage's
depth are inactive.
The canonical string gives the resolution, then each stage's active layers::

    r224|k7e6-k5e4|k3e3-k3e4-k5e6|k3e3-k3e3|k5e6-k7e6-k3e4-k3e3|k3e6-k3e6

The network is a static OFA sub-network, built as in the OFA code (``OFAMobileNetV3`` and its
``get_active_subnet``): 3x3 stride-2 conv + BN + h-swish; a fixed MBConv (3x3 depthwise, expand 1,
ReLU, residual); the five stages with base widths 24/40/80/112/160, strides 2/2/2/1/2, ReLU in the
first two stages and h-swish after, squeeze-and-excitation in stages 2, 4 and 5; a 1x1 conv to 960
channels + BN + h-swish, global average pooling, a 1x1 conv to 1280 channels (no BN, no bias) +
h-swish, dropout and a linear classifier. Widths are scaled by OFA's ``make_divisible`` (to 8).

Width: 1.2 (``ofa_mbv3_d234_e346_k357_w1.2``), the supernet HELP builds its OFA sub-networks from
(its ``validate_imagenet.py`` loads that net for the searched configurations); widths are then 24
(stem and first block), 32, 48, 96, 136, 192 (stages), 1152 and 1536. ``OFASpace(1.0)`` builds the
``w1.0`` family instead (16, 16, 24, 40, 80, 112, 160, 960, 1280).
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from ..errors import ArchitectureError
from .space import Architecture, Gene, Graph, Space

__all__ = [
    "OFASpace",
    "OFANetwork",
    "MBConv",
    "SqueezeExcite",
    "make_divisible",
    "KERNELS",
    "EXPANDS",
    "DEPTHS",
    "RESOLUTIONS",
]

KERNELS: tuple[int, ...] = (3, 5, 7)
EXPANDS: tuple[int, ...] = (3, 4, 6)
DEPTHS: tuple[int, ...] = (2, 3, 4)
RESOLUTIONS: tuple[int, ...] = tuple(range(128, 225, 4))
N_STAGES, MIN_DEPTH, MAX_DEPTH = 5, DEPTHS[0], DEPTHS[-1]
N_LAYERS = N_STAGES * MAX_DEPTH

# OFA MobileNetV3 macro-architecture at width 1.0 (ofa_mbv3.py): stem, first block, the five
# searchable stages, final expand and feature mix widths; per stage its stride, activation and SE
_STEM, _FIRST_BLOCK, _FINAL_EXPAND, _FEATURE_MIX = 16, 16, 960, 1280
_STAGE_WIDTHS = (24, 40, 80, 112, 160)
_STAGE_STRIDES = (2, 2, 2, 1, 2)
_STAGE_HSWISH = (False, False, True, True, True)
_STAGE_SE = (False, True, False, True, True)
# OFA's training default (OFAMobileNetV3(dropout_rate=0.1)); the pretrained supernets are built with
# 0, which changes nothing at inference
_DROPOUT = 0.1

_D, _K, _E, _R = 0, N_STAGES, N_STAGES + N_LAYERS, N_STAGES + 2 * N_LAYERS  # gene offsets
_TOKEN = re.compile(r"k(\d+)e(\d+)")


def make_divisible(v: float, divisor: int = 8) -> int:
    """OFA's (and TF-slim MobileNet's) channel rounding: nearest multiple, never 10% below ``v``."""
    new = max(divisor, int(v + divisor / 2) // divisor * divisor)
    return new + divisor if new < 0.9 * v else new


def _choices(values: tuple[int, ...]) -> str:
    if len(values) > 6:
        return f"{values[0]}, {values[1]}, ..., {values[-1]}"
    return ", ".join(map(str, values))


class OFASpace(Space):
    """The once-for-all MobileNetV3 space (HELP's OFA space).

    Genes, in order: ``d0..d4`` (depth per stage), ``ks00..ks19`` (kernel per layer), ``e00..e19``
    (expand ratio per layer), ``r`` (resolution). Layer ``j`` of stage ``s`` is gene index
    ``4 * s + j`` among the layers and is active iff ``j < depth(s)``.

    Args:
        width_mult: channel multiplier of the supernet (1.2 as in HELP, or 1.0).

    Example:
        >>> s = OFASpace()
        >>> a = s.parse("r160|k3e3-k5e4|k3e3-k3e3|k7e6-k3e3|k3e3-k3e3|k3e3-k3e3")
        >>> s.input_shape(a), len(s.graph(a).ops)
        ((3, 160, 160), 12)
    """

    name = "ofa"
    kind = "hierarchical"
    num_classes = 1000

    def __init__(self, width_mult: float = 1.2):
        self.width_mult = width_mult
        self.genes = (
            *(Gene(f"d{s}", DEPTHS) for s in range(N_STAGES)),
            *(Gene(f"ks{i:02d}", KERNELS) for i in range(N_LAYERS)),
            *(Gene(f"e{i:02d}", EXPANDS) for i in range(N_LAYERS)),
            Gene("r", RESOLUTIONS),
        )

    # ------------------------------------------------------------------ structure
    @property
    def size(self) -> int:
        """Distinct networks: (9^2 + 9^3 + 9^4)^5 stage choices times 25 resolutions (~5.4e20)."""
        per_stage = sum((len(KERNELS) * len(EXPANDS)) ** d for d in DEPTHS)
        return per_stage**N_STAGES * len(RESOLUTIONS)

    def active(self, genes: Sequence[int]) -> np.ndarray:
        mask = np.ones(len(self.genes), dtype=bool)
        for s in range(N_STAGES):
            depth = DEPTHS[int(genes[_D + s])]
            for j in range(depth, MAX_DEPTH):
                mask[_K + MAX_DEPTH * s + j] = mask[_E + MAX_DEPTH * s + j] = False
        return mask

    @property
    def groups(self) -> tuple[tuple[int, ...], ...]:
        """One group per stage (its depth, kernels and expand ratios), and the resolution."""
        stages = tuple(
            (_D + s, *(o + MAX_DEPTH * s + j for o in (_K, _E) for j in range(MAX_DEPTH)))
            for s in range(N_STAGES)
        )
        return (*stages, (_R,))

    def stages(self, arch: Architecture) -> tuple[tuple[tuple[int, int], ...], ...]:
        """The active layers of every stage as ``(kernel, expand)`` pairs."""
        v = self.values(arch)
        return tuple(
            tuple(
                (v[_K + MAX_DEPTH * s + j], v[_E + MAX_DEPTH * s + j]) for j in range(v[_D + s])
            )
            for s in range(N_STAGES)
        )

    def resolution(self, arch: Architecture) -> int:
        """The input resolution (pixels per side)."""
        return int(self.values(arch)[_R])

    # ------------------------------------------------------------------ strings
    def format(self, arch: Architecture) -> str:
        fields = ["-".join(f"k{k}e{e}" for k, e in stage) for stage in self.stages(arch)]
        return f"r{self.resolution(arch)}|" + "|".join(fields)

    def parse(self, text: str) -> Architecture:
        if not isinstance(text, str):
            raise ArchitectureError(f"ofa: expected a string, got {type(text).__name__}")
        fields = [f.strip() for f in text.strip().split("|")]
        if len(fields) != N_STAGES + 1:
            raise ArchitectureError(
                f"ofa: expected {N_STAGES + 1} '|'-separated fields (resolution, then "
                f"{N_STAGES} stages), got {len(fields)} in {text.strip()!r}"
            )
        m = re.fullmatch(r"r(\d+)", fields[0])
        if not m:
            raise ArchitectureError(f"ofa: resolution field {fields[0]!r} must read like 'r224'")
        r = int(m.group(1))
        if r not in RESOLUTIONS:
            raise ArchitectureError(f"ofa: resolution {r} is not one of {_choices(RESOLUTIONS)}")
        genes = [0] * len(self.genes)
        genes[_R] = RESOLUTIONS.index(r)
        for s, field in enumerate(fields[1:]):
            where = f"stage {s + 1} of {N_STAGES}"
            tokens = [t.strip() for t in field.split("-")]
            if not MIN_DEPTH <= len(tokens) <= MAX_DEPTH or tokens == [""]:
                n = 0 if tokens == [""] else len(tokens)
                raise ArchitectureError(
                    f"ofa: {where} has {n} layers; valid: {MIN_DEPTH}-{MAX_DEPTH}"
                )
            genes[_D + s] = DEPTHS.index(len(tokens))
            for j, token in enumerate(tokens):
                m = _TOKEN.fullmatch(token)
                if not m:
                    raise ArchitectureError(
                        f"ofa: token {token!r} in {where} must read k<kernel>e<expand>, e.g. 'k5e4'"
                    )
                k, e = int(m.group(1)), int(m.group(2))
                if k not in KERNELS:
                    raise ArchitectureError(
                        f"ofa: token {token!r} in {where}: kernel {k} is not one of "
                        f"{_choices(KERNELS)}"
                    )
                if e not in EXPANDS:
                    raise ArchitectureError(
                        f"ofa: token {token!r} in {where}: expand ratio {e} is not one of "
                        f"{_choices(EXPANDS)}"
                    )
                genes[_K + MAX_DEPTH * s + j] = KERNELS.index(k)
                genes[_E + MAX_DEPTH * s + j] = EXPANDS.index(e)
        return self.from_genes(genes)

    # ------------------------------------------------------------------ OFA dictionaries
    def from_ofa_dict(self, d: Mapping[str, Any]) -> Architecture:
        """An architecture from OFA's ``{"ks": [20], "e": [20], "d": [5], "r": int}`` config.

        Inactive layers may hold any value; they are canonicalised.

        Raises:
            ArchitectureError: a missing key, a wrong length or an invalid active value.
        """
        for key, n in (("ks", N_LAYERS), ("e", N_LAYERS), ("d", N_STAGES)):
            if key not in d:
                raise ArchitectureError(f"ofa: OFA config lacks {key!r}")
            if len(d[key]) != n:
                raise ArchitectureError(
                    f"ofa: OFA config {key!r} has {len(d[key])} values, not {n}"
                )
        if "r" not in d:
            raise ArchitectureError("ofa: OFA config lacks 'r'")

        def index(values: tuple[int, ...], x: Any, what: str) -> int:
            if x not in values:
                raise ArchitectureError(f"ofa: {what} is {x!r}, not one of {_choices(values)}")
            return values.index(x)

        genes = [0] * len(self.genes)
        genes[_R] = index(RESOLUTIONS, d["r"], "resolution 'r'")
        for s in range(N_STAGES):
            genes[_D + s] = index(DEPTHS, d["d"][s], f"depth d[{s}]")
            for j in range(DEPTHS[genes[_D + s]]):
                i = MAX_DEPTH * s + j
                genes[_K + i] = index(KERNELS, d["ks"][i], f"kernel ks[{i}]")
                genes[_E + i] = index(EXPANDS, d["e"][i], f"expand ratio e[{i}]")
        return self.from_genes(genes)

    def to_ofa_dict(self, arch: Architecture) -> dict[str, Any]:
        """OFA's config dictionary; inactive layers get the canonical kernel 3, expand 3."""
        v = self.values(arch)
        return {
            "ks": list(v[_K:_E]),
            "e": list(v[_E:_R]),
            "d": list(v[_D:_K]),
            "r": v[_R],
        }

    # ------------------------------------------------------------------ graph
    def graph(self, arch: Architecture) -> Graph:
        """A chain: input, one node per active layer (op ``k{kernel}e{expand}``), output."""
        ops = ("input", *(f"k{k}e{e}" for st in self.stages(arch) for k, e in st), "output")
        n = len(ops)
        adj = np.zeros((n, n), dtype=np.uint8)
        adj[np.arange(n - 1), np.arange(1, n)] = 1
        return Graph(ops, adj)

    # ------------------------------------------------------------------ network
    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        r = self.resolution(arch)
        return (3, r, r)

    def build(self, arch: Architecture, num_classes: int | None = None) -> OFANetwork:
        """The static OFA sub-network of ``arch`` (freshly initialised, training mode)."""
        return OFANetwork(self.stages(arch), num_classes or self.num_classes, self.width_mult)



# ---------------------------------------------------------------------- the network
def _conv_bn_act(c_in: int, c_out: int, k: int, stride: int = 1, groups: int = 1,
                 act: type[nn.Module] | None = nn.ReLU) -> nn.Sequential:
    layers: list[nn.Module] = [
        nn.Conv2d(c_in, c_out, k, stride, padding=k // 2, groups=groups, bias=False),
        nn.BatchNorm2d(c_out),
    ]
    if act is not None:
        layers.append(act())
    return nn.Sequential(*layers)


class SqueezeExcite(nn.Module):
    """OFA's squeeze-and-excitation: mean, 1x1 conv to ``make_divisible(c // 4)`` + ReLU, 1x1 conv
    back + h-sigmoid, times the input (Hu et al., CVPR 2018; as in MobileNetV3).
    """

    def __init__(self, c: int):
        super().__init__()
        mid = make_divisible(c // 4)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Sequential(
            nn.Conv2d(c, mid, 1), nn.ReLU(), nn.Conv2d(mid, c, 1), nn.Hardsigmoid()
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.fc(self.pool(x))


class MBConv(nn.Module):
    """Inverted residual (MobileNetV2/V3): 1x1 expand, kxk depthwise, [SE], 1x1 linear projection.

    The middle width is ``make_divisible(round(c_in * expand))`` as in OFA's ``DynamicMBConvLayer``;
    the residual is added when the stride is 1 and the width does not change.
    """

    def __init__(self, c_in: int, c_out: int, kernel: int, expand: int, stride: int,
                 act: type[nn.Module], se: bool):
        super().__init__()
        mid = make_divisible(round(c_in * expand)) if expand != 1 else c_in
        self.expand = _conv_bn_act(c_in, mid, 1, act=act) if expand != 1 else nn.Identity()
        self.depthwise = _conv_bn_act(mid, mid, kernel, stride, groups=mid, act=act)
        self.se = SqueezeExcite(mid) if se else nn.Identity()
        self.project = _conv_bn_act(mid, c_out, 1, act=None)
        self.residual = stride == 1 and c_in == c_out

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        y = self.project(self.se(self.depthwise(self.expand(x))))
        return x + y if self.residual else y


class OFANetwork(nn.Module):
    """A static once-for-all MobileNetV3 sub-network.

    Args:
        stages: per stage, the ``(kernel, expand)`` of each active layer.
        num_classes: classifier outputs.
        width_mult: channel multiplier (1.2 or 1.0 for the public supernets).
    """

    def __init__(self, stages: tuple[tuple[tuple[int, int], ...], ...], num_classes: int = 1000,
                 width_mult: float = 1.2):
        super().__init__()
        w = [make_divisible(c * width_mult) for c in (_STEM, _FIRST_BLOCK, *_STAGE_WIDTHS)]
        final = make_divisible(_FINAL_EXPAND * width_mult)
        mix = make_divisible(_FEATURE_MIX * width_mult)
        self.stem = _conv_bn_act(3, w[0], 3, stride=2, act=nn.Hardswish)
        blocks: list[nn.Module] = [MBConv(w[0], w[1], 3, 1, 1, nn.ReLU, se=False)]
        c = w[1]
        for s, layers in enumerate(stages):
            act = nn.Hardswish if _STAGE_HSWISH[s] else nn.ReLU
            for j, (k, e) in enumerate(layers):
                stride = _STAGE_STRIDES[s] if j == 0 else 1
                blocks.append(MBConv(c, w[2 + s], k, e, stride, act, _STAGE_SE[s]))
                c = w[2 + s]
        self.blocks = nn.Sequential(*blocks)
        self.final_expand = _conv_bn_act(c, final, 1, act=nn.Hardswish)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.feature_mix = nn.Sequential(nn.Conv2d(final, mix, 1, bias=False), nn.Hardswish())
        self.dropout = nn.Dropout(_DROPOUT)
        self.classifier = nn.Linear(mix, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.final_expand(self.blocks(self.stem(x)))
        x = torch.flatten(self.feature_mix(self.pool(x)), 1)
        return self.classifier(self.dropout(x))
