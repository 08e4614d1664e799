"""Timing kernel models and whole networks for operator lookup tables.

Kernels are timed as the slope between models of two copy counts, optionally in alternating
chunks with a reference network (paired), which cancels a noisy host's fast and slow states.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import Architecture, Space

from .kernel_models import _input_shape, _model_path, kernel_chains
from .kernels import KERNEL_COLUMNS, Kernel, LUTError
from .protocol import MeasurementProtocol, measure, summarize
from .runtime import RuntimeConfig, get_runtime, make_session

__all__ = [
    "LUT_RUNTIMES",
    "REFERENCE_ARCHS",
    "Timer",
    "measure_kernels",
    "measure_networks",
    "network_timer",
]

Progress = Callable[[int, int], None]
#: the reference network of each space for paired timing: mid-range latency, every op kind
REFERENCE_ARCHS: dict[str, str] = {
    "nb201": "|nor_conv_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|avg_pool_3x3~1|"
             "nor_conv_3x3~2|",
}

# ---------------------------------------------------------------------- measuring
Timer = Callable[[int], np.ndarray]


def _session_timer(sess: Any, shape: tuple[int, ...]) -> Timer:
    feed = {sess.get_inputs()[0].name:
            np.random.default_rng(0).standard_normal(shape, dtype=np.float32)}
    clock = time.perf_counter_ns

    def timed(n: int) -> np.ndarray:
        out = np.empty(n, dtype=np.float64)
        for i in range(n):
            t0 = clock()
            sess.run(None, feed)
            out[i] = clock() - t0
        return out / 1e6

    return timed


def _rounds_of(protocol: MeasurementProtocol) -> int:
    return max(1, int(getattr(protocol, "rounds", 1)))


def _measure_paired(timer: Timer, reference: Timer,
                    protocol: MeasurementProtocol) -> tuple[float, float, float]:
    """Alternate chunks of ``timer`` and ``reference`` calls; return the ratio of their medians,
    its 95% CI half-width and the reference's median. A host state lasting longer than a chunk
    slows both alike, so it cancels in the ratio."""
    for t in (timer, reference):
        if protocol.warmup_runs:
            t(protocol.warmup_runs)
    own: list[np.ndarray] = []
    ref: list[np.ndarray] = []
    n = 0
    while True:
        step = min(protocol.chunk, protocol.max_runs - n)
        own.append(timer(step))
        ref.append(reference(step))
        n += step
        if n >= protocol.min_runs:
            a = summarize(np.concatenate(own), protocol.target_precision)
            b = summarize(np.concatenate(ref), protocol.target_precision)
            if (a.converged and b.converged) or n >= protocol.max_runs:
                ratio = a.median_ms / b.median_ms
                return ratio, ratio * math.hypot(a.ci_rel, b.ci_rel), b.median_ms


class _Meter:
    """Times models the same way everywhere: unpaired (value = median in ms; rounds combine by
    their minimum, the host's slow states only add time) or paired with a reference (value = ratio
    to the reference; rounds combine by their median). Remembers the reference's medians."""

    def __init__(self, protocol: MeasurementProtocol, reference: Timer | None):
        self.protocol = protocol
        self.reference = reference
        self.reference_medians: list[float] = []

    def __call__(self, timer: Timer) -> tuple[float, float]:
        if self.reference is None:
            m = measure(timer, self.protocol)
            return m.median_ms, m.ci_rel * m.median_ms
        ratio, ci, ref = _measure_paired(timer, self.reference, self.protocol)
        self.reference_medians.append(ref)
        return ratio, ci

    def combine(self, values: np.ndarray) -> np.ndarray:
        """Rounds (axis 0) into one value per model."""
        return np.median(values, axis=0) if self.reference is not None else values.min(axis=0)

    def scale(self, reference_ms: float | None) -> float:
        """Milliseconds per unit of value: 1 unpaired; paired, ``reference_ms`` or the median of
        the reference's medians seen so far."""
        if self.reference is None:
            return 1.0
        return float(reference_ms if reference_ms is not None
                     else np.median(self.reference_medians))


