"""Pareto local search: explore the one-edit neighbourhoods of the non-dominated archive.

Paquete, Chiarandini & Stützle, "Pareto Local Optimum Sets in the Biobjective Traveling Salesman
Problem: An Experimental Study", in *Metaheuristics for Multiobjective Optimisation*, Springer LNEMS
535, 2004. The archive holds every architecture told; an unexplored non-dominated member (under
constrained domination) is chosen, every neighbour not yet evaluated is asked for, and the member is
marked explored.

Three budget-minded choices, each a hyper-parameter (the defaults found the most of the true Pareto
set on NAS-Bench-201, accuracy against latency on six devices, at 300 and 1000 evaluations):

- which member: the one of largest crowding distance (Deb et al., IEEE TEVC 2002) among the
  unexplored front members, so sparse stretches of the front are filled first (random in the paper);
- ``visit``: neighbours asked per visit before a member is chosen again (4; the whole neighbourhood
  in the paper), and ``abandon``: a visit ends as soon as its member is dominated, so the budget
  follows the front as it moves;
- once every non-dominated member is explored, the search continues with the unexplored member
  nearest to the front (smallest normalised shift that would make it non-dominated, the additive
  epsilon of Zitzler et al., IEEE TEVC 2003), since Pareto sets of NAS problems are rarely
  connected by single edits; it restarts from a random sample only when nothing is left (or the
  nearest member is farther than ``max_gap``).
"""

from __future__ import annotations

import numpy as np

from ..errors import HwnasError
from ..pareto import crowding_distance
from ..spaces.space import Architecture, Space
from .base import Strategy

__all__ = ["ParetoLocalSearch"]

_PICKS = ("crowding", "random")


