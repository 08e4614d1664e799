"""The report's figures (matplotlib, seaborn's colour-blind palette) and their PNG files.

matplotlib and seaborn are imported inside the functions: importing the report stays cheap, and
the caller picks the backend (the report uses Agg).
"""

from __future__ import annotations

import base64
import io
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from ..core import signs_of
from .collect import ProblemRuns
from .errors import ReportError
from .stats import INDICATORS, problem_scores

__all__ = ["UNITS", "anytime_figure", "checkpoint_grid", "fronts_figure", "palette",
           "prediction_scatter", "read_values", "save_png"]

#: objective -> axis label
UNITS = {"accuracy": "accuracy (%)", "latency": "latency (ms)", "params": "parameters",
         "flops": "FLOPs (M MACs)"}


def palette(labels: Sequence[str]) -> dict[str, Any]:
    """One colour per strategy, the same in every figure of a report (sorted labels)."""
    import seaborn as sns

    labels = sorted(set(labels))
    return dict(zip(labels, sns.color_palette("colorblind", max(len(labels), 3)), strict=False))


def checkpoint_grid(problem: ProblemRuns, points: int = 25) -> list[int]:
    """The evaluation counts anytime curves are scored at: ``points`` evenly spaced from 1 to
    the longest run (25: smooth enough to read, cheap enough to score every run at each)."""
    top = max(len(ev) for _, _, ev in problem.runs)
    return sorted({int(x) for x in np.unique(np.linspace(1, top, points).round())})


def anytime_figure(problem: ProblemRuns, colours: dict[str, Any],
                   scores: pd.DataFrame | None = None) -> Any:
    """Hypervolume ratio and front recall against evaluations: median line, IQR band.

    ``scores`` are the runs' indicators at :func:`checkpoint_grid` (computed if not given)."""
    import matplotlib.pyplot as plt

    if scores is None:
        scores = problem_scores(problem, checkpoint_grid(problem))
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, ind in zip(axes, ("hv_ratio", "recall"), strict=True):
        for label, g in scores.groupby("strategy", sort=True):
            q = g.groupby("evaluations")[ind].quantile([0.25, 0.5, 0.75]).unstack()
            ax.plot(q.index, q[0.5], color=colours[label], label=label, lw=2)
            ax.fill_between(q.index, q[0.25], q[0.75], color=colours[label], alpha=0.2, lw=0)
        ax.set_xlabel("unique architectures evaluated")
        ax.set_ylabel(INDICATORS[ind][0])
        ax.grid(alpha=0.3)
    axes[0].legend(title="strategy (median, IQR band)", fontsize=8)
    fig.suptitle(f"{problem.name}: anytime performance ({problem.reference.kind} front)")
    fig.tight_layout()
    return fig


