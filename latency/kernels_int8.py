"""The kernels ONNX Runtime's CPU provider executes for a statically quantized (QDQ) network, and
tiny INT8 models that run one of them.

nn-Meter's rule (Zhang et al., "nn-Meter: Towards Accurate Latency Prediction of Deep-Learning
Model Inference on Diverse Edge Devices", MobiSys 2021): a kernel is what the runtime runs *after*
its graph optimiser. For a QDQ model (:func:`hwnas.latency.quantize.quantize_onnx`) that is not the
FP32 graph with INT8 arithmetic: ONNX Runtime's QDQ transformers fuse a ``DequantizeLinear -> op
-> QuantizeLinear`` group into one integer kernel (``QLinearConv``, ``QLinearAdd``,
``QLinearAveragePool``, ``QLinearMul``, ``QLinearGlobalAveragePool``, ``QGemm``) only where every
part of the group is quantized as the fusion expects; anything else stays an FP32 operator between
an explicit ``DequantizeLinear`` and ``QuantizeLinear``. Which groups fuse depends on the quantizer
as much as on the network (e.g. a convolution whose bias initializer the exporter shared with
other convolutions keeps an unquantized bias and stays an FP32 ``Conv`` on dequantized weights),
so this module does not model the rewrites analytically as :func:`hwnas.latency.kernels.
nb201_kernels` does for FP32: :func:`int8_graph_kernels` reads the optimised graph ONNX Runtime
writes (``SessionOptions.optimized_model_filepath``) and takes each node's shapes from one
profiled run. ``DequantizeLinear`` nodes of constant weights and biases run on every call (they
are not constant-folded, so that QDQ fusion can see them) and are counted with the operator that
reads them (``conv_dq``, ``batchnorm_dq``).

Kernel fields (:class:`~hwnas.latency.kernels.Kernel`): elementwise and layout kernels
(``quantize``, ``dequantize``, ``qadd``, ``qmul``, ``transpose_nhwc``, ``transpose_nchw``) keep the
tensor's dimensions as they are in memory (``c_in, h, w`` = dims 1..3, NHWC tensors included);
convolutions and pools use logical channels and resolution, ``fused`` saying ``nhwc`` (channels-last
integer kernel) and ``bias``.
"""

from __future__ import annotations

import json
import os
from collections import Counter
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .kernels import _NCHWC, Kernel, LUTError, fp32_node_kernel, profiled_run

__all__ = [
    "INT8_OPS",
    "int8_graph_kernels",
    "int8_input_shape",
    "int8_kernel_chains",
    "int8_kernel_model",
    "int8_profile_by_op",
]

#: every kernel op of a quantized network; an optimised graph with any other op is refused
INT8_OPS: frozenset[str] = frozenset({
    "quantize", "dequantize", "transpose_nhwc", "transpose_nchw", "qadd", "qmul", "qavgpool",
    "qconv", "conv_dq", "batchnorm_dq", "qgap", "qflatten", "qgemm", "mul_f32",
})
_ELEMENTWISE = ("quantize", "dequantize", "qadd", "qmul", "mul_f32", "transpose_nhwc",
                "transpose_nchw")

# ---------------------------------------------------------------------- enumeration
#: bump when the mapping changes: cached enumerations of an older version are not read
_INT8_ENUMERATION_VERSION = "3"


def _dims(shape: Sequence[int]) -> tuple[int, int, int]:
    d = (list(shape[1:]) + [1, 1, 1])[:3]
    return int(d[0]), int(d[1]), int(d[2])


