"""A remote profile end to end: connect to the agents, group them by device, one farm each.

:func:`connect` asks every agent for ``/v1/info``; :func:`profile_remote` runs one
:class:`~hwnas.latency.farm.scheduler.FarmProfiler` per device (a farm: the agents reporting that
device name), each into its own folder, all at the same time.
"""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path

from hwnas.search import Space

from ..profile import Target
from ..protocol import MeasurementProtocol
from ..runtime import Runtime
from ..store import ProfileLock
from ..table import DeviceTable
from .client import (
    WIRE_PROTOCOL,
    AgentAuthError,
    AgentClient,
    AgentDownError,
    AgentInfo,
    AgentRejectedError,
    FarmError,
)
from .scheduler import FarmProfiler, FarmUnavailableError, Progress, _backoff, _warn, backend_for

__all__ = ["Farms", "RemoteProfile", "connect", "profile_remote"]

Farms = dict[str, list[tuple[AgentClient, AgentInfo]]]


def connect(urls: Sequence[str], token: str, backend: str, deadline: float = 300.0,
            connect_timeout: float = 5.0) -> tuple[Farms, list[AgentClient]]:
    """Ask every agent for ``/v1/info`` and group those that can measure ``backend`` by device.

    An agent that refuses the token, speaks another protocol or lacks the backend is left out
    with a warning. When none answers, all are asked again with back-off until ``deadline``
    seconds have passed.

    Returns:
        the farms (device -> its agents), and the agents that did not answer yet (a board still
        booting): a single farm takes them in when they answer.

    Raises:
        FarmError: every agent refused (the reasons, one per agent).
        FarmUnavailableError: none answered within the deadline.
    """
    clients = {u: AgentClient(u, token, connect_timeout=connect_timeout) for u in urls}
    if len(clients) < len(urls):
        raise FarmError("--remote names the same agent twice; give each agent once")
    start, attempt, told = time.monotonic(), 0, -1.0
    while True:
        with ThreadPoolExecutor(max_workers=min(16, len(clients))) as pool:
            answers = dict(zip(clients, pool.map(_probe, clients.values()), strict=True))
        good = {u: a for u, a in answers.items() if isinstance(a, AgentInfo)}
        refused = {u: a for u, a in answers.items()
                   if isinstance(a, AgentAuthError | AgentRejectedError)}
        down = {u: a for u, a in answers.items() if isinstance(a, AgentDownError)}
        usable: dict[str, AgentInfo] = {}
        for u, info in good.items():
            if info.protocol != WIRE_PROTOCOL:
                refused[u] = AgentRejectedError(u, f"speaks wire protocol {info.protocol}; this "
                                                f"hwnas speaks {WIRE_PROTOCOL}: install the "
                                                "same hwnas version on both sides")
            elif backend not in info.backends:
                refused[u] = AgentRejectedError(u, f"has no backend {backend} (it has "
                                                f"{', '.join(info.backends) or 'none'})")
            else:
                usable[u] = info
        if usable or not down:
            break
        waited = time.monotonic() - start
        if waited >= deadline:
            for c in clients.values():
                c.close()
            raise FarmUnavailableError(
                f"no agent answered in {waited:.0f} s ("
                + "; ".join(f"{e.url}: {e.message}" for e in [*down.values(), *refused.values()])
                + "); check that `hwnas agent serve` runs there and the address is right")
        # waiting is what a board still booting needs, but a wrong address looks the same: say
        # so at once and then every 30 s, so that a silent wait is never mistaken for a hang
        if told < 0 or waited - told >= 30:
            _warn(f"no agent answers yet after {waited:.0f} s ("
                  + "; ".join(f"{e.url}: {e.message}" for e in down.values())
                  + f"); asking again with back-off for up to {deadline:.0f} s "
                  "(--remote-deadline)")
            told = waited
        attempt += 1
        time.sleep(min(_backoff(attempt), max(0.0, deadline - waited)))
    if usable:  # with none usable, the error below names every refusal once
        for u, e in refused.items():
            _warn(f"agent {u} left out: {e.message}")
    for u, e in down.items():
        _warn(f"agent {u} does not answer ({e.message}); profiling goes on without it until "
              "it does")
    if not usable:
        for c in clients.values():
            c.close()
        raise FarmError("no agent can profile: "
                        + "; ".join(f"{e.url}: {e.message}" for e in refused.values()))
    for u in refused:
        clients[u].close()
    farms: Farms = {}
    for u, info in sorted(usable.items()):
        farms.setdefault(info.device, []).append((clients[u], info))
    return farms, [clients[u] for u in sorted(down)]


