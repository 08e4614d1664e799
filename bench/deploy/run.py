"""``hwnas deploy`` as a library call: verify a search's front on the real target, and ship it.

1. Read the search (a run folder or one problem of a compare folder) and choose ``top``
   candidates: the front and its nearest runners-up (:data:`~.candidates.SELECTION_RULE`).
2. Measure them on the target (:mod:`.targets`; locally the paired-reference profiler into a
   resumable store: a rerun measures only what is missing).
3. Compare predicted with measured latency and rebuild the front from the measured numbers
   (:mod:`.verify`).
4. Write ``OUT`` as one unit (a temporary sibling folder renamed into place): ``deployable.csv``
   and ``.md``, ``models/*.onnx`` (the exported, or for int8 runtimes quantized, file of every
   network on the measured front), ``deploy.json``, ``report.md`` and
   ``predicted_vs_measured.png``.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import sqlite3
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.latency import Target
from hwnas.search import Architecture, HwnasError, Space, get_space

from ..cache import StatsCache
from ..core.runs import replace_folder
from .candidates import (
    SELECTION_RULE,
    DeployError,
    SearchOutcome,
    accuracy_source,
    read_search,
    select_candidates,
)
from .render import deploy_section, markdown_table, scatter_png
from .targets import DeployTarget, TargetOptions, resolve_target
from .verify import MEMORY_COLUMNS, compare_latency, summarize_comparison

__all__ = ["deploy", "DeployResult", "DEFAULT_TOP", "DEPLOY_FILES"]

#: candidates measured by default: a typical front of an NB201 search and a few runners-up
DEFAULT_TOP = 10
DEPLOY_FILES = ("deployable.csv", "deployable.md", "deploy.json", "report.md",
                "predicted_vs_measured.png", "models")
Progress = Callable[[int, int, str], None]


@dataclass
class DeployResult:
    """What a deploy wrote: the folder, ``deploy.json``'s record and the deployable table."""

    out: Path
    record: dict[str, Any]
    table: pd.DataFrame
    #: store rows before and after measuring (a rerun that measured nothing has them equal)
    store_rows: tuple[int, int] | None = None


def _check_out(out: Path, source: Path) -> None:
    if out.exists() and not out.is_dir():
        raise DeployError(f"--out {out} is a file; give a folder")
    if out.resolve() == source.resolve() or source.resolve() in out.resolve().parents:
        raise DeployError(f"--out {out} is inside the search folder {source}; write the deploy "
                          "elsewhere")
    here = Path(os.path.abspath(out))
    if here == Path.cwd() or here in Path.cwd().parents:
        raise DeployError(f"--out {out} is the working folder (or holds it); give a new folder")
    if out.is_dir() and any(out.iterdir()) and not (out / "deploy.json").is_file():
        raise DeployError(f"--out {out} holds other files (no deploy.json); give a new folder "
                          "or one an earlier deploy wrote")


def _stats(space: Space, archs: list[Architecture]) -> tuple[list[int], list[float]]:
    """Parameters and MACs (millions) through the disk cache (a search already filled it)."""
    try:
        stats = StatsCache().get_many(space, archs)
    except (sqlite3.Error, OSError) as e:
        warnings.warn(f"the statistics cache cannot be used ({e}); counting without it",
                      stacklevel=2)
        from hwnas.search import model_stats

        fast = getattr(space, "fast_stats", None)
        stats = fast(archs) if fast is not None else [model_stats(space, a) for a in archs]
    return [s.params for s in stats], [s.flops_m for s in stats]


def _model_name(space: Space, arch: Architecture, index: Any, precision: str) -> str:
    tag = (str(int(index)) if index is not None and not pd.isna(index)
           else hashlib.sha1(space.format(arch).encode()).hexdigest()[:12])
    return f"{space.name}-{tag}" + ("-int8" if precision == "int8" else "") + ".onnx"


def _latency_source(outcome: SearchOutcome) -> str:
    if "latency" not in outcome.names:
        return "none (latency was not an objective of the search)"
    src = next((o.get("source") for o in outcome.objectives if o.get("name") == "latency"), None)
    return f"{outcome.config.get('device')}" + (f" ({src})" if src else "")


