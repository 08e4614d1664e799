"""The MAML sinusoid regression benchmark: MAML, FOMAML, Meta-SGD and an LSTM meta-learner
against a pretrained-then-fine-tuned baseline, in one run.

Setup (Finn, Abbeel & Levine, ICML 2017, section 5.1): ``y = A sin(x - phi)``, ``A ~ U[0.1, 5]``,
``phi ~ U[0, pi]``, ``x ~ U[-5, 5]``; MLP 1-40-40-1 with ReLU; K support points; inner step size
0.01; outer optimiser Adam with learning rate 1e-3; one inner step during meta-training. Every
method starts from the same initialisation and sees the same stream of training episodes.

* ``maml`` second-order MAML; ``fomaml`` first-order MAML (Nichol et al., 2018); ``metasgd``
  Meta-SGD (Li et al., 2017; rates start at 0.01); ``lstm`` the coordinate-wise LSTM meta-learner
  (Ravi & Larochelle, ICLR 2017; Andrychowicz et al., NeurIPS 2016; hidden size 20), meta-trained
  through ``--lstm-steps`` unrolled steps with the query loss averaged over them (Andrychowicz et
  al.'s trajectory loss), so that it is trained to be useful after every step.
* ``pretrained`` one model trained on all tasks jointly (Adam, same number of iterations and tasks),
  then fine-tuned with plain gradient descent on the K shots; its step size is tuned separately
  for 1 and for 10 steps on validation tasks (the MAML paper tunes it automatically too).

Evaluation: mean squared error on 100 query points per task over ``--test-tasks`` unseen tasks
(600 by default) after 1 and 10 adaptation steps, with a 95% confidence interval (normal
approximation, 1.96 standard errors over tasks). Cost: median wall time per meta-iteration
(``--meta-batch`` tasks, one CPU thread) and the memory of one episode's autograd graph at the
outer backward pass: the bytes of the distinct tensor storages autograd saved for backward
(``torch.autograd.graph.saved_tensors_hooks``), the parameters themselves excluded. That is the
memory second-order MAML adds over first-order MAML; ``tracemalloc`` cannot see it (PyTorch's CPU
allocator bypasses Python's), and ``resource.getrusage`` gives one process-wide peak (reported too).

The MAML paper meta-trains for 70,000 iterations of 25 tasks; the default here is far fewer (a
shared two-core CPU, about ten minutes), so absolute errors are higher than the paper's; the
comparison between methods at equal budget is the point.

Usage:
    python bench/scripts/sinusoid_benchmark.py --meta-iters 400 --shots 5 10 \
        --out results/benchmarks/sinusoid.json
"""

from __future__ import annotations

import argparse
import dataclasses
import gc
import json
import platform
import resource
import sys
import time
import weakref
from collections.abc import Callable

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from hwnas.latency import atomic_write_text
from hwnas.meta import (
    MAML,
    Episode,
    Learner,
    LSTMMetaLearner,
    MetaSGD,
    SinusoidDistribution,
    TaskSampler,
    as_generator,
    sinusoid_mlp,
    sinusoid_sampler,
)

__all__ = [
    "Config", "make_method", "episode_loss", "graph_bytes", "meta_train", "adapter", "errors",
    "fixed_episodes", "summary", "run", "cell", "markdown", "parse", "main"
]

METHODS = ("maml", "fomaml", "metasgd", "lstm", "pretrained")
EVAL_STEPS = (1, 10)
BASELINE_LRS = (0.001, 0.003, 0.01, 0.03, 0.1, 0.3)


@dataclasses.dataclass(frozen=True)
class Config:
    meta_iters: int
    meta_batch: int
    shots: tuple[int, ...]
    inner_lr: float
    outer_lr: float
    inner_steps: int
    lstm_steps: int
    lstm_hidden: int
    test_tasks: int
    val_tasks: int
    query_points: int
    seed: int
    out: str


