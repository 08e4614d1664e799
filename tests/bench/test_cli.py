"""The `hwnas` command: output shapes, and one-line errors with exit code 2 for bad input."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from hwnas.bench.cli import main
from hwnas.search import get_space

ALL3X3 = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|"
          "+|nor_conv_3x3~0|nor_conv_3x3~1|nor_conv_3x3~2|")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def test_version(capsys):
    code, out, _ = run(capsys, "--version")
    assert code == 0 and out.startswith("hwnas ")


def test_spaces(capsys):
    code, out, _ = run(capsys, "spaces", "--json")
    rows = {r["name"]: r for r in json.loads(out)}
    assert code == 0 and rows["nb201"]["size"] == 15625 and rows["nb201"]["kind"] == "cell"
    assert rows["fbnet"]["size"] == 9**22 and rows["ofa"]["kind"] == "hierarchical"
    code, out, _ = run(capsys, "spaces")
    assert code == 0 and "15,625" in out


def test_query_json(capsys, synthetic_data):
    import pandas as pd

    table = pd.read_csv(synthetic_data / "nb201" / "architectures.csv")
    i = int(table.index[table["arch"] == ALL3X3][0])
    code, out, err = run(capsys, "--data", str(synthetic_data), "query", "--space", "nb201",
                         "--index", str(i), "--json")
    assert code == 0, err
    obj = json.loads(out)
    assert obj["index"] == i and obj["arch"] == ALL3X3
    assert obj["params"] == 1_531_546 and obj["flops"] == pytest.approx(220.12, abs=0.01)
    assert obj["accuracy"] == {"cifar10_test_200ep": table["cifar10_test_200ep"][i]}
    assert set(obj["latency_ms"]) == {"dev_a", "dev_b"}
    # the same through --arch, narrowed to one device
    code, out, _ = run(capsys, "--data", str(synthetic_data), "query", "--space", "nb201",
                       "--arch", ALL3X3, "--device", "dev_b", "--json")
    assert code == 0 and json.loads(out)["index"] == i
    assert set(json.loads(out)["latency_ms"]) == {"dev_b"}


def test_query_outside_the_sampled_table_still_gives_size(capsys):
    code, out, err = run(capsys, "query", "--space", "fbnet", "--arch",
                         "-".join(["skip"] * 22), "--json")
    assert code == 0
    assert json.loads(out)["params"] == 780_660 and json.loads(out)["index"] is None
    assert "not in the public table of 5000 architectures" in err


@pytest.mark.parametrize(("argv", "message"), [
    (["query", "--space", "nb301", "--index", "1"],
     "unknown space 'nb301'; valid: fbnet, nb201, ofa"),
    (["query", "--space", "nb201", "--index", "15625"],
     "index 15625 out of range; valid: 0..15624"),
    (["query", "--space", "nb201", "--index", "1", "--device", "pixel9"],
     "unknown nb201 device 'pixel9'; valid: dev_a, dev_b"),
    (["query", "--space", "nb201", "--index", "1", "--task", "cifar11"],
     "unknown nb201 task 'cifar11'"),
    (["query", "--space", "nb201", "--arch", "|conv~0|+|none~0|none~1|+|none~0|none~1|none~2|"],
     "unknown operation 'conv' on edge 0->1"),
    (["query", "--space", "nb201"], "give exactly one of --index N or --arch TEXT"),
    (["query", "--space", "nb201", "--index", "x"], "'x' is not valid; valid: an integer"),
    (["devices", "--space", "darts"], "unknown space 'darts'"),
    (["frobnicate"], "no such command 'frobnicate'; valid: spaces"),
])
def test_bad_input_is_one_line_and_exit_2(capsys, synthetic_data, argv, message):
    code, out, err = run(capsys, "--data", str(synthetic_data), *argv)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("hwnas: error: ") and message in err
    assert "Traceback" not in err


def test_bundled_tables_by_default_and_a_bad_override_is_one_line(capsys, tmp_path,
                                                                    monkeypatch):
    code, out, _ = run(capsys, "query", "--space", "nb201", "--index", "1", "--json")
    assert code == 0 and json.loads(out)["accuracy"]["cifar10_test_200ep"] == 93.66
    code, _, err = run(capsys, "--data", str(tmp_path / "nope"), "devices")
    assert code == 2 and "--data points at" in err and err.count("\n") == 1
    code, _, err = run(capsys, "--data", str(tmp_path), "devices")
    assert code == 2 and "holds none of" in err and err.count("\n") == 1
    monkeypatch.setenv("HWNAS_DATA", str(tmp_path / "nope"))
    code, _, err = run(capsys, "query", "--space", "nb201", "--index", "3")
    assert code == 2 and "HWNAS_DATA points at" in err and err.count("\n") == 1


def test_devices_says_which_copy_each_table_came_from(capsys, synthetic_data):
    code, out, _ = run(capsys, "--data", str(synthetic_data), "devices", "--json")
    rows = json.loads(out)
    assert code == 0
    copies = {r["space"]: r["copy"] for r in rows}
    # the override holds nb201 only: fbnet and ofa still come from the bundled copy
    assert copies["nb201"].endswith(f" {synthetic_data}")
    assert copies["fbnet"] == copies["ofa"] == "bundled"


def test_devices(capsys, synthetic_data):
    code, out, _ = run(capsys, "--data", str(synthetic_data), "devices", "--space", "nb201",
                       "--json")
    rows = json.loads(out)
    assert code == 0 and [r["device"] for r in rows] == ["dev_a", "dev_b"]
    assert all(r["rows"] == 15625 and r["source"].startswith("public") for r in rows)


def test_console_script_entry_point(synthetic_data):
    # the installed entry point, as a user runs it: exit code and stderr from a real process
    proc = subprocess.run([sys.executable, "-m", "hwnas.bench", "query", "--space", "ofa",
                           "--arch", "r999|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("hwnas: error: ofa:")


def test_query_public_tables(capsys, public_data):
    code, out, err = run(capsys, "--data", str(public_data), "query", "--space", "nb201",
                         "--index", "0", "--json")
    obj = json.loads(out)
    assert code == 0 and obj["latency_ms"]["raspi4"] == pytest.approx(10.482)
    assert obj["params"] == 129_306  # derived by hand in tests/search/test_nb201.py
    code, out, _ = run(capsys, "--data", str(public_data), "query", "--space", "ofa",
                       "--index", "0", "--json")
    assert code == 0 and set(json.loads(out)["latency_ms"]) >= {"titan_rtx_64"}
    space = get_space("fbnet")
    code, out, err = run(capsys, "--data", str(public_data), "query", "--space", "fbnet",
                         "--arch", space.format(space.sample(123)), "--json")
    assert code == 0 and json.loads(out)["index"] is None and "not in the public table" in err
