"""Episode samplers and the sinusoid benchmark: disjoint support/query, seeding, errors."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from hwnas.meta import (
    Episode,
    MetaError,
    SinusoidDistribution,
    SinusoidTask,
    TaskSampler,
    as_generator,
    sinusoid_mlp,
    sinusoid_sampler,
)


def pool(n_tasks: int = 3, rows: int = 12) -> list[tuple[np.ndarray, np.ndarray]]:
    # column 0 is a unique row id, so overlap between support and query is visible
    tasks = []
    for t in range(n_tasks):
        X = np.stack([np.arange(rows) + 100 * t, np.full(rows, t)], axis=1).astype(float)
        tasks.append((X, X[:, 0] * 2))
    return tasks


def ids(x: torch.Tensor) -> set[float]:
    return set(x[:, 0].tolist())


def test_finite_tasks_give_disjoint_support_and_query_from_one_task() -> None:
    sampler = TaskSampler(pool(), shots=4, queries=6)
    for ep in sampler.sample_batch(50, as_generator(0)):
        assert isinstance(ep, Episode) and ep.shots == 4 and len(ep.x_query) == 6
        assert not ids(ep.x_support) & ids(ep.x_query)
        assert len(ids(ep.x_support)) == 4 and len(ids(ep.x_query)) == 6
        # every row comes from the task the episode names, with its own target
        assert {r // 100 for r in ids(ep.x_support) | ids(ep.x_query)} == {ep.task}
        assert torch.equal(ep.y_support, ep.x_support[:, 0] * 2)
        assert ep.x_support.dtype == torch.float32


def test_all_remaining_rows_are_the_query_when_queries_is_none() -> None:
    ep = TaskSampler(pool(1, 10), shots=3).sample(as_generator(5))
    assert len(ep.x_query) == 7
    assert ids(ep.x_support) | ids(ep.x_query) == set(range(10))


def test_same_seed_same_episodes_other_seed_other_episodes() -> None:
    sampler = TaskSampler(pool(), shots=3, queries=3)

    def draw(seed: int) -> list[Episode]:
        return sampler.sample_batch(10, as_generator(seed))

    a, b, c = draw(1), draw(1), draw(2)
    assert all(torch.equal(p.x_support, q.x_support) and torch.equal(p.x_query, q.x_query)
               for p, q in zip(a, b, strict=True))
    assert any(not torch.equal(p.x_support, q.x_support) for p, q in zip(a, c, strict=True))
    # every task of the pool is reached
    assert {ep.task for ep in draw(3) + draw(4)} == {0, 1, 2}


def test_integer_labels_stay_integers() -> None:
    X, y = np.random.default_rng(0).normal(size=(8, 3)), np.arange(8) % 2
    ep = TaskSampler([(X, y)], shots=2, queries=2, dtype=torch.float64).sample(as_generator(0))
    assert ep.x_support.dtype == torch.float64 and ep.y_support.dtype == torch.int64


def test_sinusoid_episodes_are_seeded_disjoint_draws_of_the_drawn_task() -> None:
    sampler = sinusoid_sampler(shots=5, queries=7)
    a = sampler.sample_batch(20, as_generator(0))
    b = sampler.sample_batch(20, as_generator(0))
    for ep, again in zip(a, b, strict=True):
        task = ep.task
        assert isinstance(task, SinusoidTask) and task == again.task
        assert torch.equal(ep.x_query, again.x_query)
        assert 0.1 <= task.amplitude <= 5.0 and 0.0 <= task.phase <= math.pi
        assert ep.x_support.shape == (5, 1) and ep.x_query.shape == (7, 1)
        assert ((ep.x_support >= -5) & (ep.x_support <= 5)).all()
        assert not set(ep.x_support.view(-1).tolist()) & set(ep.x_query.view(-1).tolist())
        assert torch.allclose(ep.y_query, task.amplitude * torch.sin(ep.x_query - task.phase))
    amplitudes = [ep.task.amplitude for ep in a]
    assert len(set(amplitudes)) == 20


def test_a_pool_of_sampling_callables_and_fixed_test_tasks() -> None:
    tasks = SinusoidDistribution().tasks(4, seed=3)
    assert tasks == SinusoidDistribution().tasks(4, seed=3)
    assert tasks != SinusoidDistribution().tasks(4, seed=4)
    ep = TaskSampler(tasks, shots=2, queries=3).sample(as_generator(0))
    assert isinstance(ep.task, int) and 0 <= ep.task < 4
    assert torch.allclose(ep.y_support, tasks[ep.task].f(ep.x_support))


def test_seeded_model_and_no_global_rng() -> None:
    state = torch.get_rng_state()
    a, b = sinusoid_mlp(seed=0), sinusoid_mlp(seed=0)
    sinusoid_sampler(5).sample_batch(3, as_generator(0))
    assert torch.equal(torch.get_rng_state(), state)
    assert [p.shape for p in a.parameters()] == [(40, 1), (40,), (40, 40), (40,), (1, 40), (1,)]
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not torch.equal(a[0].weight, sinusoid_mlp(seed=1)[0].weight)


def test_bad_arguments_raise_clear_errors() -> None:
    with pytest.raises(MetaError, match="non-empty sequence"):
        TaskSampler([], shots=1, queries=1)
    with pytest.raises(MetaError, match="task 1 must be an"):
        TaskSampler([pool(1)[0], 42], shots=1, queries=1)
    for shots in (0, -1, 2.0, True):
        with pytest.raises(MetaError, match="shots must be an integer >= 1"):
            TaskSampler(pool(), shots=shots, queries=1)
    with pytest.raises(MetaError, match="queries must be"):
        TaskSampler(pool(), shots=1, queries=0)
    with pytest.raises(MetaError, match="at least 13 rows"):
        TaskSampler(pool(rows=12), shots=10, queries=3).sample(as_generator(0))
    X = np.zeros((5, 1))
    with pytest.raises(MetaError, match="equal lengths"):
        TaskSampler([(X, np.zeros(4))], shots=1, queries=1).sample(as_generator(0))
    with pytest.raises(MetaError, match="queries=None"):
        sinusoid_sampler(5, queries=None).sample(as_generator(0))  # type: ignore[arg-type]
    with pytest.raises(MetaError, match="asked for 3 examples"):
        TaskSampler([lambda n, g: (np.zeros((2, 1)), np.zeros(2))], shots=1,
                    queries=2).sample(as_generator(0))
    with pytest.raises(MetaError, match="amplitude must be finite with low <= high"):
        SinusoidDistribution(amplitude=(5.0, 0.1))
    with pytest.raises(MetaError, match="hidden must be"):
        sinusoid_mlp(hidden=())
    with pytest.raises(MetaError, match="seed must be"):
        as_generator("0")  # type: ignore[arg-type]
