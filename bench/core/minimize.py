"""One way to run a search: ``minimize(problem, strategy, budget, seed) -> Result``.

As pymoo's ``minimize(problem, algorithm)`` and optuna's study: the strategy (a registered name,
or any object with ``ask``/``tell``) proposes, the problem's metric sources answer, and
:func:`hwnas.search.run_search` is the loop between them. A :class:`Result` keeps every unique
evaluation in order, the feasible Pareto front, timings, the configuration and the warnings of a
search that could not spend its budget::

    result = minimize(Problem.from_names("nb201", ["accuracy", "latency"], device="pixel2"),
                      "nsga2", budget=100, seed=0)
    result.front          # a DataFrame: the feasible non-dominated evaluations
    result.to_frame()     # every evaluation, as evaluations.csv holds it
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import pandas as pd

from hwnas.search import (
    Architecture,
    HwnasError,
    Space,
    create_strategy,
    pareto_mask,
    run_search,
)
from hwnas.search.strategies.base import DEFAULT_STRATEGY, SearchRecord
from hwnas.search.strategies.prior import PriorFeatures

from .auto import auto_options, prior_record

if TYPE_CHECKING:
    from .reference import ReferenceFront

__all__ = ["minimize", "Result", "SearchWarning", "Evaluable"]


class SearchWarning(UserWarning):
    """A search that ran but not as asked (budget capped, stopped early, nothing feasible)."""


class Evaluable(Protocol):
    """What :func:`minimize` needs of a problem (:class:`~hwnas.bench.Problem` and the harness's
    :class:`~hwnas.bench.harness.TabularProblem` both are)."""

    space: Space
    name: str

    @property
    def names(self) -> list[str]: ...

    @property
    def n_objectives(self) -> int: ...

    def evaluate(self, archs: Sequence[Architecture]
                 ) -> tuple[np.ndarray, np.ndarray, np.ndarray]: ...

    def max_evaluations(self) -> int | None: ...

    def index_of(self, arch: Architecture) -> int | None: ...


@dataclass
class Result:
    """A finished search.

    Attributes:
        problem: what was searched.
        records: every unique evaluation, in order (architecture, natural and minimised values,
            constraint violation).
        skipped: proposals no source could answer (never counted in the budget).
        asks: architectures the strategy proposed, repeats included.
        stopped: why the loop ended (see :class:`hwnas.search.SearchResult`).
        timings: ``total_s`` (the whole search), ``evaluate_s`` (inside the metric sources).
        config: strategy, options, budget asked and used, seed, batch, ``priors`` (``how``:
            ``given``, ``default``, ``off`` or ``none``; ``used``: their names; ``coverage``)
            and, for ``auto``, ``strategy_choice`` (strategy, options, rule, reason, inputs).
        warnings: what did not go as asked, in words (also issued as :class:`SearchWarning`).
    """

    problem: Evaluable = field(repr=False)
    records: list[SearchRecord]
    skipped: int
    asks: int
    stopped: str
    timings: dict[str, float]
    config: dict[str, Any]
    warnings: list[str] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.records)

    @property
    def names(self) -> list[str]:
        return list(self.problem.names)

    @property
    def archs(self) -> list[Architecture]:
        return [r.arch for r in self.records]

    @property
    def values(self) -> np.ndarray:
        """Natural objective values ``(n, m)`` (accuracy in %, latency in ms...)."""
        return self._stack("values")

    @property
    def F(self) -> np.ndarray:
        """Minimised objective values ``(n, m)``."""
        return self._stack("F")

    @property
    def violation(self) -> np.ndarray:
        return np.array([r.violation for r in self.records], dtype=np.float64)

    @property
    def feasible(self) -> np.ndarray:
        return self.violation <= 0

    def _stack(self, what: str) -> np.ndarray:
        if not self.records:
            return np.zeros((0, self.problem.n_objectives))
        return np.stack([getattr(r, what) for r in self.records]).astype(np.float64)

    @property
    def front_mask(self) -> np.ndarray:
        """Which evaluations are feasible and non-dominated among the feasible ones."""
        feasible = self.feasible
        mask = np.zeros(len(self.records), dtype=bool)
        if feasible.any():
            mask[feasible] = pareto_mask(self.F[feasible])
        return mask

    @property
    def front_archs(self) -> list[Architecture]:
        return [a for a, m in zip(self.archs, self.front_mask, strict=True) if m]

    @property
    def front_values(self) -> np.ndarray:
        return self.values[self.front_mask]

    @property
    def front(self) -> pd.DataFrame:
        """The feasible Pareto front: one row per member architecture (the index), its
        objective values in natural units, sorted by the first objective's minimised value."""
        mask = self.front_mask
        frame = pd.DataFrame(self.values[mask], columns=self.names,
                             index=pd.Index([self.problem.space.format(a)
                                             for a in self.front_archs], name="arch"))
        return frame.iloc[np.argsort(self.F[mask][:, 0], kind="stable")]

    def to_frame(self) -> pd.DataFrame:
        """One row per evaluation: ``step``, ``index`` (public table row, or empty), ``arch``,
        one column per objective (natural units) and ``violation``."""
        space, names = self.problem.space, self.names
        return pd.DataFrame({
            "step": [r.step for r in self.records],
            "index": pd.array([self.problem.index_of(r.arch) for r in self.records],
                              dtype="Int64"),
            "arch": [space.format(r.arch) for r in self.records],
            **{n: [float(r.values[k]) for r in self.records] for k, n in enumerate(names)},
            "violation": [r.violation for r in self.records],
        })

    def score(self, reference: ReferenceFront,
              budgets: Sequence[int] | None = None) -> list[dict[str, Any]]:
        """Hypervolume ratio, IGD+, front recall and accuracy regret of the first ``b``
        evaluations for every ``b`` in ``budgets`` (default: all of them) against
        ``reference`` (:func:`hwnas.bench.true_front`)."""
        from .reference import ReferenceFront, score_frame

        if not isinstance(reference, ReferenceFront):
            raise HwnasError(f"score: reference must be a ReferenceFront (from "
                             f"true_front(problem)), got {type(reference).__name__}")
        budgets = list(budgets) if budgets is not None else [max(1, len(self))]
        bad = [b for b in budgets if isinstance(b, bool) or not isinstance(b, int | np.integer)
               or b < 1]
        if bad or not budgets:
            raise HwnasError(f"score: budgets {budgets!r}; valid: integers >= 1")
        return score_frame(self.to_frame(), self.problem.signs, reference, budgets)


