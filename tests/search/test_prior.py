"""Prior features: their encoding, their checks, a surrogate given a prior that transfers."""

from __future__ import annotations

import numpy as np
import pytest

from hwnas.search import HwnasError, PriorFeatures, create_strategy, get_space, run_search


def _archs(n: int, seed: int = 0):
    space = get_space("nb201")
    rng = np.random.default_rng(seed)
    return list(dict.fromkeys(space.sample(rng) for _ in range(n)))


def test_columns_standardised_and_rank_scored_missing_flagged():
    archs = _archs(50)
    values = np.column_stack([np.arange(50.0), np.exp(np.linspace(0, 3, 50))])
    prior = PriorFeatures(archs[:40], values[:40], ["acc", "lat"], log=["lat"])
    X = prior(archs)
    assert X.shape == (50, prior.width) == (50, 5) and len(prior) == 40
    np.testing.assert_allclose(X[:40, :2].mean(axis=0), 0.0, atol=1e-6)
    np.testing.assert_allclose(X[:40, :2].std(axis=0), 1.0, atol=1e-5)
    # the log column is linear in the index, like the first: both encodings agree with it
    np.testing.assert_allclose(X[:40, 0], X[:40, 1], atol=1e-5)
    assert (np.diff(X[:40, 2]) > 0).all() and abs(X[:40, 2].mean()) < 1e-6
    assert (X[40:, :4] == 0).all() and (X[40:, 4] == 1).all() and (X[:40, 4] == 0).all()
    assert prior.coverage(archs) == pytest.approx(0.8)


def test_a_column_with_missing_values_gets_its_own_flag():
    archs = _archs(10)
    prior = PriorFeatures.from_columns(archs, {"a": np.r_[np.nan, np.arange(9.0)],
                                               "b": np.arange(10.0)})
    X = prior(archs)
    # a, b, rank scores of a and b, a's missing flag, the not-in-the-prior flag
    assert len(prior) == 10 and X.shape == (10, prior.width) == (10, 6)
    assert X[0, 0] == 0 and X[0, 2] == 0 and X[0, 4] == 1 and (X[1:, 4] == 0).all()
    assert X[0, 1] != 0 and (X[:, 5] == 0).all()
    np.testing.assert_allclose(X[1:, 0].mean(), 0.0, atol=1e-6)


@pytest.mark.parametrize(("values", "names", "log", "message"), [
    (np.ones((5, 1)), ["a"], (), "fewer than two distinct values"),
    (np.r_[np.inf, np.arange(4.0)][:, None], ["a"], (), "finite"),
    (-np.arange(1.0, 6.0)[:, None], ["lat"], ["lat"], "positive"),
    (np.arange(10.0).reshape(5, 2), ["a"], (), "do not agree"),
])
def test_rejects_bad_values(values, names, log, message):
    with pytest.raises(HwnasError, match=message):
        PriorFeatures(_archs(5), values, names, log)


def test_rejects_too_few_architectures_and_an_empty_column():
    with pytest.raises(HwnasError, match="0 architecture"):
        PriorFeatures([], np.zeros((0, 1)), ["a"])
    with pytest.raises(HwnasError, match="a: no values"):
        PriorFeatures(_archs(5), np.c_[np.full(5, np.nan), np.arange(5.0)], ["a", "b"])


def test_surrogate_rejects_a_prior_of_the_wrong_type():
    with pytest.raises(HwnasError, match="PriorFeatures"):
        create_strategy("surrogate", get_space("nb201"), 2, seed=0, prior=np.zeros((3, 2)))


