"""One-shot NB201 on digits: supernet ranking, and latency-aware differentiable search vs evolution.

A command-line shim over :mod:`hwnas.bench.studies.oneshot_benchmark` (usage: ``--help``).
"""

import os
import sys

# one BLAS/OpenMP thread per process, set before numpy, torch or onnxruntime load
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hwnas.bench.studies.oneshot_benchmark import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
