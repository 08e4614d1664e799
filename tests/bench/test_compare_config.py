"""`hwnas compare` refuses a bad config or grid in one line, before anything runs or is written:
unsafe names (path traversal), undecodable files, wrong types and ranges, unknown keys, and
problems or strategies that cannot run on the tables. Runs that fail anyway are reported."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest

from hwnas.bench.cli import main
from hwnas.bench.compare import (
    CompareConfig,
    ConfigError,
    RunsFailedError,
    RunSpec,
    is_finished,
    load_config,
    run_compare,
    run_one,
)
from hwnas.bench.core import read_run
from hwnas.search import HwnasError

BASE = """
[compare]
seeds = [0, 1]
budgets = [15, 30]
executor = "serial"

[[problems]]
name = "nb201"
space = "nb201"
task = "cifar10_test_200ep"
devices = ["dev_a"]
objectives = ["accuracy", "latency"]

[[strategies]]
name = "nsga2"
options = { population = 10 }
"""


def _cli(capsys, data: Path, config: Path, out: Path) -> tuple[int, str]:
    code = main(["--data", str(data), "compare", str(config), "--out", str(out)])
    _, err = capsys.readouterr()
    return code, err


def _refused(capsys, data: Path, tmp_path: Path, text: str | bytes, message: str) -> str:
    config = tmp_path / "grid.toml"
    (config.write_bytes if isinstance(text, bytes) else config.write_text)(text)
    code, err = _cli(capsys, data, config, tmp_path / "out")
    assert code == 2 and message in err, err
    assert err.count("\n") == 1 and "Traceback" not in err, err
    assert not (tmp_path / "out").exists()  # refused before anything was written
    return err


@pytest.mark.parametrize(("old", "new", "message"), [
    # names that become folders: one path component of a safe character set
    ('name = "nb201"', 'name = "../../../../tmp/x"', "problem name '../../../../tmp/x' is not a "
                                                      "valid name; valid: 1 to 64 of"),
    ('name = "nb201"', 'name = "a/b"', "is not a valid name"),
    ('name = "nb201"', 'name = ".."', "problem name '..' is not a valid name"),
    ('name = "nb201"', 'name = "."', "problem name '.' is not a valid name"),
    ('name = "nb201"', 'name = ".hidden"', "is not a valid name"),
    ('name = "nb201"', 'name = ""', "'name' must be a non-empty string"),
    ('name = "nb201"', f'name = "{"x" * 65}"', "is not a valid name"),
    ('name = "nsga2"', 'name = "nsga2"\nlabel = "../../x"', "strategy label '../../x' is not a "
                                                            "valid name"),
    ('name = "nsga2"', 'name = "nsga2"\nlabel = "a\\\\b"', "is not a valid name"),
    ('devices = ["dev_a"]', 'devices = ["dev_a", "../../x"]',
     "problem name 'nb201-../../x' (name-device) is not a valid name"),
    # types and ranges
    ('name = "nsga2"', 'name = "nsga2"\nlabel = 5', "'label' must be a non-empty string, got 5"),
    ("population = 10", 'population = "x"', "option 'population' of 'nsga2' must be an integer "
                                            ">= 1, got 'x'"),
    ("population = 10", "population = -3", "must be an integer >= 1, got -3"),
    ("population = 10", "population = 0", "must be an integer >= 1, got 0"),
    ("population = 10", "population = 2.5", "option 'population' of 'nsga2' must be"),
    ("population = 10", "population = true", "option 'population' of 'nsga2' must be"),
    ("population = 10", "crossover_prob = 1.5", "must be a number in 0..1, got 1.5"),
    ("population = 10", "mutation_prob = nan", "must be a finite number >= 0, got nan"),
    ("population = 10", "mutation_prob = -0.5", "must be a finite number >= 0"),
    ("options = { population = 10 }", 'options = "population=10"', "'options' must be a table"),
    ("seeds = [0, 1]", "seeds = [-1]", "'seeds' must be a non-empty list of integers in "
                                       "0..4294967295, got [-1]"),
    ("seeds = [0, 1]", "seeds = [1.5]", "'seeds' must be a non-empty list of integers"),
    ("seeds = [0, 1]", 'seeds = "0"', "'seeds' must be a non-empty list of integers"),
    ("seeds = [0, 1]", "seeds = [true]", "'seeds' must be a non-empty list of integers"),
    ("seeds = [0, 1]", "seeds = [0, 0]", "seeds names a seed twice"),
    ("seeds = [0, 1]", "seeds = [4294967296]", "'seeds' must be a non-empty list of integers"),
    ("budgets = [15, 30]", "budgets = [15, 30.5]", "'budgets' must be a non-empty list of "
                                                   "integers in 1..1000000"),
    ("budgets = [15, 30]", "budgets = [0]", "'budgets' must be a non-empty list of integers"),
    ("budgets = [15, 30]", 'budgets = ["100"]', "'budgets' must be a non-empty list"),
    ("budgets = [15, 30]", "budgets = [99999999999999999999]", "'budgets' must be a non-empty "
                                                               "list"),
    ('executor = "serial"', "executor = 5", "'executor' must be a non-empty string, got 5"),
    ('executor = "serial"', 'executor = "serial"\nworkers = 0', "'workers' must be an integer"),
    ('executor = "serial"', 'executor = "serial"\nworkers = "2"', "'workers' must be an integer"),
    ('objectives = ["accuracy", "latency"]', 'objectives = "accuracy"',
     "'objectives' must be a list of non-empty strings"),
    ('objectives = ["accuracy", "latency"]', 'objectives = ["accuracy", "latency"]\n'
     'constraints = "latency<=5"', "'constraints' must be a list of non-empty strings"),
    ('objectives = ["accuracy", "latency"]', 'objectives = ["accuracy", "accuracy"]',
     "'objectives' names an entry twice"),
    ('devices = ["dev_a"]', 'devices = ["dev_a"]\ndevice = "dev_b"',
     "give 'device' or 'devices', not both"),
    ('devices = ["dev_a"]', "devices = []", "'devices' is empty"),
    # unknown keys, at every level, listing the valid ones
    ('objectives = ["accuracy", "latency"]', 'objectives = ["accuracy", "latency"]\n'
     'constraint = ["latency<=5"]', "problems[0]: unknown key(s) 'constraint'; valid: name, "
                                    "space, task, device, devices, objectives, constraints"),
    ("seeds = [0, 1]", "seed = [0, 1]", "[compare]: unknown key(s) 'seed'; valid: seeds, "
                                        "budgets, executor, workers, ray_address"),
    ("[compare]", "[compar]", "unknown key(s) 'compar'; valid: compare, problems, strategies"),
    ('name = "nsga2"', 'name = "nsga2"\nlabels = "n"', "strategies[0]: unknown key(s) 'labels'; "
                                                       "valid: name, label, options, prior"),
    ("[[strategies]]", "strategies = 5\n[[other]]", "unknown key(s) 'other'"),
])
def test_bad_value_is_one_line_exit_2_and_nothing_written(capsys, synthetic_data, tmp_path, old,
                                                          new, message):
    assert old in BASE
    _refused(capsys, synthetic_data, tmp_path, BASE.replace(old, new, 1), message)


def test_a_traversing_name_writes_and_deletes_nothing_outside_out(capsys, synthetic_data,
                                                                  tmp_path):
    """The reported attack: a problem named ../../x would first delete, then write, x's run."""
    victim = tmp_path / "victim" / "nsga2" / "0"
    victim.mkdir(parents=True)
    for name in ("run.json", "front.csv", "evaluations.csv"):
        (victim / name).write_text("precious\n")
    (tmp_path / "out").mkdir()
    escape = "../../victim"  # out/runs/<name> -> tmp_path/victim
    config = tmp_path / "grid.toml"
    config.write_text(BASE.replace('name = "nb201"', f'name = "{escape}"'))
    code, err = _cli(capsys, synthetic_data, config, tmp_path / "out")
    assert code == 2 and "is not a valid name" in err
    assert all((victim / n).read_text() == "precious\n"
               for n in ("run.json", "front.csv", "evaluations.csv"))
    assert list((tmp_path / "out").iterdir()) == []


