"""Find the CUDA toolkit folder, seeing through an ``nvcc`` wrapper script on PATH.

Used by setup.py and the CMake check; prints the folder (or nothing) when run as a script.
"""

from __future__ import annotations

import glob
import os
import re
import shutil
from pathlib import Path


def real_cuda_home() -> str | None:
    env = os.environ.get("CUDA_HOME") or os.environ.get("CUDA_PATH")
    if env and Path(env, "bin", "nvcc").exists():
        return env
    nvcc = shutil.which("nvcc")
    if nvcc is None:
        for cand in sorted(glob.glob("/usr/local/cuda*"), reverse=True):
            if Path(cand, "bin", "nvcc").exists():
                return cand
        return None
    path = Path(nvcc).resolve()
    try:
        head = path.read_bytes()[:4096]
    except OSError:
        head = b""
    if head.startswith(b"#!"):
        # A wrapper such as `exec /usr/local/cuda-13.0/bin/nvcc "$@"`: follow it.
        match = re.search(rb"(/[^\s\"']+)/bin/nvcc", head)
        if match and Path(match.group(1).decode(), "bin", "nvcc").exists():
            return match.group(1).decode()
        return None
    return str(path.parent.parent)


if __name__ == "__main__":
    print(real_cuda_home() or "")
