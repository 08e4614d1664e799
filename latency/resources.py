"""Memory and size of an architecture on a runtime: peak session memory, ONNX file and weight bytes.

The numbers come from the file the runtime itself reads (the FP32 export, or the INT8 QDQ model for
the ``-int8`` runtimes), so weight bytes are at the table's precision: 4 per FP32 parameter, 1 per
INT8 weight plus the quantization scales, zero points and INT32 biases. Peak memory is measured
(:mod:`hwnas.latency.memory`) for ONNX Runtime's and OpenVINO's CPU runtimes; elsewhere (GPU
providers, PyTorch) it is left out with the reason in :func:`memory_unsupported_reason`.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from hwnas.search import Architecture, Space

from .export import export_onnx
from .memory import (
    METHOD,
    METHOD_OPENVINO,
    MemoryMeasurementError,
    MemoryProbe,
    initializer_bytes,
    memory_supported,
    onnx_file_bytes,
)
from .runtime import (
    OpenVinoCpuInt8Runtime,
    OpenVinoCpuRuntime,
    OrtCpuInt8Runtime,
    OrtCpuRuntime,
    OrtRuntime,
    Runtime,
)
from .table import RESOURCE_COLUMNS

__all__ = ["RESOURCE_COLUMNS", "Resources", "model_file", "measure_resources",
           "memory_runtime", "memory_unsupported_reason", "describe_resources"]

@dataclass(frozen=True)
class Resources:
    """``memory_mb`` (MiB, None where not measurable), ``onnx_bytes``, ``weight_bytes`` (None
    for a runtime that reads no ONNX file); ``error``: why something is missing."""

    memory_mb: float | None
    onnx_bytes: int | None
    weight_bytes: int | None
    error: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def model_file(runtime: Runtime, space: Space, arch: Architecture) -> Path | None:
    """The ONNX file ``runtime`` reads for ``arch`` (exported or quantized into the cache), or
    None for a runtime that reads none (PyTorch eager).

    Raises:
        ExportError, QuantizeError: the model cannot be made.
    """
    batch = runtime.config.batch
    if isinstance(runtime, (OrtCpuInt8Runtime, OpenVinoCpuInt8Runtime)):
        from .quantize import quantize_onnx

        return quantize_onnx(space, arch, batch)
    if isinstance(runtime, (OrtRuntime, OpenVinoCpuRuntime)):
        return export_onnx(space, arch, batch)
    return None


def memory_runtime(runtime: Runtime) -> str | None:
    """The :mod:`~hwnas.latency.memory` runtime that loads ``runtime``'s model as it does
    (``onnxruntime`` or ``openvino``), or None where peak memory is not measured."""
    if isinstance(runtime, (OpenVinoCpuRuntime, OpenVinoCpuInt8Runtime)):
        return "openvino"
    if isinstance(runtime, OrtCpuRuntime):
        return "onnxruntime"
    return None


def memory_unsupported_reason(runtime: Runtime) -> str | None:
    """Why peak memory is not measured for ``runtime`` here, or None when it is."""
    if memory_runtime(runtime) is None:
        return (f"peak memory is measured for the CPU runtimes (ort-cpu, ort-cpu-int8, ov-cpu, "
                f"ov-cpu-int8), not {runtime.name}: a process's resident set does not show "
                "GPU memory or PyTorch's caching allocator")
    ok, why = memory_supported()
    return None if ok else why


def measure_resources(runtime: Runtime, space: Space, arch: Architecture,
                      probe: MemoryProbe | None) -> Resources:
    """Memory and sizes of ``arch`` on ``runtime`` (``probe``: None skips memory).

    Raises:
        ExportError, QuantizeError: the model cannot be made (nothing to measure).
    """
    path = model_file(runtime, space, arch)
    if path is None:
        return Resources(None, None, None, f"{runtime.name} reads no ONNX file")
    memory, error = None, None
    if probe is not None and memory_unsupported_reason(runtime) is None:
        try:
            memory = probe.measure(path, runtime.config.intra_op_threads,
                                   runtime.config.graph_optimization,
                                   memory_runtime(runtime) or "onnxruntime").peak_mb
        except MemoryMeasurementError as e:
            error = str(e)
    return Resources(memory, onnx_file_bytes(path), initializer_bytes(path), error)


def describe_resources(runtime: Runtime) -> dict[str, Any]:
    """What the resource columns mean, for a table's metadata."""
    why = memory_unsupported_reason(runtime)
    return {
        "memory_mb": (f"not measured: {why}" if why is not None else
                      METHOD_OPENVINO if memory_runtime(runtime) == "openvino" else METHOD),
        "onnx_bytes": "size of the ONNX file the runtime reads, bytes",
        "weight_bytes": f"initializer bytes of that file at {runtime.precision} (element count "
                        "x element size of each stored tensor)",
    }
