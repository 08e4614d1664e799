"""Training candidate networks for real: a seeded recipe, early stopping, weight inheritance.

Live evaluation trains each architecture a search proposes on an :class:`~hwnas.bench.live.datasets.
ImageSplits` task and reports its validation accuracy. Training is the expensive metric, so the
three standard ways NAS makes it cheaper are here:

- **low fidelity** — fewer epochs, a fraction of the training set, narrower networks; a proxy is
  useful when it *ranks* architectures like the full training (Zela et al., "Towards automated
  deep learning: efficient joint neural architecture and hyperparameter search", 2018; Zhou et
  al., "EcoNAS", CVPR 2020), which ``bench/scripts/live_fidelity.py`` measures;
- **early stopping** on the learning curve — stop a run whose optimistic extrapolation cannot
  reach the current k-th best final accuracy (Domhan et al., "Speeding up automatic
  hyperparameter optimization of deep neural networks by extrapolation of learning curves",
  IJCAI 2015; Baker et al., "Accelerating neural architecture search using performance
  prediction", 2017);
- **weight inheritance** — a mutated child starts from its parent's weights wherever names and
  shapes agree (Real et al., "Large-scale evolution of image classifiers", ICML 2017; Elsken et
  al., "Efficient multi-objective NAS via Lamarckian evolution", ICLR 2019).

Training is deterministic given the recipe's seed: the initial weights come from
``torch.manual_seed``, the mini-batch order from a ``torch.Generator``, and the training subset
from a NumPy generator; run on one thread for bit-identical results.

Example:
    >>> from hwnas.bench.live.datasets import get_dataset
    >>> from hwnas.search import get_space
    >>> space = get_space("nb201")
    >>> result = train_architecture(space, space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|"
    ...     "skip_connect~1|+|skip_connect~0|skip_connect~1|skip_connect~2|"),
    ...     get_dataset("digits"), TrainRecipe(epochs=1, width=0.25))  # doctest: +SKIP
"""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field

import numpy as np
import torch
from torch import nn

from hwnas.search import Architecture, HwnasError, Space

from .datasets import ImageSplits

__all__ = ["TrainRecipe", "TrainResult", "EarlyStopping", "PeerStopping", "build_for_task",
           "train_architecture", "inherit_weights", "epochs_to_reach", "benchmark_archs"]

# Bump when the training loop changes in a way that changes results, so old cache entries miss.
_LOOP_VERSION = 1


@dataclass(frozen=True)
class TrainRecipe:
    """How one architecture is trained: SGD (Nesterov momentum) with a cosine schedule.

    The defaults follow NAS-Bench-201's recipe (SGD, momentum 0.9, Nesterov, lr 0.1 cosine to 0,
    weight decay 5e-4) with a batch sized for small datasets: NB-201 uses 256 on CIFAR's 50,000
    images (~196 steps an epoch); on digits' 1,077 training images batch 32 gives 34 steps an
    epoch (batch 128 gave 9, and 3 epochs left the networks at ~55 % mean validation accuracy).
    Measured on one thread at full width (C=16), batch 32, lr 0.1: good cells reach 95-98 %
    validation accuracy within 3-6 epochs of a 6-epoch cosine run, at 2-5 s an epoch.
    ``train_fraction`` and ``width`` (a multiplier on the space's channel counts) are the
    fidelity knobs besides ``epochs``. The number of cells per stage stays NB-201's 5 (the
    space's ``build`` does not expose it).
    """

    epochs: int = 6
    batch_size: int = 32
    lr: float = 0.1
    momentum: float = 0.9
    nesterov: bool = True
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    train_fraction: float = 1.0
    width: float = 1.0
    seed: int = 0

    def __post_init__(self) -> None:
        problems = []
        if self.epochs < 1:
            problems.append(f"epochs={self.epochs} (>= 1)")
        if self.batch_size < 1:
            problems.append(f"batch_size={self.batch_size} (>= 1)")
        if not 0 < self.train_fraction <= 1:
            problems.append(f"train_fraction={self.train_fraction} (in (0, 1])")
        if not 0 < self.width <= 4:
            problems.append(f"width={self.width} (in (0, 4])")
        if self.lr <= 0:
            problems.append(f"lr={self.lr} (> 0)")
        if not 0 <= self.label_smoothing < 1:
            problems.append(f"label_smoothing={self.label_smoothing} (in [0, 1))")
        if problems:
            raise HwnasError("training recipe: " + ", ".join(problems))

    def key(self) -> str:
        """A short stable hash of every field (and the loop version), for cache file names."""
        blob = json.dumps({**asdict(self), "loop": _LOOP_VERSION}, sort_keys=True)
        return hashlib.sha1(blob.encode()).hexdigest()[:12]


