"""Multi-fidelity accuracy transfer: a few full results, many cheap ones, zero-cost proxies.

A user adapting to a new task usually has K fully trained architectures and, beside them, many
cheap results of the *same task* (short training, a subset of the data) and zero-cost proxies
computed on its images (:mod:`hwnas.meta.accuracy_proxies`). :class:`MultiFidelityPredictor`
ranks every architecture of the table from all of it:

1. **blocks** of per-architecture features on the normal-score scale
   (:func:`~hwnas.meta.accuracy_features.normal_scores`): the source tasks ``S``, the target's
   low-fidelity columns ``L``, the proxies ``P``, the structure ``C``; a low-fidelity or proxy
   column that covers only part of the table is completed by a ridge regression on the sources
   and structure fitted to the rows it covers (:func:`complete_columns`);
2. a **fidelity map** ``M`` meta-learned from the sources (:func:`fit_fidelity_map`): wherever
   the source tasks hold a full-budget column together with cheaper columns of the same dataset
   (``cifar100_test_200ep`` and ``cifar100_*_12ep``), an extremely randomised forest (Geurts,
   Ernst & Wehenkel, Machine Learning 2006) learns, on all of the table, how a full result follows
   from its own cheap results, the other datasets and the structure; applied to the new task's
   low-fidelity columns it gives a prior ranking (the few-shot transfer of HELP, Lee et al.,
   NeurIPS 2021, from devices to fidelities);
3. on the K shots, linear heads (ridge on normal scores) over small combinations of the blocks
   and ``N``, the source column that ranks the shots best, averaged with weights from their
   leave-one-out errors (Allen's PRESS), as
   :class:`~hwnas.meta.accuracy.AdaptedAccuracyPredictor` does; with the map, one head also
   reads the structure ``C`` (the shots correct the map's structural bias);
4. a **second stage for the top of the ranking** (:func:`fit_top_model`, :func:`rerank_top`):
   the top-10% order is decided by fine differences the heads, fitted to every shot alike, do not
   see. A second forest, learned on the sources' pairs from their upper half only (the full
   column's top 50%) on cheap results, structure and one-hot encoding, re-orders the predicted
   top 30% (rank average with the heads' order; the region keeps its score values, so the
   calibration to percent is unchanged) -- a stage-wise ranker in the spirit of cascade ranking
   (Wang, Lin & Metzler, SIGIR 2011);
5. a **safeguard** for the overall ranking: the score whose values the region shares out is the
   rank average of the heads and ``N`` (``N``'s weight: ``safeguard`` times the ``near`` head's
   leave-one-out weight relative to the best head's), so where the nearest source predicts the
   shots about as well as the heads, the bulk of the table leans on it.

Stages 4 and 5 and the structure head exist only with the fidelity map (where they were chosen).

Which heads exist depends on what is given: without low-fidelity columns or proxies the predictor
is the nearest source task; each input adds its heads.

Example:
    >>> mf = MultiFidelityPredictor(feats, low_fidelity=lf).fit(shots, acc)  # doctest: +SKIP
    >>> mf.predict_score(range(len(feats)))  # doctest: +SKIP
"""

from __future__ import annotations

import re
from collections.abc import Sequence

import numpy as np
from scipy.stats import spearmanr

from .accuracy import ScorePredictor, check_shots
from .accuracy_features import AccuracyFeatures, dataset_of, normal_scores
from .errors import MetaError
from .predictor_base import loo_weights, ridge_loo

__all__ = ["MF_CANDIDATES", "STRUCTURE_HEADS", "WITHOUT_MAP", "MultiFidelityPredictor",
           "complete_columns", "epochs_of", "fidelity_map_features", "fidelity_pairs",
           "fit_fidelity_map", "fit_top_model", "rerank_top", "top_model_features"]

