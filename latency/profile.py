"""Profiling a device: measure many architectures into a device table, resumably.

The host a profile runs on is rarely quiet: on shared or virtual CPUs the speed flips between
states lasting seconds (a fixed network's median was seen moving between 1.5 and 2.5 ms on this
project's CI machines). A single median per architecture inherits whichever state the host was in.
The profiler therefore (1) times a fixed *reference* architecture in alternating chunks with every
architecture and keeps the ratio of their medians — both see the same host state, so it cancels —
and reports ratio x the reference's median over the whole profile; (2) optionally measures in
several *rounds* separated in time; (3) records the reference's level over time and flags the
profile when it drifts; and (4) records the precision it reached (CI of each median, spread between
rounds) in the table's metadata. Unpaired measurement (``paired_reference=False``) keeps the
minimum of the round medians instead, since a slow state only ever adds time.

Each architecture's peak session memory, ONNX file size and weight bytes
(:mod:`hwnas.latency.resources`) are measured once and kept in the store's ``resource`` table.

About half of a fresh profile's time is exporting networks to ONNX, which is Python- and
torch-heavy. With ``prefetch=k`` a worker *process* (a thread would fight the timing loop for the
GIL) exports the next ``k`` architectures into the cache, and measures their memory and sizes,
while the current one is timed; the timing loop then finds the file cached and only builds its
session, just before timing it. The timing loop never idles while there is work: when the next
export is not ready it times a later round of an architecture measured at least
:data:`ROUND_GAP_S` earlier, or else exports the last architecture not yet given to the worker
itself. This is the default (``prefetch=4``, the faster look-ahead in both quiet runs of
results/benchmarks/profile_throughput_quiet*.md).
``prefetch=0`` is the sequential path: export, session and timing one after the other in this
process, round after round. Either way memory is measured after the timing, never between two
timings: a timing that came right after a memory measurement ran about 5% slower (the device
agent's diagnosis, in the README), so what the worker did not measure is measured here in a last
pass, after every round.
"""

from __future__ import annotations

import contextlib
import math
import multiprocessing
import os
import signal
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import Architecture, Space

from .environment import describe_environment
from .memory import MemoryProbe
from .protocol import MeasurementProtocol, measure
from .resources import (
    RESOURCE_COLUMNS,
    Resources,
    describe_resources,
    measure_resources,
    model_file,
)
from .runtime import Runtime, RuntimeUnavailableError
from .store import ProfileStore, StoreError
from .table import DeviceTable

__all__ = ["Profiler", "Target", "reference_arch", "aggregate", "model_file_kind"]

#: a later round of an architecture is timed ahead of the natural order (to keep the timing loop
#: busy while the worker exports) only this long after its previous round: rounds are there to
#: sample the host's state more than once, and on shared CPUs its states last seconds
ROUND_GAP_S = 5.0

#: progress(done, total, last architecture)
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class Target:
    """One architecture to profile, with its table index where the space has one."""

    arch: Architecture
    index: int | None = None


def reference_arch(space: Space) -> Architecture:
    """The fixed reference architecture of a space (a seeded draw, the same everywhere)."""
    return space.sample(20211206)


