"""Contract tests over every registered strategy and every registered metric source."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwnas.bench import create_source, list_sources, load_tables, minimize
from hwnas.bench.harness import PymooNSGA2, TabularProblem, nb201_problem
from hwnas.search import HwnasError, get_space, list_strategies

BUDGET = 15
SMALL = {"evolution": {"population": 6, "sample_size": 3}, "nsga2": {"population": 6},
         "reinforce": {}, "guided": {}, "surrogate": {}, "local": {},
         # one GP ask per run: each refits a Gaussian process (seconds on a loaded host)
         "optuna:gp": {"n_startup_trials": BUDGET - 1}, "pymoo:nsga2": {"pop_size": 6}}
#: GP's asks take seconds; AGE-MOEA compiles its numba kernels on its first run
SLOW_STRATEGIES = {"optuna:gp", "pymoo:agemoea"}


@pytest.fixture(scope="module")
def tab(public_data) -> TabularProblem:
    return nb201_problem(load_tables("nb201", public_data), "pixel2")


class CountingProblem:
    """The tabular problem, counting what it is asked; rows ``i % 3 == 0`` have no latency."""

    def __init__(self, inner: TabularProblem, holes: bool = False):
        self.inner, self.holes, self.asked = inner, holes, []
        self.space, self.name, self.names = inner.space, inner.name, inner.names
        self.n_objectives, self.signs = inner.n_objectives, inner.signs

    def evaluate(self, archs):
        self.asked.extend(archs)
        values, F, v = self.inner.evaluate(archs)
        if self.holes:
            hole = self.inner.indices(archs) % 3 == 0
            values[hole, 1] = F[hole, 1] = np.nan
        return values, F, v

    def max_evaluations(self):
        return None

    def index_of(self, arch):
        return self.inner.index_of(arch)


def _strategy(name: str, problem, seed: int):
    if name == "pymoo-nsga2":
        return PymooNSGA2(problem.space, problem.n_objectives, seed, pop_size=6)
    return name


STRATEGY_NAMES = [*list_strategies(), "pymoo-nsga2"]


@pytest.mark.parametrize("name", [pytest.param(n, marks=pytest.mark.slow)
                                  if n in SLOW_STRATEGIES else n for n in STRATEGY_NAMES])
def test_strategy_contract(name, tab):
    def run(seed, holes=False):
        problem = CountingProblem(tab, holes)
        options = SMALL.get(name, {}) if name != "pymoo-nsga2" else {}
        return problem, minimize(problem, _strategy(name, problem, seed), BUDGET, seed,
                                 strategy_options=options)

    problem, first = run(0)
    _, again = run(0)
    assert first.archs == again.archs  # seeded determinism
    assert len(first) == BUDGET == len(set(first.archs))  # the budget, in unique evaluations
    assert len(problem.asked) == len(set(problem.asked)) == BUDGET  # repeats cost nothing
    problem, holed = run(1, holes=True)
    assert holed.skipped > 0 and np.isfinite(holed.values).all()  # NaN skipped and counted
    assert len(problem.asked) == len(holed) + holed.skipped
    assert not (tab.indices(holed.archs) % 3 == 0).any()


def _write(path, frame):
    frame.to_csv(path, index=False)
    return str(path)


@pytest.fixture(scope="module")
def nb201_archs(public_data):
    tables = load_tables("nb201", public_data)
    return tables, list(tables.archs[:6])


def _cases(tmp_path, tables, archs):
    """Per source: (options, architectures, which of them are covered)."""
    space = tables.space
    part = archs[:4]
    acc = _write(tmp_path / "acc.csv", pd.DataFrame({"arch": [space.format(a) for a in part],
                                                     "accuracy": [90.0, 91, 92, 93]}))
    lat = _write(tmp_path / "lat.csv", pd.DataFrame({"index": [0, 1, 2, 3],
                                                     "arch": [space.format(a) for a in part],
                                                     "latency_ms": [1.0, 2, 3, 4]}))
    covered4 = [True] * 4 + [False] * 2
    every = [True] * 6
    return {
        "accuracy:table": ({"task": "cifar10_test_200ep", "tables": tables}, every),
        "accuracy:predicted": ({"path": acc}, covered4),
        "latency": ({"device": "pixel2", "tables": tables}, every),
        "latency:table": ({"device": "pixel2", "tables": tables}, every),
        "latency:file": ({"path": lat}, covered4),
        "params": ({}, every),
        "flops": ({}, every),
    }


SLOW_SOURCES = {"accuracy:live", "latency:live", "latency:lut",
                # measured now, contract in tests/bench/test_memory_sources.py
                "memory", "size", "size:weights", "energy"}


@pytest.mark.parametrize("name", list_sources())
def test_source_contract(name, tmp_path, nb201_archs):
    tables, archs = nb201_archs
    cases = _cases(tmp_path, tables, archs)
    if name in SLOW_SOURCES:
        pytest.skip(f"{name} measures or trains now (see test_live_sources_contract)")
    assert name in cases, f"no contract case for source {name!r}: add one"
    options, covered = cases[name]
    source = create_source(name, tables.space, options)
    assert isinstance(source.name, str) and source.name and isinstance(source.unit, str)
    values = source.evaluate(archs)
    assert values.shape == (len(archs),) and values.dtype == np.float64
    assert np.isfinite(values[covered]).all() and np.isnan(values[~np.array(covered)]).all()
    assert source.calls == len(archs) and source.cost_s > 0
    if source.coverage is not None:
        assert source.coverage >= int(np.sum(covered))


@pytest.mark.slow
def test_live_sources_contract(tmp_path):
    space = get_space("nb201")
    archs = [space.sample(np.random.default_rng(i)) for i in range(2)]
    for name, options in (("latency:live", {"runtime": "ort-cpu", "out": str(tmp_path / "l")}),
                          ("accuracy:live", {"dataset": "digits",
                                             "train": {"epochs": 1, "width": 0.25}})):
        source = create_source(name, space, options)
        values = source.evaluate(archs)
        assert values.shape == (2,) and np.isfinite(values).all() and source.cost_s > 0
        getattr(source, "close", lambda: None)()


def test_lut_source_without_a_table_says_so_in_one_line():
    with pytest.raises(HwnasError, match="no operator lookup table") as e:
        create_source("latency:lut", get_space("nb201"), path="nowhere")
    assert "\n" not in str(e.value)


@pytest.mark.parametrize("options, message", [
    ({"devise": "pixel2"}, "unknown option.*devise.*valid: device, tables"),
    ({"device": ""}, "non-empty string"),
    ({}, "missing"),
])
def test_source_options_are_typed_and_checked(options, message):
    with pytest.raises(HwnasError, match=message):
        create_source("latency", get_space("nb201"), options)
