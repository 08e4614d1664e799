"""Few-shot latency transfer, leave one device out, over every public device of every space.

A command-line shim over :mod:`hwnas.bench.studies.latency_lodo` (usage: ``--help``).
"""

import os
import sys

# one BLAS/OpenMP thread per process, set before numpy, torch or onnxruntime load
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hwnas.bench.studies.latency_lodo import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