class Profiler:
    """Measures architectures on one runtime into ``out_dir`` (store, table and metadata).

    Args:
        space: the search space.
        runtime: an available runtime.
        protocol: the measurement protocol.
        out_dir: the profile's folder; a rerun with the same settings resumes it.
        name: the device name written into the metadata.
        table: what ``latency_ms.csv`` holds: ``"store"``, every architecture in the store (a
            live source's table grows with each search), or ``"request"``, only the targets of
            the last :meth:`run` (``hwnas profile``: a rerun with another ``--archs`` draw
            reports what it was asked; measurements of earlier draws stay in the store and are
            reused when asked again). ``meta.json`` counts both.
        prefetch: architectures a worker process exports ahead of the one being timed (it
            then measures their memory and sizes); 0: the sequential path, everything in this
            process. Default 4: a fresh profile took 0.799x, 1.230x and 1.096x its timed loop
            alone in three quiet runs, against 0.925x and 1.422x with 2 in the first two
            (results/benchmarks/profile_throughput_quiet*.md).
        resources: measure each architecture's memory and sizes once (the table's
            ``memory_mb``, ``onnx_bytes`` and ``weight_bytes`` columns).
        start_method: how the worker process starts (``fork``, where there is one: instant, the
            networks and space already imported; else ``spawn``).
    """

    TABLES = ("store", "request")

    def __init__(self, space: Space, runtime: Runtime, protocol: MeasurementProtocol,
                 out_dir: str | Path, name: str, table: str = "store", prefetch: int = 4,
                 resources: bool = True, start_method: str | None = None):
        if isinstance(space, str):  # a space by name, as Problem takes it
            from hwnas.search import get_space

            space = get_space(space)
        if not isinstance(space, Space):
            raise ValueError(f"space must be a Space or a space's name, got "
                             f"{type(space).__name__}")
        if not isinstance(runtime, Runtime):
            raise ValueError(f"runtime must be a Runtime (hwnas.latency.get_runtime(name)), got "
                             f"{type(runtime).__name__}")
        if not isinstance(protocol, MeasurementProtocol):
            raise ValueError(f"protocol must be a MeasurementProtocol, got "
                             f"{type(protocol).__name__}")
        if not isinstance(name, str) or not name.strip():
            raise ValueError(f"name must be a non-empty device name, got {name!r}")
        if table not in self.TABLES:
            raise ValueError(f"table must be one of {self.TABLES}, got {table!r}")
        if isinstance(prefetch, bool) or not isinstance(prefetch, int) or prefetch < 0:
            raise ValueError(f"prefetch must be an integer >= 0, got {prefetch!r}")
        methods = multiprocessing.get_all_start_methods()
        if start_method is not None and start_method not in methods:
            raise ValueError(f"start_method {start_method!r}; valid: {', '.join(methods)}")
        self.space, self.runtime, self.protocol = space, runtime, protocol
        self.out_dir, self.name, self.table = Path(out_dir), name, table
        self.prefetch, self.resources = prefetch, resources
        self.start_method = start_method or ("fork" if "fork" in methods else "spawn")
        self.reference = reference_arch(space)
        self.environment = describe_environment()
        self._reference_timer = None

    def settings(self) -> dict[str, Any]:
        """What must not change when a profile is resumed."""
        rt = self.runtime.describe()
        return {
            "space": self.space.name,
            "build_version": self.space.build_version,
            "runtime": {k: v for k, v in rt.items()
                        if k not in ("onnxruntime", "torch", "openvino")},
            # a key of its own: stores written before it existed still resume
            "numeric_precision": self.runtime.precision,
            "protocol": self.protocol.to_dict(),
            "reference": self.space.format(self.reference),
            "machine": {k: self.environment[k] for k in ("cpu_model", "gpu")},
        }

    def run(self, targets: Sequence[Target], progress: Progress | None = None) -> DeviceTable:
        """Measure every target in every round not yet in the store; write and return the table.

        Raises:
            RuntimeUnavailableError: the runtime cannot run here.
            StoreError: the store cannot be written or holds a profile with other settings.
        """
        self.runtime.require()
        with ProfileStore(self.out_dir) as store:
            store.bind_settings(self.settings())
            total = len(targets) * self.protocol.rounds
            done_count = sum(len(store.done(r) & {self.space.format(t.arch) for t in targets})
                             for r in range(1, self.protocol.rounds + 1))
            if progress:
                progress(done_count, total, "")
            have = set(store.resources()["arch"]) if self.resources else set()
            todo: dict[str, Architecture] = {}  # architectures to time, in the order timed
            for round_ in range(1, self.protocol.rounds + 1):
                done = store.done(round_)
                for t in targets:
                    text = self.space.format(t.arch)
                    if text not in done:
                        todo.setdefault(text, t.arch)
            with contextlib.ExitStack() as stack:
                probe = stack.enter_context(MemoryProbe()) if self.resources else None
                ahead = None
                if self.prefetch and todo and model_file_kind(self.runtime):
                    ahead = stack.enter_context(_Prefetcher(
                        self.runtime, self.space, [(k, a, k not in have) for k, a in todo.items()],
                        self.prefetch, self.start_method))
                since_reference, newest = None, 0
                for round_, position, t, text in self._schedule(store, targets, ahead):
                    if round_ > newest:  # each round starts with a reference (drift record)
                        since_reference, newest = None, round_
                    # paired measurement already times the reference with every architecture
                    if not self.protocol.paired_reference and (
                            since_reference is None
                            or since_reference >= self.protocol.reference_every):
                        self._measure_reference(store, round_, position)
                        since_reference = 0
                    self._measure_one(store, t, text, round_)
                    since_reference = (since_reference or 0) + 1
                    done_count += 1
                    if progress:
                        progress(done_count, total, text)
                if ahead is not None:  # the worker measured them after its exports
                    index = {self.space.format(t.arch): t.index for t in targets}
                    for text, res in ahead.resources().items():
                        store.add_resources(text, index.get(text), res.memory_mb,
                                            res.onnx_bytes, res.weight_bytes, res.error)
                        have.add(text)
                # the sequential path's memory, what the worker could not measure, and
                # architectures timed before resources were measured (an older store): here,
                # after every round is timed, since a timing that follows a memory measurement
                # runs about 5% slower (the agent's diagnosis in the README)
                rows = store.measurements() if self.resources else None
                timed = set(rows.loc[rows["status"] == "ok", "arch"]) if rows is not None else ()
                for t in targets if self.resources else ():
                    text = self.space.format(t.arch)
                    if text not in have and text in timed:
                        if progress:
                            progress(done_count, total, f"{text} (memory)")
                        self._record_resources(store, t, text, probe)
                        have.add(text)
            wanted = {self.space.format(t.arch) for t in targets}
            return self.write(store, wanted if self.table == "request" else None)

    def _schedule(self, store: ProfileStore, targets: Sequence[Target],
                  ahead: _Prefetcher | None) -> Iterator[tuple[int, int, Target, str]]:
        """(round, position, target, canonical string) to time next, until every round is done.

        The natural order is round by round, each in the targets' order. With a prefetching
        worker the timing loop never idles while there is other work: when the next
        architecture's export is not ready, it times a later round of an architecture whose
        previous round is at least :data:`ROUND_GAP_S` old; when there is none either, it
        exports the last architecture still unexported itself (the worker never gets it)
        instead of waiting (:meth:`_Prefetcher.steal`), and waits only when nothing is left.
        """
        pending: list[tuple[int, int, Target, str]] = []
        seen: set[tuple[int, str]] = set()
        for round_ in range(1, self.protocol.rounds + 1):
            done = store.done(round_)
            for position, t in enumerate(targets):
                text = self.space.format(t.arch)
                if text not in done and (round_, text) not in seen:
                    seen.add((round_, text))
                    pending.append((round_, position, t, text))
        timed: dict[tuple[int, str], float] = {}  # (round, arch) -> when it was timed
        while pending:
            i = 0
            if ahead is not None:
                i = self._pick(pending, ahead, timed)
                while i is None:
                    if not ahead.steal():
                        i = 0
                        ahead.wait(pending[0][3])
                    else:
                        i = self._pick(pending, ahead, timed)
            item = pending.pop(i)
            yield item
            timed[(item[0], item[3])] = time.perf_counter()

    @staticmethod
    def _pick(pending: list[tuple[int, int, Target, str]], ahead: _Prefetcher,
              timed: dict[tuple[int, str], float]) -> int | None:
        """Index of the item to time now: the next one if its export is ready, else the first
        ready one (an architecture exported here, or a later round whose previous round is old
        enough); None when nothing can be timed now."""
        if ahead.ready(pending[0][3], advance=True):
            return 0
        now = time.perf_counter()
        waiting = {(r, text) for r, _, _, text in pending}
        for i, (round_, _, _, text) in enumerate(pending):
            if (round_ > 1 and (round_ - 1, text) in waiting) or not ahead.ready(text):
                continue
            # a previous round timed in an earlier run of the profile is old enough
            if round_ == 1 or now - timed.get((round_ - 1, text), -math.inf) >= ROUND_GAP_S:
                return i
        return None

    def _record_resources(self, store: ProfileStore, t: Target, text: str,
                          probe: MemoryProbe | None) -> None:
        """Measure here, after timing (the sequential path, or what the worker could not)."""
        try:
            res = measure_resources(self.runtime, self.space, t.arch, probe)
        except (StoreError, KeyboardInterrupt):
            raise
        except Exception:  # cannot export: the latency row already records the failure
            return
        store.add_resources(text, t.index, res.memory_mb, res.onnx_bytes, res.weight_bytes,
                            res.error)

    def _measure_reference(self, store: ProfileStore, round_: int, position: int) -> None:
        try:
            m = measure(self.runtime.timer(self.space, self.reference), self.protocol)
        except (StoreError, RuntimeUnavailableError):
            raise
        except Exception:  # a reference that cannot run leaves no drift record, nothing else
            return
        store.add_reference(round_, position, m.median_ms)

    def _paired_timer(self):
        if not self.protocol.paired_reference:
            return None
        if self._reference_timer is None:  # one session for the whole profile
            self._reference_timer = self.runtime.timer(self.space, self.reference)
        return self._reference_timer

    def _measure_one(self, store: ProfileStore, t: Target, text: str, round_: int) -> bool:
        reference = self._paired_timer()
        t0 = time.perf_counter()
        try:
            m = measure(self.runtime.timer(self.space, t.arch), self.protocol, reference)
        except (StoreError, RuntimeUnavailableError, KeyboardInterrupt):
            raise
        except Exception as e:  # export or runtime failure: recorded, profiling goes on
            store.add_failure(text, t.index, round_, f"{type(e).__name__}: {e}",
                              time.perf_counter() - t0)
            return False
        store.add(text, t.index, round_, m, time.perf_counter() - t0)
        return True

    def write(self, store: ProfileStore, only: set[str] | None = None) -> DeviceTable:
        """Aggregate the store into ``latency_ms.csv`` + ``meta.json`` (atomic writes).

        Args:
            only: canonical strings of the architectures the table holds (default: all stored).
        """
        rows = store.measurements()
        stored = int(rows.loc[rows["status"] == "ok", "arch"].nunique())
        if only is not None:
            rows = rows[rows["arch"].isin(only)]
        frame, failed = aggregate(rows, self.protocol.paired_reference)
        frame = _with_resources(frame, store.resources())
        if self.protocol.paired_reference:
            paired = rows[(rows["status"] == "ok") & rows["ref_ms"].notna()]
            refs = pd.DataFrame({"median_ms": paired["ref_ms"]})
        else:
            refs = store.references()
        meta: dict[str, Any] = {
            "device": self.name,
            "space": self.space.name,
            **{k: v for k, v in self.settings().items() if k not in ("space", "machine")},
            "environment": self.environment,
            "counts": {"architectures": int(len(frame)), "failed": len(failed),
                       "stored_architectures": stored,
                       "table": "the last request" if only is not None else "the whole store",
                       "complete_rounds": int((frame["rounds"] == self.protocol.rounds).sum())
                       if len(frame) else 0},
            "failed": failed,
            "precision": _precision(frame, refs, self.protocol),
            "resources": {**describe_resources(self.runtime), "energy": _energy_note()},
            "statistic": (
                "latency_ms: median over rounds of (median / interleaved reference median) x "
                "the reference's median over the profile" if self.protocol.paired_reference
                else "latency_ms: minimum over rounds of the per-round median"),
        }
        table = DeviceTable(frame, meta, str(self.out_dir / "latency_ms.csv"))
        try:
            table.write(self.out_dir)
        except OSError as e:  # full disk, permissions: the store keeps every measurement
            raise StoreError(f"cannot write the device table in {self.out_dir}: {e.strerror}; "
                             "the measurements are safe in the store, rerun to write it") from None
        return table