class ParetoLocalSearch(Strategy):
    """Pareto local search (Paquete et al., 2004) with crowding-ordered, abandonable visits.

    Args:
        space: the search space.
        n_objectives: number of objective columns.
        seed: seed of the strategy's own generator.
        init_samples: random architectures asked before the first visit.
        pick: which unexplored front member to visit: ``"crowding"`` (largest crowding distance)
            or ``"random"`` (the paper).
        visit: neighbours asked per visit (``None``: the whole neighbourhood).
        abandon: end a visit as soon as its member is dominated.
        max_gap: visit dominated members only while their normalised gap to the front is at most
            this (``0``: restart from a random sample whenever the front is explored).

    Attributes:
        explored_: members whose whole neighbourhood has been asked for.
        front_: the non-dominated architectures told so far (constrained domination).

    Raises:
        HwnasError: an unknown ``pick`` or a ``visit`` below 1.

    Example:
        >>> from hwnas.search import get_space
        >>> pls = ParetoLocalSearch(get_space("nb201"), 2, seed=0)
        >>> len(pls.ask(3))
        3
    """

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None,
                 init_samples: int = 10, pick: str = "crowding", visit: int | None = 4,
                 abandon: bool = True, max_gap: float = np.inf):
        super().__init__(space, n_objectives, seed)
        if pick not in _PICKS:
            raise HwnasError(f"pick {pick!r}; valid: {', '.join(_PICKS)}")
        if visit is not None and visit < 1:
            raise HwnasError(f"visit must be >= 1 or None, got {visit}")
        self.init_samples, self.pick, self.visit = init_samples, pick, visit
        self.abandon, self.max_gap = abandon, max_gap
        self.explored_: set[Architecture] = set()
        self._asked: set[Architecture] = set()
        self._rest: dict[Architecture, list[Architecture]] = {}  # neighbours still to ask
        self._current, self._left, self._on_front = -1, 0, False  # the visit under way
        self._archs: list[Architecture] = []  # rows of the arrays below, in order of first tell
        self._row: dict[Architecture, int] = {}
        self._F = np.zeros((64, n_objectives))
        self._v = np.zeros(64)
        self._done = np.zeros(64, dtype=bool)  # rows in explored_
        self._front = np.zeros(0, dtype=np.int64)  # rows of the non-dominated members
        self._gaps: np.ndarray | None = None  # gap of every row, until the front changes

    @property
    def front_(self) -> list[Architecture]:
        return [self._archs[r] for r in self._front]

    # ------------------------------------------------------------------ ask
    def ask(self, n: int = 1) -> list[Architecture]:
        out: list[Architecture] = []
        while len(out) < n:
            a = self._next_neighbour()
            if a is None:
                a = self._unseen_sample()
            self._asked.add(a)
            out.append(a)
        return out

    def _next_neighbour(self) -> Architecture | None:
        """The next unevaluated neighbour of the member being visited (choosing a new member when
        the visit is over), or ``None`` when a random sample is due."""
        if len(self._asked) < self.init_samples or not self._archs:
            return None
        while True:
            if (self._current < 0 or self._left == 0 or (
                    self.abandon and self._on_front and self._current not in self._front)):
                row = self._next_member()
                if row is None:
                    return None
                self._current, self._on_front = row, bool(row in self._front)
                self._left = -1 if self.visit is None else self.visit  # -1: no limit
            member = self._archs[self._current]
            rest = self._rest.get(member)
            if rest is None:
                rest = self.space.neighbours(member)
                rest = self._rest[member] = [rest[i] for i in self.rng.permutation(len(rest))]
            while rest:
                a = rest.pop()
                if a not in self.archive_ and a not in self._asked:
                    self._left -= 1
                    if not rest:
                        self._explored(member)
                    return a
            self._explored(member)

    def _explored(self, member: Architecture) -> None:
        self.explored_.add(member)
        self._done[self._row[member]] = True
        self._rest.pop(member, None)
        self._current = -1

    def _next_member(self) -> int | None:
        """Row of the unexplored front member to visit, else of the nearest-to-front one."""
        front = self._front
        todo = ~self._done[front]
        if todo.any():
            if self.pick == "random":
                return int(self.rng.choice(front[todo]))
            crowd = crowding_distance(self._F[front])[todo]
            best = np.flatnonzero(crowd == crowd.max())
            return int(front[todo][best[int(self.rng.integers(len(best)))]])
        n = len(self._archs)
        if self._gaps is None:
            self._gaps = self._gap(0, n)
        elif len(self._gaps) < n:
            self._gaps = np.concatenate([self._gaps, self._gap(len(self._gaps), n)])
        gap = np.where(self._done[:n], np.inf, self._gaps)
        best = int(np.argmin(gap))
        return best if np.isfinite(gap[best]) and gap[best] <= self.max_gap else None

    def _gap(self, start: int, stop: int) -> np.ndarray:
        """How far rows ``start:stop`` must move (all objectives at once, normalised by the
        front's range) to leave domination; infeasible rows come after feasible ones, by
        violation. Depends only on the front, so it is cached until the front changes."""
        F, v = self._F[start:stop], self._v[start:stop]
        front = self._F[self._front]
        span = np.ptp(front, axis=0)
        span[span <= 0] = 1.0
        diff = (F[:, None, :] - front[None, :, :]) / span
        gap = diff.min(axis=2).max(axis=1)
        return np.where(v > 0, 1e6 + v, gap)

    def _unseen_sample(self) -> Architecture:
        for _ in range(100):
            a = self.space.sample(self.rng)
            if a not in self.archive_ and a not in self._asked:
                break
        return a

    # ------------------------------------------------------------------ tell
    def _tell(self, archs: list[Architecture], F: np.ndarray, violation: np.ndarray) -> None:
        for a, f, vi in zip(archs, F, violation, strict=True):
            if a in self._row:
                continue  # told again (from the loop's cache): nothing changes
            r = len(self._archs)
            if r == len(self._v):
                self._F = np.concatenate([self._F, np.zeros_like(self._F)])
                self._v = np.concatenate([self._v, np.zeros_like(self._v)])
                self._done = np.concatenate([self._done, np.zeros_like(self._done)])
            self._row[a] = r
            self._archs.append(a)
            self._F[r], self._v[r] = f, vi
            self._insert(r)

    def _insert(self, r: int) -> None:
        """Add row ``r`` to the non-dominated set unless a member dominates it; drop the members it
        dominates (constrained domination, vectorised over the front)."""
        front = self._front
        if front.size:
            if _c_dominates(self._F[front], self._v[front], self._F[r], self._v[r]).any():
                return
            beaten = _c_dominates(self._F[r], self._v[r], self._F[front], self._v[front])
            front = front[~beaten]
        self._front = np.append(front, r)
        self._gaps = None


def _c_dominates(Fa: np.ndarray, va: np.ndarray | float, Fb: np.ndarray,
                 vb: np.ndarray | float) -> np.ndarray:
    """Deb's constrained domination of rows ``a`` over rows ``b`` (broadcast): feasible beats
    infeasible, less violation beats more, and between feasible rows Pareto domination."""
    pareto = np.all(Fa <= Fb, axis=-1) & np.any(Fa < Fb, axis=-1)
    va, vb = np.asarray(va), np.asarray(vb)
    fa, fb = va <= 0, vb <= 0
    return np.where(fa & fb, pareto, np.where(fa | fb, fa, va < vb))
