"""Data-free zero-cost accuracy proxies: SynFlow of an untrained network.

Zero-cost proxies (Abdelfattah, Mehrotra, Dudziak & Lane, "Zero-Cost Proxies for Lightweight NAS",
ICLR 2021) score an architecture at initialisation, without training. SynFlow (Tanaka, Kunin,
Yamins & Ganguli, "Pruning neural networks without any data by iteratively conserving synaptic
flow", NeurIPS 2020) needs no data at all: every weight is replaced by its absolute value, an
all-ones input is pushed through the network, and the score is ``sum(theta * dR/dtheta)`` with
``R`` the sum of the outputs. Batch normalisation runs in evaluation mode with its initial
statistics (the identity), as the proxies' reference code removes it for SynFlow.

Proxies that need a real minibatch (``jacob_cov``, ``grad_norm``, ``snip``) are not here: the
public tables carry no images.

Example:
    >>> from hwnas.search import get_space
    >>> s = get_space("nb201")
    >>> a = s.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
    ...             "nor_conv_3x3~1|nor_conv_3x3~2|")
    >>> synflow(s, [a]).shape  # doctest: +SKIP
    (1,)
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from hwnas.search import Architecture, Space

from .predictor_base import check_seed

__all__ = ["synflow", "synflow_score"]


def synflow_score(model: torch.nn.Module, input_shape: Sequence[int], seed: int = 0) -> float:
    """SynFlow of ``model`` (modified in place: use a fresh, untrained network).

    Args:
        model: the network; its parameters are re-drawn from ``seed`` by re-running each
            module's ``reset_parameters`` so the score does not depend on the global RNG (whose
            state is restored afterwards: the caller's stream is not disturbed).
        input_shape: ``(channels, height, width)`` of one input.
        seed: seeds the initial weights (an integer >= 0).

    Returns:
        ``sum over parameters of theta * dR/dtheta`` (float64), ``R = sum(model(ones))``.
    """
    seed = check_seed(seed) or 0
    # each module's reset_parameters draws from the global RNG and takes no generator: seed and
    # draw inside a forked copy of that RNG (restored on exit), so the caller's stream is as it was
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in model.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad(set_to_none=True)
    x = torch.ones(1, *input_shape, dtype=torch.float64)
    torch.sum(model(x)).backward()
    with torch.no_grad():
        return float(sum((p.grad * p).sum() for p in model.parameters() if p.grad is not None))


def synflow(space: Space, archs: Sequence[Architecture], seed: int = 0,
            progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """SynFlow of each architecture's network (``space.build``), ``log10``-scaled.

    Args:
        space: the search space (its ``build`` and ``input_shape``).
        archs: the architectures.
        seed: seeds every network's initial weights (the same seed for each).
        progress: ``progress(done, total)`` after each network.

    Returns:
        ``(len(archs),)`` float64 ``log10(synflow)``; ``-inf`` where the score is zero (a network
        whose output does not depend on its input).
    """
    seed = check_seed(seed) or 0
    out = np.empty(len(archs), dtype=np.float64)
    for i, a in enumerate(archs):
        kwargs = {"none": "drop"} if space.name == "nb201" else {}
        # building draws initial weights from the global RNG; synflow_score re-draws them from
        # the seed anyway, so build on a forked copy and leave the caller's stream alone
        with torch.random.fork_rng(devices=[]):
            model = space.build(a, **kwargs)
        score = synflow_score(model, space.input_shape(a), seed)
        with np.errstate(divide="ignore"):
            out[i] = np.log10(score) if score > 0 else -np.inf
        if progress is not None:
            progress(i + 1, len(archs))
    return out
