"""Few-shot episodes: a support set to adapt on and a disjoint query set to score the adaptation.

A *task* is either a finite dataset ``(X, y)`` (array-likes of equal length: one device's measured
latencies, one dataset's accuracies) or a callable ``task(n, generator) -> (X, y)`` that draws ``n``
fresh examples (a sinusoid, any simulator). A :class:`TaskSampler` draws a task from a finite pool
or from a task distribution, then ``shots`` support and ``queries`` query examples from that task,
with an explicit :class:`torch.Generator` (never the global RNG), as in the episodic training of
Vinyals et al. (NeurIPS 2016) and MAML (Finn et al., ICML 2017).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import Tensor

from .errors import MetaError

__all__ = ["Episode", "TaskLike", "TaskSampler", "as_generator"]

TaskLike = tuple[Any, Any] | Callable[[int, torch.Generator], tuple[Any, Any]]
"""A finite ``(X, y)`` pair of array-likes, or ``task(n, generator) -> (X, y)``."""


def as_generator(seed: int | torch.Generator | None) -> torch.Generator:
    """A :class:`torch.Generator` from a seed (``None``: a fresh, non-deterministic one) or as is.

    Args:
        seed: an integer seed, an existing generator (returned unchanged), or ``None``.

    Returns:
        A CPU generator.

    Raises:
        MetaError: anything else.
    """
    if isinstance(seed, torch.Generator):
        return seed
    g = torch.Generator()
    if seed is None:
        g.seed()
    elif isinstance(seed, int | np.integer) and not isinstance(seed, bool):
        g.manual_seed(int(seed))
    else:
        raise MetaError(f"seed must be an int, a torch.Generator or None, got {seed!r}")
    return g


# eq=False: field-wise == on tensors is element-wise, so a generated __eq__ could not return a bool
@dataclass(frozen=True, eq=False)
class Episode:
    """One few-shot episode: support ``(x_support, y_support)``, query ``(x_query, y_query)``.

    Attributes:
        task: the task it came from (its index in a pool, or the drawn task object).
    """

    x_support: Tensor
    y_support: Tensor
    x_query: Tensor
    y_query: Tensor
    task: Any = None

    @property
    def shots(self) -> int:
        """Number of support examples."""
        return len(self.x_support)


def _check_count(name: str, value: int | None, allow_none: bool = False) -> None:
    if value is None and allow_none:
        return
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise MetaError(f"{name} must be an integer >= 1{' or None' if allow_none else ''}, "
                        f"got {value!r}")


class TaskSampler:
    """Draws few-shot episodes from a pool of tasks or from a task distribution.

    Support and query examples of an episode are disjoint: for a finite task they are different
    rows (drawn without replacement); for a sampling callable they are different draws.

    Args:
        tasks: a non-empty sequence of tasks (each ``(X, y)`` or ``task(n, generator)``), drawn
            uniformly; or a callable ``draw(generator) -> task`` (a task distribution, e.g.
            :meth:`hwnas.meta.SinusoidDistribution.draw`).
        shots: support examples per episode (K).
        queries: query examples per episode; ``None`` means every remaining row of a finite task
            (a sampling callable then needs an integer).
        dtype: floating dtype for X (and for y when y is floating; integer labels stay integers).

    Raises:
        MetaError: an empty pool, a task that is neither ``(X, y)`` nor callable, bad counts; at
            sampling time, a finite task with fewer than ``shots + queries`` rows or X and y of
            different lengths.

    Example:
        >>> X, y = np.arange(20.0).reshape(10, 2), np.arange(10.0)
        >>> sampler = TaskSampler([(X, y), (X, 2 * y)], shots=3, queries=4)
        >>> ep = sampler.sample(torch.Generator().manual_seed(0))
        >>> ep.x_support.shape, ep.x_query.shape
        (torch.Size([3, 2]), torch.Size([4, 2]))
    """

    def __init__(self, tasks: Sequence[TaskLike] | Callable[[torch.Generator], TaskLike],
                 shots: int, queries: int | None = None, dtype: torch.dtype = torch.float32):
        _check_count("shots", shots)
        _check_count("queries", queries, allow_none=True)
        if callable(tasks) and not isinstance(tasks, Sequence):
            self.pool: list[TaskLike] | None = None
            self.draw_task: Callable[[torch.Generator], TaskLike] | None = tasks
        else:
            if isinstance(tasks, str | bytes) or not isinstance(tasks, Sequence) or not tasks:
                raise MetaError("tasks must be a non-empty sequence of tasks or a callable "
                                f"draw(generator) -> task, got {type(tasks).__name__}")
            for i, t in enumerate(tasks):
                if not (callable(t) or (isinstance(t, tuple | list) and len(t) == 2)):
                    raise MetaError(f"task {i} must be an (X, y) pair or a callable "
                                    f"task(n, generator), got {type(t).__name__}")
            self.pool, self.draw_task = list(tasks), None
        self.shots, self.queries, self.dtype = shots, queries, dtype

    def _tensor(self, a: Any, always: bool) -> Tensor:
        t = a if isinstance(a, Tensor) else torch.as_tensor(np.asarray(a))
        # integer targets are class labels: casting them to float would break a classifier's loss
        return t.to(self.dtype) if always or t.is_floating_point() else t

    def sample(self, generator: torch.Generator) -> Episode:
        """One episode.

        Args:
            generator: the source of randomness (task choice, rows or draws).

        Returns:
            The episode; ``episode.task`` is the pool index, or the drawn task.

        Raises:
            MetaError: as described on the class.
        """
        if self.pool is not None:
            index = int(torch.randint(len(self.pool), (1,), generator=generator))
            task, label = self.pool[index], index
        else:
            task = self.draw_task(generator)  # type: ignore[misc]
            label = task
        if callable(task):
            if self.queries is None:
                raise MetaError("queries=None (all remaining rows) needs finite (X, y) tasks; "
                                "a sampling task needs an integer number of queries")
            n = self.shots + self.queries
            X, y = task(n, generator)
            X, y = self._tensor(X, True), self._tensor(y, False)
            if len(X) != n or len(y) != n:
                raise MetaError(f"task {label!r} was asked for {n} examples and returned "
                                f"{len(X)} inputs and {len(y)} targets")
            order = torch.arange(n)
        else:
            X, y = self._tensor(task[0], True), self._tensor(task[1], False)
            need = self.shots + (self.queries or 1)
            if len(X) != len(y) or len(X) < need:
                raise MetaError(f"task {label!r} has {len(X)} inputs and {len(y)} targets; an "
                                f"episode needs equal lengths and at least {need} rows")
            order = torch.randperm(len(X), generator=generator)
        # one permutation split in two: support and query rows cannot overlap
        s = order[: self.shots]
        q = order[self.shots:] if self.queries is None else order[self.shots:
                                                                  self.shots + self.queries]
        return Episode(X[s], y[s], X[q], y[q], task=label)

    def sample_batch(self, n: int, generator: torch.Generator) -> list[Episode]:
        """``n`` episodes (a meta-batch), drawn one after another from ``generator``."""
        _check_count("n", n)
        return [self.sample(generator) for _ in range(n)]
