"""A second hostile-user sweep over every command and the Python API (issue 17, section 5): the
cases that still escaped the error boundary, each as a regression test."""

from __future__ import annotations

import os
import warnings

import numpy as np
import pytest

from hwnas.bench import Problem, minimize
from hwnas.search import HwnasError, MetricSource, Objective, get_space

from .test_cli_boundary import one_line, run


# ---------------------------------------------------------------- the command line
@pytest.mark.parametrize("argv", [
    ["query", "--space", "nb201", "--index", "1", "--device", "{huge}"],
    ["search", "--space", "nb201", "--device", "{huge}", "--budget", "3",
     "--out", "{tmp}/run"],
    ["latency", "adapt", "--space", "nb201", "--shots", "{huge}", "--out", "{tmp}/p.csv"],
])
def test_an_index_past_int64_is_outside_the_table(capsys, synthetic_data, tmp_path, argv):
    # was: a cast warning and "internal error: IndexError", exit 1
    huge = tmp_path / "huge.csv"
    huge.write_text("index,latency_ms\n99999999999999999999999,3.0\n2,4.0\n")
    argv = [a.format(huge=huge, tmp=tmp_path) for a in argv]
    code, _, err = run(capsys, "--data", str(synthetic_data), *argv)
    one_line(code, err, "99999999999999999999999", "outside the nb201 table")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["huge.csv"]


@pytest.mark.parametrize("argv", [
    ["profile", "--space", "nb201", "--name", "b", "--archs", "1", "--precision", "nan",
     "--out", "{tmp}/o"],
    ["search", "--space", "nb201", "--device", "dev_a", "--evaluate", "train", "--width",
     "nan", "--budget", "1", "--out", "{tmp}/o"],
    ["search", "--space", "nb201", "--device", "dev_a", "--evaluate", "train",
     "--train-fraction", "NaN", "--budget", "1", "--out", "{tmp}/o"],
])
def test_nan_floats_are_refused(capsys, synthetic_data, tmp_path, argv):
    # was: --precision nan passed click's range check and profiled every network to --max-runs
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, _, err = run(capsys, "--data", str(synthetic_data), *argv)
    one_line(code, err, "is not a number")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("argv", [
    ["latency", "plan", "--space", "nb201", "--out", "{fifo}"],
    ["latency", "adapt", "--space", "nb201", "--shots", "{shots}", "--out", "{fifo}"],
    ["accuracy", "adapt", "--space", "nb201", "--shots", "{shots}", "--out", "{fifo}"],
])
def test_an_output_file_that_is_not_a_regular_file_is_kept(capsys, synthetic_data, tmp_path,
                                                           shots_csv, argv):
    # was: exit 0, the atomic writer's rename replaced the FIFO (as root: /dev/full) by a CSV
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    argv = [a.format(fifo=fifo, shots=shots_csv) for a in argv]
    code, _, err = run(capsys, "--data", str(synthetic_data), *argv)
    one_line(code, err, "is not a regular file")
    assert fifo.is_fifo()


@pytest.mark.parametrize(("argv", "option"), [
    (["query", "--space", "nb201", "--index", "1", "--device", ""], "--device"),
    (["query", "--space", "nb201", "--index", "1", "--task", " "], "--task"),
    (["search", "--space", "nb201", "--device", "dev_a", "--task", "", "--out", "{tmp}/o"],
     "--task"),
])
def test_empty_names_are_refused_not_read_as_absent(capsys, synthetic_data, tmp_path, argv,
                                                    option):
    # was: exit 0, '--device ""' printed every device, as if it had not been given
    argv = [a.format(tmp=tmp_path) for a in argv]
    code, out, err = run(capsys, "--data", str(synthetic_data), *argv)
    one_line(code, err, option, "an empty value")
    assert out == "" and not (tmp_path / "o").exists()


