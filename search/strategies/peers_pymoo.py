"""pymoo's multi-objective algorithms as hwnas strategies, through pymoo's ask/tell.

Blank & Deb, "pymoo: Multi-Objective Optimization in Python", IEEE Access 8, 2020. The space's
genes are integer variables (``0 .. n_choices - 1``) with pymoo's recipe for them:
``IntegerRandomSampling``, SBX crossover and polynomial mutation on floats rounded back by
``RoundingRepair`` (probability 1, distribution index ``eta`` 3, as in pymoo's integer-variable
example). The algorithms: NSGA-II (Deb et al., IEEE TEVC 2002), NSGA-III (Deb & Jain, IEEE TEVC
2014), MOEA/D (Zhang & Li, IEEE TEVC 2007), SMS-EMOA (Beume, Naujoks & Emmerich, EJOR 2007) and
AGE-MOEA (Panichella, GECCO 2019); population 20 by default (pymoo's is 100: at a few hundred
evaluations that would be three generations).

NSGA-III and MOEA/D need reference directions: Das & Dennis's simplex lattice
(``get_reference_directions("das-dennis", ...)``) with the most partitions whose points fit the
population (for two objectives, exactly one direction per member). MOEA/D's population is its
number of directions and its neighbourhood a fifth of them (Zhang & Li use 20 of 100).

``ask`` returns what pymoo asks for (a generation; MOEA/D one child at a time), whatever ``n``.
pymoo must be told all of it: architectures told are matched by value (repeats share one), and
when the next ``ask`` comes with some never told (no metric value, or the budget ended) they are
told as infeasible (constraint violation 1) at the worst objective values seen so far -- MOEA/D
takes no constraints, so it sees only those values. A constraint violation > 0 reaches the
algorithms that take one as pymoo's inequality constraint (``G <= 0`` is feasible, as hwnas's).
pymoo eliminates duplicates within a generation and against its population only, so a child
seen in an earlier generation is served from the loop's cache: free, and uncounted.
"""

from __future__ import annotations

from collections.abc import Sequence
from math import comb
from typing import Any, ClassVar

import numpy as np

from ..errors import HwnasError
from ..spaces.space import Architecture, Space
from .peers import PeerLibraryError, require

__all__ = ["PymooStrategy", "PymooNSGA2", "PymooNSGA3", "PymooMOEAD", "PymooSMSEMOA",
           "PymooAGEMOEA", "reference_directions"]


def reference_directions(n_objectives: int, at_most: int) -> np.ndarray:
    """Das & Dennis's simplex-lattice directions, the most partitions with ``<= at_most`` points
    (``C(p + m - 1, m - 1)`` points for ``p`` partitions and ``m`` objectives; at least one
    partition)."""
    require("pymoo", "reference directions")
    from pymoo.util.ref_dirs import get_reference_directions

    p = 1
    while comb(p + 1 + n_objectives - 1, n_objectives - 1) <= at_most:
        p += 1
    return get_reference_directions("das-dennis", n_objectives, n_partitions=p)