def model_file_kind(runtime: Runtime) -> bool:
    """Whether ``runtime`` reads an ONNX file that a worker can prepare ahead (not PyTorch)."""
    from .runtime import OpenVinoCpuRuntime, OrtRuntime

    return isinstance(runtime, (OrtRuntime, OpenVinoCpuRuntime))


def _energy_note() -> str:
    from .energy import energy_sensor

    ok, why = energy_sensor()
    return (f"readable here ({why}); per-inference energy is the 'energy' metric source"
            if ok else f"unsupported here: {why}")


def _with_resources(frame: pd.DataFrame, resources: pd.DataFrame) -> pd.DataFrame:
    """``frame`` with the resource columns (missing values where an architecture has none)."""
    res = resources.drop_duplicates("arch").set_index("arch") if len(resources) else None
    for col in RESOURCE_COLUMNS:
        values = (frame["arch"].map(res[col]) if res is not None and len(frame)
                  else pd.Series([None] * len(frame), index=frame.index, dtype=object))
        frame[col] = (pd.to_numeric(values).astype("Float64") if col == "memory_mb"
                      else pd.to_numeric(values).round().astype("Int64"))
    return frame


# ---------------------------------------------------------------------- the prefetching worker
_WORKER_PROBE: MemoryProbe | None = None


