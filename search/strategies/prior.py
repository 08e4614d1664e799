"""Prior knowledge of every architecture, as features for a search's surrogate.

A search on a new task or a new device rarely starts from nothing: public tables give the same
architectures' accuracy on *other* tasks and their latency on *other* devices, and hwnas's
meta-learned predictors (``hwnas accuracy adapt``, ``hwnas latency adapt``) give an estimate for
every architecture. Those numbers rank the new objective well but not exactly (on NAS-Bench-201,
CIFAR-100 and ImageNet16-120 accuracies agree at rho ~0.96 over the whole space and ~0.65 within the
top 10%). Transfer-based NAS uses them as a warm start or a surrogate input: TransNAS-Bench-101
(Duan et al., CVPR 2021) and the task-transfer predictors of MetaD2A (Lee et al., ICLR 2021) and
HELP (Lee et al., NeurIPS 2021). Here they are extra columns of the surrogate's design matrix
(:class:`hwnas.search.strategies.surrogate.SurrogateParetoSearch`), so the surrogate learns from the
search's own evaluations how much of each prior to trust -- a prior that does not transfer gets a
small weight rather than steering the search.

Each prior column ``x`` enters twice, standardised and as the normal score of its rank (a monotone
but non-linear relation between prior and objective is then within reach of a linear model), with
a flag for the architectures it has no value for (which get the column's mean, zero).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from ..errors import HwnasError
from ..spaces.space import Architecture

__all__ = ["PriorFeatures"]


class PriorFeatures:
    """Per-architecture prior values turned into surrogate features.

    Args:
        archs: the architectures that have prior values.
        values: ``(len(archs), k)`` prior values; NaN where a column has no value for an
            architecture; ``log`` columns must be positive.
        names: one name per column (for records and messages).
        log: names of the columns taken in log first (latencies: ratios are what transfer).

    Raises:
        HwnasError: shapes that disagree, no columns, fewer than two architectures, infinite
            values, non-positive values in a ``log`` column, a column without values, or one with
            fewer than two distinct values.

    Example:
        >>> from hwnas.search import get_space
        >>> space = get_space("nb201")
        >>> archs = [space.sample(np.random.default_rng(i)) for i in range(3)]
        >>> prior = PriorFeatures(archs, np.array([[70.0], [72.5], [68.0]]), ["cifar100"])
        >>> prior(archs).shape
        (3, 2)
    """

    def __init__(self, archs: Sequence[Architecture], values: np.ndarray, names: Sequence[str],
                 log: Sequence[str] = ()):
        from scipy.special import ndtri  # scipy loads when a prior is built
        from scipy.stats import rankdata

        X = np.asarray(values, dtype=np.float64)
        if X.ndim == 1:
            X = X[:, None]
        names = list(names)
        if X.ndim != 2 or X.shape[1] == 0 or len(X) != len(archs) or len(names) != X.shape[1]:
            raise HwnasError(f"prior: {len(archs)} architectures, {len(names)} names and values "
                             f"of shape {X.shape} do not agree")
        if len(archs) < 2:
            raise HwnasError(f"prior: {len(archs)} architecture(s); a prior needs values for at "
                             "least two")
        log = [log] if isinstance(log, str) else list(log)
        unknown = [n for n in log if n not in names]
        if unknown:
            raise HwnasError(f"prior: log names {unknown} that are not columns; valid: {names}")
        if len(set(names)) != len(names):
            raise HwnasError(f"prior: a column name appears twice in {names}")
        if len(set(archs)) != len(archs):
            raise HwnasError("prior: an architecture appears twice; give each one row")
        if np.isinf(X).any():
            raise HwnasError("prior values must be finite (NaN marks a missing one)")
        have = ~np.isnan(X)
        z = np.zeros_like(X)
        score = np.zeros_like(X)
        for j, name in enumerate(names):
            x = X[have[:, j], j]
            if len(x) == 0:
                raise HwnasError(f"prior {name}: no values (every one is NaN)")
            if name in log:
                if (x <= 0).any():
                    raise HwnasError(f"prior {name}: latencies must be positive")
                x = np.log(x)
            if len(np.unique(x)) < 2:
                raise HwnasError(f"prior {name}: fewer than two distinct values; it carries no "
                                 "information")
            z[have[:, j], j] = (x - x.mean()) / x.std()
            score[have[:, j], j] = ndtri((rankdata(x) - 0.5) / len(x))
        self.names = names
        self.log = tuple(log)
        self._row = {a: i for i, a in enumerate(archs)}
        partial = ~have.all(axis=0)  # flags only for the columns that miss some values
        self._partial = np.flatnonzero(partial)
        self._table = np.concatenate([z, score, ~have[:, partial]], axis=1).astype(np.float32)
        self._z = np.where(have, z, np.nan)

    @classmethod
    def from_columns(cls, archs: Sequence[Architecture], columns: Mapping[str, np.ndarray],
                     log: Sequence[str] = ()) -> PriorFeatures:
        """From named columns aligned with ``archs`` (NaN where a column has no value)."""
        names = list(columns)
        if not names:
            raise HwnasError("prior: no columns; valid: a mapping of name -> values, one per "
                             "architecture")
        X = np.column_stack([np.asarray(columns[n], dtype=np.float64) for n in names])
        return cls(list(archs), X, names, log)

    def __len__(self) -> int:
        return len(self._row)

    @property
    def width(self) -> int:
        """Feature columns per architecture: per prior, its standardised value and its rank
        score; a missing flag per prior that lacks some values; a last flag for an architecture
        without any prior value."""
        return self._table.shape[1] + 1

    def columns_of(self, name: str) -> list[int]:
        """Positions, among this prior's feature columns, of the prior ``name``: its standardised
        value, its rank score, its missing flag (where it lacks values) and the last flag.

        Raises:
            HwnasError: ``name`` is not a prior column.
        """
        if name not in self.names:
            raise HwnasError(f"prior {name!r} is not a column; valid: {', '.join(self.names)}")
        k, j = len(self.names), self.names.index(name)
        flag = [2 * k + int(np.flatnonzero(self._partial == j)[0])] if j in self._partial else []
        return [j, k + j, *flag, self.width - 1]

    def standardised(self, archs: Sequence[Architecture]) -> np.ndarray:
        """``(len(archs), k)`` standardised values of every column (log first for the ``log``
        ones), NaN where a column has no value for an architecture."""
        rows = np.array([self._row.get(a, -1) for a in archs], dtype=np.int64)
        out = np.full((len(rows), len(self.names)), np.nan)
        out[rows >= 0] = self._z[rows[rows >= 0]]
        return out

    def coverage(self, archs: Sequence[Architecture]) -> float:
        """Fraction of ``archs`` with a value in at least one prior column."""
        return float(np.mean([a in self._row for a in archs])) if len(archs) else 0.0

    def __call__(self, archs: Sequence[Architecture]) -> np.ndarray:
        """``(len(archs), width)`` float32 features; an architecture without any prior value gets
        zeros, its missing flags and the last flag set."""
        rows = np.array([self._row.get(a, -1) for a in archs], dtype=np.int64)
        k = len(self.names)
        out = np.zeros((len(rows), self.width), dtype=np.float32)
        have = rows >= 0
        out[have, :-1] = self._table[rows[have]]
        out[~have, 2 * k:] = 1.0
        return out
