"""Lower-precision copies of exported networks: static post-training INT8 quantization (ONNX
Runtime, QDQ format) and FP16 conversion.

Calibration (Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", CVPR 2018: min/max ranges of activations on sample inputs)
uses real images: scikit-learn's bundled handwritten digits (8x8 grey), resized by nearest
neighbour to the space's input shape and tiled over its channels, since hwnas ships no CIFAR
images. The quantized model is cached beside the FP32 export, keyed by architecture, shape and
calibration settings; the file is written to a temporary name and renamed.

The TorchScript exporter shares equal constants (the folded batch-norm biases of freshly
initialised networks are all equal) through ``Identity`` nodes; the quantizer then finds a
convolution's bias is no initializer and leaves the convolution in float between a Dequantize and
a Quantize — slower than FP32 (on the reference NB201 network, 48 of 52 convolutions stayed float).
Each such ``Identity`` is therefore replaced by its own copy of the constant before quantizing.

A multiplication by the constant zero (how NB201's ``none`` edge is exported) stays in float: its
range is degenerate (a zero scale), it carries no information to quantize, and OpenVINO's
low-precision pass (``MultiplyPartialTransformation``, openvino 2026.4) fails to compile the model
when that constant is wrapped in Quantize/DequantizeLinear.
"""

from __future__ import annotations

import contextlib
import hashlib
import logging
import os
import tempfile
import warnings
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.search import Architecture, HwnasError, Space

from .export import export_onnx

__all__ = ["Calibration", "QuantizeError", "calibration_images", "float16_onnx",
           "inline_constant_identities", "quantize_onnx", "zero_multiplications"]


class QuantizeError(HwnasError):
    """A network that could not be quantized."""


@dataclass(frozen=True)
class Calibration:
    """Calibration set: ``images`` digits drawn without replacement with ``seed``."""

    images: int = 64
    seed: int = 0
    data: str = "sklearn-digits-8x8, nearest-resized and channel-tiled, standardised"
    method: str = "minmax"

    def describe(self) -> dict[str, Any]:
        return asdict(self)


def calibration_images(shape: tuple[int, ...], calibration: Calibration) -> np.ndarray:
    """``calibration.images`` real digit images as float32 of shape ``(n, *shape)``."""
    from sklearn.datasets import load_digits

    data = load_digits().images.astype(np.float32) / 16.0  # (1797, 8, 8) in [0, 1]
    rng = np.random.default_rng(calibration.seed)
    pick = rng.choice(len(data), min(calibration.images, len(data)), replace=False)
    imgs = data[np.sort(pick)]
    c, h, w = shape
    rows = (np.arange(h) * imgs.shape[1]) // h
    cols = (np.arange(w) * imgs.shape[2]) // w
    imgs = imgs[:, rows][:, :, cols]
    imgs = (imgs - imgs.mean()) / (imgs.std() or 1.0)  # the network expects standardised input
    return np.repeat(imgs[:, None], c, axis=1).astype(np.float32)


#: bump when the quantizer's choices change, so cached files of the old choices are not reused
_RECIPE = "v3-zero-mul-float-inline-identity"


def inline_constant_identities(model: Any) -> Any:
    """``model`` with every ``Identity`` of an initializer replaced by a copy of it under the
    ``Identity``'s output name (a copy, not a shared name: each convolution's bias gets the
    scale of its own input when quantized)."""
    inits = {i.name: i for i in model.graph.initializer}
    outputs = {o.name for o in model.graph.output}
    keep = []
    for node in model.graph.node:
        if (node.op_type == "Identity" and node.input[0] in inits
                and node.output[0] not in outputs):
            copy = model.graph.initializer.add()
            copy.CopyFrom(inits[node.input[0]])
            copy.name = node.output[0]
        else:
            keep.append(node)
    del model.graph.node[:]
    model.graph.node.extend(keep)
    return model


def zero_multiplications(model: Any) -> list[str]:
    """Names of the ``Mul`` nodes of an ONNX model with an all-zero constant input."""
    from onnx import numpy_helper

    zero = {i.name for i in model.graph.initializer if not numpy_helper.to_array(i).any()}
    for node in model.graph.node:
        if node.op_type == "Constant":
            value = next((a.t for a in node.attribute if a.name == "value"), None)
            if value is not None and not numpy_helper.to_array(value).any():
                zero.update(node.output)
    return [n.name for n in model.graph.node
            if n.op_type == "Mul" and any(i in zero for i in n.input)]


