"""The Python API refuses bad arguments with a message that says what is valid (an audit of the
public entry points), instead of a deep AttributeError or a silently wrong result."""

from __future__ import annotations

import math

import numpy as np
import pytest

from hwnas.bench import Problem, minimize, true_front
from hwnas.latency import MeasurementProtocol, Profiler, get_runtime
from hwnas.search import Constraint, HwnasError, get_space
from hwnas.search.strategies.prior import PriorFeatures

SPACE = get_space("nb201")


@pytest.mark.parametrize("objective, op, bound, says", [
    ("latency", "<>", 3.0, "operator '<>'"),
    ("latency", "<=", math.nan, "a finite number"),
    ("latency", "<=", "abc", "a finite number"),
    ("latency", "<=", True, "a finite number"),
    ("", "<=", 3.0, "an objective name"),
])
def test_a_constraint_built_directly_is_checked(objective, op, bound, says):
    with pytest.raises(HwnasError, match=says):
        Constraint(objective, op, bound)


def test_a_constraint_number_that_does_not_parse_is_one_clear_error():
    with pytest.raises(HwnasError, match="is not a number"):
        Constraint.parse("latency<=1.2.3", ["latency"])
    assert Constraint("latency", "<=", 3).bound == 3.0


@pytest.fixture(scope="module")
def result(public_data):
    problem = Problem.from_names("nb201", ["accuracy", "latency"], device="pixel2",
                                 data=str(public_data))
    return problem, minimize(problem, "random", budget=10, seed=0)


@pytest.mark.parametrize("budgets", [[-1], [0], [2.5], []])
def test_score_refuses_budgets_below_one(result, budgets):
    problem, res = result
    with pytest.raises(HwnasError, match="integers >= 1"):
        res.score(true_front(problem), budgets=budgets)


@pytest.mark.parametrize("reference", [None, "x"])
def test_score_and_true_front_name_what_they_need(result, reference):
    _, res = result
    with pytest.raises(HwnasError, match="ReferenceFront"):
        res.score(reference)
    with pytest.raises(HwnasError, match="a Problem is needed"):
        true_front(reference)


def test_table_lookups_refuse_fractional_indices(public_data):
    from hwnas.search.tables import load_tables

    tables = load_tables("nb201", public_data)
    with pytest.raises(HwnasError, match="whole numbers"):
        tables.get_accuracy("cifar10_test_200ep", [1.7])
    with pytest.raises(HwnasError, match="whole numbers"):
        tables.get_latency(tables.devices[0], ["a"])
    assert tables.get_accuracy("cifar10_test_200ep", [1.0]).shape == (1,)


def test_profiler_takes_a_space_name_and_checks_its_arguments(tmp_path):
    runtime, protocol = get_runtime("ort-cpu"), MeasurementProtocol()
    assert Profiler("nb201", runtime, protocol, tmp_path, "cpu").space.name == "nb201"
    for args, says in [((SPACE, None, protocol, tmp_path, "cpu"), "runtime must be a Runtime"),
                       ((SPACE, runtime, None, tmp_path, "cpu"), "MeasurementProtocol"),
                       ((SPACE, runtime, protocol, tmp_path, ""), "non-empty device name")]:
        with pytest.raises(ValueError, match=says):
            Profiler(*args)


def test_a_nan_precision_is_refused():
    with pytest.raises(HwnasError, match="target_precision"):
        MeasurementProtocol(target_precision=float("nan"))


def test_prior_columns_are_checked():
    archs = [SPACE.sample(np.random.default_rng(i)) for i in range(3)]
    values = np.array([[1.0, 2.0], [2.0, 3.0], [3.0, 5.0]])
    with pytest.raises(HwnasError, match="not columns"):
        PriorFeatures(archs, values, ["lat", "acc"], log=["latency"])
    with pytest.raises(HwnasError, match="not columns"):
        PriorFeatures(archs, values, ["lat", "acc"], log="latency")  # not a substring match
    with pytest.raises(HwnasError, match="appears twice"):
        PriorFeatures(archs, values, ["x", "x"])
    with pytest.raises(HwnasError, match="appears twice"):
        PriorFeatures([archs[0], archs[0], archs[1]], values, ["lat", "acc"])
    with pytest.raises(HwnasError, match="no columns"):
        PriorFeatures.from_columns(archs, {})
    assert PriorFeatures(archs, values, ["lat", "acc"], log="lat").width == 5


def test_space_sampling_names_its_bad_arguments():
    with pytest.raises(HwnasError, match="rng -1; valid: None, an integer >= 0"):
        SPACE.sample(-1)
    with pytest.raises(HwnasError, match="n must be an integer >= 0"):
        SPACE.sample_batch(-1, rng=0)
    assert SPACE.sample_batch(0, rng=0) == []


def test_the_latency_predictor_names_the_features_it_needs():
    from hwnas.meta import MetaError, MetaLatencyPredictor

    with pytest.raises(MetaError, match="features must be a LatencyFeatures"):
        MetaLatencyPredictor(None)
