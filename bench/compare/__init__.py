"""Grids of search runs: a TOML config, a resumable parallel run, combined tables.

``hwnas compare CONFIG.toml`` expands a config into runs (problem x strategy x seed), runs each
with :func:`hwnas.bench.problem.run_problem` in its own folder (``OUT/runs/<problem>/<strategy>/
<seed>/``, the ``hwnas search`` format) on a local process pool or a Ray cluster, and then writes
``OUT/evaluations.parquet`` (every evaluation of every run) and ``OUT/indicators.parquet`` (per
run and budget checkpoint: hypervolume ratio, front recall, IGD+, constrained regret; see
:mod:`hwnas.bench.scoring`).

The flow, one module per stage:

- :mod:`.values`, :mod:`.spec`, :mod:`.options`, :mod:`.config`: a config is refused, in one
  line, before anything runs or is written: it is parsed into typed values
  (:class:`CompareConfig`, :class:`ProblemSpec`, :class:`StrategySpec`) in one place, where an
  unknown key, a value of the wrong type or range, or a name that could not be a folder is an
  error (:func:`load_config`);
- :mod:`.grid`: then every problem x strategy of the grid is built once, as its runs would build
  it (tables, objectives, constraints, strategy with its options), so an unknown space, task,
  device or constraint fails before the first run, not run by run (:func:`check_grid`);
- :mod:`.run`: one run, in its own folder, locked (``fcntl.flock``) while it runs so two
  ``compare`` processes on one output folder never write the same run; it is finished when the
  core's run-folder reader (:func:`hwnas.bench.core.read_run`, checksums included) accepts it
  and its ``run.json`` records the same config; anything else is rerun from its seed, so a
  resumed grid equals an uninterrupted one (:func:`is_finished`, :func:`run_one`);
- :mod:`.executors`, :mod:`.pool`: serial, a local process pool that stops within about a
  second on Ctrl-C or ``SIGTERM`` and whose workers die with their parent, or Ray;
- :mod:`.runner`: the whole grid; a failed run does not stop it, but :func:`run_compare` raises
  :class:`RunsFailedError` (carrying the manifest) once the others are done and written.

Config::

    [compare]
    seeds = [0, 1, 2]
    budgets = [100, 300]            # checkpoints; every run goes to the largest
    executor = "process"            # or "ray" (address: ray_address, else RAY_ADDRESS)
    workers = 2

    [[problems]]
    name = "nb201"
    space = "nb201"
    task = "cifar10_test_200ep"
    devices = ["pixel2", "raspi4"]  # one problem per device: nb201-pixel2, nb201-raspi4
    objectives = ["accuracy", "latency"]
    constraints = ["latency<=5"]

    [[strategies]]
    name = "nsga2"
    options = { population = 20 }

    [[strategies]]
    name = "auto"                   # what a search gets by default (also when no [[strategies]]
                                    # is given); prior = false: without its default priors
"""

from .config import load_config
from .grid import check_grid
from .run import is_finished, run_one
from .runner import RunsFailedError, run_compare
from .spec import CompareConfig, ProblemSpec, RunSpec, StrategySpec
from .values import EXECUTORS, MAX_BUDGET, MAX_SEED, ConfigError, check_name

__all__ = ["CompareConfig", "ConfigError", "RunsFailedError", "ProblemSpec", "StrategySpec",
           "RunSpec", "load_config", "check_grid", "check_name", "run_compare", "run_one",
           "is_finished", "EXECUTORS", "MAX_BUDGET", "MAX_SEED"]
