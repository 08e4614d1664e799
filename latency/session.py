"""The torch-free core of timing: the session options, ONNX Runtime sessions and the per-call timer.

:mod:`hwnas.latency.runtime` (which exports architectures with torch) and the device agent
(:mod:`hwnas.latency.agent`, which runs where torch is not installed) both build their sessions and
time their calls with these, so a local profile and a remote measurement run the same code.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.search.errors import HwnasError

__all__ = ["RuntimeConfig", "RuntimeUnavailableError", "Timer", "OPT_LEVELS", "make_session",
           "wall_timer"]

#: n -> per-call latencies in milliseconds
Timer = Callable[[int], np.ndarray]

OPT_LEVELS = ("disable", "basic", "extended", "all")


class RuntimeUnavailableError(HwnasError):
    """The runtime cannot run here; the message says why."""


@dataclass(frozen=True)
class RuntimeConfig:
    """Options that change measured latency; recorded with every table.

    Attributes:
        batch: inputs per inference.
        intra_op_threads: threads inside one operator (ONNX Runtime / torch intra-op).
        inter_op_threads: threads across operators.
        graph_optimization: ONNX Runtime graph optimisation level: disable, basic, extended, all.
        device_id: GPU ordinal for the CUDA runtimes.
    """

    batch: int = 1
    intra_op_threads: int = 1
    inter_op_threads: int = 1
    graph_optimization: str = "all"
    device_id: int = 0

    def __post_init__(self) -> None:
        if self.batch < 1:
            raise HwnasError(f"batch must be >= 1, got {self.batch}")
        if self.intra_op_threads < 0 or self.inter_op_threads < 0:
            raise HwnasError("thread counts must be >= 0 (0: the runtime's default)")
        if self.graph_optimization not in OPT_LEVELS:
            raise HwnasError(f"graph optimisation {self.graph_optimization!r}; "
                             f"valid: {', '.join(OPT_LEVELS)}")


def wall_timer(call: Callable[[], Any]) -> Timer:
    """A timer of ``call``: ``time.perf_counter_ns`` around each of ``n`` calls, in ms."""

    def timed(n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.float64)
        clock = time.perf_counter_ns
        for i in range(n):
            t0 = clock()
            call()
            out[i] = clock() - t0
        return out / 1e6

    return timed


def make_session(model: str | Path | bytes, config: RuntimeConfig, provider: str) -> Any:
    """An ``onnxruntime.InferenceSession`` with explicit options on exactly ``provider``.

    Args:
        model: an ONNX file, or the serialized model itself (the agent never writes a received
            model to disk).
        config: the session options.
        provider: ``CPUExecutionProvider``, ``CUDAExecutionProvider``, ...

    Raises:
        RuntimeUnavailableError: the provider did not take the session (ONNX Runtime falls back
            to the CPU silently otherwise).
    """
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = config.intra_op_threads
    opts.inter_op_num_threads = config.inter_op_threads
    opts.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    opts.graph_optimization_level = {
        "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
        "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
        "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
        "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
    }[config.graph_optimization]
    opts.log_severity_level = 3
    providers: list[Any] = [provider]
    if provider == "CUDAExecutionProvider":
        providers = [(provider, {"device_id": config.device_id})]
    source = model if isinstance(model, bytes) else str(model)
    sess = ort.InferenceSession(source, opts, providers=providers)
    if sess.get_providers()[0] != provider:
        raise RuntimeUnavailableError(
            f"ONNX Runtime did not run the session on {provider} (got {sess.get_providers()})")
    return sess
