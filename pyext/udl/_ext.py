"""Load the native extension ``udl._C`` and check it matches the running torch.

udl never silently falls back to Python when its kernels are missing: a missing or
mismatched build is an ImportError that says how to rebuild.
"""

from __future__ import annotations

import torch

_REBUILD = (
    "Rebuild it from the repository root with `make build` "
    "(or `pip install --no-build-isolation --no-deps -e .`)."
)

try:
    from udl import _C  # noqa: F401  (loading the library registers torch.ops.udl.*)
except ImportError as exc:  # pragma: no cover - exercised only on broken installs
    raise ImportError(
        f"udl's native extension udl._C could not be loaded ({exc}). {_REBUILD}"
    ) from exc

BUILD_INFO: dict = dict(_C.build_info())


def _base(version: str) -> str:
    return version.split("+")[0]


if _base(BUILD_INFO["torch_version"]) != _base(torch.__version__):  # pragma: no cover
    raise ImportError(
        f"udl._C was built against torch {BUILD_INFO['torch_version']} but torch "
        f"{torch.__version__} is installed. {_REBUILD}"
    )
if BUILD_INFO["with_cuda"] and torch.version.cuda is not None:
    built_major = str(BUILD_INFO["cuda_version"]).split(".")[0]
    if built_major != torch.version.cuda.split(".")[0]:  # pragma: no cover
        raise ImportError(
            f"udl._C was built with CUDA {BUILD_INFO['cuda_version']} but torch uses CUDA "
            f"{torch.version.cuda}. {_REBUILD}"
        )


def native_ops() -> list[str]:
    """Names of the operators registered under ``torch.ops.udl``."""
    names = []
    for schema in torch._C._jit_get_all_schemas():
        if schema.name.startswith("udl::"):
            names.append(schema.name.split("::", 1)[1])
    return sorted(set(names))


def cuda_compiled() -> bool:
    return bool(BUILD_INFO["with_cuda"])
