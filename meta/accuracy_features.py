"""Per-architecture features for accuracy transfer across tasks, and the shot plan.

A new task (a dataset, a training budget) is described by nothing but a few trained architectures;
everything else a predictor knows comes from the tasks it already has. :class:`AccuracyFeatures`
gathers, for every architecture of a space's table, its accuracy on each *source task* (as normal
scores of its rank: Spearman correlation, the measure that counts, sees only ranks, and the score
keeps the heavy low tail of broken networks from dominating a least-squares fit), its structural
counts and its one-hot encoding (:mod:`hwnas.meta.encoders`).

Which source tasks are honest depends on the target: a held-out CIFAR-10 column must not be
predicted from another CIFAR-10 column (same images, same labels). :func:`source_tasks` leaves
out the target's whole *dataset* (``exclude="dataset"``, the honest default) or only the target
column itself (``exclude="column"``, a leaky upper bound to report next to it, clearly labelled).

:func:`plan_shots` picks which architectures to train on the new task using only source
information: strata of the source-consensus ranking, with a share of them inside its top 10%, the
region a search cares about (stratified design in the spirit of the reference-set selection of
HELP, Lee et al., NeurIPS 2021).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy.stats import norm, rankdata

from hwnas.search import as_rng

from .errors import MetaError
from .predictor_base import check_blocks, check_indices, standardise

__all__ = ["AccuracyFeatures", "dataset_of", "normal_scores", "plan_shots", "source_tasks"]


def normal_scores(x: np.ndarray) -> np.ndarray:
    """Van der Waerden scores ``Phi^-1((rank - 1/2) / n)``: ranks on a standard-normal scale.

    Ties share their mean rank. Works column-wise on a 2-D array.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim == 2:
        return np.column_stack([normal_scores(c) for c in x.T]) if x.shape[1] else x.copy()
    return norm.ppf((rankdata(x) - 0.5) / len(x))


def dataset_of(task: str) -> str:
    """The dataset of an accuracy column: its name up to the first ``_`` (``cifar10_test_200ep``
    -> ``cifar10``)."""
    return task.split("_", 1)[0]


def source_tasks(target: str | None, tasks: Sequence[str], exclude: str = "dataset") -> list[str]:
    """The columns a predictor for ``target`` may learn from.

    Args:
        target: the held-out task (``None``: a new task outside the table; every column is a
            source).
        tasks: the table's accuracy columns.
        exclude: ``"dataset"`` leaves out every column of the target's dataset; ``"column"`` only
            the target column (its sister columns then leak the answer: an upper bound).

    Raises:
        MetaError: an unknown ``exclude``.
    """
    if exclude not in ("dataset", "column"):
        raise MetaError(f"exclude must be 'dataset' or 'column', got {exclude!r}")
    if target is None:
        return list(tasks)
    if exclude == "column":
        return [t for t in tasks if t != target]
    return [t for t in tasks if dataset_of(t) != dataset_of(target)]


@dataclass
class AccuracyFeatures:
    """Features of every architecture of one table (row ``i`` = architecture index ``i``).

    Args:
        source_accuracy: ``(n, k)`` accuracies on the ``k`` source tasks (finite).
        onehot: ``(n, d)`` one-hot features (:func:`hwnas.meta.encoders.onehot_features`).
        structure: ``(n, c)`` structural counts (:func:`hwnas.meta.encoders.structure_features`).
        sources: names of the source tasks, in column order.

    Attributes:
        S: normal scores of each source column; C: standardised structure; A: one-hot (float32).

    Raises:
        MetaError: shapes that disagree, no source column, or a non-finite accuracy.
    """

    source_accuracy: np.ndarray
    onehot: np.ndarray
    structure: np.ndarray
    sources: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        acc = np.asarray(self.source_accuracy, dtype=np.float64)
        if acc.ndim != 2 or acc.shape[1] == 0:
            raise MetaError(f"source_accuracy must be (architectures, tasks) with at least one "
                            f"task, got shape {acc.shape}")
        if not np.isfinite(acc).all():
            raise MetaError("source accuracies must be finite")
        check_blocks(len(acc), acc.shape[1], self.onehot, self.structure, self.sources)
        self.sources = list(self.sources) or [f"source{j}" for j in range(acc.shape[1])]
        self.S = normal_scores(acc)
        self.C = standardise(self.structure)
        self.A = np.asarray(self.onehot, dtype=np.float32)

    def __len__(self) -> int:
        return len(self.S)

    def hidden_for(self, task: str) -> tuple[int, ...]:
        """Source columns to hide while ``task`` is the target: its dataset's columns."""
        return tuple(j for j, s in enumerate(self.sources) if dataset_of(s) == dataset_of(task))

    def consensus(self) -> np.ndarray:
        """Mean normal score over the source tasks: the sources' joint ranking."""
        return self.S.mean(axis=1)

    def check_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray:
        """``indices`` as an int array, or :class:`MetaError` if any is outside the table."""
        return check_indices(len(self), indices)


def plan_shots(features: AccuracyFeatures, n: int, seed: int | None = 0,
               top_fraction: float = 0.5, top_quantile: float = 0.1) -> np.ndarray:
    """The ``n`` architectures to train on a new task, chosen from source information only.

    The table is sorted by the source consensus; ``round(n * top_fraction)`` shots come one from
    each equal stratum of its top ``top_quantile``, the rest one from each stratum of the
    remainder, each drawn at random within its stratum.

    Args:
        features: the table's features.
        n: number of shots (1..len(features)).
        seed: draws within the strata.
        top_fraction: share of the shots inside the consensus top region.
        top_quantile: size of that region (0.1: the top 10%).

    Returns:
        ``n`` distinct indices, best consensus first.

    Raises:
        MetaError: ``n`` outside 1..len(features) or fractions outside (0, 1).
    """
    if not 1 <= n <= len(features):
        raise MetaError(f"{n} shots; valid: 1..{len(features)}")
    if not (0 <= top_fraction <= 1 and 0 < top_quantile < 1):
        raise MetaError(f"top_fraction must be in [0, 1] and top_quantile in (0, 1), got "
                        f"{top_fraction!r}, {top_quantile!r}")
    rng = as_rng(seed)
    order = np.argsort(-features.consensus(), kind="stable")
    cut = max(1, int(round(len(order) * top_quantile)))
    k_top = min(int(round(n * top_fraction)), cut)
    k_rest = n - k_top
    if k_rest > len(order) - cut:
        k_top, k_rest = n - (len(order) - cut), len(order) - cut
    chosen = []
    for group, k in ((order[:cut], k_top), (order[cut:], k_rest)):
        if k:
            chosen += [int(rng.choice(s)) for s in np.array_split(group, k)]
    return np.asarray(chosen, dtype=np.int64)