def _node_kernel(n: Any, attrs: dict[str, Any], ins: list[list[int]], const: set[str]
                 ) -> Kernel | None:
    """The kernel of one optimised-graph node (``None``: part of its consumer's kernel)."""
    op = n.op_type
    if n.domain == _NCHWC:
        # a float convolution the quantizer left (or ORT re-laid out) runs in ORT's NCHWc layout,
        # between ReorderInput and ReorderOutput: FP32 kernels, timed by the FP32 kernel models
        return fp32_node_kernel(n, attrs, ins)
    if op == "DequantizeLinear" and n.input[0] in const:
        return None  # a weight or bias: timed with the operator that reads it
    if op in ("QuantizeLinear", "DequantizeLinear", "QLinearAdd", "QLinearMul"):
        name = {"QuantizeLinear": "quantize", "DequantizeLinear": "dequantize",
                "QLinearAdd": "qadd", "QLinearMul": "qmul"}[op]
        c, h, w = _dims(ins[0])
        return Kernel(name, c, c, h, w)
    if op == "Mul":  # NB201's ``none`` edge (x * 0), which the quantizer leaves in float
        c, h, w = _dims(ins[0])
        return Kernel("mul_f32", c, c, h, w)
    if op == "Transpose":
        c, h, w = _dims(ins[0])
        perm = list(attrs["perm"])
        if perm not in ([0, 2, 3, 1], [0, 3, 1, 2]):
            raise LUTError(f"INT8 graph: Transpose with perm {perm}; modelled: [0, 2, 3, 1], "
                           "[0, 3, 1, 2]")
        return Kernel("transpose_nhwc" if perm == [0, 2, 3, 1] else "transpose_nchw", c, c, h, w)
    nhwc = bool(attrs.get("channels_last", 0))
    if op in ("QLinearConv", "QLinearAveragePool", "QLinearGlobalAveragePool"):
        x = ins[0]
        c, h, w = (x[3], x[1], x[2]) if nhwc else _dims(x)
        flags = ["nhwc"] if nhwc else []
        k, s = (attrs.get("kernel_shape") or [0])[0], (attrs.get("strides") or [1])[0]
        if op == "QLinearConv":
            if attrs.get("group", 1) != 1:
                raise LUTError("INT8 graph: grouped QLinearConv is not modelled")
            c_out = ins[3][0]
            flags += ["bias"] if len(n.input) > 8 and n.input[8] else []
            return Kernel("qconv", c, c_out, h, w, k, s, "+".join(flags))
        if op == "QLinearAveragePool":
            return Kernel("qavgpool", c, c, h, w, k, s, "+".join(flags))
        if nhwc:
            raise LUTError("INT8 graph: channels-last QLinearGlobalAveragePool is not modelled")
        return Kernel("qgap", c, c, h, w)
    if op == "Conv":
        if attrs.get("group", 1) != 1:
            raise LUTError("INT8 graph: grouped Conv is not modelled")
        c, h, w = _dims(ins[0])
        bias = len(n.input) > 2 and bool(n.input[2])
        return Kernel("conv_dq", c, ins[1][0], h, w, ins[1][2], (attrs.get("strides") or [1])[0],
                      "bias" if bias else "")
    if op == "BatchNormalization":
        c, h, w = _dims(ins[0])
        return Kernel("batchnorm_dq", c, c, h, w)
    if op == "Flatten":
        c, h, w = _dims(ins[0])
        return Kernel("qflatten", c, c, h, w)
    if op == "QGemm":
        return Kernel("qgemm", ins[0][1], ins[3][0] if attrs.get("transB") else ins[3][1], 1, 1)
    raise LUTError(f"INT8 graph: no kernel model for {n.domain or 'ai.onnx'}.{op}; modelled: "
                   f"{', '.join(sorted(INT8_OPS))}")


