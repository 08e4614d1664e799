"""Per-architecture features of one latency table, few-shot ridge fits and the shot plan.

A new device is described by nothing but a few measured latencies; everything else a predictor
knows about an architecture comes from tables it already has. :class:`LatencyFeatures` gathers it
for every architecture of a space's table: the log-latencies on the *source devices* (standardised
per device), the architecture's structural counts and its one-hot encoding
(:mod:`hwnas.meta.encoders`).

:func:`ridge_loo` fits one linear model on log-latency from a support set and returns its
leave-one-out error in closed form (Allen's PRESS statistic), which weights the candidates of the
ensemble in :mod:`hwnas.meta.latency`; :func:`additive_loo` fits latency in milliseconds as a
non-negative sum of per-operation costs (the premise of operator lookup tables: FBNet, Wu et al.,
CVPR 2019; nn-Meter, Zhang et al., MobiSys 2021), by non-negative least squares (Lawson & Hanson,
*Solving Least Squares Problems*, 1974). :func:`plan_shots` picks which architectures to measure:
the reference set of HELP (Lee et al., NeurIPS 2021) and then, greedily, the architectures that most
increase the determinant of the design's information matrix over the source features (D-optimal
design, Fedorov 1972), so that twenty measurements pin down the combination of source devices.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.optimize import nnls

from hwnas.search import as_rng

from .errors import MetaError
from .predictor_base import check_blocks, check_indices, check_seed, ridge_loo, standardise

__all__ = ["LatencyFeatures", "adaptive_ridge_loo", "additive_loo", "kernel_ridge_loo",
           "nearest_loo", "plan_shots", "ridge_loo", "standardise"]


@dataclass
class LatencyFeatures:
    """Features of every architecture of one table (row ``i`` = architecture index ``i``).

    Args:
        source_latency_ms: ``(n, k)`` latencies on the ``k`` source devices (positive, finite).
        onehot: ``(n, d)`` one-hot features (:func:`hwnas.meta.encoders.onehot_features`).
        structure: ``(n, c)`` structural counts (:func:`hwnas.meta.encoders.structure_features`).
        sources: names of the source devices, in column order.

    Attributes:
        S: standardised log source latencies; C: standardised structure; A: one-hot (float32).

    Raises:
        MetaError: shapes that disagree, or latencies that are not finite and positive.
    """

    source_latency_ms: np.ndarray
    onehot: np.ndarray
    structure: np.ndarray
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        lat = np.asarray(self.source_latency_ms, dtype=np.float64)
        if lat.ndim != 2 or lat.shape[1] == 0:
            raise MetaError(f"source_latency_ms must be (architectures, devices) with at least one "
                            f"device, got shape {lat.shape}")
        if not np.isfinite(lat).all() or (lat <= 0).any():
            raise MetaError("source latencies must be finite and positive")
        check_blocks(len(lat), lat.shape[1], self.onehot, self.structure, self.sources)
        self.S = standardise(np.log(lat))
        self.C = standardise(self.structure)
        self.A = np.asarray(self.onehot, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.S)

    def check_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """``indices`` as an int array, or :class:`MetaError` if any is outside the table."""
        return check_indices(len(self), indices)


def additive_loo(counts: np.ndarray, latency_ms: np.ndarray, support: np.ndarray
                 ) -> tuple[np.ndarray, float]:
    """Latency as a fixed cost plus non-negative costs per counted operation, from the support set.

    ``latency_ms ~ c0 + counts @ c`` with ``c0, c >= 0``, fitted on the milliseconds (costs add up
    in time, not in log-time). Accelerators and batched GPUs are close to additive in their
    operations, and the sign constraint keeps twenty shots from overfitting (no penalty to tune).

    Args:
        counts: ``(n, c)`` non-negative structural counts of every architecture (unstandardised).
        latency_ms: ``(m,)`` latencies of the support rows.
        support: ``(m,)`` row indices into ``counts``.

    Returns:
        ``(log-latency predictions for every row, mean squared leave-one-out error on the log
        scale)``; predictions are floored at half the fastest shot (a sum of costs is positive).
    """
    X = np.hstack([np.ones((len(counts), 1)), np.asarray(counts, dtype=np.float64)])
    y = np.asarray(latency_ms, dtype=np.float64)
    Xs = X[support]
    floor = 0.5 * float(y.min())
    rows = np.arange(len(y))
    loo = np.array([Xs[i] @ nnls(Xs[rows != i], y[rows != i])[0] for i in rows])
    err = float(np.mean((np.log(y) - np.log(np.maximum(loo, floor))) ** 2))
    return np.log(np.maximum(X @ nnls(Xs, y)[0], floor)), err


def nearest_loo(S: np.ndarray, y: np.ndarray, support: np.ndarray, by: str = "loo"
                ) -> tuple[np.ndarray, float, int]:
    """The one source column that, mapped affinely, fits the support best (by leave-one-out).

    ``y ~ a + b * S[:, j]`` for every column ``j`` by least squares on the support rows; the
    column with the smallest leave-one-out error (closed form: ``r_i / (1 - h_ii)`` with
    ``h_ii = 1/m + (x_i - mean)^2 / sum (x - mean)^2``) is kept. It is the "closest device"
    heuristic (a new device ranks like its nearest known one), as a head that the ensemble
    weighs by its leave-one-out error like any other; its error is optimistic by the choice
    among ``k`` columns, so it is only kept where it really fits better.

    Args:
        S: ``(n, k)`` standardised log source latencies of every architecture.
        y: ``(m,)`` log-latencies of the support rows.
        support: ``(m,)`` row indices into ``S``.
        by: how the column is chosen: ``"loo"`` (smallest leave-one-out error) or ``"rank"``
            (largest Spearman correlation with the shots: a ranking, robust to the few large
            residuals a tie-heavy or noisy table gives).

    Returns:
        ``(predictions of y for every row, mean squared leave-one-out error, the column)``.

    Raises:
        MetaError: an unknown ``by``.
    """
    if by not in ("loo", "rank"):
        raise MetaError(f"unknown nearest choice {by!r}; valid: loo, rank")
    X = np.asarray(S, dtype=np.float64)[support]
    y = np.asarray(y, dtype=np.float64)
    xc = X - X.mean(axis=0)
    sxx = np.maximum((xc**2).sum(axis=0), 1e-12)
    b = xc.T @ (y - y.mean()) / sxx
    resid = (y - y.mean())[:, None] - xc * b
    hat = 1.0 / len(y) + xc**2 / sxx
    loo = np.mean((resid / np.clip(1.0 - hat, 1e-6, None)) ** 2, axis=0)
    if by == "rank":
        ranks = np.argsort(np.argsort(X, axis=0), axis=0).astype(np.float64)
        ry = np.argsort(np.argsort(y)).astype(np.float64)
        rc, ryc = ranks - ranks.mean(axis=0), ry - ry.mean()
        agree = rc.T @ ryc / np.maximum(np.sqrt((rc**2).sum(axis=0) * (ryc**2).sum()), 1e-12)
        j = int(np.argmax(agree))
    else:
        j = int(np.argmin(loo))
    pred = y.mean() + (np.asarray(S[:, j], dtype=np.float64) - X[:, j].mean()) * b[j]
    return pred, float(loo[j]), j


def _as_shots(S: np.ndarray, y: np.ndarray, support: np.ndarray, what: str
              ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``S``, ``y`` and ``support`` as float, float and int arrays; at least three shots."""
    support = np.asarray(support, dtype=np.int64)
    if len(support) < 3:
        raise MetaError(f"{len(support)} shots; {what} needs at least 3")
    return np.asarray(S, dtype=np.float64), np.asarray(y, dtype=np.float64), support


