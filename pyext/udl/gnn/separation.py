"""Empirical separation power: do random-weight models tell two graphs apart, compared with the WL
test that bounds them (Geerts & Reutter: GIN ≤ 1-WL, 2-MPNN ≤ 2-FWL, 3-MPNN ≤ 3-FWL)."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch

__all__ = ["ModelSpec", "default_specs", "separates", "embed_pair", "brec_comparison", "rook_4x4",
           "shrikhande", "cfi_pair", "BrecRow"]


def rook_4x4():
    """The 4x4 rook's graph K4 □ K4, SRG(16, 6, 2, 2)."""
    import networkx as nx

    k4 = nx.complete_graph(4)
    return nx.convert_node_labels_to_integers(nx.cartesian_product(k4, k4))


def shrikhande():
    """The Shrikhande graph: Cayley graph of Z4 x Z4 with connection set ±(1,0), ±(0,1), ±(1,1);
    SRG(16, 6, 2, 2), so 2-FWL-equivalent to the rook's graph (3-FWL separates them)."""
    import networkx as nx

    g = nx.Graph()
    conn = [(1, 0), (3, 0), (0, 1), (0, 3), (1, 1), (3, 3)]
    for a in range(4):
        for b in range(4):
            for da, db in conn:
                g.add_edge(4 * a + b, 4 * ((a + da) % 4) + (b + db) % 4)
    return g


def cfi_pair(base):
    """The Cai–Fürer–Immerman pair over a connected base graph ``base`` (networkx): the plain and
    the twisted CFI graph. They are non-isomorphic; k-FWL separates them iff k >= tw(base)
    (so CFI(K4), tw 3, fools 2-FWL but not 3-FWL; CFI(K5) fools 3-FWL).

    Per base vertex v of degree d: 2d "a" vertices (v, u, bit) for each neighbour u and 2^(d-1)
    middle vertices, one per even subset S of the neighbours, joined to (v, u, 1) for u in S and
    to (v, u, 0) otherwise; per base edge {u, v}: (u, v, i) -- (v, u, i), crossed for one edge.
    """
    import itertools

    import networkx as nx

    if base.number_of_nodes() == 0 or not nx.is_connected(base):
        raise ValueError("base: expected a non-empty connected graph")
    graphs = []
    twisted_edge = next(iter(base.edges()))
    for twist in (False, True):
        g = nx.Graph()
        for v in base.nodes():
            nbrs = sorted(base.neighbors(v))
            for u in nbrs:
                g.add_node(("a", v, u, 0))
                g.add_node(("a", v, u, 1))
            for r in range(0, len(nbrs) + 1, 2):
                for subset in itertools.combinations(nbrs, r):
                    m = ("m", v, subset)
                    g.add_node(m)
                    for u in nbrs:
                        g.add_edge(m, ("a", v, u, 1 if u in subset else 0))
        for u, v in base.edges():
            cross = twist and (u, v) == twisted_edge
            for i in (0, 1):
                g.add_edge(("a", u, v, i), ("a", v, u, 1 - i if cross else i))
        graphs.append(nx.convert_node_labels_to_integers(g, ordering="sorted"))
    return graphs[0], graphs[1]


@dataclasses.dataclass
class ModelSpec:
    """A named random-weight model and the WL test bounding it.

    ``make(seed)`` builds the model (float64); ``wl_method`` names the ``udl.wl`` method of the
    bound (``"cr"``, ``"2-fwl"``, ``"3-fwl"``); ``layers`` is the number of rounds to compare with;
    ``max_nodes`` skips larger graphs (memory grows as n^k).
    """

    name: str
    make: Callable[[int], torch.nn.Module]
    wl_method: str
    layers: int
    max_nodes: int | None = None


