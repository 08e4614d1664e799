"""ONNX export and runtimes: real exports, real ONNX Runtime sessions; CUDA paths report
themselves unavailable on machines without a GPU."""

from __future__ import annotations

import numpy as np
import onnx
import pytest
import torch

from hwnas.latency import (
    ExportError,
    RuntimeConfig,
    RuntimeUnavailableError,
    export_onnx,
    get_runtime,
    list_runtimes,
    make_session,
)
from hwnas.search import HwnasError, UnknownNameError, get_space
from hwnas.search.spaces.nb201 import NB201Space

SMALL = {
    "nb201": "|nor_conv_1x1~0|+|none~0|skip_connect~1|+|avg_pool_3x3~0|none~1|nor_conv_3x3~2|",
    "fbnet": "-".join(["skip"] * 21 + ["k3_e1"]),
    "ofa": "r128|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3|k3e3-k3e3",
}


@pytest.mark.parametrize("name", list(SMALL))
def test_export_is_checked_and_cached(name, tmp_path):
    space = get_space(name)
    arch = space.parse(SMALL[name])
    path = export_onnx(space, arch, batch=2, cache_dir=tmp_path)
    onnx.checker.check_model(str(path))
    model = onnx.load(str(path))
    dims = [d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim]
    assert dims == [2, *space.input_shape(arch)]
    mtime = path.stat().st_mtime_ns
    assert export_onnx(space, arch, batch=2, cache_dir=tmp_path) == path
    assert path.stat().st_mtime_ns == mtime  # served from the cache
    assert export_onnx(space, arch, batch=1, cache_dir=tmp_path) != path  # keyed by shape
    assert not list(tmp_path.rglob("*.tmp"))


class BrokenSpace(NB201Space):
    """NB201 whose networks cannot be traced: exercises the export-failure path."""

    def build(self, arch, num_classes=None, none="zero"):
        class Bad(torch.nn.Module):
            def forward(self, x):
                return torch.tensor(x.sum().item())  # data-dependent Python: not exportable

        return Bad()


def test_export_failure_is_an_export_error(tmp_path):
    space = BrokenSpace()
    with pytest.raises(ExportError, match="nb201: (cannot export|ONNX Runtime and PyTorch)"):
        export_onnx(space, space.sample(0), cache_dir=tmp_path)
    assert not list(tmp_path.rglob("*.onnx"))


def test_ort_cpu_times_a_real_session(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    space = get_space("nb201")
    rt = get_runtime("ort-cpu", RuntimeConfig(intra_op_threads=1))
    assert rt.available() == (True, "")
    samples = rt.timer(space, space.parse(SMALL["nb201"]))(5)
    assert samples.shape == (5,) and (samples > 0).all() and np.isfinite(samples).all()
    info = rt.describe()
    assert info["provider"] == "CPUExecutionProvider" and info["intra_op_threads"] == 1


def test_torch_cpu_times_eager(tmp_path):
    space = get_space("fbnet")
    samples = get_runtime("torch-cpu").timer(space, space.parse(SMALL["fbnet"]))(3)
    assert (samples > 0).all()


def test_session_options_are_explicit(tmp_path):
    space = get_space("nb201")
    path = export_onnx(space, space.parse(SMALL["nb201"]), cache_dir=tmp_path)
    sess = make_session(path, RuntimeConfig(intra_op_threads=1, graph_optimization="basic"),
                        "CPUExecutionProvider")
    assert sess.get_providers() == ["CPUExecutionProvider"]


@pytest.mark.skipif(torch.cuda.is_available(), reason="a GPU is present: tested by the GPU script")
@pytest.mark.parametrize("name", ["ort-cuda", "torch-cuda"])
def test_cuda_runtimes_say_why_they_are_unavailable(name):
    rt = get_runtime(name)
    ok, why = rt.available()
    assert not ok and ("CUDA" in why or "cuda" in why)
    with pytest.raises(RuntimeUnavailableError, match=f"runtime {name} is not available here"):
        rt.timer(get_space("nb201"), get_space("nb201").sample(0))


def test_runtime_registry_and_config_validation():
    assert set(list_runtimes()) == {"ort-cpu", "ort-cpu-int8", "ort-cuda", "ort-cuda-fp16",
                                    "ov-cpu", "ov-cpu-int8", "torch-cpu", "torch-cuda"}
    with pytest.raises(UnknownNameError, match="valid: ort-cpu, ort-cpu-int8, ort-cuda"):
        get_runtime("tensorrt")
    with pytest.raises(HwnasError, match="batch"):
        RuntimeConfig(batch=0)
    with pytest.raises(HwnasError, match="graph optimisation"):
        RuntimeConfig(graph_optimization="max")


@pytest.mark.gpu
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_torch_cuda_events_time_a_network():
    space = get_space("nb201")
    rt = get_runtime("torch-cuda", RuntimeConfig(batch=8))
    assert rt.available() == (True, "")
    samples = rt.timer(space, space.parse(SMALL["nb201"]))(5)
    assert samples.shape == (5,) and (samples > 0).all()
    assert "gpu" in rt.describe()


@pytest.mark.gpu
@pytest.mark.skipif(not get_runtime("ort-cuda").available()[0],
                    reason="needs onnxruntime-gpu and a CUDA device")
def test_ort_cuda_times_a_network(tmp_path, monkeypatch):
    monkeypatch.setenv("HWNAS_CACHE", str(tmp_path))
    space = get_space("nb201")
    samples = get_runtime("ort-cuda").timer(space, space.parse(SMALL["nb201"]))(5)
    assert (samples > 0).all()
