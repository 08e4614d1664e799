"""Operator-level latency lookup tables (LUT) for ONNX Runtime.

A network's latency is predicted as the sum of the latencies of the *kernels* the runtime really
executes, each measured once on the device, plus a small fitted overhead. This is the latency
model of FBNet (Wu et al., "FBNet: Hardware-Aware Efficient ConvNet Design via Differentiable
Neural Architecture Search", CVPR 2019) and once-for-all (Cai et al., "Once-for-All: Train One
Network and Specialize it for Efficient Deployment", ICLR 2020), with nn-Meter's lesson (Zhang et
al., "nn-Meter: Towards Accurate Latency Prediction of Deep-Learning Model Inference on Diverse
Edge Devices", MobiSys 2021) that a kernel is what the runtime executes *after* its graph
optimiser has fused operators, not an operator of the model as written.

What ONNX Runtime (CPU provider, ``graph_optimization="all"``) does to an exported NAS-Bench-201
network, read from ``SessionOptions.optimized_model_filepath`` and reproduced by
:func:`nb201_kernels` (checked against the optimised graph by :func:`graph_kernels`):

* BatchNorm after a convolution is folded into it (by the exporter already); ``Identity`` goes.
* Common subexpressions are merged: all ReLUs of one node's conv edges become one ReLU, ``none``
  edges from one node one ``Mul``, pooling edges from one node one pool, equal partial sums one Add.
* A ``Mul`` by the zero constant whose input is a convolution's only use is folded into that
  convolution's weights (``ConvMulFusion``): such a ``none`` edge costs nothing.
* A ReLU that is a convolution's only use becomes the convolution's activation.
* Convolutions and pools switch to the blocked NCHWc layout (``com.microsoft.nchwc``); an ``Add``
  of two NCHWc tensors where one is a convolution's only use becomes that convolution's ``Sum``
  input (the first such input); ``Mul`` stays in NCHW, so a ``none`` edge forces a
  ``ReorderOutput`` of its input and keeps the node's additions in NCHW, and an NCHW tensor read
  by a convolution or pool needs a ``ReorderInput`` (one per tensor). The final BatchNorm becomes
  a depthwise NCHWc convolution with the ReLU fused when its input is NCHWc; otherwise it stays a
  plain BatchNorm, ReLU and global pool in NCHW.

Kernels are measured in the form the runtime executes them: a tiny ONNX model built with
``onnx.helper`` from the runtime's own (NCHWc) operators, run with graph optimisation disabled so
that it runs exactly as written. Each kernel is timed in two models, of ``n1`` and ``n2`` copies
(chained when the kernel keeps its input's shape, else fanned out from one input); the slope is
its cost, free of the session's per-call overhead and of the layout conversions at the model's
boundary (a trivial session's per-call time is measured alongside and recorded). On a host
that flips between fast and slow states (as this project's 2-vCPU VM does), every kernel model
is timed in alternating chunks with a reference network and kept as a ratio to it, which
cancels the host's state; between the reference's calls the kernel also finds caches and
predictors in the semi-cold state it finds inside a network, not the warm state of a tight
loop over one tiny model. The prediction is ``a * sum + b``, with ``a`` and ``b`` fitted (least
absolute relative error) on a few whole networks timed the same way.

The INT8 runtime (``runtime="ort-cpu-int8"``: the static QDQ network of
:mod:`hwnas.latency.quantize`) gets the same table and fit, with kernels read from ONNX Runtime's
optimised graph of each quantized network rather than enumerated (which QDQ groups fuse into
integer kernels depends on how the quantizer saw each operator; see
:mod:`hwnas.latency.kernels_int8`), timed as INT8 kernel models. A table records its runtime and
precision, and :meth:`OperatorLUT.check_runtime` refuses it for another runtime.
"""

from __future__ import annotations

import dataclasses
import json
import math
import os
from collections.abc import Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import Architecture, MetricSource, Space, get_space

