"""Measurement protocol: statistics, confidence interval of the median, adaptive stopping."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.latency import MeasurementProtocol, measure, median_ci, summarize
from hwnas.search import HwnasError


def test_summary_statistics_by_hand():
    x = np.arange(1.0, 11.0)  # 1..10
    m = summarize(x)
    assert m.median_ms == 5.5 and m.n == 10
    assert m.p10_ms == pytest.approx(1.9) and m.p90_ms == pytest.approx(9.1)
    assert m.iqr_ms == pytest.approx(7.75 - 3.25)
    assert m.cv == pytest.approx(np.std(x, ddof=1) / 5.5)


def test_median_ci_is_order_statistics():
    x = np.arange(100.0)
    lo, hi = median_ci(x)
    # n/2 -+ 1.96 sqrt(n)/2 = 50 -+ 9.8 -> x_(40) .. x_(59) (0-based)
    assert (lo, hi) == (40.0, 59.0)
    assert median_ci(np.array([3.0])) == (3.0, 3.0)


def test_median_ci_covers_the_true_median():
    rng = np.random.default_rng(0)
    hits = sum(lo <= 0.0 <= hi for lo, hi in (median_ci(rng.standard_normal(50))
                                              for _ in range(400)))
    assert 0.92 <= hits / 400 <= 0.99


class RecordingTimer:
    """A deterministic timer: returns the given per-call values and records what was asked."""

    def __init__(self, values):
        self.values, self.calls = np.asarray(values, dtype=float), []

    def __call__(self, n: int) -> np.ndarray:
        self.calls.append(n)
        return np.resize(self.values, n)


def test_precise_timer_stops_at_min_runs():
    timer = RecordingTimer([2.0, 2.001, 1.999])
    m = measure(timer, MeasurementProtocol(warmup_runs=5, min_runs=20, max_runs=200))
    assert timer.calls == [5, 20] and m.converged and m.n == 20
    assert m.median_ms == pytest.approx(2.0, abs=1e-3)


def test_noisy_timer_runs_to_the_cap():
    rng = np.random.default_rng(1)
    timer = RecordingTimer(rng.uniform(1, 3, 1000))
    m = measure(timer, MeasurementProtocol(warmup_runs=0, min_runs=20, max_runs=55, chunk=10))
    assert sum(timer.calls) == 55 and m.n == 55 and not m.converged
    assert timer.calls == [20, 10, 10, 10, 5]


@pytest.mark.parametrize("kwargs", [
    {"min_runs": 0}, {"min_runs": 30, "max_runs": 20}, {"rounds": 0},
    {"target_precision": 0}, {"warmup_runs": -1},
])
def test_invalid_protocols_are_rejected(kwargs):
    with pytest.raises(HwnasError, match="invalid measurement protocol"):
        MeasurementProtocol(**kwargs)
