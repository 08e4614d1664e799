"""``hwnas latency plan`` / ``adapt`` on the made-up NB201 tables (few meta-steps: seconds)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from hwnas.bench.cli import main
from hwnas.latency.table import read_device_table


def _run(data, *args: str) -> int:
    return main(["--data", str(data), "latency", *args])


@pytest.fixture(scope="module")
def shots(synthetic_data, tmp_path_factory):
    """A plan for 12 shots, 'measured' on a device that is a mix of the two public ones."""
    out = tmp_path_factory.mktemp("plan") / "plan.csv"
    assert _run(synthetic_data, "plan", "--space", "nb201", "--shots", "12", "--seed", "1",
                "--out", str(out)) == 0
    plan = pd.read_csv(out)
    lat = pd.read_csv(synthetic_data / "nb201" / "latency_ms.csv").set_index("index")
    plan["latency_ms"] = (0.7 * lat.loc[plan["index"], "dev_a"].to_numpy()
                          + 0.3 * lat.loc[plan["index"], "dev_b"].to_numpy())
    return plan


def test_plan_columns(shots):
    assert list(shots.columns[:2]) == ["index", "arch"] and len(shots) == 12
    assert shots["index"].is_unique


def test_adapt_writes_a_device_table(synthetic_data, shots, tmp_path, capsys):
    measured = tmp_path / "measured.csv"
    shots.to_csv(measured, index=False)
    out = tmp_path / "predicted.csv"
    assert _run(synthetic_data, "adapt", "--space", "nb201", "--shots", str(measured),
                "--out", str(out), "--meta-steps", "3") == 0
    table = read_device_table(out)
    assert len(table.frame) == 15625 and {"index", "arch", "latency_ms"} <= set(table.frame)
    lat = pd.read_csv(synthetic_data / "nb201" / "latency_ms.csv")
    truth = 0.7 * lat["dev_a"] + 0.3 * lat["dev_b"]
    assert np.corrcoef(np.log(table.frame["latency_ms"]), np.log(truth))[0, 1] > 0.8
    # by arch instead of index, and a second run that reuses the cached encoder
    shots.drop(columns=["index"]).to_csv(measured, index=False)
    assert _run(synthetic_data, "adapt", "--space", "nb201", "--shots", str(measured),
                "--out", str(out), "--meta-steps", "3") == 0
    assert "wrote" in capsys.readouterr().out


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.drop(columns=["latency_ms"]), "needs an 'index'"),
    (lambda f: f.assign(index=f["index"] + 20000).drop(columns=["arch"]), "outside"),
    (lambda f: f.assign(latency_ms=np.where(f.index == 2, np.nan, f["latency_ms"])), "not valid"),
    (lambda f: f.assign(latency_ms=-f["latency_ms"]), "valid: finite, > 0 ms"),
    (lambda f: f.head(3), "at least"),
])
def test_adapt_bad_shots(synthetic_data, shots, tmp_path, capsys, edit, message):
    measured = tmp_path / "measured.csv"
    edit(shots.copy()).to_csv(measured, index=False)
    code = _run(synthetic_data, "adapt", "--space", "nb201", "--shots", str(measured),
                "--out", str(tmp_path / "p.csv"), "--meta-steps", "1")
    err = capsys.readouterr().err.strip()
    assert code == 2 and message in err and len(err.splitlines()) == 1
    assert not (tmp_path / "p.csv").exists()


def test_unknown_space_and_missing_file(synthetic_data, tmp_path, capsys):
    assert _run(synthetic_data, "plan", "--space", "nope", "--out", str(tmp_path / "p.csv")) == 2
    assert "unknown space 'nope'" in capsys.readouterr().err
    assert _run(synthetic_data, "adapt", "--space", "nb201", "--shots",
                str(tmp_path / "none.csv"), "--out", str(tmp_path / "p.csv")) == 2
    assert "not found" in capsys.readouterr().err
