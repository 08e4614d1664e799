"""Saved predictor state is plain checked arrays: a planted pickle never runs, a corrupt or foreign
cache entry is rebuilt, a round trip predicts the same; the shared base's contract and checks."""

from __future__ import annotations

import io
import os
import pickle
import warnings
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from hwnas.meta import CacheError, MetaError
from hwnas.meta.accuracy import AccuracyTask, MetaAccuracyPredictor
from hwnas.meta.accuracy_features import AccuracyFeatures
from hwnas.meta.accuracy_proxies import synflow
from hwnas.meta.encoders import onehot_features, structure_features
from hwnas.meta.latency import LatencyTask, MetaLatencyPredictor
from hwnas.meta.latency_features import LatencyFeatures, plan_shots
from hwnas.meta.state_io import read_state, write_state
from hwnas.search import HwnasError, get_space

N = 300


class _Payload:
    """Unpickling this creates ``marker``: the proof that a loader ran the file's code."""

    def __init__(self, marker: Path):
        self.marker = marker

    def __reduce__(self):
        return (Path.touch, (self.marker,))


@pytest.fixture(scope="module")
def latency_world():
    space = get_space("nb201")
    rng = np.random.default_rng(5)
    archs = list(dict.fromkeys(space.sample_batch(N + 50, rng)))[:N]
    genes = np.array([a.genes for a in archs])

    def device() -> np.ndarray:
        cost = np.concatenate([[0.0], rng.uniform(0.1, 2.0, 4)])
        return (1.0 + cost[genes].sum(1)) * np.exp(rng.normal(0, 0.02, len(genes)))

    src = np.stack([device() for _ in range(3)], 1)
    feats = LatencyFeatures(src, onehot_features(space, archs), structure_features(space, archs),
                            ["a", "b", "c"])
    tasks = [LatencyTask(d, src[:, j], j) for j, d in enumerate(feats.sources)]
    return feats, tasks, device()


@pytest.fixture(scope="module")
def accuracy_world():
    rng = np.random.default_rng(2)
    onehot = (rng.random((N, 12)) < 0.3).astype(np.float32)
    quality = rng.normal(size=N)
    src = np.column_stack([60 + 10 * quality + rng.normal(0, 2, N) for _ in range(3)])
    feats = AccuracyFeatures(src, onehot, onehot.reshape(N, 4, 3).sum(axis=2),
                             ["a_test", "b_test", "c_test"])
    tasks = [AccuracyTask(s, src[:, j], feats.hidden_for(s)) for j, s in enumerate(feats.sources)]
    return feats, tasks, 50 + 8 * quality + rng.normal(0, 1, N)


def _lat(feats, **kw) -> MetaLatencyPredictor:
    return MetaLatencyPredictor(feats, reference=range(4), meta_steps=3, n_query=80, seed=3, **kw)


def _plant_pickles(marker: Path) -> list[bytes]:
    """Both forms a pickle loader would run: a raw pickle and a torch.save (zip) archive."""
    buf = io.BytesIO()
    torch.save({"encoder": _Payload(marker)}, buf)
    return [pickle.dumps({"encoder": _Payload(marker)}), buf.getvalue()]


def _check_payloads_are_live(payloads: list[bytes], marker: Path) -> None:
    # the payload is real: a pickle loader does run it (so the tests below prove something)
    pickle.loads(payloads[0])
    assert marker.exists()
    marker.unlink()


@pytest.mark.parametrize("algo", ["ridge", "maml"])
def test_planted_pickle_at_the_cache_path_never_runs(latency_world, tmp_path, algo):
    feats, tasks, target = latency_world
    cache = tmp_path / "latency_meta" / "nb201-ridge-s3-0123456789abcdef.npz"
    marker = tmp_path / "PWNED"
    payloads = _plant_pickles(marker)
    _check_payloads_are_live(payloads, marker)
    shots = plan_shots(feats, 12, range(4), seed=0)
    fresh = _lat(feats, algo=algo).meta_fit(tasks).adapt(shots, target[shots]).predict(range(N))
    cache.parent.mkdir(parents=True)
    for payload in payloads:
        cache.write_bytes(payload)
        with pytest.raises(CacheError):
            _lat(feats, algo=algo).load(cache)
        with pytest.warns(UserWarning, match="ignoring the cached predictor"):
            meta = _lat(feats, algo=algo).meta_fit(tasks, cache=cache)
        assert not marker.exists()
        assert not meta.from_cache_
        np.testing.assert_array_equal(meta.adapt(shots, target[shots]).predict(range(N)), fresh)
        # the entry was rebuilt: the next run loads it (no warning) and predicts the same
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            again = _lat(feats, algo=algo).meta_fit(tasks, cache=cache)
        assert again.from_cache_
        np.testing.assert_array_equal(again.adapt(shots, target[shots]).predict(range(N)), fresh)
    assert not marker.exists()


