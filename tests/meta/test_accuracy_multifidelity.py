"""Zero-cost proxies on real networks and data, and the multi-fidelity accuracy predictor."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.meta.accuracy_features import AccuracyFeatures
from hwnas.meta.accuracy_multifidelity import (
    MultiFidelityPredictor,
    complete_columns,
    epochs_of,
    fidelity_pairs,
)
from hwnas.meta.accuracy_proxies import (
    PROXIES,
    cached_proxies,
    data_proxies,
    jacob_cov_score,
    minibatch,
    naswot_score,
)
from hwnas.meta.errors import MetaError
from hwnas.search import get_space

CONVS = ("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_1x1~0|nor_conv_3x3~1|"
         "nor_conv_3x3~2|")
SKIPS = "|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|"


@pytest.fixture(scope="module")
def digits():
    """A real minibatch: 16 of scikit-learn's handwritten digits (bundled, no download)."""
    from hwnas.bench.live.datasets import load_digits

    splits = load_digits(0)
    return splits, minibatch(splits.train, 16, seed=0)


def _build(splits):
    from hwnas.bench.live.training import build_for_task

    space = get_space("nb201")
    # a narrow network (c=4) keeps the test fast; the proxies do not care about width
    return lambda a: build_for_task(space, a, splits, width=0.25)


def test_proxies_of_two_real_networks_are_finite_and_deterministic(digits):
    splits, images = digits
    space = get_space("nb201")
    archs = [space.parse(CONVS), space.parse(SKIPS)]
    first = data_proxies(_build(splits), archs, images, seed=0)
    again = data_proxies(_build(splits), archs[:1], images, seed=0)
    assert first.shape == (2, len(PROXIES)) and np.isfinite(first).all()
    assert np.array_equal(first[:1], again)
    # the all-convolution cell has far more parameters on its paths: a much larger SynFlow
    assert first[0, 0] > first[1, 0]
    # another seed draws other weights: other scores
    assert not np.array_equal(data_proxies(_build(splits), archs[:1], images, seed=1), first[:1])


def test_naswot_counts_agreements_and_jacob_cov_reads_the_jacobian():
    # a single ReLU unit per input: codes 1, 1, 0 -> K = [[2,2,1],[2,2,1],[1,1,2]] is singular
    relu = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.ReLU())
    x = torch.tensor([1.0, 2.0, -1.0]).reshape(3, 1, 1, 1)
    assert naswot_score(relu, x) == -np.inf
    x = torch.tensor([1.0, -2.0]).reshape(2, 1, 1, 1)  # K = [[1, 0], [0, 1]]: log det = 0
    assert naswot_score(relu, x) == pytest.approx(0.0)
    # a linear map has the same Jacobian for every input: correlations all 1, eigenvalues
    # (N, 0, ..., 0), the lowest score the formula gives
    linear = torch.nn.Sequential(torch.nn.Flatten(), torch.nn.Linear(4, 2))
    x = torch.randn(3, 1, 2, 2, generator=torch.Generator().manual_seed(0))
    k = 1e-5
    worst = -(np.log(3 + k) + 1 / (3 + k)) - 2 * (np.log(k) + 1 / k)
    assert jacob_cov_score(linear, x) == pytest.approx(worst, rel=1e-6)


def test_cached_proxies_resume_and_refuse_a_foreign_cache(digits, tmp_path):
    splits, images = digits
    space = get_space("nb201")
    archs = [space.parse(CONVS), space.parse(SKIPS)]
    path = tmp_path / "p.csv"
    one = cached_proxies(path, _build(splits), archs[:1], [7], images)
    both = cached_proxies(path, _build(splits), archs, [7, 9], images)
    assert both["index"].tolist() == [7, 9]
    assert both.iloc[0][list(PROXIES)].tolist() == one.iloc[0][list(PROXIES)].tolist()
    with pytest.raises(MetaError, match="index 7"):
        cached_proxies(path, _build(splits), [archs[1]], [7], images)
    with pytest.raises(MetaError, match="minibatch"):
        data_proxies(_build(splits), archs, images[:1])


def test_fidelity_names():
    assert epochs_of("cifar10_test_200ep") == 200 and epochs_of("foo") is None
    assert fidelity_pairs(["cifar100_test_200ep", "cifar100_val_12ep", "imagenet16_val_12ep"]) \
        == {"cifar100_test_200ep": ["cifar100_val_12ep"]}


def _world(seed: int = 0, n: int = 600):
    """A made-up table: a latent quality q; sources, cheap and full results are noisy views."""
    rng = np.random.default_rng(seed)
    q = rng.normal(size=n)
    src = np.column_stack([q + rng.normal(0, s, n) for s in (0.5, 0.7, 0.9)])
    C = rng.normal(size=(n, 3))
    A = (rng.random((n, 6)) < 0.5).astype(np.float32)
    names = ["a_test_200ep", "a_test_12ep", "b_test_12ep"]
    feats = AccuracyFeatures(50 + 5 * src, A, C, names)
    full = 60 + 5 * (q + rng.normal(0, 0.2, n))
    cheap = 40 + 5 * (q + rng.normal(0, 0.3, n))
    return feats, full, cheap


def test_multifidelity_uses_cheap_results_and_completes_partial_coverage():
    from scipy.stats import spearmanr

    feats, full, cheap = _world()
    shots = np.random.default_rng(1).choice(len(full), 20, replace=False)
    base = MultiFidelityPredictor(feats).fit(shots, full[shots])
    mf = MultiFidelityPredictor(feats, cheap[:, None], low_fidelity_names=["c_test_12ep"]) \
        .fit(shots, full[shots])
    rho = [spearmanr(p.predict_score(range(len(full))), full)[0] for p in (base, mf)]
    assert mf.map_ and "M" in mf.blocks_ and rho[1] > rho[0] + 0.05
    assert np.isclose(mf.weights_.sum(), 1.0)
    part = cheap.copy()
    part[200:] = np.nan
    filled = complete_columns(part[:, None], np.hstack([feats.S, feats.C]))
    assert np.isfinite(filled).all()
    again = MultiFidelityPredictor(feats, part[:, None], low_fidelity_names=["c_test_12ep"]) \
        .fit(shots, full[shots]).predict(range(len(full)))
    assert np.isfinite(again).all()


def test_multifidelity_refuses_bad_inputs():
    feats, full, cheap = _world()
    shots = np.arange(10)
    with pytest.raises(MetaError, match="shape"):
        MultiFidelityPredictor(feats, cheap[:5, None]).fit(shots, full[shots])
    few = np.full(len(cheap), np.nan)
    few[:3] = cheap[:3]
    with pytest.raises(MetaError, match="at least 5"):
        MultiFidelityPredictor(feats, few).fit(shots, full[shots])
    with pytest.raises(MetaError, match=r"\+inf"):
        MultiFidelityPredictor(feats, None, np.full((len(cheap), 1), np.inf)).fit(shots,
                                                                                 full[shots])
