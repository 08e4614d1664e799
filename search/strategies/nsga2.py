"""NSGA-II: generational, elitist multi-objective evolution with crowding.

Deb, Pratap, Agarwal & Meyarivan, "A Fast and Elitist Multiobjective Genetic Algorithm: NSGA-II",
IEEE Transactions on Evolutionary Computation 6(2), 2002. Each generation breeds children from the
survivors by binary tournament (constrained domination, then crowding distance), crossover and
mutation; survivors and children are merged and the best ``population`` by non-dominated sorting
then crowding distance survive ((mu + lambda) selection). Constraint violations enter through
Deb's constrained domination (feasible beats infeasible, less violation beats more). The genes'
choice indices are crossed and mutated as integers by SBX and polynomial mutation
(:mod:`hwnas.search.strategies.operators`), pymoo's recipe for integer variables.

Behind ask/tell a generation is bred when its predecessor has been asked for, from whatever has been
told by then; architectures told without being asked join the next survival like children. Those
already evaluated, or already among the pending children, are not asked again when a fresh one can
be found: the budget counts unique evaluations, so a duplicate costs nothing but also teaches
nothing.
"""

from __future__ import annotations

from bisect import bisect_left
from collections.abc import Callable
from functools import partial

import numpy as np

from ..errors import HwnasError
from ..pareto import crowding_distance, non_dominated_sort
from ..spaces.space import Architecture, Space
from .base import Strategy
from .operators import polynomial_mutation, reset_mutation, sbx_integer

__all__ = ["NSGA2", "constrained_rank", "rank_and_crowding", "fresh_child"]


def constrained_rank(F: np.ndarray, violation: np.ndarray) -> np.ndarray:
    """Front rank of every row under constrained domination (0 = non-dominated).

    Feasible rows are ranked by non-dominated sorting (for two objectives a sort and a sweep,
    Jensen, IEEE TEVC 2003; else :func:`~hwnas.search.pareto.non_dominated_sort`); infeasible rows
    follow by increasing violation, equal violations sharing a rank.
    """
    F = np.asarray(F, dtype=np.float64)
    v = np.asarray(violation, dtype=np.float64)
    ok = v <= 0
    rank = np.zeros(len(F), dtype=np.int64)
    if ok.any():
        rank[ok] = _rank_2d(F[ok]) if F.shape[1] == 2 else non_dominated_sort(F[ok])
    if not ok.all():
        top = rank[ok].max() + 1 if ok.any() else 0
        rank[~ok] = top + np.unique(v[~ok], return_inverse=True)[1].ravel()
    return rank


def _rank_2d(F: np.ndarray) -> np.ndarray:
    # Sweep in lexicographic order; front k is summarised by (f2, f1) of its last member, and
    # these keys increase with k, so the first front that does not dominate a row is a bisection.
    rank = np.empty(len(F), dtype=np.int64)
    keys: list[tuple[float, float]] = []
    f1, f2 = F[:, 0].tolist(), F[:, 1].tolist()
    for i in np.lexsort((F[:, 1], F[:, 0])).tolist():
        key = (f2[i], f1[i])
        k = bisect_left(keys, key)
        if k == len(keys):
            keys.append(key)
        else:
            keys[k] = key
        rank[i] = k
    return rank


