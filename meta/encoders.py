"""Architecture encoders for latency predictors: fixed structural features and a learned encoder.

Two fixed encodings describe an architecture to a predictor, and one learned encoder maps it to a
small embedding:

- :func:`onehot_features`: the space's one-hot encoding (White et al., "A Study on Encodings for
  Neural Architecture Search", NeurIPS 2020), plus, for NAS-Bench-201, a flag for *dead* cells
  (no input-to-output path avoids a ``none`` edge).
- :func:`structure_features`: a handful of counts that latency is close to additive in (operations
  per type; for NAS-Bench-201 also the operations on *live* paths, which runtimes that prune dead
  work still execute, and the dead-cell flag; for once-for-all the depths and the resolution).
  Few features means few coefficients to fit from twenty measurements.
- :class:`ArchEncoder`: a small MLP from the one-hot features to an embedding, meta-trained by
  :class:`hwnas.meta.latency.MetaLatencyPredictor` on the source devices (the learned
  per-architecture encoder of HELP, Lee et al., NeurIPS 2021, which uses a graph network; the
  one-hot MLP is the encoder of its MAML/Meta-SGD baselines).

Example:
    >>> from hwnas.search import get_space
    >>> s = get_space("nb201")
    >>> a = s.parse("|none~0|+|none~0|none~1|+|nor_conv_3x3~0|none~1|none~2|")
    >>> structure_features(s, [a]).shape
    (1, 9)
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import nn

from hwnas.search import Architecture, Space

__all__ = ["ArchEncoder", "dead_cells", "fbnet_layer_costs", "live_edges", "onehot_features",
           "structure_features"]

# NB201 edges as (target, source), in gene order (hwnas.search.spaces.nb201.EDGES)
_NB201_EDGES = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))


def _genes(archs: Sequence[Architecture]) -> np.ndarray:
    return np.array([a.genes for a in archs], dtype=np.int64).reshape(len(archs), -1)


def live_edges(genes: np.ndarray) -> np.ndarray:
    """NB201: which of the six edges lie on an input-to-output path of non-``none`` edges.

    Args:
        genes: ``(n, 6)`` operation indices (0 = ``none``).

    Returns:
        ``(n, 6)`` booleans; a runtime that prunes dead work executes exactly these edges.
    """
    nz = genes != 0
    n = len(genes)
    fwd = {0: np.ones(n, dtype=bool)}  # reached from the input
    for node in (1, 2, 3):
        fwd[node] = np.zeros(n, dtype=bool)
        for k, (t, s) in enumerate(_NB201_EDGES):
            if t == node:
                fwd[node] |= fwd[s] & nz[:, k]
    bwd = {3: np.ones(n, dtype=bool)}  # reaches the output
    for node in (2, 1, 0):
        bwd[node] = np.zeros(n, dtype=bool)
        for k, (t, s) in enumerate(_NB201_EDGES):
            if s == node:
                bwd[node] |= bwd[t] & nz[:, k]
    return np.stack([nz[:, k] & fwd[s] & bwd[t] for k, (t, s) in enumerate(_NB201_EDGES)], 1)


def dead_cells(genes: np.ndarray) -> np.ndarray:
    """NB201: cells whose output does not depend on their input (no live edge into node 3)."""
    return ~live_edges(genes)[:, [3, 4, 5]].any(axis=1)


def onehot_features(space: Space, archs: Sequence[Architecture]) -> np.ndarray:
    """The one-hot encoding of ``archs`` (float32), with NB201's dead-cell flag appended."""
    x = space.encode_batch(list(archs))
    if space.name == "nb201":
        x = np.hstack([x, dead_cells(_genes(archs))[:, None].astype(np.float32)])
    return x.astype(np.float32)