def _optimised_graph(path: Path, config: Any, input_shape: Sequence[int], runs: int = 1
                     ) -> tuple[list[tuple[str, Kernel | None, bool]], dict[str, list[float]]]:
    """``(node name, kernel, own)`` for every node of the optimised graph (``own`` False: a
    constant's ``DequantizeLinear``, given the kernel of the node reading it), and each node's
    profiled durations in ms over ``runs`` calls."""
    from onnx import helper

    feed = np.random.default_rng(0).standard_normal(tuple(input_shape), dtype=np.float32)
    model, shapes, durations = profiled_run(path, config, feed, runs, graph_optimization="all")
    const = {i.name for i in model.graph.initializer}
    own = []
    for n in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        if n.name not in shapes:
            raise LUTError(f"INT8 graph: node {n.name!r} ({n.op_type}) did not run in the "
                           "profiled call")
        own.append(_node_kernel(n, attrs, shapes[n.name], const))
    # a constant's DequantizeLinear belongs to the kernel of the node reading it
    reader = {i: k for n, k in zip(model.graph.node, own, strict=True) for i in n.input}
    return [(n.name, k if k is not None else reader.get(n.output[0]), k is not None)
            for n, k in zip(model.graph.node, own, strict=True)], durations


def _optimised_kernels(path: Path, config: Any, input_shape: Sequence[int]) -> Counter[Kernel]:
    nodes, _ = _optimised_graph(path, config, input_shape)
    return Counter(k for _, k, is_own in nodes if is_own)


def int8_profile_by_op(path: str | os.PathLike[str], config: Any = None,
                       input_shape: Sequence[int] = (1, 3, 32, 32), runs: int = 20
                       ) -> dict[str, float]:
    """ONNX Runtime's own profile of a quantized model: mean ms per call spent in each kernel
    op (a constant's ``DequantizeLinear`` counted with its reader), the first call dropped.
    A diagnostic for where a lookup table's sum departs from the network."""
    from .runtime import RuntimeConfig

    nodes, durations = _optimised_graph(Path(path), config or RuntimeConfig(), input_shape,
                                        runs + 1)
    out: dict[str, float] = {}
    for name, k, _ in nodes:
        op = k.op if k is not None else "other"
        out[op] = out.get(op, 0.0) + float(np.sum(durations.get(name, [0.0])[1:])) / runs
    return out


def int8_graph_kernels(path: str | os.PathLike[str], config: Any = None,
                       input_shape: Sequence[int] = (1, 3, 32, 32),
                       cache_dir: str | os.PathLike[str] | None = None) -> Counter[Kernel]:
    """The kernels ONNX Runtime's CPU provider runs for a quantized (QDQ) model file.

    Optimises the model at level ``all`` with ``config``'s threads, reads the optimised graph and
    takes every node's input shapes from one profiled run. With ``cache_dir`` the result is kept
    there, keyed by the model file's name (which names the architecture and calibration), the
    ONNX Runtime version and the batch.

    Raises:
        LUTError: the optimised graph holds an operator with no INT8 kernel model.

    Example:
        >>> ks = int8_graph_kernels(quantize_onnx(space, arch))          # doctest: +SKIP
        >>> sorted({k.op for k in ks})                                    # doctest: +SKIP
        ['conv_dq', 'dequantize', 'qadd', 'qavgpool', 'qconv', ...]
    """
    import onnxruntime as ort

    from .runtime import RuntimeConfig

    config = config or RuntimeConfig()
    if config.graph_optimization != "all":
        raise LUTError("the INT8 kernel enumeration reads ONNX Runtime's graph at optimisation "
                       f"'all'; got {config.graph_optimization!r}")
    path = Path(path)
    cached = None
    if cache_dir is not None:
        shape = "x".join(map(str, input_shape))
        cached = (Path(cache_dir) / f"{path.stem}_{shape}_ort{ort.__version__}"
                  f"_v{_INT8_ENUMERATION_VERSION}.json")
        try:
            rows = json.loads(cached.read_text())
            return Counter({Kernel(**r["kernel"]): int(r["count"]) for r in rows})
        except (OSError, ValueError, TypeError, KeyError):
            pass  # absent or unreadable: enumerate (and rewrite) it
    ks = _optimised_kernels(path, config, input_shape)
    if cached is not None:
        import dataclasses

        from .table import atomic_write_text

        atomic_write_text(cached, json.dumps(
            [{"kernel": dataclasses.asdict(k), "count": n} for k, n in sorted(ks.items())]))
    return ks


