"""Comparison reports: one self-contained HTML file and a Markdown file with figures.

Per problem: a summary table (median and IQR of hypervolume ratio, front recall, IGD+ and
constrained regret at every budget checkpoint, each strategy's average rank, and a Wilcoxon
signed-rank test over seeds of each strategy against the best, Holm-corrected: Demšar, "Statistical
Comparisons of Classifiers over Multiple Data Sets", JMLR 2006), anytime curves (median line, IQR
band), and the fronts found against the reference front. Inputs are ``hwnas compare`` folders or
``hwnas search`` run folders; predictor benchmark results can be added.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from hwnas.search import HwnasError

from .scoring import SIGNS, ReferenceFront, load_references, read_run, reference_front, score_run

__all__ = ["build_report", "collect", "summary_table", "holm", "prediction_scatter", "ReportError"]

INDICATORS = {"hv_ratio": ("hypervolume ratio", "max"), "recall": ("front recall", "max"),
              "igd_plus": ("IGD+", "min"), "regret": ("accuracy regret (pp)", "min")}
UNITS = {"accuracy": "accuracy (%)", "latency": "latency (ms)", "params": "parameters",
         "flops": "FLOPs (M MACs)"}


class ReportError(HwnasError):
    """Inputs a report cannot be made from; the message names the folder and why."""


@dataclass
class Problem:
    name: str
    spec: dict[str, Any]
    reference: ReferenceFront
    runs: list[tuple[str, int, pd.DataFrame]]  # (strategy, seed, evaluations)
    budgets: list[int]
    # live-trained runs (hwnas search --evaluate train): (strategy, seed, run.json "training")
    training: list[tuple[str, int, dict[str, Any]]] = field(default_factory=list)


# ---------------------------------------------------------------------- inputs
def _problem_key(config: dict[str, Any]) -> tuple:
    # live-trained accuracy is its own problem: another dataset or recipe is another objective
    live = (config.get("dataset"), json.dumps(config.get("train") or {}, sort_keys=True)) \
        if config.get("evaluate") == "train" else None
    return (config["space"], tuple(config["objectives"]), config.get("task"),
            config.get("device"), tuple(config.get("constraints") or ()), live)


def collect(inputs: Sequence[str | os.PathLike[str]], data_dir: str | None = None
            ) -> list[Problem]:
    """Problems with their runs from compare folders and single run folders.

    Raises:
        ReportError: a folder that is neither (one line, naming it).
    """
    problems: dict[str, Problem] = {}
    loose: dict[tuple, list[tuple[str, int, pd.DataFrame]]] = {}
    trained: dict[tuple, list[tuple[str, int, dict[str, Any]]]] = {}
    for path in map(Path, inputs):
        if not path.is_dir():
            raise ReportError(f"{path}: not a folder (give compare folders or run folders)")
        if (path / "compare.json").is_file():
            try:
                manifest = json.loads((path / "compare.json").read_text())
                cfg = manifest["config"]
                refs = load_references(path)
            except (ValueError, KeyError, TypeError, HwnasError) as e:
                raise ReportError(f"{path}: a corrupt compare folder: {e}") from None
            for pname, (spec, ref) in refs.items():
                runs = []
                for label in cfg["strategies"]:
                    for seed in cfg["seeds"]:
                        folder = path / "runs" / pname / label / str(seed)
                        if (folder / "run.json").is_file():
                            runs.append((label, int(seed), read_run(folder)[1]))
                name = pname if pname not in problems else f"{path.name}/{pname}"
                problems[name] = Problem(name, spec, ref, runs, list(cfg["budgets"]))
        elif (path / "run.json").is_file():
            try:
                record, ev = read_run(path)
            except HwnasError as e:
                raise ReportError(str(e)) from None
            c = record["config"]
            loose.setdefault(_problem_key(c), []).append((c["strategy"], int(c["seed"]), ev))
            if isinstance(record.get("training"), dict):
                trained.setdefault(_problem_key(c), []).append(
                    (c["strategy"], int(c["seed"]), {**record["training"],
                                                     "dataset": c.get("dataset")}))
        else:
            raise ReportError(f"{path}: neither a compare folder (compare.json) nor a search run "
                              "(run.json)")
    for key, runs in loose.items():
        space, objectives, task, device, constraints, live = key
        spec = {"space": space, "objectives": list(objectives), "task": task, "device": device,
                "constraints": list(constraints), **({"evaluate": "train"} if live else {})}
        ref = reference_front(spec, data_dir, [ev for _, _, ev in runs])
        tag = None
        if live:
            epochs = json.loads(live[1]).get("epochs")
            tag = f"{live[0]}-{epochs}ep" if epochs else live[0]
        base = name = "-".join(str(x) for x in (space, tag, device or task) if x)
        k = 1
        while name in problems:
            k += 1
            name = f"{base} ({k})"
        budgets = sorted({len(ev) for _, _, ev in runs})
        problems[name] = Problem(name, spec, ref, runs, budgets, trained.get(key, []))
    if not problems:
        raise ReportError("no finished runs in the given folders")
    return list(problems.values())


# ---------------------------------------------------------------------- statistics
def holm(pvalues: Sequence[float]) -> np.ndarray:
    """Holm-Bonferroni adjusted p-values (Holm, Scand. J. Statistics 1979)."""
    p = np.asarray(pvalues, dtype=np.float64)
    order = np.argsort(p)
    adjusted = np.empty_like(p)
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (len(p) - rank) * p[i]))
        adjusted[i] = running
    return adjusted


def _scores(problem: Problem, budgets: Sequence[int]) -> pd.DataFrame:
    rows = []
    for label, seed, ev in problem.runs:
        for row in score_run(ev, problem.spec, problem.reference, budgets):
            rows.append({"strategy": label, "seed": seed, **row})
    return pd.DataFrame(rows)


def summary_table(scores: pd.DataFrame, budget: int, alpha: float = 0.05) -> pd.DataFrame:
    """Per strategy at one budget: median and IQR of every indicator, average rank (by
    hypervolume ratio, per seed), and the Holm-corrected Wilcoxon test against the best."""
    from scipy.stats import wilcoxon

    at = scores[scores["budget"] == budget]
    out = []
    for label, g in at.groupby("strategy", sort=True):
        row: dict[str, Any] = {"strategy": label, "runs": len(g)}
        for ind in INDICATORS:
            q1, med, q3 = np.nanpercentile(g[ind].replace(np.inf, np.nan), [25, 50, 75]) \
                if g[ind].notna().any() and np.isfinite(g[ind]).any() else (np.nan,) * 3
            row[ind] = med
            row[f"{ind}_iqr"] = q3 - q1
        out.append(row)
    table = pd.DataFrame(out)
    if table.empty:
        return table
    wide = at.pivot_table(index="seed", columns="strategy", values="hv_ratio")
    ranks = wide.rank(axis=1, ascending=False).mean(axis=0)
    table["avg_rank"] = table["strategy"].map(ranks)
    best = table.loc[table["hv_ratio"].idxmax(), "strategy"]
    pvals, names = [], []
    for label in table["strategy"]:
        if label == best:
            continue
        pair = wide[[best, label]].dropna()
        diff = pair[best] - pair[label]
        p = float(wilcoxon(pair[best], pair[label]).pvalue) if (diff != 0).any() and \
            len(pair) >= 2 else 1.0
        pvals.append(p)
        names.append(label)
    adjusted = dict(zip(names, holm(pvals), strict=True)) if pvals else {}
    table["p_holm"] = table["strategy"].map(adjusted)
    table["vs_best"] = [
        "best" if s == best else ("worse (significant)" if adjusted[s] < alpha
                                  else "not significantly different")
        for s in table["strategy"]]
    return table.sort_values("avg_rank").reset_index(drop=True)


# ---------------------------------------------------------------------- figures
def _palette(labels: Sequence[str]) -> dict[str, Any]:
    import seaborn as sns

    labels = sorted(set(labels))
    return dict(zip(labels, sns.color_palette("colorblind", max(len(labels), 3)), strict=False))


def _anytime(problem: Problem, palette: dict[str, Any]):
    import matplotlib.pyplot as plt

    top = max(len(ev) for _, _, ev in problem.runs)
    grid = sorted({int(x) for x in np.unique(np.linspace(1, top, 25).round())})
    scores = _scores(problem, grid)
    fig, axes = plt.subplots(1, 2, figsize=(11, 4))
    for ax, ind in zip(axes, ("hv_ratio", "recall"), strict=True):
        for label, g in scores.groupby("strategy", sort=True):
            q = g.groupby("evaluations")[ind].quantile([0.25, 0.5, 0.75]).unstack()
            ax.plot(q.index, q[0.5], color=palette[label], label=label, lw=2)
            ax.fill_between(q.index, q[0.25], q[0.75], color=palette[label], alpha=0.2, lw=0)
        ax.set_xlabel("unique architectures evaluated")
        ax.set_ylabel(INDICATORS[ind][0])
        ax.grid(alpha=0.3)
    axes[0].legend(title="strategy (median, IQR band)", fontsize=8)
    fig.suptitle(f"{problem.name}: anytime performance ({problem.reference.kind} front)")
    fig.tight_layout()
    return fig


def _fronts(problem: Problem, scores: pd.DataFrame, palette: dict[str, Any]):
    import matplotlib.pyplot as plt

    names = list(problem.spec["objectives"])
    x, y = (names + names)[:2] if len(names) >= 2 else (names[0], names[0])
    if "accuracy" in names and len(names) >= 2:
        y = "accuracy"
        x = next(n for n in names if n != "accuracy")
    sign = np.array([SIGNS[n] for n in names])
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
        from hwnas.search import pareto_mask

        idx = np.flatnonzero(ok)[pareto_mask(F[ok])] if ok.any() else []
        found = ev.iloc[idx]
        ax.scatter(found[x], found[y], s=26, color=palette[label], alpha=0.85,
                   label=f"{label} (seed {seed})", edgecolor="white", lw=0.4)
    values = pd.concat([ref[x]] + [e[x] for _, _, e in problem.runs]).replace(0, np.nan)
    if values.min() > 0 and values.max() / values.min() > 20:
        ax.set_xscale("log")
    ax.set_xlabel(UNITS.get(x, x) + (" (log scale)" if ax.get_xscale() == "log" else ""))
    ax.set_ylabel(UNITS.get(y, y))
    ax.set_title(f"{problem.name}: fronts found at {int(last['budget'].max())} evaluations")
    ax.grid(alpha=0.3)
    ax.legend(fontsize=7)
    fig.tight_layout()
    return fig


def _save(fig: Any, path: Path) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110)
    plt.close(fig)
    data = buf.getvalue()
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_bytes(data)
    os.replace(tmp, path)
    return base64.b64encode(data).decode()


# ---------------------------------------------------------------------- documents
def _fmt(v: Any) -> str:
    if isinstance(v, float | np.floating):
        return "-" if not np.isfinite(v) else f"{v:.3g}"
    return str(v)


def _table_rows(table: pd.DataFrame) -> tuple[list[str], list[list[str]]]:
    header = ["strategy", "runs", "avg rank"] + [INDICATORS[i][0] + " median (IQR)"
                                                 for i in INDICATORS] + ["vs best (Holm p)"]
    rows = []
    for _, r in table.iterrows():
        cells = [r["strategy"], str(r["runs"]), f"{r['avg_rank']:.2f}"]
        cells += [f"{_fmt(r[i])} ({_fmt(r[i + '_iqr'])})" for i in INDICATORS]
        p = r["p_holm"]
        cells.append(r["vs_best"] + ("" if pd.isna(p) else f" (p={p:.3g})"))
        rows.append(cells)
    return header, rows


def _predictor_section(paths: Sequence[Path]) -> tuple[list[str], list[str]]:
    """Rank-correlation tables of predictor benchmark JSON files (md lines, html parts)."""
    md, parts = [], []
    for path in paths:
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as e:
            raise ReportError(f"{path}: cannot read predictor results: {e}") from None
        table = data.get("table") or data.get("summary")
        if not isinstance(table, list) or not table or not isinstance(table[0], dict):
            raise ReportError(f"{path}: expected a 'table' list of rows (dicts)")
        cols = list(table[0])
        md += [f"### Predictor: {Path(path).stem}", "", "| " + " | ".join(cols) + " |",
               "|" + " --- |" * len(cols)]
        md += ["| " + " | ".join(_fmt(r.get(c)) for c in cols) + " |" for r in table] + [""]
        parts.append(f"<h3>Predictor: {html.escape(Path(path).stem)}</h3>"
                     + _html_table(cols, [[_fmt(r.get(c)) for c in cols] for r in table]))
    return md, parts


def _read_values(path: Path) -> tuple[pd.Series, str]:
    """A table's values keyed by ``index`` (or ``arch``), and the value column's name."""
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
    """
    import matplotlib.pyplot as plt
    from scipy.stats import kendalltau, spearmanr

    fig, axes = plt.subplots(1, len(pairs), figsize=(4.2 * len(pairs), 4.0), squeeze=False)
    rows = []
    for ax, (pred_path, meas_path) in zip(axes[0], pairs, strict=True):
        pred, kind = _read_values(Path(pred_path))
        meas, kind_m = _read_values(Path(meas_path))
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


