"""The command line's error boundary and typed options, case by case (issue 17, section 5)."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from hwnas.bench.cli import main
from hwnas.bench.cli.profile import DEFAULT_ROUNDS
from hwnas.bench.cli.search import run_folder_name
from hwnas.latency import MeasurementProtocol, atomic_write_text
from hwnas.latency.store import ProfileLock


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line(code: int, err: str, *needles: str) -> None:
    assert code == 2, err
    assert err.count("\n") == 1 and err.startswith("hwnas: error: "), err
    assert "Traceback" not in err
    for n in needles:
        assert n in err, (n, err)


@pytest.mark.parametrize("argv", [
    ["profile", "--space", "nb201", "--name", "b", "--archs", "1", "--seed", "-1"],
    ["search", "--space", "nb201", "--device", "dev_a", "--seed", "-1", "--budget", "3"],
    ["latency", "plan", "--space", "nb201", "--seed", "-1", "--out", "{tmp}/p.csv"],
    ["latency", "adapt", "--space", "nb201", "--shots", "{shots}", "--seed", "-1",
     "--out", "{tmp}/p.csv"],
    ["accuracy", "adapt", "--space", "nb201", "--shots", "{shots}", "--seed", "-1",
     "--out", "{tmp}/p.csv"],
])
def test_negative_seeds_are_refused_everywhere(capsys, synthetic_data, tmp_path, shots_csv, argv):
    argv = [a.format(tmp=tmp_path, shots=shots_csv) for a in argv]
    code, _, err = run(capsys, "--data", str(synthetic_data), *argv)
    one_line(code, err, "--seed", "valid: an integer in 0..4294967295")
    assert not (tmp_path / "p.csv").exists()


@pytest.mark.parametrize("content", ["1.5\n2\n", "index\n3\n1.5\n", "1e3\n"])
def test_indices_must_be_written_as_integers(capsys, synthetic_data, tmp_path, content):
    path = tmp_path / "idx.txt"
    path.write_text(content)
    code, _, err = run(capsys, "--data", str(synthetic_data), "profile", "--space", "nb201",
                       "--name", "b", "--indices", str(path), "--out", str(tmp_path / "o"))
    one_line(code, err, "is not an integer")
    assert not (tmp_path / "o").exists()


@pytest.mark.parametrize("data", [b"\x00\x01\x02", "caf\xe9\n".encode("latin-1")])
def test_undecodable_indices_and_configs(capsys, synthetic_data, tmp_path, data):
    path = tmp_path / "f.toml"
    path.write_bytes(data)
    code, _, err = run(capsys, "--data", str(synthetic_data), "profile", "--space", "nb201",
                       "--name", "b", "--indices", str(path))
    one_line(code, err, "--indices", str(path), "UTF-8")
    code, _, err = run(capsys, "compare", str(path), "--out", str(tmp_path / "c"))
    one_line(code, err, str(path))
    assert "UTF-8" in err or "invalid TOML" in err, err


@pytest.mark.parametrize("name", ["../../x", "", "/abs", ".", "..", "a/b", ".hidden"])
def test_profile_names_are_one_safe_path_component(capsys, tmp_path, monkeypatch, name):
    monkeypatch.setenv("HWNAS_RESULTS", str(tmp_path / "r" / "results"))
    code, _, err = run(capsys, "profile", "--space", "nb201", "--name", name, "--archs", "1")
    one_line(code, err, "--name", "valid: 1-64 letters")
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize(("argv", "needle"), [
    (["search", "--space", "nb201", "--device", "dev_a", "--budget", "0"], "--budget"),
    (["search", "--space", "nb201", "--device", "dev_a", "--budget", "99999999999999999999"],
     "valid: an integer in 1..1000000000"),
    (["search", "--space", "nb201", "--device", "dev_a", "--budget", "2.5"], "--budget"),
    (["latency", "adapt", "--space", "nb201", "--shots", "{shots}", "--meta-steps", "-5",
      "--out", "{tmp}/p.csv"], "--meta-steps"),
    (["accuracy", "adapt", "--space", "nb201", "--shots", "{shots}", "--meta-steps", "-5",
      "--out", "{tmp}/p.csv"], "valid: an integer in 0..100000"),
    (["quickstart", "--archs", "100000"], "--archs"),
    (["query", "--space", "nb201", "--index", "1.5"], "--index"),
])
def test_numbers_out_of_range(capsys, synthetic_data, tmp_path, shots_csv, argv, needle):
    argv = [a.format(tmp=tmp_path, shots=shots_csv) for a in argv]
    code, _, err = run(capsys, "--data", str(synthetic_data), *argv)
    one_line(code, err, needle)


@pytest.mark.parametrize("value", ["-50", "5000"])
def test_accuracies_outside_0_100_are_refused(capsys, synthetic_data, tmp_path, shots_csv,
                                              value):
    frame = pd.read_csv(shots_csv)
    frame.loc[3, "accuracy"] = float(value)
    frame.to_csv(shots_csv, index=False)
    code, _, err = run(capsys, "--data", str(synthetic_data), "accuracy", "adapt", "--space",
                       "nb201", "--shots", str(shots_csv), "--out", str(tmp_path / "p.csv"))
    one_line(code, err, "row 4", "valid: finite, 0..100")


def test_unwritable_outputs_are_one_line_before_any_work(capsys, synthetic_data, tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    for out in (str(blocker / "sub" / "p.csv"), "/proc/hwnas-test/p.csv"):
        code, _, err = run(capsys, "--data", str(synthetic_data), "latency", "plan", "--space",
                           "nb201", "--out", out)
        one_line(code, err, "--out", "valid: a path in a writable folder")
    for argv in (["search", "--space", "nb201", "--device", "dev_a", "--budget", "3"],
                 ["compare", str(blocker)], ["quickstart"]):
        code, _, err = run(capsys, "--data", str(synthetic_data), *argv, "--out",
                           "/proc/hwnas-test")
        one_line(code, err, "--out", "/proc")
    assert blocker.read_text() == "x"


@pytest.fixture
def small_mount(tmp_path):
    """A 256 KiB tmpfs (root only): a real full disk and a real read-only folder."""
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    if os.geteuid() != 0 or subprocess.run(["mount", "-t", "tmpfs", "-o", "size=256k", "tmpfs",
                                            str(mnt)], capture_output=True).returncode:
        pytest.skip("needs root and tmpfs to make a full or read-only file system")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], check=False)


def test_full_disk_leaves_no_tmp_file_and_the_old_output(capsys, synthetic_data, small_mount):
    out = small_mount / "plan.csv"
    out.write_text("old\n")
    filler = small_mount / "filler"
    try:  # fill the file system to the last block
        with open(filler, "wb") as f:
            while True:
                f.write(b"\0" * 4096)
                f.flush()
    except OSError:
        pass
    code, _, err = run(capsys, "--data", str(synthetic_data), "latency", "plan", "--space",
                       "nb201", "--shots", "20", "--out", str(out))
    one_line(code, err, "no space left")
    assert out.read_text() == "old\n"
    assert sorted(p.name for p in small_mount.iterdir()) == ["filler", "plan.csv"]


def test_read_only_folder(capsys, synthetic_data, small_mount):
    subprocess.run(["mount", "-o", "remount,ro", str(small_mount)], check=True)
    code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                       "--device", "dev_a", "--budget", "3", "--out", str(small_mount / "run"))
    one_line(code, err, "--out", "Read-only file system")


def test_atomic_writer_honours_the_umask_and_cleans_up(tmp_path, monkeypatch):
    old = os.umask(0o027)
    try:
        atomic_write_text(tmp_path / "a.txt", "x")
    finally:
        os.umask(old)
    assert (tmp_path / "a.txt").stat().st_mode & 0o777 == 0o640

    def fail(*a):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(os, "replace", fail)
    with pytest.raises(OSError):
        atomic_write_text(tmp_path / "a.txt", "new")
    assert (tmp_path / "a.txt").read_text() == "x"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]


@pytest.mark.parametrize("damage", ["garbage", "folder-is-a-file", "read-only"])
def test_a_broken_cache_does_not_break_query(capsys, tmp_path, monkeypatch, damage):
    cache = tmp_path / "cache"
    if damage == "garbage":
        cache.mkdir()
        (cache / "model_stats.sqlite").write_bytes(b"not a database" * 100)
    elif damage == "folder-is-a-file":
        cache.write_text("x")
    else:
        cache.mkdir()
        con = sqlite3.connect(cache / "model_stats.sqlite")
        con.execute("CREATE TABLE t (x)")
        con.close()
        monkeypatch.setattr("hwnas.bench.cache.StatsCache._connect",
                            lambda self: (_ for _ in ()).throw(
                                sqlite3.OperationalError("attempt to write a readonly database")))
    monkeypatch.setenv("HWNAS_CACHE", str(cache))
    code, out, err = run(capsys, "query", "--space", "nb201", "--index", "0", "--json")
    assert code == 0, err
    assert json.loads(out)["params"] == 129_306
    assert "statistics cache cannot be used" in err and "Traceback" not in err


def test_a_bug_says_how_to_report_it_and_debug_shows_the_traceback(monkeypatch, tmp_path):
    code = ("import hwnas.bench.cli.spaces as s, sys\n"
            "s.list_spaces = lambda: 1/0\n"
            "from hwnas.bench.cli import main\n"
            "sys.exit(main(['spaces']))\n")
    for debug in ("", "1"):
        env = {**os.environ, "HWNAS_DEBUG": debug}
        proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                              env=env, timeout=120)
        assert proc.returncode == 1
        assert "hwnas: internal error: ZeroDivisionError" in proc.stderr
        assert "HWNAS_DEBUG=1" in proc.stderr
        assert ("Traceback" in proc.stderr) == (debug == "1")
        if not debug:
            assert proc.stderr.count("\n") == 1


def test_a_second_profile_on_one_folder_is_refused(capsys, synthetic_data, tmp_path):
    out = tmp_path / "dev"
    with ProfileLock(out):
        code, _, err = run(capsys, "--data", str(synthetic_data), "profile", "--space",
                           "nb201", "--name", "b", "--archs", "1", "--out", str(out))
    one_line(code, err, "another hwnas profile is writing to", str(out))
    assert not (out / "profile.sqlite").exists()


@pytest.mark.parametrize("group", ["latency", "accuracy"])
def test_adapt_refuses_to_overwrite_its_shots(capsys, synthetic_data, shots_csv, group):
    before = shots_csv.read_bytes()
    link = shots_csv.with_name("same.csv")
    link.hardlink_to(shots_csv)
    for out in (shots_csv, link, shots_csv.parent / "." / shots_csv.name):
        code, _, err = run(capsys, "--data", str(synthetic_data), group, "adapt", "--space",
                           "nb201", "--shots", str(shots_csv), "--out", str(out))
        one_line(code, err, "--out", "is the --shots file")
    assert shots_csv.read_bytes() == before


@pytest.mark.parametrize(("rows", "needle"), [
    ("index,latency_ms\n3,1.0\n20000,2.0\n", "index 20000 outside the nb201 table"),
    ("arch,latency_ms\nnot-a-cell,1.0\n", "row 1: not a nb201 architecture"),
    ("index,latency_ms\n3,-1\n", "row 1: latency_ms"),
])
def test_device_tables_get_one_rule_in_query_search_and_adapt(capsys, synthetic_data, tmp_path,
                                                              rows, needle):
    path = tmp_path / "dev.csv"
    path.write_text(rows)
    messages = []
    for argv in (["query", "--space", "nb201", "--index", "3", "--device", str(path)],
                 ["search", "--space", "nb201", "--device", str(path), "--budget", "3",
                  "--out", str(tmp_path / "run")],
                 ["latency", "adapt", "--space", "nb201", "--shots", str(path), "--out",
                  str(tmp_path / "p.csv")]):
        code, _, err = run(capsys, "--data", str(synthetic_data), *argv)
        one_line(code, err, needle)
        messages.append(err.split(":", 2)[-1].split(str(path))[-1])
    assert len(set(messages)) == 1  # the same words after the file's name
    assert not (tmp_path / "run").exists() and not (tmp_path / "p.csv").exists()


def test_search_folders_are_named_by_their_setup(capsys, synthetic_data, tmp_path,
                                                 monkeypatch):
    monkeypatch.setenv("HWNAS_RESULTS", str(tmp_path / "results"))
    for device in ("dev_a", "dev_b"):
        code, _, err = run(capsys, "--data", str(synthetic_data), "search", "--space", "nb201",
                           "--device", device, "--strategy", "random", "--budget", "5")
        assert code == 0, err
    runs = sorted(p.name for p in (tmp_path / "results" / "runs").iterdir())
    assert runs == ["nb201-cifar10_test_200ep-dev_a-random-s0",
                    "nb201-cifar10_test_200ep-dev_b-random-s0"]
    a = run_folder_name("nb201", None, "/x/y/dev.csv", "nsga2", 1)
    b = run_folder_name("nb201", None, "/z/dev.csv", "nsga2", 1)
    assert a != b and a.startswith("nb201-none-dev.") and "/" not in a
    assert run_folder_name("ofa", None, "live:ort-cpu", "random", 0) == \
        "ofa-none-live_ort-cpu-random-s0"


def test_profile_rounds_default_matches_the_protocol_and_readme():
    # the profile benchmark: "paired with reference, 1 round (default)"
    readme = (Path(__file__).resolve().parents[2] / "results" / "benchmarks" / "README.md"
              ).read_text()
    assert "| paired with reference, 1 round (default) |" in readme
    assert DEFAULT_ROUNDS == MeasurementProtocol().rounds == 1


def test_a_profile_table_holds_what_was_asked_and_the_store_keeps_the_rest(capsys,
                                                                           synthetic_data,
                                                                           tmp_path):
    out = tmp_path / "dev"
    base = ["--data", str(synthetic_data), "profile", "--space", "nb201", "--name", "b",
            "--max-runs", "5", "--out", str(out)]
    code, _, err = run(capsys, *base, "--archs", "2", "--seed", "0")
    assert code == 0, err
    code, stdout, err = run(capsys, *base, "--archs", "1", "--seed", "1")
    assert code == 0, err
    table = pd.read_csv(out / "latency_ms.csv")
    meta = json.loads((out / "meta.json").read_text())
    assert len(table) == 1 and meta["counts"]["architectures"] == 1
    assert meta["counts"]["stored_architectures"] == 3 and meta["protocol"]["rounds"] == 1
    assert "2 more architectures of earlier requests stay in" in stdout
    assert (out / "meta.json").stat().st_mode & 0o777 == 0o666 & ~_umask()


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
