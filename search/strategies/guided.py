"""Predictor-guided search: an ensemble surrogate picks, among mutations of the front, what to ask.

A multi-objective reading of BANANAS (White et al., "BANANAS: Bayesian Optimization with Neural
Architectures for Neural Architecture Search", AAAI 2021): after ``initial`` random architectures,
every ask fits an ensemble of small networks on the one-hot encoding (White et al., NeurIPS 2020)
of everything told, mutates the current non-dominated architectures (plus a few random samples)
into candidates, and asks for those with the largest optimistic hypervolume improvement: each
objective's ensemble mean minus ``kappa`` standard deviations, scored by the hypervolume it would
add to the observed front (Emmerich et al., EMO 2005, with a lower-confidence-bound point in place
of the expectation). Points predicted to be dominated are ranked by how far they are from the front.
Objectives are modelled as their empirical CDF over the archive (ranks in (0, 1)): outliers such as
NAS-Bench-201's untrainable cells then do not swamp the fit, and dominance is unchanged.

The ensemble members are one-hidden-layer networks whose hidden layer is random and whose output
layer is solved by ridge regression on a bootstrap resample (random-feature networks; Rahimi &
Recht, NeurIPS 2007): a closed-form fit of a few milliseconds, where BANANAS trains each member by
gradient descent. Members differ in their hidden weights and their resample.
"""

from __future__ import annotations

from collections.abc import Iterator
from itertools import chain

import numpy as np

from ..errors import HwnasError
from ..pareto import pareto_mask
from ..spaces.space import Architecture, Space
from .base import Strategy

__all__ = ["PredictorGuided", "RandomFeatureEnsemble", "hypervolume_gain"]

_ACQUISITIONS = ("lcb", "thompson")


def _ranks(F: np.ndarray) -> np.ndarray:
    """Every column's values as average ranks scaled into (0, 1)."""
    out = np.empty_like(F, dtype=np.float64)
    for j, col in enumerate(F.T):
        s = np.sort(col)
        out[:, j] = (np.searchsorted(s, col, "left") + np.searchsorted(s, col, "right") + 1) / 2
    return out / (len(F) + 1)