class _UserStrategy:
    """A user's ask/tell object, with its failures said as :class:`HwnasError` naming the call
    (a ``tell`` of the wrong signature, an ``ask`` that returns something else than
    architectures), so a script sees what to fix rather than a bare TypeError from the loop."""

    def __init__(self, strategy: Any, label: str):
        self.strategy, self.label = strategy, label

    def _call(self, what: str, *args: Any) -> Any:
        try:
            return getattr(self.strategy, what)(*args)
        except HwnasError:
            raise
        except Exception as e:
            raise HwnasError(f"strategy {self.label}: {what}() failed: {type(e).__name__}: "
                             f"{e}") from e

    def ask(self, n: int) -> list[Architecture]:
        archs = self._call("ask", n)
        if archs is None or isinstance(archs, (str, bytes)) or not hasattr(archs, "__iter__"):
            raise HwnasError(f"strategy {self.label}: ask({n}) returned "
                             f"{type(archs).__name__}; valid: a list of architectures (empty "
                             "when it has nothing left)")
        archs = list(archs)
        for a in archs:
            if not isinstance(a, Architecture):
                raise HwnasError(f"strategy {self.label}: ask({n}) returned {a!r:.60} "
                                 f"({type(a).__name__}); valid: architectures of the space "
                                 "(space.sample, space.from_genes, space.parse)")
        return archs

    def tell(self, archs: list[Architecture], F: np.ndarray, violation: np.ndarray) -> None:
        self._call("tell", archs, F, violation)


def _search_space(problem: Evaluable) -> Any:
    """The space a strategy given by name searches: the problem's own, or, when that space is
    too large to list and an objective is read from the problem's table (FBNet's 5,000 rows),
    the table's rows (:class:`~hwnas.search.strategies.candidates.TableSpace`), since nothing
    off the table can be evaluated and a strategy sampling the whole space would find nothing
    but misses."""
    space = problem.space
    if space.enumerable:
        return space
    # the public-table sources say how many rows they cover; their tables list the rows
    rows = [o.source.tables.archs for o in getattr(problem, "objectives", ())
            if getattr(o.source, "coverage", None) is not None
            and len(getattr(getattr(o.source, "tables", None), "archs", ()))]
    if not rows:
        return space
    from hwnas.search.strategies.candidates import TableSpace

    keep = set.intersection(*(set(r) for r in rows))
    return TableSpace(space, [a for a in rows[0] if a in keep])


