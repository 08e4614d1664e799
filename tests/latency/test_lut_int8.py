"""Operator LUT for the INT8 runtime (``ort-cpu-int8``): kernels read from ONNX Runtime's optimised
graph of a real quantized NB201 network, INT8 kernel models, a LUT built with a tiny protocol, and
the table's runtime and precision guarding its use."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hwnas.latency import MeasurementProtocol
from hwnas.latency.kernels_int8 import INT8_OPS, int8_input_shape, int8_kernel_model
from hwnas.latency.lut import LUTError, OperatorLUT, build_lut, kernels
from hwnas.latency.quantize import quantize_onnx
from hwnas.search import get_space

S = get_space("nb201")
TINY = MeasurementProtocol(warmup_runs=2, min_runs=5, max_runs=5, chunk=5, rounds=1)
REPO = Path(__file__).resolve().parents[2]
FP32_LUT = REPO / "results" / "benchmarks" / "lut_nb201"  # a real FP32 table, committed
# small networks (quantizing takes seconds each): every cell op kind between them
ARCHS = [S.parse("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|skip_connect~0|"
                 "skip_connect~1|skip_connect~2|"),
         S.parse("|avg_pool_3x3~0|+|none~0|nor_conv_1x1~1|+|skip_connect~0|none~1|"
                 "nor_conv_3x3~2|")]


@pytest.fixture(scope="module")
def int8_cache(tmp_path_factory: pytest.TempPathFactory):
    """One cache for the module, so that each network is quantized once."""
    folder = tmp_path_factory.mktemp("int8_cache")
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HWNAS_CACHE", str(folder))
        for arch in ARCHS:
            quantize_onnx(S, arch)
        yield folder


@pytest.fixture
def cache(int8_cache: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setenv("HWNAS_CACHE", str(int8_cache))
    return int8_cache


def test_enumeration_of_a_quantized_network_finds_integer_kernels(cache):
    arch = ARCHS[1]
    ks = kernels(S, arch, "int8")
    ops = {k.op for k in ks}
    assert ops <= INT8_OPS
    # what ORT runs: integer pools, adds, the zero-multiply (left in float by the recipe: OpenVINO
    # cannot compile a quantized multiply by zero), head and classifier, and the
    # quantize/dequantize boundaries between them
    assert {"qavgpool", "qadd", "mul_f32", "qgap", "qgemm", "quantize", "dequantize"} <= ops
    assert sum(n for k, n in ks.items() if k.op == "qgemm") == 1
    # every Conv of the QDQ model is either fused into a QLinearConv or stays an FP32 Conv on
    # dequantized weights: none disappears, none is counted twice
    qdq = onnx.load(str(quantize_onnx(S, arch)))
    convs = sum(n.op_type == "Conv" for n in qdq.graph.node)
    assert sum(n for k, n in ks.items() if k.op in ("qconv", "conv_dq")) == convs
    assert any(k.op == "qconv" for k in ks)  # the stem reads the quantized input directly
    # the enumeration is kept on disk and read back equal
    assert list((cache / "lut" / "int8").glob("*.json"))
    assert kernels(S, arch, "int8") == ks
    with pytest.raises(LUTError, match="valid: fp32, int8"):
        kernels(S, arch, "fp16")


def test_float_nchwc_nodes_of_a_quantized_graph_are_fp32_kernels(cache):
    """With the recipe's float ``none`` edge, ORT runs some average pools of the quantized graph
    in float, in its NCHWc layout: they are read as the FP32 kernels they are, and timed by the
    FP32 kernel models."""
    from hwnas.latency.kernel_models import kernel_model

    arch = S.parse("|none~0|+|skip_connect~0|avg_pool_3x3~1|+|nor_conv_1x1~0|avg_pool_3x3~1|"
                   "avg_pool_3x3~2|")
    ks = kernels(S, arch, "int8")
    fp32 = {k for k in ks if k.op not in INT8_OPS}
    assert {"reorder_in", "reorder_out", "avgpool"} <= {k.op for k in fp32}
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    for kernel in sorted(fp32):
        sess = ort.InferenceSession(kernel_model(kernel).SerializeToString(), opts,
                                    providers=["CPUExecutionProvider"])
        x = np.zeros((1, kernel.c_in, kernel.h, kernel.w), np.float32)
        assert all(np.isfinite(o).all() for o in sess.run(None, {sess.get_inputs()[0].name: x}))


def test_int8_kernel_models_run_as_written(cache):
    opts = ort.SessionOptions()
    opts.graph_optimization_level = ort.GraphOptimizationLevel.ORT_DISABLE_ALL
    opts.log_severity_level = 3
    for kernel in sorted(kernels(S, ARCHS[1], "int8")):
        outs = []
        for copies in (1, 3):
            model = int8_kernel_model(kernel, copies)
            sess = ort.InferenceSession(model.SerializeToString(), opts,
                                        providers=["CPUExecutionProvider"])
            x = np.random.default_rng(0).standard_normal(int8_input_shape(kernel, 1))
            (y,) = sess.run(None, {"x": x.astype(np.float32)})
            outs.append(y.shape)
        assert outs[0] == outs[1], kernel
        assert (y.dtype == np.float32) == (kernel.op in ("dequantize", "conv_dq",
                                                          "batchnorm_dq", "mul_f32")), kernel


def test_int8_lut_predicts_and_records_its_runtime(cache, tmp_path):
    lut = build_lut(S, protocol=TINY, calibration_archs=ARCHS, copies=(1, 3), paired=False,
                    kernel_archs=ARCHS, runtime="ort-cpu-int8")
    assert lut.runtime == "ort-cpu-int8" and lut.precision == "int8"
    assert set(lut.table["op"]) <= INT8_OPS
    pred = lut.predict(ARCHS)
    assert np.isfinite(pred).all() and (pred > 0).all()
    meta = lut.metadata
    assert meta["runtime_info"]["runtime"] == "ort-cpu-int8"
    assert "static QDQ" in meta["runtime_info"]["quantization"]
    assert meta["kernel_session"]["copies"] == [1, 3]
    back = OperatorLUT.load(lut.save(tmp_path / "int8"), runtime="ort-cpu-int8")
    np.testing.assert_array_equal(back.predict(ARCHS), pred)
    # the INT8 table stands for nothing else
    with pytest.raises(LUTError) as err:
        OperatorLUT.load(tmp_path / "int8", runtime="ort-cpu")
    assert str(err.value) == ("this lookup table was built for runtime ort-cpu-int8 (int8), "
                              "not ort-cpu (fp32); build one with hwnas profile --lut "
                              "--runtime ort-cpu")


def test_fp32_lut_is_refused_for_int8():
    lut = OperatorLUT.load(FP32_LUT)  # built before INT8 tables existed: no runtime recorded
    assert lut.runtime == "ort-cpu" and lut.precision == "fp32"
    with pytest.raises(LUTError, match=r"built for runtime ort-cpu \(fp32\), not ort-cpu-int8 "
                                       r"\(int8\)"):
        OperatorLUT.load(FP32_LUT, runtime="ort-cpu-int8")
    with pytest.raises(LUTError, match="valid: ort-cpu, ort-cpu-int8"):
        build_lut(S, protocol=TINY, calibration_archs=ARCHS, runtime="ov-cpu-int8")


def test_profile_lut_int8_refuses_to_replace_an_fp32_table(capsys, tmp_path):
    from hwnas.bench.cli import main

    out = tmp_path / "lut"
    shutil.copytree(FP32_LUT, out)
    code = main(["profile", "--lut", "--space", "nb201", "--name", "x", "--runtime",
                 "ort-cpu-int8", "--out", str(out)])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1
    assert "built for runtime ort-cpu (fp32), not ort-cpu-int8 (int8)" in err
    assert sorted(p.name for p in out.iterdir()) == ["kernels.csv", "lut.json"]
