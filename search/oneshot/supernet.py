"""A weight-sharing supernet of NAS-Bench-201 and single-path one-shot training.

One network holds all five operations on every edge of every cell of the NB201 macro-network
(:class:`hwnas.search.spaces.nb201.NB201Network`: stem, three stages of ``cells_per_stage`` cells of
``c``, ``2c`` and ``4c`` channels, residual reductions, BN-ReLU, pooling, classifier); a *path*
chooses one operation per edge, shared by all cells as in the benchmark, and runs exactly the
network :meth:`NB201Space.build` would build for that cell (:meth:`NB201Supernet.extract` copies
the path's weights into one). Training samples a path uniformly at random for every batch:
single-path one-shot (Guo et al., "Single Path One-Shot Neural Architecture Search with Uniform
Sampling", ECCV 2020), after Bender et al., "Understanding and Simplifying One-Shot Architecture
Search", ICML 2018. A sub-network is then scored with inherited weights after recomputing its
BatchNorm statistics on a few training batches: the running statistics accumulated while training
mix every path and do not describe any one of them (Guo et al., section 3.3).

Datasets are plain torch ``Dataset`` objects or ``(images, labels)`` tensors, so that this module
needs nothing outside :mod:`hwnas.search`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from torch.utils.data import Dataset

from ..errors import ArchitectureError, HwnasError
from ..metrics import MetricSource
from ..spaces.nb201 import EDGES, OPS, NB201Network, ReLUConvBN, Zero, build_macro
from ..spaces.space import Architecture

__all__ = [
    "NB201Supernet",
    "SupernetTrainLog",
    "train_supernet",
    "recalibrate_bn",
    "evaluate_subnet",
    "SupernetAccuracy",
    "as_tensors",
    "Data",
    "SubnetPath",
]

#: a dataset of (CxHxW image, label) pairs, or the two stacked tensors
Data = Dataset | tuple[torch.Tensor, torch.Tensor]
#: a path: an nb201 architecture, or its six operation indices
SubnetPath = Architecture | Sequence[int]


def _candidate_ops(c: int) -> nn.ModuleList:
    # the same modules as NB201Network's edges, in OPS order, so weights map one to one
    return nn.ModuleList([Zero(), nn.Identity(), ReLUConvBN(c, c, 1), ReLUConvBN(c, c, 3),
                          nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)])


class MixedCell(nn.Module):
    """An NB201 cell with every operation on every edge; runs one path or a weighted mixture."""

    def __init__(self, c: int):
        super().__init__()
        self.edges = nn.ModuleList(_candidate_ops(c) for _ in EDGES)

    def forward(self, x: torch.Tensor, path: Sequence[int] | None = None,
                weights: torch.Tensor | None = None,
                active: torch.Tensor | None = None) -> torch.Tensor:
        nodes = [x]
        for node in (1, 2, 3):
            total: torch.Tensor | None = None
            for k, (target, source) in enumerate(EDGES):
                if target != node:
                    continue
                if weights is None:
                    term = self.edges[k][path[k]](nodes[source])
                else:
                    term = _weighted(self.edges[k], nodes[source], weights[k],
                                     None if active is None else active[k])
                total = term if total is None else total + term
            nodes.append(total)
        return nodes[3]


def _weighted(ops: nn.ModuleList, x: torch.Tensor, w: torch.Tensor,
              active: torch.Tensor | None) -> torch.Tensor:
    """sum_o w[o] * op_o(x) over the ``active`` operations (default all).

    With a straight-through one-hot sample (GDAS, Dong & Yang, CVPR 2019) only the chosen
    operation is active: the others have weight 0 in value, and the gradient to every logit
    flows through the chosen weight, so one operation per edge is computed, not five.
    """
    out: torch.Tensor | None = None
    for o, op in enumerate(ops):
        if active is not None and not bool(active[o]):
            continue
        term = w[o] * op(x)
        out = term if out is None else out + term
    return out if out is not None else x.mul(0.0)


class NB201Supernet(nn.Module):
    """The NB201 macro-network with all five operations on each of the six edges of every cell.

    Args:
        num_classes: classifier outputs.
        c: channels of the first stage (the benchmark's 16); the later stages have ``2c``, ``4c``.
        cells_per_stage: cells in each of the three stages (the benchmark's 5; fewer is faster).
        in_channels: image channels the stem takes (1 for grey images such as digits).

    Example:
        >>> net = NB201Supernet(num_classes=10, c=4, cells_per_stage=1, in_channels=1)
        >>> net(torch.zeros(2, 1, 8, 8), (3, 0, 1, 0, 0, 4)).shape
        torch.Size([2, 10])
    """

    def __init__(self, num_classes: int = 10, c: int = 16, cells_per_stage: int = 5,
                 in_channels: int = 3):
        super().__init__()
        if min(num_classes, c, cells_per_stage, in_channels) < 1:
            raise HwnasError(f"NB201Supernet: num_classes={num_classes}, c={c}, cells_per_stage="
                             f"{cells_per_stage}, in_channels={in_channels}; all must be >= 1")
        self.num_classes, self.c = num_classes, c
        self.cells_per_stage, self.in_channels = cells_per_stage, in_channels
        # module names mirror NB201Network's, so extract() is a renaming of state_dict keys
        build_macro(self, MixedCell, num_classes, c, cells_per_stage, in_channels,
                    sequential=False)

    def forward(self, x: torch.Tensor, path: SubnetPath | None = None,
                weights: torch.Tensor | None = None,
                active: torch.Tensor | None = None) -> torch.Tensor:
        """Logits of the sub-network ``path`` (one operation per edge), or of the mixture with
        per-edge operation ``weights`` of shape ``(6, 5)`` (DARTS/FBNet relaxation), computing
        only the operations where the boolean ``active`` (same shape) is set (default: all).

        Raises:
            ArchitectureError: neither or both of ``path`` and ``weights``, or a bad path.
        """
        if (path is None) == (weights is None):
            raise ArchitectureError("NB201Supernet.forward: give exactly one of path, weights")
        genes = None if path is None else _genes(path)
        if weights is not None and tuple(weights.shape) != (len(EDGES), len(OPS)):
            raise ArchitectureError(f"weights of shape {tuple(weights.shape)}; expected "
                                    f"{(len(EDGES), len(OPS))}")
        x = self.stem(x)
        for layer in self.cells:
            x = layer(x, genes, weights, active) if isinstance(layer, MixedCell) else layer(x)
        x = self.lastact(x)
        return self.classifier(torch.flatten(self.pool(x), 1))

    def extract(self, path: SubnetPath) -> NB201Network:
        """The stand-alone network of ``path`` with this supernet's weights and BN statistics.

        Its outputs equal ``self(x, path)`` in both train and eval mode.
        """
        genes = _genes(path)
        net = NB201Network([OPS[g] for g in genes], self.num_classes, c=self.c,
                           cells_per_stage=self.cells_per_stage)
        if self.in_channels != 3:  # the stem is the only layer that depends on the input
            net.stem[0] = nn.Conv2d(self.in_channels, self.c, 3, padding=1, bias=False)
        state = {}
        for key, value in self.state_dict().items():
            parts = key.split(".")
            if parts[0] == "cells" and parts[2] == "edges":
                if int(parts[4]) != genes[int(parts[3])]:
                    continue  # an operation off the path
                del parts[4]
            state[".".join(parts)] = value
        net.load_state_dict(state)
        return net


def _genes(path: SubnetPath) -> tuple[int, ...]:
    if isinstance(path, Architecture):
        if path.space != "nb201":
            raise ArchitectureError(f"NB201Supernet runs nb201 architectures, got {path.space!r}")
        genes = path.genes
    else:
        genes = tuple(int(g) for g in path)
    if len(genes) != len(EDGES) or not all(0 <= g < len(OPS) for g in genes):
        raise ArchitectureError(f"a path needs {len(EDGES)} operation indices in "
                                f"0..{len(OPS) - 1}, got {genes}")
    return genes


# ---------------------------------------------------------------------- data
def as_tensors(data: Data) -> tuple[torch.Tensor, torch.Tensor]:
    """``(images, labels)`` of a dataset: the tensors of a ``TensorDataset`` or pair as they are,
    any other dataset stacked item by item (small image sets fit in memory; batching by index
    from tensors is many times faster than a ``DataLoader`` on one CPU thread)."""
    if isinstance(data, tuple):
        x, y = data
    elif hasattr(data, "tensors"):
        x, y = data.tensors[:2]
    else:
        items = [data[i] for i in range(len(data))]  # type: ignore[arg-type]
        x = torch.stack([it[0] for it in items])
        y = torch.as_tensor([int(it[1]) for it in items])
    if len(x) != len(y) or len(x) == 0:
        raise HwnasError(f"a dataset of {len(x)} images and {len(y)} labels")
    return x.float(), y.long()


def _batches(n: int, batch_size: int, gen: torch.Generator | None) -> list[torch.Tensor]:
    order = torch.randperm(n, generator=gen) if gen is not None else torch.arange(n)
    return list(order.split(batch_size))


# ---------------------------------------------------------------------- training
@dataclass
class SupernetTrainLog:
    """What :func:`train_supernet` did: mean training loss per epoch, seconds, steps."""

    epoch_loss: list[float] = field(default_factory=list)
    seconds: float = 0.0
    steps: int = 0


def train_supernet(
    supernet: NB201Supernet,
    train_data: Data,
    epochs: int,
    seed: int | None = 0,
    batch_size: int = 64,
    lr: float = 0.05,
    momentum: float = 0.9,
    weight_decay: float = 5e-4,
    max_steps: int | None = None,
) -> SupernetTrainLog:
    """Train ``supernet`` in place with a uniformly sampled path for every batch (SPOS).

    Guo et al., ECCV 2020: every operation of every edge is drawn with probability 1/5, so each
    path's weights are trained as often as any other's. SGD with Nesterov momentum and a cosine
    learning rate, NAS-Bench-201's recipe (Dong & Yang, ICLR 2020) with a smaller default rate for
    short schedules.

    Args:
        supernet: the network to train (modified in place).
        train_data: training images and labels.
        epochs: passes over ``train_data``.
        seed: seeds the batch order and the paths (a ``torch.Generator``; no global state).
        batch_size, lr, momentum, weight_decay: the optimiser's settings.
        max_steps: stop after this many steps (for tests); default: all epochs.

    Returns:
        The per-epoch mean loss, wall seconds and steps.

    Example:
        >>> log = train_supernet(net, (x, y), epochs=2, seed=0)   # doctest: +SKIP
    """
    if epochs < 1:
        raise HwnasError(f"epochs must be >= 1, got {epochs}")
    x, y = as_tensors(train_data)
    gen = torch.Generator().manual_seed(0 if seed is None else seed)
    steps_per_epoch = math.ceil(len(x) / batch_size)
    total = steps_per_epoch * epochs if max_steps is None else min(max_steps,
                                                                    steps_per_epoch * epochs)
    opt = torch.optim.SGD(supernet.parameters(), lr=lr, momentum=momentum, nesterov=True,
                          weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=max(total, 1))
    log = SupernetTrainLog()
    t0 = time.perf_counter()
    supernet.train()
    while log.steps < total:
        losses = []
        for idx in _batches(len(x), batch_size, gen):
            path = torch.randint(len(OPS), (len(EDGES),), generator=gen).tolist()
            loss = F.cross_entropy(supernet(x[idx], path), y[idx])
            opt.zero_grad(set_to_none=True)
            loss.backward()
            nn.utils.clip_grad_norm_(supernet.parameters(), 5.0)
            opt.step()
            sched.step()
            losses.append(float(loss.detach()))
            log.steps += 1
            if log.steps >= total:
                break
        log.epoch_loss.append(float(np.mean(losses)))
    log.seconds = time.perf_counter() - t0
    return log


@torch.no_grad()
def recalibrate_bn(supernet: NB201Supernet, path: SubnetPath, data: Data, batches: int = 4,
                   batch_size: int = 128, seed: int | None = 0) -> None:
    """Recompute every BatchNorm's running statistics for sub-network ``path``.

    The statistics are reset and re-estimated as the plain average (``momentum=None``) over
    ``batches`` training batches run through ``path`` in train mode (Guo et al., ECCV 2020).
    Layers off the path are reset too; every evaluation recalibrates, so no earlier one leaks.
    """
    x, _ = as_tensors(data)
    bns = [m for m in supernet.modules() if isinstance(m, nn.modules.batchnorm._BatchNorm)]
    saved = [m.momentum for m in bns]
    for m in bns:
        m.reset_running_stats()
        m.momentum = None
    was_training = supernet.training
    supernet.train()
    gen = torch.Generator().manual_seed(0 if seed is None else seed)
    for idx in _batches(len(x), batch_size, gen)[:batches]:
        supernet(x[idx], path)
    for m, mom in zip(bns, saved, strict=True):
        m.momentum = mom
    supernet.train(was_training)


@torch.no_grad()
def evaluate_subnet(supernet: NB201Supernet, arch: SubnetPath, data: Data,
                    calibration: Data | None = None, bn_batches: int = 4,
                    batch_size: int = 256, seed: int | None = 0) -> float:
    """Accuracy (%) of sub-network ``arch`` on ``data`` with the supernet's weights.

    Args:
        supernet: a trained supernet (its BN statistics are overwritten).
        arch: the path to score.
        data: the images to score it on (validation).
        calibration: training images for BN recalibration; ``None`` with ``bn_batches=0``
            keeps the running statistics as they are.
        bn_batches: batches of ``calibration`` that re-estimate BN statistics (0: none).
        batch_size: evaluation batch size (also the calibration batch size).
        seed: seeds which calibration batches are drawn.
    """
    if bn_batches > 0:
        if calibration is None:
            raise HwnasError("evaluate_subnet: bn_batches > 0 needs calibration data")
        recalibrate_bn(supernet, arch, calibration, bn_batches, batch_size, seed)
    x, y = as_tensors(data)
    supernet.eval()
    correct = 0
    for idx in _batches(len(x), batch_size, None):
        correct += int((supernet(x[idx], arch).argmax(1) == y[idx]).sum())
    return 100.0 * correct / len(x)


class SupernetAccuracy(MetricSource):
    """Validation accuracy (%) of each architecture with weights inherited from a trained
    supernet, after BN recalibration (one-shot evaluation, Bender et al. 2018; Guo et al. 2020).

    Args:
        supernet: a trained :class:`NB201Supernet` (its BN statistics are overwritten).
        val_data: images to score on.
        calibration: training images for BN recalibration.
        bn_batches: calibration batches per architecture.
        batch_size: evaluation and calibration batch size.
        seed: seeds the calibration batches (the same for every architecture).

    Example:
        >>> acc = SupernetAccuracy(net, (xv, yv), (xt, yt))    # doctest: +SKIP
        >>> acc.evaluate([space.sample(0)])                     # doctest: +SKIP
    """

    name = "accuracy:supernet"
    unit = "%"

    def __init__(self, supernet: NB201Supernet, val_data: Data, calibration: Data,
                 bn_batches: int = 4, batch_size: int = 256, seed: int | None = 0):
        super().__init__()
        self.supernet, self.bn_batches, self.batch_size, self.seed = (
            supernet, bn_batches, batch_size, seed)
        self.val_data, self.calibration = as_tensors(val_data), as_tensors(calibration)
        self._cache: dict[tuple[int, ...], float] = {}

    def _evaluate(self, archs: list[Architecture]) -> np.ndarray:
        out = []
        for a in archs:
            key = _genes(a)
            if key not in self._cache:
                self._cache[key] = evaluate_subnet(self.supernet, a, self.val_data,
                                                   self.calibration, self.bn_batches,
                                                   self.batch_size, self.seed)
            out.append(self._cache[key])
        return np.asarray(out)