def _agreement(X: np.ndarray, y: np.ndarray, power: float) -> np.ndarray:
    """``|corr(X[:, j], y)| ** power`` per column, scaled so that the largest is 1."""
    xc, yc = X - X.mean(axis=0), y - y.mean()
    r = xc.T @ yc / np.sqrt(np.maximum((xc**2).sum(axis=0) * (yc**2).sum(), 1e-24))
    s = np.abs(r) ** power
    return s / max(float(s.max()), 1e-12)


def adaptive_ridge_loo(S: np.ndarray, y: np.ndarray, support: np.ndarray, power: float,
                       lam: float = 1.0) -> tuple[np.ndarray, float]:
    """Ridge on the source columns, each scaled by how well it alone agrees with the shots.

    Column ``j`` is multiplied by ``s_j = |corr(S[support, j], y)| ** power / max``, which is
    a ridge whose penalty on that column's weight is ``lam / s_j^2``: an *adaptive* ridge
    (per-coefficient penalties from a first estimate, as in the adaptive lasso, Zou, JASA 2006;
    Grandvalet, ICANN 1998). Sources that rank the shots like the target keep their weight,
    the others are shrunk away; a large ``power`` tends to the nearest source
    (:func:`nearest_loo`), ``power = 0`` is the plain ridge. It is the blend of the two that a
    device close to a few sources (a phone among GPUs) needs.

    The leave-one-out error is *nested*: for each left-out shot the scales are recomputed from
    the other shots, so the head is not favoured for having looked at the shot it predicts.

    Args:
        S: ``(n, k)`` standardised log source latencies of every architecture.
        y: ``(m,)`` log-latencies of the support rows.
        support: ``(m,)`` row indices into ``S``.
        power: exponent of the agreement (>= 0).
        lam: ridge penalty (> 0).

    Returns:
        ``(predictions of y for every row, mean squared leave-one-out error)``.

    Raises:
        MetaError: a negative ``power``, fewer than three shots.
    """
    if not power >= 0:
        raise MetaError(f"power must be >= 0, got {power!r}")
    S, y, support = _as_shots(S, y, support, "the adaptive ridge")
    m = len(support)
    Xs = S[support]
    pred, _ = ridge_loo(S * _agreement(Xs, y, power), y, support, lam)
    loo = np.empty(m)
    local = np.arange(m)
    for i in range(m):
        keep = local != i
        scaled = Xs * _agreement(Xs[keep], y[keep], power)
        # fit on the other shots (rows of ``scaled``), predict the left-out one
        p_i, _ = ridge_loo(scaled, y[keep], local[keep], lam)
        loo[i] = p_i[i]
    return pred, float(np.mean((y - loo) ** 2))


