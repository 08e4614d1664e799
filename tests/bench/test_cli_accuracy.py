"""``hwnas accuracy adapt`` on the made-up NB201 tables (few meta-steps: seconds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwnas.bench.cli import main


def _run(data, *args: str) -> int:
    return main(["--data", str(data), "accuracy", *args])


@pytest.fixture(scope="module")
def shots(synthetic_data):
    """12 'trained' architectures: the table's accuracy plus a little noise."""
    table = pd.read_csv(synthetic_data / "nb201" / "architectures.csv")
    rows = table.sample(12, random_state=0)
    noise = np.random.default_rng(0).normal(0, 0.5, len(rows))
    return pd.DataFrame({"index": rows["index"], "arch": rows["arch"],
                         "accuracy": rows["cifar10_test_200ep"] + noise})


def _write(frame: pd.DataFrame, path) -> str:
    frame.to_csv(path, index=False)
    return str(path)


def test_adapt_writes_a_prediction_for_every_architecture(synthetic_data, shots, tmp_path,
                                                          capsys):
    out = tmp_path / "predicted.csv"
    assert _run(synthetic_data, "adapt", "--space", "nb201",
                "--shots", _write(shots, tmp_path / "shots.csv"), "--out", str(out),
                "--meta-steps", "2", "--seed", "1") == 0
    pred = pd.read_csv(out)
    assert list(pred.columns) == ["index", "arch", "accuracy"]
    assert len(pred) == 15625 and pred["accuracy"].notna().all()
    assert pred["index"].tolist() == list(range(15625))
    assert "wrote" in capsys.readouterr().out


def test_adapt_reads_arch_instead_of_index(synthetic_data, shots, tmp_path):
    out = tmp_path / "predicted.csv"
    assert _run(synthetic_data, "adapt", "--space", "nb201",
                "--shots", _write(shots.drop(columns="index"), tmp_path / "s.csv"),
                "--out", str(out), "--meta-steps", "1",
                "--source-tasks", "cifar10_test_200ep") == 0
    assert len(pd.read_csv(out)) == 15625


