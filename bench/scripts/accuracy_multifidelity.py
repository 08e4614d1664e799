"""Multi-fidelity accuracy transfer on NAS-Bench-201: K full results + cheap results + proxies.

A command-line shim over :mod:`hwnas.bench.studies.accuracy_multifidelity` (usage: ``--help``).
"""

import os
import sys

# one BLAS/OpenMP thread per process, set before numpy, torch or onnxruntime load
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hwnas.bench.studies.accuracy_multifidelity import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