#: heads: name -> feature blocks; each is fitted at every penalty of ``lams``; a head whose blocks
#: are not all given is left out, and with a fidelity map (``M``) the heads on the raw cheap
#: results without it are too (:data:`WITHOUT_MAP`). ``N`` is the source column that ranks the
#: shots most like the new task (Spearman), chosen per fit. Chosen on the validation task
#: cifar100_test_200ep (K = 20, rho top-10%): heads on every source column at once overfitted
#: (0.666), the raw cheap-result heads beside the map pulled it down (0.684 against 0.700)
MF_CANDIDATES: dict[str, tuple[str, ...]] = {
    "near": ("N",), "lf": ("L",), "near+lf": ("N", "L"),
    "map": ("M",), "map+near": ("M", "N"), "map+near+lf": ("M", "N", "L"),
    "near+proxy": ("N", "P"), "near+lf+proxy": ("N", "L", "P"), "map+near+proxy": ("M", "N", "P"),
}
#: heads left out when the fidelity map exists (it already reads the cheap results)
WITHOUT_MAP = ("lf", "near+lf", "near+lf+proxy")
#: heads with the structure block, fitted only with the map (``structure_head=True``). Chosen on
#: the validation task cifar100_test_200ep (K = 20, 10 seeds, rho top-10%): 0.698 -> 0.708; the
#: map alone carries a structural bias learned on the other dataset that the shots can correct
STRUCTURE_HEADS: dict[str, tuple[str, ...]] = {"map+near+structure": ("M", "N", "C")}


def epochs_of(task: str) -> int | None:
    """The training epochs in a column name (``cifar10_test_200ep`` -> 200), or None."""
    m = re.search(r"_(\d+)ep$", task)
    return int(m.group(1)) if m else None


def fidelity_pairs(sources: Sequence[str]) -> dict[str, list[str]]:
    """Source columns that have cheaper columns of their own dataset among the sources.

    Returns:
        ``{full column: [its dataset's columns with fewer epochs]}``, e.g.
        ``{"cifar100_test_200ep": ["cifar100_val_12ep", "cifar100_test_12ep"]}``.
    """
    out: dict[str, list[str]] = {}
    for s in sources:
        e = epochs_of(s)
        cheap = [c for c in sources if c != s and dataset_of(c) == dataset_of(s)
                 and e is not None and (epochs_of(c) or e) < e]
        if cheap:
            out[s] = cheap
    return out


def complete_columns(M: np.ndarray, F: np.ndarray, lam: float = 1.0) -> np.ndarray:
    """Normal scores of each column of ``M`` (NaN = not measured), the gaps filled by ridge.

    Each column's measured rows are normal-scored among themselves; a column with gaps is then
    regressed on ``F`` (sources and structure of every row) over its measured rows and the
    regression fills the rest. A column measured on fewer than 5 rows is refused.

    Raises:
        MetaError: a column with fewer than 5 measured rows, or shapes that disagree.
    """
    M = np.asarray(M, dtype=np.float64)
    if M.ndim != 2 or len(M) != len(F):
        raise MetaError(f"columns of shape {M.shape} for {len(F)} architectures")
    out = np.empty_like(M)
    for j in range(M.shape[1]):
        have = np.flatnonzero(~np.isnan(M[:, j]))
        if len(have) < 5:
            raise MetaError(f"low-fidelity/proxy column {j}: {len(have)} measured architectures; "
                            "needs at least 5")
        z = normal_scores(M[have, j])
        if len(have) == len(M):
            out[:, j] = z
            continue
        pred, _ = ridge_loo(F, z, have, lam)
        out[:, j] = pred
        out[have, j] = z
    return out


def fidelity_map_features(cheap: np.ndarray, others: np.ndarray, structure: np.ndarray
                          ) -> np.ndarray:
    """Inputs of the fidelity map: mean cheap score, mean/min/max of the other datasets'
    scores, and the structure (counts of a column set that differs between tasks are summarised,
    so a map learned on one dataset applies to another)."""
    rows = [cheap.mean(axis=1)]
    if others.shape[1]:
        rows += [others.mean(axis=1), others.min(axis=1), others.max(axis=1)]
    return np.column_stack([*rows, structure])


