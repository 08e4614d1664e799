"""Profiling through device agents: real ``hwnas agent serve`` processes on loopback, a farm of
them, one killed (SIGKILL) and restarted mid-profile, one with another token, a deadline, a
resume, and the command line's checks of --remote and --token-file."""

from __future__ import annotations

import datetime
import json
import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time
import warnings
from pathlib import Path

import httpx
import numpy as np
import pandas as pd
import pytest

from hwnas.bench.cli import main
from hwnas.latency import MeasurementProtocol, ProfileStore, Target, export_onnx, get_runtime
from hwnas.latency.farm import (
    AgentClient,
    FarmProfiler,
    profile_remote,
)
from hwnas.latency.memory import initializer_bytes
from hwnas.search import get_space
from hwnas.search.tables import load_tables

FAST = MeasurementProtocol(warmup_runs=2, min_runs=5, max_runs=10, rounds=2)
ONE = MeasurementProtocol(warmup_runs=2, min_runs=5, max_runs=10, rounds=1)
SPACE = get_space("nb201")
TOKEN, WRONG = "farm-test-token", "not-the-token"


def targets(n: int, seed: int = 0) -> list[Target]:
    """The draw of ``hwnas profile --archs n --seed seed``: every test exports the same few."""
    tables = load_tables("nb201")
    idx = np.random.default_rng(seed).choice(len(tables), n, replace=False)
    return [Target(tables.archs[i], int(i)) for i in idx]


class Agent:
    """One ``hwnas agent serve`` subprocess; restartable on the same port."""

    def __init__(self, folder: Path, device: str, token: str):
        self.device, self.token = device, token
        self.token_file = folder / f"{device}-{id(self)}.token"
        self.token_file.write_text(token + "\n")
        self.log = folder / f"{device}-{id(self)}.log"
        self.port = 0
        self.proc: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Agent:
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        with self.log.open("a") as err:  # a file: a pipe nobody reads would stall the agent
            self.proc = subprocess.Popen(
                [sys.executable, "-m", "hwnas.bench", "agent", "serve", "--host", "127.0.0.1",
                 "--port", str(self.port), "--token-file", str(self.token_file),
                 "--device-name", self.device],
                env=env, stdout=subprocess.PIPE, stderr=err, text=True)
        return self

    def ready(self, timeout: float = 120.0) -> Agent:
        """Wait for the start line (it names the port) and for /v1/info to answer."""
        assert self.proc is not None
        if not self.port:
            line = self.proc.stdout.readline()
            assert "serving" in line, self.log.read_text()
            self.port = int(line.split("http://127.0.0.1:")[1].split()[0])
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            try:
                r = httpx.get(f"{self.url}/v1/info", timeout=2,
                              headers={"Authorization": f"Bearer {self.token}"})
                if r.status_code == 200:
                    return self
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.log.read_text()
            time.sleep(0.1)
        raise AssertionError(f"agent {self.url} did not start in {timeout} s")

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait()


@pytest.fixture(scope="module")
def agents(tmp_path_factory):
    """Four agents started together: a, b of device ``box``; c of ``box`` with another token;
    d of device ``other``. The first real-agent test leaves b dead, the last d."""
    folder = tmp_path_factory.mktemp("agents")
    pool = {"a": Agent(folder, "box", TOKEN), "b": Agent(folder, "box", TOKEN),
            "c": Agent(folder, "box", WRONG), "d": Agent(folder, "other", TOKEN)}
    try:
        for a in pool.values():
            a.start()
        for a in pool.values():
            a.ready()
        yield pool
    finally:
        for a in pool.values():
            a.kill()


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    return tmp_path_factory.mktemp("exports")


@pytest.fixture(autouse=True)
def _shared_exports(_isolated, exports, monkeypatch):
    """One export cache for the module: every test sends the same few networks."""
    monkeypatch.setenv("HWNAS_CACHE", str(exports))


@pytest.fixture
def token_file(tmp_path):
    path = tmp_path / "token"
    path.write_text(TOKEN + "\n")
    return path


def rows(folder: Path) -> pd.DataFrame:
    with ProfileStore(folder) as store:
        return store.measurements()


