"""Fixtures of the live-training tests: the bundled digits task and a one-thread torch."""

from __future__ import annotations

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
