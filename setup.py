"""Build script for udl's native extension ``udl._C``.

Knobs (environment variables, printed at build start):
  UDL_CUDA=1/0          force the CUDA build on / off (default: on when a real nvcc is found)
  CUDA_HOME             CUDA toolkit folder; when the ``nvcc`` on PATH is a wrapper script,
                        the toolkit it execs is found automatically
  TORCH_CUDA_ARCH_LIST  GPU architectures (default "9.0", i.e. sm_90)
  DEBUG=1               -O0 -g instead of release flags
  MAX_JOBS              parallel compile jobs for ninja
  UDL_NO_EXT=1          install the Python package only (the Makefile then runs build_ext --inplace)
"""

from __future__ import annotations

import glob
import os
import sys
from pathlib import Path

from setuptools import find_packages, setup

ROOT = Path(__file__).parent.resolve()
sys.path.insert(0, str(ROOT / "scripts"))
from cuda_home import real_cuda_home  # noqa: E402

VERSION = "0.1.0"


def _flag(name: str) -> str | None:
    value = os.environ.get(name)
    return None if value is None or value == "" else value


CUDA_HOME = real_cuda_home()
if CUDA_HOME:
    os.environ["CUDA_HOME"] = CUDA_HOME  # before torch.utils.cpp_extension reads it
os.environ.setdefault("TORCH_CUDA_ARCH_LIST", "9.0")

import torch  # noqa: E402
from torch.utils.cpp_extension import (  # noqa: E402
    BuildExtension,
    CppExtension,
    CUDAExtension,
)

force = _flag("UDL_CUDA")
WITH_CUDA = (force == "1") or (force is None and CUDA_HOME is not None)
if force == "1" and CUDA_HOME is None:
    sys.exit("UDL_CUDA=1 but no CUDA toolkit was found: set CUDA_HOME to the toolkit folder.")
DEBUG = _flag("DEBUG") == "1"
WITH_OPENMP = "OpenMP" in torch.__config__.parallel_info() and sys.platform != "darwin"


def get_extensions():
    if _flag("UDL_NO_EXT") == "1":
        # Used by `make` for the editable install: the extension is built in place after.
        return []
    cpp_sources = sorted(glob.glob("csrc/**/*.cpp", recursive=True))
    cuda_sources = sorted(glob.glob("csrc/**/*.cu", recursive=True))
    define_macros = [("UDL_VERSION", f'"{VERSION}"'), ("WITH_PYTHON", None)]
    cxx = ["-O0", "-g"] if DEBUG else ["-O3", "-g0"]
    cxx += ["-std=c++17"]
    nvcc = ["-O0", "-g", "-G"] if DEBUG else ["-O3"]
    nvcc += ["-std=c++17", "--expt-relaxed-constexpr", "--extended-lambda"]
    # libstdc++ from the shared library, named before any copy a compiler would link statically
    # (some images' g++ links libstdc++.a into shared objects): a second, private copy of
    # libstdc++ in _C.so next to the one torch loads broke c10's message formatting (a
    # TORCH_CHECK message cut at its first integer here, a segfault on the H200 image).
    extra_link = ["-Wl,--push-state,-Bdynamic,-lstdc++,--pop-state"]
    if WITH_OPENMP:
        cxx += ["-fopenmp"]
        define_macros.append(("AT_PARALLEL_OPENMP", "1"))
        extra_link.append("-fopenmp")
    arch_list = os.environ["TORCH_CUDA_ARCH_LIST"]
    if WITH_CUDA:
        define_macros += [("WITH_CUDA", None), ("UDL_CUDA_ARCHS", f'"{arch_list}"')]
        ext = CUDAExtension(
            "udl._C",
            cpp_sources + cuda_sources,
            define_macros=define_macros,
            extra_compile_args={"cxx": cxx, "nvcc": nvcc},
            extra_link_args=extra_link,
            include_dirs=[str(ROOT / "csrc")],
        )
    else:
        ext = CppExtension(
            "udl._C",
            cpp_sources,
            define_macros=define_macros,
            extra_compile_args={"cxx": cxx},
            extra_link_args=extra_link,
            include_dirs=[str(ROOT / "csrc")],
        )
    return [ext]


print(
    "udl build: "
    f"torch={torch.__version__} WITH_CUDA={WITH_CUDA} CUDA_HOME={CUDA_HOME} "
    f"TORCH_CUDA_ARCH_LIST={os.environ['TORCH_CUDA_ARCH_LIST']} DEBUG={DEBUG} "
    f"WITH_OPENMP={WITH_OPENMP} MAX_JOBS={os.environ.get('MAX_JOBS', '(ninja default)')}",
    flush=True,
)

setup(
    name="udl",
    version=VERSION,
    package_dir={"": "pyext"},
    packages=find_packages("pyext"),
    package_data={"udl": ["data/*", "data/**/*", "report/*.css"]},
    ext_modules=get_extensions(),
    cmdclass={"build_ext": BuildExtension},
    entry_points={"console_scripts": ["udl = udl.cli:main"]},
    python_requires=">=3.10",
)