def _strategy(strategy: Any, problem: Evaluable, seed: int | None,
              options: Mapping[str, Any]) -> tuple[Any, str]:
    if isinstance(strategy, str):
        try:
            built = create_strategy(strategy, _search_space(problem), problem.n_objectives,
                                    seed=seed, **options)
        except (TypeError, ValueError) as e:  # an option of the wrong name, type or range
            raise HwnasError(f"strategy {strategy!r}: invalid strategy_options "
                             f"{dict(options)}: {e}") from None
        return built, strategy
    if callable(getattr(strategy, "ask", None)) and callable(getattr(strategy, "tell", None)):
        if options:
            raise HwnasError("strategy_options are for a strategy given by name; this one is "
                             "already built")
        label = type(strategy).__name__
        return _UserStrategy(strategy, label), label
    raise HwnasError(f"strategy must be a registered name or an object with ask and tell, got "
                     f"{type(strategy).__name__}")


#: the largest seed, the same on the command line and in compare configs
MAX_SEED = 2**32 - 1


def _check_budget(budget: Any) -> int:
    if isinstance(budget, bool) or not isinstance(budget, (int, np.integer)):
        raise HwnasError(f"budget must be an integer >= 1, got {budget!r}")
    if budget < 1:
        raise HwnasError(f"budget must be >= 1, got {budget}")
    return int(budget)


