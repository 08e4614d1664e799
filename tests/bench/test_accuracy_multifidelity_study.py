"""The multi-fidelity benchmark's protocol: which columns are a target's cheap results, the
ceiling on made-up data."""

from __future__ import annotations

import numpy as np

from hwnas.bench.studies.accuracy_multifidelity import ceiling, low_fidelity_columns

TASKS = ["cifar10_test_200ep", "cifar100_test_200ep", "cifar10_val_12ep", "cifar10_test_12ep",
         "cifar100_val_12ep", "cifar100_test_12ep", "imagenet16_val_12ep", "imagenet16_test_12ep"]


def test_low_fidelity_is_the_targets_own_dataset_at_fewer_epochs():
    assert low_fidelity_columns("cifar10_test_200ep", TASKS) == ["cifar10_val_12ep",
                                                                 "cifar10_test_12ep"]
    assert low_fidelity_columns("cifar100_test_200ep", TASKS) == ["cifar100_val_12ep",
                                                                  "cifar100_test_12ep"]
    # 12 epochs is the table's lowest budget: a sister column is the same budget, not cheaper
    for t in TASKS[2:]:
        assert low_fidelity_columns(t, TASKS) == []


def test_ceiling_learns_a_function_of_its_inputs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 3))
    y = X[:, 0] - 0.5 * X[:, 1] ** 2 + rng.normal(0, 0.05, 400)
    top = y >= np.quantile(y, 0.9)
    out = ceiling(X, y, top)
    assert out["train_labels"] == 320 and out["rho_all"] > 0.9
    assert ceiling(X, y, top) == out  # seeded
