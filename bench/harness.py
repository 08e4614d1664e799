"""Run search strategies on tabular problems and score them against the true front.

The reusable parts of ``bench/scripts/search_benchmark.py`` (and of ``hwnas compare``):

- :class:`TabularProblem`: every architecture of an enumerable space with its objective values,
  known up front (public tables, exact model statistics), and a vectorised lookup evaluator;
  its true Pareto set is computed once, exhaustively (:func:`pareto_indices`).
- :func:`run_strategy`: one hwnas strategy through :func:`hwnas.bench.minimize` (the one loop);
  :func:`run_pymoo_nsga2`: pymoo's NSGA-II on the same problem as integer variables, its ask/tell
  interface wrapped as a strategy (:class:`~hwnas.search.strategies.peers_pymoo.PymooNSGA2`, the
  registered ``pymoo:nsga2``) and run through the same loop, whose cache makes the budget count
  *unique* evaluations, as for every hwnas strategy.
  Both return a :class:`RunTrace`: the table indices evaluated, in order, and timings.
- :class:`FrontScorer`: front recall (by index), hypervolume ratio and IGD+ of the first ``b``
  unique evaluations of a trace, normalised by the true front's ideal and nadir points
  (:mod:`hwnas.bench.indicators`); :func:`score_checkpoints` scores several budgets of one run.
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from hwnas.search import (
    Architecture,
    HwnasError,
    Space,
    pareto_mask,
)
from hwnas.search.strategies.peers_pymoo import PymooNSGA2
from hwnas.search.tables.load import BenchmarkTables

from .core import Problem, minimize
from .indicators import FrontRecall, HypervolumeRatio, IGDPlus

__all__ = [
    "PYMOO_NSGA2",
    "PymooNSGA2",
    "TabularProblem",
    "RunTrace",
    "FrontScorer",
    "pareto_indices",
    "nb201_problem",
    "run_strategy",
    "run_pymoo_nsga2",
    "run_any",
    "score_checkpoints",
]

#: name under which :func:`run_any` runs pymoo's NSGA-II
PYMOO_NSGA2 = "pymoo-nsga2"


def pareto_indices(F: np.ndarray) -> np.ndarray:
    """Sorted row indices of the non-dominated rows of ``F`` (minimised; ties all kept).

    The same set as :func:`hwnas.search.pareto_mask`, without its ``n x n`` domination matrix for
    three or more objectives: rows are swept in lexicographic order, where no row can be dominated
    by a later one, and each is tested against the non-dominated rows kept so far (a row dominated
    by anything is dominated by one of those, by transitivity).
    """
    F = np.asarray(F, dtype=np.float64)
    if F.ndim != 2:
        raise HwnasError(f"pareto_indices: expected an (n, m) array, got shape {F.shape}")
    if F.shape[1] <= 2 or len(F) <= 256:
        return np.flatnonzero(pareto_mask(F))
    order = np.lexsort(F.T[::-1])
    kept: list[int] = []
    front = np.empty((0, F.shape[1]))
    for i in order.tolist():
        f = F[i]
        if len(front) and (np.all(front <= f, axis=1) & np.any(front < f, axis=1)).any():
            continue
        kept.append(i)
        front = F[kept]
    return np.sort(np.asarray(kept, dtype=np.int64))


@dataclass
class TabularProblem:
    """A multi-objective problem whose objective values are known for every architecture.

    Args:
        name: label, e.g. ``nb201/pixel2/accuracy+latency``.
        space: the (enumerable) search space.
        archs: every architecture; row ``i`` of ``values`` belongs to ``archs[i]``.
        objectives: objective names, one per column of ``values``.
        directions: ``"min"`` or ``"max"`` per objective.
        values: natural values ``(n, m)`` (accuracy in percent, latency in ms...), all finite.

    Attributes:
        F: minimised values ``(n, m)`` (maximised objectives negated).
        front: sorted indices of the true Pareto set (exhaustive).
        true_front: ``F[front]``.
    """

    name: str
    space: Space
    archs: Sequence[Architecture]
    objectives: tuple[str, ...]
    directions: tuple[str, ...]
    values: np.ndarray
    F: np.ndarray = field(init=False, repr=False)
    front: np.ndarray = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.values = np.asarray(self.values, dtype=np.float64)
        n, m = len(self.archs), len(self.objectives)
        if self.values.shape != (n, m) or len(self.directions) != m:
            raise HwnasError(f"{self.name}: values {self.values.shape} do not match {n} "
                             f"architectures x {m} objectives")
        bad = [d for d in self.directions if d not in ("min", "max")]
        if bad:
            raise HwnasError(f"{self.name}: direction {bad[0]!r}; valid: min, max")
        if not np.isfinite(self.values).all():
            rows = np.flatnonzero(~np.isfinite(self.values).all(axis=1))
            raise HwnasError(f"{self.name}: {len(rows)} architectures without finite values "
                             f"(first index {rows[0]}); a tabular problem needs all of them")
        self.F = self.values * self.signs
        self.F.setflags(write=False)
        self.front = pareto_indices(self.F)
        size = int(np.prod(self.space.n_choices.astype(np.float64)))
        if size <= 10_000_000:  # a dense code -> index array; else a dict
            n_choices = self.space.n_choices.astype(np.int64)  # mixed radix: last gene fastest
            self._radix = np.append(np.cumprod(n_choices[::-1])[::-1][1:], 1)
            self._dense = np.full(size, -1, dtype=np.int64)
            genes = np.array([a.genes for a in self.archs], dtype=np.int64)
            codes = genes @ self._radix
            # first occurrence wins, as BenchmarkTables.index_of
            self._dense[codes[::-1]] = np.arange(n)[::-1]
            self._dict: dict[Architecture, int] | None = None
        else:
            self._dense = None
            self._dict = {}
            for i, a in enumerate(self.archs):
                self._dict.setdefault(a, i)

    @classmethod
    def from_problem(cls, problem: Problem, extra: dict[str, tuple[str, np.ndarray]] | None = None
                     ) -> TabularProblem:
        """Every architecture of ``problem``'s public table with its objective values (the
        problem's sources and directions), plus ``extra`` columns ``name -> (direction,
        values per table row)``.

        Raises:
            HwnasError: a problem without tables, an extra column of the wrong length.
        """
        if problem.tables is None:
            raise HwnasError(f"{problem.name}: a tabular problem needs the public tables")
        archs = list(problem.tables.archs)
        values, _, _ = problem.evaluate(archs)
        names, dirs, cols = list(problem.names), list(problem.directions), [values]
        for name, (direction, column) in (extra or {}).items():
            column = np.asarray(column, dtype=np.float64)
            if column.shape != (len(archs),):
                raise HwnasError(f"{name}: expected {len(archs)} values, got shape "
                                 f"{column.shape}")
            names.append(name)
            dirs.append(direction)
            cols.append(column[:, None])
        label = f"{problem.space.name}/{problem.setup.get('device') or '-'}/{'+'.join(names)}"
        return cls(label, problem.space, archs, tuple(names), tuple(dirs), np.hstack(cols))

    def __len__(self) -> int:
        return len(self.archs)

    @property
    def n_objectives(self) -> int:
        return len(self.objectives)

    @property
    def names(self) -> list[str]:
        return list(self.objectives)

    @property
    def signs(self) -> np.ndarray:
        return np.array([1.0 if d == "min" else -1.0 for d in self.directions])

    def max_evaluations(self) -> int:
        """Every row of the table can be evaluated, no more (for :func:`hwnas.bench.minimize`)."""
        return len(self.archs)

    def index_of(self, arch: Architecture) -> int | None:
        i = int(self.indices([arch])[0])
        return i if i >= 0 else None

    @property
    def true_front(self) -> np.ndarray:
        return self.F[self.front]

    def indices_of_genes(self, genes: np.ndarray) -> np.ndarray:
        """Table indices of architectures given as an ``(n, n_genes)`` integer array (-1: absent).

        The rows must be canonical (inactive genes at 0), as :meth:`Space.from_genes` makes them.
        """
        genes = np.asarray(genes, dtype=np.int64).reshape(-1, len(self.space.genes))
        if self._dense is not None:
            return self._dense[genes @ self._radix]
        return np.array([self._dict.get(self.space.from_genes(g), -1) for g in genes],
                        dtype=np.int64)

    def indices(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Table indices of ``archs`` (-1 for an architecture the table lacks)."""
        if not archs:
            return np.zeros(0, dtype=np.int64)
        if self._dense is not None:
            return self.indices_of_genes(np.array([a.genes for a in archs], dtype=np.int64))
        return np.array([self._dict.get(a, -1) for a in archs], dtype=np.int64)

    def lookup(self, idx: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Natural and minimised values of table indices (NaN rows where ``idx < 0``)."""
        idx = np.asarray(idx, dtype=np.int64)
        values = np.full((len(idx), self.n_objectives), np.nan)
        F = np.full_like(values, np.nan)
        ok = idx >= 0
        values[ok], F[ok] = self.values[idx[ok]], self.F[idx[ok]]
        return values, F

    def evaluate(self, archs: list[Architecture]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """An evaluator for :func:`hwnas.search.run_search`: natural values, minimised values,
        zero violations (architectures outside the table come back as NaN and are skipped)."""
        values, F = self.lookup(self.indices(archs))
        return values, F, np.zeros(len(archs))


def nb201_problem(tables: BenchmarkTables, device: str, task: str = "cifar10_test_200ep",
                  params: np.ndarray | None = None) -> TabularProblem:
    """NB201: accuracy of ``task`` (maximised) x latency on ``device`` (minimised), and the
    parameter count (minimised) when ``params`` (one value per table index) is given."""
    problem = Problem.from_names(tables.space.name, ["accuracy", "latency"], task=task,
                                 device=device, tables=tables)
    return TabularProblem.from_problem(
        problem, None if params is None else {"params": ("min", params)})


@dataclass
class RunTrace:
    """One search run: the table indices it evaluated (unique, in order) and its timings.

    Attributes:
        strategy: strategy name (``pymoo-nsga2`` for pymoo's NSGA-II).
        seed: the run's seed.
        indices: table index of every unique evaluation, in evaluation order.
        wall_s: wall time of the whole search loop.
        lookup_s: time spent inside the table lookups (the "evaluations").
        asks: architectures the strategy proposed (repeats included).
        skipped: proposals outside the table (never counted in the budget).
    """

    strategy: str
    seed: int
    indices: np.ndarray
    wall_s: float
    lookup_s: float
    asks: int
    skipped: int = 0

    @property
    def evaluations(self) -> int:
        return len(self.indices)

    @property
    def overhead_ms_per_eval(self) -> float:
        """Strategy (and loop) time per unique evaluation, table lookups excluded."""
        return 1e3 * (self.wall_s - self.lookup_s) / max(1, self.evaluations)


def run_strategy(problem: TabularProblem, name: str, seed: int, budget: int,
                 **kwargs: Any) -> RunTrace:
    """Run hwnas strategy ``name`` (``create_strategy`` kwargs in ``kwargs``) for ``budget``
    unique evaluations through :func:`hwnas.bench.minimize`."""
    result = minimize(problem, name, budget, seed, strategy_options=kwargs)
    return _trace(problem, name, seed, result)


def _trace(problem: TabularProblem, name: str, seed: int, result: Any) -> RunTrace:
    indices = problem.indices(result.archs)
    return RunTrace(name, seed, indices, result.timings["total_s"], result.timings["evaluate_s"],
                    result.asks, result.skipped)


def run_pymoo_nsga2(problem: TabularProblem, seed: int, budget: int, pop_size: int = 20,
                    eta_crossover: float = 3.0, eta_mutation: float = 3.0) -> RunTrace:
    """pymoo's NSGA-II (:class:`PymooNSGA2`) until ``budget`` unique evaluations.

    pymoo eliminates duplicates within a generation and against the current population only, so
    a child seen in an earlier generation is served from the loop's cache, free and uncounted.

    Raises:
        HwnasError: pymoo is not installed (``pip install "hwnas[pymoo]"``).
    """
    t0 = time.perf_counter()
    strategy = PymooNSGA2(problem.space, problem.n_objectives, seed, pop_size, eta_crossover,
                          eta_mutation)
    result = minimize(problem, strategy, budget, seed)
    result.timings["total_s"] = time.perf_counter() - t0  # with pymoo's setup, as before
    return _trace(problem, PYMOO_NSGA2, seed, result)


def run_any(problem: TabularProblem, name: str, seed: int, budget: int,
            **kwargs: Any) -> RunTrace:
    """:func:`run_pymoo_nsga2` for ``pymoo-nsga2``, else :func:`run_strategy`."""
    if name == PYMOO_NSGA2:
        return run_pymoo_nsga2(problem, seed, budget, **kwargs)
    return run_strategy(problem, name, seed, budget, **kwargs)


class FrontScorer:
    """Front recall, hypervolume ratio and IGD+ of sets of table indices of one problem.

    Indicators are normalised by the true front's ideal and nadir points; recall identifies the
    true Pareto set by table index (architectures with equal objective values on the true front
    are all members).
    """

    def __init__(self, problem: TabularProblem):
        self.problem = problem
        self.hv_ratio = HypervolumeRatio(problem.true_front)
        self.igd_plus = IGDPlus(problem.true_front)
        self.recall = FrontRecall(problem.front.tolist())

    def __call__(self, indices: Sequence[int] | np.ndarray) -> dict[str, float]:
        """``recall``, ``hv_ratio``, ``igd_plus`` and ``front_size`` (found non-dominated rows)."""
        idx = np.unique(np.asarray(indices, dtype=np.int64))
        F = self.problem.F[idx]
        front = F[pareto_indices(F)] if len(F) else F
        return {
            "recall": self.recall(idx.tolist()),
            "hv_ratio": self.hv_ratio(front),
            "igd_plus": self.igd_plus(front),
            "front_size": int(len(front)),
        }


def score_checkpoints(scorer: FrontScorer, trace: RunTrace,
                      budgets: Sequence[int]) -> Mapping[int, dict[str, float]]:
    """Indicators of the first ``b`` unique evaluations of ``trace`` for every ``b`` in
    ``budgets`` (a run shorter than ``b`` is scored on what it evaluated; ``evaluations`` says)."""
    out: dict[int, dict[str, float]] = {}
    for b in sorted(budgets):
        first = trace.indices[:b]
        out[b] = {**scorer(first), "evaluations": int(len(first))}
    return out