def fit_fidelity_map(features: AccuracyFeatures, cheap_names: Sequence[str] = (), *,
                     n_estimators: int = 100, seed: int = 0):
    """An extremely randomised forest from cheap results to full results, learned on the sources.

    Training rows: every architecture of every pair of :func:`fidelity_pairs` (target: the full
    column's normal scores; inputs: :func:`fidelity_map_features` of its cheap columns, the
    *other datasets'* source columns and the structure).

    Args:
        features: the table's features (the source tasks).
        cheap_names: the new task's low-fidelity column names, used to leave the new task's
            dataset out of "the other datasets" (no name: every source counts as other).
        n_estimators: trees.
        seed: the forest's randomness.

    Returns:
        ``(forest, other_columns)`` or ``None`` when the sources hold no pair; ``other_columns``
        are the source columns the new task's inputs summarise.
    """
    from sklearn.ensemble import ExtraTreesRegressor

    pairs = fidelity_pairs(features.sources)
    if not pairs:
        return None
    X, y = [], []
    for full, cheap in pairs.items():
        j_cheap = [features.sources.index(c) for c in cheap]
        j_other = [j for j, s in enumerate(features.sources) if dataset_of(s) != dataset_of(full)]
        X.append(fidelity_map_features(features.S[:, j_cheap], features.S[:, j_other],
                                       features.C))
        y.append(features.S[:, features.sources.index(full)])
    forest = ExtraTreesRegressor(n_estimators=n_estimators, min_samples_leaf=3, max_features=0.5,
                                 n_jobs=1, random_state=seed)
    forest.fit(np.vstack(X), np.concatenate(y))
    target_sets = {dataset_of(c) for c in cheap_names}
    other = [j for j, s in enumerate(features.sources) if dataset_of(s) not in target_sets]
    return forest, other


def top_model_features(cheap: np.ndarray, structure: np.ndarray, onehot: np.ndarray
                       ) -> np.ndarray:
    """Inputs of the top-region model: mean cheap score, structure, one-hot encoding (no other
    dataset: their set differs between the sources' pairs and the new task)."""
    return np.column_stack([cheap.mean(axis=1), structure, onehot])


def fit_top_model(features: AccuracyFeatures, quantile: float = 0.5, *,
                  n_estimators: int = 200, seed: int = 0):
    """An extremely randomised forest for the *upper part* of the ranking, learned on the sources.

    Training rows: for every pair of :func:`fidelity_pairs`, the architectures in the full
    column's top ``1 - quantile`` (the region where the fine differences are; a forest fitted to
    every row spends its splits on the broken networks of the low tail); target: the full
    column's normal scores; inputs: :func:`top_model_features`. Chosen on the validation task
    cifar100_test_200ep: the upper half, no other-dataset inputs (0.702 top-10% rho alone against
    0.688-0.700 for the top 20/30% or with them).

    Returns:
        The fitted forest, or ``None`` when the sources hold no pair.
    """
    from sklearn.ensemble import ExtraTreesRegressor

    pairs = fidelity_pairs(features.sources)
    if not pairs:
        return None
    X, y = [], []
    for full, cheap in pairs.items():
        target = features.S[:, features.sources.index(full)]
        rows = target >= np.quantile(target, quantile)
        j_cheap = [features.sources.index(c) for c in cheap]
        X.append(top_model_features(features.S[:, j_cheap], features.C, features.A)[rows])
        y.append(target[rows])
    forest = ExtraTreesRegressor(n_estimators=n_estimators, min_samples_leaf=3, max_features=0.5,
                                 n_jobs=1, random_state=seed)
    return forest.fit(np.vstack(X), np.concatenate(y))


