#!/usr/bin/env bash
# Configure and build csrc/ with CMake against the libtorch of .venv (CPU ops), the path C++ users
# take. torch's CUDA wheels make find_package(Torch) look for CUDA even for a CPU build, so point it
# at the toolkit (through the nvcc wrapper) and at the nvrtc the wheels ship.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PREFIX=$($PY -c 'import torch; print(torch.utils.cmake_prefix_path)')
args=(-DCMAKE_BUILD_TYPE=Release -DWITH_CUDA=OFF -DCMAKE_PREFIX_PATH="$PREFIX")
CUDA_ROOT=$($PY scripts/cuda_home.py)
if [ -n "$CUDA_ROOT" ]; then
  args+=(-DCUDA_TOOLKIT_ROOT_DIR="$CUDA_ROOT" -DCMAKE_CUDA_COMPILER="$CUDA_ROOT/bin/nvcc")
  NVRTC=$(ls "$CUDA_ROOT"/lib64/libnvrtc.so* 2>/dev/null | head -1 || true)
  if [ -z "$NVRTC" ]; then
    NVRTC=$($PY - <<'PY'
import glob, os, torch
site = os.path.dirname(os.path.dirname(torch.__file__))
hits = sorted(glob.glob(os.path.join(site, "nvidia", "*", "lib", "libnvrtc.so*")))
print(hits[0] if hits else "")
PY
)
  fi
  [ -n "$NVRTC" ] && args+=(-DCUDA_nvrtc_LIBRARY="$NVRTC")
fi
cmake -S . -B cmake-build "${args[@]}" > cmake-build.log 2>&1 || { cat cmake-build.log; exit 1; }
cmake --build cmake-build -j "${MAX_JOBS:-2}"
test -f cmake-build/libudl_ops.so
# The library must load and register the ops by itself (no Python module in it).
$PY - <<'PY'
import torch
torch.ops.load_library("cmake-build/libudl_ops.so")
names = sorted({s.name for s in torch._C._jit_get_all_schemas() if s.name.startswith("udl::")})
assert names, "libudl_ops.so registered no udl ops"
print(f"cmake-check: libudl_ops.so registers {len(names)} ops: {', '.join(n[5:] for n in names)}")
PY
