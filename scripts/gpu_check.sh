#!/usr/bin/env bash
# One-shot GPU check for a machine with an NVIDIA GPU and torch already installed:
# build the CUDA kernels, run the CUDA tests, run the side-by-side benchmarks on the GPU, and
# write logs and result JSON under OUTDIR. Usage: scripts/gpu_check.sh OUTDIR
set -uo pipefail
OUT=${1:?usage: scripts/gpu_check.sh OUTDIR}
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
PY=${PY:-python3}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-16}
status=0

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1 || true
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr ' ' '_' )
echo "GPU: ${GPU:-unknown}"

echo "== build" | tee "$OUT/build.log"
if ! UDL_CUDA=1 $PY -m pip install --no-build-isolation --no-deps -e . >> "$OUT/build.log" 2>&1; then
  echo "build failed"; tail -40 "$OUT/build.log"; exit 1
fi
$PY -m udl info | tee "$OUT/info.txt"

echo "== CUDA tests"
timeout 300 $PY -m pytest -q -m cuda tests -p no:cacheprovider > "$OUT/cuda_tests.log" 2>&1 || status=1
tail -15 "$OUT/cuda_tests.log"

echo "== benchmarks (cuda)"
timeout 300 $PY -m udl bench --device cuda --out "$OUT/side_by_side_${GPU:-gpu}.json" \
  > "$OUT/bench.log" 2>&1 || status=1
tail -40 "$OUT/bench.log"
exit $status
