"""Candidates for a surrogate in spaces too large to list, and spaces restricted to a table.

A surrogate-guided search (:class:`hwnas.search.strategies.surrogate.SurrogateParetoSearch`) asks
the candidate its model likes best; in NAS-Bench-201 every architecture is a candidate, but FBNet
(9^22 chains) and once-for-all cannot be listed. Two cases:

- *A table of what can be evaluated* (HW-NAS-Bench's and HELP's 5,000 FBNet and OFA networks): the
  architectures outside it have no metric, so the candidates are the table's rows.
  :class:`TableSpace` is the base space restricted to those rows: it can be listed (and scored
  whole), and its operators land on rows -- a genotype stands for its nearest row (most genes in
  common), a mutation moves to the nearest *other* row -- so that any strategy (random search,
  evolution, NSGA-II, pymoo's) searches the same finite set, as the repair operators of
  evolutionary algorithms map infeasible children back to feasible ones (Michalewicz & Schoenauer,
  Evolutionary Computation 1996).
- *No table* (a live, lookup-table or computed metric): :class:`CandidateGenerator` draws around
  the current front, as local search and the mutation-based acquisition optimisers of BANANAS
  (White et al., AAAI 2021) and of Pareto local search (Paquete, Chiarandini & Stützle, 2004) do:
  every one-edit neighbour of the front members, multi-edit mutations of them, crossovers of two
  front members (NSGA-Net's uniform crossover, Lu et al., GECCO 2019) and uniform samples of the
  space (exploration).

:func:`list_architectures` lists an enumerable space (a product of choices, or a table).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from typing import Any

import numpy as np

from ..errors import ArchitectureError, HwnasError
from ..pareto import pareto_mask
from ..spaces.space import Architecture, Graph, RNGLike, Space, as_rng

__all__ = ["TableSpace", "CandidateGenerator", "list_architectures"]


def list_architectures(space: Space, max_size: int = 50_000) -> list[Architecture] | None:
    """Every architecture of ``space`` (a :class:`TableSpace`'s rows, or every product of choices
    of an enumerable space), or ``None`` when the space cannot be listed or has more than
    ``max_size`` architectures."""
    if isinstance(space, TableSpace):
        return list(space.archs) if len(space) <= max_size else None
    if not space.enumerable or space.size > max_size:
        return None
    genes = np.stack(np.unravel_index(np.arange(space.size), tuple(space.n_choices)), axis=1)
    if type(space).active is Space.active:
        return [Architecture(space.name, tuple(g)) for g in genes.tolist()]
    return list(dict.fromkeys(space.from_genes(g) for g in genes))


class TableSpace(Space):
    """A space restricted to given architectures of a base space (a table's rows).

    Its operators stay on the rows: :meth:`from_genes` gives the row with the most genes equal to
    the genotype (a row itself when it is one; ties: the first row), :meth:`sample` a uniformly
    drawn row, :meth:`mutate` the base space's mutation mapped to the nearest row other than the
    parent (ties drawn at random), :meth:`crossover` the base crossover mapped to its nearest row,
    and :meth:`neighbours` the ``neighbours`` rows sharing most genes with an architecture. Strings,
    encodings, graphs and networks are the base space's; the space can be listed.

    Args:
        base: the unrestricted space (e.g. ``get_space("fbnet")``).
        archs: its architectures that make up this space (duplicates dropped, order kept).
        neighbours: rows :meth:`neighbours` returns.

    Raises:
        HwnasError: no architectures, or one of another space.

    Example:
        >>> from hwnas.search.tables.load import load_tables
        >>> tables = load_tables("fbnet")
        >>> space = TableSpace(tables.space, tables.archs)
        >>> len(space), space.mutate(space.sample(0), 0) in space
        (5000, True)
    """

    def __init__(self, base: Space, archs: Sequence[Architecture], neighbours: int = 20):
        if isinstance(base, TableSpace):
            base = base.base
        archs = list(dict.fromkeys(archs))
        if not archs:
            raise HwnasError("TableSpace needs at least one architecture")
        for a in archs:
            base._check(a)
        self.base, self.n_neighbours = base, int(neighbours)
        self.name, self.kind, self.num_classes = base.name, base.kind, base.num_classes
        self.genes = base.genes
        self.build_version = base.build_version
        self.archs: tuple[Architecture, ...] = tuple(archs)
        self._row = {a: i for i, a in enumerate(archs)}
        self._G = np.array([a.genes for a in archs], dtype=np.int16)

    # ------------------------------------------------------------------ listing
    @property
    def enumerable(self) -> bool:
        return True

    @property
    def size(self) -> int:
        return len(self.archs)

    def __len__(self) -> int:
        return len(self.archs)

    def __iter__(self) -> Iterator[Architecture]:
        return iter(self.archs)

    def __contains__(self, arch: object) -> bool:
        return arch in self._row

    def index(self, arch: Architecture) -> int:
        """The row of ``arch``.

        Raises:
            ArchitectureError: an architecture that is not a row.
        """
        i = self._row.get(arch)
        if i is None:
            raise ArchitectureError(f"{arch!r} is not one of this table's {len(self)} rows")
        return i

    # ------------------------------------------------------------------ nearest rows
    def _matches(self, genes: Sequence[int]) -> np.ndarray:
        return (self._G == np.asarray(genes, dtype=np.int16)).sum(axis=1)

    def nearest(self, genes: Sequence[int], rng: RNGLike = None,
                exclude: Architecture | None = None) -> Architecture:
        """The row with the most genes equal to ``genes`` (other than ``exclude``); ties: the
        first row, or one drawn with ``rng`` when it is given."""
        m = self._matches(genes)
        if exclude is not None and exclude in self._row and len(self) > 1:
            m[self._row[exclude]] = -1
        tied = np.flatnonzero(m == m.max())
        i = tied[0] if rng is None or len(tied) == 1 else tied[as_rng(rng).integers(len(tied))]
        return self.archs[int(i)]

    def from_genes(self, genes: Sequence[int]) -> Architecture:
        """The row with these genes, else the row with most genes equal to them (first of ties).

        Raises:
            ArchitectureError: a genotype that is not one of the base space.
        """
        a = self.base.from_genes(genes)
        return a if a in self._row else self.nearest(a.genes)

    # ------------------------------------------------------------------ operators
    def sample(self, rng: RNGLike = None) -> Architecture:
        """A row drawn uniformly."""
        return self.archs[int(as_rng(rng).integers(len(self)))]

    def sample_batch(self, n: int, rng: RNGLike = None) -> list[Architecture]:
        return [self.archs[int(i)] for i in as_rng(rng).integers(len(self), size=n)]

    def mutate(self, arch: Architecture, rng: RNGLike = None) -> Architecture:
        """The base space's mutation of ``arch``, moved to the nearest row other than ``arch``."""
        rng = as_rng(rng)
        child = self.base.mutate(arch, rng)
        return child if child in self._row else self.nearest(child.genes, rng, exclude=arch)

    def crossover(self, a: Architecture, b: Architecture, rng: RNGLike = None) -> Architecture:
        """The base space's crossover of ``a`` and ``b``, moved to its nearest row."""
        rng = as_rng(rng)
        child = self.base.crossover(a, b, rng)
        return child if child in self._row else self.nearest(child.genes, rng)

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """The ``neighbours`` rows other than ``arch`` sharing most genes with it (ties: first
        rows first)."""
        self._check(arch)
        m = self._matches(arch.genes)
        if arch in self._row:
            m[self._row[arch]] = -1
        order = np.argsort(-m, kind="stable")[: self.n_neighbours]
        return [self.archs[int(i)] for i in order if m[i] >= 0]

    # ------------------------------------------------------------------ the base space's
    def active(self, genes: Sequence[int]) -> np.ndarray:
        return self.base.active(genes)

    def encode(self, arch: Architecture) -> np.ndarray:
        return self.base.encode(arch)

    def encode_batch(self, archs: Sequence[Architecture]) -> np.ndarray:
        return self.base.encode_batch(archs)

    def graph(self, arch: Architecture) -> Graph:
        return self.base.graph(arch)

    def format(self, arch: Architecture) -> str:
        return self.base.format(arch)

    def parse(self, text: str) -> Architecture:
        return self.base.parse(text)

    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        return self.base.input_shape(arch)

    def build(self, arch: Architecture, num_classes: int | None = None) -> Any:
        return self.base.build(arch, num_classes)

    def __repr__(self) -> str:
        return f"TableSpace(base={self.base.name!r}, rows={len(self)})"


class CandidateGenerator:
    """Candidates around the observed front of a space too large to list.

    Per call, new architectures only (``is_new``), at most ``n`` of them, in this order:

    1. the one-edit neighbours of the feasible front members, members in a random order, until
       they make ``local`` of ``n``;
    2. ``mutations`` of ``n``: a front member changed in 2 to ``max_edits`` genes (repeated
       mutation: farther than a neighbour, still near the front);
    3. ``crossovers`` of ``n``: two front members (or top-ranked archived ones when the front
       has one member) crossed over, then mutated once;
    4. the rest: uniform samples of the space.

    Args:
        space: the search space.
        n: candidates per call.
        local, mutations, crossovers: shares of ``n`` for parts 1-3.
        max_edits: most genes a mutation changes.
        tries: draws allowed per candidate wanted (an exhausted neighbourhood stops the loop).
    """

    def __init__(self, space: Space, n: int = 500, *, local: float = 0.5,
                 mutations: float = 0.2, crossovers: float = 0.2, max_edits: int = 3,
                 tries: int = 4):
        if n < 1 or min(local, mutations, crossovers) < 0 or local + mutations + crossovers > 1:
            raise HwnasError("CandidateGenerator: n >= 1 and shares in [0, 1] summing to at "
                             f"most 1, got n={n}, {local}, {mutations}, {crossovers}")
        if max_edits < 2:
            raise HwnasError(f"CandidateGenerator: max_edits >= 2, got {max_edits}")
        self.space, self.n, self.local = space, int(n), local
        self.mutations, self.crossovers = mutations, crossovers
        self.max_edits, self.tries = int(max_edits), int(tries)

    def __call__(self, archs: Sequence[Architecture], F: np.ndarray, violation: np.ndarray,
                 rng: np.random.Generator, is_new: Callable[[Architecture], bool]
                 ) -> list[Architecture]:
        """Up to ``n`` distinct new candidates around the archive's front (see the class)."""
        from .nsga2 import constrained_rank

        space, n = self.space, self.n
        pool: dict[Architecture, None] = {}

        def add(a: Architecture) -> None:
            if a not in pool and is_new(a):
                pool[a] = None

        feasible = np.flatnonzero(np.asarray(violation) <= 0)
        if len(feasible):
            front = feasible[pareto_mask(np.asarray(F)[feasible])]
        else:
            front = np.zeros(0, dtype=np.int64)
        order = np.argsort(constrained_rank(F, violation), kind="stable") if len(archs) else []
        parents = [archs[i] for i in rng.permutation(front)] if len(front) else [
            archs[i] for i in order[:1]]
        for p in parents:  # 1. one-edit neighbourhoods of the front
            # stop listing neighbourhoods once the share is full: listing all of them for
            # every front member was 97% of a whole-FBNet-space search's time
            if len(pool) >= self.local * n:
                break
            for b in space.neighbours(p):
                if len(pool) >= self.local * n:
                    break
                add(b)
        if parents:
            stop = len(pool) + self.mutations * n
            for _ in range(int(self.tries * self.mutations * n)):  # 2. multi-edit mutations
                if len(pool) >= stop:
                    break
                child = parents[int(rng.integers(len(parents)))]
                for _ in range(int(rng.integers(2, self.max_edits + 1))):
                    child = space.mutate(child, rng)
                add(child)
            mates = parents if len(parents) > 1 else [archs[i] for i in order[:30]]
            stop = len(pool) + self.crossovers * n
            for _ in range(int(self.tries * self.crossovers * n)):  # 3. crossovers
                if len(pool) >= stop or len(mates) < 2:
                    break
                i, j = rng.choice(len(mates), 2, replace=False)
                add(space.mutate(space.crossover(mates[i], mates[j], rng), rng))
        for _ in range(self.tries * n):  # 4. exploration
            if len(pool) >= n:
                break
            add(space.sample(rng))
        return list(pool)[:n]