class RandomFeatureEnsemble:
    """Bootstrap ensemble of random-feature networks with ridge output layers (multi-output).

    Args:
        members: ensemble size.
        hidden: random ReLU units per member (the one-hot inputs are also fed linearly).
        alpha: ridge penalty on standardised targets.
        seed: seed of the hidden weights and resamples.
    """

    def __init__(self, members: int = 5, hidden: int = 128, alpha: float = 10.0,
                 seed: int | None = None):
        self.members, self.hidden, self.alpha, self.seed = members, hidden, alpha, seed

    def _features(self, X: np.ndarray) -> np.ndarray:
        """``(members, n, d + hidden + 1)``: inputs, random ReLU units, a constant."""
        k, n = self.members, len(X)
        return np.concatenate([np.broadcast_to(X, (k, *X.shape)),
                               np.maximum(X @ self.hidden_ + self.bias_, 0.0),
                               np.ones((k, n, 1))], axis=2)

    def fit(self, X: np.ndarray, Y: np.ndarray) -> RandomFeatureEnsemble:
        """Fit every member on a bootstrap resample of ``(X, Y)``; returns self."""
        rng = np.random.default_rng(self.seed)
        X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        self.mean_, self.scale_ = Y.mean(axis=0), Y.std(axis=0) + 1e-12
        Z = (Y - self.mean_) / self.scale_
        k, (n, d) = self.members, X.shape
        # unit pre-activation variance for one-hot rows with about X.sum(axis=1) ones
        std = 1.0 / np.sqrt(max(1.0, X.sum(axis=1).mean()))
        self.hidden_ = rng.normal(0.0, std, (k, d, self.hidden))
        self.bias_ = rng.normal(0.0, 0.5, (k, 1, self.hidden))
        H = self._features(X)
        w = np.stack([np.bincount(rng.integers(0, n, n), minlength=n) for _ in range(k)])
        Hw = np.swapaxes(H * w[:, :, None], 1, 2)
        # all members in one stacked call each: many small BLAS/LAPACK calls stall badly when
        # threaded BLAS shares busy cores
        A = Hw @ H + self.alpha * np.eye(H.shape[2])
        self.coef_ = np.linalg.solve(A, Hw @ Z)
        return self

    def predict_members(self, X: np.ndarray) -> np.ndarray:
        """``(members, n, outputs)`` predictions in the targets' units."""
        P = self._features(np.asarray(X, dtype=np.float64)) @ self.coef_
        return P * self.scale_ + self.mean_

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Ensemble mean and standard deviation, each ``(n, outputs)``."""
        P = self.predict_members(X)
        return P.mean(axis=0), P.std(axis=0)


def hypervolume_gain(front: np.ndarray, points: np.ndarray, ref: np.ndarray,
                     rng: np.random.Generator, samples: int = 4096) -> np.ndarray:
    """Hypervolume each point would add to ``front`` (minimisation, bounded by ``ref``).

    Exact for two objectives; a Monte-Carlo estimate on ``samples`` uniform points otherwise.
    """
    points = np.minimum(points, ref)
    if front.shape[1] == 2:
        f = front[np.argsort(front[:, 0])]
        f = f[f[:, 0] < ref[0]]
        # staircase: segment j spans x in [x_j, x_{j+1}) at height y_j (y falls as x grows)
        xs = np.append(f[:, 0], ref[0])
        ys = np.append(ref[1], np.minimum.accumulate(f[:, 1]))  # height left of each x
        gain = np.zeros(len(points))
        for lo, hi, y in zip(np.append(-np.inf, xs[:-1]), xs, ys, strict=True):
            width = np.clip(hi - np.maximum(points[:, 0], lo), 0.0, None)
            gain += width * np.clip(y - points[:, 1], 0.0, None)
        return gain
    ideal = np.minimum(front.min(axis=0), points.min(axis=0))
    U = ideal + rng.random((samples, len(ref))) * (ref - ideal)
    free = ~np.any(np.all(front[None, :, :] <= U[:, None, :], axis=2), axis=1)
    U = U[free]
    volume = np.prod(ref - ideal) / samples
    return np.array([np.all(p <= U, axis=1).sum() for p in points]) * volume


class PredictorGuided(Strategy):
    """BANANAS-like search with an ensemble surrogate and optimistic hypervolume improvement.

    Args:
        space: the search space.
        n_objectives: number of minimised objectives told.
        seed: seed of the strategy's generator.
        initial: random architectures asked before the surrogate is used.
        candidates: candidates scored per ask: ``random_fraction`` of them uniform samples,
            ``far_fraction`` crossovers of two of the best ``parents`` architectures then mutated,
            the rest one-edit neighbours of the non-dominated set (of the next fronts when those
            are all evaluated); none of them evaluated already.
        ensemble: ensemble members.
        kappa: standard deviations subtracted from the mean (optimism), for ``"lcb"``.
        acquisition: ``"lcb"`` (the optimistic point) or ``"thompson"`` (one random member's
            prediction per ask, as in ITS).
        hidden, alpha: random units and ridge penalty of every member.

    Attributes:
        surrogate_: the last fitted ensemble (``None`` before ``initial`` tells).

    With constraint violations told, the violation is one more surrogate output, and candidates
    predicted infeasible are asked only when no other is left.

    Example:
        >>> s = PredictorGuided(get_space("nb201"), 2, seed=0)
        >>> result = run_search(s, evaluate, budget=300)
    """

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None, *,
                 initial: int = 20, candidates: int = 200, ensemble: int = 5,
                 kappa: float = 1.0, acquisition: str = "lcb", random_fraction: float = 0.1,
                 far_fraction: float = 0.2, parents: int = 30, hidden: int = 128,
                 alpha: float = 10.0):
        super().__init__(space, n_objectives, seed)
        if acquisition not in _ACQUISITIONS:
            raise HwnasError(f"acquisition {acquisition!r}; valid: {', '.join(_ACQUISITIONS)}")
        self.initial, self.candidates, self.ensemble = initial, candidates, ensemble
        self.kappa, self.acquisition = kappa, acquisition
        self.random_fraction, self.far_fraction = random_fraction, far_fraction
        self.parents, self.hidden, self.alpha = parents, hidden, alpha
        self.surrogate_: RandomFeatureEnsemble | None = None
        self._pending: set[Architecture] = set()
        self._neighbour_cache: dict[Architecture, list[Architecture]] = {}

    def _tell(self, archs: list[Architecture], F: np.ndarray, violation: np.ndarray) -> None:
        self._pending.difference_update(archs)

    def _new(self, a: Architecture, taken: set[Architecture]) -> bool:
        return a not in self.archive_ and a not in self._pending and a not in taken

    def _random(self, n: int, taken: set[Architecture]) -> list[Architecture]:
        out: list[Architecture] = []
        for _ in range(50 * n):
            if len(out) == n:
                break
            a = self.space.sample(self.rng)
            if self._new(a, taken):
                out.append(a)
                taken.add(a)
        return out

    def ask(self, n: int = 1) -> list[Architecture]:
        warm = len(self.archive_) >= max(1, self.initial)
        out = self._guided(n) if warm else self._random(n, set())
        if len(out) < n:  # the space is (nearly) exhausted: repeats are served from the cache
            out += [self.space.sample(self.rng) for _ in range(n - len(out))]
        self._pending.update(out)
        return out

    def _neighbours(self, a: Architecture) -> list[Architecture]:
        if a not in self._neighbour_cache:
            self._neighbour_cache[a] = self.space.neighbours(a)
        return self._neighbour_cache[a]

    @staticmethod
    def _layers(F: np.ndarray, v: np.ndarray) -> Iterator[np.ndarray]:
        """Archive indices best first: feasible fronts peeled one by one, then the infeasible by
        increasing violation (constrained domination, NSGA-II), computed lazily."""
        left = np.flatnonzero(v <= 0)
        while len(left):
            mask = pareto_mask(F[left])
            yield left[mask]
            left = left[~mask]
        yield from (np.array([i]) for i in np.flatnonzero(v > 0)[np.argsort(v[v > 0])])

    def _neighbourhood(self, archs: list[Architecture], layers: Iterator[np.ndarray], want: int,
                       taken: set[Architecture]) -> list[Architecture]:
        """New one-edit neighbours of the best archived architectures, layer by layer, until
        ``want`` are found."""
        pool: list[Architecture] = []
        for layer in layers:
            for i in layer:
                for b in self._neighbours(archs[i]):
                    if self._new(b, taken):
                        pool.append(b)
                        taken.add(b)
            if len(pool) >= want:
                break
        return pool

    def _recombined(self, archs: list[Architecture], base: np.ndarray, want: int,
                    taken: set[Architecture]) -> list[Architecture]:
        """Crossovers of two good parents, each mutated once, for leaps of several edits
        out of a local optimum (NSGA-Net's operators; Lu et al., GECCO 2019)."""
        out: list[Architecture] = []
        for _ in range(2 * want):
            if len(out) >= want:
                break
            i, j = self.rng.choice(base, 2)
            child = self.space.mutate(self.space.crossover(archs[i], archs[j], self.rng), self.rng)
            if self._new(child, taken):
                out.append(child)
                taken.add(child)
        return out

    def _guided(self, n: int) -> list[Architecture]:
        archs, F, v = self._archive_arrays()
        feasible = v <= 0
        R = _ranks(F)  # empirical CDF per objective: robust to outliers, keeps dominance
        Y = np.column_stack([R, v]) if (~feasible).any() else R
        seed = int(self.rng.integers(2**32))
        self.surrogate_ = RandomFeatureEnsemble(self.ensemble, self.hidden, self.alpha, seed).fit(
            self.space.encode_batch(archs), Y)
        layers = self._layers(F, v)
        base = parents = next(layers)
        while len(parents) < self.parents and len(parents) < len(archs):
            parents = np.concatenate([parents, next(layers)])
        taken: set[Architecture] = set()
        n_random = round(self.random_fraction * self.candidates)
        cands = self._random(n_random, taken)
        cands += self._recombined(archs, parents, round(self.far_fraction * self.candidates), taken)
        pool = self._neighbourhood(archs, chain([base, parents[len(base):]], layers),
                                   self.candidates - len(cands), taken)
        if len(pool) > self.candidates - len(cands):
            keep = np.sort(self.rng.choice(len(pool), self.candidates - len(cands), replace=False))
            pool = [pool[i] for i in keep]
        cands += pool
        if not cands:
            return []
        P = self.surrogate_.predict_members(self.space.encode_batch(cands))
        mu, sd = P.mean(axis=0), P.std(axis=0)
        if self.acquisition == "thompson":  # one member's guess, a fresh one every ask
            lcb = P[self.rng.integers(len(P)), :, : self.n_objectives]
        else:
            lcb = mu[:, : self.n_objectives] - self.kappa * sd[:, : self.n_objectives]
        infeasible = mu[:, self.n_objectives] > 0 if Y.shape[1] > self.n_objectives else \
            np.zeros(len(cands), dtype=bool)
        front, ref = R[base], np.ones(self.n_objectives)
        out: list[Architecture] = []
        chosen = np.zeros(len(cands), dtype=bool)
        for _ in range(min(n, len(cands))):
            gain = hypervolume_gain(front, lcb, ref, self.rng)
            # predicted dominated: minus the shift that would make it non-dominated
            shift = np.max(np.min(lcb[:, None, :] - front[None, :, :], axis=2), axis=1)
            score = np.where(gain > 0, gain, -np.maximum(shift, 0.0)) - 1e6 * (infeasible + chosen)
            i = int(np.argmax(score))
            chosen[i] = True
            out.append(cands[i])
            front = np.vstack([front, lcb[i]])  # believe the optimistic value for the rest
            front = front[pareto_mask(front)]
        return out
