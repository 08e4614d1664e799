"""The prior-guided opening: its order, its models, its checks, and a search that follows it."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.search import HwnasError, PriorFeatures, create_strategy, get_space, run_search
from hwnas.search.pareto import pareto_mask
from hwnas.search.strategies.opening import (
    front_trail,
    membership_order,
    nearest_column,
    ridge_prediction,
    top_spread,
)
from hwnas.search.strategies.surrogate import dead_cells


def test_front_trail_is_zero_on_the_front_and_the_distance_behind_it_elsewhere():
    f0 = np.array([3.0, 1.0, 2.0, 5.0, 0.5])
    f1 = np.array([1.0, 2.0, 3.0, 4.0, 5.0])
    np.testing.assert_allclose(front_trail(f0, f1), [0.0, 0.0, 1.0, 4.0, 0.0])


def test_exact_predictions_put_the_front_first():
    rng = np.random.default_rng(0)
    mu = rng.normal(size=(500, 2))
    front = np.flatnonzero(pareto_mask(mu))
    order = membership_order(mu, (0.0, 0.0), 20, rng)
    assert sorted(order[:len(front)].tolist()) == sorted(front.tolist())
    assert sorted(order.tolist()) == list(range(500))  # every row once


def test_with_a_spread_rows_far_behind_come_after_every_front_row():
    rng = np.random.default_rng(1)
    mu = rng.normal(size=(2000, 2))
    order = membership_order(mu, (0.1, 0.1), 200, rng)
    where = np.empty(len(order), dtype=np.int64)
    where[order] = np.arange(len(order))
    # dominated by 10 spreads in both objectives: never a member of a sampled front
    far = np.array([((mu < m - 1.0).all(axis=1)).any() for m in mu])
    front = pareto_mask(mu)
    assert far.sum() > 1000 and where[front].max() < where[far].min()
    trail = front_trail(mu[:, 0], mu[:, 1])
    assert (np.diff(trail[order[-far.sum():]]) >= 0).all()  # the rest by how far behind


@pytest.mark.parametrize(("mu", "sd", "message"), [
    (np.zeros((5, 3)), (0.1, 0.1), "shape"),
    (np.zeros((5, 2)), (-0.1, 0.1), ">= 0"),
    (np.zeros((5, 2)), (np.nan, 0.1), "finite"),
])
def test_membership_order_rejects_bad_input(mu, sd, message):
    with pytest.raises(HwnasError, match=message):
        membership_order(mu, sd, 10, np.random.default_rng(0))


def test_nearest_column_finds_the_best_ranking_and_its_sign():
    rng = np.random.default_rng(2)
    y = rng.normal(size=200)
    values = np.column_stack([rng.normal(size=200), -y + 0.1 * rng.normal(size=200),
                              y + rng.normal(size=200)])
    values[:20, 1] = np.nan  # a column missing some values is judged on the rest
    assert nearest_column(values, y) == (1, -1.0)
    assert top_spread(np.arange(100.0)) == pytest.approx(np.arange(10.0).std())


def test_ridge_prediction_in_log_recovers_a_ratio_law():
    rng = np.random.default_rng(3)
    X = rng.normal(size=(400, 3))
    y = np.exp(0.5 + X @ np.array([0.8, -0.2, 0.0]) + 0.01 * rng.normal(size=400))
    pred, sd = ridge_prediction(X[:40], y[:40], X, log=True)
    assert np.corrcoef(np.log(pred), np.log(y))[0, 1] > 0.99
    assert 0 < sd < 0.05 * np.median(y)


def _problem(seed: int):
    """Accuracy only another task ranks (a noisy copy) and a latency that is a ratio law of two
    other devices' latencies: no function of the genes explains either."""
    space = get_space("nb201")
    archs = [space.from_genes(g) for g in np.stack(
        np.unravel_index(np.arange(space.size), tuple(space.n_choices)), axis=1)]
    rng = np.random.default_rng(seed)
    acc = rng.normal(size=len(archs))
    dev = np.exp(rng.normal(size=(len(archs), 2)))
    lat = dev[:, 0] ** 0.7 * dev[:, 1] ** 0.3 * np.exp(0.2 * rng.normal(size=len(archs)))
    row = {a: i for i, a in enumerate(archs)}
    F_all = np.column_stack([-acc, lat])

    def evaluate(batch):
        F = F_all[[row[a] for a in batch]]
        return F, F, np.zeros(len(F))

    prior = PriorFeatures.from_columns(archs, {"other_task": acc + 0.5 * rng.normal(size=len(acc)),
                                               "dev_a": dev[:, 0], "dev_b": dev[:, 1]},
                                       log=["dev_a", "dev_b"])
    front = set(np.flatnonzero(pareto_mask(F_all)).tolist())
    return space, evaluate, prior, front, row