@pytest.mark.parametrize(("value", "needle"), [
    ("", "names nothing"), (",", "names nothing"), ("dev_a,,dev_b", "an empty name"),
    ("dev_a,dev_a", "dev_a given twice"),
])
@pytest.mark.parametrize("command", ["plan", "adapt", "accuracy"])
def test_source_lists_are_parsed_strictly(capsys, synthetic_data, tmp_path, shots_csv, value,
                                          needle, command):
    # was: '' and ',' silently meant "every source", a repeated device was counted twice
    argv = {"plan": ["latency", "plan", "--space", "nb201", "--source-devices", value],
            "adapt": ["latency", "adapt", "--space", "nb201", "--shots", str(shots_csv),
                      "--source-devices", value],
            "accuracy": ["accuracy", "adapt", "--space", "nb201", "--shots", str(shots_csv),
                         "--source-tasks", value]}[command]
    code, _, err = run(capsys, "--data", str(synthetic_data), *argv,
                       "--out", str(tmp_path / "p.csv"))
    one_line(code, err, "--source-", needle)
    assert not (tmp_path / "p.csv").exists()


def test_a_search_nothing_can_evaluate_says_so_once(capsys, public_data, tmp_path):
    # was: exit 2 with two lines, a warning and then the error saying the same. A device table
    # of three fbnet architectures of 10^21: nothing a search proposes is in it
    from hwnas.search import get_space

    space = get_space("fbnet")
    table = tmp_path / "three.csv"
    table.write_text("arch,latency_ms\n" + "".join(
        f"{space.format(space.sample(rng=1000 + i))},{1.0 + i}\n" for i in range(3)))
    code, _, err = run(capsys, "--data", str(public_data), "search", "--space", "fbnet",
                       "--device", str(table), "--objectives", "latency,params", "--budget",
                       "20", "--strategy", "random", "--out", str(tmp_path / "run"))
    one_line(code, err, "nothing could be evaluated")
    assert "warning" not in err and not (tmp_path / "run").exists()


def test_a_search_that_runs_still_warns(capsys, synthetic_data, tmp_path):
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", "dev_a", "--budget", "4", "--constraint", "latency<=0.0001",
                       "--out", str(tmp_path / "run"))
    assert code == 0, err
    assert "hwnas: warning: no evaluated architecture meets latency<=0.0001" in err
    assert (tmp_path / "run" / "run.json").is_file()


# ---------------------------------------------------------------- the Python API
@pytest.fixture(scope="module")
def problem(public_data):
    return Problem.from_names("nb201", ["accuracy", "latency"], device="pixel2",
                              data=str(public_data))


class _Values(MetricSource):
    """A user's own source answering ``fn(n)`` for ``n`` architectures."""

    name, unit = "mine", "x"

    def __init__(self, fn):
        super().__init__()
        self.fn = fn

    def _evaluate(self, archs):
        return self.fn(len(archs))


def _raises(msg: str, fn, *args, **kwargs) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        with pytest.raises(HwnasError, match=msg) as info:
            fn(*args, **kwargs)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize(("kwargs", "msg"), [
    ({"objectives": None}, "objectives must be a list of names"),
    ({"objectives": "accuracy"}, "objectives must be a list of names"),
    ({"objectives": ["accuracy", "bogus"]}, "unknown objective 'bogus'"),
    ({"task": 5}, "task must be a name or a path"),
    ({"constraints": [5]}, "a constraint must be a Constraint or text"),
    ({"constraints": "latency<=5"}, "constraints must be a list"),
])
def test_problem_from_names_refuses_bad_arguments(public_data, kwargs, msg):
    args = {"objectives": ["accuracy", "latency"], "device": "pixel2", "data": str(public_data),
            **kwargs}
    _raises(msg, Problem.from_names, "nb201", args.pop("objectives"), **args)


def test_problem_refuses_what_is_not_a_space_objective_or_source():
    space = get_space("nb201")
    _raises("space must be a Space", Problem, 5, [Objective("m", _Values(np.ones), "min")])
    _raises("objectives must be a list of Objective", Problem, space, 5)
    _raises("objectives must be Objective", Problem, space, ["latency"])
    _raises("the source must be a MetricSource", Problem, space, [Objective("m", 5, "min")])


