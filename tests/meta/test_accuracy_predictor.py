"""The few-shot accuracy predictor, its baselines and features on small made-up tasks."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from hwnas.meta import MetaError
from hwnas.meta.accuracy import AccuracyTask, MetaAccuracyPredictor, calibrate
from hwnas.meta.accuracy_baselines import (
    NearestSourcePredictor,
    PredictedAccuracy,
    ScratchAccuracyPredictor,
)
from hwnas.meta.accuracy_features import (
    AccuracyFeatures,
    dataset_of,
    normal_scores,
    plan_shots,
    source_tasks,
)
from hwnas.search import get_space

N = 400
SOURCES = ["a_test_200ep", "a_val_12ep", "b_test_12ep", "c_test_12ep"]


def _world(seed: int = 0):
    """Sources and a target that share a latent quality plus an architecture-level effect."""
    rng = np.random.default_rng(seed)
    onehot = (rng.random((N, 12)) < 0.3).astype(np.float32)
    w = rng.normal(size=12)
    quality = rng.normal(size=N)
    arch_effect = onehot @ w / 3
    src = np.column_stack([60 + 10 * (quality + k * 0.2 * arch_effect) + rng.normal(0, 2, N)
                           for k in range(len(SOURCES))])
    target = 50 + 8 * (quality + 0.8 * arch_effect) + rng.normal(0, 1, N)
    structure = onehot.reshape(N, 4, 3).sum(axis=2)
    return AccuracyFeatures(src, onehot, structure, SOURCES), target


@pytest.fixture(scope="module")
def world():
    return _world()


@pytest.fixture(scope="module")
def meta(world):
    feats, _ = world
    tasks = [AccuracyTask(s, feats.source_accuracy[:, j], feats.hidden_for(s))
             for j, s in enumerate(feats.sources)]
    return MetaAccuracyPredictor(feats, meta_steps=15, n_query=100, seed=0).meta_fit(tasks)


def test_normal_scores_are_ranks_on_a_normal_scale():
    z = normal_scores(np.array([3.0, 1.0, 2.0, 10.0]))
    assert np.argsort(z).tolist() == [1, 2, 0, 3]
    assert z.mean() == pytest.approx(0.0) and z[3] == pytest.approx(-z[1])


def test_source_tasks_leave_out_the_dataset_or_the_column():
    tasks = ["cifar10_test_200ep", "cifar10_val_12ep", "cifar100_test_12ep", "imagenet16_val_12ep"]
    assert dataset_of("cifar100_test_12ep") == "cifar100"
    assert source_tasks("cifar10_test_200ep", tasks) == tasks[2:]
    assert source_tasks("cifar10_test_200ep", tasks, "column") == tasks[1:]
    assert source_tasks(None, tasks) == tasks
    with pytest.raises(MetaError, match="exclude"):
        source_tasks("cifar10_test_200ep", tasks, "nothing")


def test_features_validate_their_input(world):
    feats, _ = world
    assert feats.hidden_for("a_test_200ep") == (0, 1)
    bad = feats.source_accuracy.copy()
    bad[3, 1] = np.nan
    with pytest.raises(MetaError, match="finite"):
        AccuracyFeatures(bad, feats.onehot, feats.structure)
    with pytest.raises(MetaError, match="rows"):
        AccuracyFeatures(feats.source_accuracy, feats.onehot[:-1], feats.structure)
    with pytest.raises(MetaError, match="outside"):
        feats.check_indices([0, N])


def test_plan_shots_favours_the_consensus_top(world):
    feats, _ = world
    plan = plan_shots(feats, 20, seed=1)
    assert len(set(plan.tolist())) == 20
    top = feats.consensus() >= np.quantile(feats.consensus(), 0.9)
    assert top[plan].sum() == 10
    assert plan_shots(feats, 20, seed=1).tolist() == plan.tolist()
    with pytest.raises(MetaError):
        plan_shots(feats, 0)


def test_meta_fit_is_deterministic(world, meta):
    feats, _ = world
    tasks = [AccuracyTask(s, feats.source_accuracy[:, j], feats.hidden_for(s))
             for j, s in enumerate(feats.sources)]
    again = MetaAccuracyPredictor(feats, meta_steps=15, n_query=100, seed=0).meta_fit(tasks)
    np.testing.assert_allclose(again.embedding_, meta.embedding_)
    assert len(meta.history_) == 15


def test_adapt_ranks_the_target_and_leaves_the_meta_predictor_unchanged(world, meta):
    feats, target = world
    before = meta.embedding_.copy()
    shots = np.random.default_rng(0).choice(N, 20, replace=False)
    pred = meta.adapt(shots, target[shots])
    other = meta.adapt(shots[:10], target[shots[:10]])
    np.testing.assert_array_equal(meta.embedding_, before)
    assert pred is not other and pred.weights_.sum() == pytest.approx(1.0)
    every = np.arange(N)
    assert spearmanr(pred.predict(every), target)[0] > 0.8
    # the calibration to percent is monotone: the ranking is the score's
    assert spearmanr(pred.predict(every), pred.predict_score(every))[0] == pytest.approx(1.0)


@pytest.mark.parametrize("algo", ["maml", "metasgd"])
def test_gradient_heads_adapt_too(world, algo):
    feats, target = world
    tasks = [AccuracyTask(s, feats.source_accuracy[:, j], feats.hidden_for(s))
             for j, s in enumerate(feats.sources)]
    m = MetaAccuracyPredictor(feats, algo=algo, meta_steps=3, inner_steps=2, n_query=50, seed=0)
    pred = m.meta_fit(tasks).adapt(np.arange(20), target[:20])
    assert np.isfinite(pred.predict(np.arange(N))).all()


@pytest.mark.parametrize(("X", "y", "match"), [
    (np.arange(4), np.ones(4), "at least"),
    (np.arange(6), [1, 2, np.nan, 4, 5, 6], "finite"),
    ([0, 1, 2, 3, N], np.ones(5), "outside"),
    ([0, 1, 2, 3, 3], np.ones(5), "twice"),
    (np.arange(6), np.ones(5), "indices but"),
])
def test_bad_shots_raise(meta, X, y, match):
    with pytest.raises(MetaError, match=match):
        meta.adapt(X, y)


def test_arguments_are_checked(world):
    feats, _ = world
    with pytest.raises(MetaError, match="algo"):
        MetaAccuracyPredictor(feats, algo="sgd")
    with pytest.raises(MetaError, match="candidates"):
        MetaAccuracyPredictor(feats, candidates=("nope",))
    with pytest.raises(MetaError, match="meta_fit"):
        MetaAccuracyPredictor(feats).adapt(np.arange(10), np.arange(10.0))
    src_only = MetaAccuracyPredictor(feats, candidates=("src@1",))  # no meta-training needed
    assert src_only.adapt(np.arange(10), np.arange(10.0)).candidates_ == ["src@1"]


def test_baselines(world):
    feats, target = world
    shots = np.arange(30)
    y = feats.source_accuracy[shots, 2] + 0.01 * np.arange(30) % 0.02
    nearest = NearestSourcePredictor(feats).fit(shots, y)
    assert nearest.source_ == SOURCES[2]
    scratch = ScratchAccuracyPredictor(feats).fit(shots, target[shots])
    assert scratch.lam_ in scratch.lams and np.isfinite(scratch.predict(np.arange(N))).all()
    with pytest.raises(MetaError, match="fit first"):
        ScratchAccuracyPredictor(feats).predict([0])


def test_calibrate_is_monotone():
    a, b = calibrate(np.array([1.0, 2.0, 3.0]), np.array([10.0, 20.0, 30.0]))
    assert (a, b) == pytest.approx((0.0, 10.0))
    _, b = calibrate(np.array([3.0, 2.0, 1.0]), np.array([10.0, 20.0, 30.0]))
    assert b > 0


def test_predicted_accuracy_is_a_metric_source(tmp_path):
    space = get_space("nb201")
    a, b, c = (space.sample(k) for k in range(3))
    path = tmp_path / "predicted.csv"
    path.write_text(f"index,arch,accuracy\n0,{space.format(a)},71.5\n1,{space.format(b)},60\n")
    src = PredictedAccuracy.from_csv(path, space)
    out = src.evaluate([b, a, c])
    assert out[:2].tolist() == [60.0, 71.5] and np.isnan(out[2])
    assert src.unit == "%" and src.calls == 3


def test_synflow_scores_an_nb201_network():
    from hwnas.meta.accuracy_proxies import synflow

    space = get_space("nb201")
    convs = space.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|"
                        "nor_conv_3x3~1|nor_conv_3x3~2|")
    skips = space.parse("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|"
                        "skip_connect~2|")
    v = synflow(space, [convs, skips])
    assert np.isfinite(v).all() and v[0] > v[1]
    assert synflow(space, [convs]).tolist() == v[:1].tolist()
