"""Does pymoo's NSGA-II reach the search goal's reference recall on NB201 under other readings?

A command-line shim over :mod:`hwnas.bench.studies.pymoo_reference` (usage: ``--help``).
"""

import os
import sys

# one BLAS/OpenMP thread per process, set before numpy, torch or onnxruntime load
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hwnas.bench.studies.pymoo_reference import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
