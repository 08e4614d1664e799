"""A meta-learned accuracy predictor that transfers to a new task from ~20 trained architectures.

The tasks of a tabular benchmark (CIFAR-10, CIFAR-100, ImageNet16-120; 12 or 200 training epochs)
rank architectures alike over the whole space, but much less alike inside its top 10%, where a
search spends its time. Following the few-shot transfer of HELP (Lee, Lee & Hwang, NeurIPS 2021)
from devices to tasks, this module:

1. describes every architecture by its normal-scored accuracy on the *source tasks*, its structure
   and its one-hot encoding (:class:`~hwnas.meta.accuracy_features.AccuracyFeatures`);
2. meta-trains (:meth:`MetaAccuracyPredictor.meta_fit`) an architecture encoder
   (:class:`~hwnas.meta.encoders.ArchEncoder`) over episodes drawn from the source tasks: each
   episode hides the target's own dataset among the inputs (as the test task will be hidden),
   adapts a linear head on a support set of shots and scores a query set half drawn from the
   target's top 10%. The head is adapted in closed form (ridge, R2-D2: Bertinetto et al., ICLR
   2019) or by gradient steps from a meta-learned initialisation (``algo="maml"``/``"metasgd"``:
   :class:`hwnas.meta.MAML` (Finn et al., ICML 2017), :class:`hwnas.meta.MetaSGD`);
3. adapts (:meth:`MetaAccuracyPredictor.adapt`) to the new task's shots with several linear heads
   (source tasks at a few ridge penalties, plus structure, plus one-hot, plus the learned
   embedding) averaged with weights from their leave-one-out errors on the shots.

Targets are the shots' normal scores (ranks on a normal scale), so the fit is about ranking;
:meth:`AdaptedAccuracyPredictor.predict` maps the predicted score back to percent with a linear
calibration on the shots (monotone: it keeps the ranking).

Example:
    >>> meta = MetaAccuracyPredictor(features, seed=0).meta_fit(tasks)  # doctest: +SKIP
    >>> pred = meta.adapt(shot_indices, shot_accuracy)  # doctest: +SKIP
    >>> pred.predict(range(len(features)))  # doctest: +SKIP
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import ClassVar

import numpy as np
import torch

from .accuracy_features import AccuracyFeatures, normal_scores
from .errors import MetaError
from .predictor_base import ALGOS, AdaptedPredictor, MetaPredictor, column_mask, ridge_loo

__all__ = ["ACCURACY_ALGOS", "ACCURACY_CANDIDATES", "MIN_ACCURACY_SHOTS", "AccuracyTask",
           "AdaptedAccuracyPredictor", "MetaAccuracyPredictor", "ScorePredictor", "calibrate",
           "check_shots"]

ACCURACY_ALGOS = ALGOS
#: fewest shots adaptation accepts (a few weights and a leave-one-out weighting need them)
MIN_ACCURACY_SHOTS = 5
#: fixed heads: name -> (feature blocks, ridge penalty); "L" is the learned embedding
ACCURACY_CANDIDATES: dict[str, tuple[tuple[str, ...], float]] = {
    "src@0.3": (("S",), 0.3), "src@1": (("S",), 1.0), "src@3": (("S",), 3.0),
    "src+struct@1": (("S", "C"), 1.0), "src+onehot@1": (("S", "A"), 1.0),
    "src+learned@1": (("S", "L"), 1.0), "src+learned@3": (("S", "L"), 3.0),
}
_ONEHOT_SCALE = 0.3  # one-hot columns enter the ridge at this scale (a stronger prior on them)


@dataclass(frozen=True)
class AccuracyTask:
    """One meta-training task: a source task's accuracies on every architecture of the table.

    Args:
        name: the task (accuracy column) name.
        accuracy: ``(n,)`` accuracies, aligned with the features' rows.
        hidden: source columns hidden while this task is the target (its own dataset's).
    """

    name: str
    accuracy: np.ndarray
    hidden: tuple[int, ...] = ()


class MetaAccuracyPredictor(MetaPredictor):
    """Meta-learns an architecture encoder over source tasks; adapts to a new task from shots.

    Args:
        features: the table's features (source tasks, structure, one-hot).
        algo: head adaptation in the episodes: ``ridge`` (closed form), ``maml`` or ``metasgd``.
        embed_dim: width of the learned embedding.
        hidden: hidden width of the encoder.
        meta_steps: outer optimisation steps (each over every task; >= 0).
        meta_lr: outer Adam learning rate.
        inner_steps: gradient steps of ``maml``/``metasgd``.
        inner_lr: their (initial) step size.
        n_support: shots per episode.
        n_query: query architectures per episode (half of them from the task's top 10%).
        candidates: names from :data:`ACCURACY_CANDIDATES` that adaptation averages.
        temperature: softness of the leave-one-out weighting (smaller: sharper).
        seed: seeds every random draw and the encoder's initialisation (an integer >= 0; the
            global torch RNG is not touched).

    Attributes:
        encoder_: the meta-trained encoder; ``embedding_``: its standardised output per row;
        head_: the ``MAML``/``MetaSGD`` head (``None`` for ``ridge``); ``history_``: mean query
        loss per outer step; ``from_cache_``: whether ``meta_fit`` loaded its state from the
        cache.

    Raises:
        MetaError: an unknown ``algo`` or candidate, or an argument out of range.
    """

    kind: ClassVar[str] = "accuracy"
    _task_word: ClassVar[str] = "task"

    def __init__(self, features: AccuracyFeatures, *, algo: str = "ridge", embed_dim: int = 8,
                 hidden: int = 64, meta_steps: int = 150, meta_lr: float = 3e-3,
                 inner_steps: int = 10, inner_lr: float = 0.05, n_support: int = 20,
                 n_query: int = 1000, candidates: Sequence[str] = tuple(ACCURACY_CANDIDATES),
                 temperature: float = 1.0, seed: int | None = 0):
        super().__init__(features, algo=algo, embed_dim=embed_dim, hidden=hidden,
                         meta_steps=meta_steps, meta_lr=meta_lr, inner_steps=inner_steps,
                         inner_lr=inner_lr, n_support=n_support, n_query=n_query,
                         temperature=temperature, seed=seed)
        if isinstance(candidates, str):
            candidates = (candidates,)
        unknown = [c for c in candidates if c not in ACCURACY_CANDIDATES]
        if unknown or not candidates:
            raise MetaError(f"unknown or no candidates {unknown or list(candidates)}; valid: "
                            + ", ".join(ACCURACY_CANDIDATES))
        self.candidates = tuple(candidates)

    # ------------------------------------------------------------------ meta-training
    def _check_task(self, task: AccuracyTask, n: int) -> tuple[np.ndarray, tuple[int, ...]]:
        acc = np.asarray(task.accuracy, dtype=np.float64)
        if acc.shape != (n,) or not np.isfinite(acc).all():
            raise MetaError(f"task {task.name}: needs {n} finite accuracies")
        k = self.features.S.shape[1]
        bad = [h for h in task.hidden
               if not (isinstance(h, int | np.integer) and not isinstance(h, bool) and 0 <= h < k)]
        if bad:
            raise MetaError(f"task {task.name}: hidden column {bad[0]!r} is not a source column "
                            f"(valid: 0..{k - 1})")
        return acc, tuple(int(h) for h in task.hidden)

    def _episodes(self, tasks: Sequence[AccuracyTask], rng: np.random.Generator
                  ) -> Callable[[torch.Tensor], torch.Tensor]:
        """Per task: hide its dataset's source columns, draw a support set and a query set half
        from the task's top 10%; the loss on normal scores (the support's own, for the head)."""
        n = len(self.features)
        S = torch.as_tensor(self.features.S, dtype=torch.float32)
        targets = [normal_scores(np.asarray(t.accuracy, np.float64)) for t in tasks]
        tops = [np.flatnonzero(y >= np.quantile(y, 0.9)) for y in targets]
        masks = [column_mask(S.shape[1], t.hidden) for t in tasks]
        k_sup, k_q = min(self.n_support, n), min(self.n_query, n)

        def step(emb: torch.Tensor) -> torch.Tensor:
            total = torch.zeros(())
            for y, top, mask in zip(targets, tops, masks, strict=True):
                sup = rng.choice(n, size=k_sup, replace=False)
                qry = np.concatenate([rng.choice(n, size=k_q - k_q // 2, replace=False),
                                      rng.choice(top, size=k_q // 2)])
                phi = torch.cat([S * mask, emb], dim=1)
                ys = torch.as_tensor(normal_scores(y[sup]), dtype=torch.float32)
                total = total + self._episode_loss(phi, ys, torch.as_tensor(sup),
                                                   torch.as_tensor(qry),
                                                   torch.as_tensor(y[qry], dtype=torch.float32))
            return total

        return step

    # ------------------------------------------------------------------ adaptation
    def adapt(self, X: Sequence[int] | np.ndarray, y: Sequence[float] | np.ndarray
              ) -> AdaptedAccuracyPredictor:
        """A predictor for a new task from its shots; ``self`` is not changed.

        Args:
            X: indices (rows of the features) of the trained architectures.
            y: their accuracies on the new task (percent, 0..100).

        Raises:
            MetaError: not meta-fitted (when a learned candidate is used), fewer than
                :data:`MIN_ACCURACY_SHOTS` distinct shots, indices outside the table, accuracies
                that are not finite or outside 0..100.
        """
        if any("learned" in c for c in self.candidates):
            self._require_embedding()
        return AdaptedAccuracyPredictor(self).fit(X, y)

    def _blocks(self) -> dict[str, np.ndarray]:
        f = self.features
        blocks = {"S": f.S, "C": f.C, "A": f.A.astype(np.float64) * _ONEHOT_SCALE}
        if hasattr(self, "embedding_"):
            blocks["L"] = self.embedding_
        return blocks


class ScorePredictor:
    """An accuracy predictor that ranks by a score and maps it to percent on the shots.

    Subclasses set ``score_`` (every row's score) and ``calibration_`` (:func:`calibrate`) in
    ``fit`` (through :meth:`_finish`); ``predict(X)`` is then ``a + b * score``.
    """

    features: AccuracyFeatures

    def _finish(self, score: np.ndarray, idx: np.ndarray, acc: np.ndarray) -> None:
        self.score_ = score
        self.calibration_ = calibrate(score[idx], acc)

    def predict_score(self, X: Sequence[int] | np.ndarray) -> np.ndarray:
        """The ranking score (normal scale) of the architectures at indices ``X``."""
        if not hasattr(self, "score_"):
            raise MetaError("predict needs a fitted predictor: call fit first")
        return self.score_[self.features.check_indices(X)]

    def predict(self, X: Sequence[int] | np.ndarray) -> np.ndarray:
        """Predicted accuracies of the architectures at indices ``X`` (the shots' unit)."""
        score = self.predict_score(X)
        a, b = self.calibration_
        return a + b * score


class AdaptedAccuracyPredictor(AdaptedPredictor, ScorePredictor):
    """The predictor of one task: a leave-one-out-weighted ensemble of linear heads.

    ``fit(X, y)`` (X: architecture indices, y: accuracies) returns self; ``predict(X)`` gives
    accuracies (the shots' unit), ``predict_score(X)`` the ranking score, ``predict_std(X)`` the
    standard deviation of ``predict``. Candidate names, weights and leave-one-out errors are in
    ``candidates_``, ``weights_`` and ``loo_``.
    """

    meta: MetaAccuracyPredictor

    def __init__(self, meta: MetaAccuracyPredictor):
        super().__init__(meta)
        self.features = meta.features

    def fit(self, X: Sequence[int] | np.ndarray, y: Sequence[float] | np.ndarray
            ) -> AdaptedAccuracyPredictor:
        """Fit the heads to the shots' normal scores and calibrate to percent; returns self.

        Raises:
            MetaError: as :func:`check_shots`.
        """
        idx, acc = check_shots(self.meta.features, X, y)
        t = normal_scores(acc)
        blocks = self.meta._blocks()
        preds, errs, names = [], [], []
        for name in self.meta.candidates:
            parts, lam = ACCURACY_CANDIDATES[name]
            if "L" in parts and getattr(self.meta, "head_", None) is not None:
                p, e = self.meta._maml_candidate(idx, t)
            else:
                p, e = ridge_loo(np.hstack([blocks[b] for b in parts]), t, idx, lam)
            preds.append(p), errs.append(e), names.append(name)
        self._finish(self._combine(names, preds, errs), idx, acc)
        return self

    def predict_std(self, X: Sequence[int] | np.ndarray) -> np.ndarray:
        """Standard deviation of :meth:`predict` at ``X``: the heads' mixture on the score scale
        times the calibration's slope."""
        self.predict_score(X)  # the fitted check
        return self.calibration_[1] * np.sqrt(self.var_[self.features.check_indices(X)])


def check_shots(features: AccuracyFeatures, X: Sequence[int] | np.ndarray,
                y: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated shots: distinct in-table indices and finite accuracies in percent (0..100), at
    least :data:`MIN_ACCURACY_SHOTS` of them. Raises :class:`MetaError` otherwise."""
    idx = features.check_indices(X)
    acc = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(acc) != len(idx):
        raise MetaError(f"{len(idx)} indices but {len(acc)} accuracies")
    if not np.isfinite(acc).all():
        raise MetaError("shot accuracies must be finite (no NaN)")
    if ((acc < 0) | (acc > 100)).any():
        bad = float(acc[(acc < 0) | (acc > 100)][0])
        raise MetaError(f"shot accuracy {bad:g} outside 0..100 (accuracies are in percent)")
    if len(set(idx.tolist())) != len(idx):
        raise MetaError("an architecture appears twice among the shots")
    if len(idx) < MIN_ACCURACY_SHOTS:
        raise MetaError(f"{len(idx)} shots; adaptation needs at least {MIN_ACCURACY_SHOTS}")
    return idx, acc


def calibrate(score: np.ndarray, acc: np.ndarray) -> tuple[float, float]:
    """``(a, b)`` with ``acc ~ a + b * score`` by least squares on the shots, ``b > 0``.

    A non-positive slope (a score that ranks the shots backwards) falls back to matching the
    shots' mean and spread, so the map stays monotone and the ranking is kept.
    """
    s = np.asarray(score, np.float64) - np.mean(score)
    var = float(s @ s)
    b = float(s @ (acc - acc.mean())) / var if var > 0 else 0.0
    if b <= 0:
        b = float(np.std(acc) / np.std(score)) if np.std(score) > 0 else 1.0
    return float(acc.mean() - b * np.mean(score)), b
