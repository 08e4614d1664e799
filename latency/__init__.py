"""Measuring and modelling device latency: ``hwnas.latency``.

Runtimes (ONNX Runtime CPU/CUDA, PyTorch CPU/CUDA events), ONNX export, the measurement protocol,
resumable device profiles and operator lookup tables.
"""

from .environment import describe_environment
from .export import ExportError, export_onnx, onnx_cache_dir
from .profile import Profiler, Target, aggregate, reference_arch
from .protocol import Measurement, MeasurementProtocol, measure, median_ci, summarize
from .runtime import (
    Runtime,
    RuntimeConfig,
    RuntimeUnavailableError,
    get_runtime,
    list_runtimes,
    make_session,
)
from .sources import DeviceTableLatency, LiveLatency
from .store import ProfileStore, StoreError
from .table import DeviceTable, atomic_write_text, read_device_table

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
