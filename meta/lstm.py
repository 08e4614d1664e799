"""An LSTM meta-learner: a learned, coordinate-wise optimiser for fast adaptation.

Ravi & Larochelle ("Optimization as a Model for Few-Shot Learning", ICLR 2017) observe that the
LSTM cell update ``c_t = f_t * c_{t-1} + i_t * c~_t`` is gradient descent when the cell state is the
learner's parameters, ``c~_t = -grad``, ``f_t = 1`` and ``i_t = lr``; they learn ``i_t`` (a
per-coordinate step size) and ``f_t`` (a per-coordinate shrinkage) with an LSTM that reads the
gradient and the loss, and they meta-learn the starting parameters ``c_0`` too. Following
Andrychowicz et al. ("Learning to learn by gradient descent by gradient descent", NeurIPS 2016)
the LSTM is shared across coordinates (so it works for any model size) and its inputs are
log/sign-preprocessed, since gradients span many orders of magnitude.

Meta-training backpropagates through the unrolled inner loop into the LSTM and the initial
parameters. As in both papers the gradient fed to the LSTM is treated as a constant by default
(``first_order=True``), which avoids second derivatives.
"""

from __future__ import annotations

import math

import torch
from torch import Tensor, nn
from torch.nn import functional as F

from .errors import MetaError
from .functional import Learner, LossFn, Params, check_lr, check_steps, check_support
from .functional import functional_forward as _forward

__all__ = ["LSTMMetaLearner", "preprocess_gradient"]


def preprocess_gradient(x: Tensor, p: float = 10.0) -> Tensor:
    """Andrychowicz et al. (2016, Appendix A) input preprocessing, element-wise.

    ``(log|x| / p, sign(x))`` if ``|x| >= exp(-p)``, else ``(-1, exp(p) * x)``: the first channel
    carries the magnitude on a log scale, the second the sign (or, for tiny values, a scaled copy),
    so inputs from 1e-8 to 1e3 all reach the LSTM in a usable range.

    Args:
        x: any tensor (gradients, a loss).
        p: the magnitude cut-off exponent (> 0); 10 in the paper.

    Returns:
        A tensor of shape ``x.shape + (2,)``.

    Example:
        >>> preprocess_gradient(torch.tensor([1.0, 0.0])).tolist()
        [[0.0, 1.0], [-1.0, 0.0]]
    """
    big = x.abs() >= math.exp(-p)
    # clamp before the log so that the untaken branch of torch.where is finite (no NaN gradients)
    magnitude = torch.where(big, x.abs().clamp_min(math.exp(-p)).log() / p, -torch.ones_like(x))
    sign = torch.where(big, torch.sign(x), math.exp(p) * x)
    return torch.stack([magnitude, sign], dim=-1)


