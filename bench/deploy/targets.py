"""Where a deploy measures: a *target* names a device and a runtime and measures architectures.

``--device`` is ``RUNTIME`` or ``SCHEME:REST``. The one scheme built in is ``local``: a runtime of
this machine (``ort-cpu``, ``local:ort-cpu-int8``...), measured by :class:`hwnas.latency.Profiler`
with the paired-reference protocol into a resumable profile store (SQLite, one transaction per
measurement), the same store ``hwnas profile`` writes. A farm of remote device agents plugs in as
one more scheme, without touching the deploy::

    class FarmTarget:                      # implements DeployTarget
        def __init__(self, rest, options): ...
        def measure(self, space, targets, progress=None): ...   # -> DeviceTable
        ...
    register_target("remote", FarmTarget)  # --device remote:URL

A target returns a :class:`hwnas.latency.DeviceTable` (the flat latency schema: ``arch``,
``latency_ms``, ``p10_ms``, ``p90_ms``..., ``meta["failed"]``), so what is measured where is one
shape for the deploy.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

from hwnas.latency import (
    DeviceTable,
    MeasurementProtocol,
    Profiler,
    RuntimeConfig,
    StoreError,
    Target,
    describe_environment,
    get_runtime,
    list_runtimes,
)
from hwnas.latency.store import ProfileLock, ProfileStore
from hwnas.search import Architecture, Space, UnknownNameError

from ..devices import results_dir
from .candidates import DeployError

__all__ = ["DeployTarget", "TargetOptions", "LocalTarget", "RemoteTarget", "register_target",
           "resolve_target", "list_targets"]

#: progress(done, total, last architecture)
Progress = Callable[[int, int, str], None]


@dataclass(frozen=True)
class TargetOptions:
    """How a target measures: the runtime's session options, the protocol, and the store.

    Attributes:
        config: batch, threads, graph optimisation.
        protocol: warm-up, repeats, paired reference, rounds.
        store: the profile folder the measurements are kept in (``None``: the target's default,
            ``results/devices/local-RUNTIME`` for a local runtime).
    """

    config: RuntimeConfig = RuntimeConfig()
    protocol: MeasurementProtocol = MeasurementProtocol()
    store: Path | None = None
    #: device agents (``hwnas agent serve``) that measure instead of this machine; with more
    #: than one agent of a device, a farm
    remote: tuple[str, ...] = ()
    #: the agents' bearer token (``None``: none given; the remote target reads
    #: ``$HWNAS_AGENT_TOKEN``)
    token_file: Path | None = None
    #: seconds without an answer from any agent before the measurement stops (resumable)
    remote_deadline: float = 300.0


class DeployTarget(Protocol):
    """What a deploy asks of a device: measure, say what it is, and give the deployable file."""

    #: ``scheme:rest`` as the user would write it, e.g. ``local:ort-cpu``
    name: str
    #: numeric precision of what is measured (``fp32``, ``int8``)
    precision: str

    def check(self) -> None:
        """Raise :class:`DeployError` (one line) when the target cannot measure now."""

    def measure(self, space: Space, targets: Sequence[Target],
                progress: Progress | None = None) -> DeviceTable:
        """Latency of every target (measured now or read back from the store); failures are
        listed in ``meta["failed"]``, never raised one by one."""

    def model_file(self, space: Space, arch: Architecture) -> Path:
        """The ONNX file that is deployed (and, for ONNX runtimes, the one measured)."""

    def describe(self) -> dict[str, Any]:
        """Runtime, precision, protocol, store and environment, for ``deploy.json``."""

    # optional: ``stored_rows() -> int``, the measurements already kept, so a deploy can say
    # how many it added (a rerun that measured nothing adds none)


class LocalTarget:
    """A runtime of this machine, measured by :class:`hwnas.latency.Profiler` into a store.

    Args:
        runtime: a runtime name of :func:`hwnas.latency.list_runtimes`.
        options: session options, protocol and store folder.

    Raises:
        UnknownNameError: an unknown runtime (listing the valid ones).
    """

    def __init__(self, runtime: str, options: TargetOptions | None = None):
        self.options = options or TargetOptions()
        self.runtime = get_runtime(runtime, self.options.config)
        self.name = f"local:{runtime}"
        self.precision = self.runtime.precision
        self.store = Path(self.options.store or results_dir() / "devices" / f"local-{runtime}")

    def check(self) -> None:
        ok, why = self.runtime.available()
        if not ok:
            raise DeployError(f"runtime {self.runtime.name} is not available here: {why}; "
                              f"available: {', '.join(_available())}")

    def _profiler(self, space: Space) -> Profiler:
        # "request": the store folder's latency_ms.csv shows this deploy's candidates, as
        # hwnas profile's shows its own request; every measurement stays in the store
        return Profiler(space, self.runtime, self.options.protocol, self.store,
                        f"local-{self.runtime.name}", table="request")

    def measure(self, space: Space, targets: Sequence[Target],
                progress: Progress | None = None) -> DeviceTable:
        self.check()
        profiler = self._profiler(space)
        self._check_settings(profiler)
        with ProfileLock(self.store):
            return profiler.run(list(targets), progress=progress)

    def _check_settings(self, profiler: Profiler) -> None:
        """Refuse a store made with other settings before anything runs, naming ``--store``
        (the store's own message names ``hwnas profile``'s ``--out``)."""
        if not (self.store / ProfileStore.FILENAME).is_file():
            return
        with ProfileStore(self.store) as store:
            stored = store.settings()
        want = json.loads(json.dumps(profiler.settings()))
        diff = [k for k, v in want.items() if k in stored and stored[k] != v]
        if diff:
            raise StoreError(f"{self.store} holds measurements made with other settings "
                             f"({', '.join(diff)} differ); rerun with the options it was made "
                             "with, or choose another --store")

    def model_file(self, space: Space, arch: Architecture) -> Path:
        from hwnas.latency import export_onnx
        from hwnas.latency.quantize import quantize_onnx

        if self.precision == "int8":  # the file the int8 runtimes run: the calibrated QDQ model
            return quantize_onnx(space, arch, self.options.config.batch)
        return export_onnx(space, arch, self.options.config.batch)

    def stored_rows(self) -> int:
        """Measurement rows in the store (0 when there is none yet)."""
        if not (self.store / ProfileStore.FILENAME).is_file():
            return 0
        with ProfileStore(self.store) as store:
            return len(store.measurements())

    def describe(self) -> dict[str, Any]:
        info = self.runtime.describe()
        return {"device": self.name, "runtime": self.runtime.name, "precision": self.precision,
                "runtime_settings": info, "protocol": asdict(self.options.protocol),
                "store": str(self.store), "environment": describe_environment()}


class RemoteTarget(LocalTarget):
    """A runtime measured by device agents over the network (``--remote URL``), one device.

    The host exports (and for int8 runtimes quantizes) each network, the agents of one device
    measure it with the same protocol as a local profile (see :mod:`hwnas.latency.farm`), and
    the measurements are kept in the same resumable store as ``hwnas profile --remote`` writes.

    Raises:
        UnknownNameError: an unknown runtime.
        FarmError: no token, a bad URL, a runtime agents cannot run (torch-*).
    """

    def __init__(self, runtime: str, options: TargetOptions):
        from hwnas.latency.farm import backend_for, check_url, read_token

        super().__init__(runtime, options)
        self.backend = backend_for(runtime)  # torch-* runtimes are refused here, in one line
        self.urls = tuple(check_url(u) for u in options.remote)
        self.token = read_token(options.token_file)
        self.name = f"remote:{runtime}"
        self.store = Path(options.store or results_dir() / "devices" / f"remote-{runtime}")
        self._agents: dict[str, Any] = {}

    def check(self) -> None:
        """The agents are asked when measuring (with back-off); nothing runs locally."""

    def _check_settings(self, profiler: Profiler) -> None:
        """A farm's settings name the agents' machine, known only once they answer: the store
        itself refuses a mismatch when the profile binds its settings."""

    def measure(self, space: Space, targets: Sequence[Target],
                progress: Progress | None = None) -> DeviceTable:
        from hwnas.latency.farm import profile_remote

        results = profile_remote(space, self.runtime, self.options.protocol, self.store,
                                 f"remote-{self.runtime.name}", self.urls, self.token,
                                 list(targets), table="request", progress=progress,
                                 deadline=self.options.remote_deadline)
        if len(results) > 1:
            raise DeployError("a deploy measures one device, but the agents report "
                              f"{len(results)}: {', '.join(r.device for r in results)} (their "
                              f"tables are in {self.store}); give --remote agents of one device")
        self._agents = {"device": results[0].device, "agents": results[0].agents,
                        "environment": results[0].table.meta.get("environment")}
        return results[0].table

    def describe(self) -> dict[str, Any]:
        info = super().describe()
        env = self._agents.get("environment") or {}
        return {**info, "device": f"{self.name} ({self._agents.get('device', '?')})",
                "agents": self._agents.get("agents", list(self.urls)), "environment": env}


def _available() -> list[str]:
    return [n for n in list_runtimes() if get_runtime(n).available()[0]]


#: scheme -> factory(rest of the device string, options)
_TARGETS: dict[str, Callable[[str, TargetOptions], DeployTarget]] = {
    "local": lambda rest, options: LocalTarget(rest, options),
}


def register_target(scheme: str, factory: Callable[[str, TargetOptions], DeployTarget]) -> None:
    """Make ``--device SCHEME:REST`` build ``factory(REST, options)`` (e.g. a remote farm)."""
    _TARGETS[scheme] = factory


def list_targets() -> list[str]:
    """Every ``--device`` form: the local runtimes (bare, or as ``local:RUNTIME``) and the other
    registered schemes."""
    return [*list_runtimes(), "local:RUNTIME", *(f"{s}:..." for s in _TARGETS if s != "local")]


def resolve_target(device: str, options: TargetOptions | None = None) -> DeployTarget:
    """The target ``device`` names: ``RUNTIME``, ``local:RUNTIME`` or ``SCHEME:REST``.

    Raises:
        UnknownNameError: an unknown runtime or scheme (listing the valid ones).
    """
    options = options or TargetOptions()
    if options.remote:  # --remote: the device names the runtime the agents run
        runtime = device.removeprefix("local:")
        if runtime not in list_runtimes():
            raise UnknownNameError("runtime", device, list_runtimes())
        return RemoteTarget(runtime, options)
    scheme, sep, rest = device.partition(":")
    if not sep:
        scheme, rest = "local", device
    if scheme not in _TARGETS:
        raise UnknownNameError("device", device, list_targets())
    if scheme == "local" and rest not in list_runtimes():
        raise UnknownNameError("device", device, list_targets(),
                               also=f"available here: {', '.join(_available())}")
    return _TARGETS[scheme](rest, options)
