"""Zero-cost accuracy proxies of untrained networks: SynFlow, jacob_cov and NASWOT.

Zero-cost proxies (Abdelfattah, Mehrotra, Dudziak & Lane, "Zero-Cost Proxies for Lightweight NAS",
ICLR 2021) score an architecture at initialisation, without training. SynFlow (Tanaka, Kunin,
Yamins & Ganguli, "Pruning neural networks without any data by iteratively conserving synaptic
flow", NeurIPS 2020) needs no data at all: every weight is replaced by its absolute value, an
all-ones input is pushed through the network, and the score is ``sum(theta * dR/dtheta)`` with
``R`` the sum of the outputs. Batch normalisation runs in evaluation mode with its initial
statistics (the identity), as the proxies' reference code removes it for SynFlow.

Two proxies need a real minibatch of the target task's images (:func:`data_proxies`):

- ``jacob_cov`` (Mellor, Turner, Storkey & Crowley, "Neural Architecture Search without Training",
  arXiv:2006.04647 v1, 2020; as implemented by Abdelfattah et al. 2021): the Jacobian of the summed
  output with respect to each input of the batch, the correlation matrix of those Jacobians and
  ``-sum(log(lambda + k) + 1 / (lambda + k))`` over its eigenvalues (``k = 1e-5``);
- ``naswot`` (Mellor et al., ICML 2021): the binary code of every ReLU unit per input, the kernel
  ``K[i, j] = number of units on which inputs i and j agree``, and ``log|det K|``.

The public tables carry no images, so these are computed on whatever data the caller supplies
(the images of the target task, or a bundled stand-in such as scikit-learn's digits).

Example:
    >>> from hwnas.search import get_space
    >>> s = get_space("nb201")
    >>> a = s.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|skip_connect~0|"
    ...             "nor_conv_3x3~1|nor_conv_3x3~2|")
    >>> synflow(s, [a]).shape  # doctest: +SKIP
    (1,)
"""

from __future__ import annotations

import os
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import torch

from hwnas.search import Architecture, Space

from .errors import MetaError
from .predictor_base import check_seed

__all__ = ["PROXIES", "data_proxies", "jacob_cov_score", "naswot_score", "synflow",
           "synflow_score", "cached_proxies", "minibatch"]

#: the proxies :func:`data_proxies` computes, in column order
PROXIES = ("synflow", "jacob_cov", "naswot")


def synflow_score(model: torch.nn.Module, input_shape: Sequence[int], seed: int = 0) -> float:
    """SynFlow of ``model`` (modified in place: use a fresh, untrained network).

    Args:
        model: the network; its parameters are re-drawn from ``seed`` by re-running each
            module's ``reset_parameters`` so the score does not depend on the global RNG (whose
            state is restored afterwards: the caller's stream is not disturbed).
        input_shape: ``(channels, height, width)`` of one input.
        seed: seeds the initial weights (an integer >= 0).

    Returns:
        ``sum over parameters of theta * dR/dtheta`` (float64), ``R = sum(model(ones))``.
    """
    seed = check_seed(seed) or 0
    # each module's reset_parameters draws from the global RNG and takes no generator: seed and
    # draw inside a forked copy of that RNG (restored on exit), so the caller's stream is as it was
    _reseed(model, seed)
    model = model.double().eval()
    with torch.no_grad():
        for p in model.parameters():
            p.abs_()
    model.zero_grad(set_to_none=True)
    x = torch.ones(1, *input_shape, dtype=torch.float64)
    torch.sum(model(x)).backward()
    with torch.no_grad():
        return float(sum((p.grad * p).sum() for p in model.parameters() if p.grad is not None))