def ok_rows(folder: Path) -> int:
    db = folder / ProfileStore.FILENAME
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db) as con:
            return con.execute("SELECT count(*) FROM measurement WHERE status = 'ok'"
                               ).fetchone()[0]
    except sqlite3.OperationalError:  # not created yet
        return 0


def when_rows(folder: Path, n: int, action, timeout: float = 120.0) -> threading.Thread:
    """Run ``action`` in a thread once ``folder``'s store holds ``n`` measurements."""
    def watch() -> None:
        deadline = time.monotonic() + timeout
        while ok_rows(folder) < n and time.monotonic() < deadline:
            time.sleep(0.02)
        action()

    t = threading.Thread(target=watch, daemon=True)
    t.start()
    return t


def cli(capsys, *args: str) -> tuple[int, list[str]]:
    code = main(["profile", "--space", "nb201", "--name", "farm", "--max-runs", "1",
                 "--precision", "1", *args])
    err = [line for line in capsys.readouterr().err.splitlines()
           if line.startswith("hwnas: error")]
    return code, err


# ---------------------------------------------------------------------- the command line's checks
@pytest.mark.parametrize(("args", "message"), [
    (["--remote", "ftp://pi.local:8765"], "is not an agent URL; valid: http://HOST:PORT"),
    (["--remote", "http://pi.local:99999"], "valid: http://HOST:PORT"),
    (["--remote", "http://pi.local:8765/v1"], "no path"),
    (["--remote", "http://127.0.0.1:9", "--token-file", "/nonexistent/token"],
     "--token-file '/nonexistent/token': cannot read it"),
    (["--remote", "http://127.0.0.1:9", "--runtime", "torch-cpu"],
     "torch-cpu cannot run on an agent"),
    (["--remote", "http://127.0.0.1:9", "--lut"], "cannot be combined with --remote"),
])
def test_bad_remote_options_are_one_line_and_exit_2(capsys, tmp_path, token_file, args, message):
    if "--token-file" not in args:
        args = [*args, "--token-file", str(token_file)]
    code, err = cli(capsys, *args, "--archs", "2", "--out", str(tmp_path / "out"))
    assert code == 2 and len(err) == 1 and message in err[0], err
    assert not (tmp_path / "out").exists()


def test_an_empty_token_file_is_refused(capsys, tmp_path):
    empty = tmp_path / "empty"
    empty.write_text("\n")
    code, err = cli(capsys, "--remote", "http://127.0.0.1:9", "--token-file", str(empty),
                    "--archs", "2")
    assert code == 2 and len(err) == 1 and "is empty" in err[0]


def test_no_agent_answering_is_one_line_after_the_deadline(capsys, tmp_path, token_file):
    with socket.socket() as s:  # a port nothing listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    t0 = time.monotonic()
    code, err = cli(capsys, "--remote", f"http://127.0.0.1:{port}", "--token-file",
                    str(token_file), "--remote-deadline", "1.5", "--archs", "2",
                    "--out", str(tmp_path / "out"))
    assert code == 2 and len(err) == 1 and "no agent answered" in err[0], err
    assert "Connection refused" in err[0] or "ConnectError" in err[0]
    assert 1.5 <= time.monotonic() - t0 < 30


def test_a_store_written_before_the_agent_column_is_migrated(tmp_path):
    db = tmp_path / ProfileStore.FILENAME
    with sqlite3.connect(db) as con:  # the schema as it was before remote profiles
        con.executescript("""
            CREATE TABLE measurement (
                arch TEXT NOT NULL, idx INTEGER, round INTEGER NOT NULL, status TEXT NOT NULL,
                median_ms REAL, p10_ms REAL, p90_ms REAL, iqr_ms REAL, cv REAL, n INTEGER,
                ci_rel REAL, converged INTEGER, samples TEXT, error TEXT,
                measured_at TEXT NOT NULL, seconds REAL, ref_ms REAL, ratio REAL,
                PRIMARY KEY (arch, round));
            INSERT INTO measurement VALUES ('old', 1, 1, 'ok', 1.0, 0.9, 1.1, 0.1, 0.05, 10,
                0.01, 1, '[1.0]', NULL, '2026-01-01T00:00:00', 0.5, 2.0, 0.5);""")
    with ProfileStore(tmp_path) as store:
        store.add_failure("new", 2, 1, "agent: watchdog", 0.1, agent="http://pi:8765")
        frame = store.measurements().set_index("arch")
    assert frame.loc["old", "median_ms"] == 1.0 and pd.isna(frame.loc["old", "agent"])
    assert frame.loc["new", "agent"] == "http://pi:8765"
    with ProfileStore(tmp_path) as store:  # a second open leaves the schema as it is
        assert len(store.measurements()) == 2


