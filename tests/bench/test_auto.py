"""``auto`` through the core, the CLI and compare grids: its choice, its default priors, the
leak check, ``--no-prior``."""

from __future__ import annotations

import inspect
import json
import warnings

import numpy as np
import pandas as pd
import pytest

from hwnas.bench import Problem, load_tables, minimize
from hwnas.bench.cli import main
from hwnas.bench.compare import ConfigError, load_config, run_compare
from hwnas.bench.core.auto import auto_options, evaluation_cost
from hwnas.bench.core.priors import build_prior, default_prior, default_prior_specs
from hwnas.search import HwnasError
from hwnas.search.strategies import AutoStrategy

OWN_DATASET = ["cifar10_test_200ep", "cifar10_val_12ep", "cifar10_test_12ep"]


@pytest.fixture(scope="module")
def nb201(public_data):
    return load_tables("nb201", public_data)


@pytest.fixture(scope="module")
def pixel2(nb201):
    return Problem.from_names("nb201", ["accuracy", "latency"], device="pixel2", tables=nb201)


def test_minimize_defaults_to_auto_with_priors_and_records_why(pixel2, nb201):
    assert inspect.signature(minimize).parameters["strategy"].default == "auto"
    result = minimize(pixel2, budget=5, seed=0)
    choice, priors = result.config["strategy_choice"], result.config["priors"]
    assert result.config["strategy"] == "auto" and len(result) == 5
    assert (choice["strategy"], choice["rule"], choice["uses_prior"]) == (
        "surrogate", "enumerable-with-priors", True)
    assert "search_default.json" in choice["reason"]
    assert choice["inputs"]["budget"] == 5 and choice["inputs"]["evaluation"] == "lookup"
    json.dumps(result.config["strategy_choice"])  # a JSON record as it is
    # every other task's accuracy (another dataset) and every other device's latency
    used = priors["used"]
    assert priors["how"] == "default" and priors["coverage"] == 1.0
    assert set(used) == ({t for t in nb201.tasks if not t.startswith("cifar10_")}
                         | set(nb201.devices) - {"pixel2"})
    assert not set(OWN_DATASET) & set(used) and "pixel2" not in used
    assert priors["left_out"]["cifar10_test_200ep"] == "the objective's own column"
    assert "another fidelity" in priors["left_out"]["cifar10_val_12ep"]
    assert priors["left_out"]["pixel2"] == "the objective's own device"


def test_no_prior_turns_the_default_priors_off(pixel2):
    result = minimize(pixel2, "auto", budget=3, seed=0, prior=False)
    assert result.config["priors"] == {"how": "off", "used": []}
    assert result.config["strategy_choice"]["rule"] == "two-objectives"
    other = minimize(pixel2, "random", budget=3, seed=0)  # a named strategy: no priors, said
    assert other.config["priors"] == {"how": "none", "used": []}
    assert "strategy_choice" not in other.config


def test_other_batch_sizes_are_other_devices_and_unsearched_metrics_give_no_prior(nb201):
    specs, left_out = default_prior_specs("nb201", nb201, ["accuracy", "latency"],
                                          "cifar100_test_200ep", "1080ti_32")
    assert {"1080ti_1", "1080ti_256", "cifar10_test_200ep", "imagenet16_val_12ep"} <= set(specs)
    assert "1080ti_32" not in specs and "cifar100_val_12ep" in left_out
    specs, _ = default_prior_specs("nb201", nb201, ["latency", "params"], None, "pixel2")
    assert specs and not set(specs) & set(nb201.tasks)  # accuracy is not searched: no task
    specs, left_out = default_prior_specs("nb201", nb201, ["accuracy", "latency"], None,
                                          "pixel2", known=["latency"])
    assert not set(specs) & set(nb201.tasks) and "(accuracy)" in left_out


def test_auto_takes_no_options_and_cannot_drop_given_priors(pixel2, nb201):
    with pytest.raises(HwnasError, match="takes none"):
        minimize(pixel2, "auto", budget=3, strategy_options={"population": 4})
    prior = build_prior("nb201", ["pixel3"], nb201, "cifar10_test_200ep", "pixel2")
    with pytest.raises(HwnasError, match="both given and turned off"):
        minimize(pixel2, "auto", budget=3, strategy_options={"prior": prior}, prior=False)
    given = minimize(pixel2, "auto", budget=3, strategy_options={"prior": prior})
    assert given.config["priors"]["how"] == "given"
    assert given.config["priors"]["used"] == ["pixel3"]
    # a budget that covers the space: auto picks exhaustive search, which takes no prior
    # (refused before anything is evaluated)
    with pytest.raises(HwnasError, match="auto picked exhaustive for this problem, which takes"):
        minimize(pixel2, "auto", budget=15625, strategy_options={"prior": prior})
    # fbnet's table: the rows are searched, and the surrogate takes the priors given
    fbnet = Problem.from_names("fbnet", ["latency", "params"], device="fpga")
    fprior = build_prior("fbnet", ["pixel3"], fbnet.tables, device="fpga")
    found = minimize(fbnet, "auto", budget=12, strategy_options={"prior": fprior})
    assert found.config["strategy_choice"]["rule"] == "table-rows"
    assert found.config["priors"]["used"] == ["pixel3"]
    assert len(found.records) == 12 and found.skipped == 0


