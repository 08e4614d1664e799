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

import numpy as np
import torch
from torch import nn

from .accuracy_features import AccuracyFeatures, normal_scores
from .encoders import ArchEncoder
from .errors import MetaError
from .latency_features import ridge_loo
from .maml import MAML, MetaSGD

__all__ = ["ACCURACY_ALGOS", "ACCURACY_CANDIDATES", "MIN_ACCURACY_SHOTS", "AccuracyTask",
           "AdaptedAccuracyPredictor", "MetaAccuracyPredictor", "calibrate"]

ACCURACY_ALGOS = ("ridge", "maml", "metasgd")
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


class MetaAccuracyPredictor:
    """Meta-learns an architecture encoder over source tasks; adapts to a new task from shots.

    Args:
        features: the table's features (source tasks, structure, one-hot).
        algo: head adaptation in the episodes: ``ridge`` (closed form), ``maml`` or ``metasgd``.
        embed_dim: width of the learned embedding.
        hidden: hidden width of the encoder.
        meta_steps: outer optimisation steps (each over every task).
        meta_lr: outer Adam learning rate.
        inner_steps: gradient steps of ``maml``/``metasgd``.
        inner_lr: their (initial) step size.
        n_support: shots per episode.
        n_query: query architectures per episode (half of them from the task's top 10%).
        candidates: names from :data:`ACCURACY_CANDIDATES` that adaptation averages.
        temperature: softness of the leave-one-out weighting (smaller: sharper).
        seed: seeds every random draw and the encoder's initialisation.

    Attributes:
        encoder_: the meta-trained encoder; ``embedding_``: its standardised output per row;
        head_: the ``MAML``/``MetaSGD`` head (``None`` for ``ridge``); ``history_``: mean query
        loss per outer step.
    """

    def __init__(self, features: AccuracyFeatures, *, algo: str = "ridge", embed_dim: int = 8,
                 hidden: int = 64, meta_steps: int = 150, meta_lr: float = 3e-3,
                 inner_steps: int = 10, inner_lr: float = 0.05, n_support: int = 20,
                 n_query: int = 1000, candidates: Sequence[str] = tuple(ACCURACY_CANDIDATES),
                 temperature: float = 1.0, seed: int | None = 0):
        if algo not in ACCURACY_ALGOS:
            raise MetaError(f"unknown algo {algo!r}; valid: {', '.join(ACCURACY_ALGOS)}")
        unknown = [c for c in candidates if c not in ACCURACY_CANDIDATES]
        if unknown or not candidates:
            raise MetaError(f"unknown or no candidates {unknown or list(candidates)}; valid: "
                            + ", ".join(ACCURACY_CANDIDATES))
        self.features = features
        self.algo = algo
        self.embed_dim = embed_dim
        self.hidden = hidden
        self.meta_steps = meta_steps
        self.meta_lr = meta_lr
        self.inner_steps = inner_steps
        self.inner_lr = inner_lr
        self.n_support = n_support
        self.n_query = n_query
        self.candidates = tuple(candidates)
        self.temperature = temperature
        self.seed = seed

    # ------------------------------------------------------------------ meta-training
    def _build(self) -> None:
        torch.manual_seed(0 if self.seed is None else int(self.seed))
        self.encoder_ = ArchEncoder(self.features.A.shape[1], self.embed_dim, self.hidden)
        self.head_: MAML | None = None
        if self.algo != "ridge":
            head = nn.Linear(self.features.S.shape[1] + self.embed_dim, 1)
            nn.init.zeros_(head.weight)
            nn.init.zeros_(head.bias)
            cls = MAML if self.algo == "maml" else MetaSGD
            self.head_ = cls(head, inner_lr=self.inner_lr)

    def meta_fit(self, tasks: Sequence[AccuracyTask],
                 progress: Callable[[int, int], None] | None = None) -> MetaAccuracyPredictor:
        """Meta-train the encoder (and the head's initialisation) on ``tasks``; returns self.

        Raises:
            MetaError: no tasks, or a task whose accuracies do not match the features.
        """
        if not tasks:
            raise MetaError("meta_fit needs at least one task (source task)")
        n = len(self.features)
        for t in tasks:
            acc = np.asarray(t.accuracy, dtype=np.float64)
            if acc.shape != (n,) or not np.isfinite(acc).all():
                raise MetaError(f"task {t.name}: needs {n} finite accuracies")
        self._build()
        rng = np.random.default_rng(self.seed)
        S = torch.as_tensor(self.features.S, dtype=torch.float32)
        A = torch.as_tensor(self.features.A)
        targets = [normal_scores(np.asarray(t.accuracy, np.float64)) for t in tasks]
        tops = [np.flatnonzero(y >= np.quantile(y, 0.9)) for y in targets]
        masks = [_mask(S.shape[1], t.hidden) for t in tasks]
        params = list(self.encoder_.parameters())
        if self.head_ is not None:
            params += list(self.head_.parameters())
        opt = torch.optim.Adam(params, lr=self.meta_lr)
        self.history_: list[float] = []
        k_sup, k_q = min(self.n_support, n), min(self.n_query, n)
        for step in range(self.meta_steps):
            opt.zero_grad()
            emb = self.encoder_(A)
            total = torch.zeros(())
            for y, top, mask in zip(targets, tops, masks, strict=True):
                sup = rng.choice(n, size=k_sup, replace=False)
                qry = np.concatenate([rng.choice(n, size=k_q - k_q // 2, replace=False),
                                      rng.choice(top, size=k_q // 2)])
                phi = torch.cat([S * mask, emb], dim=1)
                ys = torch.as_tensor(normal_scores(y[sup]), dtype=torch.float32)
                total = total + self._episode(phi, ys, torch.as_tensor(sup), torch.as_tensor(qry),
                                              torch.as_tensor(y[qry], dtype=torch.float32))
            loss = total / len(tasks)
            loss.backward()
            opt.step()
            self.history_.append(float(loss.detach()))
            if progress is not None:
                progress(step + 1, self.meta_steps)
        with torch.no_grad():
            emb = self.encoder_(A).numpy().astype(np.float64)
        sd = emb.std(axis=0)
        self.embedding_ = (emb - emb.mean(axis=0)) / np.where(sd > 0, sd, 1.0)
        return self

    def _episode(self, phi: torch.Tensor, ys: torch.Tensor, sup: torch.Tensor,
                 qry: torch.Tensor, yq: torch.Tensor) -> torch.Tensor:
        center = phi[sup].mean(dim=0)
        xs, xq = phi[sup] - center, phi[qry] - center
        if self.head_ is None:
            gram = xs.T @ xs + torch.eye(xs.shape[1])
            pred = xq @ torch.linalg.solve(gram, xs.T @ (ys - ys.mean())) + ys.mean()
        else:
            learner = self.head_.adapt(xs, ys.unsqueeze(1), steps=self.inner_steps)
            pred = learner(xq).squeeze(1)
        return ((pred - yq) ** 2).mean()

    # ------------------------------------------------------------------ adaptation
    def adapt(self, X: Sequence[int] | np.ndarray, y: Sequence[float] | np.ndarray
              ) -> AdaptedAccuracyPredictor:
        """A predictor for a new task from its shots; ``self`` is not changed.

        Args:
            X: indices (rows of the features) of the trained architectures.
            y: their accuracies on the new task.

        Raises:
            MetaError: not meta-fitted (when a learned candidate is used), fewer than
                :data:`MIN_ACCURACY_SHOTS` distinct shots, indices outside the table, accuracies
                that are not finite.
        """
        if any("learned" in c for c in self.candidates) and not hasattr(self, "embedding_"):
            raise MetaError("adapt needs a meta-fitted predictor: call meta_fit first")
        return AdaptedAccuracyPredictor(self).fit(X, y)

    def _blocks(self) -> dict[str, np.ndarray]:
        f = self.features
        blocks = {"S": f.S, "C": f.C, "A": f.A.astype(np.float64) * _ONEHOT_SCALE}
        if hasattr(self, "embedding_"):
            blocks["L"] = self.embedding_
        return blocks

    def _maml_candidate(self, idx: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
        phi = np.hstack([self.features.S, self.embedding_])
        pred = self._maml_predict(phi, idx, t, np.arange(len(phi)))
        folds = np.arange(len(idx)) % 5
        err = [(self._maml_predict(phi, idx[folds != k], t[folds != k], idx[folds == k])
                - t[folds == k]) ** 2 for k in range(5)]
        return pred, float(np.mean(np.concatenate(err)))

    def _maml_predict(self, phi: np.ndarray, support: np.ndarray, t: np.ndarray,
                      rows: np.ndarray) -> np.ndarray:
        assert self.head_ is not None
        center = phi[support].mean(axis=0)
        xs = torch.as_tensor(phi[support] - center, dtype=torch.float32)
        ys = torch.as_tensor(t, dtype=torch.float32).unsqueeze(1)
        learner = self.head_.adapt(xs, ys, steps=self.inner_steps, first_order=True)
        with torch.no_grad():
            out = learner(torch.as_tensor(phi[rows] - center, dtype=torch.float32))
        return out.squeeze(1).numpy().astype(np.float64)


class AdaptedAccuracyPredictor:
    """The predictor of one task: a leave-one-out-weighted ensemble of linear heads.

    ``fit(X, y)`` (X: architecture indices, y: accuracies) returns self; ``predict(X)`` gives
    accuracies (the shots' unit), ``predict_score(X)`` the ranking score. Candidate names, weights
    and leave-one-out errors are in ``candidates_``, ``weights_`` and ``loo_``.
    """

    def __init__(self, meta: MetaAccuracyPredictor):
        self.meta = meta

    def fit(self, X: Sequence[int] | np.ndarray, y: Sequence[float] | np.ndarray
            ) -> AdaptedAccuracyPredictor:
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
        errs_a = np.maximum(np.asarray(errs), 1e-12)
        w = np.exp(-(errs_a / errs_a.min() - 1.0) / self.meta.temperature)
        self.weights_ = w / w.sum()
        self.loo_ = errs_a
        self.candidates_ = names
        self.score_ = self.weights_ @ np.stack(preds)
        self.calibration_ = calibrate(self.score_[idx], acc)
        return self

    def predict_score(self, X: Sequence[int] | np.ndarray) -> np.ndarray:
        """The ranking score (normal scale) of the architectures at indices ``X``."""
        if not hasattr(self, "score_"):
            raise MetaError("predict needs a fitted predictor: call fit first")
        return self.score_[self.meta.features.check_indices(X)]

    def predict(self, X: Sequence[int] | np.ndarray) -> np.ndarray:
        """Predicted accuracies of the architectures at indices ``X`` (the shots' unit)."""
        score = self.predict_score(X)
        a, b = self.calibration_
        return a + b * score


def check_shots(features: AccuracyFeatures, X: Sequence[int] | np.ndarray,
                y: Sequence[float] | np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Validated shots: distinct in-table indices and finite accuracies, at least
    :data:`MIN_ACCURACY_SHOTS` of them. Raises :class:`MetaError` otherwise."""
    idx = features.check_indices(X)
    acc = np.asarray(y, dtype=np.float64).reshape(-1)
    if len(acc) != len(idx):
        raise MetaError(f"{len(idx)} indices but {len(acc)} accuracies")
    if not np.isfinite(acc).all():
        raise MetaError("shot accuracies must be finite (no NaN)")
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


def _mask(k: int, hidden: Sequence[int]) -> torch.Tensor:
    mask = torch.ones(k)
    mask[list(hidden)] = 0.0
    return mask