@contextlib.contextmanager
def _quiet_root_logger() -> Iterator[None]:
    # the quantizer logs advice (pre-process the model, a bias that is no initializer) through
    # the root logger, dozens of lines per model: library code must not write to a user's stderr
    root = logging.getLogger()
    level = root.level
    root.setLevel(logging.ERROR)
    try:
        yield
    finally:
        root.setLevel(level)


def _batches(images: np.ndarray, batch: int) -> Iterator[np.ndarray]:
    n = max(1, len(images) // batch)
    for i in range(n):
        idx = np.arange(i * batch, (i + 1) * batch) % len(images)
        yield images[idx]


def quantize_onnx(space: Space, arch: Architecture, batch: int = 1,
                  calibration: Calibration | None = None,
                  cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of ``arch``'s statically quantized QDQ model (U8 activations, per-channel S8 weights).

    Raises:
        QuantizeError: quantization failed or the quantized model does not run.
    """
    from onnxruntime.quantization import (
        CalibrationDataReader,
        CalibrationMethod,
        QuantFormat,
        QuantType,
        quantize_static,
    )

    calibration = calibration or Calibration()
    fp32 = export_onnx(space, arch, batch, cache_dir=cache_dir)
    key = repr((sorted(calibration.describe().items()), _RECIPE))
    tag = hashlib.sha1(key.encode()).hexdigest()[:12]
    path = fp32.with_name(fp32.stem + f"_int8qdq_{tag}.onnx")
    if path.is_file():
        return path
    images = calibration_images(tuple(space.input_shape(arch)), calibration)

    class Reader(CalibrationDataReader):
        def __init__(self) -> None:
            self._it = iter(_batches(images, batch))

        def get_next(self) -> dict[str, np.ndarray] | None:
            x = next(self._it, None)
            return None if x is None else {"x": x}

    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        import onnx

        with _quiet_root_logger():
            model = inline_constant_identities(onnx.load(str(fp32)))
            quantize_static(model, tmp, Reader(), quant_format=QuantFormat.QDQ,
                            per_channel=True, activation_type=QuantType.QUInt8,
                            weight_type=QuantType.QInt8,
                            nodes_to_exclude=zero_multiplications(model),
                            calibrate_method=CalibrationMethod.MinMax)
        import onnxruntime as ort

        sess = ort.InferenceSession(tmp, providers=["CPUExecutionProvider"])
        if not np.isfinite(sess.run(None, {"x": next(_batches(images, batch))})[0]).all():
            raise QuantizeError(f"{space.format(arch)}: quantized model gives non-finite output")
        os.replace(tmp, path)
    except QuantizeError:
        raise
    except Exception as e:  # the quantizer raises many types: report one
        raise QuantizeError(f"{space.name}: cannot quantize {space.format(arch)}: "
                            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                            ) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def float16_onnx(space: Space, arch: Architecture, batch: int = 1,
                 cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Path of ``arch``'s network with FP16 weights and activations, FP32 input and output.

    Converted from the FP32 export by ONNX Runtime's own converter
    (``onnxruntime.transformers.float16.convert_float_to_float16``, ``keep_io_types=True``: the
    timer feeds the same float32 input to every precision, and the casts at the two ends are part
    of what an FP16 deployment runs). The result is checked with ``onnx.checker`` and cached
    beside the FP32 export (written to a temporary name, then renamed).

    Raises:
        QuantizeError: the conversion failed or the checker rejected the result.
    """
    import onnx

    fp32 = export_onnx(space, arch, batch, cache_dir=cache_dir)
    path = fp32.with_name(fp32.stem + "_fp16.onnx")
    if path.is_file():
        return path
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        from onnxruntime.transformers.float16 import convert_float_to_float16

        with _quiet_root_logger(), warnings.catch_warnings():
            # it warns about values clipped to FP16's range; the checker below is the judge
            warnings.simplefilter("ignore")
            model = convert_float_to_float16(onnx.load(str(fp32)), keep_io_types=True)
        # the converter appends its input/output casts at the end of the node list; ONNX wants
        # nodes in topological order (onnx.checker refuses the file otherwise)
        from onnxruntime.transformers.onnx_model import OnnxModel

        OnnxModel(model).topological_sort()
        onnx.save(model, tmp)
        onnx.checker.check_model(tmp, full_check=True)
        os.replace(tmp, path)
    except Exception as e:  # the converter and checker raise many types: report one
        raise QuantizeError(f"{space.name}: cannot convert {space.format(arch)} to FP16: "
                            f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}"
                            ) from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path
