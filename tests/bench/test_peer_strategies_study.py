"""The peer benchmark's harness (hwnas.bench.studies.peer_strategies): the default strategy runs
as a user gets it, a variant row runs its options, and the table says which row is the default."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.bench import load_tables, minimize
from hwnas.bench.harness import FrontScorer, nb201_problem
from hwnas.bench.problem import Problem
from hwnas.bench.studies import peer_strategies as study

TASK = study.TASK


@pytest.fixture(scope="module")
def pixel2(public_data):
    """The pixel2 problem registered as the benchmark registers it (tabular, scorer, by name)."""
    tables = load_tables("nb201", public_data)  # the public tables, whatever HWNAS_DATA says
    p = nb201_problem(tables, "pixel2", TASK)
    user = Problem.from_names("nb201", ["accuracy", "latency"], task=TASK, device="pixel2",
                              tables=tables)
    study._PROBLEMS[p.name], study._SCORERS[p.name] = p, FrontScorer(p)
    study._USER_PROBLEMS[p.name] = user
    yield p, user
    for d in (study._PROBLEMS, study._SCORERS, study._USER_PROBLEMS):
        d.pop(p.name, None)


def _scores(at: dict) -> tuple[float, float, float]:
    return at["recall"], at["hv_ratio"], at["igd_plus"]


@pytest.mark.slow  # the default priors (28 columns) and the surrogate: ~13 s on a loaded host
def test_the_default_runs_with_its_default_priors_as_hwnas_search_does(pixel2):
    p, user = pixel2
    r = study._job((p.name, "auto", 0, [10, 20]))
    assert "error" not in r, r.get("traceback")
    assert r["evaluations"] == 20 and set(r["at"]) == {"10", "20"}
    # what auto picks on the problem built by name: the surrogate, given the default priors
    assert r["chose"]["strategy"] == "surrogate" and r["chose"]["priors"] > 0
    assert r["chose"]["rule"] == "enumerable-with-priors"
    direct = minimize(user, "auto", 20, 0)  # as hwnas search runs it: same seed, same runs
    assert _scores(r["at"]["20"]) == _scores(study._SCORERS[p.name](p.indices(direct.archs)))


def test_a_variant_row_runs_the_strategy_with_its_options(pixel2):
    p, _ = pixel2
    r = study._job((p.name, "optuna:tpe+multivariate", 0, [15]))
    assert "error" not in r, r.get("traceback")
    direct = minimize(p, "optuna:tpe", 15, 0, strategy_options={"multivariate": True})
    plain = minimize(p, "optuna:tpe", 15, 0)
    assert _scores(r["at"]["15"]) == _scores(study._SCORERS[p.name](p.indices(direct.archs)))
    assert [a.genes for a in direct.archs] != [a.genes for a in plain.archs]


def test_the_table_labels_the_default_and_blanks_budgets_a_row_did_not_reach():
    def run(strategy, seed, at):
        return {"problem": "nb201/pixel2", "strategy": strategy, "seed": seed,
                "evaluations": max(map(int, at)), "asks": max(map(int, at)),
                "overhead_ms_per_eval": 1.0,
                "at": {b: {"recall": v, "hv_ratio": 0.9, "igd_plus": 0.1} for b, v in at.items()}}

    runs = [run("auto", s, {"300": 0.5, "1000": 0.9}) for s in range(3)]
    runs += [run("optuna:gp", 0, {"100": 0.0})]
    summary = study.summarise(runs, [100, 300, 1000])
    assert summary["auto"]["seeds"] == 3 and summary["auto"]["recall@1000"] == 0.9
    table = study.overall_table(summary, [100, 300, 1000])
    rows = {line.split(" | ")[0].strip("| "): line for line in table.splitlines()[2:]}
    assert set(rows) == {"auto (default)", "optuna:gp"}
    assert rows["optuna:gp"].count(" - ") >= 4  # no 300 / 1000 figures
    assert list(rows)[0] == "auto (default)"  # reached the largest budget: listed first


def test_every_registered_strategy_and_variant_is_in_the_default_grid():
    names = study.default_strategies()
    assert "auto" in names and "exhaustive" not in names
    assert {"optuna:tpe", "optuna:gp", "pymoo:moead", "optuna:tpe+multivariate"} <= set(names)
    assert np.all([base in names for base, _, _ in study.VARIANTS.values()])


def test_a_limited_row_says_what_ran_and_how_many_runs_stalled():
    problems = {"nb201/a/accuracy+latency": "a", "nb201/b/accuracy+latency": "b"}
    runs = ([{"problem": "nb201/a/accuracy+latency", "strategy": "optuna:tpe", "seed": s,
              "evaluations": 300 if s != 2 else 250} for s in (0, 1, 2, 5)]
            + [{"problem": "nb201/b/accuracy+latency", "strategy": "optuna:tpe", "seed": 0,
                "evaluations": 300},
               {"problem": "nb201/b/accuracy+latency", "strategy": "optuna:tpe", "seed": 1,
                "error": "boom"},
               {"problem": "nb201/b/accuracy+latency", "strategy": "random", "seed": 3,
                "evaluations": 10}])
    note = study._limit_note("optuna:tpe", 300, runs, problems)
    assert "seeds 0-2, 5 on a; seeds 0 on b" in note
    assert "1 of its 5 runs stopped short of 300" in note and "1,000 asks" in note
    assert "stopped short" not in study._limit_note("random", 10, runs, problems)
