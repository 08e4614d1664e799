"""The LSTM meta-learner: its update rule, where its meta-gradient goes, and that meta-training it
makes adaptation better on sinusoid tasks."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from hwnas.meta import (
    LSTMMetaLearner,
    MetaError,
    as_generator,
    preprocess_gradient,
    sinusoid_mlp,
    sinusoid_sampler,
)


def test_preprocessing_follows_andrychowicz_et_al() -> None:
    p = 10.0
    x = torch.tensor([2.0, -1e-3, 1e-6, 0.0, -1e-5], dtype=torch.float64, requires_grad=True)
    out = preprocess_gradient(x, p)
    assert out.shape == (5, 2)
    expected = [[math.log(2.0) / p, 1.0], [math.log(1e-3) / p, -1.0],
                [-1.0, math.exp(p) * 1e-6], [-1.0, 0.0], [-1.0, -math.exp(p) * 1e-5]]
    assert torch.allclose(out, torch.tensor(expected, dtype=torch.float64))
    out.sum().backward()
    assert torch.isfinite(x.grad).all()  # no NaN from the log branch at 0


def test_with_zero_gate_weights_one_step_is_shrink_then_gradient_step() -> None:
    model = sinusoid_mlp((8,), seed=0, dtype=torch.float64)
    opt = LSTMMetaLearner(model, hidden_size=4, inner_lr=0.05, seed=0)
    with torch.no_grad():
        opt.input_gate.weight.zero_()
        opt.forget_gate.weight.zero_()
    x, y = sinusoid_sampler(5, 1).sample(as_generator(0)).x_support.double(), None
    y = torch.sin(x)
    params = dict(model.named_parameters())
    grads = torch.autograd.grad(F.mse_loss(model(x), y), list(params.values()))
    learner = opt.adapt(x, y, steps=1)
    f = torch.sigmoid(torch.tensor(5.0, dtype=torch.float64))
    for (name, p), g in zip(params.items(), grads, strict=True):
        assert torch.allclose(learner.params[name], f * p - 0.05 * g, rtol=1e-10, atol=1e-12)


def test_meta_gradient_reaches_the_lstm_gates_and_initial_parameters() -> None:
    grads = {}
    for first_order in (True, False):
        model = sinusoid_mlp((8,), seed=0, dtype=torch.float64)
        opt = LSTMMetaLearner(model, hidden_size=4, first_order=first_order, seed=0)
        ep = sinusoid_sampler(5, 5).sample(as_generator(1))
        xs, ys, xq, yq = (t.double() for t in (ep.x_support, ep.y_support, ep.x_query,
                                               ep.y_query))
        F.mse_loss(opt.adapt(xs, ys, steps=3)(xq), yq).backward()
        for name, p in opt.named_parameters():
            assert p.grad is not None and p.grad.abs().sum() > 0, name
        grads[first_order] = opt.cell.weight_ih.grad.clone()
    # the second-order option differentiates through the gradient fed to the LSTM
    assert not torch.allclose(grads[True], grads[False])


def _query_mse(opt: LSTMMetaLearner, episodes, steps: int) -> float:
    total = 0.0
    for ep in episodes:
        with torch.no_grad():
            learner = opt.adapt(ep.x_support, ep.y_support, steps=steps).detach()
            total += F.mse_loss(learner(ep.x_query), ep.y_query).item()
    return total / len(episodes)


def test_meta_training_the_update_rule_improves_adaptation_on_sinusoids() -> None:
    torch.set_num_threads(1)
    test = sinusoid_sampler(10, 20).sample_batch(20, as_generator(123))
    opt = LSTMMetaLearner(sinusoid_mlp((16,), seed=0), hidden_size=4, inner_lr=0.01, seed=0)
    # train the optimiser only, from a fixed initialisation: any gain is the learned update rule's
    outer = torch.optim.Adam([p for n, p in opt.named_parameters()
                              if not n.startswith("module.")], lr=3e-2)
    unadapted, untrained = _query_mse(opt, test, 0), _query_mse(opt, test, 3)
    sampler, g = sinusoid_sampler(10, 10), as_generator(0)
    for _ in range(30):
        outer.zero_grad()
        for ep in sampler.sample_batch(4, g):
            F.mse_loss(opt.adapt(ep.x_support, ep.y_support, steps=3)(ep.x_query),
                       ep.y_query).div(4).backward()
        outer.step()
    trained = _query_mse(opt, test, 3)
    assert _query_mse(opt, test, 0) == unadapted  # the initialisation was not trained
    assert trained < 0.92 * untrained < untrained < unadapted


def test_joint_meta_training_lowers_the_adapted_loss() -> None:
    torch.set_num_threads(1)
    test = sinusoid_sampler(10, 20).sample_batch(20, as_generator(123))
    opt = LSTMMetaLearner(sinusoid_mlp((16,), seed=0), hidden_size=4, seed=0)
    outer = torch.optim.Adam(opt.parameters(), lr=1e-2)
    before = _query_mse(opt, test, 3)
    sampler, g = sinusoid_sampler(10, 10), as_generator(0)
    for _ in range(20):
        outer.zero_grad()
        for ep in sampler.sample_batch(4, g):
            F.mse_loss(opt.adapt(ep.x_support, ep.y_support, steps=3)(ep.x_query),
                       ep.y_query).div(4).backward()
        outer.step()
    after = _query_mse(opt, test, 3)
    assert after < 0.9 * before
    assert after < _query_mse(opt, test, 0)  # adaptation still helps after meta-training


def test_seeded_and_leaves_the_global_rng_alone() -> None:
    models = nn.Linear(1, 1), nn.Linear(1, 1)  # made (advancing the global RNG) before the check
    state = torch.get_rng_state()
    a = LSTMMetaLearner(models[0], hidden_size=3, seed=7)
    b = LSTMMetaLearner(models[1], hidden_size=3, seed=7)
    assert torch.equal(torch.get_rng_state(), state)
    assert all(torch.equal(p, q) for p, q in zip(a.cell.parameters(), b.cell.parameters(),
                                                  strict=True))


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"hidden_size": 0}, "hidden_size must be an integer >= 1"),
    ({"hidden_size": 2.5}, "hidden_size"),
    ({"inner_lr": 1.5}, r"inner_lr must be in \(0, 1\)"),
    ({"inner_lr": -0.1}, "inner_lr must be a finite number > 0"),
])
def test_bad_arguments_raise(kwargs: dict, match: str) -> None:
    with pytest.raises(MetaError, match=match):
        LSTMMetaLearner(nn.Linear(1, 1), **kwargs)


def test_bad_adapt_arguments_raise() -> None:
    opt = LSTMMetaLearner(nn.Linear(1, 1), hidden_size=2, seed=0)
    x = torch.zeros(4, 1)
    with pytest.raises(MetaError, match="steps must be an integer >= 0"):
        opt.adapt(x, x, steps=-2)
    with pytest.raises(MetaError, match="same .*length"):
        opt.adapt(x, x[:2])
    assert opt.adapt(x, x, steps=0).params["weight"] is opt.module.weight
