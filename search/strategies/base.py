"""The strategy contract (ask/tell), the registry, random search, exhaustive search, and the loop.

A strategy only asks and is told (as pymoo's ``Algorithm`` and optuna's ask/tell interface); it
never calls a metric source. :func:`run_search` is the one loop that connects them: it counts the
budget in unique architectures evaluated, serves repeated asks from its cache for free, and skips
(and counts) architectures whose metrics are missing. It also ends a search that cannot progress
(the strategy proposes nothing new, or nothing it proposes can be evaluated) and says why in
:attr:`SearchResult.stopped`.

Any object with ``ask(n)`` and ``tell(archs, F, violation)`` is a strategy for the loop; a
:class:`Strategy` subclass adds the archive and the seeded generator. Register your own with
:func:`register_strategy`::

    register_strategy("mine", lambda space, n_objectives, seed=None, **kw: Mine(space, seed))
"""

from __future__ import annotations

import contextlib
import importlib
import math
import os
import time
from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np

from ..errors import HwnasError, UnknownNameError
from ..spaces.space import Architecture, Space, as_rng
from .peers import PEER_STRATEGIES

__all__ = [
    "DEFAULT_STRATEGY",
    "Strategy",
    "RandomSearch",
    "ExhaustiveSearch",
    "SearchRecord",
    "SearchResult",
    "run_search",
    "create_strategy",
    "list_strategies",
    "register_strategy",
    "AskTell",
    "STRATEGIES",
    "default_max_idle",
]


@runtime_checkable
class AskTell(Protocol):
    """What the loop needs of a strategy: proposals, then their (minimised) values."""

    def ask(self, n: int = 1) -> list[Architecture]: ...

    def tell(self, archs: Sequence[Architecture], F: np.ndarray,
             violation: np.ndarray | None = None) -> None: ...


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
    """Uniform random sampling of the space (Li & Talwalkar, UAI 2019: a strong baseline).

    In an enumerable space nearly used up, uniform draws keep hitting evaluated architectures
    (one left of 15,625 is drawn once in 15,625 tries); after :attr:`PATIENCE` repeats in a row
    the draw is made among the architectures not yet told instead, so a budget of the whole
    space ends with the whole space. Far from exhaustion this never triggers, so the sequence of
    draws is plain uniform sampling.
    """

    PATIENCE = 64

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None):
        super().__init__(space, n_objectives, seed)
        self._repeats = 0

    def ask(self, n: int = 1) -> list[Architecture]:
        out = []
        for _ in range(n):
            arch = self.space.sample(self.rng)
            if arch not in self.archive_:
                self._repeats = 0
            elif self.space.enumerable:
                self._repeats += 1
                if self._repeats >= self.PATIENCE:
                    left = [a for a in self.space if a not in self.archive_]
                    if left:
                        arch = left[int(self.rng.integers(len(left)))]
            out.append(arch)
        return out


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


#: what ``hwnas search``, :func:`hwnas.bench.minimize` and compare grids run when no strategy is
#: named: the one the benchmarks show best for the problem (:mod:`.auto`'s rule table)
DEFAULT_STRATEGY = "auto"

#: name -> "module:Class" (imported on first use) or a factory
#: ``factory(space, n_objectives, seed=..., **options) -> AskTell``
STRATEGIES: dict[str, str | Callable[..., AskTell]] = {
    "auto": "hwnas.search.strategies.auto:AutoStrategy",
    "random": "hwnas.search.strategies.base:RandomSearch",
    "evolution": "hwnas.search.strategies.evolution:RegularizedEvolution",
    "nsga2": "hwnas.search.strategies.nsga2:NSGA2",
    "local": "hwnas.search.strategies.local:ParetoLocalSearch",
    "reinforce": "hwnas.search.strategies.reinforce:Reinforce",
    "guided": "hwnas.search.strategies.guided:PredictorGuided",
    "surrogate": "hwnas.search.strategies.surrogate:SurrogateParetoSearch",
    "exhaustive": "hwnas.search.strategies.base:ExhaustiveSearch",
    # optuna's samplers and pymoo's algorithms (optional extras, imported when one is built)
    **PEER_STRATEGIES,
}


