"""Loading, validating and querying benchmark tables (made-up tables; public ones where present)."""

from __future__ import annotations

import shutil
import warnings

import numpy as np
import pandas as pd
import pytest

from hwnas.bench import StatsCache, TableWarning, load_tables
from hwnas.search import (
    DataNotFoundError,
    NotInTableError,
    TableError,
    UnknownNameError,
    get_space,
)


def test_load_and_query_vectorised(synthetic_data):
    t = load_tables("nb201", synthetic_data)
    table = pd.read_csv(synthetic_data / "nb201" / "architectures.csv")
    lat = pd.read_csv(synthetic_data / "nb201" / "latency_ms.csv")
    assert len(t) == 15625 and t.tasks == ["cifar10_test_200ep"] and t.devices == ["dev_a", "dev_b"]
    idx = np.array([5, 0, 15624, 5])
    np.testing.assert_array_equal(t.get_accuracy("cifar10_test_200ep", idx),
                                  table["cifar10_test_200ep"].to_numpy()[idx])
    np.testing.assert_array_equal(t.get_latency("dev_b", idx), lat["dev_b"].to_numpy()[idx])
    arch = get_space("nb201").parse(table["arch"][42])
    assert t.index_of(arch) == 42 and t.arch_at(42) == arch
    assert t.row(42)["latency_ms"] == {"dev_a": lat["dev_a"][42], "dev_b": lat["dev_b"][42]}


def test_bad_names_and_indices(synthetic_data):
    t = load_tables("nb201", synthetic_data)
    with pytest.raises(UnknownNameError, match="valid: dev_a, dev_b"):
        t.get_latency("pixel9", [0])
    with pytest.raises(UnknownNameError, match="valid: cifar10_test_200ep"):
        t.get_accuracy("cifar11", [0])
    with pytest.raises(NotInTableError, match=r"index 15625 out of range; valid: 0..15624"):
        t.get_latency("dev_a", [1, 15625])
    with pytest.raises(NotInTableError, match="out of range"):
        t.arch_at(-1)
    with pytest.raises(UnknownNameError, match="unknown space 'nb301'"):
        load_tables("nb301", synthetic_data)


def test_bundled_by_default_and_a_bad_override_says_where_it_looked(tmp_path, monkeypatch):
    assert load_tables("nb201").origin == "bundled"
    monkeypatch.setenv("HWNAS_DATA", str(tmp_path / "nope"))
    with pytest.raises(DataNotFoundError, match="HWNAS_DATA points at"):
        load_tables("nb201")
    monkeypatch.delenv("HWNAS_DATA")
    with pytest.raises(DataNotFoundError, match="not a directory"):
        load_tables("nb201", tmp_path / "nope")
    with pytest.raises(DataNotFoundError, match="holds none of"):
        load_tables("nb201", tmp_path)


def _copy(src, dst):
    shutil.copytree(src / "nb201", dst / "nb201")
    return dst


def test_nan_and_non_positive_latencies_are_reported_not_dropped(synthetic_data, tmp_path):
    root = _copy(synthetic_data, tmp_path)
    lat = pd.read_csv(root / "nb201" / "latency_ms.csv")
    lat.loc[3, "dev_a"] = np.nan
    lat.loc[[4, 5], "dev_b"] = [0.0, -1.0]
    lat.to_csv(root / "nb201" / "latency_ms.csv", index=False)
    with pytest.warns(TableWarning) as record:
        t = load_tables("nb201", root)
    messages = " / ".join(str(w.message) for w in record)
    assert "dev_a: 1 missing values" in messages
    assert "dev_b: 2 non-positive latencies" in messages
    assert len(t) == 15625
    assert np.isnan(t.get_latency("dev_a", [3]))[0]
    np.testing.assert_array_equal(t.get_latency("dev_b", [4, 5]), [0.0, -1.0])
    assert "dev_a" not in t.row(3)["latency_ms"]


@pytest.mark.parametrize(("damage", "message"), [
    (lambda d: (d / "nb201" / "latency_ms.csv").unlink(), "missing table"),
    (lambda d: (d / "nb201" / "latency_ms.csv").write_text("index,dev\n0,1\n"), "1 rows"),
    (lambda d: (d / "nb201" / "latency_ms.csv").write_bytes(b"\x00\xff\x00garbage"), "cannot read"),
    (lambda d: (d / "nb201" / "latency_ms.csv").write_text(""), "cannot read"),
    (lambda d: pd.read_csv(d / "nb201" / "architectures.csv").drop(columns="arch").to_csv(
        d / "nb201" / "architectures.csv", index=False), "missing column"),
    (lambda d: pd.read_csv(d / "nb201" / "architectures.csv").assign(
        index=lambda x: x["index"] + 1).to_csv(d / "nb201" / "architectures.csv", index=False),
     "must run 0..15624"),
    (lambda d: pd.read_csv(d / "nb201" / "architectures.csv").assign(
        arch=lambda x: x["arch"].where(x.index != 7, "|bad~0|")).to_csv(
        d / "nb201" / "architectures.csv", index=False), "row 7"),
])
def test_corrupt_tables_raise_one_clear_error(synthetic_data, tmp_path, damage, message):
    root = _copy(synthetic_data, tmp_path)
    damage(root)
    with pytest.raises(TableError, match=message):
        load_tables("nb201", root)


def test_stats_cache_computes_once(tmp_path, monkeypatch):
    space = get_space("nb201")
    archs = space.sample_batch(3, rng=0)
    cache = StatsCache(tmp_path / "stats.sqlite")
    first = cache.get_many(space, [*archs, archs[0]])
    assert first[0] == first[3] and first[0].params > 0 and first[0].flops_m > 0

    def boom(*a, **k):
        raise AssertionError("recomputed a cached entry")

    monkeypatch.setattr("hwnas.bench.cache.model_stats", boom)
    assert StatsCache(tmp_path / "stats.sqlite").get_many(space, archs) == first[:3]
    assert cache.get(space, archs[1]) == first[1]


def test_public_tables_load_clean(public_data):
    for name, rows in (("nb201", 15625), ("fbnet", 5000), ("ofa", 5000)):
        with warnings.catch_warnings():
            warnings.simplefilter("error", TableWarning)
            t = load_tables(name, public_data)
        assert len(t) == rows and not t.issues
        assert len(set(t.archs)) == rows
        assert (t.latency.to_numpy() > 0).all()
    nb = load_tables("nb201", public_data)
    assert nb.get_latency("raspi4", [0])[0] == pytest.approx(10.482)  # as in HW-NAS-Bench
    assert {"titan_rtx_256", "gold_6226", "fpga", "pixel2", "raspi4", "eyeriss"} <= set(nb.devices)


def test_fbnet_arch_outside_the_table_says_so(public_data):
    t = load_tables("fbnet", public_data)
    space = get_space("fbnet")
    outside = next(a for a in space.sample_batch(50, rng=1) if a not in set(t.archs))
    with pytest.raises(NotInTableError, match="valid architecture but not one of the 5000"):
        t.index_of(outside)
