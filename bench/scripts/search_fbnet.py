"""Multi-objective search on the FBNet table's 5,000 architectures, per device.

A command-line shim over :mod:`hwnas.bench.studies.search_fbnet` (usage: ``--help``).
"""

import os
import sys

# one BLAS/OpenMP thread per process, set before numpy, torch or onnxruntime load
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hwnas.bench.studies.search_fbnet import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