# ---------------------------------------------------------------------- real agents
def test_a_farm_survives_a_killed_agent_and_drops_a_wrong_token(agents, tmp_path):
    """a is SIGKILLed after 2 measurements (b takes over), b after 4 (nobody answers), then a
    is restarted on its port: the host's retries find it and it finishes the profile."""
    a, b, c = agents["a"], agents["b"], agents["c"]
    out = tmp_path / "box"
    restarted_at: list[str] = []

    def wait_rows(n: int) -> None:
        deadline = time.monotonic() + 120
        while ok_rows(out) < n and time.monotonic() < deadline:
            time.sleep(0.02)

    def chaos() -> None:
        wait_rows(2)
        a.kill()
        wait_rows(4)
        b.kill()
        restarted_at.append(datetime.datetime.now(datetime.UTC).isoformat(
            timespec="milliseconds"))
        a.start().ready()  # the same port, an empty model cache

    watcher = threading.Thread(target=chaos, daemon=True)
    watcher.start()
    ts = targets(4)
    with pytest.warns(RuntimeWarning, match=f"agent {c.url} left out: .*refused the token"):
        (result,) = profile_remote(SPACE, get_runtime("ort-cpu"), FAST, out, "box",
                                   [a.url, b.url, c.url], TOKEN, ts, deadline=120,
                                   max_backoff=1.0)
    watcher.join()
    frame = rows(out)
    # every architecture exactly once per round, measured by a or b
    assert len(frame) == 8 and not frame.duplicated(["arch", "round"]).any()
    assert (frame["status"] == "ok").all(), frame["error"].tolist()
    assert set(frame["agent"]) == {a.url, b.url}
    assert (frame[frame["agent"] == b.url]["measured_at"] < restarted_at[0]).all()
    # the restarted a was taken back (and sent the models again)
    assert (frame[frame["agent"] == a.url]["measured_at"] > restarted_at[0]).any()
    table = pd.read_csv(out / "latency_ms.csv")
    assert sorted(table["arch"]) == sorted(SPACE.format(t.arch) for t in ts)
    assert (table["rounds"] == 2).all()
    meta = json.loads((out / "meta.json").read_text())
    assert meta["device"] == "box" and meta["runtime"]["runtime"] == "ort-cpu"
    assert meta["numeric_precision"] == "fp32" and meta["protocol"]["rounds"] == 2
    assert {x["url"] for x in meta["remote"]["agents"]} == {a.url, b.url}
    assert all(x["device"] == "box" and x["environment"]["cpu_model"]
               for x in meta["remote"]["agents"])
    assert sum(meta["remote"]["measurements_by_agent"].values()) == 8
    assert meta["remote"]["wire_protocol"] == 1 and meta["remote"]["backend"] == "ort-cpu"
    assert result.out_dir == out and result.device == "box"


def test_agents_of_two_devices_give_one_table_each(agents, tmp_path):
    a, d = agents["a"], agents["d"]
    ts = targets(4)[:3]
    results = profile_remote(SPACE, get_runtime("ort-cpu"), ONE, tmp_path, "lab",
                             [a.url, d.url], TOKEN, ts, deadline=60)
    assert sorted(r.device for r in results) == ["box", "other"]
    for r, agent in zip(sorted(results, key=lambda r: r.device), (a, d), strict=True):
        assert r.out_dir == tmp_path / r.device
        frame = rows(r.out_dir)
        assert len(frame) == 3 and set(frame["agent"]) == {agent.url}
        meta = json.loads((r.out_dir / "meta.json").read_text())
        assert meta["device"] == r.device and meta["counts"]["architectures"] == 3
        # memory measured by the agent, sizes counted on the host from the file it sent
        table = pd.read_csv(r.out_dir / "latency_ms.csv").set_index("arch")
        assert (table["memory_mb"] > 0).all(), table.to_dict()
        for t in ts:
            path = export_onnx(SPACE, t.arch)
            assert table.loc[SPACE.format(t.arch), "onnx_bytes"] == os.path.getsize(path)
            assert table.loc[SPACE.format(t.arch), "weight_bytes"] == initializer_bytes(path)