def _worker_init(parent: int) -> None:
    # die with the profiler (a SIGKILL'd one too), so that no orphan keeps the folder's lock
    if sys.platform.startswith("linux"):
        import ctypes

        with contextlib.suppress(OSError, AttributeError):
            ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:
            os._exit(0)
    # a profiler pinned to some cores (hwnas profile --cpu) leaves the others to its worker
    if hasattr(os, "sched_getaffinity"):
        others = set(range(os.cpu_count() or 1)) - os.sched_getaffinity(0)
        with contextlib.suppress(OSError):
            if others:
                os.sched_setaffinity(0, others)
    # no os.nice: on a busy host a niced worker starves, and the timing loop waits for it
    import torch

    torch.set_num_threads(1)


def _export(runtime: Runtime, space: Space, arch: Architecture) -> None:
    """In the worker: export (or quantize) ``arch`` into the cache."""
    model_file(runtime, space, arch)


def _resources(runtime: Runtime, space: Space, arch: Architecture) -> Resources:
    """In the worker: memory and sizes of an exported ``arch``."""
    global _WORKER_PROBE
    if _WORKER_PROBE is None:
        _WORKER_PROBE = MemoryProbe()
    return measure_resources(runtime, space, arch, _WORKER_PROBE)


class _Prefetcher:
    """One worker process exporting ``jobs`` (canonical string, architecture, want resources)
    in order, at most ``lookahead`` ahead of the one asked for; once every export is queued it
    measures the memory and sizes of those that want them (exports first: the timing loop waits
    for an export, never for a memory measurement)."""

    def __init__(self, runtime: Runtime, space: Space,
                 jobs: list[tuple[str, Architecture, bool]], lookahead: int, start_method: str):
        self.runtime, self.space, self.jobs, self.lookahead = runtime, space, jobs, lookahead
        self._position = {text: i for i, (text, _, _) in enumerate(jobs)}
        self._futures: dict[str, Future] = {}
        self._resource_futures: dict[str, Future] = {}
        self._next = 0
        self._end = len(jobs)  # jobs[_end:] were exported by the timing process (steal)
        self._pool = ProcessPoolExecutor(1, mp_context=multiprocessing.get_context(start_method),
                                         initializer=_worker_init, initargs=(os.getpid(),))
        self._fill(0)

    def _fill(self, position: int) -> None:
        while self._next < self._end and self._next <= position + self.lookahead:
            text, arch, _ = self.jobs[self._next]
            self._futures[text] = self._pool.submit(_export, self.runtime, self.space, arch)
            self._next += 1
            if self._next == self._end:
                self._queue_resources()

    def _queue_resources(self) -> None:
        for key, todo, want in self.jobs:
            if want:
                self._resource_futures[key] = self._pool.submit(
                    _resources, self.runtime, self.space, todo)

    def ready(self, text: str, advance: bool = False) -> bool:
        """Whether ``text``'s export is done (or failed), without waiting; ``advance``: ``text``
        is the next to time, so keep the worker ``lookahead`` ahead of it."""
        position = self._position.get(text)
        if position is None or position >= self._end:
            return True
        if advance:
            self._fill(position)
        future = self._futures.get(text)
        if future is None:  # waited for already
            return position < self._next
        return future.done()

    def steal(self) -> bool:
        """Export the last job not yet given to the worker here, in the timing process (which
        would otherwise wait for the worker); False when every job is the worker's already."""
        if self._end <= self._next:
            return False
        self._end -= 1
        with contextlib.suppress(Exception):  # its timing exports again and records the failure
            _export(self.runtime, self.space, self.jobs[self._end][1])
        if self._next == self._end:
            self._queue_resources()
        return True

    def wait(self, text: str) -> None:
        """Wait until ``text`` is exported (or failed to be: the caller's own export then
        fails again and records it, as it always did)."""
        position = self._position.get(text)
        if position is None or position >= self._end:
            return
        self._fill(position)
        future = self._futures.pop(text, None)
        if future is not None:
            with contextlib.suppress(Exception):  # an export failure, a broken worker
                future.result()

    def resources(self) -> dict[str, Resources]:
        """Wait for the memory and sizes measured; those that could not be are left out."""
        self._fill(len(self.jobs))
        out = {}
        for text, future in self._resource_futures.items():
            with contextlib.suppress(Exception):
                out[text] = future.result()
        self._resource_futures.clear()
        return out

    def __enter__(self) -> _Prefetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        for f in [*self._futures.values(), *self._resource_futures.values()]:
            f.cancel()
        self._pool.shutdown(wait=True, cancel_futures=True)


