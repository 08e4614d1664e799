"""A meta-learned latency predictor that transfers to a new device from ~20 measurements.

HELP (Lee, Lee & Hwang, "HELP: Hardware-Adaptive Efficient Latency Prediction for NAS via
Meta-Learning", NeurIPS 2021) describes a device by its latencies on a fixed reference set of
architectures (the *hardware embedding*), meta-trains a predictor over many source devices and
adapts it to a new one with a few gradient steps (MAML, Finn et al., ICML 2017). This module keeps
those three parts and adds what the public tables make cheap:

1. **Features of every architecture** (:class:`~hwnas.meta.latency_features.LatencyFeatures`): its
   log-latency on each source device, its structural counts, its one-hot encoding, and a learned
   embedding from an :class:`~hwnas.meta.encoders.ArchEncoder`.
2. **Meta-training** (:meth:`MetaLatencyPredictor.meta_fit`): episodes are source devices; each
   hides its own column, draws a support set (the reference set plus random architectures) and a
   query set, adapts a linear head on the support set and scores the query set. The encoder learns
   the embedding that makes this adaptation good. The head is adapted in closed form (ridge, as in
   R2-D2, Bertinetto et al., ICLR 2019) or by gradient steps from a meta-learned initialisation
   (``algo="maml"``, ``"metasgd"``: :class:`hwnas.meta.MAML`, :class:`hwnas.meta.MetaSGD`).
3. **Adaptation** (:meth:`MetaLatencyPredictor.adapt`): the new device's shots (HELP's reference
   set is the hardware embedding: the adapted weights over source devices are a function of it)
   fit several linear heads on log-latency (source devices only, plus structure, plus one-hot,
   plus the learned embedding, at a few ridge penalties) and one additive cost model on the
   milliseconds (:func:`~hwnas.meta.latency_features.additive_loo`: a fixed cost plus a
   non-negative cost per operation, what an accelerator's latency is); their predictions are
   averaged with weights from their leave-one-out errors on the shots, so a device whose runtime
   prunes dead cells picks other features than one that does not.

Example:
    >>> meta = MetaLatencyPredictor(features, seed=0).meta_fit(tasks)  # doctest: +SKIP
    >>> pred = meta.adapt(shot_indices, shot_latency_ms)  # doctest: +SKIP
    >>> pred.predict(range(len(features)))  # doctest: +SKIP
"""

from __future__ import annotations

import io
import os
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from .encoders import ArchEncoder
from .errors import MetaError
from .latency_features import LatencyFeatures, additive_loo, ridge_loo
from .maml import MAML, MetaSGD

__all__ = ["ALGOS", "MIN_SHOTS", "LatencyTask", "MetaLatencyPredictor", "AdaptedLatencyPredictor"]

ALGOS = ("ridge", "maml", "metasgd")
#: fewest shots adaptation accepts (an intercept and a few weights, with leave-one-out weighting)
MIN_SHOTS = 5
#: fixed candidates: (name, feature blocks, ridge penalty)
_CANDIDATES: tuple[tuple[str, tuple[str, ...], float], ...] = (
    ("src@0.3", ("S",), 0.3), ("src@1", ("S",), 1.0), ("src@3", ("S",), 3.0),
    ("src+struct@1", ("S", "C"), 1.0), ("src+struct@3", ("S", "C"), 3.0),
    ("src+onehot@1", ("S", "A"), 1.0),
    # structure alone: an accelerator whose latency follows the compute, unlike any source
    ("struct@1", ("C",), 1.0),
)
_ONEHOT_SCALE = 0.3  # one-hot columns enter the ridge at this scale (a stronger prior on them)


@dataclass(frozen=True)
class LatencyTask:
    """One meta-training episode source: a device's latencies on every architecture of the table.

    Args:
        device: the device's name.
        latency_ms: ``(n,)`` latencies, aligned with the features' rows.
        source_column: the device's column among the source features, hidden while it is the
            target (``None`` for a device that is not a source).
    """

    device: str
    latency_ms: np.ndarray
    source_column: int | None = None


