"""Errors of ``hwnas.meta``: bad arguments to the meta-learners, samplers and benchmarks."""

from __future__ import annotations

from hwnas.search.errors import HwnasError

__all__ = ["MetaError"]


class MetaError(HwnasError, ValueError):
    """A meta-learning argument that cannot work: a non-positive learning rate, a negative number
    of steps, support inputs and targets of different lengths, a task too small for its episode.

    The message names the argument and the value it got, so the caller can fix it in one step.
    """