def kernel_ridge_loo(S: np.ndarray, y: np.ndarray, support: np.ndarray,
                     scales: Sequence[float], penalties: Sequence[float]
                     ) -> list[tuple[np.ndarray, float]]:
    """Kernel ridge regressions on the source columns with a Gaussian (RBF) kernel.

    ``y ~ mean(y) + sum_j a_j k(x, x_j)`` over the support rows ``x_j``, with
    ``k(x, x') = exp(-|x - x'|^2 / (scale * d))``, ``d`` the median squared distance between two
    shots (so ``scale`` is free of the number of sources), and ``a = (K + lam I)^-1 (y - mean)``
    (Saunders, Gammerman & Vovk, ICML 1998; the posterior mean of a Gaussian process, Rasmussen &
    Williams 2006, ch. 2). Unlike the linear heads it can bend: a device that is fast where its
    nearest sources are fast, but saturates where they are slow (a batch-1 GPU, a phone's 1 ms
    floor), is not one affine map of them. The leave-one-out error is Allen's PRESS with the
    smoother's exact hat matrix (the mean counted as fitted).

    Args:
        S: ``(n, k)`` standardised log source latencies of every architecture.
        y: ``(m,)`` log-latencies of the support rows.
        support: ``(m,)`` row indices into ``S``.
        scales: kernel widths (> 0).
        penalties: ridge penalties (> 0); one head per penalty and width.

    Returns:
        per penalty, per width (in that order), ``(predictions of y for every row, mean squared
        leave-one-out error)``.

    Raises:
        MetaError: a width or penalty that is not positive, fewer than three shots.
    """
    if not all(lam > 0 for lam in penalties) or not all(c > 0 for c in scales):
        raise MetaError(f"kernel widths and penalties must be > 0, got {list(scales)}, "
                        f"{list(penalties)}")
    S, y, support = _as_shots(S, y, support, "kernel ridge")
    m = len(support)
    Xs = S[support]
    d2 = np.maximum((S**2).sum(axis=1)[:, None] + (Xs**2).sum(axis=1)[None, :] - 2.0 * S @ Xs.T,
                    0.0)
    median = float(np.median(d2[support][np.triu_indices(m, 1)]))
    median = median if median > 0 else 1.0  # identical shots: any width is as good
    mu = float(y.mean())
    centre = np.eye(m) - 1.0 / m
    heads: dict[tuple[float, float], tuple[np.ndarray, float]] = {}
    for scale in scales:  # one kernel of every row per width, shared by the penalties
        K_all = np.exp(-d2 / (scale * median))
        K = K_all[support]
        for lam in penalties:
            inv = np.linalg.inv(K + lam * np.eye(m))
            hat = 1.0 / m + K @ inv @ centre  # y_hat = hat @ y
            resid = (y - hat @ y) / np.clip(1.0 - np.diag(hat), 1e-6, None)
            heads[lam, scale] = (mu + K_all @ (inv @ (y - mu)), float(np.mean(resid**2)))
    return [heads[lam, scale] for lam in penalties for scale in scales]


