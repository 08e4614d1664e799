"""How much of the NB201 Pareto front can a search find if it knew almost everything it can learn?

A command-line shim over :mod:`hwnas.bench.studies.search_ceiling` (usage: ``--help``).
"""

import sys

from hwnas.bench.studies.search_ceiling import main

if __name__ == "__main__":
    sys.exit(main())