def test_cli_refuses_a_planted_cache_file(synthetic_data, tmp_path, capsys):
    """``hwnas latency adapt`` end to end: the file it caches is replaced by a pickle payload;
    the next run ignores it (a warning), rebuilds it and writes the same table."""
    from hwnas.bench.cli import main

    plan = tmp_path / "plan.csv"
    args = ["--data", str(synthetic_data), "latency"]
    assert main([*args, "plan", "--space", "nb201", "--shots", "10", "--out", str(plan)]) == 0
    shots = pd.read_csv(plan)
    lat = pd.read_csv(synthetic_data / "nb201" / "latency_ms.csv").set_index("index")
    shots["latency_ms"] = lat.loc[shots["index"], "dev_a"].to_numpy() * 1.3
    shots.to_csv(plan, index=False)
    outs = [tmp_path / f"p{i}.csv" for i in range(3)]
    adapt = [*args, "adapt", "--space", "nb201", "--shots", str(plan), "--meta-steps", "1"]
    assert main([*adapt, "--out", str(outs[0])]) == 0
    (entry,) = (Path(os.environ["HWNAS_CACHE"]) / "latency_meta").iterdir()
    marker = tmp_path / "PWNED"
    for out, payload in zip(outs[1:], _plant_pickles(marker), strict=True):
        entry.write_bytes(payload)
        capsys.readouterr()
        assert main([*adapt, "--out", str(out)]) == 0
        err = capsys.readouterr().err
        assert "ignoring the cached predictor" in err and "Traceback" not in err
        assert not marker.exists()
        assert out.read_bytes() == outs[0].read_bytes()
    with zipfile.ZipFile(entry) as zf:  # the entry was rebuilt as a checked archive
        assert "__meta__.npy" in zf.namelist()


def _saved(latency_world, tmp_path) -> tuple[Path, bytes]:
    feats, tasks, _ = latency_world
    path = _lat(feats).meta_fit(tasks).save(tmp_path / "m.npz")
    return path, path.read_bytes()