from .environment import describe_environment
from .kernel_models import _atomic_write, kernel_model
from .kernels import (
    KERNEL_COLUMNS,
    PRECISIONS,
    Kernel,
    LUTError,
    graph_kernels,
    kernel_universe,
    kernels,
    list_lut_spaces,
    nb201_kernels,
)
from .lut_timing import (
    LUT_RUNTIMES,
    REFERENCE_ARCHS,
    Progress,
    _rounds_of,
    measure_kernels,
    measure_networks,
    network_timer,
)
from .protocol import MeasurementProtocol
from .runtime import RuntimeConfig

__all__ = [
    "KERNEL_COLUMNS",
    "Kernel",
    "LUTError",
    "LUTLatency",
    "LUT_RUNTIMES",
    "OperatorLUT",
    "PRECISIONS",
    "REFERENCE_ARCHS",
    "build_lut",
    "graph_kernels",
    "kernel_model",
    "kernel_universe",
    "kernels",
    "list_lut_spaces",
    "measure_kernels",
    "measure_networks",
    "nb201_kernels",
    "network_timer",
]

# ---------------------------------------------------------------------- the table
def _fit_affine(sums: np.ndarray, measured: np.ndarray, iterations: int = 50
                ) -> tuple[float, float]:
    """``a, b`` minimising the mean absolute *relative* error of ``a * sum + b``.

    Least absolute deviations (iteratively reweighted least squares), so that a calibration
    network caught in the host's slow state in every round does not drag the fit. Both numbers
    are kept non-negative (non-negative least squares at each step): a network costs at least
    its kernels' scaled sum plus a fixed overhead, and an unconstrained fit to noisy timings
    can give a negative overhead, which predicts a negative latency for the smallest networks.
    """
    from scipy.optimize import nnls

    design = np.stack([sums / measured, 1.0 / measured], axis=1)
    target = np.ones_like(measured)
    weights = np.ones_like(measured)
    coef = np.zeros(2)
    for _ in range(iterations):
        w = np.sqrt(weights)
        coef, _ = nnls(design * w[:, None], target * w)
        residual = np.abs(design @ coef - target)
        weights = 1.0 / np.maximum(residual, 1e-4)
    return float(coef[0]), float(coef[1])


