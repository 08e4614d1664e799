"""What a measurement ran on, recorded with every device table: CPU, memory, GPU, versions.

Importing and calling this needs no torch: the device agent (:mod:`hwnas.latency.agent`) reports
the same description from a board where only onnxruntime is installed. Whatever cannot be read
(no cpufreq on a container, no nvidia-smi on a Jetson) is ``None``, never a guess.
"""

from __future__ import annotations

import datetime as _dt
import os
import platform
import subprocess
from importlib.metadata import PackageNotFoundError, version
from typing import Any

__all__ = ["describe_environment"]


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _memory_gib() -> float | None:
    try:
        with open("/proc/meminfo") as f:
            kib = int(f.readline().split()[1])
        return round(kib / 2**20, 1)
    except (OSError, ValueError, IndexError):
        return None


def _gpu() -> dict[str, Any] | None:
    """Name, memory and driver of the first GPU, from nvidia-smi; None where there is none."""
    try:
        out = subprocess.run(
            ["nvidia-smi", "--query-gpu=name,memory.total,driver_version",
             "--format=csv,noheader"],
            capture_output=True, text=True, timeout=10, check=True,
        ).stdout.strip().splitlines()
    except (OSError, subprocess.SubprocessError):
        return None
    if not out:
        return None
    name, memory, driver = (x.strip() for x in out[0].split(",")[:3])
    return {"name": name, "memory": memory, "driver": driver, "count": len(out)}


def _read(path: str) -> str | None:
    try:
        with open(path) as f:
            return f.read().strip().strip("\x00") or None
    except OSError:
        return None


def _governor() -> str | None:
    """The CPU frequency governor of cpu0 (``performance`` is what a stable profile wants)."""
    return _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_governor")


def _frequency_mhz() -> float | None:
    """cpu0's current clock from cpufreq, else the first ``cpu MHz`` line of /proc/cpuinfo."""
    khz = _read("/sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq")
    if khz is not None:
        try:
            return round(int(khz) / 1000, 1)
        except ValueError:
            pass
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("cpu MHz"):
                    return round(float(line.split(":", 1)[1]), 1)
    except (OSError, ValueError):
        pass
    return None


def _providers() -> list[str] | None:
    """ONNX Runtime's execution providers in this build, None without onnxruntime."""
    try:
        import onnxruntime as ort
    except ImportError:
        return None
    return list(ort.get_available_providers())


def _version(pkg: str) -> str | None:
    try:
        return version(pkg)
    except PackageNotFoundError:
        return None


def describe_environment() -> dict[str, Any]:
    """A JSON-ready description of this machine and the software that measures on it."""
    affinity = sorted(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None
    return {
        "date": _dt.datetime.now(_dt.UTC).isoformat(timespec="seconds"),
        "hostname": platform.node(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "cpu_model": _cpu_model(),
        "cpu_count": os.cpu_count(),
        "cpu_affinity": affinity,
        "memory_gib": _memory_gib(),
        "gpu": _gpu(),
        "versions": {p: _version(p) for p in
                     ("hwnas", "torch", "onnx", "onnxruntime", "onnxruntime-gpu", "numpy",
                      "openvino")},
        # flat fields the device agent reports (wire protocol v1, /v1/info)
        "machine": platform.machine(),
        "os": f"{platform.system()} {platform.release()}",
        "board": _read("/proc/device-tree/model"),  # Raspberry Pi, Jetson: the board's name
        "cores": len(affinity) if affinity else os.cpu_count(),
        "governor": _governor(),
        "frequency_mhz": _frequency_mhz(),
        "onnxruntime": _version("onnxruntime") or _version("onnxruntime-gpu"),
        "openvino": _version("openvino"),
        "providers": _providers(),
    }