# ---------------------------------------------------------------------- kernel models
#: quantization parameters of the models, in the quantizer's style (static QDQ, MinMax): U8
#: activations with one scale and zero point per tensor, S8 weights symmetric per output channel,
#: INT32 biases at input scale x weight scale. Integer kernels' speed does not depend on the
#: values, only on these types and granularities.
_ACT_SCALE, _ACT_ZP = 0.05, 128


def int8_input_shape(kernel: Kernel, batch: int) -> tuple[int, ...]:
    """The float input of ``kernel``'s model: the tensor as it lies in memory (NHWC for the
    channels-last kernels), ``(batch, c_in)`` for ``qgemm``."""
    k = kernel
    if k.op == "qgemm":
        return (batch, k.c_in)
    if "nhwc" in k.fused:
        return (batch, k.h, k.w, k.c_in)
    return (batch, k.c_in, k.h, k.w)


def int8_kernel_chains(kernel: Kernel) -> bool:
    """Whether copies of ``kernel`` can be chained (same type and shape out as in)."""
    k = kernel
    if k.op in ("qadd", "qmul", "mul_f32"):
        return True
    if k.op in ("qavgpool", "qconv", "conv_dq"):
        return k.c_in == k.c_out and k.stride == 1 and k.kernel % 2 == 1
    return k.op == "batchnorm_dq"