def test_run_folders_are_checked_at_run_time_too(synthetic_data, tmp_path):
    """Defence in depth: a hand-built spec, or a symlink planted in out, cannot lead outside."""
    cfg = load_config(_write(tmp_path, BASE))
    spec = cfg.runs()[0]
    bad = RunSpec("../../outside", spec.strategy, spec.seed, spec.config)
    with pytest.raises(ConfigError, match="resolves outside the output folder"):
        run_one(bad, str(tmp_path / "out"), str(synthetic_data))
    assert not (tmp_path / "outside").exists()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    (tmp_path / "out2" / "runs").mkdir(parents=True)
    (tmp_path / "out2" / "runs" / "nb201").symlink_to(elsewhere)
    with pytest.raises(ConfigError, match="resolves outside the output folder"):
        run_compare(cfg, tmp_path / "out2", str(synthetic_data))
    assert list(elsewhere.iterdir()) == [] and not (tmp_path / "out2" / "compare.json").exists()


def test_names_are_checked_when_a_grid_is_built_in_code():
    problem = {"space": "nb201", "task": "cifar10_test_200ep", "device": "dev_a",
               "objectives": ["accuracy", "latency"], "constraints": []}
    with pytest.raises(ConfigError, match="problem name '../x' is not a valid name"):
        CompareConfig({"../x": problem}, {"random": {"name": "random"}}, [0], [10])
    with pytest.raises(ConfigError, match="strategy label 'a/b' is not a valid name"):
        CompareConfig({"p": problem}, {"a/b": {"name": "random"}}, [0], [10])
    with pytest.raises(ConfigError, match="unknown key\\(s\\) 'devices'"):
        CompareConfig({"p": {**problem, "devices": ["x"]}}, {"r": {"name": "random"}}, [0], [10])
    cfg = CompareConfig({"p": problem}, {"r": {"name": "random"}}, [0], [10])
    assert cfg.problems["p"]["objectives"] == ["accuracy", "latency"]  # read as a dict too
    assert cfg.problems["p"].device == "dev_a" and cfg.strategies["r"].options == {}