def deploy(source: str | os.PathLike[str], device: str, out: str | os.PathLike[str],
           top: int = DEFAULT_TOP, problem: str | None = None,
           options: TargetOptions | None = None, progress: Progress | None = None,
           target: DeployTarget | None = None) -> DeployResult:
    """Measure a search's front and near-front neighbours on ``device``; write the deployable set.

    Args:
        source: a run folder or a compare folder.
        device: ``RUNTIME`` or ``local:RUNTIME`` (or a registered ``SCHEME:REST``).
        out: the folder to write (new, or an earlier deploy's: replaced as one unit).
        top: candidates to measure in total (:data:`~.candidates.SELECTION_RULE`).
        problem: the problem of a compare folder with several.
        options: runtime settings, protocol and store of the target.
        progress: ``progress(done, total, arch)`` while measuring.
        target: an already built target (else resolved from ``device``).

    Returns:
        The folder, the ``deploy.json`` record and the deployable table.

    Raises:
        DeployError: a folder that is no search or holds no evaluation, an unavailable
            runtime, ``out`` unusable, or every candidate failed (their failures stay in the
            store).
        UnknownNameError: an unknown device or runtime.

    Example:
        >>> deploy("results/runs/nb201-cifar10_test_200ep-pixel2-nsga2-s0", "ort-cpu",
        ...        "results/deploy/pixel2-on-cpu", top=8)  # doctest: +SKIP
    """
    source, out = Path(source), Path(out)
    outcome = read_search(source, problem)
    target = target or resolve_target(device, options)
    target.check()
    _check_out(out, source)
    space = get_space(outcome.config["space"])
    chosen = select_candidates(outcome, top)
    try:
        archs = [space.parse(a) for a in chosen["arch"]]
    except HwnasError as e:
        raise DeployError(f"{source}: an architecture of the run does not parse: {e}") from None
    params, macs = _stats(space, archs)
    before = target.stored_rows() if hasattr(target, "stored_rows") else None
    table = target.measure(space, [Target(a, None if pd.isna(i) else int(i))
                                   for a, i in zip(archs, chosen["index"], strict=True)],
                           progress)
    after = target.stored_rows() if hasattr(target, "stored_rows") else None
    rows = compare_latency(chosen, table, outcome.names, outcome.config.get("constraints") or [])
    rows.attrs["front_size"] = chosen.attrs["front_size"]
    rows["params"], rows["macs_m"] = params, macs
    if not (rows["status"] == "ok").any():
        first = rows["error"].iloc[0]
        raise DeployError(f"every one of the {len(rows)} candidates failed on {target.name} "
                          f"(first: {first}); the failures are recorded in the store")
    models = _models(space, archs, rows, target)
    record = _record(outcome, target, top, rows, table)
    result = DeployResult(out, record, _deployable(rows, outcome),
                          None if before is None else (before, after))
    _write(out, result, rows, models)
    return result


def _models(space: Space, archs: list[Architecture], rows: pd.DataFrame,
            target: DeployTarget) -> dict[int, Path]:
    """The deployable file of every network on the measured front; a network whose file cannot
    be made is marked failed in ``rows`` and left out."""
    files: dict[int, Path] = {}
    for i in np.flatnonzero(rows["on_measured_front"].to_numpy()):
        try:
            files[int(i)] = target.model_file(space, archs[i])
        except Exception as e:  # the exporter and quantizer raise many types: record, go on
            rows.loc[i, "status"] = "export failed"
            rows.loc[i, "error"] = f"{type(e).__name__}: {e}"
    if not files:
        raise DeployError(f"no network of the measured front could be exported for "
                          f"{target.name} (first: {rows['error'].dropna().iloc[0]})")
    for i in files:
        rows.loc[i, "model"] = "models/" + _model_name(space, archs[i], rows.loc[i, "index"],
                                                       target.precision)
    return files


def _deployable(rows: pd.DataFrame, outcome: SearchOutcome) -> pd.DataFrame:
    """The deployable table: the measured front first (by accuracy, else latency), then the
    other candidates with their status."""
    deploy = np.where(rows["status"] != "ok", rows["status"],
                      np.where(rows["on_measured_front"], "front", "dominated"))
    frame = pd.DataFrame({
        "deploy": deploy, "arch": rows["arch"], "index": rows["index"].astype("Int64"),
        "params": rows["params"], "macs_m": rows["macs_m"],
        "accuracy": rows.get("accuracy", np.nan),
        "accuracy_source": accuracy_source(outcome.config),
        "latency_p50_ms": rows["measured_ms"], "latency_p90_ms": rows.get("p90_ms", np.nan),
        **{c: rows[c] for c in MEMORY_COLUMNS if c in rows},
        "predicted_latency_ms": rows["predicted_ms"], "model": rows.get("model"),
        "error": rows["error"],
    })
    order = {"front": 0, "dominated": 1}
    key = frame["deploy"].map(order).fillna(2)
    by = frame["accuracy"].fillna(-np.inf) if "accuracy" in rows else frame["latency_p50_ms"]
    sign = -1 if "accuracy" in rows else 1
    frame = frame.assign(_k=key, _b=sign * by).sort_values(["_k", "_b"], kind="stable")
    return frame.drop(columns=["_k", "_b"]).reset_index(drop=True)


