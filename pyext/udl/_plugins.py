"""Discovery of per-method plug-ins: ``udl.<method>.report``, ``.cli`` and ``.bench`` modules.

A method subpackage joins the report, the command line and the benchmark table by shipping
the matching module; nothing central has to be edited.
"""

from __future__ import annotations

import importlib
import importlib.util
import pkgutil
from types import ModuleType

import udl

# Packages that are infrastructure, not methods.
_NOT_METHODS = {"ops", "report", "bench", "cli", "data"}


def method_packages() -> list[str]:
    """Names of the method subpackages shipped with udl, in a stable order."""
    names = []
    for info in pkgutil.iter_modules(udl.__path__):
        if info.ispkg and not info.name.startswith("_") and info.name not in _NOT_METHODS:
            names.append(info.name)
    return sorted(names)


def find_plugins(kind: str) -> dict[str, str]:
    """Map method name -> module path ``udl.<method>.<kind>`` for methods that have one."""
    found = {}
    for name in method_packages():
        module = f"udl.{name}.{kind}"
        if importlib.util.find_spec(module) is not None:
            found[name] = module
    return found


def load_plugin(module: str) -> ModuleType:
    return importlib.import_module(module)
