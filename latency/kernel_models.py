"""Tiny ONNX models that run one kernel, in the (NCHWc) form ONNX Runtime executes it.

Built with ``onnx.helper`` and cached on disk; timed with graph optimisation disabled so that
they run exactly as written (:mod:`hwnas.latency.lut_timing`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any

import numpy as np

from hwnas.search import cache_root

from .kernels import _BLOCK, _NCHWC, Kernel, LUTError
from .kernels_int8 import INT8_OPS, int8_input_shape, int8_kernel_chains, int8_kernel_model

__all__ = [
    "kernel_chains",
    "kernel_model",
]

# ---------------------------------------------------------------------- kernel models
_MODEL_VERSION = "1"


def _input_shape(kernel: Kernel, batch: int) -> tuple[int, ...]:
    if kernel.op in INT8_OPS:
        return int8_input_shape(kernel, batch)
    if kernel.op == "gemm":
        return (batch, kernel.c_in)
    return (batch, kernel.c_in, kernel.h, kernel.w)


def kernel_model(kernel: Kernel, copies: int = 1, batch: int = 1) -> Any:
    """A tiny ONNX model that runs ``kernel`` ``copies`` times, as the runtime executes it.

    NCHWc kernels are written with ONNX Runtime's own ``com.microsoft.nchwc`` operators between a
    ``ReorderInput`` and a ``ReorderOutput``; the model is meant for a session with graph
    optimisation disabled, so that it runs exactly as written (unused outputs included). Copies of
    a kernel that keeps its input's shape are chained; copies of any other kernel all read the
    model's input and only the first one's output is returned. Every convolution has its own
    weights, as in a network.

    INT8 kernels (:data:`~hwnas.latency.kernels_int8.INT8_OPS`) are built by
    :func:`~hwnas.latency.kernels_int8.int8_kernel_model`.

    Raises:
        LUTError: an unknown op, or fewer than one copy.
    """
    from onnx import TensorProto, helper, numpy_helper

    if kernel.op in INT8_OPS:
        return int8_kernel_model(kernel, copies, batch)

    if copies < 1:
        raise LUTError(f"{kernel}: {copies} copies; need at least 1")
    rng = np.random.default_rng(0)
    nodes: list[Any] = []
    inits: list[Any] = []
    n_tensors = [0]

    def tensor() -> str:
        n_tensors[0] += 1
        return f"t{n_tensors[0]}"

    def const(array: np.ndarray) -> str:
        name = f"w{len(inits)}"
        inits.append(numpy_helper.from_array(array.astype(np.float32), name))
        return name

    def node(op: str, inputs: list[str], domain: str = "", **attrs: Any) -> str:
        out = tensor()
        nodes.append(helper.make_node(op, inputs, [out], domain=domain or None, **attrs))
        return out

    k = kernel
    x = "x"
    nchwc = k.op in ("conv", "dwconv", "avgpool", "gap_nchwc")
    if nchwc and not (k.op == "conv" and k.c_in < _BLOCK):
        x = node("ReorderInput", [x], _NCHWC, channels_last=0)
    first, t, result = x, x, None
    for _ in range(copies):
        if not k.chainable:
            t = first
        if k.op in ("conv", "dwconv"):
            group = k.c_in if k.op == "dwconv" else 1
            fan_in = k.c_in // group * k.kernel * k.kernel
            w = rng.standard_normal((k.c_out, k.c_in // group, k.kernel, k.kernel)) / fan_in**0.5
            inputs = [t, const(w), const(0.1 * rng.standard_normal(k.c_out))]
            if "sum" in k.fused:
                inputs.append(first)
            attrs = dict(kernel_shape=[k.kernel] * 2, strides=[k.stride] * 2,
                         pads=[k.kernel // 2] * 4, dilations=[1, 1], group=group)
            if "relu" in k.fused:
                attrs["activation"] = "Relu"
            t = node("Conv", inputs, _NCHWC, **attrs)
        elif k.op == "avgpool":
            pad = 0 if k.kernel % 2 == 0 else k.kernel // 2
            t = node("AveragePool", [t], _NCHWC, kernel_shape=[k.kernel] * 2,
                     strides=[k.stride] * 2, pads=[pad] * 4,
                     count_include_pad=int(pad == 0))  # NB201: cell pools exclude padding
        elif k.op == "gap_nchwc":
            t = node("GlobalAveragePool", [t], _NCHWC)
        elif k.op == "reorder_in":
            t = node("ReorderInput", [t], _NCHWC, channels_last=0)
        elif k.op == "reorder_out":
            t = node("ReorderOutput", [t], _NCHWC, channels=k.c_in, channels_last=0)
        elif k.op == "relu":
            t = node("Relu", [t])
        elif k.op == "add":
            t = node("Add", [t, first])
        elif k.op == "mul":
            t = node("Mul", [t, const(np.zeros(()))])
        elif k.op == "batchnorm":
            c = k.c_in
            t = node("BatchNormalization", [t, const(np.ones(c)), const(np.zeros(c)),
                                            const(np.zeros(c)), const(np.ones(c))])
        elif k.op == "gap":
            t = node("GlobalAveragePool", [t])
        elif k.op == "flatten":
            t = node("Flatten", [t], axis=1)
        elif k.op == "gemm":
            t = node("Gemm", [t, const(rng.standard_normal((k.c_out, k.c_in)) / k.c_in**0.5),
                              const(np.zeros(k.c_out))], transB=1)
        else:
            raise LUTError(f"no kernel model for op {k.op!r}")
        result = result or t
    t = t if k.chainable else result
    if nchwc:
        t = node("ReorderOutput", [t], _NCHWC, channels=k.c_out, channels_last=0)
    for n in nodes:
        n.output[:] = ["y" if o == t else o for o in n.output]
    oh, ow = k.out_hw
    out_shape = (batch, k.c_out) if k.op in ("flatten", "gemm") else (batch, k.c_out, oh, ow)
    graph = helper.make_graph(
        nodes, f"kernel_{k}_x{copies}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(_input_shape(k, batch)))],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, list(out_shape))], inits)
    return helper.make_model(graph, ir_version=8, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid(_NCHWC, 1)])


def kernel_chains(kernel: Kernel) -> bool:
    """Whether :func:`kernel_model` chains the kernel's copies (else they fan out from one
    input)."""
    return int8_kernel_chains(kernel) if kernel.op in INT8_OPS else kernel.chainable


def _identity_model(batch: int) -> Any:
    from onnx import TensorProto, helper

    vi = [helper.make_tensor_value_info(n, TensorProto.FLOAT, [batch, 16, 32, 32])
          for n in ("x", "y")]
    graph = helper.make_graph([helper.make_node("Identity", ["x"], ["y"])], "identity",
                              [vi[0]], [vi[1]])
    return helper.make_model(graph, ir_version=8, opset_imports=[helper.make_opsetid("", 17)])


def _atomic_write(path: Path, data: bytes) -> None:
    from .table import atomic_write_bytes  # the one atomic writer (umask, clean-up on failure)

    atomic_write_bytes(path, data)


def _model_path(kernel: Kernel | None, copies: int, batch: int) -> Path:
    """The cached file of a kernel model (``None``: the identity model), written once."""
    name = "identity" if kernel is None else f"{kernel}_x{copies}"
    digest = hashlib.sha1(f"{_MODEL_VERSION}/{name}/b{batch}".encode()).hexdigest()[:12]
    path = cache_root() / "lut" / f"{name}_b{batch}_{digest}.onnx"
    if not path.is_file():
        model = _identity_model(batch) if kernel is None else kernel_model(kernel, copies, batch)
        _atomic_write(path, model.SerializeToString())
    return path