class LSTMMetaLearner(nn.Module):
    """A meta-learned optimiser (Ravi & Larochelle, ICLR 2017) wrapped around a module.

    Per coordinate ``j`` of the model's parameters, at inner step ``t``:

    * ``h_t, c_t = LSTMCell([pre(grad_j), pre(loss)], (h_{t-1}, c_{t-1}))`` (shared weights),
    * ``i_t = sigmoid(W_i [h_t, theta_j, i_{t-1}] + b_i)``, ``f_t = sigmoid(W_f [h_t, theta_j,
      f_{t-1}] + b_f)``,
    * ``theta_j <- f_t * theta_j - i_t * grad_j``.

    ``b_i`` starts at ``logit(inner_lr)`` and ``b_f`` at 5 (``f`` near 1), so before meta-training
    the learner is close to plain gradient descent with step ``inner_lr``; meta-training moves it
    from there. The model's parameters (the starting point), the LSTM and the gates are all
    registered, so one outer optimiser over ``learner.parameters()`` trains everything.

    Args:
        model: the module to adapt; its parameters are the meta-learned initialisation.
        hidden_size: the LSTM's hidden size (20 in Andrychowicz et al.).
        inner_lr: the step size the input gate starts at (in (0, 1)).
        first_order: treat the gradient and loss fed to the LSTM as constants (as both papers do);
            ``False`` differentiates through them as well (second order).
        loss_fn: inner-loop loss; mean squared error by default.
        seed: seeds the LSTM's initial weights (the global RNG is neither used nor advanced).

    Raises:
        MetaError: a bad ``hidden_size`` or ``inner_lr``, or ``model`` not a module.

    Example:
        >>> opt = LSTMMetaLearner(nn.Linear(1, 1), hidden_size=8, seed=0)
        >>> x, y = torch.randn(5, 1), torch.randn(5, 1)
        >>> learner = opt.adapt(x, y, steps=3)
        >>> F.mse_loss(learner(x), y).backward()  # reaches the LSTM and the initial weights
    """

    def __init__(self, model: nn.Module, hidden_size: int = 20, inner_lr: float = 0.01,
                 first_order: bool = True, loss_fn: LossFn | None = None,
                 seed: int | None = None):
        super().__init__()
        if not isinstance(model, nn.Module):
            raise MetaError(f"model must be a torch.nn.Module, got {type(model).__name__}")
        if isinstance(hidden_size, bool) or not isinstance(hidden_size, int) or hidden_size < 1:
            raise MetaError(f"hidden_size must be an integer >= 1, got {hidden_size!r}")
        inner_lr = check_lr(inner_lr)
        if inner_lr >= 1:
            raise MetaError(f"inner_lr must be in (0, 1) (it is a sigmoid gate), got {inner_lr!r}")
        self.module = model
        self.hidden_size = hidden_size
        self.inner_lr = inner_lr
        self.first_order = bool(first_order)
        self.loss_fn: LossFn = F.mse_loss if loss_fn is None else loss_fn
        dtype = next(model.parameters(), torch.empty(0)).dtype
        # the layers' own initialisers draw from the global RNG: run them on a forked copy, then
        # overwrite every weight from our generator so that `seed` alone decides them
        with torch.random.fork_rng(devices=[]):
            self.cell = nn.LSTMCell(4, hidden_size, dtype=dtype)
            self.input_gate = nn.Linear(hidden_size + 2, 1, dtype=dtype)
            self.forget_gate = nn.Linear(hidden_size + 2, 1, dtype=dtype)
        g = torch.Generator()
        g.manual_seed(seed) if seed is not None else g.seed()
        bound = 1.0 / math.sqrt(hidden_size)
        for w in self.cell.parameters():
            nn.init.uniform_(w, -bound, bound, generator=g)
        for gate in (self.input_gate, self.forget_gate):
            # small weights (Ravi & Larochelle initialise them in [-0.01, 0.01]) so that the biases,
            # i.e. plain gradient descent, dominate at the start
            nn.init.uniform_(gate.weight, -0.01, 0.01, generator=g)
        with torch.no_grad():
            self.input_gate.bias.fill_(math.log(inner_lr / (1 - inner_lr)))
            self.forget_gate.bias.fill_(5.0)

    def forward(self, x: Tensor) -> Tensor:
        """The un-adapted model with the meta-learned initialisation."""
        return self.module(x)

    def adapt(self, x: Tensor, y: Tensor, steps: int = 1,
              first_order: bool | None = None) -> Learner:
        """Run ``steps`` learned update steps on the support set ``(x, y)``.

        Args:
            x: support inputs.
            y: support targets.
            steps: number of inner steps (>= 0).
            first_order: overrides the learner's setting for this call.

        Returns:
            The adapted learner; ``learner(x)`` is differentiable w.r.t. the LSTM's parameters
            and the model's initial parameters.

        Raises:
            MetaError: bad ``steps``, or ``x`` and ``y`` of different lengths.
        """
        check_support(x, y)
        check_steps(steps)
        fo = self.first_order if first_order is None else bool(first_order)
        start: Params = dict(self.module.named_parameters())
        names = [n for n, p in start.items() if p.requires_grad]
        if not names:
            raise MetaError("no parameter requires grad: nothing to adapt")
        sizes = [start[n].numel() for n in names]

        def unflatten(flat: Tensor) -> Params:
            parts = torch.split(flat, sizes)
            return {**start, **{n: t.view_as(start[n]) for n, t in zip(names, parts, strict=True)}}

        trajectory = [start]
        with torch.enable_grad():
            # the coordinates are the LSTM's batch: one flat vector of every adapted parameter
            theta = torch.cat([start[n].reshape(-1) for n in names])
            n_coords = theta.numel()
            h = c = theta.new_zeros(n_coords, self.hidden_size)
            i_prev = f_prev = theta.new_zeros(n_coords, 1)
            for _ in range(steps):
                loss = self.loss_fn(_forward(self.module, unflatten(theta), x), y)
                (grad,) = torch.autograd.grad(loss, theta, create_graph=not fo)
                if fo:
                    grad, loss = grad.detach(), loss.detach()
                inp = torch.cat([preprocess_gradient(grad),
                                 preprocess_gradient(loss).expand(n_coords, 2)], dim=1)
                h, c = self.cell(inp, (h, c))
                col = theta.unsqueeze(1)
                i_t = torch.sigmoid(self.input_gate(torch.cat([h, col, i_prev], dim=1)))
                f_t = torch.sigmoid(self.forget_gate(torch.cat([h, col, f_prev], dim=1)))
                theta = f_t.squeeze(1) * theta - i_t.squeeze(1) * grad
                i_prev, f_prev = i_t, f_t
                trajectory.append(unflatten(theta))
        return Learner(self.module, trajectory[-1], trajectory)
