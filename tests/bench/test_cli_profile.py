"""`hwnas profile`, and profiled tables showing up in `hwnas devices` and `--device`."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from hwnas.bench.cli import main


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture
def results(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_RESULTS", str(tmp_path / "results"))
    return tmp_path / "results"


@pytest.mark.parametrize("form", ["csv", "lines"])
def test_profile_indices_file_then_use_the_table(capsys, synthetic_data, results, tmp_path, form):
    idx = tmp_path / "idx.txt"
    idx.write_text("index,note\n5,a\n17,b\n5,c\n" if form == "csv" else "5\n17\n\n")
    code, out, err = run(capsys, "--data", str(synthetic_data), "profile", "--space", "nb201",
                         "--name", "box", "--indices", str(idx), "--rounds", "1",
                         "--max-runs", "20")
    assert code == 0, err
    frame = pd.read_csv(results / "devices" / "box" / "latency_ms.csv")
    assert frame["index"].tolist() == [5, 17]
    assert "wrote" in out and "profiling box" in err  # the progress bar is on stderr
    # the profiled device is listed beside the public ones, and usable as --device
    code, out, _ = run(capsys, "--data", str(synthetic_data), "devices", "--json")
    rows = {r["device"]: r for r in json.loads(out)}
    assert rows["box"]["source"].startswith("profiled:") and rows["box"]["rows"] == 2
    assert "dev_a" in rows
    for spec in ("box", str(results / "devices" / "box"),
                 str(results / "devices" / "box" / "latency_ms.csv")):
        code, out, err = run(capsys, "--data", str(synthetic_data), "query", "--space", "nb201",
                             "--index", "17", "--device", spec, "--json")
        assert code == 0, err
        assert json.loads(out)["latency_ms"] == {spec: frame["latency_ms"][1]}


@pytest.mark.parametrize(("argv", "message"), [
    (["--runtime", "tensorrt"], "unknown runtime 'tensorrt'; valid: ort-cpu, ort-cpu-int8"),
    (["--runtime", "torch-cuda"], "runtime torch-cuda is not available here"),
    (["--archs", "0"], "--archs"),
    (["--archs", "2", "--indices", "/dev/null"], "give --archs N or --indices FILE, not both"),
    (["--indices", "/nonexistent/idx.txt"], "'/nonexistent/idx.txt': not found"),
    (["--archs", "99999"], "99999 > 15625"),
    (["--cpu", "x"], "--cpu"),
])
def test_profile_bad_input(capsys, synthetic_data, results, argv, message):
    code, _, err = run(capsys, "--data", str(synthetic_data), "profile", "--space", "nb201",
                       "--name", "box", *argv)
    if "torch-cuda" in argv and "not available" not in err:
        pytest.skip("a CUDA device is present")
    assert code == 2 and err.startswith("hwnas: error:") and message in err
    assert err.count("\n") == 1


def test_profile_out_unwritable(capsys, synthetic_data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    code, _, err = run(capsys, "--data", str(synthetic_data), "profile", "--space", "nb201",
                       "--name", "b", "--archs", "1", "--out", str(blocker / "sub"))
    assert code == 2 and "is a file, not a folder" in err and err.count("\n") == 1


def test_indices_out_of_range(capsys, synthetic_data, results, tmp_path):
    idx = tmp_path / "idx.txt"
    idx.write_text("3\n20000\n")
    code, _, err = run(capsys, "--data", str(synthetic_data), "profile", "--space", "nb201",
                       "--name", "b", "--indices", str(idx))
    assert code == 2 and "index 20000 out of range" in err


# ---------------------------------------------------------------------- operator lookup tables
@pytest.mark.parametrize(("argv", "message"), [
    (["--space", "fbnet"], "no operator lookup table for space 'fbnet'; valid: nb201"),
    (["--space", "nb201", "--runtime", "torch-cpu"], "valid: ort-cpu"),
    (["--space", "nb201", "--graph-opt", "basic"], "valid: all"),
])
def test_profile_lut_refuses_what_it_cannot_model(capsys, results, argv, message):
    code, out, err = run(capsys, "profile", "--lut", "--name", "x", *argv)
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1
    assert not (results / "luts").exists()


def test_lut_device_not_found_lists_built_tables(capsys, results):
    code, _, err = run(capsys, "search", "--space", "nb201", "--objectives", "latency,params",
                       "--device", "lut:nowhere", "--budget", "3")
    assert code == 2 and "no operator lookup table at 'nowhere'" in err
    assert "hwnas profile --lut" in err and len(err.strip().splitlines()) == 1


def test_profile_lut_then_search_with_it(capsys, results, nb201_universe_cached):
    # the whole NB201 kernel universe, timed with the smallest protocol the CLI allows
    code, out, err = run(capsys, "profile", "--lut", "--space", "nb201", "--name", "here",
                         "--archs", "3", "--rounds", "1", "--max-runs", "5")
    assert code == 0, err
    folder = results / "luts" / "here"
    assert sorted(p.name for p in folder.iterdir()) == ["kernels.csv", "lut.json"]
    meta = json.loads((folder / "lut.json").read_text())
    assert meta["space"] == "nb201" and meta["device"] == "here" and meta["a"] > 0
    assert len(meta["calibration"]["archs"]) == 3
    assert "kernels" in out and "--device lut:" in out
    # every architecture of the space has all its kernels in the table: no evaluation skipped
    code, out, err = run(capsys, "search", "--space", "nb201", "--objectives", "latency,params",
                         "--device", "lut:here", "--strategy", "random", "--budget", "20",
                         "--out", str(results / "run"))
    assert code == 0, err
    ev = pd.read_csv(results / "run" / "evaluations.csv")
    assert len(ev) == 20 and (ev["latency"] > 0).all()
    run_record = json.loads((results / "run" / "run.json").read_text())
    assert run_record["skipped"] == 0
