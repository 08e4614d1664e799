"""Variation operators on a space's genes read as integers (choice indices ``0 .. n - 1``).

* :func:`sbx_integer`: simulated binary crossover (Deb & Agrawal, "Simulated Binary Crossover for
  Continuous Search Space", Complex Systems 9, 1995) on the indices as reals, rounded back -- the
  integer recipe of pymoo (Blank & Deb, IEEE Access 8, 2020): each gene crossed with probability
  ``prob_var``, the two children's values exchanged with probability ``prob_exchange``.
* :func:`polynomial_mutation`: polynomial mutation (Deb & Goyal, "A Combined Genetic Adaptive
  Search (GeneAS) for Engineering Design", Computer Science and Informatics 26, 1996), each gene
  with probability ``1 / n_genes``, rounded back.
* :func:`reset_mutation`: each gene with probability ``1 / n_genes`` redrawn uniformly among its
  other choices (the categorical reading of the genes); at least one gene always changes.

Every operator returns architectures through :meth:`Space.from_genes`, so spaces with inactive
genes are canonicalised; only genes with more than one choice and active are touched by the
mutations.
"""

from __future__ import annotations

import numpy as np

from ..spaces.space import Architecture, Space

__all__ = ["sbx_integer", "polynomial_mutation", "reset_mutation"]


def _betaq(beta: np.ndarray, u: np.ndarray, eta: float) -> np.ndarray:
    # Deb & Agrawal's spread factor, bounded so the child stays within [lower, upper]
    alpha = 2.0 - np.power(beta, -(eta + 1.0))
    low = u <= 1.0 / alpha
    out = np.empty_like(u)
    out[low] = np.power(u[low] * alpha[low], 1.0 / (eta + 1.0))
    out[~low] = np.power(1.0 / (2.0 - u[~low] * alpha[~low]), 1.0 / (eta + 1.0))
    return out


def sbx_integer(space: Space, a: Architecture, b: Architecture, rng: np.random.Generator,
                eta: float = 3.0, prob_var: float = 0.5,
                prob_exchange: float = 0.5) -> tuple[Architecture, Architecture]:
    """Two children of ``a`` and ``b`` by bounded SBX on the choice indices, rounded.

    Genes where the parents agree are inherited unchanged.
    """
    x1 = np.asarray(a.genes, dtype=np.float64)
    x2 = np.asarray(b.genes, dtype=np.float64)
    upper = (space.n_choices - 1).astype(np.float64)
    cross = (rng.random(len(x1)) < prob_var) & (x1 != x2)
    c1, c2 = x1.copy(), x2.copy()
    if cross.any():
        y1, y2 = np.minimum(x1, x2)[cross], np.maximum(x1, x2)[cross]
        hi = upper[cross]
        u = rng.random(len(y1))
        delta = y2 - y1
        low_child = 0.5 * (y1 + y2 - _betaq(1.0 + 2.0 * y1 / delta, u, eta) * delta)
        high_child = 0.5 * (y1 + y2 + _betaq(1.0 + 2.0 * (hi - y2) / delta, u, eta) * delta)
        # the child nearer each parent goes to that parent, then the pair is exchanged at random
        first_low = x1[cross] < x2[cross]
        k1, k2 = np.where(first_low, low_child, high_child), np.where(first_low, high_child,
                                                                        low_child)
        swap = rng.random(len(y1)) < prob_exchange
        c1[cross], c2[cross] = np.where(swap, k2, k1), np.where(swap, k1, k2)
    c1 = np.clip(np.rint(c1), 0, upper).astype(np.int64)
    c2 = np.clip(np.rint(c2), 0, upper).astype(np.int64)
    return space.from_genes(c1), space.from_genes(c2)


def _mutable(space: Space, genes: np.ndarray) -> np.ndarray:
    return np.flatnonzero(space.active(genes.tolist()) & (space.n_choices > 1))


def polynomial_mutation(space: Space, arch: Architecture, rng: np.random.Generator,
                        eta: float = 3.0) -> Architecture:
    """Polynomial mutation of every mutable gene with probability ``1 / n_genes``, rounded (the
    result may equal ``arch``)."""
    x = np.asarray(arch.genes, dtype=np.float64)
    upper = (space.n_choices - 1).astype(np.float64)
    idx = _mutable(space, x.astype(np.int64))
    hit = idx[rng.random(len(idx)) < 1.0 / len(x)]
    if len(hit):
        y, hi = x[hit], upper[hit]
        u = rng.random(len(hit))
        d1, d2 = y / hi, (hi - y) / hi
        power = 1.0 / (eta + 1.0)
        down = 2.0 * u + (1.0 - 2.0 * u) * np.power(1.0 - d1, eta + 1.0)
        up = 2.0 * (1.0 - u) + 2.0 * (u - 0.5) * np.power(1.0 - d2, eta + 1.0)
        dq = np.where(u <= 0.5, np.power(down, power) - 1.0, 1.0 - np.power(up, power))
        x[hit] = np.clip(y + dq * hi, 0.0, hi)
    return space.from_genes(np.clip(np.rint(x), 0, upper).astype(np.int64))


def reset_mutation(space: Space, arch: Architecture, rng: np.random.Generator) -> Architecture:
    """Redraw every mutable gene with probability ``1 / n_genes`` among its other choices; when
    none is drawn, one is (so the result always differs from ``arch``, as
    :meth:`Space.mutate`)."""
    genes = np.asarray(arch.genes, dtype=np.int64)
    idx = _mutable(space, genes)
    if not len(idx):
        return arch
    hit = idx[rng.random(len(idx)) < 1.0 / len(genes)]
    if not len(hit):
        hit = idx[rng.integers(0, len(idx), size=1)]
    mask = space.active(genes.tolist())
    new = rng.integers(0, space.n_choices[hit] - 1)
    genes[hit] = np.where(new < genes[hit], new, new + 1)
    # genes the change activates (new layers when a depth grows) are drawn at random
    woke = np.flatnonzero(space.active(genes.tolist()) & ~mask)
    if len(woke):
        genes[woke] = rng.integers(0, space.n_choices[woke])
    return space.from_genes(genes)
