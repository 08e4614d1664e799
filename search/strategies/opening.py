"""The opening of a prior-guided search: the order in which the priors alone say to evaluate.

For the first few hundred evaluations of a two-objective search whose objectives both have prior
columns (another task's accuracy, other devices' latencies), a model fitted from the search's own
archive ranks the top of the space worse than the priors do. The opening asks instead, in order,
the architectures likeliest to be on the whole space's Pareto front in worlds drawn from the
priors' predictions: each objective is either its *nearest* prior column (the one whose ranking
agrees best with the archive -- the nearest source task of transfer NAS, as in TransNAS-Bench-101,
Duan et al., CVPR 2021) with a fixed spread, or a ridge regression of the objective on a set of
prior columns fitted to the archive (the "ridge on the public devices" baseline of latency
transfer; Hoerl & Kennard, Technometrics 1970), with its residual spread. The probability of
Pareto optimality over sampled worlds is the quantity Thompson-sampling multi-objective searches
draw from (TSEMO, Bradford et al., J. Global Optimization 2018).

:class:`~hwnas.search.strategies.surrogate.SurrogateParetoSearch` follows this order while its
archive is smaller than ``opening`` and refreshes it as the archive grows.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from ..errors import HwnasError

__all__ = ["front_trail", "membership_order", "nearest_column", "ridge_prediction",
           "top_spread"]


def front_trail(f0: np.ndarray, f1: np.ndarray) -> np.ndarray:
    """How far each row's ``f0`` trails the smallest ``f0`` among the rows no worse in ``f1``
    (both minimised; ``0`` on the front)."""
    order = np.lexsort((f0, f1))  # a tie in f1: the better f0 first
    out = np.empty(len(f0))
    out[order] = f0[order] - np.minimum.accumulate(f0[order])
    return out


def membership_order(mu: np.ndarray, sd: Sequence[float], draws: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Rows by decreasing frequency of being on the two-objective front (both minimised) when
    objective ``k`` of every row is drawn from ``Normal(mu[:, k], sd[k])``.

    Rows never on a sampled front follow, those nearest the predicted front first. A row more
    than six spreads behind the best ``f0`` of the rows clearly better in ``f1`` (by three of its
    spreads) is practically never a member and is not drawn.

    Raises:
        HwnasError: ``mu`` that is not ``(n, 2)``, a negative or non-finite spread.
    """
    mu = np.asarray(mu, dtype=np.float64)
    if mu.ndim != 2 or mu.shape[1] != 2:
        raise HwnasError(f"membership_order: predictions of shape (n, 2), got {mu.shape}")
    s0, s1 = (float(s) for s in sd)
    if not (np.isfinite(s0) and np.isfinite(s1)) or s0 < 0 or s1 < 0:
        raise HwnasError(f"membership_order: spreads must be finite and >= 0, got {sd}")
    f0, f1 = mu[:, 0], mu[:, 1]
    trail = front_trail(f0, f1)
    by1 = np.argsort(f1, kind="stable")
    best = np.minimum.accumulate(f0[by1])
    k = np.searchsorted(f1[by1], f1 - 3 * s1, "left")  # rows strictly better by 3 spreads
    ahead = np.where(k > 0, best[np.maximum(k - 1, 0)], np.inf)
    cand = np.flatnonzero(f0 < ahead + 6 * s0) if s0 > 0 else np.flatnonzero(trail == 0)
    freq = np.zeros(len(mu))
    for _ in range(draws):
        a = f0[cand] + s0 * rng.standard_normal(len(cand))
        t = f1[cand] + s1 * rng.standard_normal(len(cand))
        order = np.lexsort((a, t))
        a = a[order]
        best_before = np.concatenate([[np.inf], np.minimum.accumulate(a)[:-1]])
        freq[cand[order]] += a < best_before  # better f0 than every row better in f1
    return np.lexsort((trail, -freq))


def nearest_column(values: np.ndarray, y: np.ndarray) -> tuple[int, float]:
    """The column of ``values`` (rows: the archive) whose ranking agrees best with ``y``, and the
    sign of that agreement (Spearman's rho); NaN entries are left out per column."""
    from scipy.stats import spearmanr

    best, pick, sign = -1.0, 0, 1.0
    for c in range(values.shape[1]):
        ok = ~np.isnan(values[:, c])
        if ok.sum() < 3 or np.ptp(values[ok, c]) == 0 or np.ptp(y[ok]) == 0:
            continue
        rho = float(spearmanr(values[ok, c], y[ok])[0])
        if abs(rho) > best:
            best, pick, sign = abs(rho), c, (1.0 if rho >= 0 else -1.0)
    return pick, sign


def top_spread(x: np.ndarray, fraction: float = 0.1) -> float:
    """Standard deviation of the best (smallest) ``fraction`` of ``x``: the scale on which a
    prior column separates the architectures a front is made of."""
    x = np.sort(x[np.isfinite(x)])
    top = x[:max(2, int(fraction * len(x)))]
    return float(top.std())


def ridge_prediction(X: np.ndarray, y: np.ndarray, X_all: np.ndarray, log: bool
                     ) -> tuple[np.ndarray, float]:
    """Predictions of a ridge regression of ``y`` on ``X`` (penalty by leave-one-out over
    ``10^-3 .. 10^3``, :class:`sklearn.linear_model.RidgeCV`) for ``X_all``, and one spread for
    all of them: the residual standard deviation (inflated for the ~5 effective parameters
    spent). With ``log``, the fit is on ``log y`` and predictions and spread return to ``y``'s
    units (the spread at the median prediction): latency ratios are what transfer between
    devices."""
    from sklearn.linear_model import RidgeCV  # scikit-learn loads when an opening is asked for

    t = np.log(y) if log else y
    model = RidgeCV(alphas=np.logspace(-3, 3, 13)).fit(X, t)
    resid = t - model.predict(X)
    n = len(t)
    sd = float(np.std(resid)) * np.sqrt(n / max(n - 5, 1))
    pred = model.predict(X_all)
    if log:
        pred = np.exp(pred)
        sd *= float(np.median(pred))
    return pred, sd