@pytest.mark.parametrize(("content", "message"), [
    (b"\x00\x01\xff\xfe binary", "not UTF-8 text (byte 2); a TOML config is UTF-8 text"),
    ('[compare]\n# caf\u00e9\nseeds = [0]\n'.encode("latin-1"), "UTF-8"),
    (b"[compare\nseeds = [0]\n", "invalid TOML: "),
    (b"seeds = [0, \n", "invalid TOML: "),
])
def test_undecodable_or_malformed_file_is_one_line(capsys, synthetic_data, tmp_path, content,
                                                   message):
    _refused(capsys, synthetic_data, tmp_path, content, message)


def test_a_folder_as_config_is_one_line(capsys, synthetic_data, tmp_path):
    (tmp_path / "grid.toml").mkdir()
    code, err = _cli(capsys, synthetic_data, tmp_path / "grid.toml", tmp_path / "out")
    assert code == 2 and err.count("\n") == 1 and "Traceback" not in err, err


# ---------------------------------------------------------------------- the whole grid
SECOND = """
[[problems]]
name = "second"
space = "nb201"
task = "cifar10_test_200ep"
device = "dev_b"
objectives = ["accuracy", "latency"]
"""


@pytest.mark.parametrize(("old", "new", "message"), [
    ('space = "nb201"\ntask = "cifar10_test_200ep"\ndevice', 'space = "nb999"\ntask = '
     '"cifar10_test_200ep"\ndevice', "problem 'second': unknown space 'nb999'; valid: "),
    ('task = "cifar10_test_200ep"\ndevice', 'task = "imagenet"\ndevice',
     "problem 'second': unknown"),
    ('device = "dev_b"', 'device = "pixel9"', "problem 'second': unknown nb201 device 'pixel9'"),
    ('objectives = ["accuracy", "latency"]\n', 'objectives = ["accuracy", "latency"]\n'
     'constraints = ["latency<=fast"]\n', "problem 'second': constraint 'latency<=fast' does not "
                                          "parse"),
    ('objectives = ["accuracy", "latency"]\n', 'objectives = ["accuracy", "latency"]\n'
     'constraints = ["params<=5"]\n', "constraint 'params<=5' names 'params', not an objective"),
])
def test_a_bad_problem_anywhere_in_the_grid_stops_it_before_the_first_run(
        capsys, synthetic_data, tmp_path, old, new, message):
    # the first problem is fine; the second is found out before the first runs
    text = BASE + SECOND.replace(old, new, 1)
    assert text != BASE + SECOND
    err = _refused(capsys, synthetic_data, tmp_path, text, message)
    assert "second" in err


