"""Operator LUT: kernel enumeration (by hand and against ONNX Runtime's optimised graph), kernel
models, a LUT built with a tiny protocol, save/load, the metric source."""

from __future__ import annotations

import dataclasses
import json
import math
from collections import Counter

import numpy as np
import pandas as pd
import pytest

from hwnas.latency import MeasurementProtocol, RuntimeConfig, export_onnx
from hwnas.latency.lut import (
    KERNEL_COLUMNS,
    Kernel,
    LUTError,
    LUTLatency,
    OperatorLUT,
    _fit_affine,
    build_lut,
    graph_kernels,
    kernel_model,
    kernels,
    list_lut_spaces,
    measure_kernels,
    measure_networks,
    network_timer,
)
from hwnas.search import get_space

S = get_space("nb201")
STAGES = ((16, 32), (32, 16), (64, 8))  # (channels, resolution)
TINY = MeasurementProtocol(warmup_runs=2, min_runs=5, max_runs=5, chunk=5, rounds=1)


def cell(*ops: str):
    e = list(ops)
    return S.parse(f"|{e[0]}~0|+|{e[1]}~0|{e[2]}~1|+|{e[3]}~0|{e[4]}~1|{e[5]}~2|")


ALL_SKIP = cell(*["skip_connect"] * 6)
ALL_CONV3 = cell(*["nor_conv_3x3"] * 6)


def count(ks: Counter[Kernel], **where) -> int:
    return sum(n for k, n in ks.items() if all(getattr(k, f) == v for f, v in where.items()))


# ---------------------------------------------------------------------- enumeration by hand
def test_all_skip_cell_runs_no_convolution_in_cells():
    ks = kernels(S, ALL_SKIP)
    for c, hw in STAGES:
        # cell convs would be C->C at the stage's resolution; only a reduction's conv_b is (C>16)
        assert count(ks, op="conv", c_in=c, c_out=c, h=hw) == (c > 16)
        # node 2 = x + x; node 3 = (x + x) + node 2, whose first sum CSE merges with node 2
        assert count(ks, op="add", c_in=c, h=hw) == 2 * 5
    # stem, and conv_a + conv_b (the residual Add fused as its Sum) + downsample per reduction
    assert count(ks, op="conv") == 1 + 2 * 3
    assert count(ks, op="conv", fused="sum") == 2
    assert count(ks, op="mul") == 0 and count(ks, op="avgpool", kernel=3) == 0


@pytest.mark.parametrize("seed", range(6))
def test_conv_counts_per_stage_follow_the_cell(seed):
    arch = S.sample(seed)
    ops = S.values(arch)
    ks = kernels(S, arch)
    for c, hw in STAGES:
        reduction = c > 16  # the reduction's conv_b is a 3x3 C->C conv of the stage too
        assert count(ks, op="conv", kernel=3, stride=1, c_in=c, c_out=c, h=hw) == \
            5 * ops.count("nor_conv_3x3") + reduction
        assert count(ks, op="conv", kernel=1, c_in=c, c_out=c, h=hw) == \
            5 * ops.count("nor_conv_1x1")


def test_all_conv3x3_cell_shares_relus_and_fuses():
    # Per cell: ReLU(node) is shared by the node's conv edges (CSE), so ReLU-of-node-1 is the only
    # use of conv 0->1: fused as its activation ("relu"). Node 2 = conv 0->2 + conv 1->2: the Add
    # becomes the first conv's Sum, then ReLU(node 2) its activation ("sum+relu"), the other conv
    # stays plain. Node 3 = (conv 0->3 + conv 1->3) + conv 2->3: 0->3 takes 1->3 as Sum ("sum"),
    # 2->3 takes that ("sum"), plus the next cell's ReLU ("sum+relu") unless the cell is a stage's
    # last (its output also feeds the reduction's pool, or the head's BatchNorm). A reduction's
    # conv_b takes the downsample as Sum and the next cell's ReLU ("sum+relu").
    ks = kernels(S, ALL_CONV3)
    for c, hw in STAGES:
        conv3 = {f: count(ks, op="conv", kernel=3, stride=1, c_in=c, c_out=c, h=hw, fused=f)
                 for f in ("", "relu", "sum", "sum+relu")}
        reduction = c > 16
        assert conv3 == {"": 5 * 2, "relu": 5, "sum": 5 + 1, "sum+relu": 5 + 4 + reduction}
        assert count(ks, op="relu", c_in=c, h=hw) == (c < 64)  # the reductions' input ReLU
        assert count(ks, op="mul") == count(ks, op="add") == 0
    assert count(ks, op="conv", c_in=3, fused="relu") == 1  # the stem feeds cell 0's ReLU only


