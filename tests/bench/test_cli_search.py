"""`hwnas search`: output files, byte-for-byte determinism, bad input, skipped architectures."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from hwnas.bench.cli import main
from hwnas.search import HwnasError, get_space


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_search_writes_three_files_deterministically(capsys, synthetic_data, tmp_path):
    args = ["--data", str(synthetic_data), "search", "--space", "nb201", "--device", "dev_a",
            "--strategy", "random", "--budget", "40", "--seed", "3"]
    assert run(capsys, *args, "--out", str(tmp_path / "a"))[0] == 0
    assert run(capsys, *args, "--out", str(tmp_path / "b"))[0] == 0
    a = (tmp_path / "a" / "evaluations.csv").read_bytes()
    assert a == (tmp_path / "b" / "evaluations.csv").read_bytes()
    ev = pd.read_csv(tmp_path / "a" / "evaluations.csv")
    assert list(ev.columns[:5]) == ["step", "index", "arch", "accuracy", "latency"]
    assert ev["step"].tolist() == list(range(40)) and ev["arch"].is_unique
    table = pd.read_csv(synthetic_data / "nb201" / "latency_ms.csv")
    assert (ev["latency"].to_numpy() == table["dev_a"].to_numpy()[ev["index"]]).all()
    front = pd.read_csv(tmp_path / "a" / "front.csv")
    assert 1 <= len(front) <= 40 and set(front["arch"]) <= set(ev["arch"])
    run_json = json.loads((tmp_path / "a" / "run.json").read_text())
    assert run_json["config"]["seed"] == 3 and run_json["evaluations"] == 40
    other = ["--seed", "4", "--out", str(tmp_path / "c")]
    assert run(capsys, *args[:-2], *other)[0] == 0
    assert (tmp_path / "c" / "evaluations.csv").read_bytes() != a


def test_constraint_keeps_infeasible_out_of_the_front(capsys, synthetic_data, tmp_path):
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", "dev_a", "--strategy", "random", "--budget", "60",
                       "--constraint", "latency<=8", "--out", str(tmp_path))
    assert code == 0, err
    front = pd.read_csv(tmp_path / "front.csv")
    assert (front["latency"] <= 8).all() and (front["violation"] == 0).all()


@pytest.mark.parametrize(("argv", "message"), [
    (["--strategy", "annealing"], "unknown strategy 'annealing'"),
    (["--budget", "0"], "valid: an integer in 1.."),
    (["--objectives", "accuracy,speed"], "unknown objective 'speed'"),
    (["--task", "cifar11"], "unknown nb201 task 'cifar11'"),
    (["--device", "pixel9"], "unknown nb201 device 'pixel9'"),
    (["--constraint", "latency<"], "does not parse"),
    (["--constraint", "power<=3"], "names 'power', not an objective"),
    (["--objectives", "accuracy,accuracy"], "must be distinct"),
])
def test_search_bad_input(capsys, synthetic_data, tmp_path, argv, message):
    base = {"--device": "dev_a", "--strategy": "random", "--budget": "5"}
    for k, v in zip(argv[::2], argv[1::2], strict=True):
        base[k] = v
    flat = [x for kv in base.items() for x in kv]
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       *flat, "--out", str(tmp_path))
    assert code == 2 and message in err and err.count("\n") == 1
    assert not (tmp_path / "evaluations.csv").exists()


def test_missing_metrics_are_skipped_and_counted(capsys, synthetic_data, tmp_path):
    # a device table that covers only some architectures: the others are skipped
    space = get_space("nb201")
    table = pd.read_csv(synthetic_data / "nb201" / "architectures.csv").head(2000)
    lat = pd.DataFrame({"arch": table["arch"], "latency_ms": 1.0 + table.index % 7})
    lat.to_csv(tmp_path / "partial.csv", index=False)
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", str(tmp_path / "partial.csv"), "--strategy", "random",
                       "--budget", "20", "--out", str(tmp_path / "run"))
    assert code == 0, err
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert record["evaluations"] == 20 and record["skipped"] > 0
    ev = pd.read_csv(tmp_path / "run" / "evaluations.csv")
    assert set(ev["arch"]) <= set(table["arch"])
    assert space.parse(ev["arch"][0]) is not None


def test_a_predicted_accuracy_table_is_an_objective(capsys, tmp_path):
    """--task takes a CSV of arch and accuracy (``hwnas accuracy adapt``'s output): no tables."""
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    archs = {space.sample(rng) for _ in range(300)}
    table = pd.DataFrame({"arch": [space.format(a) for a in archs],
                          "accuracy": rng.uniform(10, 95, len(archs))})
    table.to_csv(tmp_path / "predicted.csv", index=False)
    code, _, err = run(capsys, "search", "--space", "nb201", "--task",
                       str(tmp_path / "predicted.csv"), "--objectives", "accuracy,params",
                       "--strategy", "random", "--budget", "30", "--out", str(tmp_path / "run"))
    assert code == 0, err
    ev = pd.read_csv(tmp_path / "run" / "evaluations.csv")
    known = dict(zip(table["arch"], table["accuracy"], strict=True))
    # architectures outside the predicted table are skipped, the others carry its values
    assert len(ev) >= 1 and all(known[a] == pytest.approx(v)
                                for a, v in zip(ev["arch"], ev["accuracy"], strict=True))

    table.drop(columns="arch").to_csv(tmp_path / "bad.csv", index=False)
    code, _, err = run(capsys, "search", "--space", "nb201", "--task", str(tmp_path / "bad.csv"),
                       "--objectives", "accuracy,params", "--budget", "5",
                       "--out", str(tmp_path / "bad"))
    assert code == 2 and "missing column(s) arch" in err and err.count("\n") == 1


def test_prior_sources_feed_the_surrogate(capsys, synthetic_data, tmp_path):
    """--prior takes another device of the tables and a predicted table; the run is repeatable and
    records its priors."""
    space = get_space("nb201")
    table = pd.read_csv(synthetic_data / "nb201" / "architectures.csv")
    predicted = pd.DataFrame({"arch": table["arch"],
                              "accuracy": table["cifar10_test_200ep"] * 0.5 + 20})
    predicted.to_csv(tmp_path / "predicted.csv", index=False)
    args = ["--data", str(synthetic_data), "search", "--space", "nb201", "--device", "dev_a",
            "--strategy", "surrogate", "--budget", "30", "--prior", "dev_b",
            "--prior", str(tmp_path / "predicted.csv")]
    for out in ("a", "b"):
        code, _, err = run(capsys, *args, "--out", str(tmp_path / out))
        assert code == 0, err
    ev = (tmp_path / "a" / "evaluations.csv").read_bytes()
    assert ev == (tmp_path / "b" / "evaluations.csv").read_bytes()
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    assert record["config"]["prior"] == ["dev_b", str(tmp_path / "predicted.csv")]
    assert record["prior_coverage"] == 1.0
    # the prior changes what the surrogate asks once it is fitted
    code, _, err = run(capsys, *args[:-4], "--out", str(tmp_path / "plain"))
    assert code == 0, err
    assert (tmp_path / "plain" / "evaluations.csv").read_bytes() != ev
    assert space.parse(pd.read_csv(tmp_path / "a" / "evaluations.csv")["arch"][0]) is not None


@pytest.mark.parametrize(("argv", "message"), [
    (["--prior", "dev_a"], "the objective's own device"),
    (["--prior", "cifar10_test_200ep"], "the objective's own column"),
    (["--prior", "dev_b", "--strategy", "nsga2"], "strategy 'nsga2' has none"),
    (["--prior", "nowhere"], "is not a file"),
    (["--prior", "dev_b", "--prior", "dev_b"], "names a source twice"),
])
def test_prior_bad_input(capsys, synthetic_data, tmp_path, argv, message):
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", "dev_a", "--strategy", "surrogate", "--budget", "5", *argv,
                       "--out", str(tmp_path))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "evaluations.csv").exists()


