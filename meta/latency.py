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
   non-negative cost per operation, what an accelerator's latency is) and the nearest source
   device mapped affinely (:func:`~hwnas.meta.latency_features.nearest_loo`; on the
   leave-one-device-out benchmark's validation devices it lifted fbnet from 0.894 to 0.905,
   ``results/benchmarks/README.md``) and three adaptive ridges on the sources
   (:func:`~hwnas.meta.latency_features.adaptive_ridge_loo`: each source column scaled by its
   agreement with the shots, a blend between the ridge and the nearest source) and kernel ridges
   on the sources (:func:`~hwnas.meta.latency_features.kernel_ridge_loo`: a Gaussian kernel, for
   a device that is no affine map of any combination of them); their
   predictions are averaged with weights from their leave-one-out errors on the shots, so a
   device whose runtime prunes dead cells picks other features than one that does not.

Example:
    >>> meta = MetaLatencyPredictor(features, seed=0).meta_fit(tasks)  # doctest: +SKIP
    >>> pred = meta.adapt(shot_indices, shot_latency_ms)  # doctest: +SKIP
    >>> pred.predict(range(len(features)))  # doctest: +SKIP

The shared machinery (meta-training loop, episode loss, head weighting, checked persistence) is in
:mod:`hwnas.meta.predictor_base`; ``meta_fit(tasks, cache=path)`` reuses a cached meta-training
(a plain ``.npz``, never unpickled) and rebuilds a corrupt or foreign one.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import numpy as np
import torch

from .errors import MetaError
from .latency_features import (
    LatencyFeatures,
    adaptive_ridge_loo,
    additive_loo,
    kernel_ridge_loo,
    nearest_loo,
)
from .predictor_base import (
    ALGOS,
    AdaptedPredictor,
    MetaPredictor,
    check_indices,
    column_mask,
    ridge_loo,
)

__all__ = ["ADAPTIVE_POWERS", "ALGOS", "KERNEL_PENALTIES", "KERNEL_SCALES", "MIN_SHOTS",
           "LatencyTask", "MetaLatencyPredictor", "AdaptedLatencyPredictor"]

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
#: exponents of the adaptive-ridge heads (``latency_features.adaptive_ridge_loo``): from a soft
#: preference for the sources that agree with the shots (4) to nearly the nearest one alone (16)
ADAPTIVE_POWERS: tuple[float, ...] = (4.0, 8.0, 16.0)
#: widths of the kernel-ridge heads (``latency_features.kernel_ridge_loo``), in units of the
#: median squared distance between two shots, each at every penalty of KERNEL_PENALTIES
KERNEL_SCALES: tuple[float, ...] = (1.0, 2.0, 4.0, 8.0)
KERNEL_PENALTIES: tuple[float, ...] = (0.1, 0.3, 1.0)


def _numbers(value: Sequence[float] | float, name: str, what: str, zero: bool
             ) -> tuple[float, ...]:
    """``value`` (one number or a sequence) as a tuple of finite floats, > 0 (>= 0 with
    ``zero``); anything else is a :class:`MetaError` naming ``name`` and ``what``."""
    items = tuple(value) if isinstance(value, Sequence | np.ndarray) else (value,)
    if not all(isinstance(x, int | float | np.integer | np.floating) and not isinstance(x, bool)
               and np.isfinite(x) and (x >= 0 if zero else x > 0) for x in items):
        raise MetaError(f"{name} must be {what}, got {value!r}")
    return tuple(float(x) for x in items)


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