def test_grid_checks_budgets_priors_and_strategies_per_problem(capsys, synthetic_data, tmp_path):
    _refused(capsys, synthetic_data, tmp_path, BASE.replace("budgets = [15, 30]",
                                                            "budgets = [15, 20000]"),
             "budget 20000 is more than the 15625 architectures of nb201; valid: budgets up to "
             "15625")
    _refused(capsys, synthetic_data, tmp_path,
             BASE + '\n[[strategies]]\nname = "surrogate"\nprior = ["no_such_source"]\n',
             "problem 'nb201', strategy 'surrogate': --prior 'no_such_source' is not a file")


def test_a_run_that_fails_at_run_time_is_reported_and_raised(synthetic_data, tmp_path):
    """A device table that disappears mid-grid: the runs after it fail, the grid goes on, the
    finished runs are written and scored, and run_compare raises with the manifest."""
    import pandas as pd

    device = tmp_path / "dev.csv"
    lat = pd.read_csv(synthetic_data / "nb201" / "latency_ms.csv")
    lat.rename(columns={"dev_a": "latency_ms"})[["index", "latency_ms"]].to_csv(device,
                                                                             index=False)
    cfg = load_config(_write(tmp_path, BASE.replace('devices = ["dev_a"]',
                                                    f'device = "{device}"')))
    out = tmp_path / "out"

    saved = device.read_bytes()

    def progress(done: int, total: int, run: str) -> None:
        # gone after the first run, back after the second (the scores need it)
        if done == 1:
            device.unlink()
        else:
            device.write_bytes(saved)

    with pytest.raises(RunsFailedError, match=r"1 of 2 runs failed \(first: runs/nb201/nsga2/1: "
                                              r"device table .* not found") as info:
        run_compare(cfg, out, str(synthetic_data), progress=progress)
    manifest = info.value.manifest
    assert manifest["counts"] == {"done": 1, "skipped": 0, "locked": 0, "failed": 1}
    assert [f["run"] for f in manifest["failed"]] == ["runs/nb201/nsga2/1"]
    assert json.loads((out / "compare.json").read_text())["failed"] == manifest["failed"]
    assert is_finished(out / "runs/nb201/nsga2/0", cfg.runs()[0].config)
    assert (out / "indicators.parquet").is_file()  # the finished run is scored
    assert "\n" not in str(info.value)


def test_the_cli_exits_non_zero_when_runs_fail(capsys, synthetic_data, tmp_path):
    import pandas as pd

    device = tmp_path / "dev.csv"
    pd.DataFrame({"index": [0, 1], "latency_ms": [1.0, 2.0]}).to_csv(device, index=False)
    config = _write(tmp_path, BASE.replace('devices = ["dev_a"]', f'device = "{device}"'))
    cfg = load_config(config)
    # a folder where run.json should go: the runs cannot be written
    for spec in cfg.runs():
        (tmp_path / "out" / spec.folder / "run.json").mkdir(parents=True)
    code, err = _cli(capsys, synthetic_data, config, tmp_path / "out")
    assert code != 0 and "2 of 2 runs failed" in err, err


# ---------------------------------------------------------------------- finished or not
def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "grid.toml"
    path.write_text(text)
    return path


@pytest.fixture
def grid(synthetic_data, tmp_path) -> tuple[CompareConfig, Path]:
    cfg = load_config(_write(tmp_path, BASE))
    out = tmp_path / "out"
    run_compare(cfg, out, str(synthetic_data), score=False)
    return cfg, out


@pytest.mark.parametrize("damage", ["cut mid-row", "cut at a row", "emptied", "header only",
                                    "one digit changed"])
