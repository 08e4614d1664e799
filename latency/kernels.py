"""The kernels ONNX Runtime's CPU provider executes for a network, enumerated analytically.

The enumeration reproduces what ONNX Runtime's graph optimiser does to an exported network (see
:mod:`hwnas.latency.lut` for the list of rewrites it models, after nn-Meter: Zhang et al.,
MobiSys 2021, a kernel is what the runtime runs *after* fusion), and :func:`graph_kernels` reads
the optimised graph of a real session, the ground truth the enumeration is tested against.
"""

from __future__ import annotations

import dataclasses
import json
import os
import tempfile
from collections import Counter
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np

from hwnas.search import Architecture, HwnasError, Space, cache_root, get_space

from .runtime import RuntimeConfig

__all__ = [
    "KERNEL_COLUMNS",
    "Kernel",
    "LUTError",
    "PRECISIONS",
    "graph_kernels",
    "kernel_universe",
    "kernels",
    "list_lut_spaces",
    "fp32_node_kernel",
    "profiled_run",
    "nb201_kernels",
]

_NCHWC = "com.microsoft.nchwc"
#: channels of one NCHWc block with AVX2 (16 with AVX-512); NB201's widths are multiples of both
_BLOCK = 8


class LUTError(HwnasError):
    """A lookup table that cannot be built, read or used as asked; the message says why."""


