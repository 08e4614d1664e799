"""The process pool of `hwnas compare` on real processes: Ctrl-C (SIGINT to the process group) and
SIGTERM stop the grid within seconds without waiting for queued runs, and neither these nor a
SIGKILL of the parent leave a worker running."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from hwnas.bench.compare import is_finished, load_config

pytestmark = [pytest.mark.slow,
              pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="needs Linux /proc")]

# 30 runs of ~0.5 s each on 2 workers: ~8 s of work queued when the first run is done
GRID = """
[compare]
seeds = [{seeds}]
budgets = [2500]
executor = "process"
workers = 2

[[problems]]
name = "nb201"
space = "nb201"
task = "cifar10_test_200ep"
device = "dev_a"
objectives = ["accuracy", "latency"]

[[strategies]]
name = "nsga2"
"""

PARENT = """
import sys
from hwnas.bench.compare import load_config, run_compare
if __name__ == "__main__":  # spawned workers import this module again
    try:
        run_compare(load_config(sys.argv[1]), sys.argv[2], sys.argv[3], score=False)
    except KeyboardInterrupt:
        sys.exit(130)
"""


def _stat(pid: int) -> tuple[str, int] | None:
    """(state, parent pid) of a process, or None when it is gone."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    rest = text[text.rindex(")") + 2:].split()
    return rest[0], int(rest[1])


def _alive(pid: int) -> bool:
    st = _stat(pid)
    return st is not None and st[0] not in ("Z", "X")  # a zombie has already ended


def _workers(parent: int) -> list[int]:
    out = []
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit() and (st := _stat(int(entry.name))) and st[1] == parent:
            try:
                cmd = (entry / "cmdline").read_bytes()
            except OSError:
                continue
            if b"spawn_main" in cmd:
                out.append(int(entry.name))
    return out


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return predicate()


@pytest.fixture
def running_grid(synthetic_data, tmp_path):
    """A parent process running a 30-run grid on 2 workers, once its first run is finished."""
    config = tmp_path / "grid.toml"
    config.write_text(GRID.format(seeds=", ".join(map(str, range(30)))))
    script = tmp_path / "parent.py"
    script.write_text(PARENT)
    out = tmp_path / "out"
    proc = subprocess.Popen([sys.executable, str(script), str(config), str(out),
                             str(synthetic_data)], start_new_session=True,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert _wait(lambda: any(out.glob("runs/*/*/*/run.json")) or proc.poll() is not None,
                     120), "no run finished in 120 s"
        assert proc.poll() is None, proc.communicate()
        workers = _workers(proc.pid)
        assert len(workers) == 2, workers
        yield proc, workers, out, load_config(config)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(30)


def _finished(out: Path, cfg) -> int:
    """Runs whose folder reads as finished; every other folder must read as unfinished."""
    return sum(is_finished(out / s.folder, s.config) for s in cfg.runs())


@pytest.mark.parametrize("how", ["ctrl-c", "sigterm"])
def test_an_interrupted_grid_stops_at_once_and_takes_its_workers(running_grid, how):
    proc, workers, out, cfg = running_grid
    t0 = time.monotonic()
    if how == "ctrl-c":  # a terminal's Ctrl-C reaches the whole foreground process group
        os.killpg(proc.pid, signal.SIGINT)
    else:
        os.kill(proc.pid, signal.SIGTERM)
    proc.wait(20)
    stopped = time.monotonic() - t0
    assert stopped < 4.0, f"took {stopped:.1f} s to stop"
    # SIGINT ends in the script's KeyboardInterrupt; SIGTERM is re-delivered after the clean-up
    assert proc.returncode == (130 if how == "ctrl-c" else -signal.SIGTERM), proc.communicate()
    assert _wait(lambda: not any(map(_alive, workers)), 3.0), "workers outlived their parent"
    assert _finished(out, cfg) < len(cfg.runs())  # queued runs were cancelled, not waited for
    assert b"Traceback" not in proc.communicate()[1]


def test_workers_die_with_a_killed_parent(running_grid):
    proc, workers, out, cfg = running_grid
    os.kill(proc.pid, signal.SIGKILL)  # no clean-up runs in the parent
    proc.wait(10)
    assert _wait(lambda: not any(map(_alive, workers)), 5.0), "workers outlived their parent"
    done = _finished(out, cfg)
    time.sleep(1.0)  # nothing keeps writing runs after the parent is gone
    assert _finished(out, cfg) == done < len(cfg.runs())


def test_a_killed_worker_fails_its_runs_not_the_parent(running_grid):
    """A worker that dies (the OOM killer, a kill) fails the runs the pool had, reported in one
    line, and the parent exits non-zero within seconds, taking the other worker with it."""
    proc, workers, _, _ = running_grid
    os.kill(workers[0], signal.SIGKILL)
    proc.wait(20)
    _, err = proc.communicate()
    assert proc.returncode == 1 and b"RunsFailedError" in err
    assert b"its worker process died" in err
    assert _wait(lambda: not any(map(_alive, workers)), 3.0)