def list_strategies() -> list[str]:
    """Names of the registered strategies."""
    return list(STRATEGIES)


def register_strategy(name: str, factory: str | Callable[..., AskTell],
                      replace: bool = False) -> None:
    """Register a strategy under ``name`` for :func:`create_strategy` (and ``--strategy``).

    Args:
        factory: ``factory(space, n_objectives, seed=None, **options)`` returning an object with
            ``ask``/``tell`` (a :class:`Strategy` subclass works as is), or ``"module:Class"``.
        replace: allow replacing a registered name (otherwise an error, to catch typos).

    Raises:
        HwnasError: an empty name, a name already registered, a factory that is not callable.
    """
    if not isinstance(name, str) or not name.strip():
        raise HwnasError(f"a strategy name must be a non-empty string, got {name!r}")
    if name in STRATEGIES and not replace:
        raise HwnasError(f"strategy {name!r} is already registered (replace=True to replace it)")
    if not (callable(factory) or (isinstance(factory, str) and factory.count(":") == 1)):
        raise HwnasError(f"strategy {name!r}: the factory must be callable or 'module:Class', "
                         f"got {factory!r}")
    STRATEGIES[name] = factory


def create_strategy(name: str, space: Space, n_objectives: int = 2, seed: int | None = None,
                    **kwargs: Any) -> Strategy:
    """A strategy by name, e.g. ``create_strategy("nsga2", space, 2, seed=0, population=20)``.

    Raises:
        UnknownNameError: listing the valid names.
    """
    if name not in STRATEGIES:
        raise UnknownNameError("strategy", name, STRATEGIES)
    factory = STRATEGIES[name]
    if isinstance(factory, str):
        module, cls = factory.split(":")
        factory = getattr(importlib.import_module(module), cls)
    return factory(space, n_objectives, seed=seed, **kwargs)


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
    """Everything a search evaluated, in order, how many asks were skipped, and why it ended.

    Attributes:
        stopped: ``budget`` (the budget was spent), ``exhausted`` (the strategy asked nothing),
            ``stalled`` (``max_idle`` asks in a row proposed nothing new), ``unevaluable``
            (``max_skips`` proposals in a row could not be evaluated and none ever could) or
            ``max_asks``.
    """

    records: list[SearchRecord] = field(default_factory=list)
    skipped: int = 0
    asks: int = 0
    stopped: str = "budget"


#: archs -> (natural values (n, m), minimised values (n, m), violation (n,))
Evaluator = Callable[[list[Architecture]], tuple[np.ndarray, np.ndarray, np.ndarray]]


def run_search(strategy: AskTell, evaluate: Evaluator, budget: int, batch: int = 1,
               progress: Callable[[int, int], None] | None = None,
               max_asks: int | None = None, max_idle: int | None = None,
               max_skips: int | None = None,
               callbacks: Sequence[Callable[[SearchRecord], None]] = (),
               time_limit_s: float | None = None) -> SearchResult:
    """Ask, evaluate, tell until ``budget`` unique architectures have been evaluated.

    Architectures already evaluated are told again from the cache at no cost; architectures whose
    metrics are missing (NaN) are skipped, counted, and never told. The loop also ends when the
    strategy has nothing left to ask, after ``max_asks`` asks (default ``100 * budget``), when
    ``max_idle`` architectures asked in a row were all known already (default
    ``max(1000, budget)``: a strategy that cannot propose anything new), or when ``max_skips``
    architectures in a row could not be evaluated and none ever could (default
    ``max(100, 5 * budget)``: metric sources that cover none of what the strategy proposes).

    Args:
        callbacks: each called with every new :class:`SearchRecord`, in order.
        time_limit_s: also stop once this many seconds have passed (checked before each ask):
            a wall-clock budget, as when a search is compared with another at equal time.

    Raises:
        HwnasError: ``budget < 1``, or a time limit that is not a positive number.
    """
    if budget < 1:
        raise HwnasError(f"budget must be >= 1, got {budget}")
    if time_limit_s is not None and not (isinstance(time_limit_s, int | float)
                                         and time_limit_s > 0 and math.isfinite(time_limit_s)):
        raise HwnasError(f"time_limit_s must be a positive number of seconds, got "
                         f"{time_limit_s!r}")
    with _one_blas_thread():
        return _search_loop(strategy, evaluate, budget, batch, progress, max_asks, max_idle,
                            max_skips, callbacks, time_limit_s)


