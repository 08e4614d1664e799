"""Predicted against measured: each candidate's error, its rank change, and the front rebuilt.

The measured front is the constrained non-dominated set of the measured candidates, with the
search's objectives and the measured median latency in place of the predicted one (added as an
objective where the search had none); the search's constraints are checked again on the measured
numbers. A front member that is dominated once measured *fell off*; a neighbour on the measured
front *joined*.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from hwnas.latency import DeviceTable
from hwnas.search import Constraint, HwnasError
from hwnas.search.pareto import constrained_ranks

from ..core import signs_of
from .candidates import DeployError

__all__ = ["compare_latency", "summarize_comparison", "MEMORY_COLUMNS"]

#: memory columns a profile row may carry; copied into the deployable table when present
MEMORY_COLUMNS = ("memory_mb", "peak_memory_mb")


def _violation(values: pd.DataFrame, constraints: Sequence[str], names: list[str]) -> np.ndarray:
    total = np.zeros(len(values))
    for text in constraints:
        try:
            c = Constraint.parse(text, names)
        except HwnasError as e:
            raise DeployError(f"the run's constraint {text!r} cannot be checked: {e}") from None
        total += c.violation(values[c.objective].to_numpy(dtype=np.float64))
    return total


def _ranks(x: pd.Series) -> pd.Series:
    return x.rank(method="min").astype("Int64")


def compare_latency(candidates: pd.DataFrame, table: DeviceTable, names: list[str],
                    constraints: Sequence[str]) -> pd.DataFrame:
    """One row per candidate: predicted and measured latency, errors, ranks, both fronts.

    Args:
        candidates: :func:`hwnas.bench.deploy.select_candidates` output.
        table: the target's measurements (failures in ``meta["failed"]``).
        names: the search's objectives.
        constraints: the search's constraints (``latency<=5``...).

    Returns:
        The candidates with ``status`` (``ok``/``failed``), ``error``, ``measured_ms``,
        ``p10_ms``, ``p90_ms``, ``predicted_ms``, ``rel_error``, ``predicted_rank``,
        ``measured_rank``, ``rank_change``, ``measured_layer``, ``on_front`` (the search's front),
        ``on_measured_front``, ``change`` (``kept``, ``fell off``, ``joined``, ``-``).
    """
    rows = candidates.copy()
    frame = table.frame.set_index("arch")
    failed = {f["arch"]: f.get("error") or "failed" for f in table.meta.get("failed", [])}
    ok = rows["arch"].isin(frame.index)
    rows["status"] = np.where(ok, "ok", "failed")
    rows["error"] = [None if o else failed.get(a, "not measured")
                     for a, o in zip(rows["arch"], ok, strict=True)]
    measured = frame.reindex(rows["arch"])
    rows["measured_ms"] = measured["latency_ms"].to_numpy(dtype=np.float64)
    for col in ("p10_ms", "p90_ms", *MEMORY_COLUMNS):
        if col in measured.columns:
            rows[col] = measured[col].to_numpy(dtype=np.float64)
    has_latency = "latency" in names
    rows["predicted_ms"] = rows["latency"].astype(np.float64) if has_latency else np.nan
    rows["rel_error"] = rows["measured_ms"] / rows["predicted_ms"] - 1.0
    good = rows["status"] == "ok"
    rows["predicted_rank"] = pd.Series(pd.NA, index=rows.index, dtype="Int64")
    rows["measured_rank"] = pd.Series(pd.NA, index=rows.index, dtype="Int64")
    if has_latency:
        rows.loc[good, "predicted_rank"] = _ranks(rows.loc[good, "predicted_ms"])
    rows.loc[good, "measured_rank"] = _ranks(rows.loc[good, "measured_ms"])
    rows["rank_change"] = rows["measured_rank"] - rows["predicted_rank"]
    # the measured problem: the search's objectives, latency now the measured median
    mnames = names if has_latency else [*names, "latency"]
    values = rows.loc[good, names].astype(np.float64).copy()
    values["latency"] = rows.loc[good, "measured_ms"]
    F = values[mnames].to_numpy(dtype=np.float64) * signs_of(mnames)
    rows["measured_layer"] = pd.Series(pd.NA, index=rows.index, dtype="Int64")
    if good.any():
        rows.loc[good, "measured_layer"] = constrained_ranks(
            F, _violation(values, constraints, mnames))
    rows["measured_violation"] = np.nan
    if good.any():
        rows.loc[good, "measured_violation"] = _violation(values, constraints, mnames)
    rows["on_front"] = (rows["layer"] == 0) & (rows["violation"] <= 0)
    rows["on_measured_front"] = (good & (rows["measured_layer"] == 0)
                                 & (rows["measured_violation"] <= 0)).fillna(False).astype(bool)
    rows["change"] = np.select(
        [rows["on_front"] & rows["on_measured_front"], rows["on_front"] & good,
         ~rows["on_front"] & rows["on_measured_front"]],
        ["kept", "fell off", "joined"], "-")
    return rows


def summarize_comparison(rows: pd.DataFrame) -> dict[str, Any]:
    """Spearman and Kendall rank correlation, relative errors and the front's changes."""
    from scipy.stats import kendalltau, spearmanr

    ok = rows[(rows["status"] == "ok") & rows["predicted_ms"].notna()]
    out: dict[str, Any] = {
        "candidates": int(len(rows)), "measured": int((rows["status"] == "ok").sum()),
        "failed": int((rows["status"] == "failed").sum()),
        "front_size": int(rows["on_front"].sum()),
        "measured_front_size": int(rows["on_measured_front"].sum()),
        "kept": rows.loc[rows["change"] == "kept", "arch"].tolist(),
        "fell_off": rows.loc[rows["change"] == "fell off", "arch"].tolist(),
        "joined": rows.loc[rows["change"] == "joined", "arch"].tolist(),
    }
    if len(ok):
        err = ok["rel_error"].to_numpy(dtype=np.float64)
        ratio = ok["measured_ms"] / ok["predicted_ms"]
        out.update({
            "median_abs_rel_error": float(np.median(np.abs(err))),
            "max_abs_rel_error": float(np.max(np.abs(err))),
            # a table of another device is off by a scale; its ranking can still be right
            "median_measured_over_predicted": float(ratio.median()),
        })
    if len(ok) >= 3:
        out["spearman"] = float(spearmanr(ok["predicted_ms"], ok["measured_ms"]).statistic)
        out["kendall"] = float(kendalltau(ok["predicted_ms"], ok["measured_ms"]).statistic)
    return {k: (None if isinstance(v, float) and not np.isfinite(v) else v)
            for k, v in out.items()}
