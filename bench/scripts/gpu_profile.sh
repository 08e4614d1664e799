#!/usr/bin/env bash
# The GPU check of the profiler, as one prepared script for a machine with an NVIDIA GPU:
# profiles N NB201 architectures with PyTorch + CUDA events at batch 1 and 256 (and with ONNX
# Runtime's CUDA provider where that build is installed), then the unit tests that need a GPU.
#
#   HWNAS_DATA=/path/to/shared/data OUT=/tmp/out bench/scripts/gpu_profile.sh [N]
#
# On the project's lent device machine: copy ../shared/data/nb201 into an ignored folder of the
# checkout (e.g. .gpudata/nb201), carry it, and set HWNAS_DATA=.gpudata. The tables written under
# $OUT/<device>/ (latency_ms.csv + meta.json) are the reference results to commit under results/.
set -euo pipefail
N=${1:-500}
OUT=${OUT:-results/devices}
export PYTHONUNBUFFERED=1
# install hwnas beside the machine's own torch/onnxruntime, fetching nothing
python3 -m pip install -q --no-deps --no-build-isolation --target /tmp/hwnas-site . >/dev/null
export PYTHONPATH=/tmp/hwnas-site${PYTHONPATH:+:$PYTHONPATH}
HW="python3 -m hwnas.bench"
nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv,noheader || true
gpu=$(python3 -c "import torch; print(torch.cuda.get_device_name(0).replace(' ', '_').lower())")
for batch in 1 256; do
  $HW profile --space nb201 --runtime torch-cuda --name "${gpu}_torch_${batch}" --archs "$N" \
      --seed 0 --batch "$batch" --out "$OUT/${gpu}_torch_${batch}"
done
if python3 -c "import onnxruntime as o, sys; sys.exit('CUDAExecutionProvider' not in o.get_available_providers())"; then
  $HW profile --space nb201 --runtime ort-cuda --name "${gpu}_ort_1" --archs "$N" --seed 0 \
      --batch 1 --out "$OUT/${gpu}_ort_1"
else
  echo "onnxruntime here has no CUDAExecutionProvider: ort-cuda not profiled"
fi
python3 -m pytest -q -m gpu tests || [ $? -eq 5 ]