@dataclass
class TrainResult:
    """One training run: the validation curve (percent, one value per epoch run) and more."""

    val_curve: list[float]
    val_accuracy: float
    test_accuracy: float
    epochs_run: int
    epochs_planned: int
    seconds: float
    stopped_early: bool = False
    inherited: int = 0  # tensors copied from a parent
    state_dict: dict[str, torch.Tensor] | None = field(default=None, repr=False)

    @property
    def epochs_saved(self) -> int:
        return self.epochs_planned - self.epochs_run

    def record(self) -> dict:
        """JSON-ready fields (everything but the weights)."""
        return {k: v for k, v in self.__dict__.items() if k != "state_dict"}


class EarlyStopping:
    """Stop a run whose optimistic learning-curve extrapolation cannot reach the k-th best.

    After ``min_epochs`` epochs the best accuracy a run can still reach is bounded by its best
    value so far plus its recent per-epoch gain (over ``window`` epochs) for every remaining
    epoch, capped at 100. Under a cosine schedule gains shrink, so the linear bound is
    optimistic: a run is stopped only when even that cannot beat ``threshold()``, the k-th best
    final accuracy of the finished runs. This is Domhan et al.'s (2015) "stop when the predicted
    final performance is unlikely to beat the best so far" with the simplest extrapolator, and
    like Baker et al. (2017) it only needs the partial curve.

    Args:
        k: the runs to beat are the top ``k`` so far; until ``k`` runs finished nothing stops.
        min_epochs: never stop before this many epochs (early curves are noisy).
        window: epochs over which the recent gain is measured.
        margin: extra percentage points of optimism (larger: fewer, safer stops).

    The defaults are the safe end of ``bench/scripts/live_fidelity.py``'s measurements on
    digits: with ``min_epochs=2`` and no margin, runs that later reached the top k were stopped
    (curves on small data jump late); replaying the recorded 8-epoch curves with
    ``min_epochs=3, margin=10`` stopped none of the top 3 and still saved a third of the epochs.
    On 12-epoch curves of the batch-32 recipe it stopped 2 of the final top 10 (saving 29.5%):
    under a cosine schedule the late epochs gain most, which a linear bound does not foresee;
    :class:`PeerStopping` compares with finished runs' curves instead.
    """

    #: the name ``hwnas search --early-stop-rule`` knows this rule by
    rule = "extrapolate"

    def __init__(self, k: int = 5, min_epochs: int = 3, window: int = 2, margin: float = 10.0):
        if k < 1 or min_epochs < 1 or window < 1:
            raise HwnasError(f"early stopping: k={k}, min_epochs={min_epochs}, window={window}; "
                             "each must be >= 1")
        self.k, self.min_epochs, self.window, self.margin = k, min_epochs, window, margin
        self.finals_: list[float] = []
        self.stopped_ = 0
        self.epochs_saved_ = 0

    def threshold(self) -> float:
        """The k-th best final accuracy so far (-inf until ``k`` runs finished)."""
        if len(self.finals_) < self.k:
            return -math.inf
        return sorted(self.finals_, reverse=True)[self.k - 1]

    def bound(self, curve: list[float], epochs: int) -> float:
        """The optimistic final accuracy of a run with ``curve`` out of ``epochs`` epochs."""
        w = min(self.window, len(curve) - 1)
        gain = max(0.0, (curve[-1] - curve[-1 - w]) / w) if w > 0 else 100.0
        return min(100.0, max(curve) + gain * (epochs - len(curve)) + self.margin)

    def should_stop(self, curve: list[float], epochs: int) -> bool:
        if len(curve) < self.min_epochs or len(curve) >= epochs:
            return False
        return self.bound(curve, epochs) < self.threshold()

    def finish(self, curve: Sequence[float]) -> None:
        """A run trained to the end with this validation ``curve`` joins the candidates."""
        self.finals_.append(float(curve[-1]))

    def record(self, result: TrainResult) -> None:
        """Account a finished run: a full run joins the top-k, a stopped one adds its savings."""
        if result.stopped_early:
            self.stopped_ += 1
            self.epochs_saved_ += result.epochs_saved
        else:
            self.finish(result.val_curve)