class OperatorLUT:
    """A measured kernel table and the two fitted numbers that turn its sums into latencies.

    ``predict(archs) = a * kernel_sum(archs) + b`` (ms), where ``kernel_sum`` adds the table's
    latency of every kernel the network runs (:func:`kernels`) and ``a``, ``b`` (``coef_``) were
    fitted on whole networks measured with the same protocol (FBNet's and once-for-all's
    lookup-table model, nn-Meter's kernels; see the module docstring).

    Args:
        space: name of the space the table is for.
        table: one row per kernel: the :data:`KERNEL_COLUMNS`, ``latency_ms`` and spread columns.
        coef: the fitted ``(a, b)``.
        metadata: runtime configuration, protocol, environment, calibration set and fit quality.

    Example:
        >>> lut = build_lut("nb201", calibration_archs=24)        # doctest: +SKIP
        >>> lut.predict([lut.space.sample(0)])                    # doctest: +SKIP
        array([2.31...])
    """

    def __init__(self, space: str, table: pd.DataFrame, coef: tuple[float, float],
                 metadata: dict[str, Any] | None = None):
        missing = [c for c in (*KERNEL_COLUMNS, "latency_ms") if c not in table.columns]
        if missing:
            raise LUTError(f"kernel table lacks columns {missing}")
        self.space_name = space
        self.table = table.reset_index(drop=True)
        self.coef_ = (float(coef[0]), float(coef[1]))
        self.metadata = dict(metadata or {})
        self._lookup = {
            Kernel(*(row[c] for c in KERNEL_COLUMNS)): float(row["latency_ms"])
            for row in self.table.to_dict("records")
        }

    @property
    def space(self) -> Space:
        return get_space(self.space_name)

    @property
    def runtime(self) -> str:
        """The runtime the table was measured on (tables from before INT8: ``ort-cpu``)."""
        return str(self.metadata.get("runtime", "ort-cpu"))

    @property
    def precision(self) -> str:
        """``fp32`` or ``int8``: which network's kernels the table holds."""
        return str(self.metadata.get("precision", "fp32"))

    def check_runtime(self, runtime: str) -> None:
        """Refuse to stand for another runtime's latency (an FP32 table for an INT8 profile, or
        the reverse): their kernels differ.

        Raises:
            LUTError: naming both runtimes and precisions.
        """
        want = LUT_RUNTIMES.get(runtime, (None, "?"))[1]
        if runtime != self.runtime:
            raise LUTError(f"this lookup table was built for runtime {self.runtime} "
                           f"({self.precision}), not {runtime} ({want}); build one with "
                           f"hwnas profile --lut --runtime {runtime}")

    def __len__(self) -> int:
        return len(self._lookup)

    def kernel_sum(self, archs: Sequence[Architecture]) -> np.ndarray:
        """The plain sum of the table's kernel latencies per architecture (ms; NaN when a kernel
        it runs is not in the table)."""
        space = self.space
        out = np.empty(len(archs))
        for i, arch in enumerate(archs):
            total = 0.0
            for k, n in kernels(space, arch, self.precision).items():
                total += n * self._lookup.get(k, math.nan)
            out[i] = total
        return out

    def predict(self, archs: Sequence[Architecture]) -> np.ndarray:
        """Predicted latencies in ms, ``a * kernel_sum + b`` (NaN where a kernel is missing)."""
        a, b = self.coef_
        return a * self.kernel_sum(archs) + b

    def save(self, directory: str | os.PathLike[str]) -> Path:
        """Write ``kernels.csv`` and ``lut.json`` (each to a temporary file, then renamed)."""
        folder = Path(directory)
        _atomic_write(folder / "kernels.csv", self.table.to_csv(index=False).encode())
        record = {"space": self.space_name, "model": "latency_ms = a * kernel_sum_ms + b",
                  "a": self.coef_[0], "b": self.coef_[1], "n_kernels": len(self),
                  **self.metadata}
        _atomic_write(folder / "lut.json",
                      (json.dumps(record, indent=2, default=_jsonable) + "\n").encode())
        return folder

    @classmethod
    def load(cls, directory: str | os.PathLike[str], runtime: str | None = None) -> OperatorLUT:
        """Read a table written by :meth:`save`; with ``runtime``, only one built for it.

        Raises:
            LUTError: a file is missing or unreadable, or the table is another runtime's
                (:meth:`check_runtime`).
        """
        folder = Path(directory)
        try:
            record = json.loads((folder / "lut.json").read_text())
            table = pd.read_csv(folder / "kernels.csv", keep_default_na=False,
                                dtype={"fused": str, "op": str, "method": str})
        except (OSError, ValueError) as e:
            raise LUTError(f"cannot read an operator LUT from {folder}: {e}") from None
        coef = (record.pop("a"), record.pop("b"))
        space = record.pop("space")
        for key in ("model", "n_kernels"):
            record.pop(key, None)
        lut = cls(space, table, coef, record)
        if runtime is not None:
            lut.check_runtime(runtime)
        return lut

    def __repr__(self) -> str:
        a, b = self.coef_
        return (f"OperatorLUT(space={self.space_name!r}, runtime={self.runtime!r}, "
                f"kernels={len(self)}, "
                f"a={a:.4g}, b={b:.4g} ms)")


def _jsonable(x: Any) -> Any:
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    if dataclasses.is_dataclass(x) and not isinstance(x, type):
        return asdict(x)
    return str(x)