def synflow(space: Space, archs: Sequence[Architecture], seed: int = 0,
            progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """SynFlow of each architecture's network (``space.build``), ``log10``-scaled.

    Args:
        space: the search space (its ``build`` and ``input_shape``).
        archs: the architectures.
        seed: seeds every network's initial weights (the same seed for each).
        progress: ``progress(done, total)`` after each network.

    Returns:
        ``(len(archs),)`` float64 ``log10(synflow)``; ``-inf`` where the score is zero (a network
        whose output does not depend on its input).
    """
    seed = check_seed(seed) or 0
    out = np.empty(len(archs), dtype=np.float64)
    for i, a in enumerate(archs):
        kwargs = {"none": "drop"} if space.name == "nb201" else {}
        # building draws initial weights from the global RNG; synflow_score re-draws them from
        # the seed anyway, so build on a forked copy and leave the caller's stream alone
        with torch.random.fork_rng(devices=[]):
            model = space.build(a, **kwargs)
        score = synflow_score(model, space.input_shape(a), seed)
        with np.errstate(divide="ignore"):
            out[i] = np.log10(score) if score > 0 else -np.inf
        if progress is not None:
            progress(i + 1, len(archs))
    return out


def _reseed(model: torch.nn.Module, seed: int) -> None:
    """Re-draw every initial weight from ``seed`` on a forked copy of the global RNG."""
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        for m in model.modules():
            reset = getattr(m, "reset_parameters", None)
            if callable(reset):
                reset()


def jacob_cov_score(model: torch.nn.Module, images: torch.Tensor) -> float:
    """jacob_cov of ``model`` on a minibatch (Mellor et al. 2020, v1; Abdelfattah et al. 2021).

    Args:
        model: an untrained network (put in training mode, as the reference code does).
        images: ``(N, C, H, W)`` real inputs, ``N >= 2``.

    Returns:
        ``-sum(log(lambda + 1e-5) + 1 / (lambda + 1e-5))`` over the eigenvalues of the
        correlation matrix of the per-input Jacobians (higher: more distinct local maps). A
        Jacobian that is constant over the batch has no correlation: ``-inf``.
    """
    model.train()
    model.zero_grad(set_to_none=True)
    x = images.detach().clone().float().requires_grad_(True)
    y = model.float()(x)
    y.backward(torch.ones_like(y))
    jac = x.grad.reshape(len(x), -1).double().numpy()
    if not np.isfinite(jac).all() or (jac.std(axis=1) == 0).any():
        return -np.inf
    # the correlation matrix is symmetric: eigvalsh (real eigenvalues; the reference's eig
    # returns the same values with round-off imaginary parts)
    lam = np.clip(np.linalg.eigvalsh(np.corrcoef(jac)), 0.0, None)
    k = 1e-5
    return float(-np.sum(np.log(lam + k) + 1.0 / (lam + k)))


def naswot_score(model: torch.nn.Module, images: torch.Tensor) -> float:
    """NASWOT of ``model`` on a minibatch (Mellor, Turner, Storkey & Crowley, ICML 2021).

    Every ``nn.ReLU`` module's output is read through a forward hook as a binary code per input;
    ``K = C C^T + (1 - C)(1 - C)^T`` counts the units on which two inputs agree.

    Returns:
        ``log|det K|`` (``slogdet``); ``-inf`` where ``K`` is singular (inputs the network cannot
        tell apart), and where the network has no ReLU.
    """
    codes: list[torch.Tensor] = []

    def hook(_m: torch.nn.Module, _inp: tuple, out: torch.Tensor) -> None:
        codes.append((out.detach().reshape(len(out), -1) > 0).double())

    handles = [m.register_forward_hook(hook) for m in model.modules()
               if isinstance(m, torch.nn.ReLU)]
    try:
        model.train()
        with torch.no_grad():
            model.float()(images.float())
    finally:
        for h in handles:
            h.remove()
    if not codes:
        return -np.inf
    c = torch.cat(codes, dim=1)
    kernel = c @ c.T + (1.0 - c) @ (1.0 - c).T
    sign, logdet = np.linalg.slogdet(kernel.numpy())
    return float(logdet) if sign != 0 else -np.inf


def data_proxies(build: Callable[[Architecture], torch.nn.Module], archs: Sequence[Architecture],
                 images: torch.Tensor, seed: int = 0,
                 progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """SynFlow, jacob_cov and NASWOT (:data:`PROXIES`, in that order) of each architecture.

    Each network is built by ``build`` (for the data's channels and classes), its weights drawn
    from ``seed``; a fresh network per proxy, so one proxy's in-place changes (SynFlow's
    absolute weights) cannot touch another's. SynFlow's all-ones input has the images' shape.

    Args:
        build: ``arch -> nn.Module`` for the data (e.g. :func:`hwnas.bench.live.build_for_task`).
        archs: the architectures.
        images: ``(N, C, H, W)`` real minibatch of the target task, ``N >= 2``, finite.
        seed: initial weights (the same for every network).
        progress: ``progress(done, total)`` after each network.

    Returns:
        ``(len(archs), 3)`` float64: ``log10(synflow)``, jacob_cov, NASWOT (``-inf`` where a
        network's score is degenerate; see the single-proxy functions).

    Raises:
        MetaError: a minibatch that is not 4-D, has fewer than 2 images or non-finite values.
    """
    seed = check_seed(seed) or 0
    images = torch.as_tensor(images)
    if images.dim() != 4 or len(images) < 2 or not torch.isfinite(images).all():
        raise MetaError(f"proxies need a finite (N >= 2, C, H, W) minibatch, got shape "
                        f"{tuple(images.shape)}")
    out = np.empty((len(archs), len(PROXIES)), dtype=np.float64)
    for i, a in enumerate(archs):
        # building draws weights from the global RNG: build on a fork (then re-draw from seed)
        with torch.random.fork_rng(devices=[]):
            syn_model, model = build(a), build(a)
        score = synflow_score(syn_model, tuple(images.shape[1:]), seed)
        _reseed(model, seed)
        # NASWOT only reads activations; jacob_cov then leaves gradients, never weights, changed
        nas = naswot_score(model, images)
        with np.errstate(divide="ignore"):
            row = [np.log10(score) if score > 0 else -np.inf, jacob_cov_score(model, images), nas]
        out[i] = row
        if progress is not None:
            progress(i + 1, len(archs))
    return out


def cached_proxies(path: str | os.PathLike[str], build: Callable[[Architecture], torch.nn.Module],
                   archs: Sequence[Architecture], indices: Sequence[int], images: torch.Tensor,
                   seed: int = 0, every: int = 100,
                   progress: Callable[[int, int], None] | None = None):
    """:func:`data_proxies` of ``archs`` through a CSV cache at ``path`` that a rerun resumes.

    The cache holds ``index``, ``arch`` and one column per proxy; rows already there (same index
    and architecture) are not recomputed, and the file is rewritten atomically every ``every``
    new networks, so an interrupted run loses at most those. The caller names ``path`` by what
    the values depend on (space, data and its minibatch, seed).

    Returns:
        A ``pandas.DataFrame`` with those columns, one row per requested index, in their order.

    Raises:
        MetaError: a cache whose columns or rows do not match (another setup wrote it), or
            ``archs`` and ``indices`` of different lengths; as :func:`data_proxies`.
    """
    import pandas as pd

    from hwnas.latency import atomic_write_text

    if len(archs) != len(indices):
        raise MetaError(f"{len(archs)} architectures but {len(indices)} indices")
    path = Path(path)
    cols = ["index", "arch", *PROXIES]
    done = pd.read_csv(path) if path.is_file() else pd.DataFrame(columns=cols)
    if list(done.columns) != cols:
        raise MetaError(f"{path}: columns {list(done.columns)}, expected {cols}; remove it")
    known = dict(zip(done["index"].astype(int), done["arch"].astype(str), strict=True))
    for i, a in zip(indices, archs, strict=True):
        if int(i) in known and known[int(i)] != str(a):
            raise MetaError(f"{path}: index {i} is {known[int(i)]} there, not {a}; remove it")
    todo = [(int(i), a) for i, a in zip(indices, archs, strict=True) if int(i) not in known]
    rows = [done]
    for start in range(0, len(todo), max(1, every)):
        chunk = todo[start:start + max(1, every)]
        vals = data_proxies(build, [a for _, a in chunk], images, seed)
        rows.append(pd.DataFrame({"index": [i for i, _ in chunk],
                                  "arch": [str(a) for _, a in chunk],
                                  **{p: vals[:, j] for j, p in enumerate(PROXIES)}}))
        rows = [pd.concat(rows, ignore_index=True)]
        atomic_write_text(path, rows[0].to_csv(index=False))
        if progress is not None:
            progress(min(start + len(chunk), len(todo)), len(todo))
    table = rows[0].drop_duplicates("index").set_index("index")
    return table.loc[[int(i) for i in indices]].reset_index()


def minibatch(dataset, n: int = 64, seed: int = 0) -> torch.Tensor:
    """``n`` images of a ``(image, label)`` dataset, drawn without replacement from ``seed``.

    The proxies' reference code scores every network on one fixed training minibatch of 64
    (Abdelfattah et al. 2021); a fixed draw keeps scores comparable across architectures.

    Raises:
        MetaError: fewer than 2 items, or ``n < 2``.
    """
    seed = check_seed(seed) or 0
    if n < 2 or len(dataset) < 2:
        raise MetaError(f"a minibatch needs n >= 2 images of a dataset with >= 2; got n={n}, "
                        f"{len(dataset)} items")
    order = np.random.default_rng(seed).permutation(len(dataset))[:n]
    return torch.stack([torch.as_tensor(dataset[int(i)][0]) for i in order]).float()
