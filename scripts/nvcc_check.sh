#!/usr/bin/env bash
# Compile CUDA sources with nvcc for sm_90 using torch's headers, without linking: a quick way
# to check that a .cu file builds (there is no GPU here). Usage: scripts/nvcc_check.sh FILE.cu...
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
NVCC_BIN=$(sed -n 's/^exec \([^ ]*nvcc\).*/\1/p' "$(command -v nvcc)" 2>/dev/null || true)
NVCC_BIN=${NVCC_BIN:-${CUDA_HOME:-/usr/local/cuda}/bin/nvcc}
INC=$($PY - <<'PY'
from torch.utils.cpp_extension import include_paths
import sysconfig
print(" ".join(f"-I{p}" for p in include_paths() + [sysconfig.get_paths()["include"]]))
PY
)
ABI=$($PY -c "import torch; print(int(torch._C._GLIBCXX_USE_CXX11_ABI))")
for f in "$@"; do
  echo "nvcc: $f"
  "$NVCC_BIN" -c "$f" -o /tmp/nvcc_check_$$.o -std=c++17 -O3 -Icsrc $INC \
    -gencode=arch=compute_90,code=sm_90 --expt-relaxed-constexpr --extended-lambda \
    -D_GLIBCXX_USE_CXX11_ABI=$ABI -DWITH_CUDA -D__CUDA_NO_HALF_OPERATORS__ \
    -D__CUDA_NO_HALF_CONVERSIONS__ -D__CUDA_NO_BFLOAT16_CONVERSIONS__ -D__CUDA_NO_HALF2_OPERATORS__ \
    -Xcompiler -fPIC
done
rm -f /tmp/nvcc_check_$$.o
echo "nvcc_check: ok"
