"""Static post-training INT8 quantization of exported networks (ONNX Runtime, QDQ format).

Calibration (Jacob et al., "Quantization and Training of Neural Networks for Efficient
Integer-Arithmetic-Only Inference", CVPR 2018: min/max ranges of activations on sample inputs)
uses real images: scikit-learn's bundled handwritten digits (8x8 grey), resized by nearest
neighbour to the space's input shape and tiled over its channels, since hwnas ships no CIFAR
images. The quantized model is cached beside the FP32 export, keyed by architecture, shape and
calibration settings; the file is written to a temporary name and renamed.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
from collections.abc import Iterator
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.search import Architecture, HwnasError, Space

from .export import export_onnx

__all__ = ["Calibration", "QuantizeError", "calibration_images", "quantize_onnx"]


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
    tag = hashlib.sha1(repr(sorted(calibration.describe().items())).encode()).hexdigest()[:12]
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
        quantize_static(str(fp32), tmp, Reader(), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8,
                        weight_type=QuantType.QInt8,
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
