"""Memory, size and energy as metric sources, computed live for any architecture of any space.

- ``memory``: peak memory of an ONNX Runtime CPU session, creation + first inference (MiB),
  measured in a forked torch-free process (:mod:`hwnas.latency.memory`)
- ``size``: the ONNX file the runtime reads (MiB)
- ``size:weights``: its weight bytes at the runtime's precision (MiB; FP32 4 bytes a parameter)
- ``energy``: energy per inference (mJ) from the machine's RAPL or NVML counter; where there is
  none, creating the source fails with one line saying what was looked for

Memory and sizes are measured once per architecture and kept, like live latency, in a profile
store (``results/devices/live-resources-RUNTIME-SPACE/profile.sqlite``, its ``resource`` table),
so a repeated or later search reads them back.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from hwnas.search import Architecture, HwnasError, MetricSource, Space, UnknownNameError

from .registry import register_source

# hwnas.latency (torch, ONNX Runtime) is imported when a source is made, not with hwnas.bench

__all__ = ["ResourceOptions", "EnergyOptions", "LiveResource", "LiveEnergy", "RESOURCE_METRICS"]

#: metric -> (resource column, unit, divisor)
RESOURCE_METRICS = {"memory": ("memory_mb", "MiB", 1.0),
                    "size": ("onnx_bytes", "MiB", 2.0**20),
                    "size:weights": ("weight_bytes", "MiB", 2.0**20)}


def _check_runtime(name: str) -> None:
    from hwnas.latency import list_runtimes

    if name not in list_runtimes():
        raise UnknownNameError("runtime", name, list_runtimes())


def _results_dir() -> Path:
    # the same rule as hwnas.bench.devices.results_dir (imported lazily there to avoid a cycle)
    return Path(os.environ.get("HWNAS_RESULTS") or "results")


@dataclass(frozen=True)
class ResourceOptions:
    """``runtime``: whose model file is measured: ``ort-cpu`` (FP32), ``ort-cpu-int8`` (the INT8
    QDQ model), or for sizes any runtime that reads ONNX (``ov-cpu``...); ``out``: the folder of
    the store that keeps the values (default ``results/devices/live-resources-RUNTIME-SPACE``)."""

    runtime: str = "ort-cpu"
    out: str | None = None

    def __post_init__(self) -> None:
        _check_runtime(self.runtime)
        if self.out is not None:
            object.__setattr__(self, "out", str(self.out))


@dataclass(frozen=True)
class EnergyOptions:
    """``runtime``: the CPU runtime whose inferences are metered (RAPL; ``ort-cuda``: NVML);
    ``seconds``: how long each architecture runs under the counter."""

    runtime: str = "ort-cpu"
    seconds: float = 1.0

    def __post_init__(self) -> None:
        _check_runtime(self.runtime)
        if not isinstance(self.seconds, (int, float)) or not 0.05 <= self.seconds <= 600:
            raise HwnasError(f"energy: seconds must be between 0.05 and 600, got "
                             f"{self.seconds!r}")


class LiveResource(MetricSource):
    """Memory or a size of each architecture on ``runtime``, measured once and kept in a store.

    Args:
        metric: ``memory``, ``size`` or ``size:weights``.
        out_dir: the store's folder.

    Raises:
        HwnasError: an unknown metric, a runtime that reads no ONNX file, or memory where it
            cannot be measured (with the reason).
    """

    def __init__(self, space: Space, metric: str, runtime_name: str, out_dir: str | Path):
        from hwnas.latency import get_runtime
        from hwnas.latency.memory import MemoryProbe
        from hwnas.latency.profile import model_file_kind
        from hwnas.latency.resources import memory_unsupported_reason

        super().__init__()
        if metric not in RESOURCE_METRICS:
            raise UnknownNameError("resource metric", metric, RESOURCE_METRICS)
        self.space, self.metric = space, metric
        self.runtime = get_runtime(runtime_name)
        self.runtime.require()
        if not model_file_kind(self.runtime):
            raise HwnasError(f"{metric}: runtime {runtime_name} reads no ONNX file; valid: "
                             "ort-cpu, ort-cpu-int8, ov-cpu, ov-cpu-int8, ort-cuda")
        if metric == "memory" and (why := memory_unsupported_reason(self.runtime)):
            raise HwnasError(f"memory: {why}")
        self.column, self.unit, self._divisor = RESOURCE_METRICS[metric]
        self.name = f"{metric}:{runtime_name}"
        self.out_dir = Path(out_dir)
        self._probe = MemoryProbe()

    def settings(self) -> dict[str, object]:
        """What the stored values depend on."""
        rt = self.runtime.describe()
        return {"space": self.space.name, "build_version": self.space.build_version,
                "runtime": {k: v for k, v in rt.items()
                            if k not in ("onnxruntime", "torch", "openvino")},
                "numeric_precision": self.runtime.precision, "kind": "resources"}

    def _evaluate(self, archs: list[Architecture]) -> np.ndarray:
        from hwnas.latency.resources import measure_resources
        from hwnas.latency.store import ProfileStore

        texts = [self.space.format(a) for a in archs]
        with ProfileStore(self.out_dir) as store:
            store.bind_settings(self.settings())
            rows = store.resources()
            known = dict(zip(rows["arch"], rows[self.column], strict=True))
            for text, arch in dict(zip(texts, archs, strict=True)).items():
                if text in known:
                    continue
                try:
                    r = measure_resources(self.runtime, self.space, arch, self._probe)
                except HwnasError:  # cannot export or quantize: NaN, and not retried
                    store.add_resources(text, None, None, None, None, "cannot make the model")
                    known[text] = None
                    continue
                store.add_resources(text, None, r.memory_mb, r.onnx_bytes, r.weight_bytes,
                                    r.error)
                known[text] = getattr(r, self.column)
        values = [known.get(t) for t in texts]
        return np.array([np.nan if v is None or v != v else float(v) / self._divisor
                         for v in values], dtype=np.float64)

    def close(self) -> None:
        """Stop the memory probe's server."""
        self._probe.close()


