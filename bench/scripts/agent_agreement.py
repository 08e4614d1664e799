"""Does a profile through a device agent measure what a local profile measures?

A command-line shim over :mod:`hwnas.bench.studies.agent_agreement` (usage: ``--help``).
"""

import os
import sys

# one BLAS/OpenMP thread per process, set before numpy, torch or onnxruntime load (the agent
# started by the study inherits them)
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hwnas.bench.studies.agent_agreement import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
