"""Functional fast adaptation: gradient steps on a copy of a module's parameters.

The inner loop of gradient-based meta-learning never touches the module's own parameters: it
computes new tensors from them (``theta' = theta - lr * grad``) and runs the module with those
through :func:`torch.func.functional_call`. The adapted tensors stay in the autograd graph of the
meta-parameters, so a loss of the adapted model can be differentiated with respect to the initial
parameters (MAML; Finn et al., ICML 2017) and to learned learning rates (Meta-SGD; Li et al., 2017).
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Callable, Iterator, Mapping

import torch
from torch import Tensor, nn
from torch.func import functional_call
from torch.nn import functional as F

from .errors import MetaError

__all__ = ["LossFn", "Params", "Learner", "adapt_params", "functional_forward", "gd_steps"]

Params = dict[str, Tensor]
"""Parameter tensors by their names in ``module.named_parameters()``."""

LossFn = Callable[[Tensor, Tensor], Tensor]
"""``loss_fn(prediction, target) -> scalar tensor``."""


def functional_forward(model: nn.Module, params: Mapping[str, Tensor], x: Tensor) -> Tensor:
    """``model(x)`` with ``params`` in place of the module's own parameters.

    Names missing from ``params`` (buffers, frozen parameters) fall back to the module's tensors.

    Args:
        model: any module; it is not modified.
        params: replacement tensors by parameter name.
        x: the input.

    Returns:
        The output, differentiable with respect to the tensors in ``params``.
    """
    return functional_call(model, dict(params), (x,), strict=False)


def check_support(x: Tensor, y: Tensor) -> None:
    """Raise :class:`MetaError` unless ``x`` and ``y`` are tensors of the same non-zero length."""
    if not isinstance(x, Tensor) or not isinstance(y, Tensor):
        raise MetaError(f"support x and y must be tensors, got {type(x).__name__} and "
                        f"{type(y).__name__}")
    if x.ndim == 0 or y.ndim == 0 or len(x) != len(y):
        raise MetaError(f"support x and y must have the same (non-zero) length, got shapes "
                        f"{tuple(x.shape)} and {tuple(y.shape)}")
    if len(x) == 0:
        raise MetaError("the support set is empty: adaptation needs at least one example")


def check_steps(steps: int) -> None:
    """Raise :class:`MetaError` unless ``steps`` is an integer >= 0."""
    if isinstance(steps, bool) or not isinstance(steps, int) or steps < 0:
        raise MetaError(f"steps must be an integer >= 0, got {steps!r}")


def check_lr(lr: float, name: str = "inner_lr") -> float:
    """``lr`` as a float if it is a finite positive number; a :class:`MetaError` otherwise."""
    if isinstance(lr, bool) or not isinstance(lr, int | float) or not math.isfinite(lr) or lr <= 0:
        raise MetaError(f"{name} must be a finite number > 0, got {lr!r}")
    return float(lr)


def gd_steps(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    steps: int,
    lr: float | Mapping[str, Tensor],
    loss_fn: LossFn = F.mse_loss,
    params: Mapping[str, Tensor] | None = None,
    first_order: bool = False,
) -> Iterator[Params]:
    """Yield the parameters after each of ``steps`` gradient steps on the support loss.

    The generator form of :func:`adapt_params`, for callers that want the whole trajectory (a
    meta-loss summed over steps, the error after 1 and after 10 steps from one run).

    Args:
        See :func:`adapt_params`.

    Returns:
        An iterator over ``steps`` parameter dicts: after step 1, 2, ..., ``steps``.

    Raises:
        MetaError: as :func:`adapt_params`, when called (not at the first step).
    """
    check_support(x, y)
    check_steps(steps)
    if not isinstance(lr, Mapping):
        lr = check_lr(lr)
    named = dict(model.named_parameters())
    current: Params = dict(named if params is None else params)
    unknown = sorted(set(current) - set(named))
    if unknown:
        raise MetaError(f"params names not in the model: {', '.join(unknown)}")
    names = [n for n, p in current.items() if p.requires_grad]
    if not names:
        raise MetaError("no parameter requires grad: nothing to adapt")
    if isinstance(lr, Mapping) and (missing := sorted(set(names) - set(lr))):
        raise MetaError(f"per-parameter learning rates missing for: {', '.join(missing)}")
    # validated above, at the call, rather than at the first next()
    return _steps(model, x, y, steps, lr, loss_fn, current, names, first_order)


def _steps(model: nn.Module, x: Tensor, y: Tensor, steps: int, lr: float | Mapping[str, Tensor],
           loss_fn: LossFn, current: Params, names: list[str], first_order: bool,
           ) -> Iterator[Params]:
    # Adaptation is itself gradient descent, so it needs autograd even when the caller evaluates
    # under torch.no_grad().
    with torch.enable_grad():
        for _ in range(steps):
            loss = loss_fn(functional_forward(model, current, x), y)
            # create_graph keeps d(grad)/d(theta) so that the meta-gradient includes the Hessian
            # term of MAML; without it the step is first-order (Nichol et al., 2018).
            grads = torch.autograd.grad(loss, [current[n] for n in names],
                                        create_graph=not first_order, allow_unused=True)
            new = dict(current)
            for n, g in zip(names, grads, strict=True):
                if g is None:  # a parameter the loss does not use keeps its value
                    continue
                if first_order:
                    g = g.detach()
                new[n] = current[n] - (lr[n] if isinstance(lr, Mapping) else lr) * g
            current = new
            yield current


def adapt_params(
    model: nn.Module,
    x: Tensor,
    y: Tensor,
    *,
    steps: int = 1,
    lr: float | Mapping[str, Tensor] = 0.01,
    loss_fn: LossFn = F.mse_loss,
    params: Mapping[str, Tensor] | None = None,
    first_order: bool = False,
) -> Params:
    """Parameters after ``steps`` steps of gradient descent on ``loss_fn(model(x), y)``.

    ``theta_{t+1} = theta_t - lr * grad L(theta_t)`` (MAML's inner loop; Finn et al., ICML 2017),
    computed functionally: the module keeps its parameters. With ``first_order=False`` the result
    is differentiable through the gradients themselves (second-order MAML); with
    ``first_order=True`` the gradients are treated as constants, so ``d theta_k / d theta_0 = I``
    (first-order MAML; Nichol et al., "On First-Order Meta-Learning Algorithms", 2018). A
    per-parameter ``lr`` mapping may hold tensors, which then receive gradients too (Meta-SGD;
    Li et al., 2017).

    Args:
        model: the module to adapt; not modified.
        x: support inputs, first dimension = examples.
        y: support targets, same first dimension.
        steps: number of gradient steps (0 returns the starting parameters).
        lr: step size, a float or a tensor per parameter name (broadcast element-wise).
        loss_fn: ``loss_fn(prediction, target)``, a scalar; mean squared error by default.
        params: the starting parameters; ``dict(model.named_parameters())`` by default. Only
            tensors that require grad are adapted.
        first_order: drop the second-order terms (cheaper, no graph through the gradients).

    Returns:
        The adapted parameters by name, ready for :func:`functional_forward`.

    Raises:
        MetaError: a bad ``steps`` or ``lr``, support tensors of different lengths, unknown names,
            or nothing that requires grad.

    Example:
        >>> model = nn.Linear(1, 1)
        >>> x, y = torch.randn(5, 1), torch.randn(5, 1)
        >>> fast = adapt_params(model, x, y, steps=3, lr=0.1)
        >>> meta_loss = F.mse_loss(functional_forward(model, fast, x), y)
        >>> meta_loss.backward()  # gradients reach model.weight through the three steps
        >>> model.weight.grad is not None
        True
    """
    start: Params = dict(model.named_parameters() if params is None else params)
    # keep only the last step: earlier first-order steps need not stay alive
    last = deque(gd_steps(model, x, y, steps=steps, lr=lr, loss_fn=loss_fn, params=start,
                          first_order=first_order), maxlen=1)
    return last[0] if last else start


class Learner:
    """An adapted model: the module run with adapted parameters, callable like the module.

    Its outputs are differentiable with respect to whatever the adaptation was differentiable
    with respect to (the meta-parameters), so ``loss(learner(x_query), y_query).backward()`` is
    one meta-gradient. Also keeps the parameters after every inner step.

    Attributes:
        module: the underlying module (shared, not copied).
        params: the adapted parameters by name.
        trajectory: parameters after step 0 (the start), 1, ..., ``steps``.
    """

    def __init__(self, module: nn.Module, params: Params, trajectory: list[Params] | None = None):
        self.module = module
        self.params = params
        self.trajectory = trajectory if trajectory is not None else [params]

    def __call__(self, x: Tensor) -> Tensor:
        return functional_forward(self.module, self.params, x)

    @property
    def steps(self) -> int:
        """How many inner steps produced ``params``."""
        return len(self.trajectory) - 1

    def at(self, step: int) -> Learner:
        """The learner after ``step`` inner steps (0 = before adaptation)."""
        if isinstance(step, bool) or not isinstance(step, int) or not 0 <= step <= self.steps:
            raise MetaError(f"step must be an integer in [0, {self.steps}], got {step!r}")
        return Learner(self.module, self.trajectory[step], self.trajectory[: step + 1])

    def detach(self) -> Learner:
        """A copy cut from the meta-parameters' graph (for evaluation: frees the graph)."""
        cut = [{n: t.detach() for n, t in p.items()} for p in self.trajectory]
        return Learner(self.module, cut[-1], cut)