def test_symmetric_permutation_gives_the_same_kernels():
    # node 1 = skip(node 0), so edges 0->2 and 1->2 (and 0->3, 1->3) read the same tensor
    a = cell("skip_connect", "nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1", "avg_pool_3x3",
             "nor_conv_1x1")
    b = cell("skip_connect", "avg_pool_3x3", "nor_conv_3x3", "avg_pool_3x3", "nor_conv_1x1",
             "nor_conv_1x1")
    assert a != b
    assert kernels(S, a) == kernels(S, b)


@pytest.mark.parametrize("arch", [
    ALL_SKIP,
    cell("nor_conv_3x3", "none", "nor_conv_1x1", "skip_connect", "avg_pool_3x3", "nor_conv_3x3"),
    # node 1's only use is one (CSE-merged) Mul by zero: folded into the conv (ConvMulFusion)
    cell("nor_conv_3x3", "avg_pool_3x3", "none", "skip_connect", "none", "skip_connect"),
    # the last cell's output is NCHW: the head stays BatchNorm + ReLU + NCHW global pool
    cell("nor_conv_1x1", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3", "none", "none"),
], ids=["skip", "mixed", "conv-mul", "nchw-head"])
def test_enumeration_matches_onnxruntime_graph(arch):
    assert kernels(S, arch) == graph_kernels(export_onnx(S, arch), RuntimeConfig())


def test_unknown_space_is_refused_with_the_supported_ones():
    fb = get_space("fbnet")
    with pytest.raises(LUTError, match="nb201"):
        kernels(fb, fb.sample(0))
    assert "nb201" in list_lut_spaces()


# ---------------------------------------------------------------------- kernel models
@pytest.mark.parametrize("kernel", [
    Kernel("conv", 16, 16, 32, 32, 3, 1, "sum+relu"),
    Kernel("conv", 3, 16, 32, 32, 3, 1),
    Kernel("conv", 16, 32, 32, 32, 3, 2, "relu"),
    Kernel("avgpool", 32, 32, 16, 16, 3, 1),
    Kernel("gap_nchwc", 64, 64, 8, 8),
    Kernel("mul", 64, 64, 8, 8),
    Kernel("gemm", 64, 10, 1, 1),
])
def test_kernel_models_run_as_written(kernel):
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    for copies in (1, 3):
        model = kernel_model(kernel, copies)
        assert sum(n.op_type == _onnx_op(kernel) for n in model.graph.node) == copies
        sess = ort.InferenceSession(model.SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        shape = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
        (y,) = sess.run(None, {"x": np.ones(shape, np.float32)})
        oh, ow = kernel.out_hw
        assert y.shape[:2] == (1, kernel.c_out) and y.shape[2:] in ((oh, ow), ())
        assert np.isfinite(y).all()


def _onnx_op(kernel: Kernel) -> str:
    return {"conv": "Conv", "avgpool": "AveragePool", "gap_nchwc": "GlobalAveragePool",
            "mul": "Mul", "gemm": "Gemm"}[kernel.op]


def test_affine_fit_recovers_a_line_despite_one_outlier():
    sums = np.linspace(1, 5, 12)
    y = 1.2 * sums + 0.3
    y[3] *= 1.5  # a network caught in the host's slow state
    a, b = _fit_affine(sums, y)
    assert a == pytest.approx(1.2, rel=1e-3) and b == pytest.approx(0.3, abs=1e-3)


# ---------------------------------------------------------------------- a whole LUT
@pytest.fixture(scope="module")
def lut(tmp_path_factory: pytest.TempPathFactory) -> OperatorLUT:
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HWNAS_CACHE", str(tmp_path_factory.mktemp("lut_cache")))
        # calibration networks spanning the range, so a tiny protocol still fits a sane line;
        # unpaired to keep the test quick (paired timing: test_paired_kernel_timing)
        return build_lut(S, protocol=TINY, calibration_archs=[ALL_SKIP, S.sample(3), ALL_CONV3],
                         kernel_archs=[S.sample(4)], paired=False)


def test_lut_predictions_are_finite_positive_and_ordered(lut):
    pred = lut.predict([ALL_SKIP, ALL_CONV3, S.sample(4)])
    assert np.isfinite(pred).all() and (pred > 0).all()
    assert pred[1] > pred[0]
    assert (lut.table["latency_ms"] >= 0).all()
    assert list(lut.table.columns[: len(KERNEL_COLUMNS)]) == list(KERNEL_COLUMNS)
    assert lut.table.duplicated(list(KERNEL_COLUMNS)).sum() == 0
    meta = lut.metadata
    assert meta["protocol"]["min_runs"] == 5 and meta["runtime_config"]["intra_op_threads"] == 1
    assert meta["paired_reference"] is None and meta["session_overhead_ms"] > 0
    assert len(meta["calibration"]["measured_ms"]) == 3
    assert "cpu_model" in meta["environment"]


def test_missing_kernel_predicts_nan(lut):
    # an architecture whose kernels were not all measured (the table is partial here)
    missing = next(a for a in S.sample_batch(200, rng=9)
                   if any(k not in lut._lookup for k in kernels(S, a)))
    assert math.isnan(lut.predict([missing])[0])


def test_save_load_round_trip(lut, tmp_path):
    folder = lut.save(tmp_path / "lut")
    assert sorted(p.name for p in folder.iterdir()) == ["kernels.csv", "lut.json"]
    back = OperatorLUT.load(folder)
    archs = [ALL_SKIP, ALL_CONV3, S.sample(4)]
    np.testing.assert_array_equal(back.predict(archs), lut.predict(archs))
    assert back.coef_ == lut.coef_
    pd.testing.assert_frame_equal(back.table, lut.table, check_dtype=False)
    assert back.metadata["calibration"] == lut.metadata["calibration"]
    with pytest.raises(LUTError, match="cannot read"):
        OperatorLUT.load(tmp_path / "nowhere")


def test_metric_source(lut):
    source = LUTLatency(lut)
    assert source.name == "lut:ort-cpu" and source.unit == "ms"
    out = source.evaluate([ALL_SKIP, ALL_CONV3])
    assert out.shape == (2,) and source.calls == 2
    assert LUTLatency(lut, device="epyc").name == "lut:epyc"


def test_paired_kernel_timing():
    reference = network_timer(S, ALL_SKIP)
    wanted = [Kernel("relu", 16, 16, 32, 32), Kernel("conv", 32, 64, 16, 16, 3, 2, "relu")]
    table, info = measure_kernels(wanted, protocol=TINY, reference=reference)
    assert info["reference_ms"] > 0 and info["session_overhead_ms"] > 0
    assert list(table["method"]) == ["fan-out", "chain"]  # sorted: the conv first
    assert (table["latency_ms"] >= 0).all() and table["ci_ms"].notna().all()
    assert measure_networks(S, [ALL_SKIP], protocol=TINY, reference=reference,
                            reference_ms=2.0, all_rounds=True).shape == (1, 1)


def test_build_refuses_unsupported_settings():
    with pytest.raises(LUTError, match="optimisation"):
        build_lut(S, RuntimeConfig(graph_optimization="basic"), TINY, calibration_archs=2)
    with pytest.raises(LUTError, match="calibration"):
        build_lut(S, protocol=TINY, calibration_archs=[ALL_SKIP])


def test_kernel_universe_is_cached_on_disk_and_covers_the_space(nb201_universe_cached):
    from hwnas.latency.lut import kernel_universe

    universe = kernel_universe(S)
    assert [dataclasses.asdict(k) for k in universe] == json.loads(
        nb201_universe_cached.read_text())
    assert universe == sorted(set(universe)) and len(universe) > 20
    for arch in S.sample_batch(50, rng=1):
        assert set(kernels(S, arch)) <= set(universe)
