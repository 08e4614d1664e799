"""The prefetching profiler: a worker process exports ahead; the sequential path stays."""

from __future__ import annotations

import multiprocessing

import pandas as pd
import pytest

from hwnas.latency import MeasurementProtocol, Profiler, ProfileStore, Target, get_runtime
from hwnas.latency.export import onnx_cache_dir
from hwnas.search import get_space

SPACE = get_space("nb201")
FAST = MeasurementProtocol(warmup_runs=2, min_runs=5, max_runs=10, rounds=2)


def targets(n: int) -> list[Target]:
    return [Target(SPACE.sample(100 + i)) for i in range(n)]


@pytest.mark.slow
def test_pipelined_and_sequential_profiles_hold_the_same_rows(tmp_path):
    ts = targets(3)
    piped = Profiler(SPACE, get_runtime("ort-cpu"), FAST, tmp_path / "a", "cpu",
                     prefetch=2).run(ts)
    # the worker exported every network into this process's cache
    assert len(list(onnx_cache_dir().rglob("*.onnx"))) == 4  # the three and the reference
    assert not multiprocessing.active_children()  # the worker is gone with the run
    seq = Profiler(SPACE, get_runtime("ort-cpu"), FAST, tmp_path / "b", "cpu",
                   prefetch=0).run(ts)
    a, b = piped.frame.set_index("arch"), seq.frame.set_index("arch")
    assert sorted(a.index) == sorted(b.index) == sorted(SPACE.format(t.arch) for t in ts)
    assert (a["rounds"] == 2).all() and (b["rounds"] == 2).all()
    pd.testing.assert_series_equal(a["onnx_bytes"], b.loc[a.index, "onnx_bytes"])
    pd.testing.assert_series_equal(a["weight_bytes"], b.loc[a.index, "weight_bytes"])
    # the same model in a fresh fork: the same peak to within a few pages
    assert ((a["memory_mb"] - b.loc[a.index, "memory_mb"]).abs() < 1.0).all()
    with ProfileStore(tmp_path / "a") as store:  # measured once, though timed twice
        assert len(store.resources()) == 3 and len(store.measurements()) == 6


class PartlyBroken(type(SPACE)):
    """NB201 where cells with a 3x3 conv on the first edge fail to build."""

    def build(self, arch, num_classes=None, none="zero"):
        if arch.genes[0] == 3:
            raise RuntimeError("this network cannot be built")
        return super().build(arch, num_classes, none)


def test_export_failures_in_the_worker_are_recorded_as_before(tmp_path):
    space = PartlyBroken()
    broken = space.from_genes([3, 1, 1, 1, 1, 1])
    table = Profiler(space, get_runtime("ort-cpu"), FAST, tmp_path, "cpu",
                     prefetch=3).run([Target(broken, 0)])
    assert len(table.frame) == 0 and "cannot be built" in table.meta["failed"][0]["error"]
    with ProfileStore(tmp_path) as store:  # nothing to measure the memory of
        assert store.resources().empty


@pytest.mark.parametrize("bad", [-1, 1.5, True])
def test_prefetch_must_be_a_count(tmp_path, bad):
    with pytest.raises(ValueError, match="prefetch must be an integer >= 0"):
        Profiler(SPACE, get_runtime("ort-cpu"), FAST, tmp_path, "cpu", prefetch=bad)


def test_an_unknown_start_method_is_refused(tmp_path):
    with pytest.raises(ValueError, match="valid: "):
        Profiler(SPACE, get_runtime("ort-cpu"), FAST, tmp_path, "cpu", start_method="teleport")


def test_the_timing_process_exports_from_the_tail_instead_of_waiting(tmp_path):
    from hwnas.latency.profile import _Prefetcher

    ts = targets(3)
    jobs = [(SPACE.format(t.arch), t.arch, True) for t in ts]
    with _Prefetcher(get_runtime("ort-cpu"), SPACE, jobs, 0, "fork"
                     if "fork" in multiprocessing.get_all_start_methods() else "spawn") as ahead:
        assert ahead.steal()  # the last job: never given to the worker
        assert ahead.ready(jobs[2][0])
        assert ahead.steal()  # then the one before it; the first is the worker's already
        assert not ahead.steal()
        ahead.wait(jobs[0][0])
        assert ahead.ready(jobs[0][0]) and ahead.ready(jobs[1][0])
        # the worker still measures the memory of all three, the stolen ones too
        assert sorted(ahead.resources()) == sorted(text for text, _, _ in jobs)
    assert len(list(onnx_cache_dir().rglob("*.onnx"))) == 3


def test_a_prefetching_profile_times_every_architecture_once_per_round(tmp_path):
    ts = targets(4) + targets(1)  # a repeated target is timed once per round
    protocol = MeasurementProtocol(warmup_runs=1, min_runs=3, max_runs=6, rounds=3)
    table = Profiler(SPACE, get_runtime("ort-cpu"), protocol, tmp_path, "cpu",
                     prefetch=1).run(ts)
    assert len(table.frame) == 4 and (table.frame["rounds"] == 3).all()
    with ProfileStore(tmp_path) as store:
        rows = store.measurements()
        assert len(rows) == 12 and not rows.duplicated(["arch", "round"]).any()
        assert len(store.resources()) == 4


class Recording(Profiler):
    """A profiler that notes the order in which it times networks and measures their memory."""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.calls: list[tuple[str, str]] = []

    def _measure_one(self, store, t, text, round_):
        self.calls.append(("time", text))
        return super()._measure_one(store, t, text, round_)

    def _record_resources(self, store, t, text, probe):
        self.calls.append(("memory", text))
        return super()._record_resources(store, t, text, probe)


def test_the_sequential_path_measures_memory_after_every_timing(tmp_path):
    # a timing right after a memory measurement ran ~5% slower, so memory comes last
    ts = targets(3)
    profiler = Recording(SPACE, get_runtime("ort-cpu"), FAST, tmp_path, "cpu", prefetch=0)
    table = profiler.run(ts)
    kinds = [kind for kind, _ in profiler.calls]
    assert kinds == ["time"] * 6 + ["memory"] * 3
    assert sorted(text for kind, text in profiler.calls if kind == "memory") == sorted(
        SPACE.format(t.arch) for t in ts)
    assert table.frame["memory_mb"].notna().all() and (table.frame["memory_mb"] > 0).all()