@pytest.mark.parametrize(("frame", "message"), [
    ({"arch": ["x"], "score": [1.0]},
     "needs an arch (or index) column and an accuracy or latency_ms"),
    ({"arch": ["garbage", "x"], "accuracy": [1.0, 2.0]}, "row 1: not a nb201 architecture"),
    ({"index": [0, 0, 1], "accuracy": [1.0, 2.0, 3.0]}, "row 2: "),
    ({"index": [0.5, 1.0], "accuracy": [1.0, 2.0]}, "indices must be integers"),
    ({"index": [], "accuracy": []}, "has no rows"),
])
def test_prior_file_bad_input(capsys, synthetic_data, tmp_path, frame, message):
    pd.DataFrame(frame).to_csv(tmp_path / "p.csv", index=False)
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", "dev_a", "--strategy", "surrogate", "--budget", "5",
                       "--prior", str(tmp_path / "p.csv"), "--out", str(tmp_path / "run"))
    assert code == 2 and message in err and err.count("\n") == 1, err


def test_the_objective_table_under_another_name_is_refused(capsys, synthetic_data, tmp_path,
                                                          monkeypatch):
    table = pd.read_csv(synthetic_data / "nb201" / "architectures.csv")
    table[["arch", "cifar10_test_200ep"]].rename(columns={"cifar10_test_200ep": "accuracy"}).to_csv(
        tmp_path / "acc.csv", index=False)
    monkeypatch.chdir(tmp_path)
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", "dev_a", "--task", str(tmp_path / "acc.csv"),
                       "--strategy", "surrogate", "--budget", "5", "--prior", "./acc.csv",
                       "--out", str(tmp_path / "run"))
    assert code == 2 and "the objective's own column" in err, err
    # a device that is not an objective is a valid prior
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", "dev_a", "--objectives", "accuracy,params",
                       "--strategy", "surrogate", "--budget", "3", "--prior", "dev_a",
                       "--out", str(tmp_path / "ok"))
    assert code == 0, err


