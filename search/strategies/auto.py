"""``auto``: the strategy the committed benchmarks show best for the problem at hand.

What a user gets without naming a strategy (``hwnas search``, :func:`hwnas.bench.minimize`,
a compare grid). The choice is one small rule table, :data:`RULES`, read top to bottom: the first
rule whose condition holds picks the strategy and its options, and its ``why`` (the benchmark
figures behind it, from ``results/benchmarks/README.md``) becomes the recorded reason. When new
benchmarks land, this table is the one place to change.

The rules read the problem, not its answers (:class:`AutoInputs`): whether the space can be
enumerated, how many objectives, the budget, which prior columns are at hand (other tasks'
accuracies, other devices' latencies: :class:`~hwnas.search.strategies.prior.PriorFeatures`) and
what an evaluation costs (a table or file lookup, or live training/measurement, next to which a
strategy's milliseconds per ask are nothing). The caller that knows the problem
(:func:`hwnas.bench.minimize`) fills them in; built by name without them, ``auto`` assumes a
cheap lookup, no priors and an open budget.

Example:
    >>> from hwnas.search import get_space
    >>> auto = AutoStrategy(get_space("nb201"), 2, seed=0, budget=300)
    >>> auto.choice_.strategy, auto.choice_.rule
    ('surrogate', 'two-objectives')
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from ..errors import HwnasError
from ..spaces.space import Architecture, Space
from .prior import PriorFeatures

__all__ = ["AutoInputs", "AutoStrategy", "EVALUATION_COSTS", "NEAREST_LOCAL_BONUS",
           "NEAREST_UNTIL", "OPENING", "RULES", "Rule", "StrategyChoice", "choose_strategy"]

#: what one evaluation costs: a lookup (public table, CSV, lookup table, model statistics) or a
#: live evaluation (training a network, measuring it on a device)
EVALUATION_COSTS = ("lookup", "live")


@dataclass(frozen=True)
class AutoInputs:
    """What the rules read: the problem's shape, never its values.

    Attributes:
        space: the space's name.
        enumerable: whether every architecture can be listed (NB201: 15,625).
        space_size: how many architectures the space holds.
        n_objectives: objective columns.
        objectives: their names (``accuracy``, ``latency``...), where known.
        budget: unique evaluations asked (``None``: not known).
        max_evaluations: the most that can be evaluated at all (``None``: unbounded/unknown).
        priors: names of the prior columns at hand.
        accuracy_priors: those of them that are accuracies (the others, latencies, are taken in
            log by :class:`~hwnas.search.strategies.prior.PriorFeatures`).
        evaluation: ``lookup`` or ``live`` (:data:`EVALUATION_COSTS`).
        table_rows: the space is a table's rows of a space too large to list
            (:class:`~hwnas.search.strategies.candidates.TableSpace`: FBNet's 5,000).
    """

    space: str
    enumerable: bool
    space_size: float
    n_objectives: int
    objectives: tuple[str, ...] = ()
    budget: int | None = None
    max_evaluations: int | None = None
    priors: tuple[str, ...] = ()
    evaluation: str = "lookup"
    table_rows: bool = False
    accuracy_priors: tuple[str, ...] = ()

    @property
    def reachable(self) -> float:
        """The most architectures a search can evaluate."""
        return min(self.space_size, self.max_evaluations or np.inf)


@dataclass(frozen=True)
class Rule:
    """One row of the table: when it applies, what it picks and the evidence for it.

    ``why`` is formatted with the inputs' fields (``{budget}``, ``{n_objectives}``...).
    """

    name: str
    when: Callable[[AutoInputs], bool]
    strategy: str
    why: str
    options: Callable[[AutoInputs], dict[str, Any]] = field(default=lambda i: {})
    takes_prior: bool = False


def _forest_on_accuracy(i: AutoInputs) -> dict[str, Any]:
    return {"forest": [i.objectives.index("accuracy")]} if "accuracy" in i.objectives else {}


#: archive size from which accuracy's nearest prior gives way to the full design: the highest
#: recall at 1000 of 400 / 500 / 700 / never on the validation devices (10 seeds)
NEAREST_UNTIL = 400
#: the surrogate's ``local_bonus`` with accuracy on its nearest prior: 0.4 against 0.75 raised
#: recall at 300 / 1000 on the validation devices from 0.553 / 0.868 to 0.579 / 0.871 (10 seeds)
NEAREST_LOCAL_BONUS = 0.4


#: archive size up to which the asks follow the priors alone (accuracy's nearest prior, latency
#: from a ridge on the other devices' latencies): 400 against 200 / 300 had the same recall at
#: 300 and the highest at 1000 on the validation devices (screen c14, 10 seeds)
OPENING = 400


def _nearest_accuracy_prior(i: AutoInputs) -> dict[str, Any]:
    # two objectives only: with parameters as a third, the structure that accuracy's nearest
    # prior leaves out is worth more at 1000 evaluations than it costs at 300 (validation
    # devices, results/benchmarks/README.md)
    if "accuracy" not in i.objectives or not i.accuracy_priors or i.n_objectives > 2:
        return {}
    options: dict[str, Any] = {
        "nearest_prior": {i.objectives.index("accuracy"): list(i.accuracy_priors)},
        "nearest_until": NEAREST_UNTIL, "local_bonus": NEAREST_LOCAL_BONUS}
    latency_priors = [n for n in i.priors if n not in i.accuracy_priors]
    # the opening needs a model of the other objective from the priors alone: latency's ridge
    # on the other devices' latencies (what the screens measured; parameters have none)
    if i.n_objectives == 2 and "latency" in i.objectives and latency_priors:
        options.update(opening=OPENING,
                       opening_ridge={i.objectives.index("latency"): latency_priors})
    return options


#: the decision, first match wins; figures are means over HELP's six NB201 test devices, 10 seeds
#: (median front recall at 300 / 1000 unique evaluations, hypervolume ratio at 300 / 1000)
RULES: tuple[Rule, ...] = (
    Rule("whole-space",
         lambda i: i.enumerable and i.budget is not None and i.budget >= i.reachable,
         "exhaustive",
         "the budget ({budget}) covers every architecture that can be evaluated: exhaustive "
         "search evaluates them all, so the front it finds is the true front"),
    Rule("table-rows",
         lambda i: i.table_rows,
         "surrogate",
         "the {space_size:.0f} architectures of a table of a space too large to list, {n_priors} "
         "prior columns: the surrogate scores every row; on FBNet's 5,000 (latency x MACs, HELP's "
         "three fbnet test devices, 10 seeds) its median recall at 100 / 300 / 1000 is "
         "0.11-0.13 / 0.64-0.69 / 0.99-1.00, with the other devices' latencies as priors "
         "0.19-0.26 / 0.71-0.82 / 1.00, against 0.02-0.04 / 0.11-0.13 / 0.30-0.36 for nsga2 "
         "and 0.00-0.05 / 0.04-0.11 / 0.20-0.39 for pymoo's NSGA-II (search_fbnet.json); on "
         "OFA's 5,000 (latency x the network's MACs, three held-out GPU configurations, "
         "nothing tuned on OFA), with priors 0.10-0.39 / 0.46-0.91 / 0.99-1.00 against "
         "0.01-0.04 / 0.06-0.20 / 0.31-0.61 for pymoo's NSGA-II (search_ofa.json)",
         takes_prior=True),
    Rule("enumerable-with-priors",
         lambda i: i.enumerable and bool(i.priors),
         "surrogate",
         "finite space with {n_priors} prior columns (other tasks' accuracy, other devices' "
         "latency): the surrogate given the default priors is the best measured, recall "
         "0.70 / 0.93 with two objectives (the first 400 asks from the priors alone: accuracy's "
         "nearest prior task, latency from a ridge on the other devices; chosen on 18 "
         "validation devices; 0.56 / 0.92 without that opening, 0.50 / 0.93 with the whole "
         "design) against 0.29 / 0.78 without priors and 0.18 / 0.58 for pymoo's NSGA-II, ahead "
         "of pymoo in recall on every device and budget and in hypervolume on all but raspi4 at "
         "300 (search_default.json); with three objectives "
         "ahead of pymoo in recall and hypervolume on every device at 300 and 1000 "
         "(search_default_3obj.json, 10 seeds)",
         options=_nearest_accuracy_prior, takes_prior=True),
    Rule("two-objectives-live",
         lambda i: (i.enumerable and i.n_objectives <= 2 and i.evaluation == "live"
                    and "accuracy" in i.objectives),
         "surrogate",
         "finite space, {n_objectives} objective(s), no priors, evaluations trained or measured "
         "live: the surrogate with a forest on accuracy finds the most, recall 0.32 / 0.81 against "
         "0.29 / 0.78 for the ridge alone (search_forest.json; designed on HELP's meta-training "
         "devices), and its extra ~40 ms per evaluation is nothing next to a live evaluation",
         options=_forest_on_accuracy),
    Rule("two-objectives",
         lambda i: i.enumerable and i.n_objectives <= 2,
         "surrogate",
         "finite space, {n_objectives} objective(s), no priors: the surrogate finds the most, "
         "recall 0.29 / 0.78 against local 0.28 / 0.61, evolution 0.17 / 0.57, nsga2 0.13 / "
         "0.51 and pymoo's NSGA-II 0.18 / 0.58 (search.json; no single-objective benchmark: the "
         "two-objective one decides)"),
    Rule("three-objectives",
         lambda i: i.enumerable,
         "local",
         "finite space, {n_objectives} objectives, no priors: Pareto local search, recall 0.22 / "
         "0.55 and hypervolume 0.9828 / 0.9963 against the surrogate's 0.18 / 0.55 and 0.9836 / "
         "0.9964 at 0.2 ms instead of 43 ms per evaluation (search_3obj.json: a thin margin, "
         "recall at 300 decides)"),
    Rule("any-space",
         lambda i: True,
         "surrogate",
         "space of {space_size:.3g} architectures, not enumerable and without a table to "
         "restrict it: the surrogate with candidates drawn around its front (one-edit neighbours, "
         "mutations, crossovers, samples); on the whole FBNet space (per-layer latency x flops, "
         "exact front) its hypervolume ratio at 300 / 1000 is 0.90-0.91 / 0.97 against the next "
         "best's 0.83-0.87 / 0.90-0.92 (local search, evolution) and pymoo NSGA-II's 0.76-0.80 / "
         "0.84-0.88 (search_fbnet_space.json); on FBNet's table, recall at 300 0.64-0.69 against "
         "nsga2's 0.11-0.13 (search_fbnet.json)",
         takes_prior=True),
)


@dataclass(frozen=True)
class StrategyChoice:
    """What ``auto`` picked, by which rule, why, and from what."""

    strategy: str
    options: dict[str, Any]
    rule: str
    reason: str
    inputs: AutoInputs
    uses_prior: bool

    def as_record(self) -> dict[str, Any]:
        """A JSON-ready record (``run.json``'s ``strategy_choice``)."""
        inputs = asdict(self.inputs)
        inputs["priors"] = len(self.inputs.priors)  # the names are in the run's priors record
        inputs["accuracy_priors"] = len(self.inputs.accuracy_priors)
        if not np.isfinite(inputs["space_size"]):
            inputs["space_size"] = None
        return {"strategy": self.strategy, "options": dict(self.options), "rule": self.rule,
                "reason": self.reason, "uses_prior": self.uses_prior, "inputs": inputs}


def choose_strategy(inputs: AutoInputs, rules: Sequence[Rule] = RULES) -> StrategyChoice:
    """The first rule of ``rules`` that holds for ``inputs``.

    Raises:
        HwnasError: an evaluation cost that is not one of :data:`EVALUATION_COSTS`, or no rule
            applies (a rule table without a catch-all).
    """
    if inputs.evaluation not in EVALUATION_COSTS:
        raise HwnasError(f"evaluation cost {inputs.evaluation!r}; valid: "
                         f"{', '.join(EVALUATION_COSTS)}")
    for rule in rules:
        if rule.when(inputs):
            fields = {**asdict(inputs), "n_priors": len(inputs.priors)}
            return StrategyChoice(rule.strategy, rule.options(inputs), rule.name,
                                  rule.why.format(**fields), inputs,
                                  rule.takes_prior and bool(inputs.priors))
    raise HwnasError(f"no rule of auto applies to {inputs}")


class AutoStrategy:
    """Picks a strategy by :func:`choose_strategy` and asks and tells through it.

    Args:
        space: the search space.
        n_objectives: objective columns ``tell`` receives.
        seed: the picked strategy's seed.
        budget, max_evaluations, objectives, evaluation: see :class:`AutoInputs` (set by
            :func:`hwnas.bench.minimize` from the problem).
        prior: prior features, handed to the picked strategy when it takes them.

    Attributes:
        choice_: the :class:`StrategyChoice`.
        strategy_: the strategy built from it.

    Raises:
        HwnasError: a prior that is not a :class:`PriorFeatures`, a bad evaluation cost.
    """

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None, *,
                 budget: int | None = None, max_evaluations: int | None = None,
                 objectives: Sequence[str] = (), evaluation: str = "lookup",
                 prior: PriorFeatures | None = None):
        from .base import create_strategy

        if prior is not None and not isinstance(prior, PriorFeatures):
            raise HwnasError(f"prior must be a PriorFeatures, got {type(prior).__name__}")
        from .candidates import TableSpace

        size = float(space.size) if space.size is not None else float("inf")
        inputs = AutoInputs(space.name, bool(space.enumerable), size, int(n_objectives),
                            tuple(objectives), budget, max_evaluations,
                            tuple(prior.names) if prior is not None else (), evaluation,
                            isinstance(space, TableSpace),
                            tuple(n for n in prior.names if n not in prior.log)
                            if prior is not None else ())
        self.choice_ = choose_strategy(inputs)
        options: Mapping[str, Any] = dict(self.choice_.options)
        if self.choice_.uses_prior:
            options = {**options, "prior": prior}
        self.strategy_ = create_strategy(self.choice_.strategy, space, n_objectives, seed=seed,
                                         **options)
        self.space, self.n_objectives, self.seed = space, n_objectives, seed

    def ask(self, n: int = 1) -> list[Architecture]:
        """The picked strategy's proposals."""
        return self.strategy_.ask(n)

    def tell(self, archs: Sequence[Architecture], F: np.ndarray,
             violation: np.ndarray | None = None) -> None:
        """Told to the picked strategy."""
        self.strategy_.tell(archs, F, violation)