@pytest.mark.parametrize(("fn", "msg"), [
    (lambda n: np.ones(n + 1), r"metric source 'mine' failed.*ValueError"),
    (lambda n: ["a"] * n, r"metric source 'mine' failed.*could not convert"),
    (lambda n: (_ for _ in ()).throw(RuntimeError("device unplugged")), "device unplugged"),
])
def test_a_user_source_that_fails_is_named(fn, msg):
    problem = Problem(get_space("nb201"), [Objective("m", _Values(fn), "min")])
    _raises(msg, minimize, problem, "random", budget=3)


def test_a_nan_source_is_skipped_counted_and_warned():
    problem = Problem(get_space("nb201"), [Objective("m", _Values(lambda n: np.full(n, np.nan)),
                                                      "min")])
    with pytest.warns(UserWarning, match="could be evaluated"):
        result = minimize(problem, "random", budget=5, seed=0)
    assert len(result) == 0 and result.skipped == 100 and result.front.empty


class _AskOnly:
    def ask(self, n):
        return []


class _Returns:
    def __init__(self, value):
        self.value = value

    def ask(self, n):
        return self.value

    def tell(self, archs, F, violation=None):
        pass


class _TellTakesNothing:
    def __init__(self):
        self.space, self.k = get_space("nb201"), 0

    def ask(self, n):
        self.k += 1
        return [self.space.sample(self.k)]

    def tell(self):
        pass


@pytest.mark.parametrize(("args", "kwargs", "msg"), [
    ((None,), {}, "problem must be a Problem"),
    (("nb201",), {}, "problem must be a Problem"),
    (("P", "random"), {"budget": 0}, "budget must be >= 1"),
    (("P", "random"), {"budget": 2.5}, "budget must be an integer"),
    (("P", _AskOnly()), {}, "an object with ask and tell"),
    (("P", object()), {}, "an object with ask and tell"),
    (("P", _Returns(None)), {}, r"ask\(1\) returned NoneType"),
    (("P", _Returns(["not an arch"])), {}, r"returned 'not an arch' \(str\)"),
    (("P", _TellTakesNothing()), {}, r"tell\(\) failed: TypeError"),
    (("P", "evolution"), {"strategy_options": {"bogus": 1}}, "invalid strategy_options"),
    (("P", "evolution"), {"strategy_options": {"population": "x"}}, "invalid strategy_options"),
    (("P", "evolution"), {"strategy_options": {"population": -3}}, "invalid strategy_options"),
    (("P", "random"), {"callbacks": [5]}, "callbacks must be a sequence of functions"),
    (("P", "random"), {"callbacks": 5}, "callbacks must be a sequence of functions"),
    (("P", "random"), {"progress": 5}, "progress must be a function"),
    (("P", "random"), {"max_asks": -1}, "max_asks must be an integer >= 1"),
])
def test_minimize_refuses_bad_arguments(problem, args, kwargs, msg):
    args = tuple(problem if a == "P" else a for a in args)
    _raises(msg, minimize, *args, **{"budget": 3, **kwargs})


def test_a_user_strategy_still_runs_through_the_wrapper(problem):
    space = problem.space

    class Mine:
        def __init__(self):
            self.k, self.told = 0, 0

        def ask(self, n):
            self.k += 1
            return [space.sample(self.k)]

        def tell(self, archs, F, violation=None):
            self.told += len(archs)

    mine = Mine()
    result = minimize(problem, mine, budget=4)
    assert len(result) == 4 and mine.told == 4
    assert result.config["strategy"] == "Mine"


def test_a_search_into_the_working_folder(capsys, synthetic_data, tmp_path, monkeypatch):
    # was: the search ran, then "cannot write the run folder .: Device or resource busy", exit 2,
    # and an empty '..XXXX.old' folder left behind
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", "dev_a", "--budget", "3", "--out", ".")
    assert code == 0, err
    assert sorted(p.name for p in here.iterdir()) == ["evaluations.csv", "front.csv", "run.json"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["here"]
    from hwnas.bench.core.runs import read_run

    record, rows = read_run(here)
    assert record["evaluations"] == len(rows) == 3
