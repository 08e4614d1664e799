"""Regularized (aging) evolution, made multi-objective.

Real, Aggarwal, Huang & Le, "Regularized Evolution for Image Classifier Architecture Search",
AAAI 2019. A population of ``population`` architectures is kept in order of birth; each child is a
one-edit mutation (:meth:`Space.mutate`) of the winner of a tournament among ``sample_size``
members drawn at random, and every architecture told joins the population, whose oldest member
then dies. The first ``population`` asks are random samples (fewer when tells of architectures not
asked for fill the population first).

With several objectives the tournament needs an order. ``selection="pareto"`` ranks the population
by constrained non-dominated sorting and crowding distance (Deb et al., IEEE TEVC 2002) and the
tournament winner is the member of lowest rank, then largest crowding. ``selection="tchebycheff"``
draws a random weight vector for every tournament and picks the member of smallest weighted
Tchebycheff distance to the population's ideal point (objectives normalised by the population's
range; infeasible members lose to feasible ones, then by violation), in the spirit of ParEGO's
random scalarisations (Knowles, IEEE TEVC 2006).

Pareto selection is the default: on NAS-Bench-201 (accuracy against latency on six devices) it found
about twice the true Pareto set that random Tchebycheff weights did at 1000 evaluations, because
crowding pushes every part of the front forward while a random weight in a tournament of a few
members mostly rewards the extremes. A population of 100 and tournaments of 25 beat the
single-objective defaults (20 and 5) there: a small aging population forgets front members
before their neighbourhoods are tried. Architectures already evaluated or asked are not asked again
when a fresh child can be found.
"""

from __future__ import annotations

from collections import deque
from functools import partial

import numpy as np

from ..errors import HwnasError
from ..pareto import crowding_distance
from ..spaces.space import Architecture, Space
from .base import Strategy
from .nsga2 import constrained_rank, fresh_child

__all__ = ["RegularizedEvolution"]

_SELECTIONS = ("pareto", "tchebycheff")


class RegularizedEvolution(Strategy):
    """Aging evolution (Real et al., AAAI 2019) with a multi-objective tournament.

    Args:
        space: the search space.
        n_objectives: number of objective columns.
        seed: seed of the strategy's own generator.
        population: members alive at once (the oldest dies when a new one is told).
        sample_size: members drawn into each tournament.
        selection: ``"pareto"`` (constrained rank, then crowding) or ``"tchebycheff"`` (random
            weights per tournament).

    Attributes:
        population_: the living members, oldest first.

    Raises:
        HwnasError: an unknown ``selection``.

    Example:
        >>> from hwnas.search import get_space
        >>> re = RegularizedEvolution(get_space("nb201"), 2, seed=0, population=10)
        >>> len(re.ask(4))
        4
    """

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None,
                 population: int = 100, sample_size: int = 25, selection: str = "pareto"):
        super().__init__(space, n_objectives, seed)
        if selection not in _SELECTIONS:
            raise HwnasError(f"selection {selection!r}; valid: {', '.join(_SELECTIONS)}")
        self.population, self.sample_size, self.selection = population, sample_size, selection
        self.population_: deque[Architecture] = deque(maxlen=population)
        self._asked: set[Architecture] = set()
        # the population again, in slots (the newest member takes the oldest one's slot)
        self._members: list[Architecture] = []
        self._F = np.zeros((population, n_objectives))
        self._v = np.zeros(population)
        self._born = 0
        self._rank: np.ndarray | None = None  # constrained ranks of the slots, until a tell

    def ask(self, n: int = 1) -> list[Architecture]:
        out: list[Architecture] = []
        for _ in range(n):
            full = len(self.population_) == self.population
            if not self.population_ or (len(self._asked) < self.population and not full):
                child = fresh_child(self, partial(self.space.sample, self.rng), self._asked)
            else:
                child = fresh_child(self, self._child, self._asked)
            self._asked.add(child)
            out.append(child)
        return out

    def _tell(self, archs: list[Architecture], F: np.ndarray, violation: np.ndarray) -> None:
        for a, f, v in zip(archs, F, violation, strict=True):
            slot = self._born % self.population  # the oldest member's slot, once full
            if self._born < self.population:
                self._members.append(a)
            else:
                self._members[slot] = a
            self._F[slot], self._v[slot] = f, v
            self._born += 1
        self.population_.extend(archs)
        self._rank = None

    def _population_state(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Objectives, violations and (``"pareto"``) constrained ranks of the slots in use."""
        n = len(self._members)
        F, v = self._F[:n], self._v[:n]
        if self._rank is None and self.selection == "pareto":
            self._rank = constrained_rank(F, v)
        return F, v, self._rank if self._rank is not None else np.zeros(0)

    def _child(self) -> Architecture:
        F, v, rank = self._population_state()
        members = self._members
        k = min(self.sample_size, len(members))
        picks = self.rng.choice(len(members), size=k, replace=False)
        if self.selection == "pareto":
            best_rank = rank[picks].min()
            tied = picks[rank[picks] == best_rank]
            if len(tied) > 1:  # crowding within the winners' front breaks the tie
                front = np.flatnonzero(rank == best_rank)
                crowd = crowding_distance(F[front])[np.searchsorted(front, tied)]
                tied = tied[np.argsort(-crowd, kind="stable")]
            best = tied[0]
        else:
            lo, hi = F.min(axis=0), F.max(axis=0)
            span = np.where(hi > lo, hi - lo, 1.0)
            w = self.rng.dirichlet(np.ones(self.n_objectives))
            score = np.max(w * (F[picks] - lo) / span, axis=1)
            best = picks[np.lexsort((score, np.maximum(v[picks], 0)))[0]]
        return self.space.mutate(members[int(best)], self.rng)
