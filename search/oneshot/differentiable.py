"""Differentiable latency-aware search over NAS-Bench-201 (DARTS/FBNet with Gumbel-softmax).

Every edge of the cell carries architecture logits ``alpha[edge, op]``; the supernet
(:class:`hwnas.search.oneshot.supernet.NB201Supernet`) runs a relaxed mixture of the operations.
Weight steps on training batches alternate with logit steps on validation batches (first-order
DARTS: Liu, Simonyan & Yang, "DARTS: Differentiable Architecture Search", ICLR 2019). The mixture is
a
Gumbel-softmax sample (Jang, Gu & Poole, "Categorical Reparameterization with Gumbel-Softmax",
ICLR 2017) at a temperature annealed geometrically, as in FBNet (Wu et al., "FBNet:
Hardware-Aware Efficient ConvNet Design via Differentiable Neural Architecture Search", CVPR
2019); ``hard=True`` uses the straight-through one-hot sample of GDAS (Dong & Yang, "Searching for
A Robust Neural Architecture in Four GPU Hours", CVPR 2019), which computes one operation per edge
instead of five. The logit loss adds the expected latency, FBNet's differentiable latency term::

    loss = CE + lam * E[latency]
    E[latency] = b + sum_{edge, op} softmax(alpha)[edge, op] * cost[edge, op]

``cost`` (ms) comes from any latency source through :func:`linear_op_costs`, a least-squares fit of
one additive cost per (edge, operation) on sampled architectures, so the same loss works with an
operator lookup table, a device table or a predictor; its R^2 says how additive that source is.
The final architecture is the argmax of ``alpha`` per edge; sweeping ``lam`` traces a front.

Why not a registered ask/tell strategy: this search learns from gradients of a training loss on
data, not from objective values of asked architectures. ``tell`` would have nothing to learn from,
``ask`` would have to run the whole training inside one call, and the benchmark runner's tabular
problems (which only look up metrics) could not supply the images and supernet it needs. So it is
a plain object, ``DifferentiableSearch(...).run() -> DifferentiableResult``.
"""

from __future__ import annotations

import copy
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from ..errors import HwnasError
from ..metrics import MetricSource
from ..spaces.nb201 import EDGES, OPS
from ..spaces.registry import get_space
from ..spaces.space import Architecture, RNGLike, Space, as_rng
from .supernet import Data, NB201Supernet, as_tensors

__all__ = [
    "OpCosts",
    "linear_op_costs",
    "expected_latency",
    "DifferentiableSearch",
    "DifferentiableResult",
]

LatencyFn = Callable[[list[Architecture]], np.ndarray] | MetricSource


# ---------------------------------------------------------------------- costs
@dataclass(frozen=True)
class OpCosts:
    """Additive latency model ``intercept + sum_edge cost[edge, op_edge]`` (ms).

    ``cost[:, 0]`` (``none``) is 0: the six per-edge offsets are not identifiable apart from the
    intercept, so ``none`` is the reference operation and the intercept absorbs them.

    Attributes:
        cost: ``(6, 5)`` array in ms.
        intercept: ms.
        r2: coefficient of determination on the fitted samples.
        r2_holdout: R^2 on the held-out samples (``None`` when nothing was held out).
        n_samples: architectures with a latency used in the fit.
    """

    cost: np.ndarray
    intercept: float
    r2: float
    r2_holdout: float | None = None
    n_samples: int = 0

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The additive model's latency (ms) of ``archs``."""
        genes = np.array([a.genes for a in archs], dtype=np.int64).reshape(-1, len(EDGES))
        return self.intercept + self.cost[np.arange(len(EDGES)), genes].sum(axis=1)


def _design(genes: np.ndarray) -> np.ndarray:
    """One-hot columns for every (edge, op != none), plus a column of ones."""
    n = len(genes)
    X = np.zeros((n, len(EDGES) * (len(OPS) - 1) + 1))
    for e in range(len(EDGES)):
        g = genes[:, e]
        rows = np.flatnonzero(g > 0)
        X[rows, e * (len(OPS) - 1) + g[rows] - 1] = 1.0
    X[:, -1] = 1.0
    return X


def _r2(y: np.ndarray, pred: np.ndarray) -> float:
    ss = float(np.sum((y - y.mean()) ** 2))
    return 1.0 - float(np.sum((y - pred) ** 2)) / ss if ss > 0 else float("nan")


