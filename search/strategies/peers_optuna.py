"""optuna's samplers as hwnas strategies, through optuna's ask-and-tell interface.

Akiba, Sano, Yanase, Ohta & Koyama, "Optuna: A Next-generation Hyperparameter Optimization
Framework", KDD 2019. Every gene of the space is one categorical parameter (a
``CategoricalDistribution`` of the gene's choices, named after the gene), the study has one
``minimize`` direction per objective (hwnas hands strategies minimised values), and a constraint
violation is given to the samplers that take one (optuna >= 5: ``Trial.set_constraint``; before:
``constraints_func``; optuna's convention is hwnas's: a value <= 0 is feasible).

The samplers: TPE (Bergstra et al., NeurIPS 2011; multi-objective as MOTPE, Ozaki et al.,
GECCO 2020 / JAIR 2022), NSGA-II (Deb et al., IEEE TEVC 2002), NSGA-III (Deb & Jain, IEEE TEVC
2014), Gaussian-process Bayesian optimisation (``GPSampler``; multi-objective by expected
hypervolume improvement) and random sampling. Library defaults throughout, except NSGA-II's and
NSGA-III's population: 20 rather than 50, as hwnas's NSGA-II and pymoo's here, so a few hundred
evaluations are more than a handful of generations.

Each ``ask`` opens trials; each ``tell`` completes the trials of the architectures told, in the
order asked. An asked trial still open at the next ``ask`` (its architecture had no value) is
completed at the worst value of each objective told so far, infeasible where the sampler takes
constraints, with user attribute ``missing``: a failed trial would teach the sampler nothing, and
GP or TPE would propose the same architecture again and again (failed only while nothing has a
value yet). An architecture told without
being asked (a warm start) is added as a completed trial. optuna may propose an architecture it
has seen; the loop tells it the known value again, and the budget does not move.
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator, Sequence
from typing import Any, ClassVar

import numpy as np

from ..errors import HwnasError
from ..spaces.space import Architecture, Space
from .peers import require

__all__ = ["distributions", "params_of", "OptunaStrategy", "OptunaTPE", "OptunaNSGA2",
           "OptunaNSGA3", "OptunaGP", "OptunaRandom"]

#: the constraint's name (optuna >= 5), or the user attribute that holds it (read by the
#: ``constraints_func`` of older optuna)
CONSTRAINT_ATTR = "violation"


def _constraints(trial: Any) -> Sequence[float]:
    return trial.user_attrs.get(CONSTRAINT_ATTR, (0.0,))


def _new_constraints(optuna: Any) -> bool:
    """Whether this optuna takes constraints on the trial (``set_constraint``, optuna >= 5,
    which deprecates ``constraints_func``)."""
    return hasattr(optuna.trial.Trial, "set_constraint")


def _choice(value: Any) -> Any:
    """A gene's choice as optuna stores it (None, bool, int, float or str)."""
    if value is None or isinstance(value, bool | int | float | str):
        return value
    return str(value)


def distributions(space: Space) -> dict[str, Any]:
    """Gene name -> optuna ``CategoricalDistribution`` of the gene's choices (in gene order; a
    choice's index is its gene value, ``to_internal_repr``).

    Raises:
        PeerLibraryError: optuna is not installed.
    """
    optuna = require("optuna", "optuna's distributions")
    dist = optuna.distributions.CategoricalDistribution
    return {g.name: dist(tuple(_choice(c) for c in g.choices)) for g in space.genes}


def params_of(space: Space, arch: Architecture) -> dict[str, Any]:
    """The optuna parameters of ``arch``: gene name -> chosen value (as optuna stores it)."""
    return {g.name: _choice(g.choices[x]) for g, x in zip(space.genes, arch.genes, strict=True)}


@contextlib.contextmanager
def _quiet(optuna: Any, log: bool = False) -> Iterator[None]:
    """Library code never prints: hush optuna's experimental warnings (GP, NSGA-III) and, with
    ``log``, its INFO line on a new study, for the duration of the call only (not around every
    ask: setting the verbosity clears the logging caches, a millisecond each time)."""
    level = optuna.logging.get_verbosity()
    if log:
        optuna.logging.set_verbosity(optuna.logging.WARNING)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            yield
    finally:
        if log:
            optuna.logging.set_verbosity(level)