def plan_shots(features: LatencyFeatures, n: int, reference: Sequence[int], seed: int | None = 0,
               pool: int = 3000, components: int | None = 5, structure: bool = True
               ) -> np.ndarray:
    """The ``n`` architectures to measure on a new device: ``reference`` first, then D-optimal.

    Args:
        features: the table's features; the design is over its source features (and intercept).
        n: total number of architectures (>= 1; below ``len(reference)``, the reference
            set's first ``n``).
        reference: HELP's reference architectures (the hardware embedding's inputs).
        seed: draws the candidate pool the greedy design picks from.
        pool: candidates considered (a random subset of the table, for speed).
        components: design over the source features' first ``components`` principal
            components instead of every source column (``None``: every column). The default
            (5, with ``structure``) ranked best on the validation devices of the
            leave-one-device-out benchmark (``bench/studies/latency_lodo.py``): with 10 free
            picks, a design over 23 source columns spends them on directions 20 shots cannot
            pin down anyway, while the few leading components and the structure are what every
            head of the ensemble fits.
        structure: add the standardised structural counts to the design.

    Returns:
        ``n`` distinct indices, the reference set first.

    Raises:
        MetaError: ``n`` below 1 or larger than the table.
    """
    ref = list(dict.fromkeys(int(i) for i in features.check_indices(reference)))
    seed = check_seed(seed)
    if n < 1:
        raise MetaError(f"{n} shots: the plan needs at least one")
    if n <= len(ref):
        # fewer shots than the reference set: its first n (HELP's embedding, truncated)
        return np.asarray(ref[:n], dtype=np.int64)
    if n > len(features):
        raise MetaError(f"{n} shots but the table has only {len(features)} architectures")
    rng = as_rng(seed)
    rest = np.setdiff1d(np.arange(len(features)), ref)
    cand = rng.choice(rest, size=min(pool, len(rest)), replace=False)
    Z = np.asarray(features.S, dtype=np.float64)
    if components is not None and components < Z.shape[1]:
        u, sv, _ = np.linalg.svd(Z - Z.mean(axis=0), full_matrices=False)
        Z = u[:, :components] * (sv[:components] / np.sqrt(len(Z)))
    if structure:
        Z = np.hstack([Z, features.C])
    Z = np.hstack([Z, np.ones((len(features), 1))])
    chosen = list(ref)
    for _ in range(n - len(ref)):
        info = Z[chosen].T @ Z[chosen] + 0.1 * np.eye(Z.shape[1])
        gain = np.einsum("ij,ij->i", Z[cand] @ np.linalg.inv(info), Z[cand])
        j = int(np.argmax(gain))
        chosen.append(int(cand[j]))
        cand = np.delete(cand, j)
    return np.asarray(chosen, dtype=np.int64)
