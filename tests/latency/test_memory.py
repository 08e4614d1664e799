"""Peak session memory, ONNX and weight bytes, energy sensing, and the store's resource table."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from hwnas.latency import (
    MeasurementProtocol,
    Profiler,
    ProfileStore,
    Target,
    export_onnx,
    get_runtime,
)
from hwnas.latency import memory as memmod
from hwnas.latency.energy import (
    EnergyUnsupportedError,
    energy_counter,
    energy_per_call_mj,
    energy_sensor,
)
from hwnas.latency.memory import (
    MemoryMeasurementError,
    MemoryProbe,
    initializer_bytes,
    onnx_file_bytes,
)
from hwnas.latency.resources import measure_resources
from hwnas.search import HwnasError, get_space

SPACE = get_space("nb201")
BIG = SPACE.parse("|nor_conv_3x3~0|+|nor_conv_3x3~0|nor_conv_3x3~1|+|nor_conv_3x3~0|"
                  "nor_conv_3x3~1|nor_conv_3x3~2|")
SMALL = SPACE.parse("|skip_connect~0|+|none~0|skip_connect~1|+|none~0|none~1|skip_connect~2|")
FAST = MeasurementProtocol(warmup_runs=2, min_runs=5, max_runs=10, rounds=1)


@pytest.fixture(scope="module")
def cache(tmp_path_factory) -> Path:
    """One export cache for the module: each network is exported once."""
    return tmp_path_factory.mktemp("onnx-cache")


@pytest.fixture(autouse=True)
def _shared_cache(cache, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(cache))


@pytest.mark.slow
def test_memory_orders_big_and_small_networks():
    with MemoryProbe() as probe:
        big = probe.measure(export_onnx(SPACE, BIG))
        small = probe.measure(export_onnx(SPACE, SMALL))
        again = probe.measure(export_onnx(SPACE, SMALL))
    assert small.peak_bytes > 0 and big.peak_bytes > small.peak_bytes
    # the all-conv cell holds ~5.8 MB more weights than the skip/none cell, and they are resident
    assert big.peak_mb - small.peak_mb > 4.0
    # a fresh fork each time: the same model measures the same to within a few pages
    assert abs(again.peak_mb - small.peak_mb) < 1.0
    assert big.method == memmod.METHOD


def test_sizes_match_the_file_on_disk_and_the_onnx_package():
    import onnx

    path = export_onnx(SPACE, BIG)
    assert onnx_file_bytes(path) == os.path.getsize(path)
    model = onnx.load(path)
    expected = sum(int(np.prod(t.dims)) * onnx.helper.tensor_dtype_to_np_dtype(t.data_type).itemsize
                   for t in model.graph.initializer)
    assert initializer_bytes(path) == expected
    # FP32: 4 bytes per stored parameter, and the file is those weights plus a small graph
    assert expected % 4 == 0 and expected < os.path.getsize(path) < 1.05 * expected


@pytest.mark.slow
def test_int8_weights_are_smaller_than_fp32():
    fp32 = measure_resources(get_runtime("ort-cpu"), SPACE, SMALL, None)
    int8 = measure_resources(get_runtime("ort-cpu-int8"), SPACE, SMALL, None)
    assert int8.weight_bytes < fp32.weight_bytes / 3  # S8 weights; scales and INT32 biases stay
    assert int8.onnx_bytes < fp32.onnx_bytes
    assert fp32.memory_mb is None  # no probe given: not measured


def test_memory_module_is_torch_free_and_runs_as_a_script(tmp_path):
    path = export_onnx(SPACE, SMALL)
    code = ("import runpy, sys; ns = runpy.run_path(sys.argv[1]); "
            "m = ns['MemoryProbe']().measure(sys.argv[2]); "
            "print(m.peak_bytes > 0, 'torch' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code, memmod.__file__, str(path)],
                         capture_output=True, text=True, timeout=120)
    assert out.stdout.split() == ["True", "False"], out.stderr
    script = subprocess.run([sys.executable, memmod.__file__, str(path)], capture_output=True,
                            text=True, timeout=120)
    record = json.loads(script.stdout)
    assert record["onnx_bytes"] == os.path.getsize(path)
    assert record["weight_bytes"] == initializer_bytes(path) and record["peak_bytes"] > 0
    bad = subprocess.run([sys.executable, memmod.__file__, str(tmp_path / "none.onnx")],
                         capture_output=True, text=True, timeout=120)
    assert bad.returncode == 2 and "no ONNX model" in bad.stderr


def test_openvino_memory_is_measured_in_openvino_and_orders_networks():
    pytest.importorskip("openvino")
    big, small = export_onnx(SPACE, BIG), export_onnx(SPACE, SMALL)
    with MemoryProbe() as probe:
        ov_big = probe.measure(big, runtime="openvino")
        ov_small = probe.measure(small, runtime="openvino")
        ort_small = probe.measure(small)  # the same server serves both runtimes
    assert ov_big.runtime == "openvino" and ov_big.method == memmod.METHOD_OPENVINO
    assert ort_small.runtime == "onnxruntime" and ort_small.method == memmod.METHOD
    # the all-conv cell's ~5.8 MB of extra weights are resident in OpenVINO too
    assert ov_big.peak_mb - ov_small.peak_mb > 4.0
    with MemoryProbe() as probe, pytest.raises(MemoryMeasurementError, match="valid: onnxruntime"):
        probe.measure(small, runtime="tensorrt")


def test_openvino_tables_describe_their_memory_method():
    pytest.importorskip("openvino")
    from hwnas.latency.resources import describe_resources, memory_unsupported_reason

    ov = get_runtime("ov-cpu")
    assert memory_unsupported_reason(ov) is None
    assert describe_resources(ov)["memory_mb"] == memmod.METHOD_OPENVINO
    assert describe_resources(get_runtime("ort-cpu"))["memory_mb"] == memmod.METHOD


def test_a_file_that_is_not_a_model_is_one_clear_error(tmp_path):
    junk = tmp_path / "junk.onnx"
    junk.write_bytes(b"\x0f\xff\xff")
    with pytest.raises(MemoryMeasurementError, match="not an ONNX model"):
        initializer_bytes(junk)
    with MemoryProbe() as probe, pytest.raises(MemoryMeasurementError, match="junk.onnx"):
        probe.measure(junk)
    assert issubclass(MemoryMeasurementError, HwnasError)


def test_energy_is_unsupported_with_a_reason_or_reads_above_zero():
    ok, why = energy_sensor()
    if not ok:
        assert why and "RAPL" in why and "NVML" in why and "INA" in why
        with pytest.raises(EnergyUnsupportedError, match="unsupported here"):
            energy_counter("cpu")
        return
    kind = "cpu" if why.startswith("RAPL") else "gpu"
    assert energy_per_call_mj(lambda: sum(range(10000)), energy_counter(kind), 0.2) > 0


def _old_store(directory: Path) -> None:
    """A store as written before the resource table existed (its schema at the time)."""
    directory.mkdir(parents=True)
    con = sqlite3.connect(directory / "profile.sqlite")
    con.executescript("""
        CREATE TABLE measurement (
            arch TEXT NOT NULL, idx INTEGER, round INTEGER NOT NULL, status TEXT NOT NULL,
            median_ms REAL, p10_ms REAL, p90_ms REAL, iqr_ms REAL, cv REAL, n INTEGER,
            ci_rel REAL, converged INTEGER, samples TEXT, error TEXT, measured_at TEXT NOT NULL,
            seconds REAL, ref_ms REAL, ratio REAL, PRIMARY KEY (arch, round));
        CREATE TABLE reference (seq INTEGER PRIMARY KEY AUTOINCREMENT, round INTEGER NOT NULL,
            position INTEGER NOT NULL, median_ms REAL NOT NULL, measured_at TEXT NOT NULL);
        CREATE TABLE settings (key TEXT PRIMARY KEY, value TEXT NOT NULL);
    """)
    con.execute("INSERT INTO measurement (arch, idx, round, status, median_ms, p10_ms, p90_ms, "
                "iqr_ms, cv, n, measured_at, ref_ms, ratio) VALUES (?, 7, 1, 'ok', 2.0, 1.9, "
                "2.1, 0.1, 0.05, 10, '2026-01-01', 1.0, 2.0)", (SPACE.format(SMALL),))
    con.commit()
    con.close()


def test_an_old_store_migrates_and_its_table_gets_the_columns(tmp_path):
    out = tmp_path / "dev"
    _old_store(out)
    profiler = Profiler(SPACE, get_runtime("ort-cpu"), FAST, out, "cpu")
    with ProfileStore(out) as store:  # opening adds the resource table, keeps the rows
        assert len(store.measurements()) == 1 and store.resources().empty
        table = profiler.write(store)
    assert table.frame["memory_mb"].isna().all()  # measured before memory was: missing
    # a new architecture is measured with its resources, and the old one gets them too
    table = profiler.run([Target(SMALL, 7), Target(BIG)])
    frame = table.frame.set_index("arch")
    with ProfileStore(out) as store:  # the old architecture was not timed again
        assert (store.measurements()["arch"] == SPACE.format(SMALL)).sum() == 1
    assert 0 < frame.loc[SPACE.format(SMALL), "memory_mb"] < frame.loc[SPACE.format(BIG),
                                                                       "memory_mb"]
    assert frame.loc[SPACE.format(BIG), "onnx_bytes"] == os.path.getsize(export_onnx(SPACE, BIG))
    csv = pd.read_csv(out / "latency_ms.csv")
    assert {"memory_mb", "onnx_bytes", "weight_bytes"} <= set(csv.columns)
    meta = json.loads((out / "meta.json").read_text())
    assert "VmHWM" in meta["resources"]["memory_mb"]
    assert meta["resources"]["energy"].startswith(("unsupported here", "readable here"))