class OptunaStrategy:
    """One optuna sampler over a space's genes, behind hwnas's ask/tell.

    Args:
        space: the search space.
        n_objectives: number of (minimised) objective columns ``tell`` receives.
        seed: the sampler's seed (same seed, same proposals).

    Attributes:
        study: the optuna study (in memory): every trial asked and told, repeats included.
        distributions: gene name -> ``CategoricalDistribution`` of its choices.
    """

    #: registered name, e.g. ``optuna:tpe``
    name: ClassVar[str] = "optuna"
    #: whether the sampler is given constraint violations
    constrained: ClassVar[bool] = True

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None):
        self._optuna = optuna = require("optuna", self.name)
        if isinstance(n_objectives, bool) or not isinstance(n_objectives, int) or n_objectives < 1:
            raise HwnasError(f"{self.name}: n_objectives must be an integer >= 1, got "
                             f"{n_objectives!r}")
        self.space, self.n_objectives, self.seed = space, n_objectives, seed
        self.distributions = distributions(space)
        with _quiet(optuna, log=True):
            self.study = optuna.create_study(directions=["minimize"] * n_objectives,
                                             sampler=self._sampler(optuna, seed))
        self._open: list[tuple[Architecture, Any]] = []  # asked, not yet told, in ask order
        self._worst: np.ndarray | None = None  # the worst value of each objective told so far

    def _sampler(self, optuna: Any, seed: int | None) -> Any:  # pragma: no cover - abstract
        raise NotImplementedError

    def _arch(self, params: dict[str, Any]) -> Architecture:
        # to_internal_repr is the index of the choice; from_genes canonicalises inactive genes
        return self.space.from_genes(
            int(self.distributions[g.name].to_internal_repr(params[g.name]))
            for g in self.space.genes)

    def ask(self, n: int = 1) -> list[Architecture]:
        """``n`` architectures from ``n`` new trials (repeats of evaluated ones possible)."""
        self._fail_open()
        out = []
        with _quiet(self._optuna):
            for _ in range(n):
                trial = self.study.ask(self.distributions)
                arch = self._arch(trial.params)
                self._open.append((arch, trial))
                out.append(arch)
        return out

    def tell(self, archs: Sequence[Architecture], F: np.ndarray,
             violation: np.ndarray | None = None) -> None:
        """Complete the open trial of each architecture (or add a trial for one not asked)."""
        F = np.asarray(F, dtype=np.float64).reshape(len(archs), self.n_objectives)
        v = np.zeros(len(archs)) if violation is None else np.asarray(violation, dtype=float)
        optuna = self._optuna
        with _quiet(optuna):
            for arch, f, vi in zip(archs, F, v, strict=True):
                values = [float(x) for x in f]
                self._worst = f.copy() if self._worst is None else np.maximum(self._worst, f)
                k = next((i for i, (a, _) in enumerate(self._open) if a == arch), None)
                if k is None:
                    self.study.add_trial(optuna.trial.create_trial(
                        params=params_of(self.space, arch),
                        distributions=self.distributions, values=values,
                        **self._constraint_of(float(vi))))
                    continue
                _, trial = self._open.pop(k)
                self._complete(trial, values, float(vi))

    def _complete(self, trial: Any, values: list[float], violation: float) -> None:
        if self.constrained:
            if _new_constraints(self._optuna):
                trial.set_constraint(CONSTRAINT_ATTR, violation)
            else:
                trial.set_user_attr(CONSTRAINT_ATTR, [violation])
        self.study.tell(trial, values)

    def _constraint_of(self, violation: float) -> dict[str, Any]:
        """``create_trial`` keywords carrying a violation, as this optuna takes them."""
        if not self.constrained:
            return {}
        if _new_constraints(self._optuna):
            return {"constraints": {CONSTRAINT_ATTR: violation}}
        return {"user_attrs": {CONSTRAINT_ATTR: [violation]}}

    def _constraints_func(self) -> dict[str, Any]:
        """The sampler keyword of older optuna (``constraints_func``), or nothing."""
        if not self.constrained or _new_constraints(self._optuna):
            return {}
        return {"constraints_func": _constraints}

    def _fail_open(self) -> None:
        """Trials asked but never told (no value): at the worst values seen, infeasible."""
        with _quiet(self._optuna):
            for _, trial in self._open:
                if self._worst is None:
                    self.study.tell(trial, state=self._optuna.trial.TrialState.FAIL)
                    continue
                trial.set_user_attr("missing", True)
                self._complete(trial, self._worst.tolist(), 1.0)
        self._open.clear()