# ---------------------------------------------------------------------- kernels
@dataclass(frozen=True, order=True)
class Kernel:
    """One kernel configuration as the runtime executes it (shapes of one sample).

    Attributes:
        op: ``conv`` (NCHWc convolution), ``dwconv`` (NCHWc depthwise 1x1: a BatchNorm),
            ``batchnorm``, ``avgpool`` (NCHWc), ``gap`` / ``gap_nchwc`` (global average pool),
            ``relu``, ``add``, ``mul`` (by a constant), ``reorder_in`` / ``reorder_out`` (NCHW to
            NCHWc and back), ``flatten``, ``gemm``.
        c_in, c_out: channels in and out.
        h, w: input height and width.
        kernel, stride: window and stride of convolutions and pools (0 and 1 otherwise).
        fused: what the convolution also does: ``""``, ``"relu"``, ``"sum"`` (adds a tensor),
            ``"sum+relu"``.
    """

    op: str
    c_in: int
    c_out: int
    h: int
    w: int
    kernel: int = 0
    stride: int = 1
    fused: str = ""

    @property
    def out_hw(self) -> tuple[int, int]:
        if self.op in ("gap", "gap_nchwc", "flatten", "gemm"):
            return 1, 1
        if self.op in ("conv", "avgpool") and self.kernel:
            pad = 0 if (self.op == "avgpool" and self.kernel % 2 == 0) else self.kernel // 2
            return ((self.h + 2 * pad - self.kernel) // self.stride + 1,
                    (self.w + 2 * pad - self.kernel) // self.stride + 1)
        return self.h, self.w

    @property
    def chainable(self) -> bool:
        """Whether the output can feed the next copy (same shape): measured as a chain."""
        return (self.c_in == self.c_out and self.out_hw == (self.h, self.w)
                and self.op not in ("gap", "gap_nchwc", "flatten", "gemm"))

    def __str__(self) -> str:
        s = f"{self.op}_{self.c_in}x{self.h}x{self.w}"
        if self.c_out != self.c_in:
            s += f"_to{self.c_out}"
        if self.kernel:
            s += f"_k{self.kernel}s{self.stride}"
        return s + (f"_{self.fused}" if self.fused else "")


KERNEL_COLUMNS: tuple[str, ...] = tuple(f.name for f in dataclasses.fields(Kernel))


# ---------------------------------------------------------------------- NB201 graph model
@dataclass
class _Node:
    op: str
    inputs: list[int]
    output: int
    k: int = 0
    s: int = 1
    act: bool = False
    sum: bool = False
    layout: str = "nchw"


@dataclass
class _Graph:
    shapes: dict[int, tuple[int, int, int]] = field(default_factory=lambda: {0: (3, 32, 32)})
    nodes: list[_Node] = field(default_factory=list)

    def add(self, op: str, inputs: list[int], shape: tuple[int, int, int], **kw: Any) -> int:
        t = len(self.shapes)
        self.shapes[t] = shape
        self.nodes.append(_Node(op, inputs, t, **kw))
        return t

    def consumers(self) -> Counter[int]:
        return Counter(i for n in self.nodes for i in n.inputs)

    def replace(self, drop: set[int], alias: dict[int, int]) -> None:
        self.nodes = [n for n in self.nodes if id(n) not in drop]
        for n in self.nodes:
            n.inputs = [alias.get(i, i) for i in n.inputs]


def _nb201_graph(ops: Sequence[str]) -> _Graph:
    """The exported network as ONNX has it (BN folded into convs), in topological order."""
    from hwnas.search.spaces.nb201 import EDGES

    g = _Graph()
    x = g.add("conv", [0], (16, 32, 32), k=3)
    for stage, (c, hw) in enumerate(((16, 32), (32, 16), (64, 8))):
        if stage:
            a = g.add("conv", [g.add("relu", [x], (c // 2, 2 * hw, 2 * hw))], (c, hw, hw), k=3, s=2)
            b = g.add("conv", [g.add("relu", [a], (c, hw, hw))], (c, hw, hw), k=3)
            d = g.add("conv", [g.add("avgpool", [x], (c // 2, hw, hw), k=2, s=2)], (c, hw, hw), k=1)
            x = g.add("add", [b, d], (c, hw, hw))
        for _ in range(5):
            nodes, sh = [x], (c, hw, hw)
            for i in (1, 2, 3):
                terms = []
                for (target, source), op in zip(EDGES, ops, strict=True):
                    if target != i:
                        continue
                    v = nodes[source]
                    if op == "none":
                        terms.append(g.add("mul", [v], sh))
                    elif op == "skip_connect":
                        terms.append(v)
                    elif op == "avg_pool_3x3":
                        terms.append(g.add("avgpool", [v], sh, k=3))
                    else:
                        k = 1 if op == "nor_conv_1x1" else 3
                        terms.append(g.add("conv", [g.add("relu", [v], sh)], sh, k=k))
                acc = terms[0]
                for term in terms[1:]:  # left to right, as Python's sum() in the cell
                    acc = g.add("add", [acc, term], sh)
                nodes.append(acc)
            x = nodes[3]
    x = g.add("relu", [g.add("bn", [x], (64, 8, 8))], (64, 8, 8))
    x = g.add("flatten", [g.add("gap", [x], (64, 1, 1))], (64, 1, 1))
    g.add("gemm", [x], (10, 1, 1))
    return g


def _cse(g: _Graph) -> None:
    """Merge nodes computing the same thing (ORT's common subexpression elimination)."""
    seen: dict[tuple, int] = {}
    alias: dict[int, int] = {}
    keep = []
    for n in g.nodes:
        n.inputs = [alias.get(i, i) for i in n.inputs]
        if n.op not in ("conv", "bn", "gemm"):  # nodes with their own weights never merge
            key = (n.op, n.k, n.s, tuple(n.inputs))
            if key in seen:
                alias[n.output] = seen[key]
                continue
            seen[key] = n.output
        keep.append(n)
    g.nodes = keep


def _fold_into_producer(g: _Graph, op: str, can: Callable[[_Node, _Node], bool],
                        apply: Callable[[_Node, _Node], None]) -> None:
    """Remove every ``op`` node whose first input comes from a node it can be folded into."""
    uses = g.consumers()
    producer = {n.output: n for n in g.nodes}
    drop: set[int] = set()
    alias: dict[int, int] = {}
    for n in g.nodes:
        p = producer.get(n.inputs[0]) if n.op == op else None
        if p is not None and uses[p.output] == 1 and can(p, n):
            apply(p, n)
            drop.add(id(n))
            alias[n.output] = p.output
    g.replace(drop, alias)


def _fuse_relu(g: _Graph) -> None:
    _fold_into_producer(
        g, "relu",
        lambda p, n: not p.act and (p.op == "conv" or (p.op == "bn" and p.layout == "nchwc")),
        lambda p, n: setattr(p, "act", True))


def _nchwc(g: _Graph) -> tuple[set[int], set[int]]:
    """Assign layouts, fuse Add into convolutions, return tensors needing ReorderInput/Output."""
    layout = {0: "nchw"}
    for n in g.nodes:
        if n.op in ("conv", "avgpool"):
            n.layout = "nchwc"
        elif n.op in ("bn", "gap", "relu"):
            n.layout = layout[n.inputs[0]]
        elif n.op == "add":
            n.layout = "nchwc" if all(layout[i] == "nchwc" for i in n.inputs) else "nchw"
        layout[n.output] = n.layout
    uses = g.consumers()
    producer = {n.output: n for n in g.nodes}
    drop: set[int] = set()
    alias: dict[int, int] = {}
    for n in g.nodes:
        if n.op != "add" or n.layout != "nchwc":
            continue
        for j, i in enumerate(n.inputs):
            p = producer.get(i)
            if p is not None and p.op == "conv" and uses[i] == 1 and not (p.sum or p.act):
                p.sum = True
                p.inputs.append(n.inputs[1 - j])
                drop.add(id(n))
                alias[n.output] = p.output
                break
    g.replace(drop, alias)
    _fuse_relu(g)
    to_nchwc, to_nchw = set(), set()
    for n in g.nodes:
        for i in n.inputs:
            if n.layout == "nchwc" and layout[i] == "nchw":
                # an NCHWc convolution reads an NCHW input of fewer channels than a block itself
                if not (n.op == "conv" and g.shapes[i][0] < _BLOCK):
                    to_nchwc.add(i)
            elif n.layout == "nchw" and layout[i] == "nchwc":
                to_nchw.add(i)
    return to_nchwc, to_nchw


@lru_cache(maxsize=32768)
def _nb201_kernels(ops: tuple[str, ...]) -> tuple[tuple[Kernel, int], ...]:
    g = _nb201_graph(ops)
    _cse(g)
    # ConvMulFusion: the zero scale goes into the convolution's weights
    _fold_into_producer(g, "mul", lambda p, n: p.op == "conv", lambda p, n: None)
    _fuse_relu(g)
    to_nchwc, to_nchw = _nchwc(g)
    out: list[Kernel] = []
    for n in g.nodes:
        c, h, w = g.shapes[n.inputs[0]]
        c_out = g.shapes[n.output][0]
        if n.op == "conv":
            fused = "+".join(f for f, on in (("sum", n.sum), ("relu", n.act)) if on)
            out.append(Kernel("conv", c, c_out, h, w, n.k, n.s, fused))
        elif n.op == "bn":
            out.append(Kernel("dwconv", c, c, h, w, 1, 1, "relu" if n.act else "")
                       if n.layout == "nchwc" else Kernel("batchnorm", c, c, h, w))
        elif n.op == "avgpool":
            out.append(Kernel("avgpool", c, c, h, w, n.k, n.s))
        elif n.op == "gap":
            out.append(Kernel("gap_nchwc" if n.layout == "nchwc" else "gap", c, c, h, w))
        elif n.op == "gemm":
            out.append(Kernel("gemm", c, c_out, 1, 1))
        else:
            out.append(Kernel(n.op, c, c, h, w))
    for op, tensors in (("reorder_in", to_nchwc), ("reorder_out", to_nchw)):
        for t in tensors:
            c, h, w = g.shapes[t]
            out.append(Kernel(op, c, c, h, w))
    return tuple(sorted(Counter(out).items()))


def nb201_kernels(space: Space, arch: Architecture) -> Counter[Kernel]:
    """The multiset of kernels ONNX Runtime (CPU, optimisation ``all``) runs for an NB201 network.

    The network is the one :func:`hwnas.latency.export_onnx` exports (``none`` as ``x * 0``).

    Example:
        >>> s = get_space("nb201")
        >>> k = nb201_kernels(s, s.parse("|skip_connect~0|+|skip_connect~0|skip_connect~1|+|"
        ...                                "skip_connect~0|skip_connect~1|skip_connect~2|"))
        >>> sum(n for kk, n in k.items() if kk.op == "conv")  # stem + 3 per reduction
        7
    """
    space._check(arch)
    if space.name != "nb201":
        raise LUTError(f"nb201_kernels: {arch!r} is not an NB201 architecture")
    return Counter(dict(_nb201_kernels(tuple(space.values(arch)))))


_ENUMERATORS: dict[str, Callable[[Space, Architecture], Counter[Kernel]]] = {
    "nb201": nb201_kernels,
}


def list_lut_spaces() -> list[str]:
    """Spaces whose kernels can be enumerated without exporting the network."""
    return list(_ENUMERATORS)


#: numeric precisions a lookup table can model: the FP32 network, or its static QDQ INT8 form
PRECISIONS: tuple[str, ...] = ("fp32", "int8")


def kernels(space: Space, arch: Architecture, precision: str = "fp32") -> Counter[Kernel]:
    """The multiset of kernel configurations ``arch``'s network runs.

    ``fp32``: enumerated analytically (:func:`nb201_kernels`). ``int8``: read from ONNX Runtime's
    optimised graph of the quantized network (:func:`hwnas.latency.kernels_int8.
    int8_graph_kernels`), which quantizes the network first if it is not cached (seconds) and
    keeps the enumeration on disk.

    Raises:
        LUTError: no kernel model for this space or precision (the message lists the supported
            ones).
    """
    if space.name not in _ENUMERATORS:
        raise LUTError(f"no operator LUT for space {space.name!r}; supported: "
                       f"{', '.join(_ENUMERATORS)}")
    if precision == "fp32":
        return _ENUMERATORS[space.name](space, arch)
    if precision != "int8":
        raise LUTError(f"precision {precision!r}; valid: {', '.join(PRECISIONS)}")
    from .kernels_int8 import int8_graph_kernels
    from .quantize import quantize_onnx

    space._check(arch)
    path = quantize_onnx(space, arch, 1)
    return int8_graph_kernels(path, input_shape=(1, *space.input_shape(arch)),
                              cache_dir=cache_root() / "lut" / "int8")


#: bump when the enumeration changes: cached universes of an older version are not read
_ENUMERATION_VERSION = "1"


@lru_cache(maxsize=8)
def _universe(name: str) -> tuple[Kernel, ...]:
    # enumerating every network takes tens of seconds, so the result is kept on disk
    path = cache_root() / "lut" / f"universe_{name}_v{_ENUMERATION_VERSION}.json"
    try:
        rows = json.loads(path.read_text())
        return tuple(Kernel(**row) for row in rows)
    except (OSError, ValueError, TypeError):
        pass  # absent or unreadable: recompute (and rewrite) it
    space = get_space(name)
    found: set[Kernel] = set()
    genes = np.stack(np.unravel_index(np.arange(space.size), tuple(space.n_choices)), axis=1)
    for g in genes:
        found.update(kernels(space, space.from_genes(g)))
    universe = tuple(sorted(found))
    from .table import atomic_write_text  # a killed or failed write leaves no .tmp behind

    atomic_write_text(path, json.dumps([dataclasses.asdict(k) for k in universe]))
    return universe


def kernel_universe(space: Space) -> list[Kernel]:
    """Every kernel configuration any architecture of a (finite) space runs, sorted."""
    if not space.enumerable:
        raise LUTError(f"space {space.name!r} cannot be enumerated; pass the architectures")
    kernels(space, space.sample(0))  # raises for unsupported spaces
    return list(_universe(space.name))


def graph_kernels(path: str | os.PathLike[str], config: RuntimeConfig | None = None,
                  input_shape: Sequence[int] = (1, 3, 32, 32)) -> Counter[Kernel]:
    """The kernels ONNX Runtime's CPU provider really runs for a model file (ground truth).

    Optimises the model as ``config`` says, reads the optimised graph and takes every node's
    shapes from one profiled run. Slower than :func:`kernels` (a session per model), and the
    reference the analytic enumeration is tested against.
    """
    nodes, _ = _profile_graph(path, config, input_shape, runs=1)
    return Counter(k for _, k in nodes)



def profiled_run(path: str | os.PathLike[str], config: RuntimeConfig, feed: np.ndarray,
                 runs: int, graph_optimization: str | None = None
                 ) -> tuple[Any, dict[str, list[list[int]]], dict[str, list[float]]]:
    """Run a model ``runs`` times in a profiling CPU session; return the optimised graph
    (``onnx.ModelProto``), each node's input shapes and its profiled durations in ms.

    ``graph_optimization`` overrides ``config.graph_optimization`` (the INT8 tables always
    read the fully optimised graph, whose fused QLinear nodes are what runs).
    """
    import onnx
    import onnxruntime as ort

    level = graph_optimization or config.graph_optimization
    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = config.intra_op_threads
        opts.inter_op_num_threads = config.inter_op_threads
        opts.graph_optimization_level = {
            "disable": ort.GraphOptimizationLevel.ORT_DISABLE_ALL,
            "basic": ort.GraphOptimizationLevel.ORT_ENABLE_BASIC,
            "extended": ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED,
            "all": ort.GraphOptimizationLevel.ORT_ENABLE_ALL,
        }[level]
        opts.log_severity_level = 3
        opts.enable_profiling = True
        opts.profile_file_prefix = os.path.join(tmp, "profile")
        opts.optimized_model_filepath = os.path.join(tmp, "optimized.onnx")
        sess = ort.InferenceSession(str(path), opts, providers=["CPUExecutionProvider"])
        inputs = {sess.get_inputs()[0].name: feed}
        for _ in range(runs):
            sess.run(None, inputs)
        with open(sess.end_profiling()) as f:
            events = json.load(f)
        model = onnx.load(opts.optimized_model_filepath)
    shapes: dict[str, list[list[int]]] = {}
    durations: dict[str, list[float]] = {}
    for e in events:
        if e.get("cat") == "Node" and e["name"].endswith("_kernel_time"):
            name = e["name"][: -len("_kernel_time")]
            shapes[name] = [next(iter(d.values())) for d in e["args"]["input_type_shape"]]
            durations.setdefault(name, []).append(e["dur"] / 1e3)
    return model, shapes, durations

_FP32_NAMES = {"Relu": "relu", "Add": "add", "Mul": "mul", "ReorderInput": "reorder_in",
               "ReorderOutput": "reorder_out", "Flatten": "flatten",
               "BatchNormalization": "batchnorm"}


def fp32_node_kernel(n: Any, attrs: dict[str, Any], ins: list[list[int]]) -> Kernel:
    """The FP32 kernel of one node of ONNX Runtime's optimised graph (``ins``: its input shapes
    from a profiled run); also read for the float NCHWc nodes an INT8 graph keeps."""
    c, h, w = (list(ins[0][1:]) + [1, 1])[:3]
    nchwc = n.domain == _NCHWC
    if n.op_type == "Conv":
        act = attrs.get("activation", b"")
        act = (act.decode() if isinstance(act, bytes) else act).lower()
        fused = "+".join(x for x in ("sum" if len(n.input) > 3 and n.input[3] else "", act)
                         if x)
        op = "dwconv" if attrs.get("group", 1) > 1 else "conv" if nchwc else "conv_nchw"
        return Kernel(op, c, ins[1][0], h, w, ins[1][2], attrs.get("strides", [1])[0], fused)
    if n.op_type == "AveragePool":
        return Kernel("avgpool" if nchwc else "avgpool_nchw", c, c, h, w,
                      attrs["kernel_shape"][0], attrs.get("strides", [1])[0])
    if n.op_type == "GlobalAveragePool":
        return Kernel("gap_nchwc" if nchwc else "gap", c, c, h, w)
    if n.op_type == "Gemm":
        return Kernel("gemm", ins[0][1], ins[1][0] if attrs.get("transB") else ins[1][1], 1, 1)
    return Kernel(_FP32_NAMES.get(n.op_type, n.op_type), c, c, h, w)


def _profile_graph(path: str | os.PathLike[str], config: RuntimeConfig | None,
                   input_shape: Sequence[int], runs: int
                   ) -> tuple[list[tuple[str, Kernel]], dict[str, list[float]]]:
    """``(node name, kernel)`` of every node of the optimised graph, and each node's profiled
    durations in ms over ``runs`` calls."""
    from onnx import helper

    config = config or RuntimeConfig()
    model, shapes, durations = profiled_run(path, config,
                                            np.zeros(tuple(input_shape), np.float32), runs)
    out: list[tuple[str, Kernel]] = []
    for n in model.graph.node:
        attrs = {a.name: helper.get_attribute_value(a) for a in n.attribute}
        k = fp32_node_kernel(n, attrs, shapes[n.name])
        out.append((n.name, k))
    return out, durations