class PeerStopping(EarlyStopping):
    """Stop a run that, at the same epoch, is behind every one of the k best finished runs.

    After ``min_epochs`` epochs a run is stopped at epoch ``e`` when its validation accuracy is
    more than ``margin`` points below each of the current top ``k`` runs' (by final accuracy)
    accuracy at their own epoch ``e``: it is slower than all of them were, at the point of the
    schedule where they were, and none of them was a late bloomer it could copy. This is the
    performance-curve comparison of Google Vizier's median stopping rule (Golovin et al., KDD
    2017), against the top k rather than the median, so only runs that would not enter the top k
    are cut; it needs no extrapolation, so the shape of the schedule does not matter.

    Args:
        k: the top ``k`` finished runs are the peers; until ``k`` runs finished nothing stops.
        min_epochs: never stop before this many epochs.
        margin: percentage points a run may trail every peer by and still go on.

    Measured by replaying ``bench/scripts/live_fidelity.py``'s curves (digits, NB-201): on 100
    12-epoch runs, ``k=10, min_epochs=3, margin=5`` saves 36.5% of the epochs and stops none of
    the final top 10 (these settings were chosen on those curves); on 24 8-epoch runs of another
    recipe, ``k=5`` saves 30.2% and stops none of the top 5, ``k=3`` saves 43.2% and stops 1 of
    the top 3.
    """

    rule = "peers"

    def __init__(self, k: int = 10, min_epochs: int = 3, margin: float = 5.0):
        super().__init__(k=k, min_epochs=min_epochs, window=1, margin=margin)
        self.curves_: list[list[float]] = []

    def finish(self, curve: Sequence[float]) -> None:
        super().finish(curve)
        self.curves_.append([float(x) for x in curve])

    def should_stop(self, curve: list[float], epochs: int) -> bool:
        e = len(curve)
        if e < self.min_epochs or e >= epochs:
            return False
        peers = [c for c in self.curves_ if len(c) >= epochs]
        if len(peers) < self.k:
            return False
        top = sorted(peers, key=lambda c: c[-1], reverse=True)[:self.k]
        return curve[-1] < min(c[e - 1] for c in top) - self.margin


def benchmark_archs(n: int) -> list[int]:
    """The NB-201 indices of the live-evaluation benchmark: the first ``n`` of a fixed permutation.

    Shared with the one-shot (supernet) benchmark, so their per-architecture tables join on index.
    """
    return [int(i) for i in np.random.default_rng(2026).permutation(15625)[:n]]


def build_for_task(space: Space, arch: Architecture, splits: ImageSplits,
                   width: float = 1.0) -> nn.Module:
    """``space.build`` for the task's classes and image channels, with a width multiplier.

    NB-201 takes ``in_channels`` and ``c`` directly. A space whose ``build`` has no such knobs
    gets the image repeated to 3 channels (the networks are built for RGB) and ignores ``width``
    unless its build accepts ``width_mult``.
    """
    params = inspect.signature(space.build).parameters
    kwargs: dict = {"num_classes": splits.num_classes}
    channels = splits.input_shape[0]
    if "c" in params:
        kwargs["c"] = max(1, int(round(16 * width)))
    elif "width_mult" in params:
        kwargs["width_mult"] = width
    if "in_channels" in params:
        kwargs["in_channels"] = channels
        return space.build(arch, **kwargs)
    model = space.build(arch, **kwargs)
    return model if channels == 3 else nn.Sequential(_RepeatChannels(3), model)


class _RepeatChannels(nn.Module):
    def __init__(self, channels: int):
        super().__init__()
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.expand(-1, self.channels, -1, -1) if x.shape[1] == 1 else x


def inherit_weights(model: nn.Module, parent_state: Mapping[str, torch.Tensor]) -> list[str]:
    """Copy every parent tensor whose name and shape match into ``model``; returns their names.

    Parameters and buffers (BatchNorm statistics) alike; a changed operation keeps its fresh
    initialisation (Real et al., 2017; Elsken et al., 2019).
    """
    own = model.state_dict()
    copied = [k for k, v in parent_state.items()
              if k in own and tuple(own[k].shape) == tuple(v.shape) and own[k].dtype == v.dtype]
    with torch.no_grad():
        for k in copied:
            own[k].copy_(parent_state[k])
    return copied