def linear_op_costs(space: Space, latency: LatencyFn, n_samples: int = 200,
                    rng: RNGLike = None, holdout: float = 0.25) -> OpCosts:
    """Fit one additive latency cost per (edge, operation) by least squares.

    Args:
        space: the nb201 space.
        latency: a :class:`MetricSource` (lookup table, device table, predictor, live runtime)
            or a function from a list of architectures to latencies (ms; NaN: unknown).
        n_samples: distinct architectures drawn uniformly at random.
        rng: seed or generator of the draw.
        holdout: fraction held out to report ``r2_holdout`` before the final fit on all.

    Returns:
        The fitted :class:`OpCosts`.

    Raises:
        HwnasError: not the nb201 space, or fewer usable samples than coefficients.

    Example:
        >>> costs = linear_op_costs(space, LUTLatency(lut), 200, rng=0)   # doctest: +SKIP
        >>> costs.r2                                                       # doctest: +SKIP
    """
    if space.name != "nb201":
        raise HwnasError(f"linear_op_costs models nb201 cells, got space {space.name!r}")
    gen = as_rng(rng)
    n_samples = min(n_samples, len(space))
    flat = gen.choice(len(space), size=n_samples, replace=False)
    genes = np.stack(np.unravel_index(flat, tuple(space.n_choices)), axis=1)
    archs = [space.from_genes(g) for g in genes]
    evaluate = latency.evaluate if isinstance(latency, MetricSource) else latency
    y = np.asarray(evaluate(archs), dtype=np.float64)
    ok = np.isfinite(y)
    genes, y = genes[ok], y[ok]
    X = _design(genes)
    if len(y) < X.shape[1]:
        raise HwnasError(f"linear_op_costs: {len(y)} architectures with a latency; need at "
                         f"least {X.shape[1]} (draw more samples)")
    r2_holdout = None
    n_test = int(round(holdout * len(y)))
    if n_test >= 2 and len(y) - n_test >= X.shape[1]:
        test = gen.permutation(len(y))[:n_test]
        train = np.setdiff1d(np.arange(len(y)), test)
        coef, *_ = np.linalg.lstsq(X[train], y[train], rcond=None)
        r2_holdout = _r2(y[test], X[test] @ coef)
    coef, *_ = np.linalg.lstsq(X, y, rcond=None)
    cost = np.zeros((len(EDGES), len(OPS)))
    cost[:, 1:] = coef[:-1].reshape(len(EDGES), len(OPS) - 1)
    return OpCosts(cost, float(coef[-1]), _r2(y, X @ coef), r2_holdout, int(len(y)))


def expected_latency(alpha: torch.Tensor, costs: OpCosts) -> torch.Tensor:
    """``intercept + sum softmax(alpha) * cost``: FBNet's differentiable latency (ms)."""
    cost = torch.as_tensor(costs.cost, dtype=alpha.dtype)
    return costs.intercept + (torch.softmax(alpha, dim=-1) * cost).sum()


# ---------------------------------------------------------------------- search
@dataclass
class DifferentiableResult:
    """The derived architecture and how the search got there.

    Attributes:
        arch: argmax of ``alpha`` on every edge.
        alpha: final logits ``(6, 5)``.
        probs: ``softmax(alpha)`` per edge.
        expected_latency_ms: the latency term at the final logits (``None`` without costs).
        history: one dict per epoch: ``epoch, tau, train_ce, val_ce, expected_latency_ms``.
        seconds: wall time of :meth:`DifferentiableSearch.run`.
        supernet: the supernet after the search (a copy; the caller's is untouched).
    """

    arch: Architecture
    alpha: np.ndarray
    probs: np.ndarray
    expected_latency_ms: float | None
    history: list[dict] = field(default_factory=list)
    seconds: float = 0.0
    supernet: NB201Supernet | None = None


