"""Surrogate-guided Pareto search: score every candidate with a cheap surrogate, ask the likeliest
new members of the Pareto set.

A multi-objective, finite-space reading of BANANAS (White et al., "BANANAS: Bayesian Optimization
with Neural Architectures for Neural Architecture Search", AAAI 2021) and of Pareto local search
(Paquete, Chiarandini & Stützle, *Metaheuristics for Multiobjective Optimisation*, Springer 2004):

- the surrogate is Bayesian ridge regression (MacKay, Neural Computation 1992) on the one-hot
  encoding (White et al., NeurIPS 2020) plus, in an enumerable space, features of the live part of
  the cell (:func:`graph_features`: live operations, their pairs, the path encoding), optionally
  every pairwise product of two genes' one-hot blocks, one output per objective; its penalty is
  chosen by generalised cross-validation (Golub, Heath & Wahba, Technometrics 1979) and an
  ensemble of coefficient vectors is drawn from the posterior;
- the candidates are *every* architecture of an enumerable space not yet evaluated (NAS-Bench-201
  has 15,625: scoring them all costs milliseconds), or of a table of what can be evaluated
  (``pool``, or a :class:`~hwnas.search.strategies.candidates.TableSpace`: FBNet's and OFA's
  5,000 networks); otherwise the one-edit neighbourhoods of the observed front (the PLS moves),
  multi-edit mutations and crossovers of its members and random samples
  (:class:`~hwnas.search.strategies.candidates.CandidateGenerator`);
- a candidate's score is its *gap*: the smallest number of predictive standard deviations by which
  it must beat its predicted mean to be non-dominated by the observed front (the additive epsilon
  indicator of Zitzler et al., IEEE TEVC 2003, measured per objective in standard deviations). The
  candidate of smallest gap is asked: a negative gap is a predicted improvement, a small positive
  one a plausible miss of the model. One-edit neighbours of observed front members get a bonus of
  ``local_bonus`` standard deviations: the exhaustive neighbourhood exploitation of PLS, ordered
  by the surrogate. Batches are made one pick at a time, each pick's predicted mean joining the
  front as if observed (the "kriging believer" of Ginsbourger et al., 2010), so a batch does not
  ask for one region many times.

Objectives are modelled on a rank scale (each column's empirical CDF over the archive, as in
:mod:`hwnas.search.strategies.guided`) or raw; dominance is the same on either. Refits are lazy at
large archives (every ``refit_growth`` relative growth), the front and gaps are recomputed at every
ask.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import HwnasError
from ..pareto import pareto_mask
from ..spaces.space import Architecture, Space
from .base import Strategy
from .candidates import CandidateGenerator, TableSpace, list_architectures
from .opening import membership_order, nearest_column, ridge_prediction, top_spread
from .prior import PriorFeatures
from .ridge import BayesianRidgeEnsemble, OwnColumnsEnsemble

if TYPE_CHECKING:  # blend (scikit-learn) is imported only when a forest is asked for
    from .blend import RidgeForestBlend

__all__ = ["SurrogateParetoSearch", "BayesianRidgeEnsemble", "PairwiseFeatures", "dead_cells"]

_TRANSFORMS = ("rank", "raw")
#: handling of dead cells (:func:`dead_cells`) in an enumerated space
_DEAD = ("off", "flag", "split")
#: candidate scores: the gap to the observed front, or the probability of membership of the whole
#: space's front (two objectives, enumerated spaces; else the gap)
_ACQUISITIONS = ("gap", "membership")


class PairwiseFeatures:
    """One-hot genes plus the products of every two genes' one-hot blocks (second-order terms).

    Args:
        space: the search space.
        max_pairwise: pairwise columns allowed; with more, only the one-hot part is used.
    """

    def __init__(self, space: Space, max_pairwise: int = 2000):
        self.space = space
        n = space.n_choices.tolist()
        self.pairs = [(i, j) for i in range(len(n)) for j in range(i + 1, len(n))]
        if sum(n[i] * n[j] for i, j in self.pairs) > max_pairwise:
            self.pairs = []
        off = np.concatenate([[0], np.cumsum(n)[:-1]]).tolist()
        self._blocks = [(off[i], n[i], off[j], n[j]) for i, j in self.pairs]

    def __call__(self, archs: list[Architecture]) -> np.ndarray:
        """``(len(archs), n_features)`` float32 design matrix."""
        return self.from_onehot(self.space.encode_batch(archs))

    def from_onehot(self, onehot: np.ndarray) -> np.ndarray:
        h, n = onehot, len(onehot)
        cols = [h]
        for oi, ni, oj, nj in self._blocks:
            cols.append((h[:, oi:oi + ni, None] * h[:, None, oj:oj + nj]).reshape(n, -1))
        return np.concatenate(cols, axis=1).astype(np.float32)


#: operation names that carry nothing: a path through one is cut
_ZERO_OPS = frozenset({"none", "zero"})


def graph_features(space: Space, archs: list[Architecture], max_columns: int = 2000
                   ) -> np.ndarray | None:
    """Features of the *live* part of each cell (``None`` when there are too many columns).

    From :meth:`Space.graph`, with operations named ``none``/``zero`` cutting their paths: every
    operation node on some input-to-output path is live. Columns: one-hot of (node, operation) of
    the live nodes, products of every two of those (pairwise terms), and the path encoding (White et
    al., "A Study on Encodings for Neural Architecture Search", NeurIPS 2020) -- one column per
    sequence of operations along a live input-to-output path, counted. Isomorphic cells then share
    most of their features, and dead operations none.
    """
    live_keys: dict[tuple[int, str], int] = {}
    path_keys: dict[tuple[str, ...], int] = {}
    rows: list[tuple[list[int], list[int]]] = []
    for a in archs:
        g = space.graph(a)
        ops, adj, n = g.ops, np.asarray(g.adjacency) > 0, len(g.ops)
        cut = [op in _ZERO_OPS for op in ops]
        paths: list[tuple[int, ...]] = []
        stack: list[tuple[int, ...]] = [(0,)]
        while stack:  # every input-to-output path avoiding cut nodes (small DAGs)
            path = stack.pop()
            for j in np.flatnonzero(adj[path[-1]]).tolist():
                if cut[j]:
                    continue
                if j == n - 1:
                    paths.append(path[1:])
                elif len(paths) <= 64:
                    stack.append((*path, j))
            if len(path_keys) > max_columns:
                return None
        live = sorted({k for path in paths for k in path})
        rows.append(([live_keys.setdefault((k, ops[k]), len(live_keys)) for k in live],
                     [path_keys.setdefault(tuple(ops[k] for k in path), len(path_keys))
                      for path in paths]))
    d = len(live_keys)
    if d + d * (d - 1) // 2 + len(path_keys) > max_columns:
        return None
    live = np.zeros((len(archs), d), dtype=np.float32)
    paths = np.zeros((len(archs), len(path_keys)), dtype=np.float32)
    for i, (ks, ps) in enumerate(rows):
        live[i, ks] = 1.0
        np.add.at(paths[i], ps, 1.0)
    iu, ju = np.triu_indices(d, 1)
    pair = live[:, iu] * live[:, ju]
    pair = pair[:, pair.any(axis=0)]  # pairs never seen together (two ops of one node) drop out
    return np.concatenate([live, pair, paths], axis=1)


def dead_cells(space: Space, archs: Sequence[Architecture]) -> np.ndarray:
    """Mask of the architectures whose cell has no input-to-output path avoiding ``none``/``zero``
    operations (from :meth:`Space.graph`).

    Such a cell computes a constant: every one of them is the same function (chance accuracy),
    while what it costs depends on which dead operations a runtime still executes -- some
    (NAS-Bench-201's raspi4 and pixel3 columns) report them as nearly free, others at the price of
    their operations. A linear model of the genes cannot fit both regimes; a flag can.
    """
    out = np.zeros(len(archs), dtype=bool)
    for r, a in enumerate(archs):
        g = space.graph(a)
        adj, n = np.asarray(g.adjacency) > 0, len(g.ops)
        cut = [op in _ZERO_OPS for op in g.ops]
        seen, stack = {0}, [0]
        while stack:  # reachability from the input through uncut nodes
            for j in np.flatnonzero(adj[stack.pop()]).tolist():
                if j not in seen and not cut[j]:
                    seen.add(j)
                    stack.append(j)
        out[r] = n - 1 not in seen
    return out


def gaps(mu: np.ndarray, sd: np.ndarray, front: np.ndarray, chunk: int = 4096) -> np.ndarray:
    """Standard deviations each predicted point must improve by to be non-dominated by ``front``.

    ``max_f min_j (mu_j - f_j) / sd_j``: negative for a predicted point no front member dominates
    (the more negative, the farther beyond the front), positive for a dominated one.
    """
    if len(front) == 0:
        return np.full(len(mu), -np.inf)
    out = np.empty(len(mu))
    for s in range(0, len(mu), chunk):
        d = (mu[s:s + chunk, None, :] - front[None]) / sd[s:s + chunk, None, :]
        out[s:s + chunk] = d.min(axis=2).max(axis=1)
    return out


def front_membership(mu: np.ndarray, sd: np.ndarray, fixed: np.ndarray, worlds: int,
                     rng: np.random.Generator) -> np.ndarray:
    """Fraction of sampled worlds in which each row is on the two-objective Pareto front.

    A world draws every row's objectives from ``Normal(mu, sd)`` independently, except the rows of
    ``fixed`` (a mask: observed rows), which keep ``mu`` exactly. This is the probability of
    Pareto optimality that Thompson-sampling multi-objective searches sample from (TSEMO, Bradford
    et al., J. Global Optimization 2018), over the whole space: a row that beats the observed front
    but lies behind other unevaluated rows scores low.
    """
    n = len(mu)
    count = np.zeros(n)
    free = ~fixed
    for _ in range(worlds):
        W = mu.copy()
        W[free] += sd[free] * rng.standard_normal((int(free.sum()), 2))
        order = np.lexsort((W[:, 1], W[:, 0]))
        f2 = W[order, 1]
        before = np.minimum.accumulate(np.concatenate([[np.inf], f2[:-1]]))
        count[order[f2 < before]] += 1  # lower f2 than every row of lower (or equal) f1
    return count / worlds


def _position(key: object) -> object:
    """An objective position as given; a record's (JSON) string key names the same position."""
    return int(key) if isinstance(key, str) and key.isdigit() else key


class _Lazy:
    """``[items[i] for i in idx]`` without building the list."""

    def __init__(self, items: list[Architecture], idx: np.ndarray):
        self.items, self.idx = items, idx

    def __len__(self) -> int:
        return len(self.idx)

    def __getitem__(self, i: int) -> Architecture:
        return self.items[self.idx[i]]


class SurrogateParetoSearch(Strategy):
    """Ask the candidates a Bayesian ridge surrogate finds likeliest to be non-dominated.

    Args:
        space: the search space.
        n_objectives: number of minimised objectives told.
        seed: seed of the strategy's generator.
        initial: random architectures asked before the surrogate is used.
        members: posterior coefficient draws (the model's own uncertainty).
        transform: ``"rank"`` (each objective's empirical CDF over the archive) or ``"raw"``.
        pairwise: add the pairwise gene products to the one-hot features (when they number at most
            ``max_pairwise``).
        refit_growth: refit when the archive has grown by this fraction since the last fit (``0``:
            at every ask); the observed front is always current.
        max_enumerate: spaces (or pools) of at most this many architectures are scored whole;
            larger ones through ``candidates`` drawn around the front
            (:class:`~hwnas.search.strategies.candidates.CandidateGenerator`).
        candidates: candidates per ask in a space too large to enumerate.
        pool: the architectures that can be evaluated at all, when that is a table's rows in a
            space too large to list (FBNet's or OFA's public tables): the candidates are then
            the pool's rows not yet evaluated.
        max_pairwise: most pairwise (and graph) columns.
        graph: in an enumerated cell space, add :func:`graph_features` (live operations, their
            pairs, path encoding; a chain's or a hierarchy's live part is the whole network).
        local_bonus: standard deviations taken off the gap of the one-edit neighbours of observed
            front members (Pareto sets of NAS problems lie largely in connected regions of the
            neighbourhood graph, the premise of PLS); not applied to a table's rows (a
            :class:`~hwnas.search.strategies.candidates.TableSpace` or ``pool``), nor to the
            candidates of a space too large to list (half of them are those neighbours already).
        forest: objectives (positions among the told ones) whose model averages the ridge with an
            extremely randomised forest
            (:class:`hwnas.search.strategies.blend.RidgeForestBlend`): for objectives that are
            not additive in the genes, such as accuracy; latency is close to additive and the
            ridge alone suits it. Each refit then costs several times more.
        dead: in an enumerated space, how dead cells (:func:`dead_cells`: no live path, a constant
            function) enter the design: ``"flag"`` one indicator column (the model fits their
            offset -- chance accuracy, a runtime's own cost for them -- instead of bending every
            gene's coefficient to it), ``"split"`` the flag and its products with the one-hot
            genes (dead cells get their own per-gene costs), ``"off"`` nothing.
        acquisition: ``"gap"`` (the smallest gap to the observed front) or ``"membership"``
            (two objectives, enumerated space: the highest probability of being on the whole
            space's front in ``worlds`` sampled worlds, :func:`front_membership`; ties by gap).
        worlds: worlds sampled per refit for ``"membership"``.
        nearest_prior: objectives (positions) modelled on one prior column alone, position ->
            the prior names it may use (empty: any): at each refit the column whose ranking
            agrees best with the archive's values of that objective (Spearman's rho, in absolute
            value) is taken, its standardised value and rank score, without the structural
            features -- the "nearest source task" of transfer NAS, with the archive deciding
            which source is nearest. For accuracy with another task's accuracy at hand: at a few
            hundred evaluations a model of NAS-Bench-201's structure fitted from the archive
            ranks the top of the space worse than a related task's own ranking does (after 300
            evaluations of the default search on a validation device, rho within the top 10%
            0.52-0.71 for the full design against 0.67 for CIFAR-100 alone; search recall in
            results/benchmarks/README.md). Needs ``prior``; not with ``forest`` on the same
            objective.
        nearest_until: the archive size from which ``nearest_prior`` gives way to the full
            design (``None``: never), one for all its objectives or position -> size (a
            position left out: never). A prior's ranking is worth most while the archive is
            small; with many evaluations the structure fitted from them ranks past it.
        opening: the archive size up to which the asks follow the priors alone (``None``: no
            opening; two objectives, an enumerated space or a pool): after the ``initial``
            random ones, the architectures likeliest to be on the whole space's front in
            ``opening_draws`` worlds drawn from each objective's prior model
            (:func:`~hwnas.search.strategies.opening.membership_order`), the order refreshed at
            every ``opening_growth`` relative growth of the archive. An objective in
            ``nearest_prior`` is its nearest column (by the archive's Spearman, signed) with a
            spread of ``opening_spread`` standard deviations of that column's best tenth; one in
            ``opening_ridge`` a ridge regression on those columns fitted to the archive (in log
            when the columns and the objective are latencies), with its residual spread. The
            surrogate is first fitted when the opening ends.
        opening_ridge: objective position -> the prior names its ridge uses (empty: every
            prior column).
        opening_spread, opening_growth, opening_draws: see ``opening``.
        opening_dead: in a cell space with dead cells (:func:`dead_cells`), while the archive
            holds no dead cell the first open one of the order is asked first, and the opening's
            ridges give the dead cells their own offset: what a dead cell costs is the
            runtime's (some report them as nearly free), not the other devices'. Not ``auto``'s:
            on the validation devices it lowered recall at 300 (screen c17).

    Defaults were chosen on NAS-Bench-201 with HELP's meta-training devices (1080ti_1,
    silver_4114, samsung_a50, pixel3; CIFAR-10 and CIFAR-100 accuracy), not its test devices.
    ``dead="off"`` and ``acquisition="gap"`` stay the defaults: with the default prior set
    (every other dataset's accuracy, every other device's latency) on those four devices,
    neither ``dead="flag"`` nor ``acquisition="membership"`` raised the median front recall at
    300 / 1000 unique evaluations (2 seeds; results/benchmarks/README.md).

    Attributes:
        nearest_: position -> the prior column the last fit on ``nearest_prior`` used for each
            such objective (kept after ``nearest_until``).
        surrogate_: the last fitted :class:`BayesianRidgeEnsemble` (or
            :class:`~hwnas.search.strategies.blend.RidgeForestBlend`; ``None`` before).

    Raises:
        HwnasError: an unknown ``transform``, ``dead`` or ``acquisition``, a ``forest`` or
            ``nearest_prior`` position that is not an objective, ``nearest_prior`` without a
            prior, with names that are not prior columns, or on an objective with a forest;
            an ``opening`` that is not two objectives of an enumerable space with a prior, or
            with an objective that has no prior model or two, or bad ``opening_*`` values.

    Example:
        >>> s = SurrogateParetoSearch(get_space("nb201"), 2, seed=0)
        >>> result = run_search(s, evaluate, budget=300)
    """

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None, *,
                 initial: int = 20, members: int = 8, transform: str = "rank",
                 pairwise: bool = False, refit_growth: float = 0.02, max_enumerate: int = 50_000,
                 candidates: int = 500, max_pairwise: int = 2000, graph: bool = True,
                 local_bonus: float = 0.75, prior: PriorFeatures | None = None,
                 forest: int | Sequence[int] = (), pool: Sequence[Architecture] | None = None,
                 dead: str = "off", acquisition: str = "gap", worlds: int = 64,
                 nearest_prior: Mapping[int, Sequence[str]] | None = None,
                 nearest_until: int | Mapping[int, int | None] | None = None,
                 opening: int | None = None,
                 opening_ridge: Mapping[int, Sequence[str]] | None = None,
                 opening_spread: float = 0.6, opening_growth: float = 0.1,
                 opening_draws: int = 400, opening_dead: bool = False):
        super().__init__(space, n_objectives, seed)
        if prior is not None and not isinstance(prior, PriorFeatures):
            raise HwnasError(f"prior must be a PriorFeatures, got {type(prior).__name__}")
        self.prior = prior
        if transform not in _TRANSFORMS:
            raise HwnasError(f"transform {transform!r}; valid: {', '.join(_TRANSFORMS)}")
        self.initial, self.members, self.transform = initial, members, transform
        self.pairwise, self.refit_growth, self.graph = pairwise, refit_growth, graph
        self.local_bonus = local_bonus
        if dead not in _DEAD:
            raise HwnasError(f"dead {dead!r}; valid: {', '.join(_DEAD)}")
        self.dead = dead
        if acquisition not in _ACQUISITIONS:
            raise HwnasError(f"acquisition {acquisition!r}; valid: {', '.join(_ACQUISITIONS)}")
        self.acquisition, self.worlds = acquisition, worlds
        forest = (forest,) if isinstance(forest, (int, np.integer)) else tuple(forest)
        if any(isinstance(j, bool) or not isinstance(j, (int, np.integer))
               or not 0 <= j < n_objectives for j in forest):
            raise HwnasError(f"forest: objective positions in 0..{n_objectives - 1}, "
                             f"got {list(forest)}")
        self.forest = tuple(int(j) for j in forest)
        self.nearest_prior = self._check_nearest(nearest_prior, n_objectives)
        self.nearest_until = nearest_until
        self._until = self._check_until(nearest_until, self.nearest_prior)
        self.nearest_: dict[int, str] = {}
        self.opening, self.opening_spread = opening, opening_spread
        self.opening_dead = bool(opening_dead)
        self._dead_all: np.ndarray | None = None
        self.opening_growth, self.opening_draws = opening_growth, opening_draws
        self.opening_ridge = self._check_opening(opening, opening_ridge, n_objectives, pool)
        self._order: np.ndarray | None = None  # the opening's order of the enumerated archs
        self._order_n = 0  # ... computed at this archive size
        self.max_enumerate, self.candidates, self.max_pairwise = (max_enumerate, candidates,
                                                                  max_pairwise)
        self.surrogate_: (BayesianRidgeEnsemble | OwnColumnsEnsemble | RidgeForestBlend
                          | None) = None
        self._features = PairwiseFeatures(space, max_pairwise if pairwise else 0)
        # the space the candidates are listed from: the pool's rows, when given
        self._listed = TableSpace(space, pool) if pool is not None else space
        self._generator = CandidateGenerator(space, candidates)
        self._pending: set[Architecture] = set()
        self._all: list[Architecture] | None = None  # every architecture, when enumerated
        self._index: dict[Architecture, int] = {}
        self._nbrs: dict[int, np.ndarray] = {}
        self._fit_n = 0
        self._alpha: np.ndarray | None = None
        self._alpha_n = 0
        self._ntarget = 0
        self._gap: np.ndarray | None = None  # gaps of every enumerated architecture ...
        self._gap_n = 0  # ... against the first _gap_n archived architectures
        self._member: np.ndarray | None = None  # front-membership probability of each, at a fit
        self._prior_all: np.ndarray | None = None  # standardised prior values of each

    # ------------------------------------------------------------------ helpers
    def _check_nearest(self, nearest: Mapping[int, Sequence[str]] | None, m: int
                       ) -> dict[int, list[str]]:
        if not nearest:
            return {}
        if not isinstance(nearest, Mapping):
            raise HwnasError("nearest_prior: a mapping of objective position -> prior names, got "
                             f"{type(nearest).__name__}")
        if self.prior is None:
            raise HwnasError("nearest_prior needs a prior (other tasks' or devices' columns)")
        out: dict[int, list[str]] = {}
        for key, names in nearest.items():
            j, out_names = self._prior_names("nearest_prior", key, names, m)
            if j in self.forest:
                raise HwnasError(f"nearest_prior: objective {j} also has a forest; give it one "
                                 "of the two")
            out[j] = out_names
        return out

    def _prior_names(self, option: str, key: Any, names: str | Sequence[str],
                     m: int) -> tuple[int, list[str]]:
        """One entry of a position -> prior names option, checked (empty names: every column)."""
        j = _position(key)
        if isinstance(j, bool) or not isinstance(j, (int, np.integer)) or not 0 <= j < m:
            raise HwnasError(f"{option}: objective positions in 0..{m - 1}, got {key!r}")
        names = [names] if isinstance(names, str) else list(names)
        bad = [n for n in names if n not in self.prior.names]
        if bad:
            raise HwnasError(f"{option}: {bad} are not prior columns; valid: "
                             f"{', '.join(self.prior.names)}")
        return int(j), names or list(self.prior.names)

    def _check_opening(self, opening: int | None, ridge: Mapping[int, Sequence[str]] | None,
                       m: int, pool: Sequence[Architecture] | None) -> dict[int, list[str]]:
        """``opening_ridge`` as position -> prior names, after checking that every objective of
        an opening has a model (its nearest prior, or a ridge on prior columns)."""
        if opening is None:
            if ridge:
                raise HwnasError("opening_ridge needs opening (the archive size the opening "
                                 "lasts to)")
            return {}
        if isinstance(opening, bool) or not isinstance(opening, (int, np.integer)) or opening < 1:
            raise HwnasError(f"opening: a positive number of evaluations or None, got {opening!r}")
        if m != 2:
            raise HwnasError(f"opening: two objectives only, got {m}")
        if not self.space.enumerable and pool is None:
            raise HwnasError("opening: the space must be enumerable (or a pool given): the order "
                             "ranks every architecture")
        if self.prior is None:
            raise HwnasError("opening needs a prior (other tasks' or devices' columns)")
        if not (np.isfinite(self.opening_spread) and self.opening_spread > 0):
            raise HwnasError(f"opening_spread: a positive number, got {self.opening_spread!r}")
        if not (np.isfinite(self.opening_growth) and self.opening_growth >= 0):
            raise HwnasError(f"opening_growth: a number >= 0, got {self.opening_growth!r}")
        if (isinstance(self.opening_draws, bool) or not isinstance(self.opening_draws,
                                                                   (int, np.integer))
                or self.opening_draws < 1):
            raise HwnasError(f"opening_draws: a positive integer, got {self.opening_draws!r}")
        if ridge is not None and not isinstance(ridge, Mapping):
            raise HwnasError("opening_ridge: a mapping of objective position -> prior names, "
                             f"got {type(ridge).__name__}")
        out: dict[int, list[str]] = {}
        for key, names in (ridge or {}).items():
            j, out_names = self._prior_names("opening_ridge", key, names, m)
            out[j] = out_names
        both = sorted(set(out) & set(self.nearest_prior))
        if both:
            raise HwnasError(f"opening: objectives {both} have both a nearest prior and a ridge; "
                             "give each one of the two")
        missing = [j for j in range(m) if j not in out and j not in self.nearest_prior]
        if missing:
            raise HwnasError(f"opening: objectives {missing} have no prior model; give each a "
                             "nearest_prior or an opening_ridge")
        return out

    @staticmethod
    def _check_until(until: int | Mapping[int, int | None] | None,
                     nearest: dict[int, list[str]]) -> dict[int, int | None]:
        """``nearest_until`` as position -> archive size (``None``: never), one per
        ``nearest_prior`` objective."""
        def size(v: object, what: str) -> int | None:
            if v is None:
                return None
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)) or v < 1:
                raise HwnasError(f"nearest_until{what}: a positive number of evaluations or None, "
                                 f"got {v!r}")
            return int(v)

        if not isinstance(until, Mapping):
            n = size(until, "")
            return {j: n for j in nearest}
        keyed = {_position(k): v for k, v in until.items()}
        extra = sorted((k for k in keyed if k not in nearest), key=str)
        if extra:
            raise HwnasError(f"nearest_until: positions {extra} are not nearest_prior objectives; "
                             f"valid: {sorted(nearest)}")
        return {j: size(keyed.get(j), f"[{j}]") for j in nearest}

    def _nearest_columns(self, X: np.ndarray, Y: np.ndarray, active: set[int]
                         ) -> dict[int, list[int]]:
        """Per ``nearest_prior`` objective in ``active``, the design columns of the prior that
        ranks the archive's values best (``X``: the archive's design, ``Y``: its scaled
        objectives)."""
        from scipy.stats import rankdata

        off = X.shape[1] - self.prior.width  # the prior's columns close the design
        out: dict[int, list[int]] = {}
        for j in sorted(active):
            names = self.nearest_prior[j]
            best, pick = -1.0, names[0]
            for name in names:
                cols = [off + c for c in self.prior.columns_of(name)]
                known = ~X[:, cols[2:]].any(axis=1)  # no missing flag set
                if known.sum() < 3:
                    continue
                x, y = rankdata(X[known, cols[1]]), rankdata(Y[known, j])
                if x.std() == 0 or y.std() == 0:
                    continue
                rho = abs(float(np.corrcoef(x, y)[0, 1]))
                if rho > best:
                    best, pick = rho, name
            self.nearest_[j] = pick
            out[j] = [off + c for c in self.prior.columns_of(pick)]
        return out

    def _tell(self, archs: list[Architecture], F: np.ndarray, violation: np.ndarray) -> None:
        self._pending.difference_update(archs)
        if self._all is not None:
            for a in archs:
                i = self._index.get(a)
                if i is not None:
                    self._open[i] = False

    def _new(self, a: Architecture) -> bool:
        return a not in self.archive_ and a not in self._pending

    def _random(self, n: int) -> list[Architecture]:
        out: list[Architecture] = []
        for _ in range(50 * n):
            if len(out) == n:
                break
            a = self._listed.sample(self.rng)
            if self._new(a) and a not in out:
                out.append(a)
        return out

    def _enumerate(self) -> bool:
        """List the space once (when small enough), with its features and an open-mask."""
        space = self.space
        listed = self._listed
        if self._all is None and listed.enumerable and listed.size <= self.max_enumerate:
            archs = list_architectures(listed, self.max_enumerate)
            self._all = archs
            self._index = {a: i for i, a in enumerate(archs)}
            X = self._features(archs)
            if self.graph and space.kind == "cell":
                extra = graph_features(space, archs, self.max_pairwise)
                if extra is not None:
                    X = np.concatenate([X, extra], axis=1)
            if self.dead != "off":
                dead = dead_cells(space, archs)[:, None].astype(np.float32)
                if self.dead == "split":  # dead cells get their own per-gene costs
                    dead = np.concatenate([dead, dead * space.encode_batch(archs)], axis=1)
                X = np.concatenate([X, dead], axis=1)
            if self.prior is not None:
                X = np.concatenate([X, self.prior(archs)], axis=1)
            self._X_all = X
            self._open = np.array([self._new(a) for a in archs], dtype=bool)
        return self._all is not None

    def _design(self, archs: list[Architecture]) -> np.ndarray:
        if self._enumerate():
            return self._X_all[[self._index[a] for a in archs]]
        if self.prior is not None:
            return np.concatenate([self._features(archs), self.prior(archs)], axis=1)
        return self._features(archs)

    def _scale(self, F: np.ndarray) -> np.ndarray:
        """Objective values on the surrogate's scale: the empirical CDF of the archive as it was at
        the last fit (so a lazily refitted model and the current front agree), or raw."""
        if self.transform == "raw":
            return np.asarray(F, dtype=np.float64)
        out = np.empty_like(F, dtype=np.float64)
        for j, s in enumerate(self._sorted):
            out[:, j] = (np.searchsorted(s, F[:, j], "left") + np.searchsorted(s, F[:, j], "right")
                         + 1) / (2 * (len(s) + 1))
        return out

    def _fit(self, archs: list[Architecture], F: np.ndarray, v: np.ndarray) -> None:
        n = len(archs)
        self._sorted = [np.sort(col) for col in F.T]
        Y = self._scale(F)
        if (v > 0).any():
            Y = np.column_stack([Y, v])
        # the objectives still on their nearest prior at this archive size
        active = set() if self.forest else {
            j for j, until in self._until.items() if until is None or n < until}
        last = (set(self.surrogate_.columns) if isinstance(self.surrogate_, OwnColumnsEnsemble)
                else set())
        # a model on other columns than the last fit's takes a penalty of its own
        switched = active != last
        if (self._alpha is None or n >= 1.25 * self._alpha_n or len(self._alpha) != Y.shape[1]
                or switched):
            alpha, self._alpha_n = None, n
        else:
            alpha = self._alpha
        seed = int(self.rng.integers(2**32))
        X = self._design(archs)
        if self.forest:
            from .blend import RidgeForestBlend  # scikit-learn is imported only when asked for

            model = RidgeForestBlend(self.forest, self.members, seed=seed)
        elif active:
            model = OwnColumnsEnsemble(self._nearest_columns(X, Y, active), self.members,
                                       seed=seed)
        else:
            model = BayesianRidgeEnsemble(self.members, seed=seed)
        self.surrogate_ = model.fit(X, Y, alpha)
        self._alpha, self._fit_n, self._ntarget = self.surrogate_.alpha_, n, Y.shape[1]

    def _near_front(self, archs: list[Architecture], F: np.ndarray, v: np.ndarray
                    ) -> np.ndarray:
        """Mask of the enumerated architectures one edit from a member of the observed front."""
        feasible = np.flatnonzero(v <= 0)
        mask = np.zeros(len(self._all), dtype=bool)
        for r in feasible[pareto_mask(F[feasible])]:
            i = self._index[archs[r]]
            if i not in self._nbrs:
                self._nbrs[i] = np.array([self._index[b] for b in
                                          self._listed.neighbours(archs[r])], dtype=np.int64)
            mask[self._nbrs[i]] = True
        return mask

    def _membership(self, archs: list[Architecture], F: np.ndarray, v: np.ndarray
                    ) -> np.ndarray:
        """:func:`front_membership` of every enumerated architecture, the evaluated ones (at their
        observed values) included; infeasible ones are left out of every world."""
        mu, sd = self._mu[:, :2].copy(), self._sd[:, :2]
        fixed = np.zeros(len(mu), dtype=bool)
        rows = np.array([self._index[a] for a in archs], dtype=np.int64)
        ok = v <= 0
        mu[rows[ok]] = self._scale(F[ok])
        fixed[rows] = True
        keep = np.ones(len(mu), dtype=bool)
        keep[rows[~ok]] = False
        if self._ntarget > 2:  # predicted infeasible
            keep &= ~(self._mu[:, 2] > 0) | fixed
        out = np.zeros(len(mu))
        out[keep] = front_membership(mu[keep], sd[keep], fixed[keep], self.worlds, self.rng)
        return out

    def _front(self, F: np.ndarray, v: np.ndarray) -> np.ndarray:
        """The feasible non-dominated rows of ``F``, on the surrogate's scale."""
        F = F[v <= 0]
        return self._scale(F[pareto_mask(F)]) if len(F) else np.zeros((0, F.shape[1]))

    # ------------------------------------------------------------------ ask
    def ask(self, n: int = 1) -> list[Architecture]:
        warm = len(self.archive_) >= max(2, self.initial)
        if (warm and self.opening is not None and len(self.archive_) < self.opening
                and self._enumerate()):
            out = self._opening_asks(n)
        else:
            out = self._guided(n) if warm else self._random(n)
        if len(out) < n:  # the space is (nearly) exhausted: repeats are served from the cache
            out += [self._listed.sample(self.rng) for _ in range(n - len(out))]
        self._pending.update(out)
        if self._all is not None:
            for a in out:
                i = self._index.get(a)
                if i is not None:
                    self._open[i] = False
        return out

    def _opening_asks(self, n: int) -> list[Architecture]:
        """The next open architectures of the opening's order, refreshed when the archive has
        grown by ``opening_growth`` since it was computed."""
        self._enumerate()
        archs, F, _ = self._archive_arrays()
        if (self._order is None
                or len(archs) - self._order_n >= max(1, self.opening_growth * self._order_n)):
            self._order, self._order_n = self._opening_order(archs, F), len(archs)
        idx = self._order[self._open[self._order]]
        dead = self._opening_dead_mask()
        if dead is not None and not dead[[self._index[a] for a in archs]].any():
            probe = idx[dead[idx]][:1]  # one dead cell measured: is the class free here?
            idx = np.concatenate([probe, idx[~np.isin(idx, probe)]])
        return [self._all[i] for i in idx[:n]]

    def _opening_ridge_fit(self, X: np.ndarray, rows: np.ndarray, y: np.ndarray,
                           log: bool) -> tuple[np.ndarray, float]:
        """:func:`~hwnas.search.strategies.opening.ridge_prediction` for every enumerated
        architecture; with ``opening_dead`` and dead cells measured, the ridge is fitted to the
        live ones and the dead cells get their own offset, the mean residual of those measured:
        unshrunk, because what the class costs is the runtime's choice (skipped or executed),
        which one measurement shows and a penalised column learnt from it would not."""
        dead = self._opening_dead_mask()
        was = dead[rows] if dead is not None else None  # which measured ones are dead
        if was is None or not was.any() or (~was).sum() < 2:
            return ridge_prediction(X[rows], y, X, log)
        pred, sd = ridge_prediction(X[rows[~was]], y[~was], X, log)
        if log:
            pred[dead] *= float(np.exp(np.mean(np.log(y[was]) - np.log(pred[rows[was]]))))
        else:
            pred[dead] += float(np.mean(y[was] - pred[rows[was]]))
        return pred, sd

    def _opening_dead_mask(self) -> np.ndarray | None:
        """The dead cells among the enumerated architectures, when ``opening_dead`` applies."""
        if not self.opening_dead or self.space.kind != "cell":
            return None
        if self._dead_all is None:
            self._dead_all = dead_cells(self.space, self._all)
        return self._dead_all if self._dead_all.any() else None

    def _opening_order(self, archs: list[Architecture], F: np.ndarray) -> np.ndarray:
        """:func:`~hwnas.search.strategies.opening.membership_order` of every enumerated
        architecture, each objective predicted from the priors alone."""
        if self._prior_all is None:
            self._prior_all = self.prior.standardised(self._all)
        Z, names = self._prior_all, self.prior.names
        rows = np.array([self._index[a] for a in archs], dtype=np.int64)
        mu, sd = np.empty((len(Z), 2)), [0.0, 0.0]
        for j in range(2):
            if j in self.nearest_prior:
                cols = [names.index(name) for name in self.nearest_prior[j]]
                c, sign = nearest_column(Z[rows][:, cols], F[:, j])
                self.nearest_[j] = names[cols[c]]
                x = sign * Z[:, cols[c]]
                mu[:, j] = np.where(np.isnan(x), 0.0, x)  # no value: the column's mean
                sd[j] = self.opening_spread * top_spread(mu[:, j])
            else:
                cols = [names.index(name) for name in self.opening_ridge[j]]
                X = Z[:, cols]
                gaps_ = np.isnan(X)
                X = np.concatenate([np.where(gaps_, 0.0, X), gaps_[:, gaps_.any(axis=0)]], axis=1)
                log = (all(names[c] in self.prior.log for c in cols)
                       and bool((F[:, j] > 0).all()))
                mu[:, j], sd[j] = self._opening_ridge_fit(X, rows, F[:, j], log)
        return membership_order(mu, sd, self.opening_draws, self.rng)

    def _guided(self, n: int) -> list[Architecture]:
        archs, F, v = self._archive_arrays()
        m = self.n_objectives
        if (self.surrogate_ is None or int((v > 0).any()) + m != self._ntarget
                or len(archs) - self._fit_n >= max(1, self.refit_growth * self._fit_n)):
            self._fit(archs, F, v)
            self._gap = self._member = None
        if self._enumerate():
            if self._gap is None:
                self._mu, self._sd = self.surrogate_.predict(self._X_all)
                self._gap = gaps(self._mu[:, :m], self._sd[:, :m], self._front(F, v))
            else:
                # the gap to every archived point is the gap to the front (a dominating point has
                # a larger one), and gaps only grow: fold in the newly told points alone
                new = slice(self._gap_n, len(archs))
                ok = v[new] <= 0
                if ok.any():
                    self._gap = np.maximum(self._gap, gaps(self._mu[:, :m], self._sd[:, :m],
                                                           self._scale(F[new][ok])))
            self._gap_n = len(archs)
            g = self._gap
            if self.acquisition == "membership" and m == 2:
                if self._member is None:
                    self._member = self._membership(archs, F, v)
                g = g - 1e4 * self._member  # the likeliest members first, then the smallest gap
            # a table's rows are a sample of the space: its rows nearest a front member are not
            # one edit away, and PLS's premise does not hold (validation devices of search_fbnet)
            if self.local_bonus and not isinstance(self._listed, TableSpace):
                g = g - self.local_bonus * self._near_front(archs, F, v)
            idx = np.flatnonzero(self._open)
            mu, sd, g = self._mu[idx], self._sd[idx], g[idx]
            cands = _Lazy(self._all, idx)
        else:
            cands = self._pool(archs, F, v)
            if not cands:
                return []
            mu, sd = self.surrogate_.predict(self._design(cands))
            g = gaps(mu[:, :m], sd[:, :m], self._front(F, v))
        if not cands:
            return []
        if self._ntarget > m:  # predicted infeasible: only when nothing else is left
            g = g + 1e6 * (mu[:, m] > 0)
        g = g + 1e-9 * self.rng.random(len(g))  # seeded tie-break
        out: list[Architecture] = []
        for _ in range(min(n, len(cands))):
            i = int(np.argmin(g))
            out.append(cands[i])
            g[i] = np.inf
            if len(out) < n:  # believe the predicted mean: what it would dominate falls behind
                g = np.maximum(g, ((mu[:, :m] - mu[i, :m]) / sd[:, :m]).min(axis=1))
        return out

    def _pool(self, archs: list[Architecture], F: np.ndarray, v: np.ndarray
              ) -> list[Architecture]:
        """New architectures around the observed front (a space too large to list)."""
        return self._generator(archs, F, v, self.rng, self._new)