class MetaLatencyPredictor:
    """Meta-learns an architecture encoder over source devices; adapts to a new one from shots.

    Args:
        features: the table's features (source latencies, structure, one-hot).
        algo: head adaptation while meta-training and for the learned candidate: ``ridge``
            (closed form), ``maml`` or ``metasgd`` (gradient steps, :mod:`hwnas.meta.maml`).
        embed_dim: width of the learned embedding.
        hidden: hidden width of the encoder.
        meta_steps: outer optimisation steps (each over every task).
        meta_lr: outer Adam learning rate.
        inner_steps: gradient steps of ``maml``/``metasgd``.
        inner_lr: their (initial) step size.
        n_support: shots per episode (reference set included).
        n_query: query architectures per episode.
        reference: indices always in the support set (HELP's reference set).
        temperature: softness of the leave-one-out weighting of candidates (smaller: sharper).
        seed: seeds every random draw and the encoder's initialisation.

    Attributes:
        encoder_: the meta-trained encoder; ``embedding_``: its standardised output per row.
        head_: ``MAML``/``MetaSGD`` wrapper of the head (``None`` for ``ridge``);
        history_: mean query loss per outer step.
    """

    def __init__(self, features: LatencyFeatures, *, algo: str = "ridge", embed_dim: int = 8,
                 hidden: int = 64, meta_steps: int = 150, meta_lr: float = 3e-3,
                 inner_steps: int = 10, inner_lr: float = 0.05, n_support: int = 20,
                 n_query: int = 1000, reference: Sequence[int] = (), temperature: float = 1.0,
                 seed: int | None = 0):
        if algo not in ALGOS:
            raise MetaError(f"unknown algo {algo!r}; valid: {', '.join(ALGOS)}")
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
        self.reference = tuple(int(i) for i in reference)
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

    def meta_fit(self, tasks: Sequence[LatencyTask],
                 progress: Callable[[int, int], None] | None = None) -> MetaLatencyPredictor:
        """Meta-train the encoder (and the head's initialisation) on ``tasks``; returns self.

        Raises:
            MetaError: no tasks, or a task whose latencies do not match the features.
        """
        if not tasks:
            raise MetaError("meta_fit needs at least one task (source device)")
        n = len(self.features)
        for t in tasks:
            lat = np.asarray(t.latency_ms, dtype=np.float64)
            if lat.shape != (n,) or not np.isfinite(lat).all() or (lat <= 0).any():
                raise MetaError(f"task {t.device}: needs {n} finite positive latencies")
        self._build()
        rng = np.random.default_rng(self.seed)
        S = torch.as_tensor(self.features.S, dtype=torch.float32)
        A = torch.as_tensor(self.features.A)
        Y = [torch.as_tensor(np.log(np.asarray(t.latency_ms, np.float64)), dtype=torch.float32)
             for t in tasks]
        params = list(self.encoder_.parameters())
        if self.head_ is not None:
            params += list(self.head_.parameters())
        opt = torch.optim.Adam(params, lr=self.meta_lr)
        self.history_: list[float] = []
        for step in range(self.meta_steps):
            opt.zero_grad()
            total = torch.zeros(())
            emb = self.encoder_(A)
            for task, y in zip(tasks, Y, strict=True):
                sup = self._support(rng, n)
                qry = torch.as_tensor(rng.choice(n, size=min(self.n_query, n), replace=False))
                s = S if task.source_column is None else _hide(S, task.source_column)
                phi = torch.cat([s, emb], dim=1)
                total = total + self._episode(phi, y, torch.as_tensor(sup), qry)
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

    def _support(self, rng: np.random.Generator, n: int) -> np.ndarray:
        ref = np.asarray(self.reference, dtype=np.int64)
        rest = np.setdiff1d(np.arange(n), ref)
        k = max(self.n_support - len(ref), MIN_SHOTS)
        return np.concatenate([ref, rng.choice(rest, size=k, replace=False)])

    def _episode(self, phi: torch.Tensor, y: torch.Tensor, sup: torch.Tensor,
                 qry: torch.Tensor) -> torch.Tensor:
        mu, sd = y[sup].mean(), y[sup].std().clamp_min(1e-6)
        t = (y - mu) / sd
        center = phi[sup].mean(dim=0)
        xs, xq = phi[sup] - center, phi[qry] - center
        if self.head_ is None:
            pred = _ridge_torch(xs, t[sup], xq, lam=1.0)
        else:
            learner = self.head_.adapt(xs, t[sup].unsqueeze(1), steps=self.inner_steps)
            pred = learner(xq).squeeze(1)
        return ((pred - t[qry]) ** 2).mean()

    # ------------------------------------------------------------------ adaptation
    def adapt(self, X: Sequence[int] | np.ndarray, y: Sequence[float] | np.ndarray
              ) -> AdaptedLatencyPredictor:
        """A predictor for a new device from its shots; ``self`` is not changed.

        Args:
            X: indices (rows of the features) of the measured architectures.
            y: their latencies in milliseconds.

        Raises:
            MetaError: not meta-fitted, fewer than :data:`MIN_SHOTS` distinct shots, indices
                outside the table, latencies that are not finite and positive.
        """
        if not hasattr(self, "embedding_"):
            raise MetaError("adapt needs a meta-fitted predictor: call meta_fit first")
        return AdaptedLatencyPredictor(self).fit(X, y)

    def _learned_candidate(self, support: np.ndarray, t: np.ndarray
                           ) -> tuple[np.ndarray, float]:
        phi = np.hstack([self.features.S, self.embedding_])
        if self.head_ is None:
            return ridge_loo(phi, t, support, 1.0)
        pred = self._maml_predict(phi, support, t, np.arange(len(phi)))
        folds = np.arange(len(support)) % 5
        err = []
        for k in range(5):
            tr, te = folds != k, folds == k
            p = self._maml_predict(phi, support[tr], t[tr], support[te])
            err.append((p - t[te]) ** 2)
        return pred, float(np.mean(np.concatenate(err)))

    def _maml_predict(self, phi: np.ndarray, support: np.ndarray, t: np.ndarray,
                      rows: np.ndarray) -> np.ndarray:
        assert self.head_ is not None
        center = phi[support].mean(axis=0)
        xs = torch.as_tensor(phi[support] - center, dtype=torch.float32)
        ys = torch.as_tensor(t - t.mean(), dtype=torch.float32).unsqueeze(1)
        learner = self.head_.adapt(xs, ys, steps=self.inner_steps, first_order=True)
        with torch.no_grad():
            out = learner(torch.as_tensor(phi[rows] - center, dtype=torch.float32))
        return out.squeeze(1).numpy().astype(np.float64) + t.mean()

    # ------------------------------------------------------------------ persistence
    def state(self) -> dict[str, Any]:
        """The meta-learned state (tensors and the embedding), for :meth:`load_state`."""
        return {"encoder": self.encoder_.state_dict(), "embedding": self.embedding_,
                "head": None if self.head_ is None else self.head_.state_dict(),
                "history": self.history_}

    def load_state(self, state: dict[str, Any]) -> MetaLatencyPredictor:
        """Restore what :meth:`state` returned; returns self."""
        self._build()
        self.encoder_.load_state_dict(state["encoder"])
        if self.head_ is not None:
            self.head_.load_state_dict(state["head"])
        self.embedding_ = np.asarray(state["embedding"], dtype=np.float64)
        self.history_ = list(state.get("history", []))
        return self

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write :meth:`state` to ``path`` atomically (temporary file, then rename)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        buf = io.BytesIO()
        torch.save(self.state(), buf)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
        try:
            with os.fdopen(fd, "wb") as f:
                f.write(buf.getvalue())
            os.replace(tmp, path)
        except BaseException:
            if os.path.exists(tmp):
                os.unlink(tmp)
            raise
        return path

    def load(self, path: str | os.PathLike[str]) -> MetaLatencyPredictor:
        """Read a file written by :meth:`save`; returns self."""
        state = torch.load(Path(path), map_location="cpu", weights_only=False)
        return self.load_state(state)