def test_the_leak_check_refuses_the_own_column_device_and_copies(nb201, tmp_path):
    with pytest.raises(HwnasError, match="the objective's own column"):
        build_prior("nb201", ["cifar10_test_200ep"], nb201, "cifar10_test_200ep", "pixel2")
    with pytest.raises(HwnasError, match="the objective's own device"):
        build_prior("nb201", ["pixel2"], nb201, "cifar10_test_200ep", "pixel2")
    space, idx = nb201.space, np.arange(0, len(nb201), 7)
    archs = [space.format(nb201.arch_at(int(i))) for i in idx]
    lat = tmp_path / "renamed.csv"
    pd.DataFrame({"arch": archs, "latency_ms": nb201.get_latency("pixel2", idx)}).to_csv(
        lat, index=False)
    with pytest.raises(HwnasError, match="a copy of the objective's own device pixel2"):
        build_prior("nb201", [str(lat)], nb201, "cifar10_test_200ep", "pixel2")
    acc = tmp_path / "acc.csv"
    pd.DataFrame({"index": idx, "accuracy": nb201.get_accuracy("cifar10_test_200ep", idx)}
                 ).to_csv(acc, index=False)
    with pytest.raises(HwnasError, match="a copy of the objective's own column"):
        build_prior("nb201", [str(acc)], nb201, "cifar10_test_200ep", None)
    # the same values off by more than rounding are another source
    pd.read_csv(acc).assign(accuracy=lambda f: f["accuracy"] + 0.01).to_csv(acc, index=False)
    assert build_prior("nb201", [str(acc)], nb201, "cifar10_test_200ep", None).names == [str(acc)]


def test_default_priors_leave_a_copy_of_the_objective_out(nb201, tmp_path):
    # the objective's device is a file holding pixel2's latencies: public pixel2 is its copy
    idx = np.arange(len(nb201))
    device = tmp_path / "mine.csv"
    pd.DataFrame({"index": idx, "latency_ms": nb201.get_latency("pixel2", idx)}).to_csv(
        device, index=False)
    prior, record = default_prior("nb201", nb201, ["latency", "params"], None, str(device))
    assert "pixel2" not in record["used"] and "pixel3" in record["used"]
    assert record["left_out"]["pixel2"].startswith(f"a copy of the objective's own device "
                                                   f"{device}")
    assert prior.names == record["used"]


def test_live_evaluation_is_told_to_auto(nb201):
    problem = Problem.from_names("nb201", ["accuracy", "latency"], device="live:ort-cpu",
                                 tables=nb201)
    assert evaluation_cost(problem) == "live"
    built, priors = auto_options(problem, 50, {}, prior=False)
    auto = AutoStrategy(problem.space, 2, seed=0, **built)
    assert built["evaluation"] == "live" and priors["how"] == "off"
    assert (auto.choice_.rule, auto.choice_.options) == ("two-objectives-live", {"forest": [0]})


# ---------------------------------------------------------------------------- the CLI
def _search(capsys, data, *argv):
    code = main(["--data", str(data), "search", "--space", "nb201", "--budget", "4", *argv])
    out, err = capsys.readouterr()
    return code, out, err


def test_search_defaults_to_auto_and_run_json_says_why(capsys, public_data, tmp_path):
    code, out, err = _search(capsys, public_data, "--device", "pixel2", "--out",
                             str(tmp_path / "a"))
    assert code == 0, err
    record = json.loads((tmp_path / "a" / "run.json").read_text())
    assert record["config"]["strategy"] == "auto" and not record["config"]["no_prior"]
    assert record["strategy_choice"]["strategy"] == "surrogate"
    assert record["strategy_choice"]["reason"]
    assert "pixel2" not in record["priors"]["used"] and record["prior_coverage"] == 1.0
    assert f"auto picked surrogate with {len(record['priors']['used'])} priors" in out
    code, out, err = _search(capsys, public_data, "--device", "pixel2", "--no-prior", "--out",
                             str(tmp_path / "b"))
    assert code == 0, err
    record = json.loads((tmp_path / "b" / "run.json").read_text())
    assert record["priors"] == {"how": "off", "used": []} and "prior_coverage" not in record
    assert record["strategy_choice"]["rule"] == "two-objectives"


