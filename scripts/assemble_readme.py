"""Rebuild README.md's method sections from docs/<module>.md (everything after the marker line).

Usage: python scripts/assemble_readme.py [--check]   (--check: exit 1 if README.md is stale)
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
MARKER = "<!-- METHOD SECTIONS -->"
# Order of the method table in the README.
MODULES = ["diffstride", "wl", "tl", "collapse", "convex", "shuffling", "interactions", "continual"]


def assemble() -> str:
    readme = (ROOT / "README.md").read_text()
    head = readme.split(MARKER)[0]
    parts = [head.rstrip() + "\n\n" + MARKER + "\n"]
    parts.append("# Methods\n")
    for name in MODULES:
        path = ROOT / "docs" / f"{name}.md"
        if path.exists():
            parts.append(path.read_text().strip() + "\n")
    return "\n".join(parts)


def main() -> int:
    text = assemble()
    if "--check" in sys.argv:
        stale = (ROOT / "README.md").read_text() != text
        if stale:
            print("README.md is stale: run python scripts/assemble_readme.py")
        return int(stale)
    (ROOT / "README.md").write_text(text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