class PymooStrategy:
    """One pymoo algorithm over a space's genes (integer variables), behind hwnas's ask/tell.

    Args:
        space: the search space.
        n_objectives: number of (minimised) objective columns ``tell`` receives.
        seed: pymoo's seed (same seed, same proposals).
        pop_size: population (for MOEA/D: at most this many reference directions).
        eta_crossover: SBX distribution index.
        eta_mutation: polynomial mutation distribution index.

    Attributes:
        algorithm: the pymoo algorithm, set up on the space's integer problem.
    """

    #: registered name, e.g. ``pymoo:nsga2``
    name: ClassVar[str] = "pymoo"
    #: whether the algorithm handles inequality constraints (MOEA/D does not)
    constrained: ClassVar[bool] = True

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None,
                 pop_size: int = 20, eta_crossover: float = 3.0, eta_mutation: float = 3.0):
        require("pymoo", self.name)
        from pymoo.core.problem import Problem as PymooProblem
        from pymoo.operators.crossover.sbx import SBX
        from pymoo.operators.mutation.pm import PM
        from pymoo.operators.repair.rounding import RoundingRepair
        from pymoo.operators.sampling.rnd import IntegerRandomSampling

        if isinstance(n_objectives, bool) or not isinstance(n_objectives, int) or n_objectives < 1:
            raise HwnasError(f"{self.name}: n_objectives must be an integer >= 1, got "
                             f"{n_objectives!r}")
        if isinstance(pop_size, bool) or not isinstance(pop_size, int) or pop_size < 2:
            raise HwnasError(f"{self.name}: pop_size must be an integer >= 2, got {pop_size!r}")
        self.space, self.n_objectives, self.seed = space, n_objectives, seed
        self.pop_size, self.eta_crossover, self.eta_mutation = pop_size, eta_crossover, eta_mutation
        xu = space.n_choices - 1
        self._problem = PymooProblem(n_var=len(space.genes), n_obj=n_objectives,
                                     n_ieq_constr=1 if self.constrained else 0,
                                     xl=np.zeros_like(xu), xu=xu, vtype=int)
        operators = {
            "sampling": IntegerRandomSampling(),
            "crossover": SBX(prob=1.0, eta=eta_crossover, vtype=float, repair=RoundingRepair()),
            "mutation": PM(prob=1.0, eta=eta_mutation, vtype=float, repair=RoundingRepair()),
        }
        self.algorithm = self._algorithm(operators)
        self.algorithm.setup(self._problem, termination=("n_gen", 10**9), seed=seed,
                             verbose=False)
        self._asked: Any = None  # what pymoo asked for and has not been told yet
        self._archs: list[Architecture] = []
        self._told: dict[Architecture, tuple[np.ndarray, float]] = {}
        self._worst: np.ndarray | None = None  # the worst value of each objective told so far

    def _algorithm(self, operators: dict[str, Any]) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def ask(self, n: int = 1) -> list[Architecture]:
        """What pymoo asks for next (a generation, or one child), whatever ``n``."""
        if self._asked is not None:
            self._finish()
        from pymoo.core.individual import Individual

        asked = self.algorithm.ask()
        if asked is None:
            return []
        X = asked.X[None, :] if isinstance(asked, Individual) else asked.get("X")
        if len(X) == 0:
            return []
        X = np.rint(np.asarray(X, dtype=np.float64)).astype(np.int64)
        self._asked = asked
        # pymoo's genes are every gene; from_genes canonicalises spaces with inactive genes
        self._archs = [self.space.from_genes(x) for x in X]
        self._told = {}
        return list(self._archs)

    def tell(self, archs: Sequence[Architecture], F: np.ndarray,
             violation: np.ndarray | None = None) -> None:
        """Values of asked architectures; pymoo is told once every one of them has a value (or
        at the next ``ask``). Architectures it did not ask for are ignored: pymoo has no way to
        be told them."""
        F = np.asarray(F, dtype=np.float64).reshape(len(archs), self.n_objectives)
        v = np.zeros(len(archs)) if violation is None else np.asarray(violation, dtype=float)
        if self._asked is None:
            return
        wanted = set(self._archs)
        for a, f, vi in zip(archs, F, v, strict=True):
            if a in wanted:
                self._told[a] = (f, float(vi))
                self._worst = f.copy() if self._worst is None else np.maximum(self._worst, f)
        if all(a in self._told for a in self._archs):
            self._finish()

    def _finish(self) -> None:
        """Tell pymoo the asked generation; the architectures without a value are infeasible
        at the worst values seen (zeros if none was ever seen)."""
        from pymoo.core.evaluator import Evaluator
        from pymoo.problems.static import StaticProblem

        worst = np.zeros(self.n_objectives) if self._worst is None else self._worst
        F = np.stack([self._told.get(a, (worst, 1.0))[0] for a in self._archs])
        G = np.array([[self._told.get(a, (worst, 1.0))[1]] for a in self._archs])
        if not self.constrained:  # MOEA/D compares values only: an untold one is at the worst
            F = np.where(np.array([a in self._told for a in self._archs])[:, None], F, worst)
            static = StaticProblem(self._problem, F=F)
        else:
            static = StaticProblem(self._problem, F=F, G=G)
        asked, self._asked = self._asked, None
        Evaluator().eval(static, asked)
        self.algorithm.tell(infills=asked)


