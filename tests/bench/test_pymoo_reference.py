"""The recall readings of hwnas.bench.studies.pymoo_reference on small made data."""

from __future__ import annotations

import numpy as np

from hwnas.bench.studies import pymoo_reference as ref


def test_equal_feature_rows_share_a_group_and_the_lowest_index_represents_it():
    live = np.array([[1, 0], [0, 1], [1, 0], [0, 1], [1, 1]])
    group = ref.equivalence_groups(live)
    assert group[0] == group[2] and group[1] == group[3]
    assert len(set(group.tolist())) == 3
    np.testing.assert_array_equal(ref.representatives(group), [0, 1, 4])


def test_an_equivalent_cell_counts_only_under_the_equivalent_reading():
    group = np.array([0, 1, 0, 2, 3])
    front = np.array([0, 3])  # cell 2 computes the same function as front member 0
    rep_front = np.array([0, 3])
    r = ref.recalls(np.array([2]), front, group, rep_front)
    assert r == {"index": 0.0, "equivalent": 0.5, "representatives": 0.5}
    r = ref.recalls(np.array([0, 3, 4]), front, group, rep_front)
    assert r == {"index": 1.0, "equivalent": 1.0, "representatives": 1.0}


def test_nothing_found_is_zero_under_every_reading():
    group = np.arange(6)
    r = ref.recalls(np.array([1, 2]), np.array([0, 5]), group, np.array([0, 5]))
    assert set(r) == set(ref.DEFINITIONS) and all(v == 0.0 for v in r.values())
