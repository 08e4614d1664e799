"""INT8 (ONNX Runtime QDQ) and OpenVINO runtimes on real NB201 networks and real digit inputs."""

from __future__ import annotations

import collections
import importlib.util

import numpy as np
import onnx
import onnxruntime as ort
import pytest

from hwnas.latency import MeasurementProtocol, export_onnx, get_runtime, measure
from hwnas.latency.quantize import Calibration, calibration_images, quantize_onnx
from hwnas.search import get_space

ARCHS = [
    "|nor_conv_3x3~0|+|nor_conv_3x3~0|skip_connect~1|+|avg_pool_3x3~0|nor_conv_1x1~1|nor_conv_3x3~2|",
    "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
]
HAS_OV = importlib.util.find_spec("openvino") is not None


def test_int8_agrees_with_fp32_on_real_inputs(tmp_path):
    space = get_space("nb201")
    arch = space.parse(ARCHS[0])
    fp32 = export_onnx(space, arch, 1, cache_dir=tmp_path)
    q = quantize_onnx(space, arch, 1, cache_dir=tmp_path)
    assert quantize_onnx(space, arch, 1, cache_dir=tmp_path) == q  # cached
    x = calibration_images((3, 32, 32), Calibration(images=32, seed=1))
    a, b = (ort.InferenceSession(str(p), providers=["CPUExecutionProvider"]) for p in (fp32, q))
    ya = np.concatenate([a.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    yb = np.concatenate([b.run(None, {"x": x[i:i + 1]})[0] for i in range(len(x))])
    rel = np.abs(ya - yb).max() / np.abs(ya).max()
    assert rel < 0.25, rel
    assert not list(tmp_path.rglob("*.tmp"))
    # every convolution runs in INT8: none left in float between Dequantize/QuantizeLinear
    # (the exporter's Identity-shared biases made ONNX Runtime keep most of them in float)
    opts = ort.SessionOptions()
    opts.optimized_model_filepath = str(tmp_path / "optimized.onnx")
    ort.InferenceSession(str(q), opts, providers=["CPUExecutionProvider"])
    ops = collections.Counter(n.op_type for n in onnx.load(str(tmp_path / "optimized.onnx")
                                                           ).graph.node)
    convs = sum(n.op_type == "Conv" for n in onnx.load(str(fp32)).graph.node)
    assert ops["QLinearConv"] == convs and ops["Conv"] == 0, ops


@pytest.mark.parametrize("name", ["ort-cpu-int8", "ov-cpu", "ov-cpu-int8"])
def test_runtime_measures_real_networks(name):
    if name.startswith("ov") and not HAS_OV:
        pytest.skip("openvino is not installed")
    rt = get_runtime(name)
    assert rt.available() == (True, "")
    space = get_space("nb201")
    proto = MeasurementProtocol(min_runs=5, max_runs=5, warmup_runs=2, rounds=1)
    for text in ARCHS:
        m = measure(rt.timer(space, space.parse(text)), proto)
        assert m.median_ms > 0
    info = rt.describe()
    assert info["runtime"] == name and info["intra_op_threads"] == 1
    assert rt.precision == ("int8" if name.endswith("int8") else "fp32")
