"""A Bayesian ridge averaged with an extremely randomised forest on the outputs that need it.

Latency is close to a sum of per-operation costs, which the surrogate's linear model learns from
few points; accuracy is not (a cut path or a missing convolution changes it by tens of points),
which trees capture and a linear model cannot. For the outputs named, the prediction is the equal
mixture of :class:`~hwnas.search.strategies.surrogate.BayesianRidgeEnsemble` and an extremely
randomised forest (Geurts, Ernst & Wehenkel, Machine Learning 2006): its mean is the mean of the
two, its spread that of a two-component mixture -- each model's own spread (the ridge's posterior
draws, the spread of the trees) plus their disagreement, the ensemble-of-model-types uncertainty
of BANANAS-style predictors (White et al., AAAI 2021). The other outputs are the ridge's alone.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from sklearn.ensemble import ExtraTreesRegressor

from .ridge import BayesianRidgeEnsemble

__all__ = ["RidgeForestBlend"]


class RidgeForestBlend:
    """:class:`BayesianRidgeEnsemble` on every output, averaged with a forest on ``outputs``.

    Args:
        outputs: the outputs (columns of ``Y``) that get a forest.
        members: the ridge's posterior coefficient draws.
        trees: trees of each forest.
        max_features: fraction of the features each split considers.
        floor: least standard deviation of a forest, as a fraction of its output's own (a forest
            is certain wherever its trees agree, which they do on what they have memorised).
        seed: seed of the ridge's draws and of the forests.

    Attributes:
        alpha_: the ridge penalty per output (by GCV, or as given to :meth:`fit`).
        forests_: output -> fitted forest.
    """

    def __init__(self, outputs: Sequence[int] = (0,), members: int = 8, trees: int = 64,
                 max_features: float = 0.3, floor: float = 0.17, seed: int | None = None
                 ) -> None:
        self.outputs, self.members, self.trees = tuple(outputs), members, trees
        self.max_features, self.floor, self.seed = max_features, floor, seed

    def fit(self, X: np.ndarray, Y: np.ndarray, alpha: np.ndarray | None = None
            ) -> RidgeForestBlend:
        """Fit the ridge on ``(X, Y)`` (``alpha``, one per output, skips its GCV) and a forest
        on each named output that ``Y`` has."""
        X, Y = np.asarray(X, dtype=np.float64), np.asarray(Y, dtype=np.float64)
        self.ridge_ = BayesianRidgeEnsemble(self.members, seed=self.seed).fit(X, Y, alpha)
        self.alpha_ = self.ridge_.alpha_
        self.forests_ = {
            j: ExtraTreesRegressor(
                self.trees, max_features=self.max_features,
                random_state=None if self.seed is None else (self.seed + j) % 2**31,
                n_jobs=1).fit(X, Y[:, j])
            for j in self.outputs if j < Y.shape[1]}
        return self

    def predict(self, X: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Predictive mean and standard deviation, each ``(n, outputs)``."""
        mu, sd = self.ridge_.predict(X)
        X32 = np.asarray(X, dtype=np.float32)
        for j, forest in self.forests_.items():
            trees = np.stack([t.predict(X32) for t in forest.estimators_], axis=1)
            m_f = trees.mean(axis=1)
            v_f = trees.var(axis=1) + (self.floor * self.ridge_.y_scale_[j]) ** 2
            m_r = mu[:, j].copy()
            mu[:, j] = (m_r + m_f) / 2
            sd[:, j] = np.sqrt((sd[:, j] ** 2 + v_f) / 2 + ((m_r - m_f) / 2) ** 2)
        return mu, sd
