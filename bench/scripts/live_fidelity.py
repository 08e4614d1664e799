"""Does low-fidelity training rank NB-201 architectures like the longer reference training?

A command-line shim over :mod:`hwnas.bench.studies.live_fidelity` (usage: ``--help``).
"""

import sys

from hwnas.bench.studies.live_fidelity import main

if __name__ == "__main__":
    sys.exit(main())
