"""Variants of hwnas's NSGA-II beside pymoo's, on NB201 validation devices.

A command-line shim over :mod:`hwnas.bench.studies.nsga2_diagnosis` (usage: ``--help``).
"""

import os
import sys

# one BLAS/OpenMP thread per process, set before numpy, torch or onnxruntime load
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hwnas.bench.studies.nsga2_diagnosis import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
