"""Multiply-accumulates and parameters of OFA sub-networks, from per-layer tables.

Building an OFA network and counting its operations takes about 0.2 s; a table of 5,000 networks
(HELP's OFA rows) would take over 15 minutes. A network's cost is a sum over its modules, and an
MBConv layer's cost depends only on its stage, whether it opens the stage (stride and input
width), its kernel and expand ratio, and the resolution (its input's side: the side at every
stage is fixed by the resolution, since an odd kernel with padding ``k // 2`` gives the same output
side for every ``k``). So each (resolution, stage, first or not, kernel, expand) layer is counted
once, on the meta device (shapes only, no arithmetic), and the rest of the network (stem, first
block, final expand, feature mix, classifier) once per resolution, as a built network's count
minus its layers; a resolution's tables (about a second) are built when first needed. The sums
equal :func:`hwnas.search.spaces.stats.model_stats` exactly (``tests/search/test_ofa_cost.py``).
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache

import numpy as np
import torch
from torch import nn

from .ofa import (
    _FIRST_BLOCK,
    _STAGE_HSWISH,
    _STAGE_SE,
    _STAGE_STRIDES,
    _STAGE_WIDTHS,
    _STEM,
    EXPANDS,
    KERNELS,
    N_STAGES,
    RESOLUTIONS,
    MBConv,
    OFASpace,
    make_divisible,
)
from .space import Architecture
from .stats import count_macs, count_params

__all__ = ["ofa_costs"]


def _side(h: int, stride: int) -> int:
    """Output side of a convolution with an odd kernel ``k``, padding ``k // 2``."""
    return (h - 1) // stride + 1


def _block_cost(c_in: int, c_out: int, k: int, e: int, stride: int, hswish: bool, se: bool,
                side: int) -> tuple[float, int]:
    with torch.device("meta"):
        block = MBConv(c_in, c_out, k, e, stride, nn.Hardswish if hswish else nn.ReLU, se)
        macs = count_macs(block, (c_in, side, side))
    return macs, count_params(block)


@cache
def _tables(width_mult: float, r: int) -> tuple[np.ndarray, np.ndarray]:
    """At resolution index ``r``: ``layer[s, first, k, e] = (macs, params)`` and ``fixed =
    (macs, params)`` of the rest of the network."""
    res = RESOLUTIONS[r]
    w = [make_divisible(c * width_mult) for c in (_STEM, _FIRST_BLOCK, *_STAGE_WIDTHS)]
    layer = np.zeros((N_STAGES, 2, len(KERNELS), len(EXPANDS), 2))
    side = _side(res, 2)  # after the stem; the first block has stride 1
    for s in range(N_STAGES):
        for first in (0, 1):
            c_in = (w[1] if s == 0 else w[1 + s]) if first else w[2 + s]
            stride = _STAGE_STRIDES[s] if first else 1
            h = side if first else _side(side, _STAGE_STRIDES[s])
            for i, k in enumerate(KERNELS):
                for j, e in enumerate(EXPANDS):
                    layer[s, first, i, j] = _block_cost(c_in, w[2 + s], k, e, stride,
                                                        _STAGE_HSWISH[s], _STAGE_SE[s], h)
        side = _side(side, _STAGE_STRIDES[s])
    # the rest: a built network's count minus its layers (the smallest network, two layers a stage)
    space = OFASpace(width_mult)
    smallest = space.parse(f"r{res}|" + "|".join(["k3e3-k3e3"] * N_STAGES))
    with torch.device("meta"):
        net = space.build(smallest)
        macs = count_macs(net, (3, res, res))
    own = sum(layer[s, int(j == 0), 0, 0] for s in range(N_STAGES) for j in range(2))
    return layer, np.array([macs - own[0], count_params(net) - own[1]])


def ofa_costs(space: OFASpace, archs: Sequence[Architecture]) -> np.ndarray:
    """``(len(archs), 2)``: millions of multiply-accumulates and parameters of each network.

    Example:
        >>> space = OFASpace()
        >>> a = space.parse("r224|k7e6-k5e4|k3e3-k3e4-k5e6|k3e3-k3e3|k5e6-k7e6-k3e4-k3e3|"
        ...                 "k3e6-k3e6")
        >>> ofa_costs(space, [a]).shape
        (1, 2)
    """
    out = np.zeros((len(archs), 2))
    for n, arch in enumerate(archs):
        layer, fixed = _tables(space.width_mult, RESOLUTIONS.index(space.resolution(arch)))
        total = fixed.copy()
        for s, layers in enumerate(space.stages(arch)):
            for j, (k, e) in enumerate(layers):
                total += layer[s, int(j == 0), KERNELS.index(k), EXPANDS.index(e)]
        out[n] = total[0] / 1e6, total[1]
    return out