def _training_section(problem: Problem) -> tuple[list[str], list[str]]:
    """How live-trained accuracy was obtained, per run, and the front the runs found."""
    first = problem.training[0][2]
    r = first.get("recipe", {})
    what = (f"Accuracy is the validation accuracy of each network trained now on "
            f"{first.get('dataset')} ({r.get('epochs')} epochs, batch {r.get('batch_size')}, "
            f"SGD lr {r.get('lr')} cosine, width x{r.get('width')}, "
            f"{r.get('train_fraction', 1):.0%} of the training set, seed {r.get('seed')}).")
    header = ["strategy", "seed", "trained", "from cache", "epochs run", "epochs saved (early "
              "stop)", "inherited weights", "training s"]
    rows = [[label, str(seed), str(t.get("trained")), str(t.get("cache_hits")),
             str(t.get("epochs_run")), str(t.get("epochs_saved")), str(t.get("inherited_runs")),
             f"{t.get('train_seconds', 0):.0f}"] for label, seed, t in problem.training]
    names = problem.spec["objectives"]
    union = pd.concat([ev for _, _, ev in problem.runs], ignore_index=True)
    union = union.drop_duplicates("arch")
    if "violation" in union:
        union = union[union["violation"] <= 0]
    front_rows: list[list[str]] = []
    if len(union):
        from hwnas.search import pareto_mask

        F = union[names].to_numpy(dtype=np.float64) * np.array([SIGNS[n] for n in names])
        front = union[pareto_mask(F)].sort_values(names[0], ascending=False)
        front_rows = [[a.replace("|", "\\|"), *(_fmt(v) for v in vals)]
                      for a, *vals in front[["arch", *names]].itertuples(index=False)]
    md = [what, "", "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
    md += ["| " + " | ".join(row) + " |" for row in rows] + [""]
    parts = [f"<p>{html.escape(what)}</p>", _html_table(header, rows)]
    if front_rows:
        fh = ["architecture", *names]
        md += ["Non-dominated networks found:", "", "| " + " | ".join(fh) + " |",
               "|" + " --- |" * len(fh)]
        md += ["| " + " | ".join(row) + " |" for row in front_rows] + [""]
        plain = [[r[0].replace("\\|", "|"), *r[1:]] for r in front_rows]
        parts += ["<p>Non-dominated networks found:</p>", _html_table(fh, plain)]
    return md, parts


def _html_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> str:
    head = "".join(f"<th>{html.escape(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td>{html.escape(c)}</td>" for c in r) + "</tr>"
                   for r in rows)
    return f"<table><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