def build_lut(
    space: Space | str,
    runtime_config: RuntimeConfig | None = None,
    protocol: MeasurementProtocol | None = None,
    provider: str = "CPUExecutionProvider",
    calibration_archs: Sequence[Architecture] | int = 24,
    kernel_archs: Sequence[Architecture] | None = None,
    kernel_protocol: MeasurementProtocol | None = None,
    copies: tuple[int, int] = (1, 9),
    paired: bool = True,
    reference: Architecture | None = None,
    seed: int | None = 0,
    device: str | None = None,
    progress: Progress | None = None,
    runtime: str = "ort-cpu",
    reference_runtime: str | None = None,
) -> OperatorLUT:
    """Measure a space's kernels on this device and fit the overhead on whole networks.

    Args:
        space: the space (or its name); see :func:`list_lut_spaces`.
        runtime_config: threads, batch, graph optimisation of the networks (``all``: the kernel
            enumeration models ONNX Runtime's optimised graph at that level).
        protocol: how every model is timed; its ``rounds`` interleaved passes, each model keeping
            the minimum of its rounds' medians. Default: the protocol's defaults with 2 rounds.
        provider: ONNX Runtime execution provider (the kernels are the CPU provider's).
        calibration_archs: architectures measured whole to fit ``a`` and ``b`` (least absolute
            relative error), or how many to draw with ``seed``. Keep them out of any set the
            table is evaluated on.
        kernel_archs: measure only the kernels these architectures run (default: every kernel of
            the space, :func:`kernel_universe`); the calibration architectures' are added.
        kernel_protocol: a different protocol for the kernel models (default: ``protocol``);
            e.g. more rounds, since they are quick.
        copies: the two copy counts whose timing difference is a kernel's cost.
        paired: time every kernel model and calibration network in alternating chunks with a
            reference network and keep ratios to it (see :func:`measure_kernels`), all at one
            scale (``reference_ms``, the reference's median over the kernel measurements): on a
            host that flips between fast and slow states this is what makes the table
            repeatable. ``False``: plain minimum of round medians.
        reference: the reference network (default: :data:`REFERENCE_ARCHS` of the space).
        seed: draws the calibration architectures when ``calibration_archs`` is a count.
        device: name recorded with the table (default: the runtime's name, e.g. ``ort-cpu``).
        progress: called as ``progress(done, total)`` after every timed model and network.
        runtime: ``ort-cpu`` (FP32) or ``ort-cpu-int8`` (the static QDQ network: kernels read
            from ONNX Runtime's optimised quantized graph, timed as INT8 kernel models, networks
            timed by the INT8 runtime). INT8 has no analytic enumeration, so its default kernel
            set is the calibration and reference networks' (pass ``kernel_archs`` to cover the
            architectures to predict).
        reference_runtime: the runtime the paired reference network runs on (default:
            ``runtime``). The reference only probes the host's state, so a cheaper one serves:
            an INT8 table may be paired with the FP32 reference network.

    Returns:
        The fitted :class:`OperatorLUT`.

    Raises:
        LUTError: unsupported space, runtime, provider or optimisation level, too few
            calibration networks (at least 2), or a fit with a non-positive slope.
    """
    space = get_space(space) if isinstance(space, str) else space
    runtime_config = runtime_config or RuntimeConfig()
    protocol = protocol or MeasurementProtocol(rounds=2)
    if runtime not in LUT_RUNTIMES:
        raise LUTError(f"no operator lookup table for runtime {runtime!r}; valid: "
                       f"{', '.join(LUT_RUNTIMES)}")
    precision = LUT_RUNTIMES[runtime][1]
    if provider != LUT_RUNTIMES[runtime][0] or runtime_config.graph_optimization != "all":
        raise LUTError("the kernel enumeration models ONNX Runtime's CPU provider at graph "
                       f"optimisation 'all'; got {provider} at "
                       f"{runtime_config.graph_optimization!r}")
    if isinstance(calibration_archs, int):
        calibration_archs = space.sample_batch(calibration_archs, rng=seed)
    calibration = list(dict.fromkeys(calibration_archs))
    if len(calibration) < 2:
        raise LUTError(f"need at least 2 distinct calibration architectures, got "
                       f"{len(calibration)}")
    if paired or precision == "int8":
        reference = reference or space.parse(REFERENCE_ARCHS[space.name])
    wanted: set[Kernel] = set()
    for arch in calibration:
        wanted.update(kernels(space, arch, precision))
    if kernel_archs is None and precision == "fp32":
        wanted.update(kernel_universe(space))
    else:
        # INT8 (no enumeration of the space): the reference network covers every op kind
        for arch in kernel_archs if kernel_archs is not None else [reference]:
            wanted.update(kernels(space, arch, precision))
    kernel_protocol = kernel_protocol or protocol
    n_models = _rounds_of(kernel_protocol) * (1 + 2 * len(wanted))
    total = n_models + _rounds_of(protocol) * len(calibration)

    def part(offset: int) -> Progress | None:
        if progress is None:
            return None
        return lambda done, _: progress(offset + done, total)

    if paired:
        reference_runtime = reference_runtime or runtime
        ref_timer = network_timer(space, reference, runtime_config, runtime=reference_runtime)
    else:
        reference = ref_timer = None
    table, info = measure_kernels(sorted(wanted), runtime_config, kernel_protocol, provider,
                                  copies, ref_timer, progress=part(0))
    reference_ms = info["reference_ms"] if paired else None
    # timed as the kernels are (paired: at the same reference scale), so that the fit does not
    # absorb a host state the kernels did not see
    measured = measure_networks(space, calibration, runtime_config, protocol, provider,
                                ref_timer, reference_ms, progress=part(n_models),
                                runtime=runtime)
    draft = OperatorLUT(space.name, table, (1.0, 0.0), {"precision": precision})
    sums = draft.kernel_sum(calibration)
    a, b = _fit_affine(sums, measured)
    if not a > 0:
        raise LUTError(f"the calibration networks fit latency = {a:.3g} * kernel_sum + {b:.3g} "
                       "ms: measure more, or more varied, calibration networks")
    fitted = a * sums + b
    from .runtime import get_runtime

    metadata = {
        "device": device or runtime,
        "runtime": runtime,
        "precision": precision,
        "runtime_info": get_runtime(runtime, runtime_config).describe(),
        "provider": provider,
        "runtime_config": asdict(runtime_config),
        "kernel_session": {"graph_optimization": "disable", "copies": list(copies)},
        "kernel_enumeration": ("analytic (nb201_kernels)" if precision == "fp32" else
                               "ONNX Runtime's optimised graph of each quantized network"),
        "protocol": asdict(protocol),
        "kernel_protocol": asdict(kernel_protocol),
        "session_overhead_ms": info["session_overhead_ms"],
        "paired_reference": None if reference is None else {
            "arch": space.format(reference), "runtime": reference_runtime,
            "reference_ms": reference_ms,
            "note": "kernel and calibration latencies are ratios to this network x "
                    "reference_ms"},
        "none": "zero",
        "calibration": {
            "archs": [space.format(x) for x in calibration],
            "measured_ms": measured.tolist(),
            "kernel_sum_ms": sums.tolist(),
            "mape": float(np.mean(np.abs(fitted - measured) / measured)),
        },
        "environment": describe_environment(),
    }
    return OperatorLUT(space.name, table, (a, b), metadata)


class LUTLatency(MetricSource):
    """Latency predicted by an :class:`OperatorLUT` (ms); NaN for a network running a kernel the
    table lacks. Named ``lut:<device>``.

    Example:
        >>> source = LUTLatency(OperatorLUT.load("results/luts/nb201_ort-cpu"))  # doctest: +SKIP
        >>> source.evaluate(archs)                                               # doctest: +SKIP
    """

    unit = "ms"

    def __init__(self, lut: OperatorLUT, device: str | None = None):
        super().__init__()
        self.lut = lut
        self.name = f"lut:{device or lut.metadata.get('device', 'unknown')}"

    def _evaluate(self, archs: list[Architecture]) -> np.ndarray:
        return self.lut.predict(archs)
