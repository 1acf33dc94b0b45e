"""Input normalisation for :mod:`udl.wl`: graphs of any supported kind -> one disjoint union.

Supported graphs: a PyG ``Data`` (``edge_index``, ``num_nodes``, optional ``x`` / ``edge_attr`` used
as labels), a PyG ``Batch`` (taken as a batch of its graphs), a networkx ``Graph`` / ``DiGraph`` /
``MultiGraph`` / ``MultiDiGraph`` (nodes in ``G.nodes`` order) and a tuple
``(edge_index, num_nodes)``. Labels become canonical integer ids shared by the whole call.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch
from torch import Tensor

LabelSpec = Any  # None (auto), False (off), a tensor / array / sequence, or a networkx attribute name


@dataclasses.dataclass
class Union:
    """A batch of graphs as one disjoint union (node ids shifted by ``node_ptr``)."""

    node_ptr: Tensor  # LongTensor[B + 1]
    edge_index: Tensor  # LongTensor[2, E], global node ids; undirected graphs: one entry per edge
    node_labels: Tensor | None  # LongTensor[N] canonical ids, or None (all equal)
    edge_labels: Tensor | None  # LongTensor[E] canonical ids, or None (all equal)
    directed: bool
    # Undirected colour refinement only: 0 edge_index lists both directions, 1 one entry per edge,
    # 2 unknown (the kernel checks whether the arc list is symmetric).
    arc_mode: int = 1

    @property
    def num_graphs(self) -> int:
        return self.node_ptr.numel() - 1

    @property
    def num_nodes(self) -> int:
        return int(self.node_ptr[-1])

    @property
    def sizes(self) -> Tensor:
        return self.node_ptr[1:] - self.node_ptr[:-1]

    def node_graph(self) -> Tensor:
        """LongTensor[N]: the graph of every node."""
        return torch.repeat_interleave(torch.arange(self.num_graphs), self.sizes)


@dataclasses.dataclass
class _Raw:
    n: int
    edge_index: Tensor  # LongTensor[2, E] local ids
    node_labels: Any  # None | Tensor[n, d] | list of hashables
    edge_labels: Any
    directed: bool | None
    pre_symmetric: bool = False  # PyG convention: undirected graph stored with both directions


def _is_pyg(obj: Any) -> bool:
    return hasattr(obj, "edge_index") and hasattr(obj, "num_nodes") and not isinstance(obj, tuple)


def _is_nx(obj: Any) -> bool:
    return hasattr(obj, "adj") and hasattr(obj, "is_directed") and hasattr(obj, "nodes")


def _is_pyg_batch(obj: Any) -> bool:
    return _is_pyg(obj) and hasattr(obj, "ptr") and getattr(obj, "ptr", None) is not None \
        and hasattr(obj, "batch")


def _check_edge_index(ei: Any, n: int, what: str, ranges: bool = True) -> Tensor:
    if not isinstance(ei, Tensor):
        ei = torch.as_tensor(np.asarray(ei))
    if ei.is_floating_point() or ei.is_complex() or ei.dtype == torch.bool:
        raise ValueError(f"{what}: edge_index must be an integer tensor, got dtype {ei.dtype}")
    if ei.dim() != 2 or ei.shape[0] != 2:
        if ei.numel() == 0:
            return torch.empty(2, 0, dtype=torch.long)
        raise ValueError(f"{what}: edge_index must have shape [2, E], got {tuple(ei.shape)}")
    ei = ei.to(device="cpu", dtype=torch.long)
    if ranges and ei.numel() > 0:
        lo_t, hi_t = torch.aminmax(ei)  # one pass
        lo, hi = int(lo_t), int(hi_t)
        if lo < 0:
            raise ValueError(f"{what}: edge_index has a negative node id ({lo})")
        if hi >= n:
            raise ValueError(f"{what}: edge_index has node id {hi} but num_nodes is {n}")
    return ei


def _labels_tensor(lab: Any, count: int, what: str, name: str) -> Tensor | list:
    """Labels as Tensor[count, d] (integer or float64), or a list of hashables for other values."""
    if isinstance(lab, Tensor) or isinstance(lab, np.ndarray):
        t = torch.as_tensor(lab).detach().to("cpu")
    else:
        vals = list(lab)
        if all(isinstance(v, (bool, int, np.integer)) for v in vals):
            t = torch.tensor([int(v) for v in vals], dtype=torch.long)
        elif all(isinstance(v, (bool, int, float, np.integer, np.floating)) for v in vals):
            t = torch.tensor([float(v) for v in vals], dtype=torch.float64)
        else:
            if len(vals) != count:
                raise ValueError(f"{what}: {name} has {len(vals)} entries, expected {count}")
            return vals
    if t.dim() == 0:
        raise ValueError(f"{what}: {name} must have one entry per element, got a scalar")
    if t.dim() == 1:
        t = t.reshape(-1, 1)
    elif t.dim() > 2:
        t = t.reshape(t.shape[0], -1)
    if t.shape[0] != count:
        raise ValueError(f"{what}: {name} has {t.shape[0]} entries, expected {count}")
    if t.is_complex():
        raise ValueError(f"{what}: {name} must be real, got {t.dtype}")
    if t.is_floating_point():
        t = t.to(torch.float64)
        if torch.isnan(t).any():
            raise ValueError(f"{what}: {name} contains NaN")
        t = t + 0.0  # -0.0 -> 0.0
    else:
        t = t.to(torch.long)
    return t


def _from_nx(G: Any, node_labels: LabelSpec, edge_labels: LabelSpec, what: str) -> _Raw:
    nodes = list(G.nodes())
    index = {v: i for i, v in enumerate(nodes)}
    n = len(nodes)
    multi = G.is_multigraph()
    if multi:
        edges = list(G.edges(keys=True, data=True))
        uv = [(index[u], index[v]) for u, v, _, _ in edges]
        data = [d for _, _, _, d in edges]
    else:
        edges = list(G.edges(data=True))
        uv = [(index[u], index[v]) for u, v, _ in edges]
        data = [d for _, _, d in edges]
    ei = torch.tensor(uv, dtype=torch.long).reshape(-1, 2).t().contiguous()
    nl: Any = None
    if isinstance(node_labels, str):
        missing = [v for v in nodes if node_labels not in G.nodes[v]]
        if missing:
            raise ValueError(f"{what}: node {missing[0]!r} has no attribute {node_labels!r}")
        nl = _labels_tensor([G.nodes[v][node_labels] for v in nodes], n, what, "node_labels")
    elif node_labels is not None and node_labels is not False:
        nl = _labels_tensor(node_labels, n, what, "node_labels")
    el: Any = None
    if isinstance(edge_labels, str):
        for (u, v), d in zip(uv, data):
            if edge_labels not in d:
                raise ValueError(f"{what}: edge ({nodes[u]!r}, {nodes[v]!r}) has no attribute "
                                 f"{edge_labels!r}")
        el = _labels_tensor([d[edge_labels] for d in data], len(uv), what, "edge_labels")
    elif edge_labels is not None and edge_labels is not False:
        el = _labels_tensor(edge_labels, len(uv), what, "edge_labels")
    return _Raw(n, ei, nl, el, bool(G.is_directed()))


def _from_pyg(data: Any, node_labels: LabelSpec, edge_labels: LabelSpec, what: str) -> _Raw:
    n = int(data.num_nodes or 0)
    ei = _check_edge_index(data.edge_index, n, what) if data.edge_index is not None \
        else torch.empty(2, 0, dtype=torch.long)
    if node_labels is None:
        node_labels = getattr(data, "x", None)
    if edge_labels is None:
        edge_labels = getattr(data, "edge_attr", None)
    nl = None if node_labels is None or node_labels is False else \
        _labels_tensor(node_labels, n, what, "node_labels")
    el = None if edge_labels is None or edge_labels is False else \
        _labels_tensor(edge_labels, ei.shape[1], what, "edge_labels")
    return _Raw(n, ei, nl, el, None, pre_symmetric=True)


def _from_tuple(g: tuple, node_labels: LabelSpec, edge_labels: LabelSpec, what: str) -> _Raw:
    if len(g) != 2:
        raise ValueError(f"{what}: a tuple graph must be (edge_index, num_nodes)")
    ei, n = g
    if isinstance(n, Tensor):
        n = int(n)
    if not isinstance(n, (int, np.integer)) or isinstance(n, bool) or n < 0:
        raise ValueError(f"{what}: num_nodes must be a non-negative int, got {n!r}")
    n = int(n)
    ei = _check_edge_index(ei, n, what)
    nl = None if node_labels is None or node_labels is False else \
        _labels_tensor(node_labels, n, what, "node_labels")
    el = None if edge_labels is None or edge_labels is False else \
        _labels_tensor(edge_labels, ei.shape[1], what, "edge_labels")
    return _Raw(n, ei, nl, el, None, pre_symmetric=True)


def _to_raw(g: Any, node_labels: LabelSpec, edge_labels: LabelSpec, what: str) -> _Raw:
    if isinstance(g, tuple):
        return _from_tuple(g, node_labels, edge_labels, what)
    if _is_nx(g):
        return _from_nx(g, node_labels, edge_labels, what)
    if _is_pyg(g):
        return _from_pyg(g, node_labels, edge_labels, what)
    raise ValueError(f"{what}: unsupported graph type {type(g).__name__}; expected a PyG Data, a "
                     "networkx graph or a tuple (edge_index, num_nodes)")


def _canonical_ids(parts: list[Any], what: str) -> Tensor | None:
    """Canonical ids (ranks of distinct values in sorted order) of labels given per graph."""
    if all(p is None for p in parts):
        return None
    if any(p is None for p in parts):
        raise ValueError(f"{what} are given for some graphs but not for others")
    if all(isinstance(p, Tensor) for p in parts):
        dims = {p.shape[1] for p in parts}
        if len(dims) > 1:
            raise ValueError(f"{what} have different widths across graphs: {sorted(dims)}")
        floating = any(p.is_floating_point() for p in parts)
        cat = torch.cat([p.to(torch.float64) if floating else p for p in parts], 0)
        if cat.shape[0] == 0:
            return torch.empty(0, dtype=torch.long)
        if cat.shape[1] == 1:
            _, inv = torch.unique(cat[:, 0], sorted=True, return_inverse=True)
        else:
            _, inv = torch.unique(cat, dim=0, sorted=True, return_inverse=True)
        return inv.to(torch.long)
    # General hashable values (e.g. strings): ranks in a deterministic order.
    values: list[Any] = []
    for p in parts:
        values.extend(p.tolist() if isinstance(p, Tensor) else p)
    values = [tuple(v) if isinstance(v, list) else v for v in values]
    order = sorted(set(values), key=lambda v: (type(v).__name__, repr(v)))
    rank = {v: i for i, v in enumerate(order)}
    return torch.tensor([rank[v] for v in values], dtype=torch.long)


def _dedup_symmetric(ei: Tensor, el: Tensor | None, node_ptr: Tensor, keep: Tensor) -> Tensor:
    """Boolean mask over edges: for every graph whose arc multiset (with labels) equals its
    reverse, keep only arcs u <= v (one entry per undirected edge); other graphs keep all arcs.
    ``keep`` marks the graphs this applies to."""
    E = ei.shape[1]
    mask = torch.ones(E, dtype=torch.bool)
    if E == 0:
        return mask
    N = int(node_ptr[-1])
    u, v = ei[0], ei[1]
    lab = el if el is not None else torch.zeros(E, dtype=torch.long)
    L = int(lab.max()) + 1 if E else 1
    if N * N * L < 2**62:
        fwd = torch.sort((u * N + v) * L + lab).values
        rev = torch.sort((v * N + u) * L + lab).values
        bad = (fwd != rev).nonzero().flatten()
        bad_nodes = fwd[bad] // L // N
    else:  # pragma: no cover - only for astronomically large label ranges
        f = np.lexsort((lab.numpy(), v.numpy(), u.numpy()))
        r = np.lexsort((lab.numpy(), u.numpy(), v.numpy()))
        fa = np.stack([u.numpy()[f], v.numpy()[f], lab.numpy()[f]])
        ra = np.stack([v.numpy()[r], u.numpy()[r], lab.numpy()[r]])
        badn = np.nonzero((fa != ra).any(0))[0]
        bad_nodes = torch.as_tensor(fa[0, badn])
    graph_of_node = torch.repeat_interleave(torch.arange(node_ptr.numel() - 1),
                                            node_ptr[1:] - node_ptr[:-1])
    symmetric = keep.clone()
    if bad_nodes.numel():
        symmetric[graph_of_node[bad_nodes]] = False
    edge_graph = graph_of_node[u]
    drop = symmetric[edge_graph] & (u > v)
    mask &= ~drop
    return mask


def build_union(graphs: Sequence[Any] | Any, node_labels: LabelSpec = None,
                edge_labels: LabelSpec = None, directed: bool | None = None,
                lazy_symmetry: bool = False) -> Union:
    """Normalise a list of graphs (or a PyG ``Batch``) into one disjoint :class:`Union`.

    ``node_labels`` / ``edge_labels`` apply to every graph: ``None`` uses PyG ``x`` / ``edge_attr``
    when present, ``False`` ignores labels, a string names a networkx attribute, and a sequence
    (one entry per graph) gives explicit labels. ``directed=None`` takes networkx's
    ``is_directed()`` and treats tensor graphs as undirected.

    With ``lazy_symmetry`` (colour refinement), a single tensor graph or a PyG ``Batch`` is not
    de-duplicated here; the kernel decides (``arc_mode=2``), which avoids sorting the edges twice.
    """
    if _is_pyg_batch(graphs):
        return _union_from_batch(graphs, node_labels, edge_labels, directed, lazy_symmetry)
    graphs = list(graphs)
    per_graph_nl = isinstance(node_labels, (list, tuple))
    per_graph_el = isinstance(edge_labels, (list, tuple))
    if per_graph_nl and len(node_labels) != len(graphs):
        raise ValueError(f"node_labels: got {len(node_labels)} entries for {len(graphs)} graphs")
    if per_graph_el and len(edge_labels) != len(graphs):
        raise ValueError(f"edge_labels: got {len(edge_labels)} entries for {len(graphs)} graphs")
    raws = []
    for i, g in enumerate(graphs):
        nl = node_labels[i] if per_graph_nl else node_labels
        el = edge_labels[i] if per_graph_el else edge_labels
        raws.append(_to_raw(g, nl, el, f"graph {i}"))
    return _union_from_raws(raws, directed, lazy_symmetry)


def _union_from_raws(raws: list[_Raw], directed: bool | None, lazy: bool = False) -> Union:
    kinds = {r.directed for r in raws if r.directed is not None}
    if directed is None:
        if len(kinds) > 1:
            raise ValueError("graphs: directed and undirected networkx graphs are mixed; pass "
                             "directed=True or directed=False")
        directed = kinds.pop() if kinds else False
    sizes = torch.tensor([r.n for r in raws], dtype=torch.long)
    node_ptr = torch.zeros(len(raws) + 1, dtype=torch.long)
    node_ptr[1:] = torch.cumsum(sizes, 0)
    offsets = node_ptr[:-1].tolist()
    if len(raws) == 1:
        ei = raws[0].edge_index
    else:
        eis = [r.edge_index + offsets[i] if offsets[i] else r.edge_index
               for i, r in enumerate(raws)]
        ei = torch.cat(eis, 1) if eis else torch.empty(2, 0, dtype=torch.long)
    nl = _canonical_ids([r.node_labels for r in raws], "node_labels")
    el = _canonical_ids([r.edge_labels for r in raws], "edge_labels")
    arc_mode = 1
    if not directed:
        pre = torch.tensor([r.pre_symmetric for r in raws], dtype=torch.bool)
        if lazy and len(raws) == 1 and bool(pre.all()):
            arc_mode = 2
        elif bool(pre.any()):
            mask = _dedup_symmetric(ei, el, node_ptr, pre)
            if not bool(mask.all()):
                ei = ei[:, mask]
                el = el[mask] if el is not None else None
    return Union(node_ptr, ei, nl, el, bool(directed), arc_mode)


def _union_from_batch(batch: Any, node_labels: LabelSpec, edge_labels: LabelSpec,
                      directed: bool | None, lazy: bool = False) -> Union:
    node_ptr = batch.ptr.to("cpu", torch.long)
    n = int(node_ptr[-1])
    # Colour refinement (lazy) checks the ids in its kernel, in the pass that reads them anyway.
    ei = _check_edge_index(batch.edge_index, n, "batch", ranges=not lazy)
    if node_labels is None:
        node_labels = getattr(batch, "x", None)
    if edge_labels is None:
        edge_labels = getattr(batch, "edge_attr", None)
    nl = None if node_labels is None or node_labels is False else \
        _labels_tensor(node_labels, n, "batch", "node_labels")
    el = None if edge_labels is None or edge_labels is False else \
        _labels_tensor(edge_labels, ei.shape[1], "batch", "edge_labels")
    nl = _canonical_ids([nl], "node_labels") if nl is not None else None
    el = _canonical_ids([el], "edge_labels") if el is not None else None
    directed = bool(directed) if directed is not None else False
    if not directed and lazy:
        return Union(node_ptr, ei, nl, el, directed, 2)
    if not directed:
        keep = torch.ones(node_ptr.numel() - 1, dtype=torch.bool)
        mask = _dedup_symmetric(ei, el, node_ptr, keep)
        if not bool(mask.all()):
            ei = ei[:, mask]
            el = el[mask] if el is not None else None
    return Union(node_ptr, ei, nl, el, directed)


def arcs(u: Union) -> tuple[Tensor, Tensor, Tensor, int, int]:
    """Arcs (dst, src, code, num_codes, arc_mode) for ``torch.ops.udl.wl_refine``.

    Undirected: edge {a, b} with label l gives items (l, c(a)) to b and (l, c(b)) to a (a self-loop
    gives one item); the kernel adds the reverse arcs (``arc_mode`` 1, or 2 when it must first
    check whether the list already holds both directions). Directed: a -> b gives the in-item
    (l, c(a)) to b and the out-item (L + l, c(b)) to a, so the in- and out-multisets stay apart.
    """
    a, b = u.edge_index[0], u.edge_index[1]
    E = a.numel()
    if u.edge_labels is None:
        lab = torch.empty(0, dtype=torch.long)
        L = 1
    else:
        lab = u.edge_labels
        L = int(lab.max()) + 1 if E else 1
    if u.directed:
        if lab.numel() == 0:
            lab = torch.zeros(E, dtype=torch.long)
        return torch.cat([b, a]), torch.cat([a, b]), torch.cat([lab, lab + L]), 2 * L, 0
    return b, a, lab, L, u.arc_mode


def pair_types(u: Union) -> tuple[list[Tensor], int]:
    """Per graph, the dense matrix ``A[v, w]``: 0 when there is no arc v -> w, otherwise 1 + the
    canonical rank of the multiset of edge labels on the arcs v -> w (undirected edges give arcs
    both ways). Ranks order multisets by (size, sorted labels) and are shared across the batch.
    The matrices are views of one flat tensor (see :func:`pair_types_flat`)."""
    flat, num = pair_types_flat(u)
    sizes = u.sizes.tolist()
    parts = torch.split(flat, [n * n for n in sizes]) if sizes else []
    return [m.view(n, n) for m, n in zip(parts, sizes)], num


def pair_types_flat(u: Union) -> tuple[Tensor, int]:
    """:func:`pair_types` as one flat ``LongTensor[sum_g n_g^2]`` (graph by graph, row-major) and
    the number of pair types (``1 +`` the number of distinct label multisets)."""
    a, b = u.edge_index[0], u.edge_index[1]
    E = a.numel()
    lab = u.edge_labels if u.edge_labels is not None else torch.zeros(E, dtype=torch.long)
    if not u.directed:
        na = a != b
        a, b, lab = torch.cat([a, b[na]]), torch.cat([b, a[na]]), torch.cat([lab, lab[na]])
    sizes = u.sizes
    sq = sizes * sizes
    pair_off = torch.zeros(sizes.numel() + 1, dtype=torch.long)
    if sizes.numel():
        pair_off[1:] = torch.cumsum(sq, 0)
    flat = torch.zeros(int(pair_off[-1]), dtype=torch.long)
    if a.numel() == 0:
        return flat, 1
    order = torch.from_numpy(np.lexsort((lab.numpy(), b.numpy(), a.numpy())))
    a, b, lab = a[order], b[order], lab[order]
    new = torch.ones(a.numel(), dtype=torch.bool)
    new[1:] = (a[1:] != a[:-1]) | (b[1:] != b[:-1])
    first = new.nonzero().flatten()
    group_len = torch.diff(torch.cat([first, torch.tensor([a.numel()])]))
    if bool((group_len == 1).all()):
        # One arc per ordered pair: the multiset is (label,); ranks by label.
        _, inv = torch.unique(lab, sorted=True, return_inverse=True)
        ids = inv + 1
        num = int(inv.max()) + 2
    else:
        starts = first.tolist() + [a.numel()]
        labs = lab.tolist()
        multisets = [tuple(labs[starts[i]:starts[i + 1]]) for i in range(len(starts) - 1)]
        distinct = sorted(set(multisets), key=lambda t: (len(t), t))
        rank = {t: i + 1 for i, t in enumerate(distinct)}
        ids = torch.tensor([rank[t] for t in multisets], dtype=torch.long)
        num = len(distinct) + 1
    ga, gb = a[first], b[first]
    g = torch.bucketize(ga, u.node_ptr[1:], right=True)  # graph of each arc group
    off = u.node_ptr[g]
    flat[pair_off[g] + (ga - off) * sizes[g] + (gb - off)] = ids
    return flat, num


def tuple_count(n: int, k: int) -> int:
    return int(math.pow(n, k)) if n else 0