@pytest.mark.parametrize(("edit", "extra", "message"), [
    (lambda f: f.drop(columns="accuracy"), (), "'accuracy' column"),
    (lambda f: f.drop(columns=["index", "arch"]), (), "'index' (or 'arch')"),
    (lambda f: f.assign(index=f["index"] + 10**6).drop(columns="arch"), (), "outside"),
    (lambda f: f.assign(accuracy=[np.nan] + f["accuracy"].tolist()[1:]), (), "not valid"),
    (lambda f: f.head(3), (), "at least"),
    (lambda f: f, ("--source-tasks", "cifar10_bogus"), "unknown nb201 task"),
])
def test_bad_input_is_one_line_and_exit_2(synthetic_data, shots, tmp_path, capsys, edit, extra,
                                          message):
    out = tmp_path / "predicted.csv"
    code = _run(synthetic_data, "adapt", "--space", "nb201",
                "--shots", _write(edit(shots.copy()), tmp_path / "s.csv"), "--out", str(out),
                "--meta-steps", "1", *extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err
    assert not out.exists()


def test_unknown_space_and_missing_file(synthetic_data, tmp_path, capsys):
    assert _run(synthetic_data, "adapt", "--space", "nb999", "--shots", "x.csv",
                "--out", str(tmp_path / "o.csv")) == 2
    assert "unknown space" in capsys.readouterr().err
    assert _run(synthetic_data, "adapt", "--space", "nb201", "--shots",
                str(tmp_path / "none.csv"), "--out", str(tmp_path / "o.csv")) == 2
    assert "not found" in capsys.readouterr().err


def test_adapt_caches_the_meta_trained_predictor_as_a_checked_file(synthetic_data, shots,
                                                                    tmp_path, capsys):
    import os
    from pathlib import Path

    args = ["adapt", "--space", "nb201", "--shots", _write(shots, tmp_path / "shots.csv"),
            "--meta-steps", "2", "--seed", "1"]
    assert _run(synthetic_data, *args, "--out", str(tmp_path / "a.csv")) == 0
    (entry,) = (Path(os.environ["HWNAS_CACHE"]) / "accuracy_meta").glob("nb201-*.npz")
    assert _run(synthetic_data, *args, "--out", str(tmp_path / "b.csv")) == 0  # from the cache
    entry.write_bytes(b"not an archive")  # a corrupt entry is retrained, never a traceback
    capsys.readouterr()
    assert _run(synthetic_data, *args, "--out", str(tmp_path / "c.csv")) == 0
    assert "cache" in capsys.readouterr().err  # said in one warning line
    first = (tmp_path / "a.csv").read_bytes()
    assert (tmp_path / "b.csv").read_bytes() == first == (tmp_path / "c.csv").read_bytes()


# ---------------------------------------------------------------- multi-fidelity inputs
def test_adapt_with_a_low_fidelity_column_and_a_partial_file(synthetic_data, shots, tmp_path,
                                                             capsys):
    # the made-up table has one accuracy column (the source); the cheap results of the new
    # task are files: one for every architecture, one for 300 of them (arch only)
    table = pd.read_csv(synthetic_data / "nb201" / "architectures.csv")
    rng = np.random.default_rng(2)
    cheap = (table["cifar10_test_200ep"] * 0.8 + rng.normal(0, 1, len(table))).clip(0, 100)
    every = _write(pd.DataFrame({"index": table["index"], "accuracy": cheap}), tmp_path / "a.csv")
    part = table.sample(300, random_state=1)
    some = _write(pd.DataFrame({"arch": part["arch"], "accuracy": cheap[part.index]}),
                  tmp_path / "p.csv")
    out = tmp_path / "predicted.csv"
    assert _run(synthetic_data, "adapt", "--space", "nb201",
                "--shots", _write(shots, tmp_path / "shots.csv"), "--out", str(out),
                "--low-fidelity", every, "--low-fidelity", some) == 0
    said = capsys.readouterr().out
    assert "2 low-fidelity input(s)" in said and "fidelity map: no" in said
    pred = pd.read_csv(out)
    assert len(pred) == 15625 and pred["accuracy"].notna().all()
    assert list(pred.columns) == ["index", "arch", "accuracy"]


@pytest.mark.slow  # five real NB201 networks scored on digits: tens of seconds on a busy host
def test_adapt_with_zero_cost_proxies_computed_on_digits(synthetic_data, shots, tmp_path,
                                                         capsys):
    out = tmp_path / "predicted.csv"
    assert _run(synthetic_data, "adapt", "--space", "nb201",
                "--shots", _write(shots, tmp_path / "shots.csv"), "--out", str(out),
                "--proxies", "digits",
                "--proxy-archs", "5") == 0
    assert "proxies" in capsys.readouterr().out
    assert pd.read_csv(out)["accuracy"].notna().all()


@pytest.mark.parametrize(("extra", "message"), [
    (("--low-fidelity", "cifar10_nonsense"), "neither an accuracy column"),
    (("--low-fidelity", "cifar10_test_200ep", "--source-tasks", "cifar10_test_200ep"),
     "also a source task"),
    (("--low-fidelity", "cifar10_test_200ep"), "no source task is left"),
    (("--proxies", "imagenet"), "neither a dataset"),
    (("--proxies", "BADFILE"), "needs an 'index' column"),
    (("--low-fidelity", "LFBAD"), "not valid"),
])
def test_bad_multifidelity_input_is_one_line_and_exit_2(synthetic_data, shots, tmp_path, capsys,
                                                        extra, message):
    bad = _write(pd.DataFrame({"arch_id": [1], "x": [2]}), tmp_path / "bad.csv")
    lfbad = _write(pd.DataFrame({"index": [1, 2], "accuracy": [50.0, 140.0]}), tmp_path / "l.csv")
    extra = tuple(bad if e == "BADFILE" else lfbad if e == "LFBAD" else e for e in extra)
    out = tmp_path / "predicted.csv"
    code = _run(synthetic_data, "adapt", "--space", "nb201",
                "--shots", _write(shots, tmp_path / "s.csv"), "--out", str(out), *extra)
    err = capsys.readouterr().err.strip()
    assert code == 2 and len(err.splitlines()) == 1 and message in err, err
    assert not out.exists()


def test_fractions_instead_of_percent_are_questioned(synthetic_data, shots, tmp_path, capsys):
    out = tmp_path / "predicted.csv"
    fractions = shots.assign(accuracy=shots["accuracy"] / 100)
    assert _run(synthetic_data, "adapt", "--space", "nb201",
                "--shots", _write(fractions, tmp_path / "s.csv"), "--out", str(out),
                "--meta-steps", "1") == 0
    assert "were these fractions?" in capsys.readouterr().err
