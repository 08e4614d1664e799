"""A grid whose constraints no architecture of the table meets is refused before it runs."""

from __future__ import annotations

import pytest

from hwnas.bench.compare import CompareConfig, ConfigError, check_grid


def _config(constraint: str) -> CompareConfig:
    problem = {"space": "nb201", "task": "cifar10_test_200ep", "device": "dev_a",
               "objectives": ["accuracy", "latency"], "constraints": [constraint]}
    return CompareConfig({"p": problem}, {"r": {"name": "random"}}, [0], [10])


def test_an_unmeetable_constraint_is_refused_up_front(synthetic_data):
    with pytest.raises(ConfigError, match="none of the 15625 architectures .* meets the "
                                          "constraints"):
        check_grid(_config("latency<=0.0001"), str(synthetic_data))
    check_grid(_config("latency<=10"), str(synthetic_data))  # a meetable one passes
