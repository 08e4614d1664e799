"""The strategy contract (ask/tell), the registry, random search, exhaustive search, and the loop.

A strategy only asks and is told (as pymoo's ``Algorithm`` and optuna's ask/tell interface); it
never calls a metric source. :func:`run_search` is the one loop that connects them: it counts the
budget in unique architectures evaluated, serves repeated asks from its cache for free, and skips
(and counts) architectures whose metrics are missing.
"""

from __future__ import annotations

import importlib
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from ..errors import HwnasError, UnknownNameError
from ..spaces.space import Architecture, Space, as_rng

__all__ = [
    "Strategy",
    "RandomSearch",
    "ExhaustiveSearch",
    "SearchRecord",
    "SearchResult",
    "run_search",
    "create_strategy",
    "list_strategies",
    "STRATEGIES",
]


class Strategy(ABC):
    """Ask for architectures, be told their (minimised) objective values.

    Args:
        space: the search space.
        n_objectives: number of objective columns ``tell`` receives.
        seed: seed of the strategy's own generator; no global state.

    Attributes:
        archive_: every architecture told so far, with its objective row and violation.
    """

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None):
        self.space, self.n_objectives, self.seed = space, n_objectives, seed
        self.rng = as_rng(seed)
        self.archive_: dict[Architecture, tuple[np.ndarray, float]] = {}

    @abstractmethod
    def ask(self, n: int = 1) -> list[Architecture]:
        """``n`` architectures to evaluate next (may repeat ones already evaluated)."""

    def tell(self, archs: Sequence[Architecture], F: np.ndarray,
             violation: np.ndarray | None = None) -> None:
        """Objective values (rows minimised, finite) and constraint violations of ``archs``."""
        F = np.asarray(F, dtype=np.float64).reshape(len(archs), self.n_objectives)
        v = np.zeros(len(archs)) if violation is None else np.asarray(violation, dtype=float)
        for a, f, vi in zip(archs, F, v, strict=True):
            self.archive_[a] = (f, float(vi))
        self._tell(list(archs), F, v)

    def _tell(self, archs: list[Architecture], F: np.ndarray, violation: np.ndarray) -> None:
        """Update internal state; by default nothing beyond the archive."""
        return None

    def _archive_arrays(self) -> tuple[list[Architecture], np.ndarray, np.ndarray]:
        archs = list(self.archive_)
        if not archs:
            return [], np.zeros((0, self.n_objectives)), np.zeros(0)
        F = np.stack([self.archive_[a][0] for a in archs])
        v = np.array([self.archive_[a][1] for a in archs])
        return archs, F, v


class RandomSearch(Strategy):
    """Uniform random sampling of the space (Li & Talwalkar, UAI 2019: a strong baseline)."""

    def ask(self, n: int = 1) -> list[Architecture]:
        return [self.space.sample(self.rng) for _ in range(n)]


class ExhaustiveSearch(Strategy):
    """Every architecture of an enumerable space once, in a seeded order (the true front)."""

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None):
        super().__init__(space, n_objectives, seed)
        if not space.enumerable:
            raise HwnasError(f"exhaustive search needs an enumerable space; {space.name} has "
                             f"{space.size:.3g} architectures")
        self._order = [space.from_genes(g) for g in np.stack(np.unravel_index(
            self.rng.permutation(space.size), tuple(space.n_choices)), axis=1)]
        self._next = 0

    def ask(self, n: int = 1) -> list[Architecture]:
        out = self._order[self._next:self._next + n]
        self._next += len(out)
        return out


#: name -> "module:Class" (imported on first use)
STRATEGIES: dict[str, str] = {
    "random": "hwnas.search.strategies.base:RandomSearch",
    "evolution": "hwnas.search.strategies.evolution:RegularizedEvolution",
    "nsga2": "hwnas.search.strategies.nsga2:NSGA2",
    "local": "hwnas.search.strategies.local:ParetoLocalSearch",
    "reinforce": "hwnas.search.strategies.reinforce:Reinforce",
    "guided": "hwnas.search.strategies.guided:PredictorGuided",
    "surrogate": "hwnas.search.strategies.surrogate:SurrogateParetoSearch",
    "exhaustive": "hwnas.search.strategies.base:ExhaustiveSearch",
}


def list_strategies() -> list[str]:
    """Names of the registered strategies."""
    return list(STRATEGIES)


def create_strategy(name: str, space: Space, n_objectives: int = 2, seed: int | None = None,
                    **kwargs: Any) -> Strategy:
    """A strategy by name, e.g. ``create_strategy("nsga2", space, 2, seed=0, population=20)``.

    Raises:
        UnknownNameError: listing the valid names.
    """
    if name not in STRATEGIES:
        raise UnknownNameError("strategy", name, STRATEGIES)
    module, cls = STRATEGIES[name].split(":")
    return getattr(importlib.import_module(module), cls)(space, n_objectives, seed=seed, **kwargs)


@dataclass
class SearchRecord:
    """One unique evaluation: its order, architecture, natural and minimised values."""

    step: int
    arch: Architecture
    values: np.ndarray
    F: np.ndarray
    violation: float


@dataclass
class SearchResult:
    """Everything a search evaluated, in order, and how many asks were skipped."""

    records: list[SearchRecord] = field(default_factory=list)
    skipped: int = 0
    asks: int = 0


#: archs -> (natural values (n, m), minimised values (n, m), violation (n,))
Evaluator = Callable[[list[Architecture]], tuple[np.ndarray, np.ndarray, np.ndarray]]


def run_search(strategy: Strategy, evaluate: Evaluator, budget: int, batch: int = 1,
               progress: Callable[[int, int], None] | None = None,
               max_asks: int | None = None) -> SearchResult:
    """Ask, evaluate, tell until ``budget`` unique architectures have been evaluated.

    Architectures already evaluated are told again from the cache at no cost; architectures whose
    metrics are missing (NaN) are skipped, counted, and never told. The loop also ends when the
    strategy has nothing left to ask or after ``max_asks`` asks (default ``100 * budget``).

    Raises:
        HwnasError: ``budget < 1``.
    """
    if budget < 1:
        raise HwnasError(f"budget must be >= 1, got {budget}")
    max_asks = max_asks or 100 * budget
    result = SearchResult()
    cache: dict[Architecture, tuple[np.ndarray, np.ndarray, float]] = {}
    missing: set[Architecture] = set()
    while len(result.records) < budget and result.asks < max_asks:
        archs = strategy.ask(min(batch, budget - len(result.records)))
        if not archs:
            break
        result.asks += len(archs)
        new = list(dict.fromkeys(a for a in archs if a not in cache and a not in missing))
        new = new[: budget - len(result.records)]
        if new:
            values, F, violation = evaluate(new)
            for a, val, f, v in zip(new, values, F, violation, strict=True):
                if not np.all(np.isfinite(val)):
                    missing.add(a)
                    result.skipped += 1
                    continue
                cache[a] = (val, f, float(v))
                result.records.append(SearchRecord(len(result.records), a, val, f, float(v)))
                if progress:
                    progress(len(result.records), budget)
        told = [a for a in archs if a in cache]
        if told:
            strategy.tell(told, np.stack([cache[a][1] for a in told]),
                          np.array([cache[a][2] for a in told]))
    return result