def test_build_prior_reads_index_and_latency_tables(synthetic_data, tmp_path):
    from hwnas.bench import load_tables
    from hwnas.bench.problem import build_prior

    tables = load_tables("nb201", synthetic_data)
    lat = pd.DataFrame({"index": np.arange(100), "latency_ms": np.exp(np.linspace(0, 2, 100))})
    lat.to_csv(tmp_path / "lat.csv", index=False)
    prior = build_prior("nb201", [str(tmp_path / "lat.csv"), "dev_b"], tables, device="dev_a")
    X = prior(list(tables.archs[:101]))
    # the latency file is taken in log: linear in the index, like its rank scores
    assert np.allclose(np.diff(X[:100, 0]), np.diff(X[:100, 0])[0], atol=1e-5)
    # 2 priors x (value, rank score), the file's missing flag, the not-in-the-prior flag
    assert X.shape[1] == prior.width == 6 and len(prior) == len(tables)
    assert X[100, 0] == 0 and X[100, 4] == 1 and (X[:100, 4] == 0).all()
    lat.assign(index=lat["index"] + len(tables)).to_csv(tmp_path / "far.csv", index=False)
    with pytest.raises(HwnasError, match="indices must be integers in 0.."):
        build_prior("nb201", [str(tmp_path / "far.csv")], tables)


def test_a_prior_that_knows_few_architectures_is_reported(capsys, synthetic_data, tmp_path):
    table = pd.read_csv(synthetic_data / "nb201" / "architectures.csv").head(50)
    table[["arch"]].assign(accuracy=np.arange(50.0)).to_csv(tmp_path / "few.csv", index=False)
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", "dev_a", "--strategy", "surrogate", "--budget", "25",
                       "--prior", str(tmp_path / "few.csv"), "--out", str(tmp_path / "run"))
    record = json.loads((tmp_path / "run" / "run.json").read_text())
    assert code == 0 and record["prior_coverage"] < 0.5
    assert "warning: the prior knew only" in err


