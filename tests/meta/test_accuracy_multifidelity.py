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
    fit_top_model,
    rerank_top,
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
    first = MultiFidelityPredictor(feats, cheap[:, None], low_fidelity_names=["c_test_12ep"],
                                   structure_head=False, top_model=False, safeguard=0.0) \
        .fit(shots, full[shots])
    rho = [spearmanr(p.predict_score(range(len(full))), full)[0] for p in (base, mf, first)]
    assert mf.map_ and "M" in mf.blocks_ and rho[2] > rho[0] + 0.05
    # here structure and one-hot are pure noise: the second stage costs a little, not the gain
    assert rho[1] > rho[0] + 0.03
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


def test_rerank_top_reorders_only_the_region_and_keeps_its_values():
    rng = np.random.default_rng(0)
    score = rng.normal(size=200)
    top_score = rng.normal(size=200)
    nearest = rng.normal(size=200)
    out = rerank_top(score, top_score, nearest, region=0.3, blend=0.5, safeguard=0.0)
    base = rerank_top(score, None, nearest, safeguard=0.0)
    region = np.flatnonzero(base >= np.quantile(base, 0.7))
    rest = np.setdiff1d(np.arange(200), region)
    # outside the region nothing moves; inside, the same values are handed out again
    assert np.array_equal(out[rest], base[rest])
    assert np.allclose(np.sort(out[region]), np.sort(base[region]))
    assert not np.array_equal(out[region], base[region])
    # blend 1: the region follows the top-region model's order exactly
    full = rerank_top(score, top_score, nearest, region=0.3, blend=1.0, safeguard=0.0)
    assert np.array_equal(np.argsort(full[region]), np.argsort(top_score[region]))
    # the safeguard leans on the nearest source: with weight 1 the base is its ranking
    sg = rerank_top(score, None, nearest, safeguard=1.0)
    assert np.array_equal(np.argsort(sg), np.argsort(nearest))
    with pytest.raises(MetaError, match="in \\[0, 1\\]"):
        rerank_top(score, top_score, nearest, region=1.5)


def test_second_stage_is_fitted_with_the_map_and_can_be_switched_off():
    feats, full, cheap = _world()
    shots = np.random.default_rng(2).choice(len(full), 20, replace=False)
    forest = fit_top_model(feats)
    assert forest is not None and forest.n_features_in_ == 1 + feats.C.shape[1] + feats.A.shape[1]
    mf = MultiFidelityPredictor(feats, cheap[:, None], low_fidelity_names=["c_test_12ep"],
                                top_model=forest).fit(shots, full[shots])
    assert mf.top_score_ is not None and any(c.startswith("map+near+structure")
                                             for c in mf.candidates_)
    first = MultiFidelityPredictor(feats, cheap[:, None], low_fidelity_names=["c_test_12ep"],
                                   structure_head=False, top_model=False, safeguard=0.0) \
        .fit(shots, full[shots])
    assert first.top_score_ is None and not any("structure" in c for c in first.candidates_)
    assert not np.allclose(first.predict_score(range(len(full))),
                           mf.predict_score(range(len(full))))
    # no pair of fidelities among the sources: no map, no second stage, no safeguard
    plain = AccuracyFeatures(feats.source_accuracy[:, 1:], feats.onehot, feats.structure,
                             feats.sources[1:])
    assert fit_top_model(plain) is None
    near = MultiFidelityPredictor(plain, cheap[:, None]).fit(shots, full[shots])
    assert not near.map_ and near.top_score_ is None