def epochs_to_reach(curve: list[float], target: float) -> int | None:
    """The first epoch (1-based) whose accuracy is at least ``target``; None if never."""
    for i, v in enumerate(curve):
        if v >= target:
            return i + 1
    return None


def _tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    if hasattr(dataset, "tensors"):
        x, y = dataset.tensors[:2]
        return x, y
    items = [dataset[i] for i in range(len(dataset))]
    return torch.stack([x for x, _ in items]), torch.tensor([int(y) for _, y in items])


@torch.no_grad()
def _accuracy(model: nn.Module, x: torch.Tensor, y: torch.Tensor, batch: int = 512) -> float:
    model.eval()
    correct = sum(int((model(x[i:i + batch]).argmax(1) == y[i:i + batch]).sum())
                  for i in range(0, len(y), batch))
    return 100.0 * correct / max(1, len(y))


EpochCallback = Callable[[int, float, list[float]], "bool | None"]


def train_architecture(space: Space, arch: Architecture, splits: ImageSplits,
                       recipe: TrainRecipe = TrainRecipe(), *,
                       init_state: Mapping[str, torch.Tensor] | None = None,
                       early_stopping: EarlyStopping | None = None,
                       epoch_callback: EpochCallback | None = None,
                       keep_state: bool = True) -> TrainResult:
    """Train ``arch`` on ``splits`` with ``recipe``; validation accuracy after every epoch.

    Args:
        init_state: a parent's ``state_dict`` to inherit matching tensors from.
        early_stopping: a rule consulted after each epoch (its top-k is *not* updated here;
            call ``early_stopping.record(result)`` when the run counts).
        epoch_callback: ``f(epoch, val_accuracy, curve)`` after each epoch; a truthy return
            stops the run (counted as an early stop).
        keep_state: return the trained weights (for inheritance) in ``state_dict``.

    Returns:
        A :class:`TrainResult`; ``val_accuracy`` is the last epoch's, as NAS-Bench-201 reports.
    """
    t0 = time.perf_counter()
    torch.manual_seed(recipe.seed)
    model = build_for_task(space, arch, splits, recipe.width)
    inherited = len(inherit_weights(model, init_state)) if init_state is not None else 0
    x, y = _tensors(splits.train)
    if recipe.train_fraction < 1:
        # A stratification-free random subset: the same one for every architecture of a recipe.
        keep = max(recipe.batch_size, int(round(recipe.train_fraction * len(y))))
        ix = np.random.default_rng(recipe.seed).permutation(len(y))[:min(keep, len(y))]
        x, y = x[torch.from_numpy(np.sort(ix))], y[torch.from_numpy(np.sort(ix))]
    xv, yv = _tensors(splits.val)
    opt = torch.optim.SGD(model.parameters(), lr=recipe.lr, momentum=recipe.momentum,
                          nesterov=recipe.nesterov, weight_decay=recipe.weight_decay)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=recipe.epochs)
    loss_fn = nn.CrossEntropyLoss(label_smoothing=recipe.label_smoothing)
    gen = torch.Generator().manual_seed(recipe.seed)
    curve: list[float] = []
    stopped = False
    for epoch in range(recipe.epochs):
        model.train()
        order = torch.randperm(len(y), generator=gen)
        for i in range(0, len(y), recipe.batch_size):
            b = order[i:i + recipe.batch_size]
            if len(b) < 2:  # BatchNorm needs two samples
                continue
            opt.zero_grad(set_to_none=True)
            loss_fn(model(x[b]), y[b]).backward()
            opt.step()
        sched.step()
        curve.append(_accuracy(model, xv, yv))
        last = epoch + 1 == recipe.epochs
        if epoch_callback is not None and epoch_callback(epoch + 1, curve[-1], curve) and not last:
            stopped = True
        if early_stopping is not None and early_stopping.should_stop(curve, recipe.epochs):
            stopped = True
        if stopped:
            break
    xt, yt = _tensors(splits.test)
    return TrainResult(
        val_curve=curve, val_accuracy=curve[-1], test_accuracy=_accuracy(model, xt, yt),
        epochs_run=len(curve), epochs_planned=recipe.epochs, seconds=time.perf_counter() - t0,
        stopped_early=stopped, inherited=inherited,
        state_dict={k: v.detach().clone() for k, v in model.state_dict().items()}
        if keep_state else None)
