"""Bayesian ridge regression with a GCV-chosen penalty and posterior coefficient draws: the
surrogate model of :mod:`hwnas.search.strategies.surrogate` and of its forest blend.

Ridge penalty by generalised cross-validation (Golub, Heath & Wahba, Technometrics 1979); the
Gaussian posterior of the coefficients as in Bayesian linear regression (MacKay, Neural
Computation 1992).
"""

from __future__ import annotations

import math

import numpy as np
from scipy.linalg import cho_solve, cholesky, solve_triangular

__all__ = ["BayesianRidgeEnsemble"]


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