def rerank_top(score: np.ndarray, top_score: np.ndarray, nearest: np.ndarray, *,
               region: float = 0.3, blend: float = 0.5, safeguard: float = 0.5) -> np.ndarray:
    """The final ranking score: safeguard blend everywhere, re-ordered inside the top region.

    ``base = ns((1 - safeguard) * ns(score) + safeguard * nearest)`` (``ns``: normal scores);
    the architectures in the top ``region`` of ``score`` keep their set of ``base`` values, handed
    out in the order of ``(1 - blend) * ns(score) + blend * ns(top_score)`` within the region.

    Args:
        score: the heads' prediction (every architecture).
        top_score: the top-region model's prediction (every architecture; only the region's
            rows are read), or ``None``: no re-ordering.
        nearest: the nearest source's normal scores.
        region: share of the table re-ordered (0: none).
        blend: weight of ``top_score`` in the region.
        safeguard: weight of ``nearest`` in the base score (0: the heads alone).

    Raises:
        MetaError: weights outside [0, 1].
    """
    if not (0 <= region <= 1 and 0 <= blend <= 1 and 0 <= safeguard <= 1):
        raise MetaError(f"region, blend and safeguard must be in [0, 1], got {region!r}, "
                        f"{blend!r}, {safeguard!r}")
    z = normal_scores(score)
    base = normal_scores((1.0 - safeguard) * z + safeguard * nearest) if safeguard else z
    if top_score is None or region == 0 or blend == 0:
        return base
    R = np.flatnonzero(z >= np.quantile(z, 1.0 - region))
    order = (1.0 - blend) * normal_scores(z[R]) + blend * normal_scores(top_score[R])
    out = base.copy()
    out[R[np.argsort(order, kind="stable")]] = np.sort(base[R])
    return out