class LiveEnergy(MetricSource):
    """Energy per inference (mJ) from the machine's energy counter, measured as asked.

    Raises:
        EnergyUnsupportedError: (on creation) no readable counter here, saying what was looked for.
    """

    unit = "mJ"

    def __init__(self, space: Space, runtime_name: str, seconds: float = 1.0):
        from hwnas.latency import get_runtime
        from hwnas.latency.energy import energy_counter

        super().__init__()
        self.space, self.seconds = space, seconds
        self.runtime = get_runtime(runtime_name)
        self.runtime.require()
        self.counter = energy_counter("gpu" if "cuda" in runtime_name else "cpu")
        self.name = f"energy:{runtime_name}"
        self._known: dict[str, float] = {}

    def _evaluate(self, archs: list[Architecture]) -> np.ndarray:
        from hwnas.latency.energy import energy_per_call_mj

        out = np.full(len(archs), np.nan)
        for i, a in enumerate(archs):
            text = self.space.format(a)
            if text not in self._known:
                try:
                    timer = self.runtime.timer(self.space, a)
                except HwnasError:
                    self._known[text] = np.nan
                    continue
                self._known[text] = energy_per_call_mj(lambda t=timer: t(1), self.counter,
                                                       self.seconds)
            out[i] = self._known[text]
        return out


def _resource(metric: str):  # noqa: ANN202  (a factory of factories)
    def factory(space: Space, o: ResourceOptions) -> MetricSource:
        out = o.out or _results_dir() / "devices" / f"live-resources-{o.runtime}-{space.name}"
        return LiveResource(space, metric, o.runtime, out)
    return factory


def _energy(space: Space, o: EnergyOptions) -> MetricSource:
    return LiveEnergy(space, o.runtime, o.seconds)


for _name, _doc in (("memory", "peak memory of an ONNX Runtime CPU session + first inference "
                               "(MiB), measured live"),
                    ("size", "size of the ONNX model file (MiB)"),
                    ("size:weights", "weight bytes at the runtime's precision (MiB)")):
    register_source(_name, _resource(_name), ResourceOptions, _doc)
register_source("energy", _energy, EnergyOptions,
                "energy per inference from RAPL or NVML (mJ); unsupported without a counter")
