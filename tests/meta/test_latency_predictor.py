"""The meta-learned latency predictor on small made-up devices (seconds, deterministic)."""

from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import spearmanr

from hwnas.meta.encoders import dead_cells, onehot_features, structure_features
from hwnas.meta.errors import MetaError
from hwnas.meta.latency import (
    ADAPTIVE_POWERS,
    KERNEL_PENALTIES,
    KERNEL_SCALES,
    LatencyTask,
    MetaLatencyPredictor,
)
from hwnas.meta.latency_features import (
    LatencyFeatures,
    adaptive_ridge_loo,
    additive_loo,
    kernel_ridge_loo,
    nearest_loo,
    plan_shots,
    ridge_loo,
)
from hwnas.search import get_space

N = 400


def _device(genes: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Additive per-operation costs (linear space), a constant and multiplicative noise."""
    cost = np.concatenate([[0.0], rng.uniform(0.1, 2.0, 4)])
    return (1.0 + cost[genes].sum(1)) * np.exp(rng.normal(0, 0.02, len(genes)))


@pytest.fixture(scope="module")
def setup():
    space = get_space("nb201")
    rng = np.random.default_rng(0)
    archs = list(dict.fromkeys(space.sample_batch(N, rng)))
    genes = np.array([a.genes for a in archs])
    sources = np.stack([_device(genes, rng) for _ in range(4)], 1)
    target = _device(genes, rng)
    feats = LatencyFeatures(sources, onehot_features(space, archs),
                            structure_features(space, archs), ["a", "b", "c", "d"])
    tasks = [LatencyTask(d, sources[:, j], j) for j, d in enumerate(feats.sources)]
    return space, archs, feats, tasks, target


def _meta(feats, **kw) -> MetaLatencyPredictor:
    return MetaLatencyPredictor(feats, reference=range(5), meta_steps=5, n_query=100, seed=1, **kw)


def test_encoders_flag_dead_cells():
    space = get_space("nb201")
    dead = space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|none~1|none~2|")
    live = space.parse("|nor_conv_3x3~0|+|none~0|none~1|+|none~0|skip_connect~1|none~2|")
    assert dead_cells(np.array([dead.genes, live.genes])).tolist() == [True, False]
    f = structure_features(space, [dead, live])
    assert f.shape == (2, 9) and f[:, -1].tolist() == [1.0, 0.0]
    assert f[1, 4 + 2] == 1.0  # the live 3x3 conv of the second cell
    assert onehot_features(space, [dead]).shape == (1, 31)


@pytest.mark.parametrize("name", ["fbnet", "ofa"])
def test_structure_features_other_spaces(name):
    space = get_space(name)
    archs = space.sample_batch(3, 0)
    assert structure_features(space, archs).shape[0] == 3
    assert onehot_features(space, archs).shape == (3, space.encoding_length)


@pytest.mark.parametrize("algo", ["ridge", "maml", "metasgd"])
def test_meta_fit_adapt_predict(setup, algo):
    _, _, feats, tasks, target = setup
    meta = _meta(feats, algo=algo)
    assert meta.meta_fit(tasks) is meta
    before = meta.embedding_.copy()
    shots = plan_shots(feats, 20, range(5), seed=0)
    pred = meta.adapt(shots, target[shots])
    np.testing.assert_array_equal(meta.embedding_, before)  # adapt never mutates
    out = pred.predict(np.arange(len(feats)))
    assert out.shape == (len(feats),) and (out > 0).all()
    rest = np.setdiff1d(np.arange(len(feats)), shots)
    assert spearmanr(out[rest], target[rest])[0] > 0.9
    assert np.isclose(pred.weights_.sum(), 1.0)
    assert pred.fit(shots, target[shots]) is pred


def test_additive_loo_recovers_operation_costs():
    rng = np.random.default_rng(3)
    counts = rng.integers(0, 6, size=(200, 4)).astype(float)
    lat = 0.5 + counts @ np.array([0.0, 0.2, 1.0, 3.0])  # one free operation: a zero cost
    shots = rng.choice(200, 20, replace=False)
    pred, err = additive_loo(counts, lat[shots], shots)
    np.testing.assert_allclose(np.exp(pred), lat, rtol=1e-6)
    assert err < 1e-10
    # a negative cost is impossible: the fit clips it to zero instead of extrapolating with it
    bad = 5.0 - 0.5 * counts[:, 0]
    pred, _ = additive_loo(counts, bad[shots], shots)
    assert np.all(np.exp(pred) >= 0.5 * bad[shots].min() - 1e-12)
    assert np.ptp(pred) < 1e-9  # no non-negative cost explains a decrease: a constant


def test_nearest_loo_finds_the_affine_copy_of_a_source():
    rng = np.random.default_rng(5)
    S = rng.normal(size=(300, 6))
    y = 2.0 + 0.7 * S[:, 4] + rng.normal(0, 0.01, 300)  # device 4, rescaled and shifted
    shots = rng.choice(300, 20, replace=False)
    pred, err, j = nearest_loo(S, y[shots], shots)
    assert j == 4
    np.testing.assert_allclose(pred, 2.0 + 0.7 * S[:, 4], atol=0.05)
    # the closed-form leave-one-out error equals refitting without each shot
    x, t = S[shots, 4], y[shots]
    loo = []
    for i in range(len(shots)):
        keep = np.arange(len(shots)) != i
        b, a = np.polyfit(x[keep], t[keep], 1)
        loo.append((t[i] - (a + b * x[i])) ** 2)
    assert err == pytest.approx(np.mean(loo), rel=1e-8)
    # chosen by rank agreement: the same column here, and its own leave-one-out error
    pred_r, err_r, j_r = nearest_loo(S, y[shots], shots, by="rank")
    assert j_r == 4 and err_r == pytest.approx(err)
    with pytest.raises(MetaError, match="unknown nearest"):
        nearest_loo(S, y[shots], shots, by="mse")


def test_adaptive_ridge_spans_ridge_to_nearest_source():
    """Power 0 is the plain ridge; a large power keeps the one source that agrees with the
    shots; the leave-one-out error is nested (the scales refitted without each shot)."""
    rng = np.random.default_rng(7)
    S = rng.normal(size=(300, 6))
    y = 1.0 + 0.5 * S[:, 2] + rng.normal(0, 0.05, 300)
    shots = rng.choice(300, 20, replace=False)
    plain, e_plain = ridge_loo(S, y[shots], shots, 1.0)
    p0, e0 = adaptive_ridge_loo(S, y[shots], shots, 0.0)
    np.testing.assert_allclose(p0, plain, atol=1e-10)
    assert e0 == pytest.approx(e_plain, rel=1e-8)
    p16, e16 = adaptive_ridge_loo(S, y[shots], shots, 16.0)
    rest = np.setdiff1d(np.arange(300), shots)
    assert np.mean((p16[rest] - y[rest]) ** 2) < np.mean((plain[rest] - y[rest]) ** 2)
    assert e16 < e_plain
    # nested: the error equals refitting the whole head (scales included) without each shot
    loo = [adaptive_ridge_loo(S, np.delete(y[shots], i), np.delete(shots, i), 16.0)[0][shots[i]]
           for i in range(len(shots))]
    assert e16 == pytest.approx(np.mean((np.asarray(loo) - y[shots]) ** 2), rel=1e-8)
    with pytest.raises(MetaError, match="power"):
        adaptive_ridge_loo(S, y[shots], shots, -1.0)


def test_adaptive_heads_in_the_ensemble(setup):
    _, _, feats, tasks, target = setup
    meta = _meta(feats).meta_fit(tasks)  # the default: ADAPTIVE_POWERS
    shots = plan_shots(feats, 20, range(5), seed=0)
    names = meta.adapt(shots, target[shots]).candidates_
    assert [c for c in names if c.startswith("src-adaptive")] == [
        f"src-adaptive^{q:g}" for q in ADAPTIVE_POWERS] == [
        "src-adaptive^4", "src-adaptive^8", "src-adaptive^16"]
    meta.adaptive = ()
    assert not any(c.startswith("src-adaptive") for c in meta.adapt(shots, target[shots])
                   .candidates_)
    for bad in ([-1.0], ["x"], [True]):
        with pytest.raises(MetaError, match="adaptive must be"):
            _meta(feats, adaptive=bad)


def test_kernel_ridge_bends_where_a_linear_map_cannot():
    """A target that saturates in one source (tanh): the Gaussian-kernel head fits it better
    than the ridge, its predictions are scikit-learn's KernelRidge on the centred shots, and it
    knows it (smaller leave-one-out error)."""
    from sklearn.kernel_ridge import KernelRidge

    rng = np.random.default_rng(3)
    S = rng.normal(size=(300, 4))
    y = np.tanh(2 * S[:, 0]) + rng.normal(0, 0.02, 300)
    shots = rng.choice(300, 30, replace=False)
    rest = np.setdiff1d(np.arange(300), shots)
    (p, e), (p8, _) = kernel_ridge_loo(S, y[shots], shots, (2.0, 8.0), (0.1,))
    linear, e_lin = ridge_loo(S, y[shots], shots, 1.0)
    assert np.mean((p[rest] - y[rest]) ** 2) < 0.8 * np.mean((linear[rest] - y[rest]) ** 2)
    assert e < e_lin
    d2 = ((S[shots][:, None, :] - S[shots][None, :, :]) ** 2).sum(-1)
    median = np.median(d2[np.triu_indices(len(shots), 1)])
    ref = KernelRidge(alpha=0.1, kernel="rbf", gamma=1.0 / (2.0 * median))
    ref.fit(S[shots], y[shots] - y[shots].mean())
    np.testing.assert_allclose(p, ref.predict(S) + y[shots].mean(), atol=1e-8)
    assert not np.allclose(p, p8)  # another width, another head
    for bad in (((0.0,), (0.1,)), ((1.0,), (0.0,)), ((1.0,), (0.3, -1.0))):
        with pytest.raises(MetaError, match="must be > 0"):
            kernel_ridge_loo(S, y[shots], shots, *bad)
    with pytest.raises(MetaError, match="at least 3"):
        kernel_ridge_loo(S, y[shots[:2]], shots[:2], (1.0,), (0.1,))


def test_kernel_heads_in_the_ensemble(setup):
    _, _, feats, tasks, target = setup
    meta = _meta(feats, kernel=KERNEL_SCALES).meta_fit(tasks)
    shots = plan_shots(feats, 20, range(5), seed=0)
    adapted = meta.adapt(shots, target[shots])
    names = [c for c in adapted.candidates_ if c.startswith("src-rbf")]
    assert names == [f"src-rbf{c:g}@{lam:g}" for lam in KERNEL_PENALTIES for c in KERNEL_SCALES]
    assert np.isfinite(adapted.predict(range(len(feats)))).all()
    meta.kernel = ()
    assert not any(c.startswith("src-rbf") for c in meta.adapt(shots, target[shots]).candidates_)
    for bad in ([0.0], [-1.0], ["x"], [True], [float("nan")]):
        with pytest.raises(MetaError, match="kernel must be"):
            _meta(feats, kernel=bad)


def test_nearest_by_rank_ignores_one_outlying_shot():
    """A copy of column 1 with one shot measured far off: the rank agreement still finds it."""
    rng = np.random.default_rng(2)
    S = rng.normal(size=(200, 3))
    shots = np.arange(20)
    y = np.exp(S[:, 1])
    ys = np.log(y[shots])
    ys[0] += 6.0  # one shot measured far off
    assert nearest_loo(S, ys, shots, by="rank")[2] == 1


def test_nearest_head_in_the_ensemble(setup):
    _, _, feats, tasks, _ = setup
    target = feats.source_latency_ms[:, 2] * 1.5  # a faster copy of source "c"
    meta = _meta(feats).meta_fit(tasks)
    shots = plan_shots(feats, 20, range(5), seed=0)
    pred = meta.adapt(shots, target[shots])
    assert "nearest[c]" in pred.candidates_
    without = _meta(feats, nearest=False).meta_fit(tasks).adapt(shots, target[shots])
    assert not any(c.startswith("nearest") for c in without.candidates_)
    with pytest.raises(MetaError, match="nearest must be"):
        _meta(feats, nearest=1)


def test_additive_device_unlike_any_source(setup):
    """An accelerator whose latency is the sum of its live operations' costs (no noise, costs
    unlike the sources'): the additive candidate takes the most weight and ranks it."""
    space, archs, feats, tasks, _ = setup
    live = structure_features(space, archs)[:, 4:8]
    target = 0.2 + live @ np.array([0.01, 0.3, 2.0, 0.05])
    meta = _meta(feats).meta_fit(tasks)
    shots = plan_shots(feats, 20, range(5), seed=0)
    pred = meta.adapt(shots, target[shots])
    best = pred.candidates_[int(np.argmax(pred.weights_))]
    assert best == "additive", dict(zip(pred.candidates_, pred.weights_.round(3), strict=True))
    rest = np.setdiff1d(np.arange(len(feats)), shots)
    out = pred.predict(rest)
    assert spearmanr(out, target[rest])[0] > 0.99


def test_same_seed_same_prediction(setup):
    _, _, feats, tasks, target = setup
    shots = np.arange(20)
    a = _meta(feats).meta_fit(tasks).adapt(shots, target[shots]).predict(range(len(feats)))
    b = _meta(feats).meta_fit(tasks).adapt(shots, target[shots]).predict(range(len(feats)))
    np.testing.assert_array_equal(a, b)


def test_save_load_roundtrip(setup, tmp_path):
    _, _, feats, tasks, target = setup
    meta = _meta(feats).meta_fit(tasks)
    meta.save(tmp_path / "m.pt")
    back = _meta(feats).load(tmp_path / "m.pt")
    shots = np.arange(20)
    np.testing.assert_allclose(meta.adapt(shots, target[shots]).predict(range(len(feats))),
                               back.adapt(shots, target[shots]).predict(range(len(feats))))


def test_bad_shots(setup):
    _, _, feats, tasks, target = setup
    meta = _meta(feats)
    with pytest.raises(MetaError, match="meta_fit first"):
        meta.adapt([0, 1, 2, 3, 4], target[:5])
    meta.meta_fit(tasks)
    with pytest.raises(MetaError, match="at least 5"):
        meta.adapt([0, 1, 2], target[:3])
    with pytest.raises(MetaError, match="outside the table"):
        meta.adapt([0, 1, 2, 3, len(feats) + 7], target[:5])
    bad = target[:6].copy()
    bad[2] = np.nan
    with pytest.raises(MetaError, match="finite and positive"):
        meta.adapt(range(6), bad)
    with pytest.raises(MetaError, match="finite and positive"):
        meta.adapt(range(6), -target[:6])
    with pytest.raises(MetaError, match="unknown algo"):
        MetaLatencyPredictor(feats, algo="sgd")
    with pytest.raises(MetaError, match="at least one task"):
        _meta(feats).meta_fit([])


def test_plan_shots(setup):
    _, _, feats, _, _ = setup
    plan = plan_shots(feats, 12, [7, 3], seed=4)
    assert plan[:2].tolist() == [7, 3] and len(set(plan.tolist())) == 12
    np.testing.assert_array_equal(plan, plan_shots(feats, 12, [7, 3], seed=4))
    # fewer shots than the reference set: its first ones, in order
    assert plan_shots(feats, 1, [7, 3]).tolist() == [7]
    with pytest.raises(MetaError, match="at least one"):
        plan_shots(feats, 0, [7, 3])
    with pytest.raises(MetaError, match="only"):
        plan_shots(feats, len(feats) + 1, [])
    # designs over fewer principal components of the sources, or with the structure added
    for kw in ({"components": 2}, {"structure": True}, {"components": 2, "structure": True}):
        other = plan_shots(feats, 12, [7, 3], seed=4, **kw)
        assert other[:2].tolist() == [7, 3] and len(set(other.tolist())) == 12
        np.testing.assert_array_equal(other, plan_shots(feats, 12, [7, 3], seed=4, **kw))
    assert plan_shots(feats, 12, [7, 3], seed=4, components=2).tolist() != plan.tolist()


def test_public_nb201_transfer(public_data):
    """Ridge-adapted transfer to eyeriss from HELP's nb201 train devices beats FLOPs (0.54)."""
    import json
    import warnings

    from hwnas.bench import load_tables

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        t = load_tables("nb201", public_data)
    train = ["1080ti_1", "1080ti_32", "1080ti_256", "silver_4114", "silver_4210r", "samsung_a50",
             "pixel3", "essential_ph_1", "samsung_s7"]
    src = t.latency[train].to_numpy()
    feats = LatencyFeatures(src, onehot_features(t.space, t.archs),
                            structure_features(t.space, t.archs), train)
    ref = json.loads((public_data / "help_reference_architectures.json").read_text())["nb201"]
    meta = MetaLatencyPredictor(feats, reference=ref, meta_steps=3, seed=0).meta_fit(
        [LatencyTask(d, src[:, j], j) for j, d in enumerate(train)])
    y = t.latency["eyeriss"].to_numpy()
    shots = plan_shots(feats, 20, ref, seed=0)
    pred = meta.adapt(shots, y[shots]).predict(range(len(t)))
    rest = np.setdiff1d(np.arange(len(t)), shots)
    assert spearmanr(pred[rest], y[rest])[0] > 0.9


def test_fbnet_structure_counts_the_network_macs():
    # the per-layer MACs and parameters add up to the built network's, up to the stem and the
    # head, which every FBNet architecture shares: the same offset for any two architectures
    from hwnas.search.spaces.stats import model_stats

    space = get_space("fbnet")
    archs = space.sample_batch(2, 1)
    f = structure_features(space, archs)
    stats = [model_stats(space, a) for a in archs]
    macs_off = [s.flops_m * 1e6 - np.exp(row[-2]) for s, row in zip(stats, f, strict=True)]
    params_off = [s.params - np.exp(row[-1]) for s, row in zip(stats, f, strict=True)]
    assert macs_off[0] == pytest.approx(macs_off[1], abs=64)
    assert params_off[0] == pytest.approx(params_off[1], abs=64)
