"""MAML (second order), first-order MAML and Meta-SGD as thin wrappers around a module.

In the spirit of learn2learn's ``MAML``: the wrapper holds the module (whose parameters are the
meta-learned initialisation) and, for Meta-SGD, the learned step sizes; ``adapt`` runs the inner
loop on a support set and returns a :class:`~hwnas.meta.functional.Learner`; the caller owns the
outer loop and its optimiser, which sees every meta-parameter through ``wrapper.parameters()``.

Example (one meta-iteration over a batch of episodes)::

    maml = MAML(model, inner_lr=0.01)
    opt = torch.optim.Adam(maml.parameters(), lr=1e-3)
    opt.zero_grad()
    for ep in episodes:
        learner = maml.adapt(ep.x_support, ep.y_support, steps=1)
        (F.mse_loss(learner(ep.x_query), ep.y_query) / len(episodes)).backward()
    opt.step()
"""

from __future__ import annotations

from torch import Tensor, nn
from torch.nn import functional as F

from .errors import MetaError
from .functional import Learner, LossFn, check_lr, gd_steps

__all__ = ["MAML", "MetaSGD"]


class MAML(nn.Module):
    """Model-Agnostic Meta-Learning (Finn, Abbeel & Levine, ICML 2017).

    Meta-learns the initial parameters of ``model`` such that a few gradient steps on a new task's
    support set give a low loss on its query set. The meta-gradient flows through the inner steps,
    including their Hessian-vector terms (``first_order=False``), or treats the inner gradients as
    constants (``first_order=True``: FOMAML, Nichol, Achiam & Schulman, "On First-Order
    Meta-Learning Algorithms", 2018), which is cheaper in time and memory; its meta-gradient is the
    query-loss gradient at the adapted parameters.

    Args:
        model: the module whose parameters are the meta-learned initialisation.
        inner_lr: the inner-loop step size alpha (> 0).
        first_order: drop second-order terms from the meta-gradient.
        loss_fn: inner-loop loss ``loss_fn(prediction, target)``; mean squared error by default.

    Raises:
        MetaError: ``inner_lr`` not a finite positive number, or ``model`` not a module.

    Example:
        >>> model = nn.Sequential(nn.Linear(1, 8), nn.ReLU(), nn.Linear(8, 1))
        >>> maml = MAML(model, inner_lr=0.01)
        >>> x, y = torch.randn(10, 1), torch.randn(10, 1)
        >>> learner = maml.adapt(x, y, steps=2)
        >>> F.mse_loss(learner(x), y).backward()   # meta-gradient into model's parameters
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.01, first_order: bool = False,
                 loss_fn: LossFn | None = None):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise MetaError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        self.module = model
        self.inner_lr = check_lr(inner_lr)
        self.first_order = bool(first_order)
        self.loss_fn: LossFn = F.mse_loss if loss_fn is None else loss_fn

    def forward(self, x: Tensor) -> Tensor:
        """The un-adapted model: ``model(x)`` with the meta-learned initialisation."""
        return self.module(x)

    def step_sizes(self) -> float | dict[str, Tensor]:
        """The inner-loop step size(s) that :meth:`adapt` uses."""
        return self.inner_lr

    def adapt(self, x: Tensor, y: Tensor, steps: int = 1,
              first_order: bool | None = None) -> Learner:
        """Run ``steps`` inner gradient steps on the support set ``(x, y)``.

        Args:
            x: support inputs.
            y: support targets.
            steps: number of inner steps (>= 0).
            first_order: overrides the wrapper's setting for this call; ``True`` at evaluation
                time gives the same adapted values without building a second-order graph.

        Returns:
            The adapted learner; ``learner(x)`` is differentiable w.r.t. the meta-parameters.

        Raises:
            MetaError: bad ``steps``, or ``x`` and ``y`` of different lengths.
        """
        fo = self.first_order if first_order is None else bool(first_order)
        start = dict(self.module.named_parameters())
        trajectory = [start, *gd_steps(self.module, x, y, steps=steps, lr=self.step_sizes(),
                                       loss_fn=self.loss_fn, params=start, first_order=fo)]
        return Learner(self.module, trajectory[-1], trajectory)


class MetaSGD(MAML):
    """Meta-SGD (Li, Zhou, Chen & Li, "Meta-SGD: Learning to Learn Quickly for Few-Shot
    Learning", 2017): MAML whose inner step size is a learned tensor of the parameter's shape.

    ``theta' = theta - alpha * grad`` element-wise, with ``alpha`` meta-learned together with
    ``theta``. The rates are registered parameters (``self.lrs``), so one outer optimiser over
    ``metasgd.parameters()`` updates both, and they receive gradients from the query loss.

    Args:
        model: the module whose parameters are the meta-learned initialisation.
        inner_lr: the initial value of every learned step size (> 0).
        first_order: drop second-order terms (the rates still get first-order gradients).
        loss_fn: inner-loop loss; mean squared error by default.

    Raises:
        MetaError: ``inner_lr`` not a finite positive number, or ``model`` not a module.

    Example:
        >>> metasgd = MetaSGD(nn.Linear(1, 1), inner_lr=0.05)
        >>> x, y = torch.randn(5, 1), torch.randn(5, 1)
        >>> F.mse_loss(metasgd.adapt(x, y)(x), y).backward()
        >>> metasgd.lrs[0].grad.shape
        torch.Size([1, 1])
    """

    def __init__(self, model: nn.Module, inner_lr: float = 0.01, first_order: bool = False,
                 loss_fn: LossFn | None = None):
        super().__init__(model, inner_lr, first_order, loss_fn)
        named = list(self.module.named_parameters())
        # ParameterDict keys cannot contain "." (as in "0.weight"); a list kept in the module's
        # parameter order, with the names alongside, avoids mangling them.
        self._lr_names = [n for n, _ in named]
        self.lrs = nn.ParameterList(
            [nn.Parameter(p.detach().new_full(p.shape, self.inner_lr)) for _, p in named])

    def step_sizes(self) -> dict[str, Tensor]:
        """The learned step sizes by parameter name."""
        return dict(zip(self._lr_names, self.lrs, strict=True))