class AdaptedLatencyPredictor:
    """The predictor of one device: a leave-one-out-weighted ensemble of linear heads.

    ``fit(X, y)`` (X: architecture indices, y: latencies in ms) returns self; ``predict(X)`` gives
    latencies in ms. Candidate names, weights and leave-one-out errors are in ``candidates_``,
    ``weights_`` and ``loo_``.
    """

    def __init__(self, meta: MetaLatencyPredictor):
        self.meta = meta

    def fit(self, X: Sequence[int] | np.ndarray, y: Sequence[float] | np.ndarray
            ) -> AdaptedLatencyPredictor:
        feats = self.meta.features
        idx = feats.check_indices(X)
        lat = np.asarray(y, dtype=np.float64).reshape(-1)
        if len(lat) != len(idx):
            raise MetaError(f"{len(idx)} indices but {len(lat)} latencies")
        if not np.isfinite(lat).all() or (lat <= 0).any():
            raise MetaError("shot latencies must be finite and positive")
        if len(set(idx.tolist())) != len(idx):
            raise MetaError("an architecture appears twice among the shots")
        if len(idx) < MIN_SHOTS:
            raise MetaError(f"{len(idx)} shots; adaptation needs at least {MIN_SHOTS}")
        t = np.log(lat)
        blocks = {"S": feats.S, "C": feats.C, "A": feats.A.astype(np.float64) * _ONEHOT_SCALE}
        preds, errs, names = [], [], []
        for name, parts, lam in _CANDIDATES:
            p, e = ridge_loo(np.hstack([blocks[b] for b in parts]), t, idx, lam)
            preds.append(p), errs.append(e), names.append(name)
        p, e = additive_loo(feats.structure, lat, idx)
        preds.append(p), errs.append(e), names.append("additive")
        p, e = self.meta._learned_candidate(idx, t)
        preds.append(p), errs.append(e), names.append(f"src+learned[{self.meta.algo}]")
        errs_a = np.maximum(np.asarray(errs), 1e-12)
        w = np.exp(-(errs_a / errs_a.min() - 1.0) / self.meta.temperature)
        self.weights_ = w / w.sum()
        self.loo_ = errs_a
        self.candidates_ = names
        self.log_latency_ = self.weights_ @ np.stack(preds)
        return self

    def predict(self, X: Sequence[int] | np.ndarray) -> np.ndarray:
        """Predicted latencies (ms) of the architectures at indices ``X``."""
        if not hasattr(self, "log_latency_"):
            raise MetaError("predict needs a fitted predictor: call fit first")
        return np.exp(self.log_latency_[self.meta.features.check_indices(X)])


def _hide(S: torch.Tensor, column: int) -> torch.Tensor:
    mask = torch.ones(S.shape[1])
    mask[column] = 0.0
    return S * mask


def _ridge_torch(xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor, lam: float
                 ) -> torch.Tensor:
    """Closed-form ridge (centred inputs, intercept = support mean of ``ys``), differentiable."""
    gram = xs.T @ xs + lam * torch.eye(xs.shape[1])
    w = torch.linalg.solve(gram, xs.T @ (ys - ys.mean()))
    return xq @ w + ys.mean()
