"""Profiling through device agents: one agent, or a farm of agents of one device, into one store.

The host exports every architecture to ONNX (the INT8 runtimes: the same QDQ model a local
profile measures), on a thread of its own ahead of the agents while they measure. It sends its
sha256 to an agent (the bytes only when the agent answers that it does not hold them) with the
paired reference model, and records the agent's measurement in the
profile store exactly as a local profile records its own, plus which agent made it. The table
(``latency_ms.csv``, ``meta.json``) is written by the local :class:`~hwnas.latency.Profiler`'s own
code, so a remote table has the local table's format.

A *farm* is several agents reporting the same ``device`` in ``/v1/info``. One worker thread per
agent pulls architectures from a shared queue — the pull model of a work queue, so a fast or
lightly loaded agent simply takes more — and each agent measures one model at a time. Only the
coordinating thread writes to the store (SQLite connections are per thread; one writer also means
a row can never be recorded twice). A round ends when every architecture of it is recorded;
rounds stay separated in time as in a local profile.

Memory and sizes: once every round is timed, a last pass asks the agents for the peak memory of
each architecture timed (the agent's own measurement, :mod:`hwnas.latency.memory`, for its CPU
backends; the request times one call, which is not recorded). Not during the rounds: a timing
that followed a memory measurement on the agent was about 5% slower
(results/benchmarks/agent_agreement_quiet_r4.json). The ONNX file and weight bytes are counted
on the host from the very file it sends.

Faults: a lost connection (agent killed, restarted, unreachable) puts the architecture back on
the queue for any agent and sends that agent's worker into exponential back-off with jitter
(the usual remedy against retry storms; e.g. AWS Architecture Blog, "Exponential Backoff and
Jitter", 2015) until ``/v1/info`` answers again. A restarted agent has an empty model cache, so
its first measurement re-uploads (404 -> PUT). When no agent has answered for longer than the
deadline the profile stops with :class:`FarmUnavailableError`; everything recorded stays in the
store and a rerun resumes. An agent's ``status: failed`` (its watchdog, a crashed runtime) is a
failed row with the agent's reason, as a local failure is. A 401 drops that agent.
"""

from __future__ import annotations

import contextlib
import queue
import random
import threading
import time
import warnings
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.search import Space

from ..memory import initializer_bytes, onnx_file_bytes
from ..profile import Profiler, Target
from ..protocol import Measurement, MeasurementProtocol
from ..runtime import Runtime
from ..store import ProfileStore
from ..table import DeviceTable
from .client import (
    WIRE_PROTOCOL,
    AgentAuthError,
    AgentClient,
    AgentDownError,
    AgentInfo,
    AgentRejectedError,
    FarmError,
    ModelFile,
)

__all__ = ["BACKENDS", "FarmProfiler", "FarmUnavailableError", "backend_for"]

#: hwnas runtime -> agent backend (an INT8 runtime is its FP32 backend given the QDQ model)
BACKENDS = {"ort-cpu": "ort-cpu", "ort-cpu-int8": "ort-cpu", "ort-cuda": "ort-cuda",
            "ov-cpu": "ov-cpu", "ov-cpu-int8": "ov-cpu"}

#: progress(done, total, last architecture)
Progress = Callable[[int, int, str], None]

#: the memory pass's request: one call (its timing is not recorded), no reference
_MEMORY_PROTOCOL = MeasurementProtocol(warmup_runs=0, warmup_seconds=0.0, min_runs=1,
                                       max_runs=1, rounds=1, paired_reference=False)

# torch.onnx.export is not thread-safe; exports are quick next to a measurement, so one at a time
_EXPORT_LOCK = threading.Lock()


class FarmUnavailableError(FarmError):
    """No agent answered for longer than the deadline (the store keeps what was measured)."""


def backend_for(runtime_name: str) -> str:
    """The agent backend that measures ``runtime_name``.

    Raises:
        FarmError: a runtime agents cannot run (the torch runtimes: agents have no torch).
    """
    if runtime_name not in BACKENDS:
        raise FarmError(f"--runtime {runtime_name} cannot run on an agent (agents run ONNX "
                        f"models, without torch); valid with --remote: {', '.join(BACKENDS)}")
    return BACKENDS[runtime_name]


def _warn(message: str) -> None:
    warnings.warn(message, RuntimeWarning, stacklevel=3)


def _backoff(attempt: int, base: float = 0.5, cap: float = 15.0) -> float:
    """Exponential back-off with "equal jitter": half fixed, half random."""
    delay = min(cap, base * 2 ** max(0, attempt - 1))
    return delay / 2 + random.uniform(0, delay / 2)