@pytest.mark.parametrize("damage", ["truncated", "garbage", "empty", "flipped", "directory"])
def test_corrupt_cache_is_ignored_and_rebuilt(latency_world, tmp_path, damage):
    feats, tasks, target = latency_world
    path, good = _saved(latency_world, tmp_path)
    if damage == "truncated":
        path.write_bytes(good[: len(good) // 2])
    elif damage == "garbage":
        path.write_bytes(np.random.default_rng(0).bytes(5000))
    elif damage == "empty":
        path.write_bytes(b"")
    elif damage == "flipped":  # one byte inside a member's data: its CRC no longer matches
        raw = bytearray(good)
        raw[len(raw) // 2] ^= 0xFF
        path.write_bytes(bytes(raw))
    else:
        path.unlink()
        path.mkdir()
    with pytest.raises(CacheError):
        _lat(feats).load(path)
    with pytest.warns(UserWarning) as record:
        meta = _lat(feats).meta_fit(tasks, cache=path)
    said = [str(w.message) for w in record]
    assert any("rebuilding" in m for m in said), said
    if damage == "directory":  # a folder in the way: it cannot be replaced either (a warning)
        assert any("cannot write" in m for m in said) and path.is_dir()
        assert hasattr(meta, "embedding_")
        return
    shots = np.arange(10)
    np.testing.assert_array_equal(
        meta.adapt(shots, target[shots]).predict(range(N)),
        _lat(feats).meta_fit(tasks).adapt(shots, target[shots]).predict(range(N)))
    assert _lat(feats).meta_fit(tasks, cache=path).from_cache_


def test_foreign_entries_are_refused(latency_world, accuracy_world, tmp_path):
    """A valid file written for other arguments, other features, other tasks or the other kind
    of predictor is not used."""
    feats, tasks, _ = latency_world
    path, _ = _saved(latency_world, tmp_path)
    for other in (_lat(feats, embed_dim=4), _lat(feats, algo="maml"),
                  MetaLatencyPredictor(feats, reference=range(4), meta_steps=3, n_query=80,
                                       seed=4)):
        with pytest.raises(CacheError):
            other.load(path)
    shifted = LatencyFeatures(feats.source_latency_ms * 1.5 ** np.arange(1, 4), feats.onehot,
                              feats.structure ** 2, feats.sources)
    with pytest.raises(CacheError, match="features"):
        _lat(shifted).load(path)
    other_tasks = [LatencyTask(t.device, t.latency_ms * 2, t.source_column) for t in tasks]
    with pytest.warns(UserWarning, match="other tasks"):
        assert not _lat(feats).meta_fit(other_tasks, cache=path).from_cache_
    afeats, atasks, _ = accuracy_world
    apath = MetaAccuracyPredictor(afeats, meta_steps=2, n_query=50).meta_fit(atasks).save(
        tmp_path / "a.npz")
    with pytest.raises(CacheError):
        _lat(feats).load(apath)


def test_forged_archives_are_refused_before_reading_data(tmp_path):
    expected = {"w": (np.dtype("<f4"), (3, 2))}
    path = write_state(tmp_path / "ok.npz", {"w": np.ones((3, 2), np.float32)}, {"a": 1})
    arrays, meta = read_state(path, expected)
    assert arrays["w"].shape == (3, 2) and meta == {"a": 1}

    def forge(name: str, member: bytes) -> Path:
        out = tmp_path / name
        with zipfile.ZipFile(out, "w") as zf:
            zf.writestr("w.npy", member)
            zf.writestr("__meta__.npy", zipfile.ZipFile(path).read("__meta__.npy"))
        return out

    buf = io.BytesIO()
    np.save(buf, np.array([_Payload(tmp_path / "PWNED")], dtype=object), allow_pickle=True)
    with pytest.raises(CacheError, match="dtype"):
        read_state(forge("object.npz", buf.getvalue()), expected)
    assert not (tmp_path / "PWNED").exists()
    # a header that claims a vast array: refused on its shape, nothing allocated
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, {"descr": "<f4", "fortran_order": False,
                                                  "shape": (10**12, 2)})
    with pytest.raises(CacheError, match="shape"):
        read_state(forge("huge.npz", header.getvalue()), expected)
    buf = io.BytesIO()
    np.save(buf, np.full((3, 2), np.nan, np.float32))
    with pytest.raises(CacheError, match="non-finite"):
        read_state(forge("nan.npz", buf.getvalue()), expected)
    with pytest.raises(CacheError, match="not found"):
        read_state(tmp_path / "missing.npz", expected)


@pytest.mark.parametrize("algo", ["ridge", "maml", "metasgd"])
def test_round_trip_predicts_identically(latency_world, accuracy_world, tmp_path, algo):
    feats, tasks, target = latency_world
    meta = _lat(feats, algo=algo).meta_fit(tasks)
    back = _lat(feats, algo=algo).load(meta.save(tmp_path / "lat.npz"))
    shots = np.arange(12)
    np.testing.assert_array_equal(meta.adapt(shots, target[shots]).predict(range(N)),
                                  back.adapt(shots, target[shots]).predict(range(N)))
    assert back.history_ == meta.history_
    afeats, atasks, atarget = accuracy_world

    def acc(**kw):
        return MetaAccuracyPredictor(afeats, algo=algo, meta_steps=2, inner_steps=2,
                                     n_query=50, seed=1, **kw)

    ameta = acc().meta_fit(atasks)
    aback = acc().load(ameta.save(tmp_path / "acc.npz"))
    np.testing.assert_array_equal(ameta.adapt(shots, atarget[shots]).predict(range(N)),
                                  aback.adapt(shots, atarget[shots]).predict(range(N)))


def test_no_global_torch_seed(latency_world, accuracy_world):
    """Meta-training, adaptation and SynFlow leave the caller's global torch stream alone, and
    the predictions do not depend on it."""
    feats, tasks, target = latency_world
    afeats, atasks, _ = accuracy_world
    torch.manual_seed(123)
    expected = torch.rand(4)
    outs = []
    for seed in (123, 999):
        torch.manual_seed(seed)
        meta = _lat(feats, algo="metasgd").meta_fit(tasks)
        outs.append(meta.adapt(np.arange(10), target[:10]).predict(range(N)))
        MetaAccuracyPredictor(afeats, algo="maml", meta_steps=1, n_query=40).meta_fit(atasks)
        space = get_space("nb201")
        synflow(space, [space.sample(0)], seed=4)
        if seed == 123:
            assert torch.equal(torch.rand(4), expected)
    np.testing.assert_array_equal(outs[0], outs[1])


def test_sklearn_contract_and_uncertainty(latency_world, accuracy_world):
    feats, tasks, target = latency_world
    shots = plan_shots(feats, 12, range(4), seed=0)
    pred = _lat(feats).meta_fit(tasks).adapt(shots, target[shots])
    assert pred.fit(shots, target[shots]) is pred
    out, sd = pred.predict([3, 1, 2]), pred.predict_std([3, 1, 2])
    assert isinstance(out, np.ndarray) and out.shape == sd.shape == (3,)
    assert (sd > 0).all() and np.isfinite(sd).all()
    rest = np.setdiff1d(np.arange(N), shots)
    z = np.abs(np.log(pred.predict(rest)) - np.log(target[rest]))
    # the spread is an honest scale of the error: most errors within two predicted spreads
    assert np.mean(z <= 2 * np.log1p(pred.predict_std(rest) / pred.predict(rest))) > 0.5
    afeats, atasks, atarget = accuracy_world
    apred = MetaAccuracyPredictor(afeats, meta_steps=2, n_query=50).meta_fit(atasks).adapt(
        shots, atarget[shots])
    asd = apred.predict_std(np.arange(N))
    assert asd.shape == (N,) and (asd > 0).all()
    err = np.abs(apred.predict(rest) - atarget[rest])
    assert np.mean(err <= 2 * asd[rest]) > 0.5
    with pytest.raises(MetaError, match="fit first"):
        type(apred)(apred.meta).predict_std([0])


@pytest.mark.parametrize(("kwargs", "match"), [
    ({"meta_steps": -5}, "meta_steps must be an integer >= 0"),
    ({"seed": -1}, "seed must be an integer >= 0"),
    ({"seed": 1.5}, "seed"),
    ({"embed_dim": 0}, "embed_dim"),
    ({"meta_lr": float("nan")}, "meta_lr"),
    ({"temperature": 0}, "temperature"),
    ({"n_query": 0}, "n_query"),
    ({"inner_steps": True}, "inner_steps"),
])
def test_bad_arguments_are_hwnas_errors(latency_world, accuracy_world, kwargs, match):
    feats, _, _ = latency_world
    afeats, _, _ = accuracy_world
    for make in (lambda: MetaLatencyPredictor(feats, **kwargs),
                 lambda: MetaAccuracyPredictor(afeats, **kwargs)):
        with pytest.raises(HwnasError, match=match) as info:
            make()
        assert len(str(info.value).splitlines()) == 1


def test_bad_shots_and_tasks(latency_world, accuracy_world):
    feats, tasks, _ = latency_world
    afeats, atasks, _ = accuracy_world
    ameta = MetaAccuracyPredictor(afeats, candidates=("src@1",))
    for bad in (-50.0, 5000.0):
        y = np.full(8, 60.0) + np.arange(8)
        y[3] = bad
        with pytest.raises(HwnasError, match="outside 0..100"):
            ameta.adapt(np.arange(8), y)
    with pytest.raises(HwnasError, match="must be whole numbers"):
        ameta.adapt([0, 1, 2, 3, 4.5], np.arange(5.0) + 50)
    with pytest.raises(HwnasError, match="reference"):
        MetaLatencyPredictor(feats, reference=[0, N + 3])
    with pytest.raises(HwnasError, match="source_column"):
        _lat(feats).meta_fit([LatencyTask("x", tasks[0].latency_ms, 7)])
    with pytest.raises(HwnasError, match="hidden column"):
        MetaAccuracyPredictor(afeats, meta_steps=1).meta_fit(
            [AccuracyTask("x", atasks[0].accuracy, (9,))])
    with pytest.raises(HwnasError, match="seed"):
        synflow(get_space("nb201"), [], seed=-2)
