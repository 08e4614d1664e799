"""The search benchmark's default prior set (hwnas.bench.studies.search_benchmark)."""

from __future__ import annotations

from hwnas.bench import load_tables
from hwnas.bench.studies.search_benchmark import default_priors


def test_default_priors_leave_out_the_objective_dataset_and_the_device():
    tables = load_tables("nb201")
    specs = default_priors(list(tables.tasks), list(tables.devices), "cifar10_test_200ep", "pixel2")
    assert not any(s.startswith("cifar10_") for s in specs) and "pixel2" not in specs
    assert {"cifar100_test_200ep", "imagenet16_test_12ep", "pixel3", "raspi4"} <= set(specs)
    # every other task and device is in, each once
    assert len(specs) == len(set(specs)) == (len(tables.tasks) - 3) + (len(tables.devices) - 1)
