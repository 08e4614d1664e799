"""``hwnas export optuna``: real run and compare folders into a real SQLite optuna storage."""

from __future__ import annotations

import sqlite3
import textwrap
from pathlib import Path

import pandas as pd
import pytest

from hwnas.bench.cli import main

optuna = pytest.importorskip("optuna")

GRID = """
[compare]
seeds = [0, 1]
budgets = [10, 20]
executor = "serial"

[[problems]]
name = "nb201"
space = "nb201"
task = "cifar10_test_200ep"
devices = ["dev_a"]
objectives = ["accuracy", "latency"]

[[strategies]]
name = "optuna:tpe"

[[strategies]]
name = "pymoo:nsga2"
options = { pop_size = 6 }
"""


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def search_run(tmp_path_factory, synthetic_data) -> Path:
    out = tmp_path_factory.mktemp("run") / "nsga2"
    assert main(["--data", str(synthetic_data), "search", "--space", "nb201", "--device",
                 "dev_a", "--strategy", "nsga2", "--budget", "40", "--seed", "3",
                 "--out", str(out)]) == 0
    return out


def _front(folder: Path) -> set[str]:
    return set(pd.read_csv(folder / "front.csv")["arch"])


def _best(study) -> set[str]:
    return {t.user_attrs["arch"] for t in study.best_trials}


def test_a_run_becomes_one_study_whose_pareto_front_is_the_runs(capsys, search_run, tmp_path):
    url = f"sqlite:///{tmp_path / 'runs.db'}"
    code, out, err = run(capsys, "export", "optuna", str(search_run), "--storage", url)
    assert code == 0, err
    assert "1 studies (40 trials)" in out and err == ""
    (summary,) = optuna.get_all_study_summaries(url)
    study = optuna.load_study(study_name=summary.study_name, storage=url)
    assert summary.study_name == "nb201-cifar10_test_200ep-dev_a/nsga2/seed3"
    assert study.directions == [optuna.study.StudyDirection.MAXIMIZE,
                                optuna.study.StudyDirection.MINIMIZE]
    assert study.user_attrs["strategy"] == "nsga2" and study.user_attrs["seed"] == 3
    assert study.user_attrs["objectives"] == ["accuracy", "latency"]
    ev = pd.read_csv(search_run / "evaluations.csv")
    trials = study.trials
    assert len(trials) == len(ev) == 40
    assert [t.user_attrs["arch"] for t in trials] == list(ev["arch"])
    assert [t.user_attrs["index"] for t in trials] == list(ev["index"])
    assert [t.values for t in trials] == ev[["accuracy", "latency"]].values.tolist()
    assert _best(study) == _front(search_run)  # optuna's Pareto front is hwnas's
    assert list(tmp_path.iterdir()) == [tmp_path / "runs.db"]  # no temporary file left


def test_a_compare_folder_becomes_a_study_per_problem_strategy_seed(capsys, synthetic_data,
                                                                     tmp_path):
    config = tmp_path / "grid.toml"
    config.write_text(textwrap.dedent(GRID))
    grid = tmp_path / "grid"
    code, _, err = run(capsys, "--data", str(synthetic_data), "compare", str(config), "--out",
                       str(grid))
    assert code == 0, err
    url = f"sqlite:///{tmp_path / 'grid.db'}"
    code, out, err = run(capsys, "export", "optuna", str(grid), "--storage", url)
    assert code == 0, err
    names = sorted(s.study_name for s in optuna.get_all_study_summaries(url))
    # a peer's default label is its name with '-' for ':' (a label names a folder)
    assert names == [f"nb201/{label}/seed{s}" for label in ("optuna-tpe", "pymoo-nsga2")
                     for s in (0, 1)]
    for name in names:
        study = optuna.load_study(study_name=name, storage=url)
        _, label, seed = name.split("/")
        folder = grid / "runs" / "nb201" / label / seed.removeprefix("seed")
        assert len(study.trials) == 20
        assert study.user_attrs["strategy_name"] == label.replace("-", ":")
        assert _best(study) == _front(folder)


def test_an_existing_storage_is_refused_unless_overwrite(capsys, search_run, tmp_path):
    db = tmp_path / "runs.db"
    url = f"sqlite:///{db}"
    assert run(capsys, "export", "optuna", str(search_run), "--storage", url)[0] == 0
    before = db.read_bytes()
    code, _, err = run(capsys, "export", "optuna", str(search_run), "--storage", url)
    assert code == 2 and "--overwrite" in err and len(err.strip().splitlines()) == 1
    assert db.read_bytes() == before
    assert run(capsys, "export", "optuna", str(search_run), "--storage", url,
               "--overwrite")[0] == 0
    assert len(optuna.get_all_study_summaries(url)) == 1  # replaced, not appended


def test_overwrite_replaces_only_an_optuna_storage(capsys, search_run, tmp_path):
    other = tmp_path / "profile.sqlite"
    sqlite3.connect(other).execute("CREATE TABLE measurement (x)").connection.commit()
    before = other.read_bytes()
    code, _, err = run(capsys, "export", "optuna", str(search_run), "--storage",
                       f"sqlite:///{other}", "--overwrite")
    assert code == 2 and "not an optuna storage" in err and len(err.strip().splitlines()) == 1
    assert other.read_bytes() == before


@pytest.mark.parametrize("storage, message", [
    ("postgresql://host/db", "valid: sqlite:///PATH"),
    ("sqlite:///", "valid: sqlite:///PATH"),
    ("sqlite:///:memory:", "valid: sqlite:///PATH"),
])
def test_bad_storage_urls_are_one_line(capsys, search_run, storage, message):
    code, _, err = run(capsys, "export", "optuna", str(search_run), "--storage", storage)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


def test_a_folder_that_is_no_run_is_one_line(capsys, tmp_path):
    code, _, err = run(capsys, "export", "optuna", str(tmp_path), "--storage",
                       f"sqlite:///{tmp_path / 'x.db'}")
    assert code == 2 and "neither a search run" in err
    assert not (tmp_path / "x.db").exists()
