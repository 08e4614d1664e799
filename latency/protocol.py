"""The measurement protocol: warm-up, adaptive repeats, robust statistics.

A latency is the median of per-call samples (``time.perf_counter_ns`` around each call, or CUDA
events), never a mean of ``time.time()``. Repeats continue in chunks until the median is known to a
target precision — the half-width of a distribution-free 95% confidence interval of the median,
from order statistics (Conover, *Practical Nonparametric Statistics*, 1999, sec. 3.2), relative to
the median — or a cap is reached. Raw samples are kept.
"""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from hwnas.search import HwnasError

from .session import Timer  # not .runtime: importing this module needs no torch

__all__ = ["MeasurementProtocol", "Measurement", "summarize", "median_ci", "measure",
           "measure_pair"]


@dataclass(frozen=True)
class MeasurementProtocol:
    """How one architecture is measured, and how a profile guards against a drifting host.

    Attributes:
        warmup_runs: calls discarded before timing (caches, allocator, lazy initialisation).
        warmup_seconds: keep warming up at least this long (GPU clocks, CPU frequency).
        min_runs: timed calls always made.
        max_runs: cap on timed calls.
        chunk: timed calls added per step once ``min_runs`` are in.
        target_precision: stop when the 95% CI half-width of the median is below this fraction.
        paired_reference: time the reference architecture in alternating chunks with every
            architecture and keep the ratio of their medians, so a host state shared by both
            cancels; the profile then reports ratio x the reference's median over the profile.
        rounds: independent passes over the architectures, separated in time; a latency is the
            median of its rounds' ratios (paired) or the minimum of its rounds' medians (unpaired:
            the host's slow states only ever add time).
        reference_every: re-measure the reference architecture after this many architectures.
        drift_threshold: flag the profile when the reference moves more than this fraction.
    """

    warmup_runs: int = 10
    warmup_seconds: float = 0.0
    min_runs: int = 40
    max_runs: int = 200
    chunk: int = 5
    target_precision: float = 0.02
    paired_reference: bool = True
    rounds: int = 1
    reference_every: int = 20
    drift_threshold: float = 0.10

    def __post_init__(self) -> None:
        problems = []
        if self.warmup_runs < 0 or self.warmup_seconds < 0:
            problems.append("warm-up must be >= 0")
        if not 1 <= self.min_runs <= self.max_runs:
            problems.append("need 1 <= min_runs <= max_runs")
        if self.chunk < 1 or self.rounds < 1 or self.reference_every < 1:
            problems.append("chunk, rounds and reference_every must be >= 1")
        # "not >" also catches NaN, which every comparison would otherwise let through
        if not self.target_precision > 0 or not self.drift_threshold > 0:
            problems.append("target_precision and drift_threshold must be > 0")
        if problems:
            raise HwnasError("invalid measurement protocol: " + "; ".join(problems))

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def median_ci(samples: np.ndarray, confidence: float = 0.95) -> tuple[float, float]:
    """Distribution-free confidence interval of the median from order statistics.

    With ``n`` sorted samples the interval ``[x_(j), x_(k)]``, ``j, k = n/2 -+ z sqrt(n)/2``, covers
    the median with about the given confidence (normal approximation to the binomial).
    """
    x = np.sort(np.asarray(samples, dtype=np.float64))
    n = len(x)
    if n == 0:
        return math.nan, math.nan
    z = {0.9: 1.645, 0.95: 1.96, 0.99: 2.576}.get(confidence, 1.96)
    half = z * math.sqrt(n) / 2
    j = max(0, int(math.floor(n / 2 - half)))
    k = min(n - 1, int(math.ceil(n / 2 + half)) - 1)
    return float(x[j]), float(x[max(j, k)])


@dataclass
class Measurement:
    """Robust statistics of one architecture's timed calls (milliseconds)."""

    median_ms: float
    p10_ms: float
    p90_ms: float
    iqr_ms: float
    cv: float
    n: int
    ci_rel: float
    converged: bool
    samples_ms: np.ndarray = field(repr=False)
    #: median of the reference's interleaved samples, and median / reference median (paired only)
    reference_ms: float | None = None
    ratio: float | None = None

    def row(self) -> dict[str, Any]:
        """The flat statistics (no samples)."""
        d = asdict(self)
        d.pop("samples_ms")
        return d


def summarize(samples_ms: np.ndarray, target_precision: float = math.inf) -> Measurement:
    """Median, p10/p90, IQR, coefficient of variation and relative CI half-width of samples."""
    x = np.asarray(samples_ms, dtype=np.float64)
    q10, q25, q50, q75, q90 = np.percentile(x, [10, 25, 50, 75, 90])
    lo, hi = median_ci(x)
    ci_rel = (hi - lo) / 2 / q50 if q50 > 0 else math.inf
    mean = x.mean()
    return Measurement(
        median_ms=float(q50), p10_ms=float(q10), p90_ms=float(q90), iqr_ms=float(q75 - q25),
        cv=float(x.std(ddof=1) / mean) if len(x) > 1 and mean > 0 else 0.0,
        n=len(x), ci_rel=float(ci_rel), converged=bool(ci_rel <= target_precision), samples_ms=x,
    )


def _warm(timer: Timer, protocol: MeasurementProtocol) -> None:
    if protocol.warmup_runs:
        timer(protocol.warmup_runs)
    if protocol.warmup_seconds > 0:
        deadline = time.perf_counter() + protocol.warmup_seconds
        while time.perf_counter() < deadline:
            timer(protocol.chunk)


def measure(timer: Timer, protocol: MeasurementProtocol,
            reference: Timer | None = None) -> Measurement:
    """Warm up, then time calls until the median is precise enough or ``max_runs`` is reached.

    With a ``reference`` timer, calls alternate in chunks between the two (ABAB...), both
    medians must reach the target precision, and the result carries their ratio.
    """
    _warm(timer, protocol)
    if reference is None:
        samples = [timer(protocol.min_runs)]
        n = protocol.min_runs
        while True:
            m = summarize(np.concatenate(samples), protocol.target_precision)
            if m.converged or n >= protocol.max_runs:
                return m
            step = min(protocol.chunk, protocol.max_runs - n)
            samples.append(timer(step))
            n += step
    m, _ = measure_pair(timer, protocol, reference, warm=False)
    return m


def measure_pair(timer: Timer, protocol: MeasurementProtocol, reference: Timer,
                 warm: bool = True) -> tuple[Measurement, Measurement]:
    """The paired measurement of :func:`measure`, returning the reference's statistics too.

    Both are warmed up, then timed in alternating chunks (ABAB...) until both medians reach the
    target precision or ``max_runs`` calls each are in. The first result carries the reference's
    median and the ratio; ``converged`` is true only when both converged.
    """
    if warm:
        _warm(timer, protocol)
    _warm(reference, protocol)
    mine: list[np.ndarray] = []
    theirs: list[np.ndarray] = []
    n = 0
    while True:
        step = min(protocol.chunk, protocol.max_runs - n)
        mine.append(timer(step))
        theirs.append(reference(step))
        n += step
        if n < protocol.min_runs and n < protocol.max_runs:
            continue
        m = summarize(np.concatenate(mine), protocol.target_precision)
        r = summarize(np.concatenate(theirs), protocol.target_precision)
        if (m.converged and r.converged) or n >= protocol.max_runs:
            m.converged = m.converged and r.converged
            m.reference_ms = r.median_ms
            m.ratio = m.median_ms / r.median_ms if r.median_ms > 0 else math.nan
            return m, r