class OptunaTPE(OptunaStrategy):
    """optuna's ``TPESampler``: TPE, MOTPE for several objectives (Ozaki et al., JAIR 2022).

    optuna's defaults, ``multivariate`` included (optuna's own default for several objectives
    is ``False``: one Parzen estimator per gene). Where an ask's time goes (optuna 5.1, NB201
    accuracy x latency, cProfile of 150 unique evaluations, 317 asks, 11.9 s inside
    ``study.ask``): for *each* of the six genes the sampler splits every trial so far into
    good and bad (non-dominated sort, constraint scores: 5.7 s) and builds two Parzen
    estimators (3.2 s); scoring its 24 candidates (``n_ei_candidates``) takes 0.7 s. An ask
    costs genes x trials, and trials include the repeats the loop tells again (~2 asks per
    evaluation), so a run grows quadratically. What the options do here:

    - ``multivariate=True``: one split and one joint estimator per ask instead of six: 300
      evaluations in 20 s (371 asks) on the same loaded host. It is another sampler (optuna's
      default for one objective), so it is an option, and the benchmark's row that uses it
      (``optuna:tpe+multivariate``) says so.
    - ``n_ei_candidates``: under a tenth of the time: left at optuna's 24.
    - ``constant_liar``: only acts on trials still running when another is asked; the loop
      asks one at a time (batch 1), so it would change nothing.
    - the encoding: categorical, as NB201's operations are unordered; an ``IntDistribution``
      would invent an order and cost the same splits.

    Args:
        n_startup_trials: random trials before the density models are used (optuna's 10).
        multivariate: one joint density over all genes instead of one per gene (optuna's
            default for several objectives: ``False``).
    """

    name = "optuna:tpe"

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None,
                 n_startup_trials: int = 10, multivariate: bool = False):
        self.n_startup_trials, self.multivariate = n_startup_trials, multivariate
        super().__init__(space, n_objectives, seed)

    def _sampler(self, optuna: Any, seed: int | None) -> Any:
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=self.n_startup_trials,
                                          multivariate=self.multivariate,
                                          **self._constraints_func())


class OptunaNSGA2(OptunaStrategy):
    """optuna's ``NSGAIISampler`` (Deb et al., IEEE TEVC 2002), uniform crossover.

    Args:
        population_size: trials per generation (20 here; optuna's default is 50).
        crossover_prob: probability that a child is bred by crossover (optuna's 0.9).
    """

    name = "optuna:nsga2"

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None,
                 population_size: int = 20, crossover_prob: float = 0.9):
        self.population_size, self.crossover_prob = population_size, crossover_prob
        super().__init__(space, n_objectives, seed)

    def _sampler(self, optuna: Any, seed: int | None) -> Any:
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=self.population_size,
                                             crossover_prob=self.crossover_prob,
                                             **self._constraints_func())


class OptunaNSGA3(OptunaStrategy):
    """optuna's ``NSGAIIISampler`` (Deb & Jain, IEEE TEVC 2014): reference-point niching.

    Args:
        population_size: trials per generation (20 here; optuna's default is 50).
    """

    name = "optuna:nsga3"

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None,
                 population_size: int = 20):
        self.population_size = population_size
        super().__init__(space, n_objectives, seed)

    def _sampler(self, optuna: Any, seed: int | None) -> Any:
        return optuna.samplers.NSGAIIISampler(seed=seed, population_size=self.population_size,
                                              **self._constraints_func())


class OptunaGP(OptunaStrategy):
    """optuna's ``GPSampler``: Gaussian-process Bayesian optimisation (expected hypervolume
    improvement for several objectives). Each ask refits the GP on every trial and searches the
    acquisition over the genes, so it slows down as trials grow; a table lookup is noise-free,
    hence the option.

    Where an ask's time goes (optuna 5.1, NB201 accuracy x latency, cProfile of 40 unique
    evaluations, 30 GP asks, 57 s on a loaded host): 82% in optimising the acquisition
    (``optimize_acqf_mixed``: log-EHVI evaluated ~120 times per ask, half of it an exhaustive
    search over each categorical gene's choices), 16% in fitting the kernel. ``GPSampler``
    has no option that trims the acquisition search, and ``deterministic_objective`` changes
    the model, not the cost, so optuna's defaults stay; the benchmark runs it at a smaller
    budget, said in its table.

    Args:
        n_startup_trials: random trials before the GP is used (optuna's 10).
        deterministic_objective: fit a noise-free GP (optuna's default: False).
    """

    name = "optuna:gp"
    # no constraints: optuna would fit one more GP per constraint on every ask, and the tabular
    # problems this is benchmarked on have none (infeasible trials still count, by their values)
    constrained = False

    def __init__(self, space: Space, n_objectives: int = 2, seed: int | None = None,
                 n_startup_trials: int = 10, deterministic_objective: bool = False):
        self.n_startup_trials = n_startup_trials
        self.deterministic_objective = deterministic_objective
        super().__init__(space, n_objectives, seed)

    def _sampler(self, optuna: Any, seed: int | None) -> Any:
        return optuna.samplers.GPSampler(seed=seed, n_startup_trials=self.n_startup_trials,
                                         deterministic_objective=self.deterministic_objective)


class OptunaRandom(OptunaStrategy):
    """optuna's ``RandomSampler``: every gene uniformly (Bergstra & Bengio, JMLR 2012)."""

    name = "optuna:random"
    constrained = False  # it draws blind: nothing to tell it

    def _sampler(self, optuna: Any, seed: int | None) -> Any:
        return optuna.samplers.RandomSampler(seed=seed)
