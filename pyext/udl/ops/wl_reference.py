"""Slow pure-Python reference for udl.wl, written from the definitions (tests compare against it).

Signatures are Python tuples kept in dictionaries; the colour ids of a round are the ranks of the
distinct signatures in sorted (lexicographic) order, which is the documented id convention of
``torch.ops.udl.wl_refine`` / ``wl_refine_tuples``, so ids (not only partitions) can be compared.

A reference graph is ``(n, edges, node_labels, edge_labels)``: ``edges`` a list of ``(u, v)``
(undirected graphs: one entry per edge; multi-edges repeat), labels lists of sortable values or
``None``. A batch shares one colour space. Rounds stop when a round splits no class (that round is
not recorded), or after ``rounds`` rounds.
"""

from __future__ import annotations

import itertools
from typing import Any

RefGraph = tuple[int, list[tuple[int, int]], "list[Any] | None", "list[Any] | None"]

__all__ = ["cr_reference", "kwl_reference"]


def _ranks(values: list[Any]) -> list[int]:
    order = {v: i for i, v in enumerate(sorted(set(values)))}
    return [order[v] for v in values]


def _node_colors(graphs: list[RefGraph]) -> list[int]:
    labels = []
    for n, _, nl, _ in graphs:
        labels.extend(nl if nl is not None else [0] * n)
    return _ranks(labels)


def _edge_ids(graphs: list[RefGraph]) -> list[list[int]]:
    flat = []
    for _, edges, _, el in graphs:
        flat.extend(el if el is not None else [0] * len(edges))
    ids = _ranks(flat) if flat else []
    out, pos = [], 0
    for _, edges, _, _ in graphs:
        out.append(ids[pos:pos + len(edges)])
        pos += len(edges)
    return out


def _iterate(colors: list[int], signature, rounds: int | None) -> list[list[int]]:
    history = [colors]
    count = len(set(colors))
    while rounds is None or len(history) - 1 < rounds:
        sigs = [signature(i, colors) for i in range(len(colors))]
        new = _ranks(sigs)
        if len(set(new)) == count:
            break
        colors, count = new, len(set(new))
        history.append(colors)
    return history


def cr_reference(graphs: list[RefGraph], directed: bool = False,
                 rounds: int | None = None) -> list[list[int]]:
    """Colour refinement on a batch: the colourings (flat over all nodes) after rounds 0..R."""
    offsets = list(itertools.accumulate([0] + [g[0] for g in graphs]))
    N = offsets[-1]
    nbrs: list[list[tuple[int, int, int]]] = [[] for _ in range(N)]  # (tag, label, node)
    for g, ((_, edges, _, _), labs) in enumerate(zip(graphs, _edge_ids(graphs))):
        off = offsets[g]
        for (u, v), lab in zip(edges, labs):
            u, v = u + off, v + off
            if directed:
                nbrs[v].append((0, lab, u))
                nbrs[u].append((1, lab, v))
            else:
                nbrs[v].append((0, lab, u))
                if u != v:
                    nbrs[u].append((0, lab, v))

    def signature(i: int, c: list[int]):
        items = tuple(sorted((t, lab, c[w]) for t, lab, w in nbrs[i]))
        return (c[i], len(items), items)

    return _iterate(_node_colors(graphs), signature, rounds)


def _pair_multisets(graphs: list[RefGraph], directed: bool) -> list[dict[tuple[int, int], int]]:
    per_graph = []
    all_ms = set()
    for (_n, edges, _, _), labs in zip(graphs, _edge_ids(graphs)):
        arcs: dict[tuple[int, int], list[int]] = {}
        for (u, v), lab in zip(edges, labs):
            arcs.setdefault((u, v), []).append(lab)
            if not directed and u != v:
                arcs.setdefault((v, u), []).append(lab)
        ms = {key: tuple(sorted(val)) for key, val in arcs.items()}
        per_graph.append(ms)
        all_ms.update(ms.values())
    rank = {m: i + 1 for i, m in enumerate(sorted(all_ms, key=lambda t: (len(t), t)))}
    return [{key: rank[m] for key, m in ms.items()} for ms in per_graph]


def kwl_reference(graphs: list[RefGraph], k: int, kind: str, directed: bool = False,
                  rounds: int | None = None) -> list[list[int]]:
    """k-FWL (``kind="fwl"``, k = 1, 2, 3) or k-OWL (``kind="owl"``, k = 2, 3) on a batch: the
    colourings (flat over all k-tuples, graph by graph, row-major) after rounds 0..R."""
    A = _pair_multisets(graphs, directed)
    offsets = [0]
    tuples: list[tuple[int, tuple[int, ...]]] = []
    labels = []
    nl_all = _node_colors(graphs)
    node_off = list(itertools.accumulate([0] + [g[0] for g in graphs]))
    for g, (n, _, _, _) in enumerate(graphs):
        nc = nl_all[node_off[g]:node_off[g + 1]]
        for t in itertools.product(range(n), repeat=k):
            eq = tuple(int(t[i] == t[j]) for i in range(k) for j in range(i + 1, k))
            adj = tuple(A[g].get((t[i], t[j]), 0) for i in range(k) for j in range(k))
            labels.append((tuple(nc[x] for x in t), eq, adj))
            tuples.append((g, t))
        offsets.append(len(tuples))
    colors0 = _ranks(labels)
    index = {gt: i for i, gt in enumerate(tuples)}
    atp = {}
    if kind == "fwl" and k == 1:
        keys = {}
        for g, (n, _, _, _) in enumerate(graphs):
            for v in range(n):
                for u in range(n):
                    keys[(g, v, u)] = (int(v == u), A[g].get((v, u), 0), A[g].get((u, v), 0))
        ranked = dict(zip(keys, _ranks(list(keys.values()))))
        atp = ranked
    sizes = [g[0] for g in graphs]

    def signature(i: int, c: list[int]):
        g, t = tuples[i]
        n = sizes[g]
        if kind == "fwl" and k == 1:
            items = [(atp[(g, t[0], u)], c[index[(g, (u,))]]) for u in range(n)]
        elif kind == "fwl":
            items = [tuple(c[index[(g, t[:j] + (u,) + t[j + 1:])]] for j in range(k))
                     for u in range(n)]
        else:
            items = [(j, c[index[(g, t[:j] + (u,) + t[j + 1:])]]) for j in range(k)
                     for u in range(n)]
        items = tuple(sorted(items))
        return (c[i], len(items), items)

    return _iterate(colors0, signature, rounds)