def make_method(name: str, cfg: Config) -> nn.Module:
    model = sinusoid_mlp(seed=cfg.seed)  # the same initialisation for every method
    if name == "maml":
        return MAML(model, inner_lr=cfg.inner_lr)
    if name == "fomaml":
        return MAML(model, inner_lr=cfg.inner_lr, first_order=True)
    if name == "metasgd":
        return MetaSGD(model, inner_lr=cfg.inner_lr)
    if name == "lstm":
        return LSTMMetaLearner(model, hidden_size=cfg.lstm_hidden, inner_lr=cfg.inner_lr,
                               seed=cfg.seed)
    if name == "pretrained":
        return model
    raise ValueError(name)


def episode_loss(name: str, method: nn.Module, ep: Episode, cfg: Config) -> torch.Tensor:
    """The outer (meta-)loss of one training episode."""
    if name == "pretrained":  # joint training: regress on every point of the task
        x = torch.cat([ep.x_support, ep.x_query])
        return F.mse_loss(method(x), torch.cat([ep.y_support, ep.y_query]))
    if name == "lstm":
        learner = method.adapt(ep.x_support, ep.y_support, steps=cfg.lstm_steps)
        return torch.stack([F.mse_loss(learner.at(k)(ep.x_query), ep.y_query)
                            for k in range(1, cfg.lstm_steps + 1)]).mean()
    learner = method.adapt(ep.x_support, ep.y_support, steps=cfg.inner_steps)
    return F.mse_loss(learner(ep.x_query), ep.y_query)


def graph_bytes(method: nn.Module, loss_fn: Callable[[], torch.Tensor]) -> int:
    """Bytes of the distinct storages that autograd holds for the outer backward of ``loss_fn``.

    Tensors saved and already released (the inner loss's graph, which first-order adaptation frees
    after taking its gradient) are not counted: only what is still alive when backward starts.
    """
    params = {p.untyped_storage().data_ptr() for p in method.parameters()}
    saved: list[tuple[weakref.ref, int, int]] = []

    def pack(t: torch.Tensor) -> torch.Tensor:
        s = t.untyped_storage()
        if s.data_ptr() not in params:
            saved.append((weakref.ref(t), s.data_ptr(), s.nbytes()))
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        loss = loss_fn()
    gc.collect()
    alive = {ptr: n for ref, ptr, n in saved if ref() is not None}
    loss.backward()
    method.zero_grad(set_to_none=True)
    return sum(alive.values())


def meta_train(name: str, shots: int, cfg: Config) -> tuple[nn.Module, dict]:
    method = make_method(name, cfg)
    opt = torch.optim.Adam(method.parameters(), lr=cfg.outer_lr)
    sampler = sinusoid_sampler(shots, queries=shots)  # the paper meta-trains with K query points
    g = as_generator(cfg.seed * 1000 + shots)  # the same episode stream for every method
    probe = sampler.sample(as_generator(cfg.seed + 99))
    graph = graph_bytes(method, lambda: episode_loss(name, method, probe, cfg))
    times, losses = [], []
    for _ in range(cfg.meta_iters):
        batch = sampler.sample_batch(cfg.meta_batch, g)
        t0 = time.perf_counter_ns()
        opt.zero_grad(set_to_none=True)
        total = 0.0
        for ep in batch:
            # backward per episode: gradients accumulate, and only one episode's graph is alive
            loss = episode_loss(name, method, ep, cfg) / cfg.meta_batch
            loss.backward()
            total += loss.item()
        opt.step()
        times.append(time.perf_counter_ns() - t0)
        losses.append(total)
    return method, {"ms_per_meta_iter_median": float(np.median(times)) / 1e6,
                    "ms_per_meta_iter_p90": float(np.percentile(times, 90)) / 1e6,
                    "graph_bytes_per_episode": graph,
                    "train_loss_last50": float(np.mean(losses[-50:]))}