def test_an_opening_on_the_priors_finds_more_of_the_front_than_the_surrogate():
    found = {"opening": [], "surrogate": []}
    for seed in range(2):
        space, evaluate, prior, front, row = _problem(seed)
        common = dict(seed=seed, initial=20, prior=prior, nearest_prior={0: ["other_task"]})
        for key, kw in (("opening", {"opening": 60, "opening_ridge": {1: []}}),
                        ("surrogate", {})):
            s = create_strategy("surrogate", space, 2, **common, **kw)
            records = run_search(s, evaluate, 60).records
            found[key].append(len(front & {row[r.arch] for r in records}) / len(front))
            if key == "opening":
                assert s.surrogate_ is None  # the surrogate has not been fitted yet
                assert s.nearest_ == {0: "other_task"}
    # fronts of ~10 members: per seed, the opening holds more of them
    assert all(o > s for o, s in zip(found["opening"], found["surrogate"], strict=True))


def test_the_surrogate_takes_over_when_the_opening_ends():
    space, evaluate, prior, front, row = _problem(0)
    s = create_strategy("surrogate", space, 2, seed=0, initial=10, prior=prior,
                        nearest_prior={0: []}, opening=30, opening_ridge={"1": ["dev_a", "dev_b"]})
    orders = []
    opening_order = s._opening_order

    def recording(archs, F):
        orders.append(len(archs))
        return opening_order(archs, F)
    s._opening_order = recording
    records = run_search(s, evaluate, 50).records
    assert len({r.arch for r in records}) == 50
    # refreshed as the archive grows by 10%, never at or past the opening's end
    assert orders[0] == 10 and max(orders) < 30 and len(orders) >= 5
    assert s.surrogate_ is not None


def test_an_opening_is_checked():
    space, evaluate, prior, front, row = _problem(0)
    ok = dict(prior=prior, nearest_prior={0: []})
    with pytest.raises(HwnasError, match="opening_ridge needs opening"):
        create_strategy("surrogate", space, 2, **ok, opening_ridge={1: []})
    for bad in (0, -1, 2.5, True):
        with pytest.raises(HwnasError, match="opening: a positive number"):
            create_strategy("surrogate", space, 2, **ok, opening=bad, opening_ridge={1: []})
    with pytest.raises(HwnasError, match="two objectives only, got 3"):
        create_strategy("surrogate", space, 3, **ok, opening=50)
    with pytest.raises(HwnasError, match="needs a prior"):
        create_strategy("surrogate", space, 2, opening=50)
    with pytest.raises(HwnasError, match=r"objectives \[1\] have no prior model"):
        create_strategy("surrogate", space, 2, **ok, opening=50)
    with pytest.raises(HwnasError, match=r"objectives \[0\] have both"):
        create_strategy("surrogate", space, 2, **ok, opening=50, opening_ridge={0: [], 1: []})
    with pytest.raises(HwnasError, match=r"\['dev_c'\] are not prior columns; valid: other_task"):
        create_strategy("surrogate", space, 2, **ok, opening=50, opening_ridge={1: ["dev_c"]})
    with pytest.raises(HwnasError, match="positions in 0..1, got 5"):
        create_strategy("surrogate", space, 2, **ok, opening=50, opening_ridge={5: []})
    for key, bad, message in (("opening_spread", 0.0, "positive"),
                              ("opening_growth", -0.1, ">= 0"),
                              ("opening_draws", 0, "positive integer")):
        with pytest.raises(HwnasError, match=f"{key}: a .*{message}"):
            create_strategy("surrogate", space, 2, **ok, opening=50, opening_ridge={1: []},
                            **{key: bad})
    big = get_space("fbnet")
    with pytest.raises(HwnasError, match="must be enumerable"):
        create_strategy("surrogate", big, 2, prior=prior, nearest_prior={0: []}, opening=50,
                        opening_ridge={1: []})


def test_opening_dead_measures_a_dead_cell_and_learns_what_the_class_costs_here():
    """A runtime that skips dead cells (NB201's raspi4 and pixel3 report them as nearly free):
    the other devices' latencies cannot say so; one measured dead cell and the class's own
    offset can."""
    space, evaluate_live, prior, _, row = _problem(0)
    archs = list(row)
    dead = dead_cells(space, archs)

    def evaluate(batch):
        F, _, v = evaluate_live(batch)
        F = F.copy()
        F[dead[[row[a] for a in batch]], 1] = 1e-3  # nearly free, whatever the operations
        return F, F, v

    found = {}
    for flag in (True, False):
        s = create_strategy("surrogate", space, 2, seed=0, initial=10, prior=prior,
                            nearest_prior={0: []}, opening=40, opening_ridge={1: []},
                            opening_dead=flag)
        records = run_search(s, evaluate, 40).records
        found[flag] = [r for r in records if dead[row[r.arch]]]
        if flag:  # the probe comes first after the random ones (unless one of them was dead)
            assert any(dead[row[r.arch]] for r in records[:11])
    # once the class is known to be free, its cells are the fast end of the front
    assert len(found[True]) > len(found[False]) and len(found[True]) >= 2
