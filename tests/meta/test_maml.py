"""MAML, first-order MAML, Meta-SGD and the functional inner loop: meta-gradients checked against
finite differences and closed forms on a tiny float64 model."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from hwnas.meta import MAML, Learner, MetaError, MetaSGD, adapt_params, functional_forward
from hwnas.search import HwnasError


def tiny_model(seed: int = 0) -> nn.Module:
    # tanh, not ReLU: the finite-difference check needs a loss that is smooth in the parameters
    g = torch.Generator().manual_seed(seed)
    model = nn.Sequential(nn.Linear(1, 3), nn.Tanh(), nn.Linear(3, 1)).double()
    with torch.no_grad():
        for p in model.parameters():
            p.copy_(torch.randn(p.shape, generator=g, dtype=torch.float64))
    return model


def tiny_episode(seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    xs, xq = (torch.randn(6, 1, generator=g, dtype=torch.float64) for _ in range(2))
    return xs, torch.sin(2 * xs), xq, torch.sin(2 * xq)


def meta_loss(model: nn.Module, params: dict, steps: int, lr: float) -> torch.Tensor:
    xs, ys, xq, yq = tiny_episode()
    fast = adapt_params(model, xs, ys, steps=steps, lr=lr, params=params)
    return F.mse_loss(functional_forward(model, fast, xq), yq)


def flat_grad(module: nn.Module) -> torch.Tensor:
    return torch.cat([p.grad.reshape(-1) for p in module.parameters()])


@pytest.mark.parametrize("steps", [1, 2])
def test_second_order_meta_gradient_matches_finite_differences(steps: int) -> None:
    model = tiny_model()
    lr, eps = 0.3, 1e-6
    maml = MAML(model, inner_lr=lr)
    xs, ys, xq, yq = tiny_episode()
    F.mse_loss(maml.adapt(xs, ys, steps=steps)(xq), yq).backward()
    analytic = flat_grad(model)

    base = {n: p.detach().clone() for n, p in model.named_parameters()}
    numeric = []
    for name, value in base.items():
        for i in range(value.numel()):
            losses = []
            for sign in (1, -1):
                shifted = {n: t.clone().requires_grad_() for n, t in base.items()}
                with torch.no_grad():
                    shifted[name].view(-1)[i] += sign * eps
                losses.append(meta_loss(model, shifted, steps, lr).item())
            numeric.append((losses[0] - losses[1]) / (2 * eps))
    numeric = torch.tensor(numeric, dtype=torch.float64)
    assert torch.allclose(analytic, numeric, rtol=1e-5, atol=1e-7)


def test_first_order_equals_gradient_at_adapted_params_and_differs_from_second_order() -> None:
    xs, ys, xq, yq = tiny_episode()
    grads = {}
    for first_order in (False, True):
        model = tiny_model()
        maml = MAML(model, inner_lr=0.3, first_order=first_order)
        learner = maml.adapt(xs, ys, steps=2)
        F.mse_loss(learner(xq), yq).backward()
        grads[first_order] = flat_grad(model)
        if first_order:
            # the query-loss gradient evaluated at the adapted parameters, as fresh leaves
            at = {n: t.detach().clone().requires_grad_() for n, t in learner.params.items()}
            F.mse_loss(functional_forward(model, at, xq), yq).backward()
            expected = torch.cat([at[n].grad.reshape(-1) for n, _ in model.named_parameters()])
            assert torch.allclose(grads[True], expected, rtol=1e-12, atol=1e-14)
    # the Hessian terms matter at this step size: the two meta-gradients are far apart
    rel = (grads[True] - grads[False]).norm() / grads[False].norm()
    assert rel > 0.05


def test_meta_sgd_rates_get_the_closed_form_gradient() -> None:
    # one step: theta' = theta - alpha * g, so dL_q/dalpha = -g * grad L_q(theta')
    xs, ys, xq, yq = tiny_episode()
    model = tiny_model()
    metasgd = MetaSGD(model, inner_lr=0.2)
    assert {id(p) for p in metasgd.lrs} <= {id(p) for p in metasgd.parameters()}
    learner = metasgd.adapt(xs, ys, steps=1)
    F.mse_loss(learner(xq), yq).backward()

    params = dict(model.named_parameters())
    g = torch.autograd.grad(F.mse_loss(functional_forward(model, params, xs), ys),
                            list(params.values()))
    at = {n: t.detach().clone().requires_grad_() for n, t in learner.params.items()}
    F.mse_loss(functional_forward(model, at, xq), yq).backward()
    for (name, _), rate, g_s in zip(params.items(), metasgd.lrs, g, strict=True):
        assert rate.grad is not None and rate.grad.abs().sum() > 0
        assert torch.allclose(rate.grad, -g_s * at[name].grad, rtol=1e-10, atol=1e-12)


def test_meta_sgd_starts_as_maml_and_its_rates_are_per_coordinate() -> None:
    xs, ys, _, _ = tiny_episode()
    a = MAML(tiny_model(), inner_lr=0.1).adapt(xs, ys, steps=3).params
    metasgd = MetaSGD(tiny_model(), inner_lr=0.1)
    b = metasgd.adapt(xs, ys, steps=3).params
    assert all(torch.allclose(a[n], b[n], rtol=0, atol=1e-14) for n in a)
    assert [r.shape for r in metasgd.lrs] == [p.shape for p in metasgd.module.parameters()]


def test_adapt_leaves_the_module_alone_and_keeps_its_trajectory() -> None:
    model = tiny_model()
    before = [p.detach().clone() for p in model.parameters()]
    xs, ys, xq, yq = tiny_episode()
    learner = MAML(model, inner_lr=0.1).adapt(xs, ys, steps=4)
    assert all(torch.equal(p, q) for p, q in zip(model.parameters(), before, strict=True))
    assert isinstance(learner, Learner) and learner.steps == 4
    support = [F.mse_loss(learner.at(k)(xs), ys).item() for k in range(5)]
    assert all(b < a for a, b in zip(support, support[1:], strict=False))  # descent on support
    assert torch.equal(learner.at(0)(xq), model(xq))
    with pytest.raises(MetaError, match="step must be"):
        learner.at(5)


def test_adapt_works_under_no_grad_for_evaluation() -> None:
    model = tiny_model()
    xs, ys, xq, _ = tiny_episode()
    with_graph = MAML(model, inner_lr=0.1).adapt(xs, ys, steps=2)(xq)
    with torch.no_grad():
        learner = MAML(model, inner_lr=0.1).adapt(xs, ys, steps=2, first_order=True).detach()
        out = learner(xq)
    assert not out.requires_grad
    assert torch.allclose(out, with_graph, rtol=0, atol=1e-14)


def test_frozen_parameters_stay_put_and_custom_loss_is_used() -> None:
    model = tiny_model()
    model[0].bias.requires_grad_(False)
    xs, ys, _, _ = tiny_episode()
    fast = adapt_params(model, xs, ys, steps=2, lr=0.1, loss_fn=F.l1_loss)
    assert fast["0.bias"] is model[0].bias
    l1 = adapt_params(model, xs, ys, steps=1, lr=0.1, loss_fn=F.l1_loss)["2.weight"]
    l2 = adapt_params(model, xs, ys, steps=1, lr=0.1)["2.weight"]
    assert not torch.allclose(l1, l2)


@pytest.mark.parametrize("lr", [0, -0.1, math.nan, math.inf, True, "0.1"])
def test_bad_learning_rates_raise(lr) -> None:
    with pytest.raises(MetaError, match="inner_lr must be a finite number > 0"):
        MAML(tiny_model(), inner_lr=lr)
    with pytest.raises(MetaError, match="inner_lr"):
        MetaSGD(tiny_model(), inner_lr=lr)


def test_bad_arguments_raise_clear_errors() -> None:
    model = tiny_model()
    xs, ys, _, _ = tiny_episode()
    maml = MAML(model)
    for steps in (-1, 1.5, True):
        with pytest.raises(MetaError, match="steps must be an integer >= 0"):
            maml.adapt(xs, ys, steps=steps)
    with pytest.raises(MetaError, match="same .*length"):
        maml.adapt(xs, ys[:3])
    with pytest.raises(MetaError, match="empty"):
        maml.adapt(xs[:0], ys[:0])
    with pytest.raises(MetaError, match="must be tensors"):
        maml.adapt(xs.numpy(), ys)
    with pytest.raises(MetaError, match="torch.nn.Module"):
        MAML(lambda x: x)  # type: ignore[arg-type]
    with pytest.raises(MetaError, match="not in the model: nope"):
        adapt_params(model, xs, ys, params={"nope": torch.zeros(1)})
    with pytest.raises(MetaError, match="learning rates missing for"):
        adapt_params(model, xs, ys, lr={"0.weight": torch.tensor(0.1)})
    frozen = tiny_model().requires_grad_(False)
    with pytest.raises(MetaError, match="nothing to adapt"):
        MAML(frozen).adapt(xs, ys)
    # one base class for everything a user can cause, and still a ValueError for plain callers
    assert issubclass(MetaError, HwnasError) and issubclass(MetaError, ValueError)
