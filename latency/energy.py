"""Energy per inference, where the device has a real energy counter — and a clear no elsewhere.

Sensors read: Intel/AMD RAPL package counters (``/sys/class/powercap/intel-rapl:N/energy_uj``,
the kernel's powercap interface) and NVIDIA's NVML total-energy counter
(``nvmlDeviceGetTotalEnergyConsumption``, through ``pynvml`` when installed). INA2xx current and
power monitors (``/sys/bus/i2c/drivers/ina*``) are detected but give instantaneous power, not
energy; integrating them is not implemented, and they are reported as such. A machine without a
readable counter is *unsupported*, never 0.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

from hwnas.search import HwnasError

__all__ = ["EnergyUnsupportedError", "EnergyCounter", "energy_sensor", "energy_counter",
           "energy_per_call_mj"]

_RAPL = "/sys/class/powercap/intel-rapl:*"
_INA = "/sys/bus/i2c/drivers/ina*"


class EnergyUnsupportedError(HwnasError):
    """This machine exposes no energy counter hwnas can read; the message says what was looked
    for."""


@dataclass(frozen=True)
class EnergyCounter:
    """A cumulative energy counter: ``read()`` returns joules since an arbitrary origin."""

    name: str
    read: Callable[[], float]


def _rapl_packages() -> list[str]:
    # package domains are intel-rapl:N; their sub-domains (core, dram) are intel-rapl:N:M
    return sorted(p for p in glob.glob(_RAPL) if os.path.basename(p).count(":") == 1)


def _read_int(path: str) -> int:
    with open(path) as f:
        return int(f.read())


def _rapl_counter() -> tuple[EnergyCounter | None, str]:
    packages = _rapl_packages()
    if not packages:
        return None, "no RAPL counters (/sys/class/powercap/intel-rapl:* absent)"
    files = [os.path.join(p, "energy_uj") for p in packages]
    try:
        ranges = [_read_int(os.path.join(p, "max_energy_range_uj")) for p in packages]
        first = [_read_int(f) for f in files]
    except (OSError, ValueError) as e:
        return None, f"RAPL counters present but unreadable ({e}; they are root-only on most " \
                     "kernels since CVE-2020-8694)"
    state = {"last": first, "total": 0}

    def read() -> float:  # the counters wrap at max_energy_range_uj: accumulate deltas
        now = [_read_int(f) for f in files]
        for i, (a, b) in enumerate(zip(state["last"], now, strict=True)):
            state["total"] += b - a if b >= a else b + ranges[i] - a
        state["last"] = now
        return state["total"] / 1e6

    return EnergyCounter(f"RAPL ({', '.join(os.path.basename(p) for p in packages)})", read), ""


def _nvml_counter(device_id: int = 0) -> tuple[EnergyCounter | None, str]:
    try:
        import pynvml
    except ImportError:
        return None, "no NVML (pynvml is not installed)"
    try:
        pynvml.nvmlInit()
        handle = pynvml.nvmlDeviceGetHandleByIndex(device_id)
        pynvml.nvmlDeviceGetTotalEnergyConsumption(handle)
    except Exception as e:  # NVMLError and its many subclasses: no driver, no GPU, no counter
        return None, f"NVML has no energy counter here ({type(e).__name__}: {e})"
    return EnergyCounter(
        f"NVML GPU {device_id}",
        lambda: pynvml.nvmlDeviceGetTotalEnergyConsumption(handle) / 1e3), ""


def energy_counter(kind: str = "cpu") -> EnergyCounter:
    """The counter for ``kind`` ``cpu`` (RAPL) or ``gpu`` (NVML).

    Raises:
        EnergyUnsupportedError: none here, with what was looked for and why each failed.
    """
    if kind not in ("cpu", "gpu"):
        raise HwnasError(f"energy counter kind {kind!r}; valid: cpu, gpu")
    counter, why = _rapl_counter() if kind == "cpu" else _nvml_counter()
    if counter is None:
        ina = glob.glob(_INA)
        extra = (f"; INA power monitors at {', '.join(ina)} give power, not energy "
                 "(integration not implemented)" if ina else
                 "; no INA power monitor (/sys/bus/i2c/drivers/ina* absent)")
        raise EnergyUnsupportedError(f"energy is unsupported here: {why}{extra}")
    return counter


def energy_sensor() -> tuple[bool, str]:
    """``(True, sensor name)`` when an energy counter is readable here (RAPL, then NVML), else
    ``(False, why not)`` naming what was looked for."""
    reasons = []
    for kind in ("cpu", "gpu"):
        try:
            return True, energy_counter(kind).name
        except EnergyUnsupportedError as e:
            reasons.append(str(e).removeprefix("energy is unsupported here: "))
    return False, "; ".join(dict.fromkeys("; ".join(reasons).split("; ")))


def energy_per_call_mj(call: Callable[[], object], counter: EnergyCounter,
                       seconds: float = 1.0, warmup: int = 5) -> float:
    """Energy of one ``call`` in millijoules: the counter's increase over repeated calls lasting
    at least ``seconds`` (the counters update every ~1 ms, RAPL's resolution is tens of µJ),
    divided by the calls. It is the whole package's (or GPU's) energy, idle share included.

    Raises:
        EnergyUnsupportedError: the counter did not move (a frozen or virtualised counter).
    """
    for _ in range(warmup):
        call()
    n, start_j, t0 = 0, counter.read(), time.perf_counter()
    while time.perf_counter() - t0 < seconds:
        call()
        n += 1
    joules = counter.read() - start_j
    if joules <= 0:
        raise EnergyUnsupportedError(f"energy is unsupported here: {counter.name} did not move "
                                     f"over {n} calls ({seconds:.1f} s)")
    return joules / n * 1e3
