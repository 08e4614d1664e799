"""Export an architecture's reference network to ONNX, validated and cached.

The exporter is TorchScript-based (``torch.onnx.export(..., dynamo=False)``, opset 17): on these
networks it is an order of magnitude faster than the dynamo exporter and writes one self-contained
file. Every export is checked with ``onnx.checker`` and its ONNX Runtime outputs compared with
PyTorch's before it enters the cache, so a cached file is a validated file.
"""

from __future__ import annotations

import hashlib
import os
import tempfile
import warnings
from pathlib import Path

import numpy as np
import torch

from hwnas.search import Architecture, HwnasError, Space, cache_root

__all__ = ["ExportError", "export_onnx", "onnx_cache_dir", "OPSET"]

OPSET = 17


class ExportError(HwnasError):
    """An architecture that could not be exported, or whose export computes something else."""


def onnx_cache_dir() -> Path:
    """Folder of exported models: ``$HWNAS_CACHE/onnx`` (default ``~/.cache/hwnas/onnx``)."""
    return cache_root() / "onnx"


def _key(space: Space, arch: Architecture, batch: int, opset: int) -> str:
    shape = "x".join(map(str, (batch, *space.input_shape(arch))))
    digest = hashlib.sha1(space.format(arch).encode()).hexdigest()[:20]
    return f"{space.name}/b{space.build_version}/{digest}_{shape}_op{opset}.onnx"


def export_onnx(
    space: Space,
    arch: Architecture,
    batch: int = 1,
    cache_dir: str | os.PathLike[str] | None = None,
    opset: int = OPSET,
    check_outputs: bool = True,
) -> Path:
    """Path of ``arch``'s reference network as ONNX (input ``x`` of shape ``(batch, C, H, W)``).

    The network is built in eval mode with weights drawn from a fixed seed; the file is written to
    a temporary name, checked, and renamed into the cache, so readers never see a partial file.

    Raises:
        ExportError: export failed, the checker rejected the model, or outputs differ from PyTorch.
    """
    import onnx

    if batch < 1:
        raise ExportError(f"batch must be >= 1, got {batch}")
    root = Path(cache_dir) if cache_dir is not None else onnx_cache_dir()
    path = root / _key(space, arch, batch, opset)
    if path.is_file():
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(0)
        model = space.build(arch).eval()
        x = torch.randn(batch, *space.input_shape(arch))
    fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".onnx.tmp")
    os.close(fd)
    try:
        with warnings.catch_warnings(), torch.no_grad():
            warnings.simplefilter("ignore")
            torch.onnx.export(model, (x,), tmp, dynamo=False, opset_version=opset,
                              input_names=["x"], output_names=["logits"])
            expected = model(x).numpy()
        onnx.checker.check_model(tmp, full_check=True)
        if check_outputs:
            _compare(tmp, x.numpy(), expected, space, arch)
        os.replace(tmp, path)
    except ExportError:
        raise
    except Exception as e:  # the exporter and checker raise many types: report one
        raise ExportError(f"{space.name}: cannot export {space.format(arch)}: "
                          f"{type(e).__name__}: {str(e).splitlines()[0] if str(e) else ''}") from e
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def _compare(path: str, x: np.ndarray, expected: np.ndarray, space: Space,
             arch: Architecture) -> None:
    import onnxruntime as ort

    opts = ort.SessionOptions()
    opts.intra_op_num_threads = 1
    sess = ort.InferenceSession(path, opts, providers=["CPUExecutionProvider"])
    got = sess.run(None, {"x": x})[0]
    scale = float(np.abs(expected).max()) or 1.0
    err = float(np.abs(got - expected).max()) / scale
    if not np.isfinite(got).all() or err > 1e-3:
        raise ExportError(f"{space.name}: ONNX Runtime and PyTorch disagree on "
                          f"{space.format(arch)} (max relative error {err:.2e})")
