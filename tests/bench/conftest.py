"""Fixtures of the live-training tests: the bundled digits task and a one-thread torch."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from hwnas.bench.live.datasets import get_dataset


@pytest.fixture(scope="session")
def splits():
    """scikit-learn's digits with the fixed split (loaded once)."""
    return get_dataset("digits")


@pytest.fixture
def one_thread():
    """Train on one thread (deterministic, polite on 2 cores); restore the count afterwards."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.fixture
def shots_csv(tmp_path, synthetic_data) -> Path:
    """12 measured and trained shots of the synthetic table (index, latency_ms, accuracy)."""
    table = pd.read_csv(synthetic_data / "nb201" / "architectures.csv").head(12)
    path = tmp_path / "shots.csv"
    pd.DataFrame({"index": table["index"], "latency_ms": 1.0 + table.index / 10,
                  "accuracy": table["cifar10_test_200ep"]}).to_csv(path, index=False)
    return path