def rank_and_crowding(F: np.ndarray, violation: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Constrained front rank and within-front crowding distance of every row.

    Returns:
        ``(rank, crowding)``; lower rank and then larger crowding is better.
    """
    F = np.asarray(F, dtype=np.float64)
    rank = constrained_rank(F, violation)
    crowd = np.zeros(len(F))
    for r in range(rank.max() + 1 if len(F) else 0):
        members = np.flatnonzero(rank == r)
        crowd[members] = crowding_distance(F[members])
    return rank, crowd


def fresh_child(strategy: Strategy, make: Callable[[], Architecture], taken: set[Architecture],
                tries: int = 10, walk: int = 30) -> Architecture:
    """A child from ``make()`` that is neither evaluated nor in ``taken``, when one can be found.

    ``make()`` is tried ``tries`` times; then the last child is mutated again and again (a random
    walk away from the evaluated region, at most ``walk`` steps), which finds a fresh architecture
    far sooner than more draws once the neighbourhood of the population is used up; then random
    samples; and if even those are all taken, the last child is returned.
    """
    for _ in range(tries):
        child = make()
        if child not in strategy.archive_ and child not in taken:
            return child
    for _ in range(walk):
        child = strategy.space.mutate(child, strategy.rng)
        if child not in strategy.archive_ and child not in taken:
            return child
    for _ in range(walk):
        sample = strategy.space.sample(strategy.rng)
        if sample not in strategy.archive_ and sample not in taken:
            return sample
    return child


_CHOICES = {"crossover": ("sbx", "uniform"), "mutation": ("pm", "reset", "one"),
            "tournament": ("dominance", "rank"), "selection": ("permutation", "random"),
            "duplicates": ("fresh", "free"), "survival": ("generation", "archive"),
            "pruning": ("crowding", "iterative")}


class NSGA2(Strategy):
    """NSGA-II (Deb et al., IEEE TEVC 2002) behind ask/tell, with duplicate elimination.

    The defaults were chosen on HELP's nb201 meta-training devices (``nsga2_diagnosis``, see
    results/benchmarks/README.md): the genes' choice indices read as integers, crossed by SBX and
    mutated by polynomial mutation (eta 3, as pymoo's integer recipe), the binary tournament of
    Deb et al. (constrained domination, then crowding) over shuffled survivors (every survivor
    enters the same number of tournaments, as in pymoo), and a steady-state generation: 20
    survivors, ``offspring`` children bred per generation (the (mu + lambda) survival of
    Deb et al. with lambda < mu, which adapts the population more often per evaluation).

    Args:
        space: the search space.
        n_objectives: number of objective columns.
        seed: seed of the strategy's own generator.
        population: survivors per generation, the least with ``keep_front`` (and the size of
            the initial random population; ``population=10, keep_front=True`` found more of the
            front at 300 evaluations, not at 1000: results/benchmarks/README.md).
        crossover_prob: probability that a mating crosses its parents (else copies them).
        mutation_prob: probability that a child is then mutated.
        crossover: ``sbx`` (simulated binary crossover on choice indices, two children per
            mating) or ``uniform`` (:meth:`Space.crossover`, one child).
        mutation: ``pm`` (polynomial mutation, each gene with probability 1/n), ``reset`` (each
            gene redrawn with probability 1/n, at least one) or ``one`` (:meth:`Space.mutate`).
        tournament: ``dominance`` (Deb et al.'s: constrained domination, then crowding) or
            ``rank`` (front rank, then crowding).
        selection: ``permutation`` (tournament pairs from shuffles of the survivors) or
            ``random`` (pairs drawn with replacement).
        duplicates: ``fresh`` (a child already evaluated or already asked is bred again, then
            walked away from, see :func:`fresh_child`) or ``free`` (as pymoo: children unique
            within the generation and against the survivors only; one evaluated earlier is
            asked again, which costs no budget).
        eta: distribution index of SBX and polynomial mutation.
        tries: breedings tried per child before :func:`fresh_child` walks away.
        offspring: children per generation after the initial population (default 3; None:
            ``population``).
        keep_front: let the survivors grow to hold every non-dominated one (a population
            size that follows the front found, in the manner of the dynamic population sizes
            of Tan, Lee & Khor, IEEE TEVC 5(6), 2001).
        survival: ``generation`` (Deb et al.'s (mu + lambda): survivors and the children told
            since) or ``archive`` (survivors chosen from every architecture evaluated so far,
            an unbounded elite archive as in Fieldsend, Everson & Singh, IEEE TEVC 7(3), 2003:
            one dropped by crowding can come back).
        pruning: how the last front admitted is cut: ``crowding`` (Deb et al.: crowding
            distance computed once) or ``iterative`` (the most crowded removed one at a time,
            crowding recomputed after each removal; Kukkonen & Deb, CEC 2006).

    Attributes:
        population_: the current survivors.
        generation_: generations bred so far (0 while the initial random population is asked).

    Raises:
        HwnasError: an unknown operator name, or sizes that are not integers >= 1
            (``population`` >= 2).

    Example:
        >>> from hwnas.search import get_space
        >>> ga = NSGA2(get_space("nb201"), 2, seed=0, population=10)
        >>> len(ga.ask(4))
        4
    """

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None,
                 population: int = 20, crossover_prob: float = 1.0, mutation_prob: float = 1.0,
                 crossover: str = "sbx", mutation: str = "pm", tournament: str = "dominance",
                 selection: str = "permutation", duplicates: str = "fresh", eta: float = 3.0,
                 tries: int = 10, offspring: int | None = 3, keep_front: bool = False,
                 survival: str = "generation", pruning: str = "crowding"):
        super().__init__(space, n_objectives, seed)
        for what, value in (("crossover", crossover), ("mutation", mutation),
                            ("tournament", tournament), ("selection", selection),
                            ("duplicates", duplicates), ("survival", survival),
                            ("pruning", pruning)):
            if value not in _CHOICES[what]:
                raise HwnasError(f"nsga2: {what} {value!r}; valid: {', '.join(_CHOICES[what])}")
        for what, value, least in (("population", population, 2), ("tries", tries, 1),
                                   ("offspring", 1 if offspring is None else offspring, 1)):
            if isinstance(value, bool) or not isinstance(value, int) or value < least:
                raise HwnasError(f"nsga2: {what} must be an integer >= {least}, got {value!r}")
        self.population, self.crossover_prob = population, crossover_prob
        self.mutation_prob = mutation_prob
        self.crossover, self.mutation, self.tournament = crossover, mutation, tournament
        self.selection, self.duplicates, self.eta, self.tries = selection, duplicates, eta, tries
        self.offspring = population if offspring is None else offspring
        self.keep_front, self.survival, self.pruning = keep_front, survival, pruning
        self.population_: list[Architecture] = []
        self.generation_ = 0
        self._pool: dict[Architecture, None] = {}  # told since the last survival
        self._queue: list[Architecture] = []
        self._asked: set[Architecture] = set()
        self._spare: list[Architecture] = []  # the second child of the last SBX mating
        self._perm: list[int] = []  # survivors still to enter a tournament in this shuffle
        self._F, self._v, self._crowd = np.zeros((0, n_objectives)), np.zeros(0), np.zeros(0)

    def ask(self, n: int = 1) -> list[Architecture]:
        out = []
        while len(out) < n:
            if not self._queue:
                self._breed()
            out.append(self._queue.pop())
            self._asked.add(out[-1])
        return out

    def _tell(self, archs: list[Architecture], F: np.ndarray, violation: np.ndarray) -> None:
        self._pool.update(dict.fromkeys(archs))

    def _breed(self) -> None:
        """Survival over survivors + everything told since, then a new generation of children."""
        if self.survival == "archive":  # (mu + everything evaluated)
            merged = list(self.archive_)
        else:
            merged = list(dict.fromkeys(self.population_ + list(self._pool)))
        self._pool.clear()
        self._spare, self._perm = [], []
        if len(merged) < 2:  # nothing to breed from yet: the initial random population
            make = partial(self.space.sample, self.rng)
        else:
            F = np.stack([self.archive_[a][0] for a in merged])
            v = np.array([self.archive_[a][1] for a in merged])
            keep = self._survivors(F, v)
            self.population_ = [merged[i] for i in keep]
            self._F, self._v = F[keep], v[keep]
            # the tournament compares survivors by rank (or domination) and crowding among the
            # survivors
            rank, crowd = rank_and_crowding(F[keep], v[keep])
            self._crowd = crowd
            make = partial(self._child, list(zip(rank.tolist(), (-crowd).tolist(), strict=True)))
            self.generation_ += 1
        children: list[Architecture] = []
        if self.duplicates == "free" and self.generation_ > 0:
            # as pymoo: unique within the generation and against the survivors; a child
            # evaluated earlier costs nothing (the loop serves it from its cache)
            taken = set(self.population_)
            fresh = 0
            for k in range(self.offspring):
                child = None
                for _ in range(self.tries):
                    c = make()
                    if c not in taken:
                        child = c
                        break
                if child is None or (k == self.offspring - 1 and fresh == 0
                                     and child in self.archive_):
                    child = fresh_child(self, make, taken | self._asked)
                taken.add(child)
                fresh += child not in self.archive_
                children.append(child)
        else:
            taken = set(self._asked)  # grows with this generation's children
            n = self.population if self.generation_ == 0 else self.offspring
            for _ in range(n):
                child = fresh_child(self, make, taken, tries=self.tries)
                taken.add(child)
                children.append(child)
        self._queue = children[::-1]  # asked from the end, in breeding order

    def _survivors(self, F: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Rows of ``F`` that survive: whole fronts in rank order, the last one admitted cut by
        crowding distance (computed once, Deb et al.; or recomputed after every removal,
        Kukkonen & Deb, CEC 2006, which keeps a more even spread)."""
        rank, crowd = rank_and_crowding(F, v)
        size = max(self.population, int((rank == 0).sum())) if self.keep_front else \
            self.population
        if self.pruning == "crowding" or len(F) <= size:
            return np.lexsort((-crowd, rank))[:size]
        order = np.argsort(rank, kind="stable")
        r_cut = rank[order[size - 1]]
        keep = [i for i in order if rank[i] < r_cut]
        last = [i for i in order if rank[i] == r_cut]
        while len(keep) + len(last) > size:
            cd = crowding_distance(F[last])
            del last[int(np.argmin(cd))]
        return np.array(keep + last, dtype=np.int64)

    def _better(self, i: int, j: int, key: list[tuple[int, float]]) -> int:
        """The tournament's winner among survivors ``i`` and ``j``."""
        if self.tournament == "dominance":  # Deb et al.'s: by violation, domination, crowding
            vi, vj = self._v[i], self._v[j]
            if vi > 0 or vj > 0:
                if vi != vj:
                    return i if vi < vj else j
            else:
                fi, fj = self._F[i], self._F[j]
                if np.all(fi <= fj) and np.any(fi < fj):
                    return i
                if np.all(fj <= fi) and np.any(fj < fi):
                    return j
            ci, cj = self._crowd[i], self._crowd[j]
            if ci != cj:
                return i if ci > cj else j
            return i if self.rng.random() < 0.5 else j
        return i if key[i] <= key[j] else j

    def _tournament(self, key: list[tuple[int, float]]) -> Architecture:
        if self.selection == "permutation":
            if len(self._perm) < 2:
                self._perm = self.rng.permutation(len(key)).tolist() + self._perm
            i, j = self._perm.pop(), self._perm.pop()
        else:
            i, j = self.rng.integers(0, len(key), size=2).tolist()
        return self.population_[self._better(i, j, key)]

    def _child(self, key: list[tuple[int, float]]) -> Architecture:
        if self._spare:
            return self._spare.pop()
        child = self._tournament(key)
        if self.rng.random() < self.crossover_prob:
            other = self._tournament(key)
            if self.crossover == "sbx":
                child, second = sbx_integer(self.space, child, other, self.rng, self.eta)
                self._spare.append(self._mutate(second))
            else:
                child = self.space.crossover(child, other, self.rng)
        return self._mutate(child)

    def _mutate(self, child: Architecture) -> Architecture:
        if self.rng.random() >= self.mutation_prob:
            return child
        if self.mutation == "pm":
            return polynomial_mutation(self.space, child, self.rng, self.eta)
        if self.mutation == "reset":
            return reset_mutation(self.space, child, self.rng)
        return self.space.mutate(child, self.rng)
