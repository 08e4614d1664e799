"""INT8 against FP32, OpenVINO against ONNX Runtime, on the same NB201 networks on this CPU.

A command-line shim over :mod:`hwnas.bench.studies.precision_speedup` (usage: ``--help``).
"""

import os
import sys

# one BLAS/OpenMP thread per process, set before numpy, torch, onnxruntime or openvino load
for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from hwnas.bench.studies.precision_speedup import main  # noqa: E402

if __name__ == "__main__":
    sys.exit(main())
