"""The search-space contract: architectures as immutable values, spaces as pure functions on them.

Every space in hwnas is a *product of categorical choices* ("genes"): an NB201 cell chooses one of
five operations on each of six edges, an FBNet chain one of nine blocks in each of 22 layers, a
once-for-all network a depth per stage, a kernel and expansion per layer and an input resolution.
An :class:`Architecture` is the space's name plus the index chosen for every gene. Spaces where some
genes are inactive (layers beyond a stage's depth) canonicalise them to 0, so that one network has
exactly one value, one string and one hash.

The generic operators here (sampling, mutation, crossover, one-edit neighbourhoods, one-hot
encoding) follow the usual definitions of the NAS literature: mutation changes one active choice
as in regularized evolution (Real et al., AAAI 2019), crossover inherits whole groups of genes
uniformly as in NSGA-Net (Lu et al., GECCO 2019), and the one-hot encoding is the
adjacency-free encoding of White et al., "A Study on Encodings for Neural Architecture
Search" (NeurIPS 2020).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

import numpy as np

from ..errors import ArchitectureError, HwnasError
from .registry import get_space

__all__ = ["Architecture", "Gene", "Graph", "Space", "RNGLike", "as_rng"]

RNGLike = np.random.Generator | int | None


def as_rng(rng: RNGLike) -> np.random.Generator:
    """Turn a seed (or ``None``, or a generator) into a ``numpy.random.Generator``; never global."""
    if isinstance(rng, np.random.Generator):
        return rng
    try:
        return np.random.default_rng(rng)
    except (TypeError, ValueError):
        raise HwnasError(f"rng {rng!r:.60}; valid: None, an integer >= 0, or a "
                         "numpy.random.Generator") from None


@dataclass(frozen=True, slots=True, order=True)
class Architecture:
    """One architecture of one space: immutable, hashable, ordered by (space, genes).

    ``str(arch)`` is the space's canonical string, and ``space.parse(str(arch)) == arch``.
    """

    space: str
    genes: tuple[int, ...]

    def __str__(self) -> str:
        return get_space(self.space).format(self)

    def __repr__(self) -> str:
        return f"Architecture({self.space!r}, {str(self)!r})"


@dataclass(frozen=True, slots=True)
class Gene:
    """One categorical choice of a space: its name and the values it can take."""

    name: str
    choices: tuple[Any, ...]

    def __len__(self) -> int:
        return len(self.choices)


@dataclass(frozen=True, slots=True)
class Graph:
    """Operations on nodes and a directed adjacency matrix (``adjacency[i, j] == 1``: i feeds j).

    Nodes are in topological order; the first is the input and the last the output.
    """

    ops: tuple[str, ...]
    adjacency: np.ndarray

    def __post_init__(self) -> None:
        n = len(self.ops)
        if self.adjacency.shape != (n, n):
            raise ValueError(f"adjacency is {self.adjacency.shape}, expected {(n, n)}")


class Space(ABC):
    """A search space: pure functions of architectures, with explicit random generators.

    Subclasses declare ``name``, ``kind`` and ``genes``, and implement :meth:`format`,
    :meth:`parse`, :meth:`graph`, :meth:`build` and :meth:`input_shape`. Spaces with inactive genes
    override :meth:`active` (and the canonical value of an inactive gene is 0).
    """

    name: ClassVar[str]
    kind: ClassVar[str]  # "cell", "chain" or "hierarchical"
    genes: tuple[Gene, ...]
    #: classes of the dataset the reference network is built for
    num_classes: int = 10
    #: bumped whenever :meth:`build` changes the network, so cached statistics are recomputed
    build_version: ClassVar[str] = "1"

    # ------------------------------------------------------------------ structure
    @cached_property
    def n_choices(self) -> np.ndarray:
        """Number of choices of every gene (int array of length ``len(self.genes)``)."""
        out = np.array([len(g) for g in self.genes], dtype=np.int64)
        out.setflags(write=False)
        return out

    @cached_property
    def _offsets(self) -> np.ndarray:
        return np.concatenate([[0], np.cumsum(self.n_choices)[:-1]])

    @property
    def size(self) -> int:
        """Number of distinct architectures (a Python int; may exceed 64 bits).

        The product of the genes' choices; spaces with inactive genes override it, since settings
        of inactive genes do not make distinct networks.
        """
        out = 1
        for g in self.genes:
            out *= len(g)
        return out

    @property
    def groups(self) -> tuple[tuple[int, ...], ...]:
        """Gene groups that crossover inherits together; by default every gene on its own."""
        return tuple((i,) for i in range(len(self.genes)))

    def active(self, genes: Sequence[int]) -> np.ndarray:
        """Boolean mask of the genes that shape the network; by default all of them."""
        return np.ones(len(self.genes), dtype=bool)

    def from_genes(self, genes: Iterable[int]) -> Architecture:
        """Validate choice indices and return the canonical architecture.

        Raises:
            ArchitectureError: wrong length or a choice out of range (says which gene).
        """
        g = tuple(int(x) for x in genes)
        sizes = self._sizes
        if len(g) != len(sizes):
            raise ArchitectureError(f"{self.name}: expected {len(sizes)} genes, got {len(g)}")
        for i, (x, n) in enumerate(zip(g, sizes, strict=True)):
            if not 0 <= x < n:
                raise ArchitectureError(
                    f"{self.name}: gene {i} ({self.genes[i].name}) is {x}, valid 0..{n - 1}"
                )
        if type(self).active is Space.active:  # every gene active: nothing to canonicalise
            return Architecture(self.name, g)
        mask = self.active(g)
        return Architecture(self.name, tuple(x if m else 0 for x, m in zip(g, mask, strict=True)))

    @cached_property
    def _sizes(self) -> tuple[int, ...]:
        # choices per gene as plain ints: from_genes runs for every row of a table
        return tuple(len(gene.choices) for gene in self.genes)

    def values(self, arch: Architecture) -> tuple[Any, ...]:
        """The chosen value of every gene (inactive genes included, at their canonical value)."""
        self._check(arch)
        return tuple(gene.choices[i] for gene, i in zip(self.genes, arch.genes, strict=True))

    def _check(self, arch: Architecture) -> None:
        if not isinstance(arch, Architecture) or arch.space != self.name:
            raise ArchitectureError(f"{arch!r} is not an architecture of the {self.name} space")

    # ------------------------------------------------------------------ operators
    def sample(self, rng: RNGLike = None) -> Architecture:
        """Draw one architecture, every gene uniformly (inactive genes then canonicalised)."""
        rng = as_rng(rng)
        return self.from_genes(rng.integers(0, self.n_choices))

    def sample_batch(self, n: int, rng: RNGLike = None) -> list[Architecture]:
        """Draw ``n`` architectures at once (vectorised; duplicates possible)."""
        if isinstance(n, bool) or not isinstance(n, int | np.integer) or n < 0:
            raise HwnasError(f"sample_batch: n must be an integer >= 0, got {n!r}")
        rng = as_rng(rng)
        draws = rng.integers(0, self.n_choices, size=(n, len(self.genes)))
        return [self.from_genes(row) for row in draws]

    def mutate(self, arch: Architecture, rng: RNGLike = None) -> Architecture:
        """Change one active gene to a different value; the result always differs from ``arch``.

        Genes that the change activates (new layers when a depth grows) are drawn at random.
        """
        self._check(arch)
        rng = as_rng(rng)
        genes = list(arch.genes)
        mask = self.active(genes)
        candidates = np.flatnonzero(mask & (self.n_choices > 1))
        # the draw rng.choice(candidates) makes, without its overhead (same stream)
        i = int(candidates[rng.integers(0, len(candidates))])
        new = int(rng.integers(0, len(self.genes[i]) - 1))
        genes[i] = new if new < genes[i] else new + 1
        woke = self.active(genes) & ~mask
        for j in np.flatnonzero(woke):
            genes[j] = int(rng.integers(0, len(self.genes[j])))
        return self.from_genes(genes)

    def crossover(self, a: Architecture, b: Architecture, rng: RNGLike = None) -> Architecture:
        """Uniform crossover over :attr:`groups`: each group comes whole from one parent."""
        self._check(a)
        self._check(b)
        rng = as_rng(rng)
        genes = list(a.genes)
        take_b = rng.random(len(self.groups)) < 0.5
        for group, from_b in zip(self.groups, take_b, strict=True):
            if from_b:
                for i in group:
                    genes[i] = b.genes[i]
        return self.from_genes(genes)

    def neighbours(self, arch: Architecture) -> list[Architecture]:
        """Every architecture one edit away (one active gene changed), in a deterministic order."""
        self._check(arch)
        out: dict[Architecture, None] = {}
        mask = self.active(arch.genes)
        for i in np.flatnonzero(mask):
            for v in range(len(self.genes[i])):
                if v != arch.genes[i]:
                    genes = list(arch.genes)
                    genes[i] = v
                    out.setdefault(self.from_genes(genes))
        out.pop(arch, None)
        return list(out)

    # ------------------------------------------------------------------ encodings
    @cached_property
    def encoding_length(self) -> int:
        """Length of :meth:`encode`'s vector."""
        return int(self.n_choices.sum())

    def encode(self, arch: Architecture) -> np.ndarray:
        """One-hot encoding of every gene, concatenated; inactive genes are all zeros."""
        self._check(arch)
        out = np.zeros(self.encoding_length, dtype=np.float32)
        mask = self.active(arch.genes)
        out[(self._offsets + np.asarray(arch.genes))[mask]] = 1.0
        return out

    def encode_batch(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Encode many architectures into a ``(len(archs), encoding_length)`` float32 matrix."""
        for a in archs:
            self._check(a)
        genes = np.array([a.genes for a in archs], dtype=np.int64).reshape(len(archs), -1)
        out = np.zeros((len(archs), self.encoding_length), dtype=np.float32)
        rows = np.repeat(np.arange(len(archs)), len(self.genes))
        cols = (genes + self._offsets).ravel()
        if type(self).active is Space.active:  # every gene always active: no mask to build
            out[rows, cols] = 1.0
            return out
        mask = np.array([self.active(g) for g in genes], dtype=bool).reshape(-1)
        out[rows[mask], cols[mask]] = 1.0
        return out

    @abstractmethod
    def graph(self, arch: Architecture) -> Graph:
        """Operations and adjacency, for graph-based predictors."""

    # ------------------------------------------------------------------ strings
    @abstractmethod
    def format(self, arch: Architecture) -> str:
        """The canonical string of an architecture."""

    @abstractmethod
    def parse(self, text: str) -> Architecture:
        """Inverse of :meth:`format`; raises :class:`ArchitectureError` saying what and where."""

    # ------------------------------------------------------------------ networks
    @abstractmethod
    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        """Shape ``(C, H, W)`` of one input image of the architecture's reference network."""

    @abstractmethod
    def build(self, arch: Architecture, num_classes: int | None = None) -> Any:
        """The reference network as a ``torch.nn.Module`` (training mode, freshly initialised)."""

    # ------------------------------------------------------------------ enumeration
    @property
    def enumerable(self) -> bool:
        """Whether the space can be listed (``len``, ``index``, iteration)."""
        return False

    def __repr__(self) -> str:
        return f"{type(self).__name__}(name={self.name!r}, kind={self.kind!r}, size={self.size})"
