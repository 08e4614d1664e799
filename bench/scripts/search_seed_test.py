"""Is one strategy ahead of another beyond seed noise? A per-cell test over a search benchmark.

A command-line shim over :mod:`hwnas.bench.studies.search_seed_test` (usage: ``--help``).
"""

import sys

from hwnas.bench.studies.search_seed_test import main

if __name__ == "__main__":
    sys.exit(main())