class MultiFidelityPredictor(ScorePredictor):
    """Ranks a new task's architectures from K full results, cheap results and proxies.

    Args:
        features: the table's features (source tasks, structure).
        low_fidelity: ``(n, m)`` the new task's cheap accuracies (NaN where not measured), or
            ``None``.
        proxies: ``(n, p)`` zero-cost proxies on the new task's data (NaN: not computed; -inf:
            a degenerate network, ranked last), or ``None``.
        fidelity_map: use the meta-learned map when the sources allow it and low-fidelity
            columns are given (``True``), never (``False``), or a ``(forest, other_columns)``
            already returned by :func:`fit_fidelity_map` for these features (fitted once,
            shared by predictors that differ only in their shots or coverage).
        low_fidelity_names: the low-fidelity columns' names (their dataset is left out of the
            map's "other datasets").
        structure_head: fit the :data:`STRUCTURE_HEADS` beside the others (with the map only).
        top_model: re-order the predicted top region by :func:`fit_top_model` (``True``; with
            the map only), never (``False``), or a forest already returned by it for these
            features.
        top_region, top_blend, safeguard: as :func:`rerank_top` (the safeguard too applies
            with the map only: it was chosen there). The defaults were chosen on
            the validation task cifar100_test_200ep (K = 20, 10 seeds): region 0.3 and blend 0.5
            (0.708 -> 0.715 top-10% rho; region 0.2 the same, blend 0.3 0.714), safeguard 0.5
            (overall rho 0.979 -> 0.981, top-10% unchanged).
        lams: ridge penalties every head is fitted at.
        temperature: softness of the leave-one-out weighting (as the accuracy predictor's).
        seed: the fidelity map's randomness.

    Attributes:
        candidates_, weights_, loo_: the heads, their weights and leave-one-out errors;
        blocks_: the feature blocks used; map_: whether the fidelity map was used;
        nearest_: the source column of the ``N`` block; top_score_: the top-region model's
        prediction (``None`` without it); safeguard_: ``N``'s weight in the final blend.

    Raises:
        MetaError: inputs whose row count is not the table's, or a column with too few values.
    """

    def __init__(self, features: AccuracyFeatures, low_fidelity: np.ndarray | None = None,
                 proxies: np.ndarray | None = None, *, fidelity_map: bool | tuple = True,
                 low_fidelity_names: Sequence[str] = (), structure_head: bool = True,
                 top_model: bool | object = True, top_region: float = 0.3,
                 top_blend: float = 0.5, safeguard: float = 0.5,
                 lams: Sequence[float] = (0.3, 1.0, 3.0), temperature: float = 1.0,
                 seed: int = 0):
        self.features = features
        self.low_fidelity = low_fidelity
        self.proxies = proxies
        self.fidelity_map = fidelity_map
        self.low_fidelity_names = tuple(low_fidelity_names)
        self.structure_head = structure_head
        self.top_model = top_model
        self.top_region = top_region
        self.top_blend = top_blend
        self.safeguard = safeguard
        self.lams = tuple(lams)
        self.temperature = temperature
        self.seed = seed
        self._blocks_cache: dict[str, np.ndarray] | None = None

    def _blocks(self) -> dict[str, np.ndarray]:
        """The feature blocks (computed once: they do not depend on the shots)."""
        if self._blocks_cache is not None:
            return self._blocks_cache
        f = self.features
        blocks = {"S": f.S, "C": f.C}
        filler = np.hstack([f.S, f.C])
        for key, M in (("L", self.low_fidelity), ("P", self.proxies)):
            if M is None:
                continue
            M = np.asarray(M, dtype=np.float64)
            M = M.reshape(-1, 1) if M.ndim == 1 else M
            if len(M) != len(f) or M.shape[1] == 0:
                raise MetaError(f"{'low-fidelity' if key == 'L' else 'proxy'} columns of shape "
                                f"{M.shape}; expected ({len(f)}, >= 1)")
            # -inf (a degenerate network) ranks last; +inf is not a score
            if np.isposinf(M).any():
                raise MetaError("low-fidelity/proxy values must not be +inf")
            blocks[key] = complete_columns(M, filler)
        self.map_ = False
        if self.fidelity_map is not False and "L" in blocks:
            fitted = (self.fidelity_map if isinstance(self.fidelity_map, tuple)
                      else fit_fidelity_map(f, self.low_fidelity_names, seed=self.seed))
            if fitted is not None:
                forest, other = fitted
                X = fidelity_map_features(blocks["L"], f.S[:, other], f.C)
                blocks["M"] = normal_scores(forest.predict(X)).reshape(-1, 1)
                self.map_ = True
        self.top_score_ = None
        if self.map_ and self.top_model is not False:
            top = fit_top_model(f, seed=self.seed) if self.top_model is True else self.top_model
            if top is not None:
                self.top_score_ = top.predict(top_model_features(blocks["L"], f.C, f.A))
        self._blocks_cache = blocks
        return blocks

    def fit(self, X: Sequence[int] | np.ndarray, y: Sequence[float] | np.ndarray
            ) -> MultiFidelityPredictor:
        """Fit the heads to the shots' normal scores; returns self.

        Raises:
            MetaError: as :func:`~hwnas.meta.accuracy.check_shots`, or bad inputs (see class).
        """
        idx, acc = check_shots(self.features, X, y)
        t = normal_scores(acc)
        blocks = dict(self._blocks())
        S = self.features.S
        rhos = np.nan_to_num([spearmanr(S[idx, j], acc)[0] for j in range(S.shape[1])], nan=-2.0)
        self.nearest_ = self.features.sources[int(np.argmax(rhos))]
        blocks["N"] = S[:, [int(np.argmax(rhos))]]
        self.blocks_ = sorted(blocks)
        preds, errs, names = [], [], []
        heads = dict(MF_CANDIDATES)
        if self.structure_head and "M" in blocks:
            heads.update(STRUCTURE_HEADS)
        for name, parts in heads.items():
            if not all(p in blocks for p in parts) or ("M" in blocks and name in WITHOUT_MAP):
                continue
            F = np.hstack([blocks[p] for p in parts])
            for lam in self.lams:
                p, e = ridge_loo(F, t, idx, lam)
                preds.append(p), errs.append(e), names.append(f"{name}@{lam:g}")
        self.weights_, self.loo_ = loo_weights(errs, self.temperature)
        self.candidates_ = names
        # the safeguard leans on N only as far as N alone predicts the shots: scaled by the
        # near head's leave-one-out weight relative to the best head's (1 where N is the best)
        near = min(e for e, c in zip(self.loo_, names, strict=True) if c.startswith("near@"))
        self.safeguard_ = (self.safeguard * float(np.exp(-(near / self.loo_.min() - 1.0)
                                                         / self.temperature))
                           if self.map_ else 0.0)
        score = rerank_top(self.weights_ @ np.stack(preds), self.top_score_, blocks["N"][:, 0],
                           region=self.top_region, blend=self.top_blend,
                           safeguard=self.safeguard_)
        self._finish(score, idx, acc)
        return self