def _one_blas_thread() -> contextlib.AbstractContextManager[Any]:
    """Limit NumPy's BLAS to one thread for the search loop, unless the user set a thread count.

    A strategy's models (the surrogate's ridge over 15,625 x ~100 features, pymoo's sorting) are
    small matrix products; a multi-threaded BLAS spends more on waking and synchronising its
    threads than it saves, and on a busy host far more: 100 surrogate evaluations on NB201 took
    14-18 s with one BLAS thread and 51-58 s with the default two, side by side on this 2-core
    VM under load. PyTorch's and ONNX Runtime's own thread pools (training, measuring) are not
    BLAS and are left alone.
    """
    if any(os.environ.get(v) for v in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
                                       "MKL_NUM_THREADS")):
        return contextlib.nullcontext()
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # scikit-learn's dependency; without it nothing is limited
        return contextlib.nullcontext()
    return threadpool_limits(limits=1, user_api="blas")


def default_max_idle(budget: int) -> int:
    """Known architectures asked in a row after which a search counts as stalled (unless
    ``max_idle`` is given)."""
    return max(1000, budget)


def _search_loop(strategy: AskTell, evaluate: Evaluator, budget: int, batch: int,
                 progress: Callable[[int, int], None] | None, max_asks: int | None,
                 max_idle: int | None, max_skips: int | None,
                 callbacks: Sequence[Callable[[SearchRecord], None]],
                 time_limit_s: float | None) -> SearchResult:
    started = time.perf_counter()
    max_asks = max_asks or 100 * budget
    max_idle = max_idle or default_max_idle(budget)
    max_skips = max_skips or max(100, 5 * budget)
    result = SearchResult()
    cache: dict[Architecture, tuple[np.ndarray, np.ndarray, float]] = {}
    missing: set[Architecture] = set()
    idle = 0  # architectures asked in a row that were all known (evaluated or missing)
    while len(result.records) < budget:
        if result.asks >= max_asks:
            result.stopped = "max_asks"
            break
        if idle >= max_idle:
            result.stopped = "stalled"
            break
        if not result.records and result.skipped >= max_skips:
            result.stopped = "unevaluable"
            break
        if time_limit_s is not None and time.perf_counter() - started >= time_limit_s:
            result.stopped = "time_limit"
            break
        archs = strategy.ask(min(batch, budget - len(result.records)))
        if not archs:
            result.stopped = "exhausted"
            break
        result.asks += len(archs)
        new = list(dict.fromkeys(a for a in archs if a not in cache and a not in missing))
        new = new[: budget - len(result.records)]
        idle = 0 if new else idle + len(archs)
        if new:
            values, F, violation = evaluate(new)
            for a, val, f, v in zip(new, values, F, violation, strict=True):
                if not np.all(np.isfinite(val)):
                    missing.add(a)
                    result.skipped += 1
                    continue
                cache[a] = (val, f, float(v))
                record = SearchRecord(len(result.records), a, val, f, float(v))
                result.records.append(record)
                for callback in callbacks:
                    callback(record)
                if progress:
                    progress(len(result.records), budget)
        told = [a for a in archs if a in cache]
        if told:
            strategy.tell(told, np.stack([cache[a][1] for a in told]),
                          np.array([cache[a][2] for a in told]))
    return result
