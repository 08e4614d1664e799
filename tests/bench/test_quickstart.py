"""`hwnas quickstart`: the README's main job, end to end on a small scale, and without tables."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hwnas.bench.cli import main


@pytest.mark.slow
def test_quickstart_profiles_adapts_searches_and_reports(capsys, synthetic_data, tmp_path):
    out = tmp_path / "qs"
    code = main(["--data", str(synthetic_data), "quickstart", "--out", str(out), "--archs", "24",
                 "--budget", "10", "--seeds", "1"])
    stdout, err = capsys.readouterr()
    assert code == 0, err
    # the last five lines: where the report is, and the four-line summary
    lines = stdout.strip().splitlines()[-5:]
    assert lines[0] == f"report: {out / 'report' / 'report.html'}"
    assert lines[1].startswith("this machine: 24 NB201 networks measured")
    assert "ranks the other 4 with Spearman" in lines[1]
    measured = pd.read_csv(out / "device" / "latency_ms.csv")
    assert len(measured) == 24 and (measured["latency_ms"] > 0).all()
    predicted = pd.read_csv(out / "predicted_latency.csv")
    assert len(predicted) == 15625 and (predicted["latency_ms"] > 0).all()
    runs = json.loads((out / "compare" / "compare.json").read_text())["runs"]
    assert sorted(r["run"].split("/")[2] for r in runs) == ["auto", "nsga2", "random"]
    assert (out / "report" / "report.html").stat().st_size > 10_000
    assert json.loads((out / "summary.json").read_text())["lines"] == lines[1:]
    # the last step: the networks recommended for this machine, measured here
    assert lines[3].startswith("recommended for this machine: ")
    deployed = pd.read_csv(out / "deploy" / "deployable.csv")
    front = deployed[deployed["deploy"] == "front"]
    assert 1 <= len(front) <= len(deployed) <= 6 and (front["latency_p50_ms"] > 0).all()
    assert all((out / "deploy" / m).is_file() for m in front["model"])
    record = json.loads((out / "deploy" / "deploy.json").read_text())
    assert record["source"]["kind"] == "compare" and record["source"]["runs"] == 3
    assert record["source"]["latency_source"].startswith(str(out / "predicted_latency.csv"))


def test_quickstart_with_a_bad_table_folder_is_one_line(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_DATA", str(tmp_path / "missing"))
    code = main(["quickstart", "--out", str(tmp_path / "qs")])
    _, err = capsys.readouterr()
    assert code == 2 and "HWNAS_DATA" in err and err.count("\n") == 1, err