@pytest.mark.parametrize("argv, message", [
    (["--prior", "pixel3", "--no-prior"], "--prior and --no-prior contradict each other"),
    (["--prior", "pixel2"], "the objective's own device"),
])
def test_search_refuses_contradictions_and_leaks_in_one_line(capsys, public_data, tmp_path,
                                                             argv, message):
    code, _, err = _search(capsys, public_data, "--device", "pixel2", *argv, "--out",
                           str(tmp_path / "run"))
    assert code == 2 and message in err and err.count("\n") == 1, err
    assert not (tmp_path / "run").exists()


# ---------------------------------------------------------------------------- compare
GRID = """
[compare]
seeds = [0]
budgets = [4]
executor = "serial"

[[problems]]
name = "nb201"
space = "nb201"
task = "cifar10_test_200ep"
device = "dev_a"
objectives = ["accuracy", "latency"]
"""


def test_a_grid_runs_auto_with_and_without_its_default_priors(synthetic_data, tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID + '\n[[strategies]]\nname = "auto"\n\n[[strategies]]\nname = "auto"\n'
                           'label = "auto-no-prior"\nprior = false\n')
    config = load_config(path)
    assert config.strategies["auto-no-prior"].no_prior
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        run_compare(config, tmp_path / "out", str(synthetic_data), score=False)
    runs = tmp_path / "out" / "runs" / "nb201"
    auto = json.loads((runs / "auto" / "0" / "run.json").read_text())
    off = json.loads((runs / "auto-no-prior" / "0" / "run.json").read_text())
    assert auto["priors"]["used"] == ["dev_b"] and auto["strategy_choice"]["uses_prior"]
    assert off["priors"]["how"] == "off" and off["config"]["no_prior"]


def test_a_grid_without_strategies_runs_auto_and_auto_takes_no_options(tmp_path):
    path = tmp_path / "grid.toml"
    path.write_text(GRID)
    assert list(load_config(path).strategies) == ["auto"]
    for extra, message in (
            ('[[strategies]]\nname = "auto"\noptions = { population = 4 }\n', "takes no options"),
            ('[[strategies]]\nname = "nsga2"\nprior = false\n', "is for strategy 'auto'")):
        path.write_text(GRID + "\n" + extra)
        with pytest.raises(ConfigError, match=message):
            load_config(path)


def test_profiled_devices_are_default_priors_and_a_profiled_copy_is_left_out(nb201, tmp_path,
                                                                            monkeypatch):
    from hwnas.latency.table import DeviceTable

    monkeypatch.setenv("HWNAS_RESULTS", str(tmp_path))
    idx = np.arange(0, 600, 3)
    meta = {"space": "nb201", "numeric_precision": "fp32",
            "runtime": {"runtime": "ort-cpu", "batch": 1, "intra_op_threads": 1}}
    rng = np.random.default_rng(0)
    for name, lat in (("box", rng.uniform(1, 9, len(idx))),
                      ("twin", nb201.get_latency("pixel2", idx))):  # pixel2, profiled again
        DeviceTable(pd.DataFrame({"index": idx, "latency_ms": lat}),
                    {**meta, "device": name}).write(tmp_path / "devices" / name)
    prior, record = default_prior("nb201", nb201, ["accuracy", "latency"],
                                  "cifar10_test_200ep", "pixel2")
    box = next(n for n in record["used"] if n.startswith("box"))
    twin = next(n for n in record["left_out"] if n.startswith("twin"))
    assert "a copy of the objective's own device pixel2" in record["left_out"][twin]
    assert prior.coverage([nb201.arch_at(int(i)) for i in idx]) == 1.0 and box in prior.names


def test_a_grid_refuses_priors_auto_would_not_use(public_data, tmp_path):
    from hwnas.bench.compare import check_grid

    path = tmp_path / "grid.toml"
    # a budget of the whole space: auto picks exhaustive search, which takes no prior
    path.write_text(GRID.replace('device = "dev_a"', 'device = "fpga"')
                    .replace("budgets = [4]", "budgets = [15625]")
                    + '\n[[strategies]]\nname = "auto"\nprior = ["pixel3"]\n')
    with pytest.raises(ConfigError, match="auto picks exhaustive for this problem, which takes"):
        check_grid(load_config(path), str(public_data))