def _random_problem(seed: int):
    """Objectives no function of the genes explains (a random value per architecture) and a prior
    that ranks the first of them well: only a surrogate given the prior can learn it."""
    space = get_space("nb201")
    archs = [space.from_genes(g) for g in np.stack(
        np.unravel_index(np.arange(space.size), tuple(space.n_choices)), axis=1)]
    rng = np.random.default_rng(seed)
    acc = rng.normal(size=len(archs))
    cost = np.array([sum(a.genes) for a in archs], dtype=float)
    row = {a: i for i, a in enumerate(archs)}

    def evaluate(batch):
        i = np.array([row[a] for a in batch])
        F = np.column_stack([-acc[i], cost[i]])
        return F, F, np.zeros(len(i))

    prior = PriorFeatures(archs, acc + 0.3 * rng.normal(size=len(archs)), ["other_task"])
    top = set(np.flatnonzero(acc >= np.quantile(acc, 0.99)).tolist())
    return evaluate, prior, top, row


def test_a_prior_that_transfers_finds_the_best_architectures():
    space = get_space("nb201")
    found = {"with": [], "without": []}
    for seed in range(2):
        evaluate, prior, top, row = _random_problem(seed)
        for key, kw in (("with", {"prior": prior}), ("without", {})):
            s = create_strategy("surrogate", space, 2, seed=seed, initial=10, **kw)
            records = run_search(s, evaluate, 60).records
            found[key].append(len(top & {row[r.arch] for r in records}))
    # of the top 1% by accuracy, random picks would hold ~0.6 of 60
    assert min(found["with"]) >= 6 and max(found["without"]) <= 3, found


def test_prior_enters_the_design_outside_an_enumerated_space():
    """With ``max_enumerate=0`` candidates come from neighbourhoods and samples: the prior still
    reaches the surrogate's design."""
    space = get_space("nb201")
    evaluate, prior, top, row = _random_problem(0)
    s = create_strategy("surrogate", space, 2, seed=0, initial=10, max_enumerate=0,
                        candidates=200, prior=prior)
    run_search(s, evaluate, 30)
    assert s._all is None and s.surrogate_ is not None
    width = s._features(list(s.archive_)[:1]).shape[1] + prior.width
    assert s.surrogate_.coef_.shape[0] == width


def test_columns_of_names_a_priors_own_feature_columns():
    archs = _archs(10)
    prior = PriorFeatures.from_columns(archs, {"a": np.r_[np.nan, np.arange(9.0)],
                                               "b": np.arange(10.0)})
    # a: value, rank score, its missing flag, the not-in-the-prior flag; b has no missing flag
    assert prior.columns_of("a") == [0, 2, 4, 5] and prior.columns_of("b") == [1, 3, 5]
    with pytest.raises(HwnasError, match="'c' is not a column; valid: a, b"):
        prior.columns_of("c")


def _with_decoy(prior: PriorFeatures, archs, seed: int) -> PriorFeatures:
    rng = np.random.default_rng(seed + 100)
    values = prior(archs)[:, 0]  # the transferring column, standardised
    return PriorFeatures.from_columns(archs, {"decoy": rng.normal(size=len(archs)),
                                              "other_task": values})


@pytest.mark.parametrize("max_enumerate", [50_000, 0])
def test_nearest_prior_models_an_objective_on_the_column_that_ranks_it(max_enumerate):
    space = get_space("nb201")
    evaluate, prior, top, row = _random_problem(0)
    archs = sorted(row, key=row.get)
    prior = _with_decoy(prior, archs, 0)
    s = create_strategy("surrogate", space, 2, seed=0, initial=10, prior=prior,
                        nearest_prior={0: []}, max_enumerate=max_enumerate, candidates=200)
    records = run_search(s, evaluate, 60).records
    # the archive chose the column that ranks accuracy, not the decoy
    assert s.nearest_ == {0: "other_task"}
    if max_enumerate:
        assert len(top & {row[r.arch] for r in records}) >= 6
    # accuracy's model sees that column's own features alone; latency's the whole design
    own = s.surrogate_.models_
    assert [(outs, cols is None) for outs, cols, _ in own] == [([1], True), ([0], False)]
    assert len(own[1][1]) == len(prior.columns_of("other_task"))