def aggregate(rows: pd.DataFrame, paired: bool) -> tuple[pd.DataFrame, list[dict[str, Any]]]:
    """One row per architecture from per-round measurements.

    Paired: every round's statistics are scaled by (reference level / that round's reference
    median), the reference level being the median of all the profile's reference medians; the
    row is the round with the median scaled latency. Unpaired: the round with the smallest median.
    ``round_spread`` is max/min - 1 of the (scaled) round medians.
    """
    ok = rows[rows["status"] == "ok"].copy()
    failed_rows = rows[(rows["status"] == "failed") & ~rows["arch"].isin(ok["arch"])]
    failed = [{"index": None if pd.isna(r.idx) else int(r.idx), "arch": r.arch, "error": r.error}
              for r in failed_rows.drop_duplicates("arch").itertuples()]
    if ok.empty:
        return pd.DataFrame(columns=["index", "arch", "latency_ms"]), failed
    if paired and ok["ref_ms"].notna().all():
        scale = float(ok["ref_ms"].median()) / ok["ref_ms"]
        for col in ("median_ms", "p10_ms", "p90_ms", "iqr_ms"):
            ok[col] = ok[col] * scale
    ok = ok.sort_values(["arch", "median_ms"])
    groups = ok.groupby("arch", sort=False)
    pick = (groups.cumcount() == ((groups["median_ms"].transform("size") - 1) // 2)
            if paired else groups.cumcount() == 0)
    best = ok[pick.to_numpy()].set_index("arch")
    best = best.join(groups["median_ms"].agg(["min", "max", "count"]))
    frame = pd.DataFrame({
        "index": best["idx"].astype("Int64"),
        "arch": best.index.to_numpy(),
        "latency_ms": best["median_ms"],
        "p10_ms": best["p10_ms"], "p90_ms": best["p90_ms"], "iqr_ms": best["iqr_ms"],
        "cv": best["cv"], "n_runs": best["n"].astype(int), "rounds": best["count"].astype(int),
        "round_spread": best["max"] / best["min"] - 1.0,
    }).reset_index(drop=True)
    frame = frame.sort_values(["index", "arch"], na_position="last").reset_index(drop=True)
    return frame, failed


def _precision(frame: pd.DataFrame, refs: pd.DataFrame,
               protocol: MeasurementProtocol) -> dict[str, Any]:
    out: dict[str, Any] = {"target_ci_rel": protocol.target_precision}
    if len(frame):
        multi = frame[frame["rounds"] > 1]["round_spread"]
        out["median_round_spread"] = float(multi.median()) if len(multi) else None
        out["p90_round_spread"] = float(multi.quantile(0.9)) if len(multi) else None
    if len(refs):
        r = refs["median_ms"].to_numpy()
        out["reference_level_ms"] = float(np.median(r))
        drift = float(np.max(np.abs(r / np.median(r) - 1.0)))
        out["reference"] = {
            "measurements": len(r), "median_ms": float(np.median(r)),
            "min_ms": float(r.min()), "max_ms": float(r.max()), "max_drift": drift,
            "drift_flagged": bool(drift > protocol.drift_threshold),
        }
    return out
