"""Differentiable latency-aware search: the additive cost fit and the lambda trade-off."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from hwnas.search import HwnasError, MetricSource, get_space
from hwnas.search.oneshot.differentiable import (
    DifferentiableSearch,
    OpCosts,
    expected_latency,
    linear_op_costs,
)
from hwnas.search.oneshot.supernet import NB201Supernet

SPACE = get_space("nb201")
# made-up per-(edge, op) costs in ms: convolutions dear, none free
TRUE = np.array([[0.0, 0.05, 0.4, 1.0, 0.2]] * 6) * np.linspace(1.0, 2.0, 6)[:, None]


def _additive(archs):
    return np.array([0.7 + TRUE[np.arange(6), a.genes].sum() for a in archs])


class _Source(MetricSource):
    name, unit = "latency:synthetic", "ms"

    def _evaluate(self, archs):
        out = _additive(archs)
        out[::7] = np.nan  # a source may miss some architectures
        return out


def _data(n: int = 96, seed: int = 0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(10, (n,), generator=g)
    x = torch.randn(n, 1, 8, 8, generator=g) + 0.5 * y.view(-1, 1, 1, 1).float()
    return x, y


def test_linear_costs_recover_additive_latency_exactly():
    costs = linear_op_costs(SPACE, _additive, n_samples=80, rng=0)
    np.testing.assert_allclose(costs.cost, TRUE - TRUE[:, :1], atol=1e-9)
    assert costs.intercept == pytest.approx(0.7 + TRUE[:, 0].sum())
    assert costs.r2 == pytest.approx(1.0) and costs.r2_holdout == pytest.approx(1.0)
    archs = SPACE.sample_batch(10, rng=5)
    np.testing.assert_allclose(costs.predict(archs), _additive(archs))


def test_linear_costs_from_a_metric_source_skip_missing():
    costs = linear_op_costs(SPACE, _Source(), n_samples=70, rng=1)
    assert costs.n_samples == 60
    np.testing.assert_allclose(costs.cost, TRUE - TRUE[:, :1], atol=1e-9)


def test_linear_costs_need_enough_samples():
    with pytest.raises(HwnasError):
        linear_op_costs(SPACE, _additive, n_samples=10, rng=0)


def test_expected_latency_is_the_mean_under_softmax():
    costs = OpCosts(TRUE - TRUE[:, :1], 1.0, 1.0)
    uniform = expected_latency(torch.zeros(6, 5), costs)
    assert float(uniform) == pytest.approx(1.0 + (TRUE - TRUE[:, :1]).mean(axis=1).sum())
    one_hot = torch.full((6, 5), -1e4)
    one_hot[:, 0] = 0.0
    assert float(expected_latency(one_hot, costs)) == pytest.approx(1.0)


def _search(lam: float, seed: int = 0, hard: bool = True):
    torch.manual_seed(0)
    net = NB201Supernet(10, c=4, cells_per_stage=1, in_channels=1)
    x, y = _data()
    costs = linear_op_costs(SPACE, _additive, n_samples=60, rng=0)
    return DifferentiableSearch(net, (x[:64], y[:64]), (x[64:], y[64:]), costs, lam=lam,
                                epochs=3, batch_size=32, alpha_lr=0.1, hard=hard,
                                seed=seed).run()


def test_large_lambda_derives_a_lighter_architecture():
    free, penalised = _search(0.0), _search(5.0)
    assert penalised.expected_latency_ms < free.expected_latency_ms
    assert _additive([penalised.arch])[0] < _additive([free.arch])[0]
    assert penalised.history[-1]["expected_latency_ms"] == penalised.expected_latency_ms


def test_search_is_deterministic_and_leaves_the_supernet_alone():
    a, b = _search(1.0, seed=7), _search(1.0, seed=7)
    assert a.arch == b.arch
    np.testing.assert_array_equal(a.alpha, b.alpha)
    assert a.history == b.history
    net = NB201Supernet(10, c=4, cells_per_stage=1, in_channels=1)
    before = {k: v.clone() for k, v in net.state_dict().items()}
    DifferentiableSearch(net, _data(32), _data(32, seed=1), epochs=1, batch_size=16).run()
    for k, v in net.state_dict().items():
        torch.testing.assert_close(v, before[k])


def test_soft_relaxation_runs():
    res = _search(1.0, hard=False)
    assert res.probs.shape == (6, 5)
    np.testing.assert_allclose(res.probs.sum(axis=1), 1.0, rtol=1e-6)


def test_search_rejects_lambda_without_costs():
    net = NB201Supernet(10, c=4, cells_per_stage=1, in_channels=1)
    with pytest.raises(HwnasError):
        DifferentiableSearch(net, _data(), _data(), None, lam=1.0)