def _clean(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return float(v) if np.isfinite(v) else None
    if isinstance(v, np.integer | np.bool_):
        return v.item()
    if v is pd.NA or v is None:
        return None
    return v


def _record(outcome: SearchOutcome, target: DeployTarget, top: int, rows: pd.DataFrame,
            table: Any) -> dict[str, Any]:
    cols = ["arch", "index", "layer", "on_front", "status", "error", "predicted_ms",
            "measured_ms", "p10_ms", "p90_ms", "rel_error", "predicted_rank", "measured_rank",
            "rank_change", "measured_layer", "on_measured_front", "change"]
    per = [{c: _clean(r[c]) for c in cols if c in rows} for _, r in rows.iterrows()]
    info = target.describe()
    meta = getattr(table, "meta", {}) or {}
    warn = list(outcome.warnings)
    front = int(rows.attrs.get("front_size", 0))
    if front > int((rows["layer"] == 0).sum()):
        warn.append(f"the search's front has {front} members, more than --top {top}; its "
                    f"{int((rows['layer'] == 0).sum())} most spread-out members were measured")
    ref = (meta.get("precision") or {}).get("reference") or {}
    if ref.get("drift_flagged"):
        warn.append(f"the reference network's latency moved up to {ref['max_drift']:.0%} "
                    "while measuring (a busy host); the paired ratios cancel most of it, "
                    "compare ranks before absolute numbers")
    if info.get("precision") == "int8":
        warn.append("accuracy is the search's (fp32 network); the int8 model's accuracy was not "
                    "measured")
    return {
        "source": {"folder": str(outcome.folder), "kind": outcome.kind,
                   "problem": outcome.problem, "runs": outcome.runs,
                   "evaluations": int(len(outcome.evaluations)),
                   "space": outcome.config["space"], "objectives": outcome.names,
                   "constraints": list(outcome.config.get("constraints") or []),
                   "task": outcome.config.get("task"), "device": outcome.config.get("device"),
                   "accuracy_source": accuracy_source(outcome.config),
                   "latency_source": _latency_source(outcome)},
        "target": {k: v for k, v in info.items() if k != "environment"},
        "precision": info.get("precision"),
        "protocol": info.get("protocol"),
        "environment": info.get("environment"),
        "models": ("ONNX Runtime's static QDQ int8 model (hwnas.latency.quantize), the file "
                   "measured" if info.get("precision") == "int8" else
                   "the validated ONNX export (opset 17, hwnas.latency.export) of the network "
                   "measured" + (" in PyTorch" if str(info.get("runtime", "")).startswith(
                       "torch") else "")),
        "selection": {"top": top, "rule": SELECTION_RULE, "chosen": int(len(rows)),
                      "layers": sorted({int(x) for x in rows["layer"]})},
        "measurement": {"statistic": meta.get("statistic"), "precision": meta.get("precision")},
        "comparison": summarize_comparison(rows),
        "candidates": per,
        "warnings": warn,
    }


def _write(out: Path, result: DeployResult, rows: pd.DataFrame, models: dict[int, Path]) -> None:
    """Everything into a temporary sibling folder, then renamed over ``out`` (one unit)."""
    record = result.record
    c = record["comparison"]
    title = (f"Spearman {c['spearman']:.2f}, median |error| {c['median_abs_rel_error']:.0%}"
             if c.get("spearman") is not None else "")
    png = scatter_png(rows, record["target"]["device"], record["source"]["latency_source"],
                      title)
    files = {"deployable.csv": result.table.to_csv(index=False).encode(),
             "deployable.md": markdown_table(result.table).encode()}
    figure = "predicted_vs_measured.png" if png else None
    if png:
        files[figure] = png
    files["report.md"] = ("# hwnas deploy\n\n" + deploy_section(record, rows, figure)).encode()
    record["files"] = sorted([*files, "deploy.json", *(rows.loc[i, "model"] for i in models)])
    files["deploy.json"] = (json.dumps(record, indent=2, default=str) + "\n").encode()
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
        tmp = Path(tempfile.mkdtemp(dir=out.parent, prefix=f".{out.name}.", suffix=".tmp"))
        try:
            (tmp / "models").mkdir()
            for i, src in models.items():
                shutil.copyfile(src, tmp / rows.loc[i, "model"])
            for name, data in files.items():  # deploy.json last: its presence marks a whole one
                with open(tmp / name, "wb") as f:
                    f.write(data)
                    f.flush()
                    os.fsync(f.fileno())
            mask = os.umask(0)
            os.umask(mask)
            os.chmod(tmp, 0o777 & ~mask)
            replace_folder(tmp, out)
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    except OSError as e:
        raise DeployError(f"cannot write the deploy folder {out}: {e.strerror or e}; the "
                          "measurements are safe in the store, rerun to write it") from None