def int8_kernel_model(kernel: Kernel, copies: int = 1, batch: int = 1) -> Any:
    """A tiny ONNX model that runs INT8 ``kernel`` ``copies`` times, as the runtime executes it.

    The float input is quantized once (``QuantizeLinear``, shared by every copy, so its cost
    cancels in the slope between two copy counts); copies are chained where the kernel keeps its
    input's type and shape, else they all read that input. Meant for a session with graph
    optimisation disabled. Every weighted copy has its own weights.

    Raises:
        LUTError: an op outside :data:`INT8_OPS`, or fewer than one copy.
    """
    from onnx import TensorProto, helper, numpy_helper

    k = kernel
    if k.op not in INT8_OPS:
        raise LUTError(f"no INT8 kernel model for op {k.op!r}; valid: "
                       f"{', '.join(sorted(INT8_OPS))}")
    if copies < 1:
        raise LUTError(f"{kernel}: {copies} copies; need at least 1")
    rng = np.random.default_rng(0)
    nodes: list[Any] = []
    inits: list[Any] = []

    def const(array: np.ndarray, dtype: Any = np.float32) -> str:
        name = f"w{len(inits)}"
        inits.append(numpy_helper.from_array(np.asarray(array).astype(dtype), name))
        return name

    def node(op: str, inputs: list[str], domain: str = "", **attrs: Any) -> str:
        out = f"t{len(nodes)}"
        nodes.append(helper.make_node(op, inputs, [out], domain=domain or None, **attrs))
        return out

    def act() -> list[str]:  # scale and zero point of a U8 activation
        return [const(np.float32(_ACT_SCALE)), const(np.uint8(_ACT_ZP), np.uint8)]

    def weight(c_out: int, c_in: int, size: int) -> tuple[str, str, str, np.ndarray]:
        # symmetric S8 per output channel (zero point 0), as the quantizer's per_channel=True
        w = rng.integers(-127, 128, (c_out, c_in, size, size))
        scale = (0.02 + 0.01 * rng.random(c_out)).astype(np.float32)
        return (const(w, np.int8), const(scale), const(np.zeros(c_out), np.int8), scale)

    def bias(c_out: int) -> str:
        return const(rng.integers(-1000, 1000, c_out), np.int32)

    ms = "com.microsoft"
    x = "x"
    float_in = k.op in ("quantize", "conv_dq", "batchnorm_dq", "mul_f32")
    first = x if float_in else node("QuantizeLinear", [x, *act()])
    t, result = first, None
    for _ in range(copies):
        if not int8_kernel_chains(k):
            t = first
        if k.op == "quantize":
            t = node("QuantizeLinear", [t, *act()])
        elif k.op == "dequantize":
            t = node("DequantizeLinear", [t, *act()])
        elif k.op in ("transpose_nhwc", "transpose_nchw"):
            t = node("Transpose", [t], perm=[0, 2, 3, 1] if k.op == "transpose_nhwc"
                     else [0, 3, 1, 2])
        elif k.op == "qadd":
            t = node("QLinearAdd", [t, *act(), first, *act(), *act()], ms)
        elif k.op == "qmul":  # NB201's ``none`` edge: x * 0, the zero a quantized constant
            t = node("QLinearMul", [t, *act(), const(np.uint8(0), np.uint8),
                                    const(np.float32(1.0)), const(np.uint8(0), np.uint8),
                                    *act()], ms)
        elif k.op == "mul_f32":  # the float ``none`` edge between a dequantize and a quantize
            t = node("Mul", [t, const(np.zeros(1))])
        elif k.op == "qavgpool":
            pad = 0 if k.kernel % 2 == 0 else k.kernel // 2
            t = node("QLinearAveragePool", [t, *act(), *act()], ms,
                     kernel_shape=[k.kernel] * 2, strides=[k.stride] * 2, pads=[pad] * 4,
                     count_include_pad=int(pad == 0), channels_last=int("nhwc" in k.fused))
        elif k.op == "qconv":
            wq, ws, wz, scale = weight(k.c_out, k.c_in, k.kernel)
            ins = [t, *act(), wq, ws, wz, *act()]
            if "bias" in k.fused:
                ins.append(bias(k.c_out))
            t = node("QLinearConv", ins, ms, kernel_shape=[k.kernel] * 2,
                     strides=[k.stride] * 2, pads=[k.kernel // 2] * 4, group=1,
                     channels_last=int("nhwc" in k.fused))
        elif k.op == "conv_dq":  # an FP32 Conv reading weights dequantized on every call
            wq, ws, wz, scale = weight(k.c_out, k.c_in, k.kernel)
            ins = [t, node("DequantizeLinear", [wq, ws, wz], axis=0)]
            if "bias" in k.fused:
                ins.append(node("DequantizeLinear", [bias(k.c_out), const(scale * _ACT_SCALE),
                                                     const(np.zeros(k.c_out), np.int32)], axis=0))
            t = node("Conv", ins, kernel_shape=[k.kernel] * 2, strides=[k.stride] * 2,
                     pads=[k.kernel // 2] * 4, group=1)
        elif k.op == "batchnorm_dq":
            c = k.c_in
            params = [node("DequantizeLinear", [const(rng.integers(1, 127, c), np.int32),
                                                const(np.float32(0.01)),
                                                const(np.int32(0), np.int32)])
                      for _ in range(4)]
            t = node("BatchNormalization", [t, *params])
        elif k.op == "qgap":
            t = node("QLinearGlobalAveragePool", [t, *act(), *act()], ms, channels_last=0)
        elif k.op == "qflatten":
            t = node("Flatten", [t], axis=1)
        elif k.op == "qgemm":
            w = rng.integers(-127, 128, (k.c_out, k.c_in))
            t = node("QGemm", [t, *act(), const(w, np.int8), const(np.float32(0.02)),
                               const(np.int8(0), np.int8), const(np.zeros(k.c_out), np.int32),
                               *act()], ms, transB=1)
        result = result or t
    t = t if int8_kernel_chains(k) else result
    for n in nodes:
        n.output[:] = ["y" if o == t else o for o in n.output]
    out_type = (TensorProto.FLOAT if k.op in ("dequantize", "conv_dq", "batchnorm_dq", "mul_f32")
                else TensorProto.UINT8)
    graph = helper.make_graph(
        nodes, f"int8_kernel_{k}_x{copies}",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, list(int8_input_shape(k, batch)))],
        [helper.make_tensor_value_info("y", out_type, None)], inits)
    return helper.make_model(graph, ir_version=8, opset_imports=[
        helper.make_opsetid("", 17), helper.make_opsetid(ms, 1)])