def _measurement(d: dict[str, Any]) -> Measurement:
    """A :class:`Measurement` from the wire's measurement object."""
    return Measurement(
        median_ms=float(d["median_ms"]), p10_ms=float(d["p10_ms"]), p90_ms=float(d["p90_ms"]),
        iqr_ms=float(d["iqr_ms"]), cv=float(d["cv"]), n=int(d["n"]), ci_rel=float(d["ci_rel"]),
        converged=bool(d["converged"]),
        samples_ms=np.asarray(d.get("samples", []), dtype=np.float64))


@dataclass
class _Item:
    target: Target
    text: str
    round_: int
    lost: int = 0
    #: the last pass: only the peak memory of an architecture already timed
    memory_only: bool = False


@dataclass
class _Agent:
    client: AgentClient
    #: None until a late agent first answers
    info: AgentInfo | None
    last_answer: float = field(default_factory=time.monotonic)
    down: bool = False
    reason: str = ""
    dropped: bool = False
    measured: int = 0

    @property
    def url(self) -> str:
        return self.client.url


class FarmProfiler(Profiler):
    """A :class:`Profiler` whose measurements are made by agents of one device.

    Args:
        space, runtime, protocol, out_dir, name, table: as for :class:`Profiler`; ``runtime``
            is the hwnas runtime whose model and settings are sent (it need not run here).
        agents: ``(client, info)`` of every agent of the device (see :func:`connect`).
        pending: agents that did not answer yet; each joins the farm when it answers as this
            device with the backend.
        deadline: seconds without an answer from any agent before the profile stops.
        timeout_s: the agent's watchdog per measurement (capped by the agent).
        max_lost: connections lost while measuring one architecture before it is recorded as
            failed (a model that brings agents down must not stall the profile).
        stop: set by the caller to end the profile early (as after Ctrl-C).
        max_backoff: the longest wait between two tries of an agent that went away.

    Example:
        >>> farms = connect(["http://127.0.0.1:8765"], token, "ort-cpu")       # doctest: +SKIP
        >>> FarmProfiler(space, get_runtime("ort-cpu"), protocol, "out", "pi4",
        ...              farms["pi4"]).run(targets)                              # doctest: +SKIP
    """

    MAX_LOST = 5

    def __init__(self, space: Space, runtime: Runtime, protocol: MeasurementProtocol,
                 out_dir: str | Path, name: str,
                 agents: Sequence[tuple[AgentClient, AgentInfo]], table: str = "store",
                 deadline: float = 300.0, timeout_s: float = 120.0, max_lost: int = MAX_LOST,
                 stop: threading.Event | None = None, pending: Sequence[AgentClient] = (),
                 max_backoff: float = 15.0):
        super().__init__(space, runtime, protocol, out_dir, name, table)
        if not agents:
            raise FarmError("a farm needs at least one agent")
        self.backend = backend_for(runtime.name)
        self.device = agents[0][1].device
        self.agents = [_Agent(c, i) for c, i in agents] + [
            _Agent(c, None, down=True, reason="not answering yet") for c in pending]
        self.deadline, self.timeout_s, self.max_lost = deadline, timeout_s, max_lost
        self.max_backoff = max_backoff
        self.stop = stop or threading.Event()
        # the machine that measures is the agents' (a farm is one kind of device)
        env = dict(self.agents[0].info.environment)
        env.setdefault("cpu_model", None)
        env.setdefault("gpu", None)
        self.environment = env
        self._models: dict[str, ModelFile] = {}
        self._models_lock = threading.Lock()
        self._reference_model: ModelFile | None = None
        #: architectures whose memory and sizes the store holds (read by the workers)
        self._have_resources: set[str] = set()

    # ------------------------------------------------------------------ models
    def _model(self, text: str, target: Target) -> ModelFile:
        with self._models_lock:
            if text in self._models:
                return self._models[text]
        with _EXPORT_LOCK:
            if self.runtime.precision == "int8":
                from ..quantize import quantize_onnx

                path = quantize_onnx(self.space, target.arch, self.runtime.config.batch)
            else:
                from ..export import export_onnx

                path = export_onnx(self.space, target.arch, self.runtime.config.batch)
            model = ModelFile.of(path)
        with self._models_lock:
            self._models[text] = model
        return model

    # ------------------------------------------------------------------ the profile
    def run(self, targets: Sequence[Target], progress: Progress | None = None) -> DeviceTable:
        """Measure every target in every round not yet in the store, on the agents; write and
        return the table.

        Raises:
            FarmUnavailableError: no agent answered for longer than the deadline.
            FarmError: every agent was dropped (a wrong token).
            ExportError, QuantizeError: the reference network cannot be exported.
            StoreError: the store cannot be written or holds a profile with other settings.
        """
        targets = list({self.space.format(t.arch): t for t in targets}.values())
        texts = [self.space.format(t.arch) for t in targets]
        with ProfileStore(self.out_dir) as store:
            store.bind_settings(self.settings())
            total = len(targets) * self.protocol.rounds
            done_count = sum(len(store.done(r) & set(texts))
                             for r in range(1, self.protocol.rounds + 1))
            if progress:
                progress(done_count, total, "")
            rounds = [[_Item(t, s, r) for t, s in zip(targets, texts, strict=True)
                       if s not in store.done(r)] for r in range(1, self.protocol.rounds + 1)]
            self._have_resources = (set(store.resources()["arch"]) if self.resources
                                    else set(texts))
            if any(rounds):
                self._reference_model = self._model(
                    self.space.format(self.reference), Target(self.reference))
                self._profile(store, rounds, done_count, total, progress)
            return self.write(store, set(texts) if self.table == "request" else None)

    def _profile(self, store: ProfileStore, rounds: list[list[_Item]], done_count: int,
                 total: int, progress: Progress | None) -> None:
        work: queue.Queue[_Item] = queue.Queue()
        results: queue.Queue[tuple] = queue.Queue()
        finished = threading.Event()
        workers = [threading.Thread(target=self._worker, args=(a, work, results, finished),
                                    name=f"hwnas-agent-{a.url}", daemon=True)
                   for a in self.agents]
        firsts = {i.text: i for items in rounds for i in items}  # each architecture once
        exporter = threading.Thread(target=self._export_ahead, args=(list(firsts.values()),
                                                                      finished),
                                    name="hwnas-export-ahead", daemon=True)
        exporter.start()
        for w in workers:
            w.start()
        try:
            for items in rounds:
                done_count = self._drain(store, work, results, items, done_count, total,
                                         progress)
            if self.resources:  # the memory pass, after every timing
                rows = store.measurements()
                timed = set(rows.loc[rows["status"] == "ok", "arch"])
                memory = [_Item(i.target, i.text, 0, memory_only=True)
                          for text, i in firsts.items()
                          if text in timed and text not in self._have_resources]
                self._drain(store, work, results, memory, done_count, total, None)
        finally:
            finished.set()
            for w in workers:  # each worker notices within a poll; a stuck request is a daemon
                w.join(timeout=1.0)
            exporter.join(timeout=30.0)  # it stops after the export in progress

    def _export_ahead(self, items: list[_Item], finished: threading.Event) -> None:
        """Export the models in the order the agents take them, while they measure, so that a
        worker rarely waits for an export (the host's CPU is free while an agent measures).
        A failure is left to the worker's own export, which records it."""
        for item in items:
            if finished.is_set():
                return
            with contextlib.suppress(Exception):
                self._model(item.text, item.target)

    def _drain(self, store: ProfileStore, work: queue.Queue, results: queue.Queue,
               items: list[_Item], done_count: int, total: int,
               progress: Progress | None) -> int:
        """Queue ``items`` and record events until each is resolved; the new done count."""
        for item in items:
            work.put(item)
        outstanding = len(items)
        while outstanding:
            if self.stop.is_set():
                raise KeyboardInterrupt
            try:
                event = results.get(timeout=0.2)
            except queue.Empty:
                self._check_alive(store)
                continue
            outstanding -= self._handle(store, work, event)
            if event[0] in ("ok", "failed"):
                done_count += 1
                if progress:
                    progress(done_count, total, event[1].text)
        return done_count

    def _handle(self, store: ProfileStore, work: queue.Queue, event: tuple) -> int:
        """Record one worker event; returns how many architectures it resolved (0 or 1)."""
        kind = event[0]
        if kind == "memory":
            _, item, resources = event
            if item.text not in self._have_resources:
                store.add_resources(item.text, item.target.index, *resources)
                self._have_resources.add(item.text)
            return 1
        if kind == "ok":
            _, item, agent, m, seconds = event
            store.add(item.text, item.target.index, item.round_, m, seconds,
                      agent=agent.url if agent else None)
            return 1
        if kind == "failed":
            _, item, agent, error, seconds = event
            store.add_failure(item.text, item.target.index, item.round_, error, seconds,
                              agent=agent.url if agent else None)
            return 1
        if kind == "reference":
            _, round_, position, median = event
            store.add_reference(round_, position, median)
            return 0
        if kind == "lost":  # the agent went away during the measurement: try it elsewhere
            _, item, agent, error, counts = event
            item.lost += counts
            if item.lost >= self.max_lost and item.memory_only:
                return 1  # its latency is recorded; the table says its memory is missing
            if item.lost >= self.max_lost:
                store.add_failure(item.text, item.target.index, item.round_,
                                  f"connection to the agent lost {item.lost} times while "
                                  f"measuring (last: {error})", 0.0, agent=agent.url)
                return 1
            work.put(item)
            return 0
        if kind == "dropped":
            _, agent, error = event
            _warn(f"agent {agent.url} dropped: {error}")
            if all(a.dropped for a in self.agents):
                raise FarmError("every agent was dropped: " + "; ".join(
                    f"{a.url}: {a.reason}" for a in self.agents))
            return 0
        raise AssertionError(f"unknown worker event {kind!r}")  # pragma: no cover

    def _check_alive(self, store: ProfileStore) -> None:
        live = [a for a in self.agents if not a.dropped]
        if not live or not all(a.down for a in live):
            return
        silent = time.monotonic() - max(a.last_answer for a in live)
        if silent > self.deadline:
            measured = int((store.measurements()["status"] == "ok").sum())
            raise FarmUnavailableError(
                f"no agent of {self.name} answered for {silent:.0f} s (deadline "
                f"{self.deadline:.0f} s; " + "; ".join(f"{a.url}: {a.reason}" for a in live)
                + f"); {measured} measurements are safe in {store.path}: run the same command "
                "again to resume")

    # ------------------------------------------------------------------ one agent's worker
    def _worker(self, agent: _Agent, work: queue.Queue, results: queue.Queue,
                finished: threading.Event) -> None:
        failures = 0
        since_reference: int | None = None
        position = 0
        while not finished.is_set():
            if agent.down:  # back off, then ask /v1/info before taking work again
                failures += 1
                if finished.wait(_backoff(failures, cap=self.max_backoff)):
                    return
                try:
                    info = agent.client.info()
                except AgentDownError as e:
                    agent.reason = e.message
                    continue
                except (AgentAuthError, AgentRejectedError) as e:
                    self._drop(agent, e.message, results)
                    return
                agent.last_answer = time.monotonic()
                why = self._unfit(info)
                if why:
                    self._drop(agent, why, results)
                    return
                agent.info, agent.down, failures = info, False, 0
            try:
                item = work.get(timeout=0.2)
            except queue.Empty:
                continue
            if not item.memory_only and not self.protocol.paired_reference and (
                    since_reference is None or since_reference >= self.protocol.reference_every):
                if not self._measure_reference_on(agent, item.round_, position, results):
                    results.put(("lost", item, agent, agent.reason, 0))
                    if agent.dropped:
                        return
                    continue
                since_reference = 0
            t0 = time.perf_counter()
            try:
                model = self._model(item.text, item.target)
            except Exception as e:  # export or quantization failure: recorded, profiling goes on
                results.put(("failed", item, None, f"{type(e).__name__}: {e}",
                             time.perf_counter() - t0))
                continue
            if item.memory_only:
                self._measure_memory(agent, item, model, results)
                continue
            try:
                answer = self._measure(agent, model, self._reference_model
                                       if self.protocol.paired_reference else None)
            except (AgentAuthError, AgentDownError) as e:
                if self._lost(agent, item, e, results):
                    return
                continue
            except AgentRejectedError as e:
                results.put(("failed", item, agent, f"agent refused: {e.message}",
                             time.perf_counter() - t0))
                continue
            seconds = time.perf_counter() - t0
            position += 1
            since_reference = (since_reference or 0) + 1
            if answer["status"] == "ok":
                try:
                    m = _measurement(answer["measurement"])
                    if self.protocol.paired_reference:
                        r = _measurement(answer["reference"])
                        m.reference_ms = r.median_ms
                        m.ratio = m.median_ms / r.median_ms if r.median_ms > 0 else float("nan")
                except (KeyError, TypeError, ValueError) as e:
                    results.put(("failed", item, agent, f"unreadable measurement from the "
                                 f"agent ({type(e).__name__}: {e})", seconds))
                    continue
                agent.measured += 1
                results.put(("ok", item, agent, m, seconds))
            else:
                results.put(("failed", item, agent,
                             f"agent: {answer.get('error') or 'failed without a reason'}",
                             seconds))

    def _unfit(self, info: AgentInfo) -> str:
        """Why an agent that (re)appeared cannot take part, or ``""``."""
        if info.device != self.device:
            return f"it says it is device {info.device!r}, not {self.device!r}"
        if info.protocol != WIRE_PROTOCOL:
            return f"it speaks wire protocol {info.protocol}, not {WIRE_PROTOCOL}"
        if self.backend not in info.backends:
            return f"it has no backend {self.backend}"
        return ""

    @staticmethod
    def _resources(model: ModelFile, memory: Any) -> tuple:
        """``(memory_mb, onnx_bytes, weight_bytes, error)`` of a measured model: the agent's
        peak memory (or why it has none), the sizes of the file sent."""
        memory_mb, error = None, None
        if isinstance(memory, dict) and isinstance(memory.get("memory_mb"), int | float):
            memory_mb = float(memory["memory_mb"])
        else:
            error = (str(memory.get("error") or "no memory in the agent's answer")
                     if isinstance(memory, dict) else "the agent measured no memory (an agent "
                     "older than memory measurement)")
            error = f"agent: {error}"[:300]
        try:
            return memory_mb, onnx_file_bytes(model.path), initializer_bytes(model.path), error
        except Exception as e:  # noqa: BLE001  (the file went away: sizes left out, said why)
            return memory_mb, None, None, f"{error or ''} sizes: {type(e).__name__}: {e}".strip()

    def _lost(self, agent: _Agent, item: _Item, e: AgentAuthError | AgentDownError,
              results: queue.Queue) -> bool:
        """A request that got no answer: ``item`` goes back on the queue; a 401 drops the
        agent (True: its worker ends), else the agent is down until it answers again."""
        if isinstance(e, AgentAuthError):
            results.put(("lost", item, agent, e.message, 0))
            self._drop(agent, e.message, results)
            return True
        agent.down, agent.reason = True, e.message
        results.put(("lost", item, agent, e.message, 1))
        return False

    def _measure_memory(self, agent: _Agent, item: _Item, model: ModelFile,
                        results: queue.Queue) -> None:
        """The memory pass: one untimed-for-the-record call with ``memory`` asked."""
        try:
            answer = self._measure(agent, model, None, memory=True, protocol=_MEMORY_PROTOCOL)
        except (AgentAuthError, AgentDownError) as e:
            self._lost(agent, item, e, results)
            return
        except AgentRejectedError as e:
            answer = {"memory": {"error": f"agent refused: {e.message}"}}
        memory = answer.get("memory") if answer.get("status", "ok") == "ok" else {
            "error": answer.get("error") or "failed without a reason"}
        results.put(("memory", item, self._resources(model, memory)))

    def _measure(self, agent: _Agent, model: ModelFile, reference: ModelFile | None,
                 memory: bool = False,
                 protocol: MeasurementProtocol | None = None) -> dict[str, Any]:
        try:
            answer = agent.client.measure(model, reference, self.backend,
                                          asdict(self.runtime.config),
                                          (protocol or self.protocol).to_dict(),
                                          self.timeout_s, memory=memory)
        except (AgentAuthError, AgentRejectedError):
            agent.last_answer = time.monotonic()  # a refusal is an answer too
            raise
        agent.last_answer = time.monotonic()
        return answer

    def _measure_reference_on(self, agent: _Agent, round_: int, position: int,
                              results: queue.Queue) -> bool:
        """Unpaired protocol: time the reference alone; ``False`` if the agent went away."""
        try:
            answer = self._measure(agent, self._reference_model, None)
        except AgentAuthError as e:
            self._drop(agent, e.message, results)
            return False
        except AgentDownError as e:
            agent.down, agent.reason = True, e.message
            return False
        except AgentRejectedError:  # a reference that cannot run leaves no drift record
            return True
        if answer["status"] == "ok":
            results.put(("reference", round_, position,
                         float(answer["measurement"]["median_ms"])))
        return True

    def _drop(self, agent: _Agent, reason: str, results: queue.Queue) -> None:
        agent.dropped, agent.reason = True, reason
        results.put(("dropped", agent, reason))

    # ------------------------------------------------------------------ the table
    def write(self, store: ProfileStore, only: set[str] | None = None) -> DeviceTable:
        """The local table (:meth:`Profiler.write`), its metadata naming the agents."""
        table = super().write(store, only)
        rows = store.measurements()
        if only is not None:
            rows = rows[rows["arch"].isin(only)]
        ok = rows[rows["status"] == "ok"]
        by_agent = ok.groupby(ok["agent"].fillna("this host")).size()
        table.meta["remote"] = {
            "wire_protocol": WIRE_PROTOCOL,
            "backend": self.backend,
            "agents": [{**a.info.describe(), "dropped": a.dropped} for a in self.agents
                       if a.info is not None],
            # measurements (architecture x round) of the table, by the agent that made them
            "measurements_by_agent": {str(k): int(v) for k, v in by_agent.items()},
        }
        table.write(self.out_dir)
        return table