class MetaLatencyPredictor(MetaPredictor):
    """Meta-learns an architecture encoder over source devices; adapts to a new one from shots.

    Args:
        features: the table's features (source latencies, structure, one-hot).
        algo: head adaptation while meta-training and for the learned candidate: ``ridge``
            (closed form), ``maml`` or ``metasgd`` (gradient steps, :mod:`hwnas.meta.maml`).
        embed_dim: width of the learned embedding.
        hidden: hidden width of the encoder.
        meta_steps: outer optimisation steps (each over every task; >= 0).
        meta_lr: outer Adam learning rate.
        inner_steps: gradient steps of ``maml``/``metasgd``.
        inner_lr: their (initial) step size.
        n_support: shots per episode (reference set included).
        n_query: query architectures per episode.
        reference: indices always in the support set (HELP's reference set).
        temperature: softness of the leave-one-out weighting of candidates (smaller: sharper).
        nearest: add the nearest-source head (:func:`~hwnas.meta.latency_features.nearest_loo`:
            the one source device whose affine map fits the shots best) to the ensemble.
            Adaptation-time only: it does not change meta-training or the cache.
        nearest_by: how that source is chosen: ``"loo"`` (its leave-one-out error) or
            ``"rank"`` (its rank correlation with the shots).
        adaptive: exponents of the adaptive-ridge heads (each source column scaled by its
            agreement with the shots to that power; ``()`` for none). The default,
            :data:`ADAPTIVE_POWERS`, lifted the leave-one-device-out benchmark at 20 shots from
            0.927 to 0.929 on its validation devices and from 0.948 to 0.950 over all 60, with
            every device at or above ridge (``results/benchmarks/README.md``).
            Adaptation-time only: it does not change meta-training or the cache.
        kernel: widths of the kernel-ridge heads on the sources (a Gaussian kernel, one head per
            width and penalty of :data:`KERNEL_PENALTIES`; ``()`` for none). The default,
            :data:`KERNEL_SCALES`, lifted the leave-one-device-out benchmark at 20 shots from
            0.9294 to 0.9311 on its validation devices, every one still at or above ridge
            (``results/benchmarks/README.md``). Adaptation-time only: it does not change
            meta-training or the cache.
        seed: seeds every random draw and the encoder's initialisation (an integer >= 0; the
            global torch RNG is not touched).

    Attributes:
        encoder_: the meta-trained encoder; ``embedding_``: its standardised output per row.
        head_: ``MAML``/``MetaSGD`` wrapper of the head (``None`` for ``ridge``);
        history_: mean query loss per outer step; ``from_cache_``: whether ``meta_fit`` loaded
        its state from the cache.

    Raises:
        MetaError: an unknown ``algo``, an argument out of range, reference indices outside
            the table.
    """

    kind: ClassVar[str] = "latency"
    _center_targets: ClassVar[bool] = True
    _task_word: ClassVar[str] = "device"

    def __init__(self, features: LatencyFeatures, *, algo: str = "ridge", embed_dim: int = 8,
                 hidden: int = 64, meta_steps: int = 150, meta_lr: float = 3e-3,
                 inner_steps: int = 10, inner_lr: float = 0.05, n_support: int = 20,
                 n_query: int = 1000, reference: Sequence[int] = (), temperature: float = 1.0,
                 nearest: bool = True, nearest_by: str = "loo",
                 adaptive: Sequence[float] = ADAPTIVE_POWERS,
                 kernel: Sequence[float] = KERNEL_SCALES, seed: int | None = 0):
        if not isinstance(features, LatencyFeatures):
            raise MetaError(f"features must be a LatencyFeatures (source latencies, one-hot, "
                            f"structure of every architecture), got {type(features).__name__}")
        super().__init__(features, algo=algo, embed_dim=embed_dim, hidden=hidden,
                         meta_steps=meta_steps, meta_lr=meta_lr, inner_steps=inner_steps,
                         inner_lr=inner_lr, n_support=n_support, n_query=n_query,
                         temperature=temperature, seed=seed)
        self.reference = tuple(int(i) for i in check_indices(len(features), list(reference),
                                                             what="reference index"))
        if not isinstance(nearest, bool):
            raise MetaError(f"nearest must be True or False, got {nearest!r}")
        if nearest_by not in ("loo", "rank"):
            raise MetaError(f"unknown nearest_by {nearest_by!r}; valid: loo, rank")
        self.nearest = nearest
        self.nearest_by = nearest_by
        self.adaptive = _numbers(adaptive, "adaptive", "exponents >= 0", zero=True)
        self.kernel = _numbers(kernel, "kernel", "widths > 0", zero=False)

    def _extra_config(self) -> dict[str, Any]:
        return {"reference": list(self.reference)}

    # ------------------------------------------------------------------ meta-training
    def _check_task(self, task: LatencyTask, n: int) -> tuple[np.ndarray, tuple[int, ...]]:
        lat = np.asarray(task.latency_ms, dtype=np.float64)
        if lat.shape != (n,) or not np.isfinite(lat).all() or (lat <= 0).any():
            raise MetaError(f"task {task.device}: needs {n} finite positive latencies")
        k = self.features.S.shape[1]
        col = task.source_column
        if col is not None and not (isinstance(col, int | np.integer) and 0 <= col < k):
            raise MetaError(f"task {task.device}: source_column {col!r} is not a source column "
                            f"(valid: 0..{k - 1} or None)")
        return lat, () if col is None else (int(col),)

    def _episodes(self, tasks: Sequence[LatencyTask], rng: np.random.Generator
                  ) -> Callable[[torch.Tensor], torch.Tensor]:
        """Per task: hide its own source column, draw a support set (reference set first) and
        a query set; the loss on standardised log-latency (the support's mean and spread)."""
        n = len(self.features)
        S = torch.as_tensor(self.features.S, dtype=torch.float32)
        Y = [torch.as_tensor(np.log(np.asarray(t.latency_ms, np.float64)), dtype=torch.float32)
             for t in tasks]
        hidden = [S if t.source_column is None else S * column_mask(S.shape[1], [t.source_column])
                  for t in tasks]

        def step(emb: torch.Tensor) -> torch.Tensor:
            total = torch.zeros(())
            for s, y in zip(hidden, Y, strict=True):
                sup = torch.as_tensor(self._support(rng, n))
                qry = torch.as_tensor(rng.choice(n, size=min(self.n_query, n), replace=False))
                mu, sd = y[sup].mean(), y[sup].std().clamp_min(1e-6)
                t = (y - mu) / sd
                total = total + self._episode_loss(torch.cat([s, emb], dim=1), t[sup], sup,
                                                   qry, t[qry])
            return total

        return step

    def _support(self, rng: np.random.Generator, n: int) -> np.ndarray:
        ref = np.asarray(self.reference, dtype=np.int64)
        rest = np.setdiff1d(np.arange(n), ref)
        k = max(self.n_support - len(ref), MIN_SHOTS)
        return np.concatenate([ref, rng.choice(rest, size=k, replace=False)])

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
        self._require_embedding()
        return AdaptedLatencyPredictor(self).fit(X, y)

    def _learned_candidate(self, support: np.ndarray, t: np.ndarray
                           ) -> tuple[np.ndarray, float]:
        if self.head_ is None:
            return ridge_loo(self._learned_phi(), t, support, 1.0)
        return self._maml_candidate(support, t)


