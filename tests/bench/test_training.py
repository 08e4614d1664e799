"""Training recipe, determinism, early stopping and weight inheritance (tiny, seeded runs)."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hwnas.bench.live.training import (
    EarlyStopping,
    PeerStopping,
    TrainRecipe,
    benchmark_archs,
    build_for_task,
    epochs_to_reach,
    inherit_weights,
    train_architecture,
)
from hwnas.search import HwnasError, get_space

TINY = TrainRecipe(epochs=2, train_fraction=0.2, width=0.25, batch_size=32)
PARENT = "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"
# the first edge's 3x3 convolution becomes a 1x1: one edit away
CHILD = "|nor_conv_1x1~0|+|nor_conv_3x3~0|skip_connect~1|+|skip_connect~0|avg_pool_3x3~1|none~2|"


pytestmark = pytest.mark.usefixtures("one_thread")


def test_recipe_key_is_stable_and_covers_every_field():
    assert TrainRecipe().key() == TrainRecipe().key()
    keys = {TrainRecipe().key(), TrainRecipe(epochs=3).key(), TrainRecipe(width=0.5).key(),
            TrainRecipe(seed=1).key(), TrainRecipe(train_fraction=0.5).key()}
    assert len(keys) == 5


@pytest.mark.parametrize("bad", [{"epochs": 0}, {"train_fraction": 0.0}, {"width": -1.0},
                                 {"lr": 0.0}, {"label_smoothing": 1.0}])
def test_bad_recipe_says_what(bad):
    with pytest.raises(HwnasError, match=next(iter(bad))):
        TrainRecipe(**bad)


def test_same_seed_same_training(splits):
    space = get_space("nb201")
    arch = space.parse(PARENT)
    a = train_architecture(space, arch, splits, TINY)
    b = train_architecture(space, arch, splits, TINY)
    assert a.val_curve == b.val_curve and a.test_accuracy == b.test_accuracy
    assert all(torch.equal(a.state_dict[k], b.state_dict[k]) for k in a.state_dict)
    assert a.epochs_run == 2 and len(a.val_curve) == 2 and not a.stopped_early
    assert 0 <= a.val_accuracy <= 100 and a.seconds > 0
    c = train_architecture(space, arch, splits, TrainRecipe(**{**TINY.__dict__, "seed": 1}))
    assert c.val_curve != a.val_curve or c.test_accuracy != a.test_accuracy


def test_network_is_built_for_the_task(splits):
    space = get_space("nb201")
    model = build_for_task(space, space.parse(PARENT), splits, width=0.25)
    assert model.stem[0].in_channels == 1 and model.stem[0].out_channels == 4
    assert model(torch.zeros(2, *splits.input_shape)).shape == (2, 10)
    default = space.build(space.parse(PARENT))
    assert default.stem[0].in_channels == 3 and default.stem[0].out_channels == 16


def test_early_stopping_rule_extrapolates_optimistically():
    rule = EarlyStopping(k=2, min_epochs=2, window=1, margin=0.0)
    assert rule.threshold() == -math.inf  # nothing finished: nothing to beat
    rule.finals_ += [90.0, 80.0, 50.0]
    assert rule.threshold() == 80.0
    # 40 -> 50: +10 an epoch, 2 epochs left: at best 70 < 80
    assert rule.should_stop([40.0, 50.0], 4)
    # 40 -> 60: at best 100 (capped): keep going
    assert not rule.should_stop([40.0, 60.0], 4)
    assert not rule.should_stop([10.0], 4)  # before min_epochs
    assert not rule.should_stop([10.0, 11.0, 12.0, 13.0], 4)  # finished


def test_peer_stopping_compares_curves_at_the_same_epoch():
    rule = PeerStopping(k=2, min_epochs=2, margin=5.0)
    # a late bloomer and a steady run finish on top; a weak run finishes below them
    for curve in ([10.0, 20.0, 30.0, 95.0], [50.0, 70.0, 85.0, 90.0], [40.0, 45.0, 50.0, 60.0]):
        assert not rule.should_stop(curve[:2], 4)  # fewer than k finished: nothing stops
        rule.finish(curve)
    assert rule.threshold() == 90.0
    # behind both top runs at epoch 2 (20 and 70) by more than the margin: stopped
    assert rule.should_stop([5.0, 14.0], 4)
    # within the margin of the late bloomer's 20 at epoch 2: goes on, however far from 90
    assert not rule.should_stop([5.0, 16.0], 4)
    # the weak finished run (60) is not a peer: trailing it does not matter
    assert not rule.should_stop([30.0, 40.0, 26.0], 4)
    assert not rule.should_stop([1.0], 4)  # before min_epochs
    assert not rule.should_stop([1.0, 1.0, 1.0, 1.0], 4)  # finished
    # record() of a run trained to the end keeps its whole curve
    rule2 = PeerStopping(k=1)
    rule2.record(_finished([50.0, 60.0]))
    assert rule2.curves_ == [[50.0, 60.0]] and rule2.finals_ == [60.0]


def _finished(curve):
    from types import SimpleNamespace

    return SimpleNamespace(stopped_early=False, val_curve=curve, val_accuracy=curve[-1],
                           epochs_saved=0)


def test_early_stopping_stops_a_hopeless_run(splits):
    space = get_space("nb201")
    rule = EarlyStopping(k=1, min_epochs=2, window=1)
    rule.finals_.append(101.0)  # unreachable: every run is hopeless
    recipe = TrainRecipe(**{**TINY.__dict__, "epochs": 5})
    res = train_architecture(space, space.parse(PARENT), splits, recipe, early_stopping=rule)
    assert res.stopped_early and res.epochs_run == 2 and res.epochs_saved == 3
    rule.record(res)
    assert rule.stopped_ == 1 and rule.epochs_saved_ == 3 and rule.finals_ == [101.0]


def test_epoch_callback_can_stop(splits):
    space = get_space("nb201")
    seen = []
    res = train_architecture(space, space.parse(PARENT), splits,
                             TrainRecipe(**{**TINY.__dict__, "epochs": 3}),
                             epoch_callback=lambda e, acc, curve: seen.append(e) or e >= 1)
    assert seen == [1] and res.epochs_run == 1 and res.stopped_early


def test_inheritance_copies_matching_tensors_only():
    space = get_space("nb201")
    parent = space.build(space.parse(PARENT), num_classes=10, in_channels=1, c=4)
    child = space.build(space.parse(CHILD), num_classes=10, in_channels=1, c=4)
    with torch.no_grad():
        for p in parent.parameters():
            p.fill_(0.5)
    before = {k: v.clone() for k, v in child.state_dict().items()}
    copied = set(inherit_weights(child, parent.state_dict()))
    own, theirs = child.state_dict(), parent.state_dict()
    mismatched = {k for k in own if own[k].shape != theirs[k].shape}
    # the changed edge (edge 0) of each of the 15 cells: its convolution weight
    assert len(mismatched) == 15 and all(".edges.0." in k for k in mismatched)
    assert copied == set(own) - mismatched
    assert all(torch.equal(own[k], theirs[k]) for k in copied)
    assert all(torch.equal(own[k], before[k]) for k in mismatched)


def test_inherited_training_starts_from_the_parent(splits):
    space = get_space("nb201")
    parent = train_architecture(space, space.parse(PARENT), splits, TINY)
    child = train_architecture(space, space.parse(CHILD), splits, TINY,
                               init_state=parent.state_dict, keep_state=False)
    assert child.inherited > 0 and child.state_dict is None


def test_epochs_to_reach():
    assert epochs_to_reach([10.0, 50.0, 70.0], 50.0) == 2
    assert epochs_to_reach([10.0, 50.0], 90.0) is None


def test_benchmark_archs_is_the_shared_permutation():
    assert benchmark_archs(5) == [int(i) for i in
                                  np.random.default_rng(2026).permutation(15625)[:5]]
    assert benchmark_archs(3) == benchmark_archs(128)[:3]
