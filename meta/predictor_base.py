"""What the meta-learned latency and accuracy predictors share: one base, two thin subclasses.

Both predictors follow HELP (Lee, Lee & Hwang, NeurIPS 2021): an architecture is described by
its values on *source* columns (devices or tasks), its structure and its one-hot encoding; an
architecture encoder (:class:`~hwnas.meta.encoders.ArchEncoder`) is meta-trained over episodes
drawn from the source columns, each adapting a linear head on a support set and scoring a query
set; the head is adapted in closed form (ridge, R2-D2: Bertinetto et al., ICLR 2019) or by gradient
steps from a meta-learned initialisation (MAML, Finn et al., ICML 2017; Meta-SGD, Li et al., 2017).
A new column is then fitted from a few shots by several linear heads whose predictions are
averaged with weights from their leave-one-out errors (Allen's PRESS statistic).

This module holds that machinery once:

- :class:`MetaPredictor`: argument checks, the encoder and head, the outer meta-training loop, the
  episode loss, the gradient-adapted head's candidate, and persistence in a plain checked format
  (:mod:`hwnas.meta.state_io`: no unpickling) usable as a cache that is rebuilt when corrupt;
- :class:`AdaptedPredictor`: the scikit-learn contract of an adapted predictor (``fit(X, y)``
  returns self, ``predict(X)`` an array, ``predict_std(X)`` the uncertainty) and the
  leave-one-out weighting of its heads (:func:`loo_weights`);
- :func:`ridge_loo` and the small checks both feature tables use.

Randomness is local: the encoder's initial weights come from a :class:`torch.Generator` seeded
with ``seed`` and the episodes from a NumPy generator; the global torch RNG is never seeded.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import warnings
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, ClassVar, Protocol

import numpy as np
import torch
from torch import nn

from .encoders import ArchEncoder
from .errors import MetaError
from .maml import MAML, MetaSGD
from .state_io import CacheError, read_state, write_state

__all__ = ["ALGOS", "FORMAT_VERSION", "AdaptedPredictor", "CacheError", "FeatureTable",
           "MetaPredictor", "check_count", "check_indices", "check_seed", "loo_weights",
           "ridge_loo", "standardise"]

ALGOS = ("ridge", "maml", "metasgd")
#: version of the saved-state layout; a file of another version is ignored (and rebuilt)
FORMAT_VERSION = 1
_FORMAT = "hwnas.meta.predictor"


# ---------------------------------------------------------------------- checks and linear algebra
def check_count(name: str, value: Any, minimum: int = 0) -> int:
    """``value`` as an int if it is an integer >= ``minimum``; a :class:`MetaError` otherwise."""
    if isinstance(value, bool) or not isinstance(value, int | np.integer) or value < minimum:
        raise MetaError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def check_positive(name: str, value: Any) -> float:
    """``value`` as a float if it is a finite number > 0; a :class:`MetaError` otherwise."""
    if (isinstance(value, bool) or not isinstance(value, int | float | np.number)
            or not math.isfinite(value) or value <= 0):
        raise MetaError(f"{name} must be a finite number > 0, got {value!r}")
    return float(value)


def check_seed(seed: Any) -> int | None:
    """``seed`` if it is ``None`` or an integer >= 0 (what NumPy and torch accept)."""
    if seed is None:
        return None
    if isinstance(seed, bool) or not isinstance(seed, int | np.integer) or seed < 0:
        raise MetaError(f"seed must be an integer >= 0 or None, got {seed!r}")
    return int(seed)


def check_indices(n: int, indices: Sequence[int] | np.ndarray,
                  what: str = "architecture index") -> np.ndarray:
    """``indices`` as an int array, or :class:`MetaError` if any is not a row of an ``n``-row
    table (or not a whole number: 1.5 is refused, not rounded); ``what`` names them."""
    raw = np.asarray(indices)
    if raw.dtype.kind == "f":
        if not np.isfinite(raw).all() or (raw != np.round(raw)).any():
            raise MetaError(f"{what} values must be whole numbers (valid: 0..{n - 1})")
    elif raw.size and raw.dtype.kind not in "iu":
        raise MetaError(f"{what} values must be integers, got dtype {raw.dtype}")
    idx = raw.astype(np.int64).reshape(-1)
    bad = idx[(idx < 0) | (idx >= n)]
    if bad.size:
        raise MetaError(f"{what} {int(bad[0])} outside the table "
                        f"(valid: 0..{n - 1})")
    return idx


def check_blocks(n: int, k: int, onehot: Any, structure: Any, sources: Sequence[str]) -> None:
    """Raise :class:`MetaError` unless the one-hot and structure blocks have ``n`` rows and the
    source names (if any) one per source column."""
    if len(onehot) != n or len(structure) != n:
        raise MetaError(f"{n} source rows but {len(onehot)} one-hot and "
                        f"{len(structure)} structure rows")
    if sources and len(sources) != k:
        raise MetaError(f"{len(sources)} source names for {k} columns")


def standardise(x: np.ndarray) -> np.ndarray:
    """Columns to zero mean, unit variance (constant columns become zeros)."""
    x = np.asarray(x, dtype=np.float64)
    sd = x.std(axis=0)
    return (x - x.mean(axis=0)) / np.where(sd > 0, sd, 1.0)


def ridge_loo(F: np.ndarray, y: np.ndarray, support: np.ndarray, lam: float
              ) -> tuple[np.ndarray, float]:
    """Ridge regression of ``y`` on ``F`` fitted on ``support``; predictions and LOO error.

    The intercept is not penalised. The leave-one-out residuals come from the hat matrix
    (``r_i / (1 - H_ii)``, Allen's PRESS), so no refit is needed.

    Args:
        F: ``(n, p)`` features of every architecture.
        y: ``(m,)`` targets of the support rows.
        support: ``(m,)`` row indices into ``F``.
        lam: ridge penalty (> 0).

    Returns:
        ``(predictions for every row of F, mean squared leave-one-out error)``.
    """
    Fs = F[support]
    mean = Fs.mean(axis=0)
    X = np.hstack([Fs - mean, np.ones((len(support), 1))])
    reg = lam * np.eye(X.shape[1])
    reg[-1, -1] = 1e-8
    gram = X.T @ X + reg
    w = np.linalg.solve(gram, X.T @ y)
    hat = np.einsum("ij,ji->i", X, np.linalg.solve(gram, X.T))
    resid = (y - X @ w) / np.clip(1.0 - hat, 1e-6, None)
    pred = (F - mean) @ w[:-1] + w[-1]
    return pred, float(np.mean(resid**2))


def loo_weights(errors: Sequence[float] | np.ndarray, temperature: float
                ) -> tuple[np.ndarray, np.ndarray]:
    """Weights of the heads from their leave-one-out errors: ``exp(-(e / e_min - 1) / T)``,
    normalised (the best head weighs most; ``T`` sets how much more).

    Returns:
        ``(weights summing to 1, errors floored at 1e-12)``.
    """
    errs = np.maximum(np.asarray(errors, dtype=np.float64), 1e-12)
    w = np.exp(-(errs / errs.min() - 1.0) / temperature)
    return w / w.sum(), errs


def ridge_torch(xs: torch.Tensor, ys: torch.Tensor, xq: torch.Tensor, lam: float = 1.0
                ) -> torch.Tensor:
    """Closed-form ridge (centred inputs, intercept = support mean of ``ys``), differentiable."""
    gram = xs.T @ xs + lam * torch.eye(xs.shape[1])
    w = torch.linalg.solve(gram, xs.T @ (ys - ys.mean()))
    return xq @ w + ys.mean()


def column_mask(k: int, hidden: Sequence[int]) -> torch.Tensor:
    """A ``(k,)`` mask of ones with zeros at the ``hidden`` source columns."""
    mask = torch.ones(k)
    mask[list(hidden)] = 0.0
    return mask


def _digest(*arrays: np.ndarray) -> str:
    h = hashlib.sha256()
    for a in arrays:
        a = np.ascontiguousarray(a)
        h.update(f"{a.dtype.str}{a.shape}".encode())
        h.update(a.tobytes())
    return h.hexdigest()


class FeatureTable(Protocol):
    """What the predictors need of a feature table (:class:`LatencyFeatures`,
    :class:`AccuracyFeatures`): source block ``S``, structure ``C``, one-hot ``A``, rows."""

    S: np.ndarray
    C: np.ndarray
    A: np.ndarray

    def __len__(self) -> int: ...

    def check_indices(self, indices: Sequence[int] | np.ndarray) -> np.ndarray: ...


# ---------------------------------------------------------------------- the meta-learner
class MetaPredictor:
    """The shared meta-learner; subclasses say what a task is and how an episode is drawn.

    Subclasses set :attr:`kind` and implement :meth:`_check_task` (returns the task's targets
    as float64 and the source columns it hides), :meth:`_episodes` (the loss of one outer step)
    and :meth:`_extra_config` (their own arguments that change meta-training).

    Args:
        see :class:`hwnas.meta.MetaLatencyPredictor`, :class:`hwnas.meta.MetaAccuracyPredictor`.

    Raises:
        MetaError: an unknown ``algo`` or an argument out of range (one line naming it).
    """

    kind: ClassVar[str] = "meta"
    #: the gradient-adapted head fits targets centred on the shots' mean (latency: log-ms) or as
    #: they are (accuracy: normal scores, centred by construction)
    _center_targets: ClassVar[bool] = False

    def __init__(self, features: FeatureTable, *, algo: str, embed_dim: int, hidden: int,
                 meta_steps: int, meta_lr: float, inner_steps: int, inner_lr: float,
                 n_support: int, n_query: int, temperature: float, seed: int | None):
        if algo not in ALGOS:
            raise MetaError(f"unknown algo {algo!r}; valid: {', '.join(ALGOS)}")
        self.features = features
        self.algo = algo
        self.embed_dim = check_count("embed_dim", embed_dim, 1)
        self.hidden = check_count("hidden", hidden, 1)
        self.meta_steps = check_count("meta_steps", meta_steps, 0)
        self.meta_lr = check_positive("meta_lr", meta_lr)
        self.inner_steps = check_count("inner_steps", inner_steps, 0)
        self.inner_lr = check_positive("inner_lr", inner_lr)
        self.n_support = check_count("n_support", n_support, 1)
        self.n_query = check_count("n_query", n_query, 1)
        self.temperature = check_positive("temperature", temperature)
        self.seed = check_seed(seed)

    # ------------------------------------------------------------------ hooks
    def _check_task(self, task: Any, n: int) -> tuple[np.ndarray, tuple[int, ...]]:
        raise NotImplementedError

    def _episodes(self, tasks: Sequence[Any], rng: np.random.Generator
                  ) -> Callable[[torch.Tensor], torch.Tensor]:
        raise NotImplementedError

    def _extra_config(self) -> dict[str, Any]:
        return {}

    # ------------------------------------------------------------------ modules
    def _new_modules(self) -> tuple[ArchEncoder, MAML | None]:
        gen = torch.Generator().manual_seed(0 if self.seed is None else self.seed)
        encoder = ArchEncoder(self.features.A.shape[1], self.embed_dim, self.hidden,
                              generator=gen)
        head: MAML | None = None
        if self.algo != "ridge":
            with torch.random.fork_rng(devices=[]):  # nn.Linear's own init draws globally
                lin = nn.Linear(self.features.S.shape[1] + self.embed_dim, 1)
            nn.init.zeros_(lin.weight)  # the head starts at zero: no draw from any RNG
            nn.init.zeros_(lin.bias)
            head = (MAML if self.algo == "maml" else MetaSGD)(lin, inner_lr=self.inner_lr)
        return encoder, head

    def _build(self) -> None:
        self.encoder_, self.head_ = self._new_modules()

    # ------------------------------------------------------------------ meta-training
    def meta_fit(self, tasks: Sequence[Any], progress: Callable[[int, int], None] | None = None,
                 cache: str | os.PathLike[str] | None = None) -> MetaPredictor:
        """Meta-train the encoder (and the head's initialisation) on ``tasks``; returns self.

        Args:
            tasks: the source tasks (episode sources).
            progress: ``progress(done, total)`` after each outer step.
            cache: a state file. If it holds this predictor's meta-training (same arguments,
                features and tasks) it is loaded instead of training; otherwise (missing,
                corrupt, foreign) training runs and the file is (re)written. A corrupt or
                foreign file gives a warning; a cache that cannot be written, too. Sets
                ``from_cache_``.

        Raises:
            MetaError: no tasks, or a task whose values do not match the features.
        """
        if not tasks:
            raise MetaError(f"meta_fit needs at least one task (source {self._task_word})")
        n = len(self.features)
        checked = [self._check_task(t, n) for t in tasks]
        tasks_digest = _digest(*(a for y, hid in checked
                                 for a in (y, np.asarray(hid, dtype=np.int64))))
        self.from_cache_ = False
        if cache is not None:
            path = Path(cache)
            if path.exists() or path.is_symlink():
                try:
                    self._load(path, tasks_digest)
                    self.from_cache_ = True
                    return self
                except CacheError as e:
                    warnings.warn(f"ignoring the cached predictor ({e}); rebuilding it",
                                  stacklevel=2)
        self._build()
        rng = np.random.default_rng(self.seed)
        step_loss = self._episodes(tasks, rng)
        params = list(self.encoder_.parameters())
        if self.head_ is not None:
            params += list(self.head_.parameters())
        opt = torch.optim.Adam(params, lr=self.meta_lr)
        A = torch.as_tensor(self.features.A)
        self.history_: list[float] = []
        for step in range(self.meta_steps):
            opt.zero_grad()
            loss = step_loss(self.encoder_(A)) / len(tasks)
            loss.backward()
            opt.step()
            self.history_.append(float(loss.detach()))
            if progress is not None:
                progress(step + 1, self.meta_steps)
        with torch.no_grad():
            emb = self.encoder_(A).numpy().astype(np.float64)
        self.embedding_ = standardise(emb)
        self._tasks_digest = tasks_digest
        if cache is not None:
            try:
                self.save(cache)
            except OSError as e:
                warnings.warn(f"cannot write the predictor cache {cache}: {e.strerror or e}",
                              stacklevel=2)
        return self

    _task_word: ClassVar[str] = "column"

    def _episode_loss(self, phi: torch.Tensor, ys: torch.Tensor, sup: torch.Tensor,
                      qry: torch.Tensor, yq: torch.Tensor) -> torch.Tensor:
        """Query MSE of a head adapted on the support rows ``sup`` (targets ``ys``)."""
        center = phi[sup].mean(dim=0)
        xs, xq = phi[sup] - center, phi[qry] - center
        if self.head_ is None:
            pred = ridge_torch(xs, ys, xq, lam=1.0)
        else:
            learner = self.head_.adapt(xs, ys.unsqueeze(1), steps=self.inner_steps)
            pred = learner(xq).squeeze(1)
        return ((pred - yq) ** 2).mean()

    # ------------------------------------------------------------------ adaptation helpers
    def _require_embedding(self) -> None:
        if not hasattr(self, "embedding_"):
            raise MetaError("adapt needs a meta-fitted predictor: call meta_fit first")

    def _learned_phi(self) -> np.ndarray:
        return np.hstack([self.features.S, self.embedding_])

    def _maml_candidate(self, support: np.ndarray, t: np.ndarray) -> tuple[np.ndarray, float]:
        """The gradient-adapted head on the source block and the embedding: predictions for
        every row, and its 5-fold cross-validated error on the shots."""
        phi = self._learned_phi()
        pred = self._maml_predict(phi, support, t, np.arange(len(phi)))
        folds = np.arange(len(support)) % 5
        err = [(self._maml_predict(phi, support[folds != k], t[folds != k], support[folds == k])
                - t[folds == k]) ** 2 for k in range(5)]
        return pred, float(np.mean(np.concatenate(err)))

    def _maml_predict(self, phi: np.ndarray, support: np.ndarray, t: np.ndarray,
                      rows: np.ndarray) -> np.ndarray:
        assert self.head_ is not None
        center = phi[support].mean(axis=0)
        offset = t.mean() if self._center_targets else 0.0
        xs = torch.as_tensor(phi[support] - center, dtype=torch.float32)
        ys = torch.as_tensor(t - offset, dtype=torch.float32).unsqueeze(1)
        learner = self.head_.adapt(xs, ys, steps=self.inner_steps, first_order=True)
        with torch.no_grad():
            out = learner(torch.as_tensor(phi[rows] - center, dtype=torch.float32))
        return out.squeeze(1).numpy().astype(np.float64) + offset

    # ------------------------------------------------------------------ persistence
    def _config(self) -> dict[str, Any]:
        """Everything that decides the meta-trained state (JSON-normalised)."""
        cfg = {"algo": self.algo, "embed_dim": self.embed_dim, "hidden": self.hidden,
               "meta_steps": self.meta_steps, "meta_lr": self.meta_lr,
               "inner_steps": self.inner_steps, "inner_lr": self.inner_lr,
               "n_support": self.n_support, "n_query": self.n_query, "seed": self.seed,
               **self._extra_config()}
        return json.loads(json.dumps(cfg))

    def _features_digest(self) -> str:
        f = self.features
        return _digest(np.asarray(f.S), np.asarray(f.C), np.asarray(f.A))

    def state(self) -> dict[str, Any]:
        """The meta-learned state (tensors and the embedding), for :meth:`load_state`."""
        if not hasattr(self, "embedding_"):
            raise MetaError("state needs a meta-fitted predictor: call meta_fit first")
        return {"encoder": self.encoder_.state_dict(), "embedding": self.embedding_,
                "head": None if self.head_ is None else self.head_.state_dict(),
                "history": self.history_}

    def load_state(self, state: dict[str, Any]) -> MetaPredictor:
        """Restore what :meth:`state` returned; returns self."""
        encoder, head = self._new_modules()
        encoder.load_state_dict(state["encoder"])
        if head is not None:
            head.load_state_dict(state["head"])
        self.encoder_, self.head_ = encoder, head
        self.embedding_ = np.asarray(state["embedding"], dtype=np.float64)
        self.history_ = list(state.get("history", []))
        return self

    def save(self, path: str | os.PathLike[str]) -> Path:
        """Write the meta-learned state to ``path`` atomically, as a checked ``.npz`` archive
        (:mod:`hwnas.meta.state_io`) with the arguments, a digest of the features (and of the
        tasks) and :data:`FORMAT_VERSION`, which :meth:`load` verifies."""
        st = self.state()
        arrays = {f"encoder.{k}": v.detach().numpy() for k, v in st["encoder"].items()}
        if st["head"] is not None:
            arrays |= {f"head.{k}": v.detach().numpy() for k, v in st["head"].items()}
        arrays["embedding"] = np.asarray(st["embedding"], dtype=np.float64)
        arrays["history"] = np.asarray(st["history"], dtype=np.float64)
        meta = {"format": _FORMAT, "version": FORMAT_VERSION, "kind": self.kind,
                "config": self._config(), "features": self._features_digest(),
                "tasks": getattr(self, "_tasks_digest", None)}
        return write_state(path, arrays, meta)

    def load(self, path: str | os.PathLike[str]) -> MetaPredictor:
        """Read a file written by :meth:`save` for this predictor; returns self.

        Nothing is unpickled: the file is read as plain arrays and checked (members, dtypes,
        shapes, finite values, format version, the predictor's kind and arguments, the features'
        digest) before anything is used; on failure ``self`` is unchanged.

        Raises:
            CacheError: (a :class:`MetaError`) the file is missing, corrupt or for another
                predictor; the message says which.
        """
        return self._load(Path(path), None)

    def _load(self, path: Path, tasks_digest: str | None) -> MetaPredictor:
        encoder, head = self._new_modules()
        expected: dict[str, tuple[np.dtype, tuple[int, ...]]] = {}
        parts = [("encoder", encoder)] + ([("head", head)] if head is not None else [])
        for prefix, module in parts:
            for k, v in module.state_dict().items():
                expected[f"{prefix}.{k}"] = (np.dtype("<f4"), tuple(v.shape))
        expected["embedding"] = (np.dtype("<f8"), (len(self.features), self.embed_dim))
        expected["history"] = (np.dtype("<f8"), (self.meta_steps,))
        arrays, meta = read_state(path, expected)
        for key, want in (("format", _FORMAT), ("version", FORMAT_VERSION), ("kind", self.kind),
                          ("config", self._config()), ("features", self._features_digest())):
            if meta.get(key) != want:
                raise CacheError(f"{path}: saved for another {key} ({_short(meta.get(key))}, "
                                 f"this predictor: {_short(want)})")
        if tasks_digest is not None and meta.get("tasks") != tasks_digest:
            raise CacheError(f"{path}: saved for other tasks")
        for prefix, module in parts:
            module.load_state_dict({k: torch.from_numpy(arrays[f"{prefix}.{k}"])
                                    for k in module.state_dict()})
        self.encoder_, self.head_ = encoder, head
        self.embedding_ = arrays["embedding"]
        self.history_ = arrays["history"].tolist()
        self._tasks_digest = meta.get("tasks")
        return self


def _short(value: Any) -> str:
    text = json.dumps(value, sort_keys=True) if not isinstance(value, str) else value
    return text if len(text) <= 60 else text[:57] + "..."


# ---------------------------------------------------------------------- adapted predictors
class AdaptedPredictor:
    """The scikit-learn contract of a predictor for one new column, and its head weighting.

    ``fit(X, y)`` (X: architecture indices, rows of the meta-predictor's features; y: the shots'
    values) returns self; ``predict(X)`` returns a float64 array, ``predict_std(X)`` its standard
    deviation. The heads' predictions are averaged with :func:`loo_weights`; the uncertainty is
    that of the mixture of heads, each a normal with its leave-one-out error as variance:
    ``var = sum_k w_k ((p_k - p)^2 + e_k)``. Candidate names, weights and leave-one-out errors
    are in ``candidates_``, ``weights_`` and ``loo_``.
    """

    def __init__(self, meta: MetaPredictor):
        self.meta = meta

    def fit(self, X: Sequence[int] | np.ndarray, y: Sequence[float] | np.ndarray
            ) -> AdaptedPredictor:
        raise NotImplementedError

    def _combine(self, names: list[str], preds: list[np.ndarray], errs: list[float]
                 ) -> np.ndarray:
        """Weight the heads; sets ``candidates_``, ``weights_``, ``loo_`` and the mixture
        variance ``var_``; returns the weighted prediction of every row."""
        self.weights_, self.loo_ = loo_weights(errs, self.meta.temperature)
        self.candidates_ = names
        stacked = np.stack(preds)
        mean = self.weights_ @ stacked
        self.var_ = self.weights_ @ ((stacked - mean) ** 2) + float(self.weights_ @ self.loo_)
        return mean

    def _rows(self, X: Sequence[int] | np.ndarray) -> np.ndarray:
        if not hasattr(self, "weights_"):
            raise MetaError("predict needs a fitted predictor: call fit first")
        return self.meta.features.check_indices(X)
