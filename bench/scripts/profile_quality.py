"""How far a profile made by ``hwnas profile`` can be trusted on this machine.

A command-line shim over :mod:`hwnas.bench.studies.profile_quality` (usage: ``--help``).
"""

import sys

from hwnas.bench.studies.profile_quality import main

if __name__ == "__main__":
    sys.exit(main())
