"""LiveAccuracy: a metric source that trains; its cache, early stopping, inheritance and CLI."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hwnas.bench.cli import main
from hwnas.bench.live.accuracy import LiveAccuracy
from hwnas.bench.live.training import EarlyStopping, TrainRecipe
from hwnas.search import UnknownNameError, get_space

TINY = TrainRecipe(epochs=1, train_fraction=0.2, width=0.25, batch_size=32)
A = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
B = "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"


pytestmark = pytest.mark.usefixtures("one_thread")


def test_trains_once_then_reads_the_cache(splits, tmp_path):
    space = get_space("nb201")
    archs = [space.parse(A), space.parse(B), space.parse(A)]
    first = LiveAccuracy(space, splits, TINY, tmp_path)
    values = first.evaluate(archs)
    assert first.name == "accuracy:live:digits-s0" and first.unit == "%"
    assert first.trained_ == 2 and first.cache_hits_ == 0 and first.epochs_run_ == 2
    assert values[0] == values[2] and np.isfinite(values).all()
    files = list(tmp_path.rglob("*.json"))
    assert len(files) == 2
    rec = json.loads(files[0].read_text())
    assert rec["recipe_key"] == TINY.key() and rec["dataset"] == "digits-s0"
    second = LiveAccuracy(space, splits, TINY, tmp_path)
    assert np.array_equal(second.evaluate(archs), values)
    assert second.trained_ == 0 and second.cache_hits_ == 2 and second.train_seconds_ == 0
    # another recipe is another cache entry
    other = LiveAccuracy(space, splits, TrainRecipe(**{**TINY.__dict__, "seed": 1}), tmp_path)
    other.evaluate(archs[:1])
    assert other.trained_ == 1


def test_deterministic_across_caches(splits, tmp_path):
    space = get_space("nb201")
    archs = [space.parse(A)]
    a = LiveAccuracy(space, splits, TINY, tmp_path / "a").evaluate(archs)
    b = LiveAccuracy(space, splits, TINY, tmp_path / "b").evaluate(archs)
    assert np.array_equal(a, b)


def test_early_stopping_counts_saved_epochs(splits, tmp_path):
    space = get_space("nb201")
    rule = EarlyStopping(k=1, min_epochs=1, window=1)
    rule.finals_.append(101.0)  # unreachable: the run is hopeless
    source = LiveAccuracy(space, splits, TrainRecipe(**{**TINY.__dict__, "epochs": 4}),
                          tmp_path, early_stopping=rule)
    source.evaluate([space.parse(A)])
    # even the best case (100 %) cannot beat 101: stopped after min_epochs
    assert source.stopped_ == 1 and source.epochs_saved_ == 3 and source.epochs_run_ == 1
    assert source.summary()["epochs_saved"] == 3
    # a stopped run's accuracy is not the recipe's: without early stopping it is retrained
    plain = LiveAccuracy(space, splits, TrainRecipe(**{**TINY.__dict__, "epochs": 4}), tmp_path)
    plain.evaluate([space.parse(A)])
    assert plain.trained_ == 1 and plain.records_[0]["epochs_run"] == 4


def test_inherits_from_a_trained_neighbour(splits, tmp_path):
    space = get_space("nb201")
    a, b = space.parse(A), space.parse(B)
    assert b in list(space.neighbours(a))
    source = LiveAccuracy(space, splits, TINY, tmp_path, inherit=True)
    source.evaluate([a])
    source.evaluate([b])
    assert source.inherited_runs_ == 1 and source.records_[1]["parent"] == A
    assert source.records_[1]["inherited"] > 0
    # an explicit parent wins over the neighbour search, and a fresh source has no weights
    fresh = LiveAccuracy(space, splits, TINY, tmp_path / "x", inherit=True)
    fresh.set_parents({b: a})
    fresh.evaluate([b])
    assert fresh.inherited_runs_ == 0


def test_bad_executor_lists_valid_ones(splits):
    with pytest.raises(UnknownNameError, match="serial"):
        LiveAccuracy(get_space("nb201"), splits, TINY, executor="slurm")


@pytest.mark.slow
def test_process_executor_matches_serial(splits, tmp_path):
    space = get_space("nb201")
    archs = [space.parse(A), space.parse(B)]
    serial = LiveAccuracy(space, splits, TINY, tmp_path / "s").evaluate(archs)
    with LiveAccuracy(space, splits, TINY, tmp_path / "p", executor="process",
                      workers=2) as pooled:
        assert np.array_equal(pooled.evaluate(archs), serial)


@pytest.mark.slow
def test_ray_executor_matches_serial(splits, tmp_path):
    ray = pytest.importorskip("ray", reason="Ray is not installed (pip install 'hwnas[ray]')")
    space = get_space("nb201")
    archs = [space.parse(A), space.parse(B)]
    serial = LiveAccuracy(space, splits, TINY, tmp_path / "s").evaluate(archs)
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    try:
        with LiveAccuracy(space, splits, TINY, tmp_path / "r", executor="ray",
                          workers=2) as remote:
            assert np.array_equal(remote.evaluate(archs), serial)
            assert remote.trained_ == 2
    finally:
        ray.shutdown()


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_cli_search_trains_without_public_tables(capsys, tmp_path):
    code, out, err = run(capsys, "search", "--space", "nb201", "--evaluate", "train",
                         "--dataset", "digits", "--objectives", "accuracy,params",
                         "--strategy", "evolution", "--budget", "3", "--epochs", "1",
                         "--train-fraction", "0.2", "--width", "0.25",
                         "--out", str(tmp_path / "run"))
    assert code == 0, err
    ev = pd.read_csv(tmp_path / "run" / "evaluations.csv")
    assert len(ev) == 3 and ev["accuracy"].between(0, 100).all()
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["config"]["evaluate"] == "train"
    assert record["training"]["trained"] == 3 and record["objectives"][0]["source"] == \
        "accuracy:live:digits-s0"
    assert "trained 3 networks" in out
    # the report says how accuracy was obtained and lists the networks found
    code, out, err = run(capsys, "report", str(tmp_path / "run"), "--out",
                         str(tmp_path / "report"))
    assert code == 0, err
    md = (tmp_path / "report" / "report.md").read_text()
    assert "## nb201-digits-1ep" in md and "trained now on digits (1 epochs" in md
    assert "Non-dominated networks found" in md and "| evolution | 0 | 3 | 0 | 3 |" in md


def test_cli_search_early_stopping_and_inheritance(capsys, tmp_path):
    argv = ["search", "--space", "nb201", "--evaluate", "train", "--objectives",
            "accuracy,params", "--strategy", "local", "--budget", "12", "--epochs", "3",
            "--train-fraction", "0.2", "--width", "0.25", "--early-stop", "1", "--inherit"]
    code, out, err = run(capsys, *argv, "--out", str(tmp_path / "a"))
    assert code == 0, err
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    assert record["config"]["live"] == {"early_stop": 1, "inherit": True, "executor": "serial",
                                        "workers": 2}
    t = record["training"]
    assert t["trained"] == 12 and t["epochs_run"] + t["epochs_saved"] == 36
    # local search mutates trained networks, so its neighbours start from a neighbour's weights
    assert t["inherited_runs"] >= 1 and "started from a parent's weights" in out
    # the same seed again: every run comes from the cache, the evaluations are identical
    code, _, err = run(capsys, *argv, "--out", str(tmp_path / "b"))
    assert code == 0, err
    assert (tmp_path / "a" / "evaluations.csv").read_bytes() == \
        (tmp_path / "b" / "evaluations.csv").read_bytes()


def test_cli_search_peer_stopping(capsys, tmp_path):
    code, _, err = run(capsys, "search", "--space", "nb201", "--evaluate", "train",
                       "--objectives", "accuracy,params", "--strategy", "random", "--budget", "4",
                       "--epochs", "3", "--train-fraction", "0.2", "--width", "0.25",
                       "--early-stop", "1", "--early-stop-rule", "peers",
                       "--out", str(tmp_path / "run"))
    assert code == 0, err
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["config"]["live"]["early_stop_rule"] == "peers"
    t = record["training"]
    assert t["trained"] == 4 and t["epochs_run"] + t["epochs_saved"] == 12


@pytest.mark.slow
def test_cli_search_process_executor(capsys, tmp_path):
    code, out, err = run(capsys, "search", "--space", "nb201", "--evaluate", "train",
                         "--objectives", "accuracy,params", "--strategy", "random",
                         "--budget", "4", "--epochs", "1", "--train-fraction", "0.2",
                         "--width", "0.25", "--executor", "process", "--workers", "2",
                         "--out", str(tmp_path / "run"))
    assert code == 0, err
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["config"]["batch"] == 2 and record["training"]["trained"] == 4


@pytest.mark.parametrize(("argv", "message"), [
    (["--evaluate", "train", "--dataset", "mnist9"], "unknown dataset 'mnist9'"),
    (["--dataset", "digits"], "need --evaluate train"),
    (["--inherit"], "need --evaluate train"),
    (["--evaluate", "train", "--early-stop-rule", "peers"], "needs --early-stop K"),
    (["--evaluate", "train", "--early-stop", "0"], "--early-stop"),
])
def test_cli_bad_dataset_is_one_line(capsys, tmp_path, argv, message):
    code, _, err = run(capsys, "search", "--space", "nb201", "--objectives", "accuracy,params",
                       "--budget", "3", *argv, "--out", str(tmp_path))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "evaluations.csv").exists()
