"""The scriptable core: the README's ten lines, Problem/minimize/Result, run folders as one unit,
and runaway searches that must end fast and say why."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pandas as pd
import pytest

from hwnas.bench import Objective, Problem, Result, SearchWarning, minimize, read_run, true_front
from hwnas.bench.problem import SearchConfig, run_problem
from hwnas.search import HwnasError, MetricSource, register_strategy
from hwnas.search.strategies import RandomSearch
from hwnas.search.strategies.base import STRATEGIES

README = '''
from hwnas.bench import Problem, minimize
problem = Problem.from_names("nb201", ["accuracy", "latency"], task="cifar10_test_200ep",
                             device="pixel2")
result = minimize(problem, budget=100, seed=0)
print(result.front)
'''


def test_readme_script_runs_and_prints_the_front(capsys, monkeypatch, public_data):
    monkeypatch.setenv("HWNAS_DATA", str(public_data))  # an earlier test may have set another
    lines = [line for line in README.strip().splitlines() if line.strip()]
    assert len(lines) <= 10 and sum(line.startswith(("from ", "import ")) for line in lines) <= 2
    exec(compile(README, "README", "exec"), {})  # noqa: S102  (the README's own text)
    out = capsys.readouterr().out
    assert "accuracy" in out and "latency" in out and "arch" in out


@pytest.fixture(scope="module")
def problem(public_data) -> Problem:
    return Problem.from_names("nb201", ["accuracy", "latency"], device="pixel2",
                              data=str(public_data))


def test_result_holds_records_front_and_frame(problem):
    result = minimize(problem, "nsga2", budget=30, seed=1, strategy_options={"population": 10})
    assert isinstance(result, Result) and len(result) == 30
    assert result.values.shape == (30, 2) and np.allclose(result.F, result.values * [-1, 1])
    frame = result.to_frame()
    assert list(frame.columns) == ["step", "index", "arch", "accuracy", "latency", "violation"]
    # the front: feasible, and no evaluation dominates a member of it
    F = result.F
    for f in F[result.front_mask]:
        assert not ((F <= f).all(axis=1) & (F < f).any(axis=1)).any()
    assert len(result.front) == result.front_mask.sum()
    assert result.config["strategy"] == "nsga2" and result.timings["total_s"] > 0
    # indicators against the true front: a subset of the true front's quality, in range
    (score,) = result.score(true_front(problem))
    assert 0 < score["hv_ratio"] <= 1 and 0 <= score["recall"] <= 1 and score["regret"] >= 0


def test_directions_live_on_the_objectives(problem):
    assert problem.directions == ["max", "min"]
    assert problem.signs.tolist() == [-1.0, 1.0]


def test_a_users_ask_tell_object_plugs_in(problem):
    class FirstGenes:  # not a Strategy subclass: any object with ask and tell
        def __init__(self):
            self.told = 0

        def ask(self, n=1):
            return [problem.space.from_genes(np.array([i % 5, 0, 0, 0, 0, 0]))
                    for i in range(self.told, self.told + n)]

        def tell(self, archs, F, violation=None):
            self.told += len(archs)

    result = minimize(problem, FirstGenes(), budget=5, seed=0)
    assert len(result) == 5 and result.config["strategy"] == "FirstGenes"


def test_register_strategy_makes_a_name(problem):
    register_strategy("test-random", lambda space, n, seed=None, **kw: RandomSearch(space, n, seed))
    try:
        a = minimize(problem, "test-random", budget=8, seed=3).archs
        assert a == minimize(problem, "random", budget=8, seed=3).archs
        with pytest.raises(HwnasError, match="already registered"):
            register_strategy("test-random", RandomSearch)
    finally:
        STRATEGIES.pop("test-random")


@pytest.mark.parametrize("budget", [0, -1, 1.5, True, "10"])
def test_bad_budgets_are_refused_in_one_line(problem, budget):
    with pytest.raises(HwnasError, match="budget"):
        minimize(problem, budget=budget)


def test_huge_budget_is_capped_and_said(problem):
    with pytest.warns(SearchWarning, match="capped at 15625"):
        result = minimize(problem, "exhaustive", budget=99999999999999999999, seed=0)
    assert len(result) == 15625 and result.config["budget_used"] == 15625
    assert any("capped" in w for w in result.warnings)


def test_a_strategy_that_proposes_nothing_new_stops(problem):
    class Stuck:
        def ask(self, n=1):
            return [problem.space.from_genes(np.zeros(6, dtype=int))] * n

        def tell(self, archs, F, violation=None):
            pass

    with pytest.warns(SearchWarning, match="nothing new"):
        result = minimize(problem, Stuck(), budget=50)
    assert len(result) == 1 and result.stopped == "stalled" and result.asks <= 1002


class _Nothing(MetricSource):
    """A metric source that knows no architecture (NaN for all)."""

    name, unit = "nothing", "x"

    def _evaluate(self, archs):
        return [float("nan")] * len(archs)


def test_nothing_evaluable_ends_fast(public_data):
    base = Problem.from_names("fbnet", ["latency"], device="1080ti_1", data=str(public_data))
    problem = Problem(base.space, [Objective("nothing", _Nothing(), "min")])
    with pytest.warns(SearchWarning, match="could be evaluated"):
        result = minimize(problem, "random", budget=20, seed=0)
    assert len(result) == 0 and result.stopped == "unevaluable" and result.skipped == 100


def test_a_space_too_large_to_list_is_searched_on_its_table(tmp_path, public_data):
    # fbnet's latency table covers 5000 of 10^21 architectures: every strategy searches its rows
    problem = Problem.from_names("fbnet", ["latency"], device="1080ti_1", data=str(public_data))
    for strategy in ("random", "nsga2", "auto"):
        result = minimize(problem, strategy, budget=20, seed=0)
        assert len(result) == 20 and result.skipped == 0, strategy
    run_problem(SearchConfig("fbnet", ["latency", "params"], "random", 20, 0,
                             device="1080ti_1"), problem.tables, tmp_path / "run")
    assert len(pd.read_csv(tmp_path / "run" / "evaluations.csv")) == 20


def test_a_constraint_nothing_meets_is_said(problem):
    strict = Problem(problem.space, problem.objectives, ["latency<=0.001"], problem.tables)
    with pytest.warns(SearchWarning, match="no evaluated architecture meets"):
        result = minimize(strict, budget=10, seed=0)
    assert result.front.empty


def _config(**kw) -> SearchConfig:
    return SearchConfig("nb201", ["accuracy", "latency"], "random", 12, 0,
                        task="cifar10_test_200ep", device="pixel2", **kw)


def test_run_folder_is_one_unit_with_checksums(problem, tmp_path):
    out = tmp_path / "run"
    record = run_problem(_config(), problem.tables, out)
    assert sorted(p.name for p in out.iterdir()) == ["evaluations.csv", "front.csv", "run.json"]
    files = json.loads((out / "run.json").read_text())["files"]
    assert files["evaluations.csv"]["rows"] == 12 == record["evaluations"]
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]  # no temp folder left
    got, evaluations = read_run(out)
    assert len(evaluations) == 12 and got["files"] == files
    # a rerun replaces the folder as a whole
    run_problem(_config(), problem.tables, out)
    pd.testing.assert_frame_equal(read_run(out)[1], evaluations)


def test_read_run_refuses_a_truncated_or_mixed_folder(problem, tmp_path):
    out = tmp_path / "run"
    run_problem(_config(), problem.tables, out)
    text = (out / "evaluations.csv").read_text()
    (out / "evaluations.csv").write_text(text[: len(text) // 2])
    with pytest.raises(HwnasError, match="truncated or replaced") as e:
        read_run(out)
    assert "\n" not in str(e.value)
    (out / "evaluations.csv").unlink()
    with pytest.raises(HwnasError, match="missing"):
        read_run(out)


def test_a_users_folder_keeps_its_other_files(problem, tmp_path):
    (tmp_path / "notes.txt").write_text("mine")
    run_problem(_config(), problem.tables, tmp_path)
    assert (tmp_path / "notes.txt").read_text() == "mine"
    assert len(read_run(tmp_path)[1]) == 12


@pytest.mark.parametrize("content", ['[1, 2]', '{"config": 5}', '{"config": {"objectives": []},'
                                     ' "files": {"../../etc/passwd": {"sha256": "x"}}}',
                                     '{"config": {"objectives": []}, "files": []}'])
def test_a_foreign_run_json_is_one_clear_error(tmp_path, content):
    from hwnas.bench.core.runs import verify_run

    (tmp_path / "run.json").write_text(content)
    with pytest.raises(HwnasError, match="run.json") as info:
        verify_run(tmp_path)
    assert "\n" not in str(info.value)


def test_a_wall_clock_limit_stops_the_search_without_a_warning(problem):
    import time

    from hwnas.search import MetricSource, Objective

    class Slow(MetricSource):  # 20 ms per architecture
        name, unit = "slow", "s"

        def _evaluate(self, archs):
            time.sleep(0.02 * len(archs))
            return np.zeros(len(archs))

    slow = Problem(problem.space, [*problem.objectives, Objective("slow", Slow(), "min")],
                   tables=problem.tables)
    with warnings.catch_warnings():
        warnings.simplefilter("error", SearchWarning)
        result = minimize(slow, "random", budget=1000, seed=0, time_limit_s=0.3)
    assert result.stopped == "time_limit" and 3 <= len(result) < 100
    assert result.config["time_limit_s"] == 0.3
    with pytest.raises(HwnasError, match="time_limit_s"):
        minimize(slow, "random", budget=10, time_limit_s=-1)
