"""Runtimes that time a network: ONNX Runtime (CPU, CUDA) and PyTorch (CPU, CUDA events).

A runtime turns an architecture into a *timer*: a function that runs ``n`` inferences on one fixed
input and returns the ``n`` per-call latencies in milliseconds. The measurement protocol decides how
many and when. Sessions are built from a frozen :class:`RuntimeConfig` with the options that change
latency set explicitly, and the provider actually used is checked (as onnxruntime's perf tools do).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import asdict
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from hwnas.search import Architecture, Space, UnknownNameError

from .export import export_onnx

# torch-free, shared with the device agent; re-exported here where they always were
from .session import RuntimeConfig, RuntimeUnavailableError, Timer, make_session
from .session import wall_timer as _wall_timer

__all__ = [
    "RuntimeConfig",
    "Runtime",
    "RuntimeUnavailableError",
    "Timer",
    "OrtRuntime",
    "OrtCpuRuntime",
    "OrtCudaRuntime",
    "OrtCudaFp16Runtime",
    "TorchCpuRuntime",
    "TorchCudaRuntime",
    "OrtCpuInt8Runtime",
    "OpenVinoCpuRuntime",
    "OpenVinoCpuInt8Runtime",
    "get_runtime",
    "list_runtimes",
    "make_session",
]

class Runtime(ABC):
    """Times networks on one device with one software stack."""

    name: ClassVar[str]
    #: numeric precision of the measured model (part of a table's identity)
    precision: ClassVar[str] = "fp32"

    def __init__(self, config: RuntimeConfig | None = None):
        self.config = config or RuntimeConfig()

    @abstractmethod
    def available(self) -> tuple[bool, str]:
        """``(True, "")`` or ``(False, why not)``."""

    def require(self) -> None:
        """Raise :class:`RuntimeUnavailableError` (with the reason) when unavailable."""
        ok, why = self.available()
        if not ok:
            raise RuntimeUnavailableError(f"runtime {self.name} is not available here: {why}")

    @abstractmethod
    def timer(self, space: Space, arch: Architecture) -> Timer:
        """Prepare ``arch`` (export, session, warm caches are the protocol's job) and return its
        timer."""

    def describe(self) -> dict[str, Any]:
        """Runtime name, provider and session options, for the table's metadata."""
        return {"runtime": self.name, **asdict(self.config)}


def _input(space: Space, arch: Architecture, batch: int) -> np.ndarray:
    rng = np.random.default_rng(0)
    return rng.standard_normal((batch, *space.input_shape(arch)), dtype=np.float32)


# ---------------------------------------------------------------------- ONNX Runtime
class OrtRuntime(Runtime):
    """ONNX Runtime on one execution provider; the network is the space's exported reference."""

    provider: ClassVar[str]

    def available(self) -> tuple[bool, str]:
        try:
            import onnxruntime as ort
        except ImportError as e:
            return False, f"onnxruntime cannot be imported ({e})"
        if self.provider not in ort.get_available_providers():
            return False, (f"this onnxruntime build has no {self.provider} (providers: "
                           f"{', '.join(ort.get_available_providers())})")
        return True, ""

    def session(self, space: Space, arch: Architecture) -> Any:
        self.require()
        return make_session(export_onnx(space, arch, self.config.batch), self.config,
                            self.provider)

    def timer(self, space: Space, arch: Architecture) -> Timer:
        sess = self.session(space, arch)
        feed = {"x": _input(space, arch, self.config.batch)}
        return _wall_timer(lambda: sess.run(None, feed))

    def describe(self) -> dict[str, Any]:
        import onnxruntime as ort

        return {**super().describe(), "provider": self.provider,
                "onnxruntime": ort.__version__}


class OrtCpuRuntime(OrtRuntime):
    """ONNX Runtime, CPU execution provider (the default runtime)."""

    name = "ort-cpu"
    provider = "CPUExecutionProvider"


class OrtCudaRuntime(OrtRuntime):
    """ONNX Runtime, CUDA execution provider; inputs and outputs stay on the GPU (I/O binding)
    so a call times the network, not host-device copies. ``Run`` synchronises the stream."""

    name = "ort-cuda"
    provider = "CUDAExecutionProvider"

    def available(self) -> tuple[bool, str]:
        ok, why = super().available()
        if not ok:
            return ok, why + "; install onnxruntime-gpu on a machine with an NVIDIA GPU"
        return True, ""

    def timer(self, space: Space, arch: Architecture) -> Timer:  # pragma: no cover - needs a GPU
        import onnxruntime as ort

        sess = self.session(space, arch)
        x = ort.OrtValue.ortvalue_from_numpy(_input(space, arch, self.config.batch), "cuda",
                                             self.config.device_id)
        binding = sess.io_binding()
        binding.bind_ortvalue_input("x", x)
        binding.bind_output("logits", "cuda", self.config.device_id)
        return _wall_timer(lambda: sess.run_with_iobinding(binding))


class OrtCudaFp16Runtime(OrtCudaRuntime):
    """ONNX Runtime CUDA on the FP16 model (:func:`hwnas.latency.quantize.float16_onnx`: ONNX
    Runtime's own converter, float32 input and output), timed like ``ort-cuda``.

    FP16 is offered on the CUDA provider only: this project's check on ONNX Runtime 1.32's CPU
    provider (x86) found it running an FP16 model by inserting casts, with every convolution in
    FP32 kernels (``FusedConv`` in NCHWc layout) — an FP32 timing under an FP16 label.
    """

    name = "ort-cuda-fp16"
    precision = "fp16"

    def available(self) -> tuple[bool, str]:
        ok, why = super().available()
        if not ok:
            return ok, why
        try:  # pragma: no cover - needs a GPU
            import onnxruntime.transformers.float16  # noqa: F401
        except ImportError as e:  # pragma: no cover - needs a GPU
            return False, f"onnxruntime's FP16 converter cannot be imported ({e})"
        return True, ""  # pragma: no cover - needs a GPU

    def session(self, space: Space, arch: Architecture) -> Any:  # pragma: no cover - needs a GPU
        from .quantize import float16_onnx

        self.require()
        return make_session(float16_onnx(space, arch, self.config.batch), self.config,
                            self.provider)

    def describe(self) -> dict[str, Any]:
        return {**super().describe(), "conversion": "onnxruntime.transformers.float16."
                "convert_float_to_float16, keep_io_types=True"}


# ---------------------------------------------------------------------- PyTorch
class _TorchRuntime(Runtime):
    device: ClassVar[str]

    def _model(self, space: Space, arch: Architecture) -> tuple[Any, Any]:
        import torch

        self.require()
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(0)
            model = space.build(arch).eval().to(self.device_str)
        x = torch.from_numpy(_input(space, arch, self.config.batch)).to(self.device_str)
        return model, x

    @property
    def device_str(self) -> str:
        return self.device if self.device == "cpu" else f"cuda:{self.config.device_id}"

    def describe(self) -> dict[str, Any]:
        import torch

        return {**super().describe(), "provider": f"torch-{self.device}",
                "torch": torch.__version__}


class TorchCpuRuntime(_TorchRuntime):
    """PyTorch eager on the CPU, wall-clock timed (for comparison with ONNX Runtime)."""

    name = "torch-cpu"
    device = "cpu"

    def available(self) -> tuple[bool, str]:
        return True, ""

    def timer(self, space: Space, arch: Architecture) -> Timer:
        import torch

        if self.config.intra_op_threads:
            torch.set_num_threads(self.config.intra_op_threads)
        model, x = self._model(space, arch)

        def call() -> None:
            with torch.inference_mode():
                model(x)

        return _wall_timer(call)


class TorchCudaRuntime(_TorchRuntime):
    """PyTorch eager on a CUDA GPU, each call timed with a pair of CUDA events and synchronised."""

    name = "torch-cuda"
    device = "cuda"

    def available(self) -> tuple[bool, str]:
        import torch

        if torch.version.cuda is None:
            return False, f"this torch build ({torch.__version__}) has no CUDA support"
        if not torch.cuda.is_available() or torch.cuda.device_count() <= self.config.device_id:
            return False, "no CUDA device is visible"
        return True, ""

    def timer(self, space: Space, arch: Architecture) -> Timer:  # pragma: no cover - needs a GPU
        import torch

        model, x = self._model(space, arch)

        def timed(n: int) -> np.ndarray:
            out = np.empty(n, dtype=np.float64)
            start = torch.cuda.Event(enable_timing=True)
            end = torch.cuda.Event(enable_timing=True)
            with torch.inference_mode():
                for i in range(n):
                    start.record()
                    model(x)
                    end.record()
                    end.synchronize()
                    out[i] = start.elapsed_time(end)
            return out

        return timed

    def describe(self) -> dict[str, Any]:
        import torch

        info = super().describe()
        if self.available()[0]:  # pragma: no cover - needs a GPU
            info["gpu"] = torch.cuda.get_device_name(self.config.device_id)
            info["cuda"] = torch.version.cuda
        return info


# ---------------------------------------------------------------------- INT8 and OpenVINO
class OrtCpuInt8Runtime(OrtCpuRuntime):
    """ONNX Runtime CPU on the statically quantized QDQ model (:mod:`hwnas.latency.quantize`)."""

    name = "ort-cpu-int8"
    precision = "int8"

    def session(self, space: Space, arch: Architecture) -> Any:
        from .quantize import quantize_onnx

        self.require()
        return make_session(quantize_onnx(space, arch, self.config.batch), self.config,
                            self.provider)

    def describe(self) -> dict[str, Any]:
        from .quantize import Calibration

        return {**super().describe(), "quantization": "static QDQ, U8 activations, "
                "per-channel S8 weights", "calibration": Calibration().describe()}


class OpenVinoCpuRuntime(Runtime):
    """OpenVINO on its CPU device, reading the same exported ONNX file; one infer request, the
    latency hint, one stream, f32 inference precision set explicitly (else bf16 may be chosen)."""

    name = "ov-cpu"

    def available(self) -> tuple[bool, str]:
        try:
            import openvino as ov
        except ImportError as e:
            return False, f"openvino cannot be imported ({e}); pip install openvino"
        if "CPU" not in ov.Core().available_devices:
            return False, "OpenVINO sees no CPU device"
        return True, ""

    def _model_path(self, space: Space, arch: Architecture) -> Path:
        return export_onnx(space, arch, self.config.batch)

    def timer(self, space: Space, arch: Architecture) -> Timer:
        import openvino as ov

        self.require()
        core = ov.Core()
        props: dict[str, Any] = {"PERFORMANCE_HINT": "LATENCY", "NUM_STREAMS": 1,
                                 "INFERENCE_PRECISION_HINT": "f32"}
        if self.config.intra_op_threads:
            props["INFERENCE_NUM_THREADS"] = self.config.intra_op_threads
        compiled = core.compile_model(str(self._model_path(space, arch)), "CPU", props)
        request = compiled.create_infer_request()
        x = _input(space, arch, self.config.batch)
        return _wall_timer(lambda: request.infer({0: x}))

    def describe(self) -> dict[str, Any]:
        import openvino as ov

        return {**super().describe(), "provider": "openvino-CPU", "openvino": ov.__version__,
                "graph_optimization": "not used (OpenVINO compiles its own graph)"}


class OpenVinoCpuInt8Runtime(OpenVinoCpuRuntime):
    """OpenVINO CPU reading the same QDQ model as ``ort-cpu-int8`` (its own INT8 kernels)."""

    name = "ov-cpu-int8"
    precision = "int8"

    def _model_path(self, space: Space, arch: Architecture) -> Path:
        from .quantize import quantize_onnx

        return quantize_onnx(space, arch, self.config.batch)

    def describe(self) -> dict[str, Any]:
        from .quantize import Calibration

        return {**super().describe(), "quantization": "static QDQ, U8 activations, "
                "per-channel S8 weights", "calibration": Calibration().describe()}


_RUNTIMES: dict[str, type[Runtime]] = {
    r.name: r for r in (OrtCpuRuntime, OrtCudaRuntime, TorchCpuRuntime, TorchCudaRuntime,
                        OrtCpuInt8Runtime, OpenVinoCpuRuntime, OpenVinoCpuInt8Runtime,
                        OrtCudaFp16Runtime)
}


def list_runtimes() -> list[str]:
    """Names of every runtime, available here or not."""
    return list(_RUNTIMES)


def get_runtime(name: str, config: RuntimeConfig | None = None) -> Runtime:
    """A runtime by name (:func:`list_runtimes`: ``ort-cpu``, ``ort-cpu-int8``, ``ov-cpu``,
    ``ov-cpu-int8``, ``ort-cuda``, ``ort-cuda-fp16``, ``torch-cpu``, ``torch-cuda``).

    Raises:
        UnknownNameError: listing the valid names.
    """
    if name not in _RUNTIMES:
        raise UnknownNameError("runtime", name, _RUNTIMES)
    return _RUNTIMES[name](config)
