"""How many of its own measurements does a device's latency ceiling need? The ceiling as a curve.

A command-line shim over :mod:`hwnas.bench.studies.latency_ceiling_curve` (usage: ``--help``).
"""

import sys

from hwnas.bench.studies.latency_ceiling_curve import main

if __name__ == "__main__":
    sys.exit(main())
