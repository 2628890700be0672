#!/usr/bin/env bash
# The GPU check, in one call on a machine with one CUDA GPU (under 8 minutes on an H100-class
# GPU): every CUDA test, then the smoke suite and ResNet-50 of the imagenet suite timed on the
# GPU, written to results/gpu/ (or the folder given) to commit, with the tests' log beside them.
#
#   scripts/gpu-check.sh [OUT]
#
# attnprof must be installed with a CUDA build of torch (README: "With a GPU"). Without a GPU
# it says so and exits 2, having written nothing.
set -euo pipefail
cd "$(dirname "$0")/.."
out="${1:-results/gpu}"
python="${PYTHON:-python3}"

if ! "$python" -c "import sys, torch; sys.exit(0 if torch.cuda.is_available() else 1)"; then
  echo "gpu-check: no CUDA GPU here (torch.cuda.is_available() is False); nothing was run" >&2
  exit 2
fi
mkdir -p "$out"
"$python" -c "import torch; print(torch.__version__, torch.version.cuda, torch.cuda.get_device_name(0))" \
  | tee "$out/gpu.txt"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.max.sm,memory.total --format=csv \
  >>"$out/gpu.txt" 2>/dev/null || true

# 1. Every CUDA test (they skip without a GPU everywhere else).
"$python" -m pytest -m cuda -p no:cacheprovider -q -rs tests 2>&1 | tee "$out/cuda-tests.log"

# 2. The smoke suite, then ResNet-50 of imagenet, on the GPU (sequential replication; the budget
#    keeps the whole call under 8 minutes).
attnprof run --suite smoke --device cuda --out "$out/smoke" --quiet --budget "1 min"
attnprof run --suite imagenet --networks resnet50 --device cuda --out "$out/imagenet-resnet50" \
  --quiet --budget "4 min"
echo "gpu-check: done; commit $out"