class DifferentiableSearch:
    """Gumbel-softmax DARTS/FBNet search over nb201 with a latency penalty.

    Args:
        supernet: a supernet (ideally warmed up by :func:`train_supernet`); it is copied, so
            one warmed-up supernet can seed several searches.
        train_data: images for the weight steps.
        val_data: images for the logit steps.
        costs: the additive latency model; ``None`` searches for accuracy alone.
        lam: weight of the expected latency (per ms) in the logit loss.
        epochs: passes over ``train_data``, each step a weight step then a logit step.
        warmup_epochs: weight-only epochs first (FBNet trains weights alone at first).
        batch_size: batch size of both steps.
        w_lr, w_momentum, w_weight_decay: SGD (Nesterov, cosine) for the weights.
        alpha_lr, alpha_weight_decay: Adam for the logits (DARTS's choice of optimiser).
        tau: Gumbel-softmax temperature at the first and the last epoch (geometric in between).
        hard: straight-through one-hot samples (GDAS: one operation per edge computed) instead
            of soft mixtures of all five.
        seed: seeds batches and Gumbel noise (a ``torch.Generator``; no global state).

    Example:
        >>> search = DifferentiableSearch(net, (xt, yt), (xv, yv), costs, lam=0.1)  # doctest: +SKIP
        >>> search.run().arch                                                       # doctest: +SKIP
    """

    def __init__(self, supernet: NB201Supernet, train_data: Data, val_data: Data,
                 costs: OpCosts | None = None, lam: float = 0.0, epochs: int = 10,
                 warmup_epochs: int = 0, batch_size: int = 64, w_lr: float = 0.025,
                 w_momentum: float = 0.9, w_weight_decay: float = 5e-4, alpha_lr: float = 0.01,
                 alpha_weight_decay: float = 0.0, tau: tuple[float, float] = (5.0, 0.5),
                 hard: bool = True, seed: int | None = 0):
        if epochs < 1 or warmup_epochs < 0:
            raise HwnasError(f"epochs={epochs} (>= 1), warmup_epochs={warmup_epochs} (>= 0)")
        if lam < 0 or (lam > 0 and costs is None):
            raise HwnasError(f"lam={lam}: must be >= 0, and > 0 needs costs")
        if not (tau[0] > 0 and tau[1] > 0):
            raise HwnasError(f"tau={tau}: temperatures must be > 0")
        self.supernet, self.train_data, self.val_data = supernet, train_data, val_data
        self.costs, self.lam, self.epochs, self.warmup_epochs = costs, lam, epochs, warmup_epochs
        self.batch_size, self.w_lr, self.w_momentum = batch_size, w_lr, w_momentum
        self.w_weight_decay, self.alpha_lr = w_weight_decay, alpha_lr
        self.alpha_weight_decay, self.tau, self.hard, self.seed = (
            alpha_weight_decay, tau, hard, seed)

    def _tau(self, epoch: int) -> float:
        if self.epochs == 1:
            return self.tau[1]
        return self.tau[0] * (self.tau[1] / self.tau[0]) ** (epoch / (self.epochs - 1))

    def _sample(self, alpha: torch.Tensor, tau: float, gen: torch.Generator
                ) -> tuple[torch.Tensor, torch.Tensor | None]:
        u = torch.rand(alpha.shape, generator=gen).clamp_(1e-10, 1 - 1e-10)
        soft = torch.softmax((alpha - torch.log(-torch.log(u))) / tau, dim=-1)
        if not self.hard:
            return soft, None
        hard = F.one_hot(soft.argmax(-1), len(OPS)).to(soft.dtype)
        return hard - soft.detach() + soft, hard.bool()

    def run(self) -> DifferentiableResult:
        """Search; returns the argmax architecture, the logits and the history."""
        t0 = time.perf_counter()
        net = copy.deepcopy(self.supernet)
        xt, yt = as_tensors(self.train_data)
        xv, yv = as_tensors(self.val_data)
        gen = torch.Generator().manual_seed(0 if self.seed is None else self.seed)
        alpha = nn.Parameter(torch.zeros(len(EDGES), len(OPS)))
        total_epochs = self.warmup_epochs + self.epochs
        steps = total_epochs * math.ceil(len(xt) / self.batch_size)
        w_opt = torch.optim.SGD(net.parameters(), lr=self.w_lr, momentum=self.w_momentum,
                                nesterov=True, weight_decay=self.w_weight_decay)
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(w_opt, T_max=max(steps, 1))
        a_opt = torch.optim.Adam([alpha], lr=self.alpha_lr, betas=(0.5, 0.999),
                                 weight_decay=self.alpha_weight_decay)
        history: list[dict] = []
        val_order: list[torch.Tensor] = []
        net.train()
        for epoch in range(total_epochs):
            search = epoch >= self.warmup_epochs
            tau = self._tau(epoch - self.warmup_epochs) if search else self.tau[0]
            train_ce, val_ce = [], []
            for idx in torch.randperm(len(xt), generator=gen).split(self.batch_size):
                # weight step: a relaxed sample of the current logits, held fixed
                w, active = self._sample(alpha.detach(), tau, gen)
                loss = F.cross_entropy(net(xt[idx], weights=w, active=active), yt[idx])
                w_opt.zero_grad(set_to_none=True)
                loss.backward()
                nn.utils.clip_grad_norm_(net.parameters(), 5.0)
                w_opt.step()
                sched.step()
                train_ce.append(float(loss.detach()))
                if not search:
                    continue
                # logit step on held-out images (first-order DARTS)
                if not val_order:
                    val_order = list(torch.randperm(len(xv), generator=gen).split(
                        self.batch_size))
                vidx = val_order.pop()
                w, active = self._sample(alpha, tau, gen)
                ce = F.cross_entropy(net(xv[vidx], weights=w, active=active), yv[vidx])
                loss = ce if self.costs is None else ce + self.lam * expected_latency(
                    alpha, self.costs)
                # only the logits' gradient: no weight gradients are computed or accumulated
                (alpha.grad,) = torch.autograd.grad(loss, [alpha])
                a_opt.step()
                val_ce.append(float(ce.detach()))
            history.append({
                "epoch": epoch, "tau": tau if search else None,
                "train_ce": float(np.mean(train_ce)),
                "val_ce": float(np.mean(val_ce)) if val_ce else None,
                "expected_latency_ms": self._expected(alpha)})
        probs = torch.softmax(alpha.detach(), -1).numpy()
        arch = get_space("nb201").from_genes(probs.argmax(axis=1).tolist())
        return DifferentiableResult(arch, alpha.detach().numpy().copy(), probs,
                                    self._expected(alpha), history,
                                    time.perf_counter() - t0, net)

    def _expected(self, alpha: torch.Tensor) -> float | None:
        if self.costs is None:
            return None
        with torch.no_grad():
            return float(expected_latency(alpha, self.costs))
