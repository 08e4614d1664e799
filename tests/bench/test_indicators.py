"""Indicators checked against small fronts computed by hand."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.bench.indicators import (
    FrontRecall,
    HypervolumeRatio,
    IGDPlus,
    constrained_regret,
    hypervolume,
)
from hwnas.search import HwnasError


def test_hypervolume_2d_by_hand():
    # staircase from (1,3), (2,2), (3,1) to reference (4,4): 3 + 2 + 1 = 6 unit squares
    F = np.array([[1, 3], [2, 2], [3, 1], [3, 3]], dtype=float)  # (3,3) is dominated
    assert hypervolume(F, np.array([4.0, 4.0])) == pytest.approx(6.0)
    assert hypervolume(np.array([[5.0, 0.0]]), np.array([4.0, 4.0])) == 0.0  # beyond ref


def test_hypervolume_3d_by_hand():
    # one point (1,1,1) to ref (2,2,2): 1; add (0,1.5,1.5): union = 1 + 2*0.5*0.5 - 1*0.5*0.5
    assert hypervolume(np.array([[1.0, 1.0, 1.0]]), np.full(3, 2.0)) == pytest.approx(1.0)
    F = np.array([[1.0, 1.0, 1.0], [0.0, 1.5, 1.5]])
    assert hypervolume(F, np.full(3, 2.0)) == pytest.approx(1.0 + 0.5 - 0.25)


def test_hypervolume_3d_matches_monte_carlo():
    rng = np.random.default_rng(0)
    F = rng.random((12, 3))
    ref = np.full(3, 1.0)
    pts = rng.random((200_000, 3))
    dominated = (F[None, :, :] <= pts[:, None, :]).all(axis=2).any(axis=1)
    assert hypervolume(F, ref) == pytest.approx(dominated.mean(), abs=0.01)


def test_ratio_and_igd_plus_on_the_true_front():
    pf = np.array([[0.0, 1.0], [0.5, 0.5], [1.0, 0.0]])
    hv = HypervolumeRatio(pf)
    assert hv(pf) == pytest.approx(1.0)
    assert hv(pf[:1]) < 1.0
    igd = IGDPlus(pf)
    assert igd(pf) == 0.0
    # only (0.5, 0.5) found: distances 0.5 (to (0,1): dx=.5), 0, 0.5 -> mean 1/3
    assert igd(pf[1:2]) == pytest.approx(1 / 3)
    assert igd(np.zeros((0, 2))) == np.inf


def test_recall_and_regret():
    assert FrontRecall({1, 2, 3, 4})([2, 4, 9]) == 0.5
    with pytest.raises(HwnasError):
        FrontRecall([])
    assert constrained_regret(95.0, np.array([90.0, 94.0, 99.0]),
                              np.array([True, True, False])) == pytest.approx(1.0)
    assert constrained_regret(95.0, np.array([99.0]), np.array([False])) == np.inf
