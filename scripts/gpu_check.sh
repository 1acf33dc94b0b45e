#!/usr/bin/env bash
# GPU check for a machine with an NVIDIA GPU and torch already installed: build the CUDA kernels,
# run the CUDA tests, run the side-by-side benchmarks on the GPU, and write logs and result JSON
# under OUTDIR.
#
# Usage: scripts/gpu_check.sh OUTDIR [STAGE ...]
# Stages, in this order when none is given:
#   build          build udl._C with the CUDA kernels in place (pyext/udl), no install
#   tests          pytest -m cuda
#   cputests       the CPU suite of the WL kernels (tests/test_wl_*.py, not marked cuda) on this
#                  machine's build and thread count (not in the default list)
#   wl interactions convex diffstride collapse continual gnn shuffling
#                  udl bench --only <module> --device cuda -> OUTDIR/<module>_<GPU>.json
# Every stage runs in its own process under its own timeout (STAGE_TIMEOUT seconds, default 300;
# STAGE:SECONDS sets one stage's) and writes its files as soon as it ends, so a device call cut
# short keeps the stages that finished. BUDGET (seconds) caps the whole run: a stage gets at most
# what is left and is skipped when under 20 s remain. ARCHIVE=path.tgz packs OUTDIR after every
# stage (the device tool brings back a few files only). When the stages do not fit one call, give
# them to several calls.
set -uo pipefail
OUT=${1:?usage: scripts/gpu_check.sh OUTDIR [STAGE ...]}
shift
STAGES=("$@")
[ ${#STAGES[@]} -eq 0 ] && STAGES=(build tests wl interactions convex diffstride collapse continual
                                   gnn shuffling)
mkdir -p "$OUT"
cd "$(dirname "$0")/.."
PY=${PY:-python3}
export TORCH_CUDA_ARCH_LIST=${TORCH_CUDA_ARCH_LIST:-9.0}
export MAX_JOBS=${MAX_JOBS:-16}
# convex on the GPU: the cells the CPU cannot certify in time, not the whole grid
export UDL_CONVEX_CELLS=${UDL_CONVEX_CELLS:-"1000,50,1000;10000,10,1000;10000,50,1000"}
status=0

nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv > "$OUT/gpu.txt" 2>&1 || true
GPU=$(nvidia-smi --query-gpu=name --format=csv,noheader 2>/dev/null | head -1 | tr ' ' '_' )
echo "GPU: ${GPU:-unknown}"

export PYTHONUNBUFFERED=1
export PYTHONPATH="$PWD/pyext${PYTHONPATH:+:$PYTHONPATH}"  # the in-place build, no install
BUDGET=${BUDGET:-100000}
pack() { [ -n "${ARCHIVE:-}" ] && tar czf "$ARCHIVE" -C "$OUT" . 2>/dev/null; return 0; }

for spec in "${STAGES[@]}"; do
  stage=${spec%%:*}
  T=${STAGE_TIMEOUT:-300}
  [ "$spec" != "$stage" ] && T=${spec#*:}
  left=$((BUDGET - SECONDS))
  if [ "$left" -lt 20 ]; then echo "-- $stage: skipped (budget spent)"; continue; fi
  [ "$T" -gt "$left" ] && T=$left
  start=$SECONDS
  case "$stage" in
    build)
      echo "== build" | tee "$OUT/build.log"
      if ! timeout "$T" env UDL_CUDA=1 $PY setup.py build_ext --inplace >> "$OUT/build.log" 2>&1
      then
        echo "build failed"; tail -40 "$OUT/build.log"; pack; exit 1
      fi
      $PY -m udl info | tee "$OUT/info.txt"
      ;;
    tests)
      echo "== CUDA tests"
      timeout "$T" $PY -m pytest -q -m cuda tests -p no:cacheprovider -rfE --tb=short \
        --durations=10 > "$OUT/cuda_tests.log" 2>&1 || status=1
      grep -E "^(FAILED|ERROR)|passed|failed" "$OUT/cuda_tests.log" | tail -40
      ;;
    cputests)
      echo "== CPU tests of udl.wl"
      timeout "$T" $PY -X faulthandler -m pytest -q -m "not cuda" tests/test_wl_*.py \
        -p no:cacheprovider -rfE --tb=short > "$OUT/cpu_wl_tests.log" 2>&1 || status=1
      grep -E "^(FAILED|ERROR)|passed|failed|Fatal|File \"/" "$OUT/cpu_wl_tests.log" | tail -20
      ;;
    *)
      echo "== benchmark $stage (cuda)"
      timeout "$T" $PY -m udl bench --only "$stage" --device cuda \
        --out "$OUT/${stage}_${GPU:-gpu}.json" > "$OUT/bench_$stage.log" 2>&1 || status=1
      tail -25 "$OUT/bench_$stage.log"
      ;;
  esac
  echo "-- $stage: $((SECONDS - start)) s (limit $T s)"
  pack
done
exit $status