def test_openvino_memory_through_an_agent(agents, tmp_path):
    pytest.importorskip("openvino")
    a = agents["a"]
    with AgentClient(a.url, TOKEN) as client:
        info = client.info()
        if "ov-cpu" not in info.backends:
            pytest.skip(f"agent has no ov-cpu backend: {info.backends}")
        table = FarmProfiler(SPACE, get_runtime("ov-cpu"), ONE, tmp_path, "box",
                             [(client, info)]).run(targets(4)[:2])
    assert (table.frame["memory_mb"] > 0).all(), table.frame.to_dict()
    assert table.meta["resources"]["memory_mb"].startswith("peak resident-set growth")


def test_a_watchdog_failure_is_a_failed_row_and_profiling_goes_on(agents, tmp_path):
    a = agents["a"]
    with AgentClient(a.url, TOKEN) as client:
        info = client.info()
        ts = targets(4)[2:]
        # a watchdog shorter than any measurement: the agent kills its worker and says why
        profiler = FarmProfiler(SPACE, get_runtime("ort-cpu"), ONE, tmp_path, "box",
                                [(client, info)], timeout_s=0.001)
        table = profiler.run(ts)
    assert len(table.meta["failed"]) == 2
    assert all("watchdog" in f["error"] for f in table.meta["failed"]), table.meta["failed"]
    frame = rows(tmp_path)
    assert (frame["status"] == "failed").all() and set(frame["agent"]) == {a.url}


def test_every_agent_refusing_the_token_is_one_line(agents, capsys, tmp_path, token_file):
    code, err = cli(capsys, "--remote", agents["c"].url, "--token-file", str(token_file),
                    "--archs", "2", "--out", str(tmp_path / "out"))
    assert code == 2 and len(err) == 1 and "no agent can profile" in err[0], err
    assert "token" in err[0]


def test_every_agent_refusing_says_it_once(agents, capsys, tmp_path, token_file):
    code = main(["profile", "--space", "nb201", "--name", "farm", "--max-runs", "1",
                 "--precision", "1", "--remote", agents["c"].url, "--token-file",
                 str(token_file), "--archs", "2", "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and "no agent can profile" in lines[0], lines


def test_waiting_for_an_agent_says_so_at_once(capsys, tmp_path, token_file):
    """A wrong address looks like a board still booting: the wait is said, not silent."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    code = main(["profile", "--space", "nb201", "--name", "farm", "--remote",
                 f"http://127.0.0.1:{port}", "--token-file", str(token_file),
                 "--remote-deadline", "1", "--archs", "2", "--out", str(tmp_path / "out")])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and "no agent answered" in lines[-1]
    assert any("no agent answers yet" in x and "--remote-deadline" in x for x in lines), lines


def test_the_deadline_stops_the_profile_and_a_rerun_resumes(agents, capsys, tmp_path,
                                                             token_file):
    """Last of the module: it kills agent d for good."""
    d = agents["d"]
    out = tmp_path / "other"
    args = ["--remote", d.url, "--token-file", str(token_file), "--archs", "4", "--seed", "0",
            "--rounds", "1", "--remote-deadline", "2", "--out", str(out)]
    watcher = when_rows(out, 2, d.kill)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code, err = cli(capsys, *args)
    watcher.join()
    assert code == 2 and len(err) == 1, err
    assert "no agent of farm answered" in err[0] and "run the same command again" in err[0]
    before = rows(out)
    assert 2 <= len(before) < 4 and (before["status"] == "ok").all()
    # the rerun resumes, here on another agent of the same machine (d stays down)
    a = agents["a"]
    code, err = cli(capsys, *[a.url if x == d.url else x for x in args])
    assert code == 0, err
    after = rows(out).set_index("arch")
    assert len(after) == 4 and not after.index.duplicated().any()
    assert set(after["agent"]) == {d.url, a.url}
    # what was measured before the stop is kept, not measured again
    kept = after.loc[before["arch"], "measured_at"].tolist()
    assert kept == before["measured_at"].tolist()
    assert len(pd.read_csv(out / "latency_ms.csv")) == 4

