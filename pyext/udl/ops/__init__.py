"""Python side of the native ops: thin wrappers over ``torch.ops.udl.*`` with fake kernels
(``torch.library.register_fake``) and autograd (``torch.library.register_autograd``).

Every module in this package is imported here, one per op area (``udl.ops.<area>``), so adding
an area means adding a file, never editing this one.
"""

from __future__ import annotations

import importlib
import pkgutil

import udl._ext  # noqa: F401  (the native library must be loaded before any registration)

for _info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
