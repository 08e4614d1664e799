"""Micro-benchmarks (pytest-benchmark): ``tox -e bench`` or
``python -m pytest bench/micro --benchmark-only``. Not part of the test suite.

Each benchmark reports operations per second; the per-item rates quoted in the README divide by the
batch size given in the benchmark's name.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from hwnas.search import get_space

DATA = Path(os.environ.get("HWNAS_DATA") or Path(__file__).resolve().parents[2].parent
            / "shared" / "data")
BATCH = 1000


@pytest.mark.parametrize("name", ["nb201", "fbnet", "ofa"])
def test_sample_mutate_encode_1000(benchmark, name):
    """1000 x (sample, mutate, encode) on one seeded generator."""
    space = get_space(name)
    rng = np.random.default_rng(0)

    def work():
        for _ in range(BATCH):
            space.encode(space.mutate(space.sample(rng), rng))

    benchmark(work)


@pytest.mark.parametrize("name", ["nb201", "fbnet", "ofa"])
def test_encode_batch_1000(benchmark, name):
    space = get_space(name)
    archs = space.sample_batch(BATCH, rng=0)
    benchmark(space.encode_batch, archs)


@pytest.fixture(scope="module")
def nb201_tables():
    from hwnas.bench import load_tables

    if not (DATA / "nb201").is_dir():
        pytest.skip(f"public tables not found at {DATA} (set HWNAS_DATA)")
    return load_tables("nb201", DATA)


def test_table_latency_query_100000(benchmark, nb201_tables):
    """One vectorised latency lookup of 100,000 indices."""
    idx = np.random.default_rng(0).integers(0, len(nb201_tables), 100_000)
    benchmark(nb201_tables.get_latency, "pixel2", idx)


def test_table_accuracy_query_100000(benchmark, nb201_tables):
    idx = np.random.default_rng(0).integers(0, len(nb201_tables), 100_000)
    benchmark(nb201_tables.get_accuracy, "cifar10_test_200ep", idx)


def test_table_index_of_1000(benchmark, nb201_tables):
    """1000 architecture -> index lookups (hash of an immutable value)."""
    archs = get_space("nb201").sample_batch(BATCH, rng=0)
    benchmark(lambda: [nb201_tables.index_of(a) for a in archs])
