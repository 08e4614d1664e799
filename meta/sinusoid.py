"""The sinusoid regression benchmark of MAML (Finn, Abbeel & Levine, ICML 2017, section 5.1).

Each task regresses ``y = A sin(x - phi)`` with amplitude ``A ~ U[0.1, 5]`` and phase
``phi ~ U[0, pi]``, from inputs ``x ~ U[-5, 5]``; the learner sees K = 5, 10 or 20 points. The model
is an MLP 1-40-40-1 with ReLU. (The paper's released code, ``cbfinn/maml``, writes the phase with a
minus sign; with a phase uniform on ``[0, pi]`` both signs give the same family up to reflection.)
Every draw takes an explicit :class:`torch.Generator`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .errors import MetaError
from .tasks import TaskSampler, as_generator

__all__ = ["SinusoidDistribution", "SinusoidTask", "sinusoid_mlp", "sinusoid_sampler"]


def _check_range(name: str, r: tuple[float, float]) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in r)
    except (TypeError, ValueError):
        raise MetaError(f"{name} must be a (low, high) pair of numbers, got {r!r}") from None
    if not (math.isfinite(lo) and math.isfinite(hi) and lo <= hi):
        raise MetaError(f"{name} must be finite with low <= high, got {r!r}")
    return lo, hi


def _uniform(lo: float, hi: float, shape: tuple[int, ...], generator: torch.Generator,
             dtype: torch.dtype = torch.float32) -> Tensor:
    return lo + (hi - lo) * torch.rand(shape, generator=generator, dtype=dtype)


@dataclass(frozen=True)
class SinusoidTask:
    """One sinusoid ``y = amplitude * sin(x - phase)`` on ``x_range``.

    Callable as a task for :class:`~hwnas.meta.TaskSampler`: ``task(n, generator)`` draws ``n``
    inputs uniformly on ``x_range`` and returns ``(x, y)``, both of shape ``(n, 1)``.
    """

    amplitude: float
    phase: float
    x_range: tuple[float, float] = (-5.0, 5.0)

    def f(self, x: Tensor) -> Tensor:
        """The noiseless target at ``x``."""
        return self.amplitude * torch.sin(x - self.phase)

    def __call__(self, n: int, generator: torch.Generator,
                 dtype: torch.dtype = torch.float32) -> tuple[Tensor, Tensor]:
        x = _uniform(*self.x_range, (n, 1), generator, dtype)
        return x, self.f(x)


@dataclass(frozen=True)
class SinusoidDistribution:
    """The distribution over sinusoid tasks; defaults are the MAML paper's ranges.

    Args:
        amplitude: range of the amplitude (uniform).
        phase: range of the phase (uniform).
        x_range: range of the inputs (uniform).

    Raises:
        MetaError: a range that is not a finite ``(low, high)`` with ``low <= high``.

    Example:
        >>> dist = SinusoidDistribution()
        >>> task = dist.draw(torch.Generator().manual_seed(0))
        >>> 0.1 <= task.amplitude <= 5.0 and 0.0 <= task.phase <= math.pi
        True
    """

    amplitude: tuple[float, float] = (0.1, 5.0)
    phase: tuple[float, float] = (0.0, math.pi)
    x_range: tuple[float, float] = (-5.0, 5.0)

    def __post_init__(self) -> None:
        for name in ("amplitude", "phase", "x_range"):
            object.__setattr__(self, name, _check_range(name, getattr(self, name)))

    def draw(self, generator: torch.Generator) -> SinusoidTask:
        """One task: amplitude and phase drawn from ``generator``."""
        a, p = torch.rand(2, generator=generator, dtype=torch.float64).tolist()
        return SinusoidTask(self.amplitude[0] + a * (self.amplitude[1] - self.amplitude[0]),
                            self.phase[0] + p * (self.phase[1] - self.phase[0]), self.x_range)

    def tasks(self, n: int, seed: int | torch.Generator | None) -> list[SinusoidTask]:
        """``n`` tasks, e.g. a fixed set of unseen test tasks from a seed of its own."""
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise MetaError(f"n must be an integer >= 1, got {n!r}")
        g = as_generator(seed)
        return [self.draw(g) for _ in range(n)]


def sinusoid_sampler(shots: int, queries: int = 10,
                     distribution: SinusoidDistribution | None = None) -> TaskSampler:
    """An episode sampler over freshly drawn sinusoid tasks (an infinite task distribution).

    Args:
        shots: K, support points per task.
        queries: query points per task (the paper uses K for meta-training).
        distribution: task ranges; the MAML paper's by default.

    Returns:
        A :class:`~hwnas.meta.TaskSampler`; ``sampler.sample_batch(25, generator)`` is one
        meta-batch.

    Raises:
        MetaError: bad ``shots`` or ``queries``.
    """
    return TaskSampler((distribution or SinusoidDistribution()).draw, shots=shots, queries=queries)


def sinusoid_mlp(hidden: Sequence[int] = (40, 40), seed: int | torch.Generator | None = None,
                 dtype: torch.dtype = torch.float32) -> nn.Sequential:
    """The MAML paper's regressor: an MLP 1-40-40-1 with ReLU, initialised from ``seed``.

    Weights and biases are drawn as PyTorch's default ``nn.Linear`` initialisation
    (``U(-1/sqrt(fan_in), 1/sqrt(fan_in))``), but from ``seed``: the global RNG is not used.

    Args:
        hidden: hidden layer widths.
        seed: an integer seed, a generator, or ``None`` (non-deterministic).
        dtype: the parameters' dtype.

    Returns:
        The module.

    Raises:
        MetaError: an empty or non-positive ``hidden``.
    """
    widths = [1, *hidden, 1]
    if len(widths) < 3 or any(isinstance(w, bool) or not isinstance(w, int) or w < 1
                              for w in hidden):
        raise MetaError(f"hidden must be a non-empty sequence of integers >= 1, got {hidden!r}")
    g = as_generator(seed)
    layers: list[nn.Module] = []
    with torch.random.fork_rng(devices=[]):  # nn.Linear's own init would advance the global RNG
        for i, (a, b) in enumerate(zip(widths[:-1], widths[1:], strict=True)):
            layers.append(nn.Linear(a, b, dtype=dtype))
            if i < len(widths) - 2:
                layers.append(nn.ReLU())
    for layer in layers:
        if isinstance(layer, nn.Linear):
            bound = 1.0 / math.sqrt(layer.in_features)
            nn.init.uniform_(layer.weight, -bound, bound, generator=g)
            nn.init.uniform_(layer.bias, -bound, bound, generator=g)
    return nn.Sequential(*layers)