class PymooNSGA2(PymooStrategy):
    """pymoo's ``NSGA2`` (Deb et al., IEEE TEVC 2002), duplicates eliminated.

    Example:
        >>> from hwnas.search import get_space
        >>> len(PymooNSGA2(get_space("nb201"), 2, seed=0, pop_size=10).ask())
        10
    """

    name = "pymoo:nsga2"

    def _algorithm(self, operators: dict[str, Any]) -> Any:
        from pymoo.algorithms.moo.nsga2 import NSGA2

        return NSGA2(pop_size=self.pop_size, eliminate_duplicates=True, **operators)


class PymooNSGA3(PymooStrategy):
    """pymoo's ``NSGA3`` (Deb & Jain, IEEE TEVC 2014) on Das-Dennis reference directions."""

    name = "pymoo:nsga3"

    def _algorithm(self, operators: dict[str, Any]) -> Any:
        from pymoo.algorithms.moo.nsga3 import NSGA3

        ref_dirs = reference_directions(self.n_objectives, self.pop_size)
        return NSGA3(ref_dirs=ref_dirs, pop_size=self.pop_size, eliminate_duplicates=True,
                     **operators)


class PymooMOEAD(PymooStrategy):
    """pymoo's ``MOEAD`` (Zhang & Li, IEEE TEVC 2007): Tchebycheff decomposition (pymoo's
    default for two objectives and more), one child per ask, no constraints.

    Args:
        n_neighbors: neighbourhood size (default: a fifth of the directions, at least 2).
        prob_neighbor_mating: probability of mating within the neighbourhood (pymoo's 0.9).
    """

    name = "pymoo:moead"
    constrained = False

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None,
                 pop_size: int = 20, eta_crossover: float = 3.0, eta_mutation: float = 3.0,
                 n_neighbors: int | None = None, prob_neighbor_mating: float = 0.9):
        self.n_neighbors, self.prob_neighbor_mating = n_neighbors, prob_neighbor_mating
        super().__init__(space, n_objectives, seed, pop_size, eta_crossover, eta_mutation)

    def _algorithm(self, operators: dict[str, Any]) -> Any:
        from pymoo.algorithms.moo.moead import MOEAD

        ref_dirs = reference_directions(self.n_objectives, self.pop_size)
        k = self.n_neighbors or max(2, -(-len(ref_dirs) // 5))
        if not 2 <= k <= len(ref_dirs):
            raise HwnasError(f"{self.name}: n_neighbors must be in 2..{len(ref_dirs)} (the "
                             f"reference directions), got {k}")
        return MOEAD(ref_dirs=ref_dirs, n_neighbors=k,
                     prob_neighbor_mating=self.prob_neighbor_mating, **operators)


class PymooSMSEMOA(PymooStrategy):
    """pymoo's ``SMSEMOA`` (Beume et al., EJOR 2007): survival by least hypervolume
    contribution, duplicates eliminated."""

    name = "pymoo:smsemoa"

    def _algorithm(self, operators: dict[str, Any]) -> Any:
        from pymoo.algorithms.moo.sms import SMSEMOA

        return SMSEMOA(pop_size=self.pop_size, eliminate_duplicates=True, **operators)


class PymooAGEMOEA(PymooStrategy):
    """pymoo's ``AGEMOEA`` (Panichella, GECCO 2019): survival by the estimated geometry of the
    front, duplicates eliminated."""

    name = "pymoo:agemoea"

    def _algorithm(self, operators: dict[str, Any]) -> Any:
        try:
            from pymoo.algorithms.moo.age import AGEMOEA
        except Exception:  # pymoo raises a bare Exception when numba is missing
            raise PeerLibraryError(f'{self.name} needs numba, which is not installed: pip '
                                   'install "hwnas[pymoo]"') from None

        return AGEMOEA(pop_size=self.pop_size, eliminate_duplicates=True, **operators)