def minimize(problem: Evaluable, strategy: Any = DEFAULT_STRATEGY, budget: int = 100,
             seed: int | None = 0, *, batch: int = 1,
             strategy_options: Mapping[str, Any] | None = None,
             callbacks: Sequence[Callable[[SearchRecord], None]] = (),
             progress: Callable[[int, int], None] | None = None,
             max_asks: int | None = None, time_limit_s: float | None = None,
             prior: bool = True) -> Result:
    """Search ``problem`` with ``strategy`` for ``budget`` unique evaluations.

    Args:
        strategy: a registered name (``random``, ``nsga2``... :func:`hwnas.search.list_strategies`)
            or any object with ``ask(n)`` and ``tell(archs, F, violation)``. The default,
            ``auto``, picks the strategy the committed benchmarks show best for the problem
            (:mod:`hwnas.search.strategies.auto`); ``result.config["strategy_choice"]`` says
            which and why.
        budget: unique architectures to evaluate; capped at what can be evaluated at all (the
            space's size, a table's rows), with a warning.
        seed: the strategy's seed (a strategy given by name).
        batch: architectures asked at once.
        strategy_options: keyword arguments of the named strategy (``auto`` takes only
            ``prior``, a :class:`~hwnas.search.strategies.PriorFeatures`).
        callbacks: each called with every new evaluation record, in order.
        progress: ``progress(done, budget)`` after every evaluation.
        max_asks: stop after this many proposals (default ``100 * budget``).
        time_limit_s: also stop after this many seconds (a wall-clock budget; not warned about,
            ``result.stopped == "time_limit"``).
        prior: with ``auto`` and no ``prior`` among the options, hand it the default priors
            (other tasks' accuracy, other devices' latency: :mod:`hwnas.bench.core.priors`);
            ``False``: none. ``result.config["priors"]`` records the priors a search used.

    Returns:
        the :class:`Result`; its ``warnings`` say when the budget was capped, the strategy
        stalled, nothing could be evaluated or nothing evaluated is feasible.

    Raises:
        HwnasError: a budget that is not an integer >= 1, an unknown strategy, bad options.
    """
    for what in ("evaluate", "max_evaluations", "index_of"):
        if not callable(getattr(problem, what, None)):
            raise HwnasError(f"problem must be a Problem (Problem.from_names(...) or "
                             f"Problem(space, objectives)), got {type(problem).__name__}")
    asked = _check_budget(budget)
    try:
        callbacks = list(callbacks) if not isinstance(callbacks, (str, bytes)) else [callbacks]
    except TypeError:
        callbacks = [callbacks]
    if not all(callable(c) for c in callbacks):
        raise HwnasError("callbacks must be a sequence of functions, each called with every "
                         "new evaluation record")
    if progress is not None and not callable(progress):
        raise HwnasError(f"progress must be a function progress(done, budget), got "
                         f"{type(progress).__name__}")
    if max_asks is not None and (isinstance(max_asks, bool) or not isinstance(max_asks, int)
                                 or max_asks < 1):
        raise HwnasError(f"max_asks must be an integer >= 1 or None, got {max_asks!r}")
    if isinstance(seed, bool) or (seed is not None and not isinstance(seed, (int, np.integer))):
        raise HwnasError(f"seed must be an integer or None, got {seed!r}")
    if seed is not None and not 0 <= seed <= MAX_SEED:
        raise HwnasError(f"seed must be in 0..{MAX_SEED} (as on the command line), got {seed}")
    if isinstance(batch, bool) or not isinstance(batch, int) or batch < 1:
        raise HwnasError(f"batch must be an integer >= 1, got {batch!r}")
    notes: list[str] = []
    cap = problem.max_evaluations()
    used = asked
    if cap is not None and asked > cap:
        used = cap
        notes.append(f"budget {asked} exceeds the {cap} architectures {problem.name} can "
                     f"evaluate; capped at {cap}")
    if not isinstance(prior, bool):
        raise HwnasError(f"prior must be True or False, got {prior!r}")
    options = dict(strategy_options or {})
    t0 = time.perf_counter()
    if isinstance(strategy, str) and strategy == "auto":
        built, priors = auto_options(problem, used, options, prior)
        ask_tell, label = _strategy(strategy, problem, seed, built)
        choice = ask_tell.choice_
        if not choice.uses_prior and priors["used"]:
            if priors["how"] == "given":
                raise HwnasError(f"auto picked {choice.strategy} for this problem, which takes no "
                                 f"prior ({choice.reason}); name the strategy surrogate to search "
                                 "with the priors given")
            priors = {**priors, "available": priors["used"], "used": [],
                      "note": f"{choice.strategy} takes no prior"}
        features = built["prior"] if choice.uses_prior else None
    else:
        ask_tell, label = _strategy(strategy, problem, seed, options)
        features, choice = options.get("prior"), None
        priors = prior_record(features if isinstance(features, PriorFeatures) else None,
                              "given" if features is not None else "none")
    spent = [0.0]

    def evaluate(archs: list[Architecture]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        t = time.perf_counter()
        try:
            return problem.evaluate(archs)
        finally:
            spent[0] += time.perf_counter() - t

    found = run_search(ask_tell, evaluate, used, batch=batch, progress=progress,
                       max_asks=max_asks, callbacks=callbacks, time_limit_s=time_limit_s)
    total = time.perf_counter() - t0
    n = len(found.records)
    if found.stopped == "stalled":
        notes.append(f"the strategy proposed nothing new in many asks in a row; stopped after "
                     f"{n} of {used} evaluations")
    elif found.stopped == "unevaluable":
        notes.append(f"none of the {found.skipped} architectures proposed could be evaluated "
                     "(a metric source had no value for any of them); stopped early")
    elif found.stopped == "exhausted" and n < used:
        notes.append(f"the strategy had nothing left to propose after {n} evaluations")
    elif found.stopped == "max_asks":
        notes.append(f"stopped after {found.asks} proposals with {n} of {used} evaluations "
                     f"({found.skipped} could not be evaluated)")
    result = Result(problem, found.records, found.skipped, found.asks, found.stopped,
                    {"total_s": total, "evaluate_s": spent[0]},
                    {"strategy": label, "strategy_options": options, "budget": asked,
                     "budget_used": used, "seed": seed, "batch": batch,
                     **({"time_limit_s": time_limit_s} if time_limit_s is not None else {}),
                     **({"strategy_choice": choice.as_record()} if choice is not None else {}),
                     "priors": priors},
                    notes)
    if isinstance(features, PriorFeatures):
        # the share of evaluated architectures the prior knew: near 0, it could not help
        priors["coverage"] = features.coverage(result.archs)
    constraints = getattr(problem, "constraints", [])
    if n and constraints and not result.feasible.any():
        notes.append(f"no evaluated architecture meets {', '.join(map(str, constraints))}; "
                     "the front is empty")
    for note in notes:
        warnings.warn(note, SearchWarning, stacklevel=2)
    return result