def test_a_device_folder_is_a_prior_and_cannot_be_its_own(capsys, synthetic_data, tmp_path):
    lat = pd.read_csv(synthetic_data / "nb201" / "latency_ms.csv")
    table = pd.read_csv(synthetic_data / "nb201" / "architectures.csv")
    folder = tmp_path / "phone"
    folder.mkdir()
    pd.DataFrame({"arch": table["arch"], "latency_ms": lat["dev_b"]}).to_csv(
        folder / "latency_ms.csv", index=False)
    base = ["--data", str(synthetic_data), "search", "--space", "nb201", "--strategy",
            "surrogate", "--budget", "5"]
    code, _, err = run(capsys, *base, "--device", "dev_a", "--prior", str(folder),
                       "--out", str(tmp_path / "a"))
    assert code == 0, err
    code, _, err = run(capsys, *base, "--device", str(folder / "latency_ms.csv"),
                       "--prior", str(folder), "--out", str(tmp_path / "b"))
    assert code == 2 and "the objective's own device" in err, err


def _digests(folder) -> dict[str, bytes]:
    return {p.name: p.read_bytes() for p in sorted(folder.iterdir()) if p.is_file()}


def test_a_run_of_other_settings_is_not_replaced(capsys, synthetic_data, tmp_path):
    out = tmp_path / "run"
    args = ["--data", str(synthetic_data), "search", "--space", "nb201", "--device", "dev_a",
            "--strategy", "random", "--seed", "3", "--out", str(out)]
    assert run(capsys, *args, "--budget", "20")[0] == 0
    before = _digests(out)
    code, _, err = run(capsys, *args, "--budget", "30")
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "other settings (budget: 20 stored, 30 now)" in err
    assert _digests(out) == before
    assert run(capsys, *args, "--budget", "20")[0] == 0  # the same search replaces its run
    after = _digests(out)  # its timings in run.json differ, its results do not
    assert all(after[n] == before[n] for n in ("evaluations.csv", "front.csv"))


@pytest.mark.parametrize("marker, what", [("compare.json", "a compare folder"),
                                          ("profile.sqlite", "a device profile"),
                                          ("deploy.json", "a deploy folder")])
def test_a_search_refuses_another_commands_folder(capsys, synthetic_data, tmp_path, marker,
                                                  what):
    (tmp_path / marker).write_text("{}")
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", "dev_a", "--strategy", "random", "--budget", "10",
                       "--out", str(tmp_path))
    assert code == 2 and f"holds {what} ({marker})" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == [marker]


def test_a_folder_where_a_run_file_goes_is_refused(capsys, synthetic_data, tmp_path):
    (tmp_path / "front.csv").mkdir()
    (tmp_path / "front.csv" / "keep.txt").write_text("mine")
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", "dev_a", "--strategy", "random", "--budget", "10",
                       "--out", str(tmp_path))
    assert code == 2 and "front.csv is a folder there" in err
    assert (tmp_path / "front.csv" / "keep.txt").read_text() == "mine"


def test_a_missing_device_table_path_is_not_found(capsys, synthetic_data, tmp_path):
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", str(tmp_path / "gone.csv"), "--budget", "10",
                       "--out", str(tmp_path / "run"))
    assert code == 2 and "not found" in err and "valid:" in err


def test_a_task_that_is_a_folder_is_not_a_csv(capsys, synthetic_data, tmp_path):
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", "dev_a", "--task", str(tmp_path), "--budget", "10",
                       "--out", str(tmp_path / "run"))
    assert code == 2 and "is not a CSV file of accuracies" in err
