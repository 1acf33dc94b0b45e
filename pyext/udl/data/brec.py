"""The BREC benchmark's 400 graph pairs (Wang & Zhang; MIT licence, see data/brec/LICENSE).

Every pair is non-isomorphic and 1-WL-indistinguishable. Categories and BREC's own global
order: basic 0-59, regular 60-109, strongly regular 110-159, extension 160-259, cfi 260-359,
4-vertex condition 360-379, distance regular 380-399.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import numpy as np

BREC_DIR = Path(__file__).parent / "brec"

# (category, file, number of pairs) in BREC's global order.
CATEGORIES: tuple[tuple[str, str, int], ...] = (
    ("basic", "basic.npy", 60),
    ("regular", "regular.npy", 50),
    ("strongly_regular", "str.npy", 50),
    ("extension", "extension.npy", 100),
    ("cfi", "cfi.npy", 100),
    ("4vertex", "4vtx.npy", 20),
    ("distance_regular", "dr.npy", 20),
)


@dataclasses.dataclass
class BrecPair:
    """One BREC pair: ``g1``, ``g2`` are networkx graphs; ``index`` is BREC's global index."""

    category: str
    index: int
    g1: Any
    g2: Any


def _entries(file: str) -> list[bytes]:
    raw = np.load(BREC_DIR / file, allow_pickle=True).reshape(-1)
    return [(e.encode() if isinstance(e, str) else bytes(e)).strip() for e in raw]


def load_brec(categories: list[str] | None = None) -> list[BrecPair]:
    """Load BREC pairs as networkx graphs, optionally only some categories."""
    import networkx as nx

    known = [c for c, _, _ in CATEGORIES]
    if categories is not None:
        unknown = sorted(set(categories) - set(known))
        if unknown:
            raise ValueError(f"categories: unknown {unknown}; expected some of {known}")
    pairs: list[BrecPair] = []
    offset = 0
    for category, file, count in CATEGORIES:
        if categories is None or category in categories:
            entries = _entries(file)
            if len(entries) != 2 * count:
                raise ValueError(f"{file}: expected {2 * count} graphs, found {len(entries)}")
            for i in range(count):
                g1 = nx.from_graph6_bytes(entries[2 * i])
                g2 = nx.from_graph6_bytes(entries[2 * i + 1])
                pairs.append(BrecPair(category, offset + i, g1, g2))
        offset += count
    return pairs
