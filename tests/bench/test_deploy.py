"""`hwnas deploy`: a real search, its front measured with ONNX Runtime here, the deployable set
written (table, ONNX files that load, deploy.json, report), resumed without re-measuring, and
every bad input as one line with exit code 2."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.bench.cli import main
from hwnas.bench.core import read_run, write_run
from hwnas.bench.deploy import SELECTION_RULE, read_search, select_candidates
from hwnas.latency import ProfileStore, get_runtime
from hwnas.search import get_space

#: hwnas profile's protocol options at their cheapest: 20 paired calls, any precision
FAST = ["--precision", "0.5", "--max-runs", "20"]
SPACE = get_space("nb201")


def _deploy(run: Path, out: Path, store: Path, *extra: str) -> list[str]:
    return ["deploy", str(run), "--device", "ort-cpu", "--out", str(out), "--store", str(store),
            *FAST, *extra]


def _rows(store: Path) -> pd.DataFrame:
    with ProfileStore(store) as s:
        return s.measurements()


@pytest.fixture(scope="module")
def searched(tmp_path_factory):
    """A real 20-evaluation NSGA-II search on NB201 (CIFAR-10 table accuracy x the public Pixel 2
    latency), and one deploy of its top 3 on ort-cpu; the cache is shared by the module's tests
    (each re-points HWNAS_CACHE at it), so the networks are exported once."""
    root = tmp_path_factory.mktemp("deploy")
    cache = root / "cache"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HWNAS_CACHE", str(cache))
        mp.setenv("HWNAS_RESULTS", str(root / "results"))
        assert main(["search", "--space", "nb201", "--device", "pixel2", "--objectives",
                     "accuracy,latency", "--budget", "20", "--seed", "0",
                     "--out", str(root / "run")]) == 0
        code = main(_deploy(root / "run", root / "out", root / "store", "--top", "3"))
        assert code == 0
    return {"run": root / "run", "out": root / "out", "store": root / "store", "cache": cache}


@pytest.fixture
def shared_cache(searched, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(searched["cache"]))
    return searched


@pytest.mark.slow
def test_deploy_writes_the_deployable_set(searched):
    import onnxruntime as ort

    out = searched["out"]
    table = pd.read_csv(out / "deployable.csv")
    assert len(table) == 3 and set(table["deploy"]) <= {"front", "dominated"}
    for col in ("arch", "params", "macs_m", "accuracy", "accuracy_source", "latency_p50_ms",
                "latency_p90_ms", "model"):
        assert col in table.columns, col
    assert (table["accuracy_source"] == "table: NAS-Bench-201 cifar10 test 200 epochs").all()
    assert (table["latency_p90_ms"] >= table["latency_p50_ms"] * 0.5).all()
    assert (table["latency_p50_ms"] > 0).all() and (table["params"] > 0).all()
    # the candidates are the ones the documented rule picks from the run
    chosen = select_candidates(read_search(searched["run"]), 3)
    assert sorted(table["arch"]) == sorted(chosen["arch"])
    front = table[table["deploy"] == "front"]
    assert len(front) >= 1 and front["model"].notna().all()
    x = np.random.default_rng(0).standard_normal((1, 3, 32, 32), dtype=np.float32)
    for model in front["model"]:
        sess = ort.InferenceSession(str(out / model), providers=["CPUExecutionProvider"])
        assert sess.run(None, {"x": x})[0].shape == (1, 10)
    record = json.loads((out / "deploy.json").read_text())
    assert record["target"]["runtime"] == "ort-cpu" and record["precision"] == "fp32"
    assert record["protocol"]["paired_reference"] is True
    assert record["environment"]["cpu_count"] >= 1
    assert record["selection"]["rule"] == SELECTION_RULE
    comp = record["comparison"]
    assert comp["measured"] == 3 and comp["failed"] == 0
    assert comp["measured_front_size"] == len(front)
    assert len(comp["kept"]) + len(comp["fell_off"]) == comp["front_size"]
    for c in record["candidates"]:
        assert c["rel_error"] == pytest.approx(c["measured_ms"] / c["predicted_ms"] - 1)
    assert sorted(record["files"]) == sorted(
        ["deploy.json", "deployable.csv", "deployable.md", "report.md",
         "predicted_vs_measured.png", *front["model"]])
    report = (out / "report.md").read_text()
    assert "## Deploy on local:ort-cpu (fp32)" in report and "pixel2" in report
    assert (out / "predicted_vs_measured.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert (out / "deployable.md").read_text().count("\n") == 5  # header, rule, 3 rows
    assert not list(out.parent.glob(".out.*"))  # no temporary folder left


@pytest.mark.slow
def test_rerun_resumes_without_remeasuring(shared_cache, capsys):
    s = shared_cache
    before = _rows(s["store"])
    assert len(before) == 3
    assert main(_deploy(s["run"], s["out"], s["store"], "--top", "3")) == 0
    assert "(0 new measurements, 3 in all)" in capsys.readouterr().out
    pd.testing.assert_frame_equal(_rows(s["store"]), before)
    # a larger --top (as after an interrupted deploy) measures only the missing ones
    assert main(_deploy(s["run"], s["out"], s["store"], "--top", "5")) == 0
    after = _rows(s["store"])
    assert len(after) == 5
    kept = after.set_index("arch").loc[before["arch"], "measured_at"]
    assert kept.tolist() == before["measured_at"].tolist()  # nothing re-measured or lost
    assert len(pd.read_csv(s["out"] / "deployable.csv")) == 5


def _one_line(capsys, code: int, *needles: str) -> str:
    _, err = capsys.readouterr()
    # one line; a progress bar may stand above it when the error came while measuring
    said = [line for line in err.splitlines() if line.startswith("hwnas:")]
    assert code == 2 and len(said) == 1 and err.endswith(said[0] + "\n"), err
    err = said[0]
    assert err.startswith("hwnas: error:"), err
    for n in needles:
        assert n in err, err
    return err


def test_a_non_run_folder_is_one_line(capsys, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    code = main(["deploy", str(tmp_path), "--device", "ort-cpu", "--out", str(tmp_path / "o")])
    _one_line(capsys, code, "neither a search run folder")
    code = main(["deploy", str(tmp_path / "missing"), "--device", "ort-cpu", "--out",
                 str(tmp_path / "o")])
    _one_line(capsys, code, "is not a folder")


@pytest.mark.slow
def test_a_run_without_evaluations_is_one_line(searched, capsys, tmp_path):
    record, ev = read_run(searched["run"])
    empty = ",".join(ev.columns) + "\n"
    write_run(tmp_path / "empty", {"evaluations.csv": empty, "front.csv": empty},
              {k: v for k, v in record.items() if k != "files"})
    code = main(_deploy(tmp_path / "empty", tmp_path / "o", tmp_path / "store"))
    _one_line(capsys, code, "holds no evaluations")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("device, needle", [
    ("cuda", "unknown device 'cuda'"),
    ("local:nope", "unknown device 'local:nope'"),
    ("farm:host", "unknown device 'farm:host'"),
])
def test_an_unknown_device_is_one_line(capsys, tmp_path, device, needle):
    # the device is checked before the folder is read: no search needed
    code = main(["deploy", str(tmp_path), "--device", device, "--out", str(tmp_path / "o")])
    err = _one_line(capsys, code, needle, "ort-cpu")
    assert "local:RUNTIME" in err


@pytest.mark.slow
def test_a_runtime_unavailable_here_is_one_line(searched, capsys, tmp_path):
    if get_runtime("ort-cuda").available()[0]:
        pytest.skip("ort-cuda is available on this machine")
    store = searched["store"]
    before = _rows(store)
    argv = _deploy(searched["run"], tmp_path / "o", store)
    argv[argv.index("ort-cpu")] = "local:ort-cuda"
    code = main(argv)
    _one_line(capsys, code, "runtime ort-cuda is not available here", "available: ort-cpu")
    pd.testing.assert_frame_equal(_rows(store), before)


@pytest.mark.slow
def test_bad_out_and_store_are_one_line(shared_cache, capsys, tmp_path):
    s = shared_cache
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "thesis.tex").write_text("x")
    code = main(_deploy(s["run"], tmp_path / "mine", s["store"], "--top", "3"))
    _one_line(capsys, code, "holds other files")
    assert (tmp_path / "mine" / "thesis.tex").read_text() == "x"
    before = _rows(s["store"])
    code = main(_deploy(s["run"], tmp_path / "o", s["store"], "--top", "3", "--rounds", "2"))
    _one_line(capsys, code, "other settings", "--store")
    pd.testing.assert_frame_equal(_rows(s["store"]), before)


def _obstructed_cache(searched, tmp_path, monkeypatch, archs: list[str]) -> None:
    """The module's cache copied (the reference network stays exported), with a folder where
    each of ``archs``' ONNX file would be: their export then fails for real (the exporter
    cannot rename its checked file into place)."""
    import shutil

    from hwnas.latency.export import _key, onnx_cache_dir

    shutil.copytree(searched["cache"], tmp_path / "cache")
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path / "cache"))
    for text in archs:
        path = onnx_cache_dir() / _key(SPACE, SPACE.parse(text), 1, 17)
        path.unlink(missing_ok=True)
        path.mkdir(parents=True)


@pytest.mark.slow
def test_a_failing_export_is_recorded_and_the_others_deploy(searched, capsys, tmp_path,
                                                            monkeypatch):
    chosen = select_candidates(read_search(searched["run"]), 2)
    _obstructed_cache(searched, tmp_path, monkeypatch, [chosen["arch"][0]])
    code = main(_deploy(searched["run"], tmp_path / "o", tmp_path / "store", "--top", "2"))
    out, err = capsys.readouterr()
    assert code == 0, err
    table = pd.read_csv(tmp_path / "o" / "deployable.csv").set_index("arch")
    assert table.loc[chosen["arch"][0], "deploy"] == "failed"
    assert "cannot export" in table.loc[chosen["arch"][0], "error"]
    assert table.loc[chosen["arch"][1], "deploy"] == "front"
    assert "1 failed" in out
    rows = _rows(tmp_path / "store")
    assert sorted(rows["status"]) == ["failed", "ok"]


@pytest.mark.slow
def test_every_export_failing_is_one_line_and_keeps_the_store(searched, capsys, tmp_path,
                                                              monkeypatch):
    chosen = select_candidates(read_search(searched["run"]), 2)
    _obstructed_cache(searched, tmp_path, monkeypatch, list(chosen["arch"]))
    code = main(_deploy(searched["run"], tmp_path / "o", tmp_path / "store", "--top", "2"))
    _one_line(capsys, code, "every one of the 2 candidates failed", "cannot export")
    assert not (tmp_path / "o").exists()
    assert (_rows(tmp_path / "store")["status"] == "failed").sum() == 2


@pytest.mark.slow
def test_a_compare_folder_is_pooled_and_its_problem_chosen(capsys, tmp_path):
    config = tmp_path / "grid.toml"
    config.write_text(
        '[compare]\nseeds = [0, 1]\nbudgets = [12]\n\n'
        + "".join(f'[[problems]]\nname = "{n}"\nspace = "nb201"\ndevice = "{d}"\n'
                  'task = "cifar10_test_200ep"\nobjectives = ["accuracy", "latency"]\n\n'
                  for n, d in (("p2", "pixel2"), ("pi", "raspi4")))
        + '[[strategies]]\nname = "random"\n')
    assert main(["compare", str(config), "--executor", "serial", "--out",
                 str(tmp_path / "grid")]) == 0
    outcome = read_search(tmp_path / "grid", problem="pi")
    assert outcome.kind == "compare" and outcome.runs == 2 and outcome.config["device"] == "raspi4"
    assert outcome.evaluations["arch"].is_unique and len(outcome.evaluations) > 12
    capsys.readouterr()
    code = main(["deploy", str(tmp_path / "grid"), "--device", "ort-cpu", "--out",
                 str(tmp_path / "o")])
    _one_line(capsys, code, "holds 2 problems", "--problem", "p2, pi")
    code = main(["deploy", str(tmp_path / "grid"), "--device", "ort-cpu", "--problem", "../x",
                 "--out", str(tmp_path / "o")])
    _one_line(capsys, code, "no problem '../x'")


def test_the_selection_rule_takes_layers_then_crowding():
    """Hand-made evaluations: a front of four, a second layer of two, one infeasible row."""
    from hwnas.bench.deploy import SearchOutcome

    acc = [90, 85, 70, 60, 85, 55, 99]
    lat = [4, 3.5, 2, 1, 4.5, 1.5, 0.5]
    ev = pd.DataFrame({"arch": [f"a{i}" for i in range(7)], "index": range(7), "accuracy": acc,
                       "latency": lat, "violation": [0, 0, 0, 0, 0, 0, 1.0]})
    outcome = SearchOutcome(Path("."), "run", None,
                            {"space": "nb201", "objectives": ["accuracy", "latency"]}, [], ev)
    assert select_candidates(outcome, 6)["arch"].tolist() == ["a0", "a1", "a2", "a3", "a4", "a5"]
    five = select_candidates(outcome, 5)
    assert five["layer"].tolist() == [0, 0, 0, 0, 1]
    # the front cut to three: its two ends (infinite crowding) and the most isolated middle one
    three = select_candidates(outcome, 3)
    assert three.attrs["front_size"] == 4
    assert three["arch"].tolist() == ["a0", "a2", "a3"]
    assert select_candidates(outcome, 7)["arch"].iloc[-1] == "a6"  # the infeasible one last


def test_deploy_help_names_the_devices():
    from click.testing import CliRunner

    from hwnas.bench.cli.app import cli

    text = CliRunner().invoke(cli, ["deploy", "--help"]).output
    assert "local:RUNTIME" in text and "--top" in text and "--store" in text


@pytest.mark.slow
def test_deploy_through_a_device_agent(shared_cache, capsys, tmp_path):
    """--remote: the front measured by a real `hwnas agent serve` on loopback, recorded as the
    agent's, written as a local deploy is; a wrong token is one line and exit 2."""
    import subprocess
    import sys

    token = tmp_path / "token"
    token.write_text("deploy-test-token\n")
    with (tmp_path / "agent.log").open("w") as log:
        agent = subprocess.Popen(
            [sys.executable, "-m", "hwnas.bench", "agent", "serve", "--port", "0",
             "--token-file", str(token), "--device-name", "loopback-box"],
            stdout=subprocess.PIPE, stderr=log, text=True)
    try:
        line = agent.stdout.readline()
        assert "serving" in line, (tmp_path / "agent.log").read_text()
        url = "http://" + line.split("http://")[1].split()[0]
        s, out, store = shared_cache, tmp_path / "out", tmp_path / "store"
        assert main(_deploy(s["run"], out, store, "--top", "2", "--remote", url,
                            "--token-file", str(token))) == 0
        record = json.loads((out / "deploy.json").read_text())
        assert record["target"]["agents"] == [url]
        assert "loopback-box" in record["target"]["device"]
        rows = _rows(store)
        assert len(rows) == 2 and set(rows["agent"]) == {url}
        assert len(pd.read_csv(out / "deployable.csv")) == 2
        assert len(list((out / "models").glob("*.onnx"))) >= 1
        capsys.readouterr()
        wrong = tmp_path / "wrong"
        wrong.write_text("not-the-token\n")
        code = main(_deploy(s["run"], tmp_path / "out2", tmp_path / "store2", "--remote", url,
                            "--token-file", str(wrong)))
        err = capsys.readouterr().err.strip().splitlines()
        assert code == 2 and err[-1].startswith("hwnas: error: no agent can profile"), err
        assert "refused the token" in err[-1]
    finally:
        agent.kill()
        agent.wait()