def adapter(name: str, method: nn.Module, lr: float | None = None
            ) -> Callable[[torch.Tensor, torch.Tensor, int], Learner]:
    if name == "pretrained":
        ft = MAML(method, inner_lr=lr, first_order=True)  # first-order MAML's inner loop = SGD
        return lambda x, y, s: ft.adapt(x, y, steps=s).detach()
    # first_order at evaluation: the same adapted values, no graph through the gradients
    return lambda x, y, s: method.adapt(x, y, steps=s, first_order=True).detach()


def errors(adapt: Callable, episodes: list[Episode], steps: int) -> np.ndarray:
    """Query MSE per task (rows) after 0..steps adaptation steps (columns)."""
    out = np.empty((len(episodes), steps + 1))
    for i, ep in enumerate(episodes):
        learner = adapt(ep.x_support, ep.y_support, steps)
        with torch.no_grad():
            for k in range(steps + 1):
                out[i, k] = F.mse_loss(learner.at(k)(ep.x_query), ep.y_query).item()
    return out


def fixed_episodes(n: int, shots: int, cfg: Config, seed: int) -> list[Episode]:
    """One episode for each of ``n`` tasks fixed by ``seed`` (the same tasks for every K)."""
    tasks = SinusoidDistribution().tasks(n, seed)
    g = as_generator(seed + shots)
    # one sampler per task, in order: a pool sampler would pick the tasks at random
    return [TaskSampler([t], shots=shots, queries=cfg.query_points).sample(g) for t in tasks]


def summary(err: np.ndarray) -> dict:
    """Mean and 95% CI over tasks; tasks whose adaptation diverged (non-finite error) are counted
    apart, and then the mean over all tasks is undefined (None), not silently dropped."""
    finite = err[np.isfinite(err)]
    diverged = int(len(err) - len(finite))

    def ci(e: np.ndarray) -> float | None:
        return float(1.96 * np.std(e, ddof=1) / np.sqrt(len(e))) if len(e) > 1 else None

    return {"mse": float(np.mean(err)) if not diverged else None,
            "ci95": ci(err) if not diverged else None,
            "median": float(np.median(finite)) if len(finite) else None,
            "diverged": diverged,
            "mse_finite_tasks": float(np.mean(finite)) if len(finite) else None,
            "ci95_finite_tasks": ci(finite)}


def run(cfg: Config) -> dict:
    t_start = time.perf_counter()
    rows, costs, tuned = [], [], {}
    for shots in cfg.shots:
        test = fixed_episodes(cfg.test_tasks, shots, cfg, seed=10_000 + cfg.seed)
        val = fixed_episodes(cfg.val_tasks, shots, cfg, seed=20_000 + cfg.seed)
        for name in METHODS:
            t0 = time.perf_counter()
            method, cost = meta_train(name, shots, cfg)
            costs.append({"shots": shots, "method": name, **cost,
                          "train_s": time.perf_counter() - t0})
            if name == "pretrained":
                by_lr = {lr: errors(adapter(name, method, lr), val, max(EVAL_STEPS)).mean(0)
                         for lr in BASELINE_LRS}
                lrs = {s: min(BASELINE_LRS, key=lambda lr, s=s: np.nan_to_num(
                    by_lr[lr][s], nan=np.inf)) for s in EVAL_STEPS}
                tuned[shots] = lrs
                errs = {s: errors(adapter(name, method, lrs[s]), test, s)[:, s]
                        for s in EVAL_STEPS}
            else:
                err = errors(adapter(name, method), test, max(EVAL_STEPS))
                errs = {s: err[:, s] for s in EVAL_STEPS}
            for s in EVAL_STEPS:
                rows.append({"shots": shots, "method": name, "steps": s,
                             "n_tasks": len(test), **summary(errs[s])})
            print(f"K={shots} {name}: " + ", ".join(
                f"{s} step(s) {np.mean(errs[s]):.3f}" for s in EVAL_STEPS)
                + f" ({costs[-1]['train_s']:.0f}s)", file=sys.stderr, flush=True)
    return {
        "benchmark": "sinusoid regression (Finn et al., ICML 2017, section 5.1)",
        "config": dataclasses.asdict(cfg),
        "results": rows,
        "cost": costs,
        "pretrained_tuned_lr": {str(k): {str(s): lr for s, lr in v.items()}
                                for k, v in tuned.items()},
        "memory_measure": "bytes of distinct tensor storages saved for backward in one episode's "
                          "autograd graph (saved_tensors_hooks), parameters excluded",
        "process_peak_rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "reference": "MAML paper: 70,000 meta-iterations of 25 tasks; this run uses "
                     f"{cfg.meta_iters} of {cfg.meta_batch}",
        "environment": {"torch": torch.__version__, "python": platform.python_version(),
                        "threads": torch.get_num_threads(), "machine": platform.machine()},
        "wall_s": time.perf_counter() - t_start,
    }