def measure_kernels(
    kernel_list: Sequence[Kernel],
    runtime_config: RuntimeConfig | None = None,
    protocol: MeasurementProtocol | None = None,
    provider: str = "CPUExecutionProvider",
    copies: tuple[int, int] = (1, 9),
    reference: Timer | None = None,
    reference_ms: float | None = None,
    progress: Progress | None = None,
) -> tuple[pd.DataFrame, dict[str, float]]:
    """Time every kernel on this device.

    Each kernel model runs in its own session (``runtime_config`` with graph optimisation
    disabled: the model is already in the executed form). A kernel costs the slope between its
    models of ``copies[0]`` and ``copies[1]`` copies (chained, or fanned out from one input when
    the kernel changes shape): the session's per-call overhead and the layout conversions at the
    model's boundary cancel, while each node's own dispatch cost, which a network pays too, stays
    in. The passes over all models are repeated ``protocol.rounds`` times, interleaved in time.

    Without ``reference`` every model is timed with :func:`measure` and keeps the minimum of its
    rounds' medians. With a ``reference`` timer (a whole network), every model is timed in
    alternating chunks with it and keeps the median of its rounds' ratios to it, which cancels
    the host's slow and fast states; ratios become milliseconds at ``reference_ms`` (default: the
    median of the reference's medians over this call).

    Returns:
        ``(table, info)``: one row per kernel (the :class:`Kernel` fields, ``latency_ms``,
        ``ci_ms`` the 95% CI half-width propagated from the medians, ``spread_ms`` the range of
        the estimate over rounds, ``method``: chain or fan-out); ``info`` holds
        ``session_overhead_ms``, a trivial (``Identity``) session's per-call time, and
        ``reference_ms``, the scale used (NaN unpaired).
    """
    config = dataclasses.replace(runtime_config or RuntimeConfig(), graph_optimization="disable")
    protocol = protocol or MeasurementProtocol()
    lo, hi = copies
    if not 1 <= lo < hi:
        raise LUTError(f"copies must be two increasing counts >= 1, got {copies}")
    wanted = sorted(set(kernel_list))
    jobs: list[tuple[Kernel | None, int]] = [(None, 1)]
    for k in wanted:
        jobs.extend([(k, lo), (k, hi)])
    meter = _Meter(protocol, reference)
    rounds = _rounds_of(protocol)
    values = np.full((rounds, len(jobs)), np.nan)
    cis = np.full((rounds, len(jobs)), np.nan)
    paths = [_model_path(k, n, config.batch) for k, n in jobs]
    shapes = [(config.batch, 16, 32, 32) if k is None else _input_shape(k, config.batch)
              for k, _ in jobs]
    done, total = 0, rounds * len(jobs)
    for r in range(rounds):
        for j, (path, shape) in enumerate(zip(paths, shapes, strict=True)):
            sess = make_session(path, config, provider)
            values[r, j], cis[r, j] = meter(_session_timer(sess, shape))
            done += 1
            if progress is not None:
                progress(done, total)
    scale = meter.scale(reference_ms)
    t = meter.combine(values) * scale
    ci = np.median(cis, axis=0) * scale
    rows = []
    for i, k in enumerate(wanted):
        j_lo, j_hi = 1 + 2 * i, 2 + 2 * i
        per_round = (values[:, j_hi] - values[:, j_lo]) * scale / (hi - lo)
        rows.append({**asdict(k), "latency_ms": max(float(t[j_hi] - t[j_lo]) / (hi - lo), 0.0),
                     "ci_ms": math.hypot(ci[j_hi], ci[j_lo]) / (hi - lo),
                     "spread_ms": float(np.ptp(per_round)),
                     "method": "chain" if kernel_chains(k) else "fan-out"})
    table = pd.DataFrame(rows, columns=[*KERNEL_COLUMNS, "latency_ms", "ci_ms", "spread_ms",
                                        "method"])
    return table, {"session_overhead_ms": float(t[0]),
                   "reference_ms": scale if reference is not None else math.nan}


_RUNTIME_OF_PROVIDER = {"CPUExecutionProvider": "ort-cpu", "CUDAExecutionProvider": "ort-cuda"}
#: runtimes a lookup table can be built for: their provider and the precision of their kernels
LUT_RUNTIMES: dict[str, tuple[str, str]] = {
    "ort-cpu": ("CPUExecutionProvider", "fp32"),
    "ort-cpu-int8": ("CPUExecutionProvider", "int8"),
}


def network_timer(space: Space, arch: Architecture, runtime_config: RuntimeConfig | None = None,
                  provider: str = "CPUExecutionProvider", runtime: str | None = None) -> Timer:
    """The runtime's own timer of ``arch``'s whole network (``get_runtime(...).timer``).

    ``runtime`` (e.g. ``ort-cpu-int8``) names the runtime; default: the one of ``provider``.
    """
    if runtime is None:
        if provider not in _RUNTIME_OF_PROVIDER:
            raise LUTError(f"provider {provider!r}; valid: {', '.join(_RUNTIME_OF_PROVIDER)}")
        runtime = _RUNTIME_OF_PROVIDER[provider]
    return get_runtime(runtime, runtime_config).timer(space, arch)


def measure_networks(
    space: Space,
    archs: Sequence[Architecture],
    runtime_config: RuntimeConfig | None = None,
    protocol: MeasurementProtocol | None = None,
    provider: str = "CPUExecutionProvider",
    reference: Timer | None = None,
    reference_ms: float | None = None,
    all_rounds: bool = False,
    progress: Progress | None = None,
    runtime: str | None = None,
) -> np.ndarray:
    """Whole-network latencies (ms) with the runtime's own timer, a fresh session per round.

    ``protocol.rounds`` passes over ``archs``, interleaved in time. Unpaired, a latency is the
    minimum of its rounds' medians; with a ``reference`` timer, the median of its rounds' ratios
    to the reference (timed in alternating chunks) times ``reference_ms`` (default: the median
    of the reference's medians over this call), as in :func:`measure_kernels`.
    With ``all_rounds`` the ``(rounds, len(archs))`` matrix is returned instead of one value each.
    ``runtime`` names the runtime (e.g. ``ort-cpu-int8``; default: the one of ``provider``).
    """
    protocol = protocol or MeasurementProtocol()
    meter = _Meter(protocol, reference)
    rounds = _rounds_of(protocol)
    out = np.full((rounds, len(archs)), np.nan)
    for r in range(rounds):
        for i, arch in enumerate(archs):
            out[r, i] = meter(network_timer(space, arch, runtime_config, provider, runtime))[0]
            if progress is not None:
                progress(r * len(archs) + i + 1, rounds * len(archs))
    out *= meter.scale(reference_ms)
    return out if all_rounds else meter.combine(out)
