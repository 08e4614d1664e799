"""Baselines for few-shot accuracy transfer, and a metric source of predicted accuracies.

- :class:`NearestSourcePredictor`: the source task whose ranking agrees best (Spearman) with the
  new task's shots, used as is: what a practitioner does with a public table of a similar dataset.
- :class:`ScratchAccuracyPredictor`: ridge regression on the architecture encoding alone (one-hot
  and structure counts, White et al., NeurIPS 2020), trained on the K shots with no source task.
- :class:`PredictedAccuracy`: a :class:`hwnas.search.MetricSource` over a predicted accuracy
  table (``index``/``arch``/``accuracy``, as ``hwnas accuracy adapt`` writes), so a search can
  use a predicted accuracy as its objective.

All predictors take architecture indices (rows of the features) as ``X``.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
from scipy.stats import spearmanr

from hwnas.search import Architecture, MetricSource, Space, TableError

from .accuracy import ScorePredictor, check_shots
from .accuracy_features import AccuracyFeatures, normal_scores
from .errors import MetaError
from .predictor_base import ridge_loo

__all__ = ["NearestSourcePredictor", "PredictedAccuracy", "ScratchAccuracyPredictor"]


class NearestSourcePredictor(ScorePredictor):
    """The source task that ranks the shots most like the new task does (Spearman).

    Attributes:
        source_: the chosen source task's name; ``rho_``: its Spearman rho on the shots.
    """

    def __init__(self, features: AccuracyFeatures):
        self.features = features

    def fit(self, X: Sequence[int] | np.ndarray, y: Sequence[float] | np.ndarray
            ) -> NearestSourcePredictor:
        idx, acc = check_shots(self.features, X, y)
        S = self.features.S
        rhos = np.array([spearmanr(S[idx, j], acc)[0] for j in range(S.shape[1])])
        j = int(np.argmax(np.nan_to_num(rhos, nan=-2.0)))
        self.source_, self.rho_ = self.features.sources[j], float(rhos[j])
        self._finish(S[:, j], idx, acc)
        return self


class ScratchAccuracyPredictor(ScorePredictor):
    """Ridge regression on one-hot + structure features, fitted to the shots alone.

    The penalty is the one of ``lams`` with the smallest leave-one-out error on the shots.

    Attributes:
        lam_: the chosen penalty.
    """

    def __init__(self, features: AccuracyFeatures, lams: Sequence[float] = (0.3, 1.0, 3.0, 10.0)):
        self.features = features
        self.lams = tuple(lams)

    def fit(self, X: Sequence[int] | np.ndarray, y: Sequence[float] | np.ndarray
            ) -> ScratchAccuracyPredictor:
        idx, acc = check_shots(self.features, X, y)
        F = np.hstack([self.features.A.astype(np.float64), self.features.C])
        t = normal_scores(acc)
        fits = [ridge_loo(F, t, idx, lam) for lam in self.lams]
        k = int(np.argmin([e for _, e in fits]))
        self.lam_ = self.lams[k]
        self._finish(fits[k][0], idx, acc)
        return self


class PredictedAccuracy(MetricSource):
    """Accuracy (percent) from a predicted table; NaN for an architecture it does not hold.

    Args:
        archs: the architectures of the table.
        accuracy: their predicted accuracies.
        name: the metric's name (default ``accuracy:predicted``).

    Example:
        >>> src = PredictedAccuracy.from_csv("predicted.csv", get_space("nb201"))  # doctest: +SKIP
        >>> src.evaluate([arch])  # doctest: +SKIP
    """

    unit = "%"

    def __init__(self, archs: Sequence[Architecture], accuracy: Sequence[float] | np.ndarray,
                 name: str = "accuracy:predicted"):
        super().__init__()
        values = np.asarray(accuracy, dtype=np.float64).reshape(-1)
        if len(values) != len(archs):
            raise MetaError(f"{len(archs)} architectures but {len(values)} accuracies")
        self.name = name
        self._table = dict(zip(archs, values.tolist(), strict=True))

    @classmethod
    def from_csv(cls, path: str | os.PathLike[str], space: Space,
                 name: str | None = None) -> PredictedAccuracy:
        """Read a predicted table (``arch`` and ``accuracy`` columns) for ``space``.

        Raises:
            TableError: a missing or unreadable file, or missing columns.
        """
        import pandas as pd

        path = Path(path)
        try:
            frame = pd.read_csv(path)
        except FileNotFoundError:
            raise TableError(f"predicted accuracy table {path} not found") from None
        except (OSError, ValueError, pd.errors.ParserError) as e:
            raise TableError(f"cannot read {path}: {str(e).splitlines()[0]}") from None
        missing = [c for c in ("arch", "accuracy") if c not in frame.columns]
        if missing:
            raise TableError(f"{path}: missing column(s) {', '.join(missing)}")
        archs = [space.parse(str(a)) for a in frame["arch"]]
        acc = pd.to_numeric(frame["accuracy"], errors="coerce").to_numpy(np.float64)
        return cls(archs, acc, name or f"accuracy:predicted:{path.stem}")

    def _evaluate(self, archs: list[Architecture]) -> np.ndarray:
        return np.array([self._table.get(a, np.nan) for a in archs], dtype=np.float64)
