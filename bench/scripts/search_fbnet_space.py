"""Multi-objective search of the whole FBNet space (9^22, no table) against its exact front.

A command-line shim over :mod:`hwnas.bench.studies.search_fbnet_space` (usage: ``--help``).
"""

import os
import sys

# one BLAS/OpenMP thread per process, set before numpy, torch or onnxruntime load
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hwnas.bench.studies.search_fbnet_space import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
