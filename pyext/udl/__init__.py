"""udl: understanding deep learning — fast, tested tools for seven ICLR 2022 papers.

Method subpackages are imported lazily (``udl.diffstride``, ``udl.wl``, ``udl.tl``, ``udl.gnn``,
``udl.collapse``, ``udl.convex``, ``udl.shuffling``, ``udl.interactions``, ``udl.continual``), so
``import udl`` stays light and never imports optional heavy dependencies (cvxpy,
torch_geometric, torchaudio, matplotlib).
"""

from __future__ import annotations

import importlib

from udl import ops  # noqa: F401  (registers fake kernels and autograd of every native op)
from udl._ext import BUILD_INFO, cuda_compiled, native_ops

__version__ = BUILD_INFO["version"]

_SUBPACKAGES = (
    "diffstride",
    "wl",
    "tl",
    "gnn",
    "collapse",
    "convex",
    "shuffling",
    "interactions",
    "continual",
    "report",
    "bench",
    "cli",
)

__all__ = ["BUILD_INFO", "__version__", "cuda_compiled", "native_ops", *_SUBPACKAGES]


def __getattr__(name: str):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"udl.{name}")
    raise AttributeError(f"module 'udl' has no attribute {name!r}")