def default_specs(layers: int = 3, hidden: int = 16, max_nodes_3: int = 40) -> list[ModelSpec]:
    """GIN (≤ cr), 2-MPNN (≤ 2-FWL) and 3-MPNN (≤ 3-FWL, graphs up to ``max_nodes_3`` vertices)."""
    from udl.gnn.kmpnn import KMPNN
    from udl.gnn.mpnn import GIN

    def seeded(fn: Callable[[], torch.nn.Module]) -> Callable[[int], torch.nn.Module]:
        def make(seed: int) -> torch.nn.Module:
            torch.manual_seed(seed)
            return fn().to(torch.float64).eval()
        return make

    return [
        ModelSpec("GIN", seeded(lambda: GIN(layers, 1, hidden, hidden)), "cr", layers),
        ModelSpec("2-MPNN", seeded(lambda: KMPNN(2, layers, 1, hidden, hidden, aggr="sum")), "2-fwl",
                  layers),
        ModelSpec("3-MPNN", seeded(lambda: KMPNN(3, layers, 1, max(hidden // 2, 4), hidden, aggr="sum")),
                  "3-fwl", layers, max_nodes_3),
    ]


def _embed(model: torch.nn.Module, graph: Any) -> torch.Tensor:
    if hasattr(model, "embed"):
        return model.embed(graph)[0]
    return model(graph)[0]


@torch.no_grad()
def embed_pair(model: torch.nn.Module, g1: Any, g2: Any) -> tuple[torch.Tensor, torch.Tensor]:
    """Graph embeddings of two graphs under the same weights."""
    return _embed(model, g1), _embed(model, g2)


def separates(model: torch.nn.Module, g1: Any, g2: Any, rtol: float = 1e-12) -> bool:
    """True if the model's graph embeddings differ by more than ``rtol`` relative to their size.

    Use float64 models: WL-equivalent graphs give embeddings equal up to summation-order rounding
    (measured <= 4e-16 relative on BREC), while separated pairs differ by 1e-10 to 1e-6 relative
    with random weights (the signal is a small perturbation of a large common part), hence the
    default ``rtol=1e-12``.
    """
    e1, e2 = embed_pair(model, g1, g2)
    scale = max(float(e1.abs().max()), float(e2.abs().max()), 1e-300)
    return float((e1 - e2).abs().max()) > rtol * scale


@dataclasses.dataclass
class BrecRow:
    """Counts for one model on one BREC category."""

    model: str
    category: str
    pairs: int            # pairs run (not skipped for size)
    model_separated: int  # pairs the random-weight model separates
    wl_separated: int | None  # pairs its WL bound (same number of rounds) separates
    violations: int | None    # pairs the model separates but the WL bound does not (must be 0)
    seconds: float


def _wl_equivalent(g1: Any, g2: Any, method: str, rounds: int) -> bool:
    import udl.wl

    return bool(udl.wl.equivalent(g1, g2, method, rounds=rounds))


def brec_comparison(specs: Sequence[ModelSpec] | None = None, categories: Sequence[str] | None = None,
                    per_category: int | None = None, seed: int = 0, use_wl: bool = True,
                    rtol: float = 1e-12, progress: Callable | None = None,
                    num_threads: int | None = 1) -> list[BrecRow]:
    """Count BREC pairs separated by random-weight models and by their WL bounds.

    Args:
        specs: models (default :func:`default_specs`).
        categories: BREC categories (default all seven).
        per_category: only the first this many pairs of each category.
        seed: weight seed (the same weights for both graphs of a pair).
        use_wl: also run the WL test of each model's bound with ``udl.wl`` (same number of rounds
            as layers, per Thm 4.2's graph-level statement) and count violations.
        rtol: separation threshold of :func:`separates`.
        progress: optional wrapper around the pair iterator (e.g. tqdm).
        num_threads: torch intra-op threads during the run (restored after); the graphs are small,
            so one thread is fastest and avoids oversubscription. ``None`` leaves it unchanged.
    """
    old = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        return _brec_comparison(specs, categories, per_category, seed, use_wl, rtol, progress)
    finally:
        torch.set_num_threads(old)


def _brec_comparison(specs, categories, per_category, seed, use_wl, rtol, progress) -> list[BrecRow]:
    from udl.data.brec import load_brec

    specs = list(default_specs() if specs is None else specs)
    pairs = load_brec(list(categories) if categories is not None else None)
    by_cat: dict[str, list] = {}
    for p in pairs:
        by_cat.setdefault(p.category, []).append(p)
    rows: list[BrecRow] = []
    for spec in specs:
        model = spec.make(seed)
        for cat, plist in by_cat.items():
            plist = plist[:per_category] if per_category is not None else plist
            t0 = time.perf_counter()
            run = sep = wl_sep = viol = 0
            it = progress(plist, desc=f"{spec.name} {cat}") if progress else plist
            for p in it:
                size = max(p.g1.number_of_nodes(), p.g2.number_of_nodes())
                if spec.max_nodes is not None and size > spec.max_nodes:
                    continue
                run += 1
                s = separates(model, p.g1, p.g2, rtol)
                sep += s
                if use_wl:
                    w = not _wl_equivalent(p.g1, p.g2, spec.wl_method, spec.layers)
                    wl_sep += w
                    viol += s and not w
            rows.append(BrecRow(spec.name, cat, run, sep, wl_sep if use_wl else None,
                                viol if use_wl else None, time.perf_counter() - t0))
    return rows