def test_a_truncated_evaluations_csv_is_rerun_and_comes_out_the_same(synthetic_data, grid, damage):
    cfg, out = grid
    spec = cfg.runs()[1]
    path = out / spec.folder / "evaluations.csv"
    whole = path.read_bytes()
    assert is_finished(out / spec.folder, spec.config)
    lines = whole.splitlines(keepends=True)
    assert whole[-2:-1].isdigit()  # the last value of the last row
    # the same size and still a whole CSV: only the checksum run.json records tells
    changed = whole[:-2] + str((int(whole[-2:-1]) + 1) % 10).encode() + b"\n"
    path.write_bytes({"cut mid-row": whole[: len(whole) - 7], "cut at a row": b"".join(lines[:-3]),
                      "emptied": b"", "header only": lines[0],
                      "one digit changed": changed}[damage])
    assert not is_finished(out / spec.folder, spec.config)
    manifest = run_compare(cfg, out, str(synthetic_data))
    assert manifest["counts"] == {"done": 1, "skipped": 1, "locked": 0, "failed": 0}
    assert path.read_bytes() == whole


def test_resuming_reads_run_folders_as_the_core_does(grid):
    """A run is finished when the core's reader (read_run, as the scores read) accepts its folder
    and run.json records the run's config: whatever the core refuses is rerun, never skipped."""
    cfg, out = grid
    spec = cfg.runs()[0]
    folder = out / spec.folder
    saved = (folder / "run.json").read_text()
    record = json.loads(saved)
    files = record["files"]
    digest = hashlib.sha256((folder / "evaluations.csv").read_bytes()).hexdigest()
    assert files["evaluations.csv"]["sha256"] == digest
    assert read_run(folder)[0] == record and is_finished(folder, spec.config)
    for name, damage in (("evaluations.csv", {"sha256": "0" * 64}),
                         ("evaluations.csv", {"bytes": 1}), ("front.csv", {"sha256": "0" * 64})):
        wrong = {**files, name: {**files[name], **damage}}
        (folder / "run.json").write_text(json.dumps({**record, "files": wrong}))
        with pytest.raises(HwnasError, match="is not the file run.json describes"):
            read_run(folder)
        assert not is_finished(folder, spec.config), (name, damage)
    # a run.json edited into a shape the reader does not expect, or recording another config
    (folder / "run.json").write_text(json.dumps({**record, "files": [files]}))
    assert not is_finished(folder, spec.config)
    (folder / "run.json").write_text(json.dumps({**record, "config": {**record["config"],
                                                                      "seed": 99}}))
    read_run(folder)  # intact, but another run's
    assert not is_finished(folder, spec.config)
    # restored it is finished again; a front.csv that no longer matches makes it unfinished
    (folder / "run.json").write_text(saved)
    assert is_finished(folder, spec.config)
    (folder / "front.csv").write_text("changed\n")
    assert not is_finished(folder, spec.config)


def test_options_of_a_grid_built_in_code_are_checked_before_it_runs(synthetic_data, tmp_path):
    problem = {"space": "nb201", "task": "cifar10_test_200ep", "device": "dev_a",
               "objectives": ["accuracy", "latency"]}
    cfg = CompareConfig({"p": problem}, {"n": {"name": "nsga2", "options": {"population": -3}}},
                        [0], [10], executor="serial")
    with pytest.raises(ConfigError, match="problem 'p', strategy 'n': option 'population' of "
                                          "'nsga2' must be an integer >= 1, got -3"):
        run_compare(cfg, tmp_path / "out", str(synthetic_data))
    assert not (tmp_path / "out").exists()


def test_a_finished_run_of_other_settings_is_not_replaced(synthetic_data, grid, tmp_path):
    """The grid's problem given another device: its finished runs would be replaced; refused
    before anything runs, every file intact."""
    _, out = grid
    files = sorted(p for p in out.rglob("*") if p.is_file())
    before = {p: p.read_bytes() for p in files}
    other = load_config(_write(tmp_path, BASE.replace('devices = ["dev_a"]',
                                                      'devices = ["dev_b"]')))
    with pytest.raises(ConfigError, match="holds a finished run made with other settings "
                                          r"\(device differ\)"):
        run_compare(other, out, str(synthetic_data), score=False)
    assert {p: p.read_bytes() for p in sorted(p for p in out.rglob("*") if p.is_file())} \
        == before


def test_a_grid_refuses_a_search_run_folder(synthetic_data, tmp_path):
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "run.json").write_text("{}")
    cfg = load_config(_write(tmp_path, BASE))
    with pytest.raises(HwnasError, match=r"holds a search run \(run.json\)"):
        run_compare(cfg, tmp_path / "out", str(synthetic_data), score=False)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["run.json"]