def _probe(client: AgentClient) -> AgentInfo | Exception:
    try:
        return client.info()
    except (AgentAuthError, AgentDownError, AgentRejectedError) as e:
        return e


@dataclass
class RemoteProfile:
    """One device's result of :func:`profile_remote`."""

    device: str
    out_dir: Path
    table: DeviceTable
    agents: list[str]


_SAFE = re.compile(r"[^A-Za-z0-9._-]")


def _folder_name(device: str) -> str:
    name = _SAFE.sub("_", device).strip(".") or "device"
    return name[:100]


def profile_remote(space: Space, runtime: Runtime, protocol: MeasurementProtocol,
                   out_dir: str | Path, name: str, urls: Sequence[str], token: str,
                   targets: Sequence[Target], table: str = "request",
                   progress: Progress | None = None, deadline: float = 300.0,
                   timeout_s: float = 120.0, max_backoff: float = 15.0) -> list[RemoteProfile]:
    """Profile ``targets`` through the agents at ``urls``: one table per device.

    Agents reporting one device name form a farm and write ``out_dir``; when the agents are of
    several devices, each device gets ``out_dir/<device>/`` (its name made safe for a path) and
    the devices are profiled at the same time.

    Raises:
        FarmError, FarmUnavailableError: see :func:`connect` and :meth:`FarmProfiler.run`.
        LockedError: another profile writes to one of the folders.
    """
    backend = backend_for(runtime.name)
    farms, pending = connect(urls, token, backend, deadline)
    out_dir = Path(out_dir)
    stop = threading.Event()
    several = len(farms) > 1
    if several and pending:  # a late agent's device is unknown: which farm it joins, too
        _warn("with agents of several devices, agents that do not answer at the start are left "
              "out: " + ", ".join(c.url for c in pending))
        for c in pending:
            c.close()
        pending = []
    profilers = [FarmProfiler(space, runtime, protocol,
                              out_dir / _folder_name(device) if several else out_dir,
                              device if several else name, agents, table=table,
                              deadline=deadline, timeout_s=timeout_s, stop=stop,
                              pending=pending, max_backoff=max_backoff)
                 for device, agents in farms.items()]
    try:
        with ExitStack() as locks:
            for p in profilers:
                locks.enter_context(ProfileLock(p.out_dir))
            if not several:
                tables = [profilers[0].run(targets, progress)]
            else:
                tables = _run_together(profilers, targets, progress, stop)
    finally:
        for agents in farms.values():
            for client, _ in agents:
                client.close()
        for c in pending:
            c.close()
    return [RemoteProfile(d, p.out_dir, t, [i.url for _, i in farms[d]])
            for d, p, t in zip(farms, profilers, tables, strict=True)]


def _run_together(profilers: list[FarmProfiler], targets: Sequence[Target],
                  progress: Progress | None, stop: threading.Event) -> list[DeviceTable]:
    """Every device's farm at once (they share nothing but the host); progress summed."""
    lock = threading.Lock()
    state = {id(p): (0, 0) for p in profilers}

    def report(p: FarmProfiler) -> Progress:
        def advance(done: int, total: int, what: str) -> None:
            with lock:
                state[id(p)] = (done, total)
                if progress:
                    progress(sum(d for d, _ in state.values()),
                             sum(t for _, t in state.values()), what)
        return advance

    with ThreadPoolExecutor(max_workers=len(profilers)) as pool:
        futures = [pool.submit(p.run, targets, report(p)) for p in profilers]
        try:
            errors = [f.exception() for f in futures]
        except KeyboardInterrupt:
            stop.set()
            raise
    for e in errors:  # every device ran to its end; the first failure is reported
        if e is not None:
            raise e
    return [f.result() for f in futures]
