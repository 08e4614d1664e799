"""How well can a device's latencies be ranked at all? The noise ceiling of each latency table.

A command-line shim over :mod:`hwnas.bench.studies.latency_ceiling` (usage: ``--help``).
"""

import sys

from hwnas.bench.studies.latency_ceiling import main

if __name__ == "__main__":
    sys.exit(main())