class AdaptedLatencyPredictor(AdaptedPredictor):
    """The predictor of one device: a leave-one-out-weighted ensemble of heads.

    ``fit(X, y)`` (X: architecture indices, y: latencies in ms) returns self; ``predict(X)`` gives
    latencies in ms, ``predict_std(X)`` their standard deviation in ms. The heads fit
    log-latency (``log_latency_``); candidate names, weights and leave-one-out errors are in
    ``candidates_``, ``weights_`` and ``loo_``.
    """

    meta: MetaLatencyPredictor

    def fit(self, X: Sequence[int] | np.ndarray, y: Sequence[float] | np.ndarray
            ) -> AdaptedLatencyPredictor:
        """Fit the heads to the shots; returns self.

        Raises:
            MetaError: fewer than :data:`MIN_SHOTS` distinct shots, indices outside the table,
                latencies that are not finite and positive.
        """
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
        if self.meta.nearest:
            p, e, j = nearest_loo(feats.S, t, idx, self.meta.nearest_by)
            source = feats.sources[j] if feats.sources else str(j)
            preds.append(p), errs.append(e), names.append(f"nearest[{source}]")
        for q in self.meta.adaptive:
            p, e = adaptive_ridge_loo(feats.S, t, idx, q)
            preds.append(p), errs.append(e), names.append(f"src-adaptive^{q:g}")
        if self.meta.kernel:
            heads = kernel_ridge_loo(feats.S, t, idx, self.meta.kernel, KERNEL_PENALTIES)
            labels = [f"src-rbf{c:g}@{lam:g}" for lam in KERNEL_PENALTIES
                      for c in self.meta.kernel]
            for name, (p, e) in zip(labels, heads, strict=True):
                preds.append(p), errs.append(e), names.append(name)
        p, e = self.meta._learned_candidate(idx, t)
        preds.append(p), errs.append(e), names.append(f"src+learned[{self.meta.algo}]")
        self.log_latency_ = self._combine(names, preds, errs)
        return self

    def predict(self, X: Sequence[int] | np.ndarray) -> np.ndarray:
        """Predicted latencies (ms) of the architectures at indices ``X``."""
        return np.exp(self.log_latency_[self._rows(X)])

    def predict_std(self, X: Sequence[int] | np.ndarray) -> np.ndarray:
        """Standard deviation (ms) of the latencies at ``X``: the heads' mixture on log-latency
        (variance ``s^2``) read as a log-normal around :meth:`predict`'s median,
        ``median * sqrt(exp(s^2) * (exp(s^2) - 1))``."""
        rows = self._rows(X)
        v = self.var_[rows]
        return np.exp(self.log_latency_[rows]) * np.sqrt(np.exp(v) * np.expm1(v))