def cell(r: dict) -> str:
    if not r["diverged"]:
        return f"{r['mse']:.3f} ± {r['ci95']:.3f}"
    return f"diverged on {r['diverged']}/{r['n_tasks']} tasks"


def markdown(result: dict) -> str:
    shots = result["config"]["shots"]
    by = {(r["shots"], r["method"], r["steps"]): r for r in result["results"]}
    head = [f"K={k}, {s} step{'s' if s > 1 else ''}" for k in shots for s in EVAL_STEPS]
    lines = ["| method | " + " | ".join(head) + " |", "|---" * (len(head) + 1) + "|"]
    for m in METHODS:
        cells = [cell(by[k, m, s]) for k in shots for s in EVAL_STEPS]
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    lines += ["", "| method | K | ms / meta-iteration (median) | graph KiB / episode |",
              "|---|---|---|---|"]
    for c in result["cost"]:
        lines.append(f"| {c['method']} | {c['shots']} | {c['ms_per_meta_iter_median']:.1f} | "
                     f"{c['graph_bytes_per_episode'] / 1024:.1f} |")
    return "\n".join(lines)


def parse(argv: list[str] | None = None) -> Config:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--meta-iters", type=int, default=400)
    p.add_argument("--meta-batch", type=int, default=10)
    p.add_argument("--shots", type=int, nargs="+", default=[5, 10])
    p.add_argument("--inner-lr", type=float, default=0.01)
    p.add_argument("--outer-lr", type=float, default=1e-3)
    p.add_argument("--inner-steps", type=int, default=1)
    p.add_argument("--lstm-steps", type=int, default=2)
    p.add_argument("--lstm-hidden", type=int, default=20)
    p.add_argument("--test-tasks", type=int, default=600)
    p.add_argument("--val-tasks", type=int, default=200)
    p.add_argument("--query-points", type=int, default=100)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", default="results/benchmarks/sinusoid.json")
    a = p.parse_args(argv)
    if a.meta_iters < 1 or a.meta_batch < 1 or a.test_tasks < 2 or a.val_tasks < 1:
        p.error("--meta-iters, --meta-batch, --val-tasks must be >= 1 and --test-tasks >= 2")
    return Config(a.meta_iters, a.meta_batch, tuple(a.shots), a.inner_lr, a.outer_lr,
                  a.inner_steps, a.lstm_steps, a.lstm_hidden, a.test_tasks, a.val_tasks,
                  a.query_points, a.seed, a.out)


def main(argv: list[str] | None = None) -> int:
    torch.set_num_threads(1)
    cfg = parse(argv)
    result = run(cfg)
    atomic_write_text(cfg.out, json.dumps(result, indent=2) + "\n")
    print(markdown(result))
    print(f"\nwritten {cfg.out} in {result['wall_s']:.0f}s")
    return 0