def fronts_figure(problem: ProblemRuns, scores: pd.DataFrame, colours: dict[str, Any]) -> Any:
    """The reference front and, per strategy, the front of its median run at the last budget."""
    import matplotlib.pyplot as plt

    from hwnas.search import pareto_mask

    names = list(problem.spec["objectives"])
    x, y = (names + names)[:2] if len(names) >= 2 else (names[0], names[0])
    if "accuracy" in names and len(names) >= 2:
        y = "accuracy"
        x = next(n for n in names if n != "accuracy")
    sign = signs_of(names)
    ref = pd.DataFrame(problem.reference.F * sign, columns=names).sort_values(x)
    fig, ax = plt.subplots(figsize=(6.5, 4.5))
    ax.step(ref[x], ref[y], where="post", color="black", lw=1.2, alpha=0.7)
    ax.scatter(ref[x], ref[y], s=14, color="black", label=f"{problem.reference.kind} front",
               zorder=3)
    last = scores[scores["budget"] == scores["budget"].max()]
    for label, g in last.groupby("strategy", sort=True):
        # the run with the median hypervolume ratio represents the strategy
        seed = g.sort_values("hv_ratio")["seed"].iloc[len(g) // 2]
        ev = next(e for s, sd, e in problem.runs if s == label and sd == seed)
        F = ev[names].to_numpy(dtype=np.float64) * sign
        ok = np.isfinite(F).all(axis=1)
        if "violation" in ev:
            ok &= ev["violation"].to_numpy() <= 0
        idx = np.flatnonzero(ok)[pareto_mask(F[ok])] if ok.any() else []
        found = ev.iloc[idx]
        ax.scatter(found[x], found[y], s=26, color=colours[label], alpha=0.85,
                   label=f"{label} (seed {seed})", edgecolor="white", lw=0.4)
    values = pd.concat([ref[x]] + [e[x] for _, _, e in problem.runs]).replace(0, np.nan)
    # latency and parameters span decades on some spaces: a log axis keeps the small end legible
    if values.min() > 0 and values.max() / values.min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel(UNITS.get(x, x) + (" (log scale)" if ax.get_xscale() == "log" else ""))
    ax.set_ylabel(UNITS.get(y, y))
    ax.set_title(f"{problem.name}: fronts found at {int(last['budget'].max())} evaluations")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def save_png(fig: Any, path: str | os.PathLike[str]) -> str:
    """Write ``fig`` to ``path`` as PNG (atomically), close it, and return the PNG as base64."""
    import matplotlib.pyplot as plt

    path = Path(path)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    data = buf.getvalue()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return base64.b64encode(data).decode()


def read_values(path: str | os.PathLike[str]) -> tuple[pd.Series, str]:
    """A table's values keyed by ``index`` (or ``arch``), and the value column's name.

    Raises:
        ReportError: the file cannot be read, or lacks a key or a value column.
    """
    try:
        frame = pd.read_csv(path)
    except (OSError, ValueError) as e:
        raise ReportError(f"{path}: cannot read the table: {e}") from None
    key = "index" if "index" in frame else "arch" if "arch" in frame else None
    value = next((c for c in ("latency_ms", "accuracy") if c in frame), None)
    if key is None or value is None:
        raise ReportError(f"{path}: needs an index (or arch) column and a latency_ms (or "
                          f"accuracy) column; has {', '.join(map(str, frame.columns))}")
    return frame.dropna(subset=[value]).set_index(key)[value], value


def prediction_scatter(pairs: Sequence[tuple[Path, Path]]) -> tuple[list[dict[str, Any]], Any]:
    """Predicted vs measured, one panel per (predicted table, measured table) pair.

    Returns the rows of the agreement table (architectures in both, Spearman, Kendall, mean
    absolute percentage error) and the figure (log-log axes for latency, identity line).

    Raises:
        ReportError: an unreadable table, two tables of different quantities, or fewer than three
            architectures in both.
    """
    import matplotlib.pyplot as plt
    from scipy.stats import kendalltau, spearmanr

    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 4.0), squeeze=False)
    rows = []
    for ax, (pred_path, meas_path) in zip(axes[0], pairs, strict=True):
        pred, kind = read_values(Path(pred_path))
        meas, kind_m = read_values(Path(meas_path))
        if kind != kind_m:
            raise ReportError(f"{pred_path} holds {kind} but {meas_path} holds {kind_m}")
        both = pred.index.intersection(meas.index)
        if len(both) < 3:
            raise ReportError(f"{pred_path} and {meas_path} share {len(both)} architectures; "
                              "a comparison needs at least 3")
        x, y = meas.loc[both].to_numpy(float), pred.loc[both].to_numpy(float)
        label = f"{Path(meas_path).parent.name}/{Path(meas_path).stem}"
        row = {"measured": label, "n": len(both),
               "spearman": float(spearmanr(x, y).statistic),
               "kendall": float(kendalltau(x, y).statistic),
               "mape_%": float(np.mean(np.abs(y - x) / np.abs(x)) * 100)}
        rows.append(row)
        ax.scatter(x, y, s=12, alpha=0.7, color="#0173b2")
        lo, hi = float(min(x.min(), y.min())), float(max(x.max(), y.max()))
        ax.plot([lo, hi], [lo, hi], color="black", lw=1, ls="--", label="predicted = measured")
        if kind == "latency_ms":
            ax.set_xscale("log")
            ax.set_yscale("log")
        unit = "latency (ms)" if kind == "latency_ms" else "accuracy (%)"
        ax.set_xlabel(f"measured {unit}")
        ax.set_ylabel(f"predicted {unit}")
        ax.set_title(f"{label}: Spearman {row['spearman']:.3f}, n={row['n']}", fontsize=9)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=8, loc="upper left")
    fig.tight_layout()
    return rows, fig
