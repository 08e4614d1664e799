"""NAS-Bench-201: a cell-based space of 15,625 networks.

Dong & Yang, "NAS-Bench-201: Extending the Scope of Reproducible Neural Architecture Search",
ICLR 2020 (and NATS-Bench's topology space, Dong et al., TPAMI 2021). A cell is a DAG of four nodes;
each of its six edges ``j -> i`` (``j < i``) carries one of five operations. The canonical string
lists, for nodes 1..3, the operation and source of every incoming edge::

    |nor_conv_3x3~0|+|nor_conv_3x3~0|avg_pool_3x3~1|+|skip_connect~0|nor_conv_3x3~1|skip_connect~2|

The network built for a cell is the benchmark's CIFAR network: a 3x3 stem (16 channels) + BN; three
stages of five cells with 16, 32 and 64 channels, joined by two residual reduction blocks (ReLU-conv
3x3 stride 2-BN, ReLU-conv 3x3-BN, shortcut 2x2 average pool + 1x1 conv); BN-ReLU, global average
pooling and a linear classifier. Edge operations are ReLU-Conv-BN (1x1 or 3x3), 3x3 average pooling
(padding not counted), identity, and ``none``, which multiplies its input by zero as the reference
code does (so an eager runtime still pays for the work that feeds it). The trainable-parameter count
equals the benchmark's for every cell (1,531,546 for all ``nor_conv_3x3`` with 10 classes).

The *index* of an architecture is its row in the benchmark's release, read from the public tables
(bundled with the package, or ``--data``/``HWNAS_DATA``); everything else works without them.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from functools import cache
from pathlib import Path

import numpy as np
import torch
from torch import nn

from ..errors import ArchitectureError, NotInTableError, TableError
from ..tables.files import read_frame, table_root
from .space import Architecture, Gene, Graph, Space

__all__ = ["NB201Space", "OPS", "EDGES", "NB201Network"]

#: operations, in the benchmark's order
OPS: tuple[str, ...] = ("none", "skip_connect", "nor_conv_1x1", "nor_conv_3x3", "avg_pool_3x3")
#: edges (target node, source node), in the order of the canonical string
EDGES: tuple[tuple[int, int], ...] = ((1, 0), (2, 0), (2, 1), (3, 0), (3, 1), (3, 2))
_SIZE = len(OPS) ** len(EDGES)


class NB201Space(Space):
    """The NAS-Bench-201 cell space (finite, enumerable in the benchmark's index order).

    Args:
        data_dir: folder of the public tables, for the official index order; default:
            ``HWNAS_DATA``, else the bundled copy.

    Example:
        >>> s = NB201Space()
        >>> a = s.parse("|nor_conv_3x3~0|+|none~0|skip_connect~1|+|none~0|none~1|avg_pool_3x3~2|")
        >>> a.genes
        (3, 0, 1, 0, 0, 4)
    """

    name = "nb201"
    kind = "cell"
    num_classes = 10

    def __init__(self, data_dir: str | os.PathLike[str] | None = None):
        self.data_dir = data_dir
        self.genes = tuple(Gene(f"edge{t}{s}", OPS) for t, s in EDGES)

    # ------------------------------------------------------------------ strings
    def format(self, arch: Architecture) -> str:
        self._check(arch)
        parts, k = [], 0
        for node in (1, 2, 3):
            tokens = []
            for src in range(node):
                tokens.append(f"{OPS[arch.genes[k]]}~{src}")
                k += 1
            parts.append("|" + "|".join(tokens) + "|")
        return "+".join(parts)

    def parse(self, text: str) -> Architecture:
        text = text.strip()
        nodes = text.split("+")
        if len(nodes) != 3:
            raise ArchitectureError(
                f"nb201: expected 3 node groups joined by '+', got {len(nodes)} in {text!r} "
                "(form: |op~0|+|op~0|op~1|+|op~0|op~1|op~2|)"
            )
        genes: list[int] = []
        for node, group in enumerate(nodes, start=1):
            if not (group.startswith("|") and group.endswith("|")) or len(group) < 2:
                raise ArchitectureError(
                    f"nb201: node {node} group {group!r} must start and end with '|'"
                )
            tokens = group[1:-1].split("|")
            if len(tokens) != node:
                raise ArchitectureError(
                    f"nb201: node {node} needs {node} incoming edge(s), "
                    f"got {len(tokens)} in {group!r}"
                )
            for src, token in enumerate(tokens):
                op, sep, s = token.partition("~")
                if not sep or s != str(src):
                    raise ArchitectureError(
                        f"nb201: edge {token!r} of node {node} must read 'op~{src}'"
                    )
                if op not in OPS:
                    raise ArchitectureError(
                        f"nb201: unknown operation {op!r} on edge {src}->{node}; "
                        f"valid: {', '.join(OPS)}"
                    )
                genes.append(OPS.index(op))
        return self.from_genes(genes)

    # ------------------------------------------------------------------ graph
    def graph(self, arch: Architecture) -> Graph:
        """Operations as nodes (input, the six edges, output), as in BRP-NAS and HELP."""
        self._check(arch)
        n = len(EDGES) + 2
        adj = np.zeros((n, n), dtype=np.uint8)
        for k, (target, source) in enumerate(EDGES, start=1):
            if source == 0:
                adj[0, k] = 1
            else:
                for m, (t2, _) in enumerate(EDGES, start=1):
                    if t2 == source:
                        adj[m, k] = 1
            if target == 3:
                adj[k, n - 1] = 1
        ops = ("input", *(OPS[g] for g in arch.genes), "output")
        return Graph(ops, adj)

    # ------------------------------------------------------------------ network
    def input_shape(self, arch: Architecture) -> tuple[int, int, int]:
        return (3, 32, 32)

    def build(
        self, arch: Architecture, num_classes: int | None = None, none: str = "zero",
        in_channels: int = 3, c: int = 16,
    ) -> NB201Network:
        """The benchmark's CIFAR network for ``arch``.

        Args:
            num_classes: classifier outputs (default 10, CIFAR-10).
            none: ``"zero"`` (reference: ``x * 0``, the work feeding it is still computed) or
                ``"drop"`` (the edge is left out, so exporters can prune dead work).
            in_channels: image channels the stem takes (3: RGB; 1: grey images such as digits).
            c: channels of the first stage (the benchmark's 16; smaller is the "width" fidelity
                knob of live evaluation, the later stages keep the 1:2:4 ratio).
        """
        self._check(arch)
        if none not in ("zero", "drop"):
            raise ArchitectureError(f"nb201: none={none!r}; valid: zero, drop")
        if in_channels < 1 or c < 1:
            raise ArchitectureError(f"nb201: in_channels={in_channels}, c={c}; both must be >= 1")
        ops = [OPS[g] for g in arch.genes]
        return NB201Network(ops, num_classes or self.num_classes, none=none, c=c,
                            in_channels=in_channels)

    # ------------------------------------------------------------------ statistics
    def fast_stats(self, archs: list[Architecture], num_classes: int | None = None) -> list:
        """Parameters and MACs without building each network.

        Every cell of a stage sees the same shapes, so a network's parameters and MACs are a
        fixed part plus one cost per edge operation; the costs are measured once on the five
        uniform cells (via :func:`hwnas.search.spaces.stats.model_stats`) and the sum is exact.
        """
        from .stats import ModelStats

        base, per_op = _op_costs(num_classes or self.num_classes)
        out = []
        for a in archs:
            self._check(a)
            cost = per_op[list(a.genes)].sum(axis=0) + base
            out.append(ModelStats(int(round(cost[0])), float(cost[1])))
        return out

    # ------------------------------------------------------------------ enumeration
    @property
    def enumerable(self) -> bool:
        return True

    def __len__(self) -> int:
        return _SIZE

    def _order(self) -> tuple[list[Architecture], dict[Architecture, int]]:
        root, _ = table_root("nb201", self.data_dir)
        return _official_order(str(root))

    def index(self, arch: Architecture) -> int:
        """The benchmark's index of ``arch`` (needs the public tables)."""
        self._check(arch)
        return self._order()[1][arch]

    def __getitem__(self, index: int) -> Architecture:
        archs = self._order()[0]
        if not isinstance(index, int | np.integer) or not 0 <= index < len(archs):
            raise NotInTableError(f"nb201: index {index} out of range; valid: 0..{len(archs) - 1}")
        return archs[int(index)]

    def __iter__(self) -> Iterator[Architecture]:
        return iter(self._order()[0])


@cache
def _official_order(data_dir: str) -> tuple[list[Architecture], dict[Architecture, int]]:
    table, path = read_frame(Path(data_dir) / "nb201", "architectures", ["index", "arch"])
    if len(table) != _SIZE or not np.array_equal(table["index"].to_numpy(), np.arange(_SIZE)):
        raise TableError(f"{path}: expected indices 0..{_SIZE - 1} in order, got {len(table)} rows")
    space = NB201Space(data_dir)
    archs = [space.parse(s) for s in table["arch"]]
    lookup = {a: i for i, a in enumerate(archs)}
    if len(lookup) != _SIZE:
        raise TableError(f"{path}: {len(archs) - len(lookup)} architectures appear twice")
    return archs, lookup


@cache
def _op_costs(num_classes: int) -> tuple[np.ndarray, np.ndarray]:
    from .stats import model_stats

    space = NB201Space()
    uniform = [model_stats(space, space.from_genes([k] * len(EDGES)), num_classes)
               for k in range(len(OPS))]
    table = np.array([[u.params, u.flops_m] for u in uniform], dtype=np.float64)
    base = table[OPS.index("none")]  # no parameters or MACs on any edge
    return base, (table - base) / len(EDGES)


# ---------------------------------------------------------------------- the network
class ReLUConvBN(nn.Sequential):
    """ReLU, convolution without bias, affine BatchNorm (NAS-Bench-201's conv operation)."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1):
        super().__init__(
            nn.ReLU(inplace=False),
            nn.Conv2d(c_in, c_out, kernel, stride, padding=kernel // 2, bias=False),
            nn.BatchNorm2d(c_out),
        )


class Zero(nn.Module):
    """The ``none`` operation as in the reference code: its input times zero."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.mul(0.0)


def _edge_op(op: str, c: int) -> nn.Module:
    if op == "none":
        return Zero()
    if op == "skip_connect":
        return nn.Identity()
    if op == "nor_conv_1x1":
        return ReLUConvBN(c, c, 1)
    if op == "nor_conv_3x3":
        return ReLUConvBN(c, c, 3)
    if op == "avg_pool_3x3":
        return nn.AvgPool2d(3, stride=1, padding=1, count_include_pad=False)
    raise ArchitectureError(f"nb201: unknown operation {op!r}")


class Cell(nn.Module):
    """One NAS-Bench-201 cell: node i sums its incoming edges; the cell outputs node 3."""

    def __init__(self, ops: list[str], c: int, none: str = "zero"):
        super().__init__()
        keep = [none == "zero" or op != "none" for op in ops]
        self.sources = [(t, s) for (t, s), k in zip(EDGES, keep, strict=True) if k]
        self.edges = nn.ModuleList(
            _edge_op(op, c) for op, k in zip(ops, keep, strict=True) if k
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        nodes = [x]
        for node in (1, 2, 3):
            terms = [
                op(nodes[s]) for (t, s), op in zip(self.sources, self.edges, strict=True)
                if t == node
            ]
            # with dropped `none` edges a node may have no input at all: it is zero
            nodes.append(sum(terms[1:], terms[0]) if terms else torch.zeros_like(x))
        return nodes[3]


class ResidualReduction(nn.Module):
    """NAS-Bench-201's residual block between stages: halves resolution, changes channels."""

    def __init__(self, c_in: int, c_out: int):
        super().__init__()
        self.conv_a = ReLUConvBN(c_in, c_out, 3, stride=2)
        self.conv_b = ReLUConvBN(c_out, c_out, 3)
        self.downsample = nn.Sequential(
            nn.AvgPool2d(2, stride=2), nn.Conv2d(c_in, c_out, 1, bias=False)
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv_b(self.conv_a(x)) + self.downsample(x)


def build_macro(net: nn.Module, make_cell: Callable[[int], nn.Module], num_classes: int, c: int,
                cells_per_stage: int, in_channels: int, sequential: bool = True) -> None:
    """Give ``net`` NB201's stem, cells, last activation, pool and classifier, in that order.

    Three stages of ``cells_per_stage`` cells (``make_cell(width)``, widths ``c``, ``2c``, ``4c``)
    with a :class:`ResidualReduction` between stages, in an ``nn.Sequential`` (or, for a network
    whose forward picks per-cell arguments, an ``nn.ModuleList``). Shared by
    :class:`NB201Network` and the supernet, so their module names (and state_dict keys) agree.
    """
    net.stem = nn.Sequential(nn.Conv2d(in_channels, c, 3, padding=1, bias=False),
                             nn.BatchNorm2d(c))
    layers: list[nn.Module] = []
    for stage, width in enumerate((c, 2 * c, 4 * c)):
        if stage:
            layers.append(ResidualReduction(width // 2, width))
        layers.extend(make_cell(width) for _ in range(cells_per_stage))
    net.cells = nn.Sequential(*layers) if sequential else nn.ModuleList(layers)
    net.lastact = nn.Sequential(nn.BatchNorm2d(4 * c), nn.ReLU(inplace=True))
    net.pool = nn.AdaptiveAvgPool2d(1)
    net.classifier = nn.Linear(4 * c, num_classes)


class NB201Network(nn.Module):
    """NAS-Bench-201's CIFAR macro-network around one cell (16/32/64 channels, 5 cells a stage)."""

    def __init__(self, ops: list[str], num_classes: int = 10, none: str = "zero", c: int = 16,
                 cells_per_stage: int = 5, in_channels: int = 3):
        super().__init__()
        build_macro(self, lambda width: Cell(ops, width, none), num_classes, c, cells_per_stage,
                    in_channels)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.lastact(self.cells(self.stem(x)))
        return self.classifier(torch.flatten(self.pool(x), 1))
