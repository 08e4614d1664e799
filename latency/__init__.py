"""Measuring and modelling device latency: ``hwnas.latency``.

Runtimes (ONNX Runtime CPU/CUDA, PyTorch CPU/CUDA events), ONNX export, the measurement protocol,
resumable device profiles and operator lookup tables.
"""

from __future__ import annotations

from hwnas.search.lazy import lazy_exports

__all__ = [
    "DeviceTableLatency",
    "LiveLatency",
    "DeviceTable",
    "ProfileStore",
    "Profiler",
    "StoreError",
    "Target",
    "aggregate",
    "atomic_write_text",
    "read_device_table",
    "reference_arch",
    "ExportError",
    "Measurement",
    "MeasurementProtocol",
    "Runtime",
    "RuntimeConfig",
    "RuntimeUnavailableError",
    "describe_environment",
    "export_onnx",
    "get_runtime",
    "list_runtimes",
    "make_session",
    "measure",
    "median_ci",
    "onnx_cache_dir",
    "summarize",
]

# name -> defining submodule, imported on first access (PEP 562): `import hwnas.X` stays
# light, so the device agent imports no torch (tests/latency/test_agent_server.py)
_EXPORTS = {
    ".environment": ("describe_environment",),
    ".export": ("ExportError", "export_onnx", "onnx_cache_dir"),
    ".profile": ("Profiler", "Target", "aggregate", "reference_arch"),
    ".protocol": ("Measurement", "MeasurementProtocol", "measure", "median_ci", "summarize"),
    ".runtime": ("Runtime", "get_runtime", "list_runtimes"),
    # torch-free (shared with the device agent), also re-exported by .runtime
    ".session": ("RuntimeConfig", "RuntimeUnavailableError", "make_session"),
    ".sources": ("DeviceTableLatency", "LiveLatency"),
    ".store": ("ProfileStore", "StoreError"),
    ".table": ("DeviceTable", "atomic_write_text", "read_device_table"),
}

__getattr__, __dir__ = lazy_exports(__name__, _EXPORTS, globals())
