"""optuna's samplers and pymoo's algorithms as registered strategies (search/strategies/peers*).

Each runs 30 unique evaluations of a small made problem (two conflicting objectives of NB201's
genes) through the one loop: same seed, same records; the budget counts unique architectures only
(a repeat is told its known value again, free); a missing library is one line naming the extra.
"""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from hwnas.bench.cli import main
from hwnas.search import create_strategy, get_space, list_strategies, run_search
from hwnas.search.strategies.peers import PEER_STRATEGIES, PeerLibraryError

BUDGET = 30
SPACE = get_space("nb201")
#: GP refits a Gaussian process on every ask: a few asks only
OPTIONS = {"optuna:gp": {"n_startup_trials": BUDGET - 2}}
#: GP's asks take seconds; AGE-MOEA's first run compiles its numba kernels
SLOW = {"optuna:gp", "pymoo:agemoea"}
PEERS = [pytest.param(n, marks=pytest.mark.slow) if n in SLOW else n for n in PEER_STRATEGIES]


class MadeProblem:
    """Two conflicting objectives of the genes; remembers every architecture evaluated."""

    def __init__(self) -> None:
        self.evaluated: list = []
        self.weights = np.arange(1.0, len(SPACE.genes) + 1)

    def __call__(self, archs):
        self.evaluated.extend(archs)
        G = np.array([a.genes for a in archs], dtype=float)
        F = np.stack([G @ self.weights, ((G - 4.0) ** 2).sum(axis=1)], axis=1)
        return F, F, np.zeros(len(archs))


def _run(name: str, seed: int):
    strategy = create_strategy(name, SPACE, 2, seed=seed, **OPTIONS.get(name, {}))
    told: list = []
    tell = strategy.tell

    def recording_tell(archs, F, violation=None):
        told.extend(zip(archs, np.asarray(F).tolist(), strict=True))
        tell(archs, F, violation)

    strategy.tell = recording_tell
    problem = MadeProblem()
    return run_search(strategy, problem, BUDGET), problem, told


def test_every_peer_is_registered_by_name():
    assert set(PEER_STRATEGIES) <= set(list_strategies())
    assert {"optuna:tpe", "optuna:nsga2", "optuna:gp", "optuna:random", "pymoo:nsga2",
            "pymoo:nsga3", "pymoo:moead", "pymoo:smsemoa", "pymoo:agemoea"} <= set(PEER_STRATEGIES)


@pytest.mark.parametrize("name", PEERS)
def test_peer_is_seeded_and_counts_unique_evaluations(name):
    first, problem, told = _run(name, 0)
    again, _, _ = _run(name, 0)
    assert [(r.arch, r.F.tolist()) for r in first.records] == \
        [(r.arch, r.F.tolist()) for r in again.records]  # same seed, same records
    assert len(first.records) == BUDGET == len({r.arch for r in first.records})
    assert len(problem.evaluated) == len(set(problem.evaluated)) == BUDGET  # repeats are free
    assert first.stopped == "budget" and first.asks >= BUDGET
    known = {r.arch: r.F.tolist() for r in first.records}
    assert all(known[a] == f for a, f in told)  # a repeat is told its known value
    other, _, _ = _run(name, 1)
    assert [r.arch for r in other.records] != [r.arch for r in first.records]


def test_a_repeated_proposal_is_told_again_and_costs_nothing():
    # MOEA/D (one child per ask, no duplicate elimination) proposes known children often
    result, problem, told = _run("pymoo:moead", 0)
    assert result.asks > BUDGET and len(told) > BUDGET
    assert len(problem.evaluated) == BUDGET


# an architecture without a value is told at the worst values seen, infeasible: told nothing
# (a failed trial), TPE and GP would propose it again and again
@pytest.mark.parametrize("name", ["optuna:tpe", "pymoo:nsga2"])  # GP: the strategy contract
def test_unevaluable_proposals_are_skipped_not_told(name):
    def holes(archs):
        F, _, v = MadeProblem()(archs)
        F[[a.genes[0] == 0 for a in archs]] = np.nan  # a fifth of the space has no value
        return F, F, v

    strategy = create_strategy(name, SPACE, 2, seed=0, **OPTIONS.get(name, {}))
    result = run_search(strategy, holes, BUDGET)
    assert len(result.records) == BUDGET and result.skipped > 0
    assert all(r.arch.genes[0] != 0 for r in result.records)


def test_an_architecture_told_without_an_ask_joins_the_optuna_study():
    strategy = create_strategy("optuna:tpe", SPACE, 2, seed=0)
    arch = SPACE.sample(np.random.default_rng(0))
    strategy.tell([arch], np.array([[1.0, 2.0]]))
    (trial,) = strategy.study.trials
    assert trial.values == [1.0, 2.0] and strategy._arch(trial.params) == arch


def test_reference_directions_fit_the_population():
    from hwnas.search.strategies.peers_pymoo import reference_directions

    assert reference_directions(2, 20).shape == (20, 2)  # one direction per member
    assert reference_directions(3, 20).shape == (15, 3)  # 4 partitions; 5 would be 21
    assert np.allclose(reference_directions(3, 20).sum(axis=1), 1.0)


@pytest.mark.parametrize("library, name", [("optuna", "optuna:tpe"), ("pymoo", "pymoo:moead")])
def test_a_missing_library_says_which_extra_to_install(monkeypatch, library, name):
    monkeypatch.setitem(sys.modules, library, None)  # import fails as if not installed
    with pytest.raises(PeerLibraryError) as e:
        create_strategy(name, SPACE, 2, seed=0)
    assert f'pip install "hwnas[{library}]"' in str(e.value) and "\n" not in str(e.value)


def test_the_cli_names_the_extra_and_the_valid_strategies(monkeypatch, capsys, tmp_path):
    argv = ["search", "--space", "nb201", "--device", "pixel2", "--budget", "5",
            "--out", str(tmp_path / "run")]
    monkeypatch.setitem(sys.modules, "optuna", None)
    assert main([*argv, "--strategy", "optuna:tpe"]) == 2
    err = capsys.readouterr().err.strip()
    assert 'pip install "hwnas[optuna]"' in err and len(err.splitlines()) == 1
    assert main([*argv, "--strategy", "optuna:tpee"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "optuna:tpe" in err and "pymoo:agemoea" in err


def test_the_core_never_imports_the_peer_libraries():
    code = ("import sys; import hwnas.search, hwnas.bench, hwnas.bench.cli; "
            "from hwnas.search import create_strategy, get_space, list_strategies; "
            "list_strategies(); create_strategy('nsga2', get_space('nb201'), 2, seed=0); "
            "print([m for m in sys.modules if m.split('.')[0] in ('optuna', 'pymoo')])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout
    assert out.strip() == "[]"
