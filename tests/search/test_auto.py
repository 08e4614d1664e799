"""``auto``: the rule table picks per problem kind, says why, and searches through its pick."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.search import HwnasError, get_space, run_search
from hwnas.search.strategies import AutoStrategy, PriorFeatures, choose_strategy
from hwnas.search.strategies.auto import (
    NEAREST_LOCAL_BONUS,
    NEAREST_UNTIL,
    OPENING,
    RULES,
    AutoInputs,
)
from hwnas.search.strategies.base import DEFAULT_STRATEGY, list_strategies

NB201 = dict(space="nb201", enumerable=True, space_size=15625.0)
FBNET = dict(space="fbnet", enumerable=False, space_size=float(get_space("fbnet").size))


def pick(**kw):
    return choose_strategy(AutoInputs(**kw))


def test_auto_is_registered_and_the_default():
    assert "auto" in list_strategies() and DEFAULT_STRATEGY == "auto"
    assert len({r.name for r in RULES}) == len(RULES)
    assert RULES[-1].when(AutoInputs(**FBNET, n_objectives=5))  # a catch-all ends the table


@pytest.mark.parametrize("kw, strategy, rule, options", [
    (dict(**NB201, n_objectives=2, objectives=("accuracy", "latency"), budget=300,
          priors=("cifar100_test_200ep", "pixel3")),
     "surrogate", "enumerable-with-priors", {}),
    # accuracy with another task's accuracy at hand: modelled on the nearest such column
    (dict(**NB201, n_objectives=2, objectives=("latency", "accuracy"), budget=300,
          priors=("cifar100_test_200ep", "pixel3"), accuracy_priors=("cifar100_test_200ep",)),
     "surrogate", "enumerable-with-priors",
     {"nearest_prior": {1: ["cifar100_test_200ep"]}, "nearest_until": NEAREST_UNTIL,
      "local_bonus": NEAREST_LOCAL_BONUS, "opening": OPENING, "opening_ridge": {0: ["pixel3"]}}),
    # no other device's latency at hand: no model of latency from the priors, so no opening
    (dict(**NB201, n_objectives=2, objectives=("latency", "accuracy"), budget=300,
          priors=("cifar100_test_200ep",), accuracy_priors=("cifar100_test_200ep",)),
     "surrogate", "enumerable-with-priors",
     {"nearest_prior": {1: ["cifar100_test_200ep"]}, "nearest_until": NEAREST_UNTIL,
      "local_bonus": NEAREST_LOCAL_BONUS}),
    (dict(**NB201, n_objectives=3, objectives=("accuracy", "latency", "params"), budget=300,
          priors=("cifar100_test_200ep",), accuracy_priors=("cifar100_test_200ep",)),
     "surrogate", "enumerable-with-priors", {}),
    (dict(**NB201, n_objectives=2, objectives=("latency", "params"), budget=300,
          priors=("cifar100_test_200ep",), accuracy_priors=("cifar100_test_200ep",)),
     "surrogate", "enumerable-with-priors", {}),
    (dict(**NB201, n_objectives=3, budget=1000, priors=("pixel3",)),
     "surrogate", "enumerable-with-priors", {}),
    (dict(**NB201, n_objectives=2, objectives=("accuracy", "latency"), budget=300),
     "surrogate", "two-objectives", {}),
    (dict(**NB201, n_objectives=1, objectives=("accuracy",), budget=300),
     "surrogate", "two-objectives", {}),
    (dict(**NB201, n_objectives=2, objectives=("latency", "accuracy"), budget=300,
          evaluation="live"),
     "surrogate", "two-objectives-live", {"forest": [1]}),
    (dict(**NB201, n_objectives=3, objectives=("accuracy", "latency", "params"), budget=300),
     "local", "three-objectives", {}),
    (dict(**NB201, n_objectives=2, budget=15625), "exhaustive", "whole-space", {}),
    # a table that covers 100 architectures: a budget of 100 evaluates all it can
    (dict(**NB201, n_objectives=2, budget=100, max_evaluations=100),
     "exhaustive", "whole-space", {}),
    (dict(**FBNET, n_objectives=2, budget=300, priors=("pixel3",)),
     "surrogate", "any-space", {}),
    (dict(**FBNET, n_objectives=2, budget=10**6), "surrogate", "any-space", {}),
    # FBNet's table: its 5,000 rows, listed
    (dict(space="fbnet", enumerable=True, space_size=5000.0, n_objectives=2, budget=300,
          priors=("pixel3",), table_rows=True), "surrogate", "table-rows", {}),
    (dict(space="fbnet", enumerable=True, space_size=5000.0, n_objectives=2, budget=5000,
          table_rows=True), "exhaustive", "whole-space", {}),
])
def test_auto_picks_per_problem_kind(kw, strategy, rule, options):
    choice = pick(**kw)
    assert (choice.strategy, choice.rule, choice.options) == (strategy, rule, options)
    assert choice.uses_prior == (rule in ("enumerable-with-priors", "table-rows", "any-space")
                                 and bool(kw.get("priors")))
    assert choice.reason and "{" not in choice.reason  # formatted, no placeholder left
    record = choice.as_record()
    assert record["inputs"]["n_objectives"] == kw["n_objectives"]
    assert record["inputs"]["priors"] == len(kw.get("priors", ()))


def test_the_reason_names_its_evidence():
    assert "search_default.json" in pick(**NB201, n_objectives=2, priors=("x",)).reason
    # a space without a table: the evidence is the search of the whole FBNet space
    reason = pick(**FBNET, n_objectives=2).reason
    assert "search_fbnet_space.json" in reason and "search_fbnet.json" in reason
    # a table's rows (FBNet's or OFA's 5,000): the table-rows studies of both spaces
    reason = pick(space="ofa", enumerable=True, space_size=5000.0, n_objectives=2, budget=300,
                  priors=("v100_1",), table_rows=True).reason
    assert "search_fbnet.json" in reason and "search_ofa.json" in reason


def test_a_bad_evaluation_cost_is_refused():
    with pytest.raises(HwnasError, match="evaluation cost 'slow'; valid: lookup, live"):
        pick(**NB201, n_objectives=2, evaluation="slow")


def test_auto_searches_through_its_pick_and_hands_it_the_prior():
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(space.sample(rng) for _ in range(400)))
    prior = PriorFeatures(archs, rng.normal(size=(len(archs), 1)), ["made_up"])
    auto = AutoStrategy(space, 2, seed=0, budget=50, prior=prior)
    assert auto.choice_.uses_prior and auto.strategy_.prior is prior
    assert auto.strategy_.nearest_prior == {}  # no objective is named accuracy
    named = AutoStrategy(space, 2, seed=0, budget=50, prior=prior,
                         objectives=("accuracy", "latency"))
    assert named.strategy_.nearest_prior == {0: ["made_up"]}
    assert named.strategy_.nearest_until == NEAREST_UNTIL
    assert named.strategy_.local_bonus == NEAREST_LOCAL_BONUS
    assert named.choice_.as_record()["inputs"]["accuracy_priors"] == 1
    assert named.strategy_.opening is None  # no latency prior: nothing to open on
    with_latency = PriorFeatures(archs, np.exp(rng.normal(size=(len(archs), 2))),
                                 ["made_up", "other_device"], log=["other_device"])
    opened = AutoStrategy(space, 2, seed=0, budget=50, prior=with_latency,
                          objectives=("accuracy", "latency"))
    assert opened.strategy_.opening == OPENING
    assert opened.strategy_.opening_ridge == {1: ["other_device"]}
    assert opened.strategy_.nearest_prior == {0: ["made_up"]}

    def evaluate(batch):
        g = np.array([a.genes for a in batch], dtype=float)
        F = np.stack([g.sum(axis=1), -g[:, 0]], axis=1)
        return F, F, np.zeros(len(batch))

    runs = [run_search(AutoStrategy(space, 2, seed=3, budget=12), evaluate, 12)
            for _ in range(2)]
    assert [r.arch for r in runs[0].records] == [r.arch for r in runs[1].records]  # seeded
    assert len(runs[0].records) == 12
    with pytest.raises(HwnasError, match="prior must be a PriorFeatures"):
        AutoStrategy(space, 2, prior="cifar100")
