"""Profiling: real ONNX Runtime measurements into a resumable store and a device table."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest

from hwnas.latency import (
    DeviceTableLatency,
    MeasurementProtocol,
    Profiler,
    ProfileStore,
    StoreError,
    Target,
    get_runtime,
    read_device_table,
)
from hwnas.search import TableError, get_space
from hwnas.search.spaces.nb201 import NB201Space

FAST = MeasurementProtocol(warmup_runs=2, min_runs=5, max_runs=10, rounds=2, reference_every=2)
SPACE = get_space("nb201")


def targets(n: int, seed: int = 0) -> list[Target]:
    return [Target(a, i) for i, a in enumerate(dict.fromkeys(SPACE.sample_batch(n, seed)))]


def test_profile_writes_a_device_table(tmp_path):
    table = Profiler(SPACE, get_runtime("ort-cpu"), FAST, tmp_path / "dev", "cpu").run(targets(4))
    frame = pd.read_csv(tmp_path / "dev" / "latency_ms.csv")
    assert list(frame.columns[:3]) == ["index", "arch", "latency_ms"]
    assert len(frame) == 4 and (frame["rounds"] == 2).all()
    assert np.isfinite(frame["latency_ms"]).all() and (frame["latency_ms"] > 0).all()
    assert (frame["p10_ms"] <= frame["p90_ms"]).all()
    meta = json.loads((tmp_path / "dev" / "meta.json").read_text())
    assert meta["device"] == "cpu" and meta["space"] == "nb201"
    assert meta["runtime"]["provider"] == "CPUExecutionProvider" and meta["runtime"]["batch"] == 1
    assert meta["protocol"]["rounds"] == 2 and meta["environment"]["cpu_count"] >= 1
    assert meta["precision"]["reference"]["measurements"] >= 2
    assert meta["counts"] == {"architectures": 4, "failed": 0, "complete_rounds": 4,
                              "stored_architectures": 4, "table": "the whole store"}
    # the table reads back as a device table and answers as a metric source
    source = DeviceTableLatency(read_device_table(tmp_path / "dev"), SPACE)
    np.testing.assert_allclose(source.evaluate([t.arch for t in targets(4)]),
                               frame.set_index("arch").loc[
                                   [SPACE.format(t.arch) for t in targets(4)], "latency_ms"])
    assert table.device == "cpu"


def test_resume_measures_only_what_is_missing(tmp_path):
    out = tmp_path / "dev"
    Profiler(SPACE, get_runtime("ort-cpu"), FAST, out, "cpu").run(targets(4)[:2])
    calls = []
    Profiler(SPACE, get_runtime("ort-cpu"), FAST, out, "cpu").run(
        targets(4), progress=lambda done, total, arch: calls.append((done, total)))
    assert calls[0] == (4, 8)  # 2 architectures x 2 rounds were already in the store
    assert calls[-1] == (8, 8)
    with ProfileStore(out) as store:
        rows = store.measurements()
    assert len(rows) == 8 and not rows.duplicated(["arch", "round"]).any()


class PartlyBroken(NB201Space):
    """NB201 where cells with a 3x3 conv on the first edge fail to build."""

    def build(self, arch, num_classes=None, none="zero"):
        if arch.genes[0] == 3:
            raise RuntimeError("this network cannot be built")
        return super().build(arch, num_classes, none)


def test_failures_are_recorded_and_profiling_goes_on(tmp_path):
    space = PartlyBroken()
    ts = [Target(space.from_genes([3, 1, 1, 1, 1, 1]), 0),
          Target(space.from_genes([2, 1, 1, 1, 1, 1]), 1)]
    table = Profiler(space, get_runtime("ort-cpu"), FAST, tmp_path, "cpu").run(ts)
    assert table.frame["arch"].tolist() == [space.format(ts[1].arch)]
    assert table.meta["failed"][0]["index"] == 0
    assert "cannot be built" in table.meta["failed"][0]["error"]
    assert "nan" not in (tmp_path / "latency_ms.csv").read_text().lower()


def test_other_settings_in_the_same_folder_are_refused(tmp_path):
    Profiler(SPACE, get_runtime("ort-cpu"), FAST, tmp_path, "cpu").run(targets(1))
    other = MeasurementProtocol(warmup_runs=2, min_runs=5, max_runs=10, rounds=3)
    with pytest.raises(StoreError, match="other settings .*protocol.rounds: 2 stored, 3 now"):
        Profiler(SPACE, get_runtime("ort-cpu"), other, tmp_path, "cpu").run(targets(1))


def test_unwritable_store_is_one_clear_error(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(StoreError, match="cannot open the profile store"):
        ProfileStore(blocker / "dev")


def test_sigkill_loses_at_most_the_architecture_in_flight(tmp_path):
    out = tmp_path / "dev"
    env = {**os.environ, "HWNAS_CACHE": str(tmp_path / "cache")}
    env.pop("HWNAS_DATA", None)
    cmd = [sys.executable, "-m", "hwnas.bench", "profile", "--space", "nb201", "--name", "k",
           "--archs", "8", "--rounds", "1", "--max-runs", "20", "--out", str(out)]
    proc = subprocess.Popen(cmd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    db = out / "profile.sqlite"
    deadline = time.time() + 120
    while time.time() < deadline:
        if db.exists():
            with sqlite3.connect(db) as con:
                try:
                    if con.execute("SELECT count(*) FROM measurement").fetchone()[0] >= 3:
                        break
                except sqlite3.OperationalError:
                    pass
        time.sleep(0.05)
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        before = con.execute("SELECT count(*) FROM measurement").fetchone()[0]
    assert 3 <= before <= 8
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    with sqlite3.connect(db) as con:
        rows = con.execute("SELECT arch, round FROM measurement").fetchall()
    assert len(rows) == 8 and len(set(rows)) == 8
    assert len(pd.read_csv(out / "latency_ms.csv")) == 8


@pytest.mark.parametrize(("csv", "message"), [
    ("arch,lat\nx,1\n", "needs an 'index'"),
    ("index,latency_ms\n0,1.0\n1,nan\n", "1 latencies are missing"),
    ("index,latency_ms\n0,1.0\n1,-2\n", "1 latencies are missing, non-finite or not positive"),
    ("index,latency_ms\n0,1.0\n0,2.0\n", "1 indices repeat"),
    ("index,latency_ms\n0.5,1.0\n", "integers"),
])
def test_bad_device_tables_are_rejected(tmp_path, csv, message):
    path = tmp_path / "t.csv"
    path.write_text(csv)
    with pytest.raises(TableError, match=message):
        read_device_table(path)


def test_any_csv_with_index_and_latency_is_a_device_table(tmp_path):
    path = tmp_path / "phone.csv"
    path.write_text("index,latency_ms,extra\n3,1.5,x\n7,2.5,y\n")
    t = read_device_table(path)
    assert t.device == "phone" and t.latency_by_index() == {3: 1.5, 7: 2.5}
