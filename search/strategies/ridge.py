"""Bayesian ridge regression with a GCV-chosen penalty and posterior coefficient draws: the
surrogate model of :mod:`hwnas.search.strategies.surrogate` and of its forest blend.

Ridge penalty by generalised cross-validation (Golub, Heath & Wahba, Technometrics 1979); the
Gaussian posterior of the coefficients as in Bayesian linear regression (MacKay, Neural
Computation 1992).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular

__all__ = ["BayesianRidgeEnsemble", "OwnColumnsEnsemble"]


class BayesianRidgeEnsemble:
    """Ridge regression per output, penalty by GCV, and ``members`` posterior coefficient draws.

    Args:
        members: coefficient vectors drawn from each output's Gaussian posterior.
        alphas: penalties tried by generalised cross-validation (on standardised targets).
        seed: seed of the posterior draws.

    Attributes:
        alpha_: the chosen penalty per output; sigma_: residual standard deviation per output.
    """

    def __init__(self, members: int = 8, alphas: tuple[float, ...] = tuple(np.logspace(-2, 3, 11)),
                 seed: int | None = None):
        self.members, self.alphas, self.seed = members, alphas, seed

    def fit(self, X: np.ndarray, Y: np.ndarray, alpha: np.ndarray | None = None
            ) -> BayesianRidgeEnsemble:
        """Fit on ``(X, Y)``; ``alpha`` (one per output) skips the GCV search. Returns self."""
        rng = np.random.default_rng(self.seed)
        X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        n, p = X.shape
        self.x_mean_, self.y_mean_ = X.mean(axis=0), Y.mean(axis=0)
        self.y_scale_ = Y.std(axis=0) + 1e-12
        Xc, Z = X - self.x_mean_, (Y - self.y_mean_) / self.y_scale_
        G = Xc.T @ Xc
        if alpha is None:
            w, V = np.linalg.eigh(G)
            w = np.clip(w, 0.0, None)
            R = V.T @ (Xc.T @ Z)  # (p, m)
            rss0 = (Z**2).sum(axis=0) - (R**2 / np.maximum(w, 1e-12)[:, None]).sum(axis=0)
            rss0 = np.clip(rss0, 0.0, None)  # the part of Z outside the column space of X
            best = np.full(Z.shape[1], np.inf)
            alpha = np.zeros(Z.shape[1])
            for a in self.alphas:
                shrink = a / (w + a)  # residual fraction of each eigen-direction
                rss = rss0 + ((shrink[:, None] * R) ** 2 / np.maximum(w, 1e-12)[:, None]
                              * (w > 1e-12)[:, None]).sum(axis=0)
                df = (w / (w + a)).sum()
                gcv = rss / max(n - df, 1e-3) ** 2
                better = gcv < best
                best[better], alpha[better] = gcv[better], a
        self.alpha_ = np.asarray(alpha, dtype=np.float64)
        m, k = Z.shape[1], self.members
        self.coef_ = np.empty((p, m * k))
        self.sigma_ = np.empty(m)
        XtZ = Xc.T @ Z
        eye = np.eye(p)
        for j in range(m):
            L = cholesky(G + self.alpha_[j] * eye, lower=True)
            beta = cho_solve((L, True), XtZ[:, j])
            resid = Z[:, j] - Xc @ beta
            Linv = solve_triangular(L, eye, lower=True)
            df = p - self.alpha_[j] * float((Linv**2).sum())  # trace of the hat matrix
            self.sigma_[j] = math.sqrt(float(resid @ resid) / max(n - df, 1.0))
            # posterior N(beta, s2 (G + alpha I)^-1) = beta + s L^-T z
            draws = solve_triangular(L, rng.standard_normal((p, k)), lower=True, trans="T")
            self.coef_[:, j * k:(j + 1) * k] = beta[:, None] + draws * self.sigma_[j]
        self._coef32 = self.coef_.astype(np.float32)
        self._offset = (self.x_mean_ @ self.coef_).astype(np.float32)
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation (posterior spread plus residual noise), each
        ``(n, outputs)``, in the targets' units."""
        P = np.asarray(X, dtype=np.float32) @ self._coef32 - self._offset
        m, k = len(self.sigma_), self.members
        P = P.reshape(len(P), m, k)
        mu = P.mean(axis=2)
        sd = np.sqrt(P.var(axis=2) + self.sigma_**2)
        return mu * self.y_scale_ + self.y_mean_, np.maximum(sd * self.y_scale_, 1e-12)


class OwnColumnsEnsemble:
    """:class:`BayesianRidgeEnsemble` per output, some outputs on their own columns alone.

    The surrogate's ``nearest_prior`` objectives are modelled on one prior column (its
    standardised value and rank score) instead of the whole design: with a few hundred
    evaluations, structural terms fitted from the archive rank the top of a space worse than a
    closely related task's own ranking does (:mod:`hwnas.search.strategies.surrogate`).

    Args:
        columns: output -> the columns of ``X`` its model sees; every other output sees all.
        members: posterior coefficient draws of each model.
        seed: seed of the draws.

    Attributes:
        alpha_: the chosen penalty per output; sigma_: residual standard deviation per output.
    """

    def __init__(self, columns: Mapping[int, Sequence[int]], members: int = 8,
                 seed: int | None = None):
        self.columns = {int(j): list(c) for j, c in columns.items()}
        self.members, self.seed = members, seed

    def fit(self, X: np.ndarray, Y: np.ndarray, alpha: np.ndarray | None = None
            ) -> OwnColumnsEnsemble:
        """Fit every output's model; ``alpha`` (one per output) skips the GCV searches."""
        X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        m = Y.shape[1]
        own = [j for j in sorted(self.columns) if j < m]
        rest = [j for j in range(m) if j not in own]
        a = None if alpha is None else np.asarray(alpha, dtype=np.float64)
        self.models_: list[tuple[list[int], list[int] | None, BayesianRidgeEnsemble]] = []
        seed = self.seed
        for outs, cols in [(rest, None)] + [([j], self.columns[j]) for j in own]:
            if not outs:
                continue
            Xj = X if cols is None else X[:, cols]
            model = BayesianRidgeEnsemble(self.members, seed=seed).fit(
                Xj, Y[:, outs], None if a is None else a[outs])
            self.models_.append((outs, cols, model))
            seed = None if seed is None else (seed + 1) % 2**32
        self.alpha_, self.sigma_ = np.empty(m), np.empty(m)
        self.y_scale_ = np.empty(m)
        for outs, _, model in self.models_:
            self.alpha_[outs], self.sigma_[outs] = model.alpha_, model.sigma_
            self.y_scale_[outs] = model.y_scale_
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation, each ``(n, outputs)``."""
        m = len(self.alpha_)
        mu, sd = np.empty((len(X), m)), np.empty((len(X), m))
        for outs, cols, model in self.models_:
            mu[:, outs], sd[:, outs] = model.predict(X if cols is None else X[:, cols])
        return mu, sd