_CSS = ("body{font-family:system-ui,sans-serif;max-width:1100px;margin:2em auto;color:#222}"
        "table{border-collapse:collapse;font-size:13px;margin:1em 0}"
        "th,td{border:1px solid #ccc;padding:4px 8px;text-align:right}"
        "th:first-child,td:first-child{text-align:left}img{max-width:100%}")


def build_report(inputs: Sequence[str | os.PathLike[str]], out: str | os.PathLike[str],
                 data_dir: str | None = None,
                 predictions: Sequence[str | os.PathLike[str]] = (),
                 scatter: Sequence[tuple[str | os.PathLike[str], str | os.PathLike[str]]] = (),
                 ) -> dict[str, Any]:
    """Write ``out/report.html`` (self-contained), ``out/report.md`` and ``out/*.png``.

    Args:
        predictions: predictor benchmark JSON files (their ``table`` becomes a rho table).
        scatter: (predicted table, measured table) CSV pairs: a predicted-vs-measured figure and
            an agreement table.

    Raises:
        ReportError: an input folder that is not a finished run or compare folder.
    """
    import matplotlib

    matplotlib.use("Agg")
    problems = collect(inputs, data_dir)
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    palette = _palette([s for p in problems for s, _, _ in p.runs])
    md = ["# hwnas comparison report", ""]
    parts = ["<h1>hwnas comparison report</h1>"]
    n_fig = 0
    for problem in problems:
        spec = problem.spec
        desc = (f"space {spec['space']}, objectives {', '.join(spec['objectives'])}"
                + (f", task {spec['task']}" if spec.get("task") else "")
                + (f", device {spec['device']}" if spec.get("device") else "")
                + (f", constraints {', '.join(spec['constraints'])}"
                   if spec.get("constraints") else ""))
        ref = problem.reference
        note = (f"Reference: the {ref.kind} front ({len(ref.F)} points"
                + (f" among {ref.candidates} architectures" if ref.kind == "true" else
                   ", the non-dominated union of all runs") + ").")
        md += [f"## {problem.name}", "", desc + ".", "", note, ""]
        parts += [f"<h2>{html.escape(problem.name)}</h2>",
                  f"<p>{html.escape(desc)}.</p><p>{html.escape(note)}</p>"]
        if problem.training:
            tmd, tparts = _training_section(problem)
            md += tmd
            parts += tparts
        scores = _scores(problem, problem.budgets)
        for b in problem.budgets:
            header, rows = _table_rows(summary_table(scores, b))
            md += [f"**Budget {b}** (median over seeds; Wilcoxon signed-rank vs the best by "
                   "hypervolume ratio, Holm-corrected, alpha 0.05)", "",
                   "| " + " | ".join(header) + " |", "|" + " --- |" * len(header)]
            md += ["| " + " | ".join(r) + " |" for r in rows] + [""]
            parts += [f"<h3>Budget {b}</h3>", _html_table(header, rows)]
        slug = "".join(c if c.isalnum() else "_" for c in problem.name)
        for kind, fig in (("anytime", _anytime(problem, palette)),
                          ("fronts", _fronts(problem, scores, palette))):
            name = f"{slug}_{kind}.png"
            b64 = _save(fig, out / name)
            n_fig += 1
            md += [f"![{problem.name} {kind}]({name})", ""]
            parts.append(f'<img alt="{html.escape(problem.name)} {kind}" '
                         f'src="data:image/png;base64,{b64}">')
    pmd, pparts = _predictor_section([Path(p) for p in predictions])
    md += pmd
    parts += pparts
    if scatter:
        rows, fig = prediction_scatter([(Path(a), Path(b)) for a, b in scatter])
        b64 = _save(fig, out / "predicted_vs_measured.png")
        n_fig += 1
        cols = list(rows[0])
        cells = [[r["measured"], str(r["n"]), f"{r['spearman']:.3f}", f"{r['kendall']:.3f}",
                  f"{r['mape_%']:.1f}"] for r in rows]
        md += ["## Predicted vs measured", "", "| " + " | ".join(cols) + " |",
               "|" + " --- |" * len(cols)]
        md += ["| " + " | ".join(c) + " |" for c in cells]
        md += ["", "![predicted vs measured](predicted_vs_measured.png)", ""]
        parts += ["<h2>Predicted vs measured</h2>", _html_table(cols, cells),
                  f'<img alt="predicted vs measured" src="data:image/png;base64,{b64}">']
    page = ("<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\">"
            f"<title>hwnas report</title><style>{_CSS}</style></head><body>"
            + "\n".join(parts) + "</body></html>\n")
    from hwnas.latency import atomic_write_text

    atomic_write_text(out / "report.md", "\n".join(md) + "\n")
    atomic_write_text(out / "report.html", page)
    return {"html": out / "report.html", "md": out / "report.md", "figures": n_fig}