@functools.cache
def fbnet_layer_costs() -> np.ndarray:
    """``(layers, blocks, 2)``: multiply-accumulates and parameters of every FBNet layer choice
    at the space's 32 x 32 input (each choice built once)."""
    from hwnas.search.spaces.fbnet import _LAYERS, BLOCKS, _make_layer
    from hwnas.search.spaces.stats import count_params

    macs = [0.0]

    def hook(m: torch.nn.Module, _: Any, out: torch.Tensor) -> None:
        # convolutions and linear layers carry the multiply-accumulates of these blocks
        if isinstance(m, torch.nn.Conv2d):
            kh, kw = m.kernel_size
            macs[0] += out.numel() * (m.in_channels // m.groups) * kh * kw
        elif isinstance(m, torch.nn.Linear):
            macs[0] += out.numel() * m.in_features

    cost = np.zeros((len(_LAYERS), len(BLOCKS), 2))
    hw = 32
    with torch.no_grad():
        for i, (c_in, c_out, stride) in enumerate(_LAYERS):
            for b, name in enumerate(BLOCKS):
                # on the meta device only shapes are computed: no arithmetic is done
                with torch.device("meta"):
                    m = _make_layer(name, c_in, c_out, stride).eval()
                params = count_params(m)
                handles = [x.register_forward_hook(hook) for x in m.modules()]
                macs[0] = 0.0
                m(torch.zeros(1, c_in, hw, hw, device="meta"))
                for h in handles:
                    h.remove()
                cost[i, b] = macs[0], params
            hw //= stride
    return cost


def structure_features(space: Space, archs: Sequence[Architecture]) -> np.ndarray:
    """Counts that latency is close to additive in (float64, not standardised).

    - nb201: operations of each non-``none`` type (4), the same counted on live edges only (4),
      and the dead-cell flag (1).
    - fbnet: blocks of each non-skip type over the 22 layers (8), the blocks of each type in
      the later, cheaper half of the network (8), and the log multiply-accumulates and log
      parameters of the whole network (2; from per-layer counts: the layers' costs add up).
    - ofa: depth of each stage (5), resolution (1), active layers with kernel 5 / 7 and expand
      ratio 4 / 6 (4).
    - any other space: the one-hot encoding.
    """
    g = _genes(archs)
    if space.name == "nb201":
        live = live_edges(g)
        counts = [(g == k).sum(1) for k in range(1, 5)]
        live_counts = [((g == k) & live).sum(1) for k in range(1, 5)]
        dead = ~live[:, [3, 4, 5]].any(axis=1)
        return np.stack([*counts, *live_counts, dead], 1).astype(np.float64)
    if space.name == "fbnet":
        n_blocks = int(space.n_choices[0])
        half = g.shape[1] // 2
        counts = [(g == k).sum(1) for k in range(n_blocks - 1)]
        late = [(g[:, half:] == k).sum(1) for k in range(n_blocks - 1)]
        # a free (skip) layer counts as 1: the logs stay finite
        cost = np.maximum(fbnet_layer_costs(), 1.0)[np.arange(g.shape[1]), g].sum(axis=1)
        return np.column_stack([*counts, *late, np.log(cost)]).astype(np.float64)
    if space.name == "ofa":
        active = np.array([space.active(row) for row in g], dtype=bool)
        n_stages, n_layers = 5, 20
        depth = g[:, :n_stages]
        k_slice = slice(n_stages, n_stages + n_layers)
        ks = np.where(active[:, k_slice], g[:, k_slice], -1)
        es = np.where(active[:, n_stages + n_layers:-1], g[:, n_stages + n_layers:-1], -1)
        extra = [(ks == 1).sum(1), (ks == 2).sum(1), (es == 1).sum(1), (es == 2).sum(1)]
        return np.column_stack([depth, g[:, -1], *extra]).astype(np.float64)
    return onehot_features(space, archs).astype(np.float64)


class ArchEncoder(nn.Module):
    """A small MLP mapping an architecture's one-hot features to a ``dim``-wide embedding.

    Args:
        n_in: width of the input features (``onehot_features(...).shape[1]``).
        dim: embedding width.
        hidden: hidden width.
        generator: draws the initial weights (PyTorch's default ``nn.Linear`` initialisation,
            drawn in the same order); the global RNG is then neither used nor advanced. ``None``:
            the layers' own initialisation from the global RNG.

    Example:
        >>> enc = ArchEncoder(31, dim=4, generator=torch.Generator().manual_seed(0))
        >>> enc(torch.zeros(2, 31)).shape
        torch.Size([2, 4])
    """

    def __init__(self, n_in: int, dim: int = 8, hidden: int = 64,
                 generator: torch.Generator | None = None):
        super().__init__()
        if generator is None:
            self.net = _mlp(n_in, dim, hidden)
            return
        # the layers' own initialisers draw from the global RNG: run them on a forked copy, then
        # overwrite every weight from ``generator`` so that it alone decides them
        with torch.random.fork_rng(devices=[]):
            self.net = _mlp(n_in, dim, hidden)
        for layer in self.net:
            if isinstance(layer, nn.Linear):
                _reset_linear(layer, generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


def _mlp(n_in: int, dim: int, hidden: int) -> nn.Sequential:
    return nn.Sequential(nn.Linear(n_in, hidden), nn.ReLU(), nn.Linear(hidden, hidden),
                         nn.ReLU(), nn.Linear(hidden, dim))


def _reset_linear(layer: nn.Linear, generator: torch.Generator) -> None:
    """``nn.Linear.reset_parameters`` with an explicit generator: the same draws, in the same
    order, so a generator seeded with ``s`` gives the weights ``torch.manual_seed(s)`` gave."""
    nn.init.kaiming_uniform_(layer.weight, a=math.sqrt(5), generator=generator)
    if layer.bias is not None:
        fan_in = layer.weight.shape[1]
        bound = 1 / math.sqrt(fan_in) if fan_in > 0 else 0
        nn.init.uniform_(layer.bias, -bound, bound, generator=generator)