def test_nearest_prior_gives_way_to_the_full_design_at_nearest_until():
    space = get_space("nb201")
    evaluate, prior, top, row = _random_problem(0)
    s = create_strategy("surrogate", space, 2, seed=0, initial=10, prior=prior, candidates=200,
                        nearest_prior={0: []}, nearest_until=40)
    fits = []
    fit = s._fit

    def recording(archs, F, v):
        fit(archs, F, v)
        fits.append((len(archs), type(s.surrogate_).__name__))
    s._fit = recording
    run_search(s, evaluate, 60)
    assert {kind for n, kind in fits if n < 40} == {"OwnColumnsEnsemble"}
    assert {kind for n, kind in fits if n >= 40} == {"BayesianRidgeEnsemble"}
    # the last model saw the whole design
    assert s.surrogate_.coef_.shape[0] == s._design(list(s.archive_)[:1]).shape[1]


def test_nearest_until_can_end_each_objective_on_its_own():
    space = get_space("nb201")
    evaluate, prior, top, row = _random_problem(0)
    # latency leaves its nearest prior at 20, accuracy at 40; a JSON record's keys are strings
    s = create_strategy("surrogate", space, 2, seed=0, initial=10, prior=prior, candidates=200,
                        nearest_prior={0: [], 1: []}, nearest_until={"0": 40, 1: 20})
    fits = []
    fit = s._fit

    def recording(archs, F, v):
        fit(archs, F, v)
        model = s.surrogate_
        fits.append((len(archs), tuple(sorted(getattr(model, "columns", {})))))
    s._fit = recording
    run_search(s, evaluate, 60)
    assert {cols for n, cols in fits if n < 20} == {(0, 1)}
    assert {cols for n, cols in fits if 20 <= n < 40} == {(0,)}
    assert {cols for n, cols in fits if n >= 40} == {()}
    # a position the mapping leaves out stays on its nearest prior
    s = create_strategy("surrogate", space, 2, seed=0, initial=10, prior=prior, candidates=200,
                        nearest_prior={0: [], 1: []}, nearest_until={1: 20})
    run_search(s, evaluate, 40)
    assert sorted(s.surrogate_.columns) == [0]


def test_nearest_prior_is_checked():
    space = get_space("nb201")
    evaluate, prior, top, row = _random_problem(0)
    with pytest.raises(HwnasError, match="needs a prior"):
        create_strategy("surrogate", space, 2, seed=0, nearest_prior={0: []})
    with pytest.raises(HwnasError, match=r"\['cifar'\] are not prior columns; valid: other_task"):
        create_strategy("surrogate", space, 2, prior=prior, nearest_prior={0: ["cifar"]})
    with pytest.raises(HwnasError, match="positions in 0..1, got 2"):
        create_strategy("surrogate", space, 2, prior=prior, nearest_prior={2: []})
    with pytest.raises(HwnasError, match="also has a forest"):
        create_strategy("surrogate", space, 2, prior=prior, forest=0, nearest_prior={0: []})
    for bad in (0, -5, 2.5, True, "300"):
        with pytest.raises(HwnasError, match="nearest_until: a positive number"):
            create_strategy("surrogate", space, 2, prior=prior, nearest_prior={0: []},
                            nearest_until=bad)
    with pytest.raises(HwnasError, match=r"nearest_until\[0\]: a positive number.*got 0"):
        create_strategy("surrogate", space, 2, prior=prior, nearest_prior={0: []},
                        nearest_until={0: 0})
    with pytest.raises(HwnasError, match=r"positions \[1\] are not nearest_prior objectives; "
                                         r"valid: \[0\]"):
        create_strategy("surrogate", space, 2, prior=prior, nearest_prior={0: []},
                        nearest_until={0: 40, 1: 20})
    # a record's string key names the same position
    s = create_strategy("surrogate", space, 2, prior=prior, nearest_prior={"0": "other_task"})
    assert s.nearest_prior == {0: ["other_task"]}
