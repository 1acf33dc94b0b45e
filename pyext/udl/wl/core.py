"""Exact canonical colour refinement (1-WL) and k-WL (folklore and oblivious).

Conventions (see ``shared/methods/wl_tensor_language.md`` section 0):

* ``"cr"`` (alias ``"1-wl"``): colour refinement. New colour of v = canonical id of (own colour,
  multiset of (edge label, neighbour colour)); directed graphs keep the in- and out-multisets
  apart. Multi-edges count with their multiplicity; a self-loop puts v into its own multiset.
* ``"k-fwl"`` (k = 2, 3): folklore k-WL (CFI's k-dim WL, Geerts-Reutter's ``vwl_k``): new colour of
  a k-tuple t = id of (own colour, multiset over u of (c(t[1<-u]), ..., c(t[k<-u]))).
  2-FWL is the "3-WL" of the PPGN/BREC papers.
* ``"k-owl"`` (k = 2, 3): oblivious k-WL (Morris et al.): (own colour, the k multisets
  {c(t[j<-u]) : u}). k-OWL is as strong as (k-1)-FWL.
* ``"1-fwl"``: ``vwl_1`` = colour refinement with a global multiset
  {(atomic type of (v, u), c(u)) : all u}.
* Initial colour of a tuple: its atomic type (node labels, equality pattern, and the multisets of
  edge labels on the arcs between positions, self-loops included).

Colour ids are canonical: within one call, equal signatures get equal ids in every graph, ids are
the ranks of the signatures in lexicographic order (so they are deterministic and do not depend on
thread counts), and the computation is exact (sorting and exact comparison; hashing is only used to
group candidates and every group is verified).
"""

from __future__ import annotations

import dataclasses
import re
import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from udl.wl import _graphs

__all__ = ["WLResult", "refine", "refine_batch", "equivalent", "equivalent_pairs",
           "equivalent_vertices",
           "partition", "parse_method", "DEFAULT_MEMORY_LIMIT"]

DEFAULT_MEMORY_LIMIT = 4 * 2**30  # bytes allowed for one k-WL call (raise with memory_limit=)


def parse_method(method: str) -> tuple[str, int]:
    """``"cr"``/``"1-wl"`` -> ("cr", 1); ``"2-fwl"`` -> ("fwl", 2); ``"3-owl"`` -> ("owl", 3)."""
    if not isinstance(method, str):
        raise ValueError(f"method must be a string such as 'cr', '2-fwl' or '3-owl', got {method!r}")
    m = method.strip().lower()
    if m in ("cr", "1-wl", "wl", "1wl", "color_refinement", "colour_refinement"):
        return "cr", 1
    match = re.fullmatch(r"(\d+)-?(fwl|owl|wl)", m)
    if not match:
        raise ValueError(f"method: unknown {method!r}; expected 'cr', '1-fwl', '2-fwl', '3-fwl', "
                         "'2-owl' or '3-owl'")
    k, kind = int(match.group(1)), match.group(2)
    if kind == "wl":
        if k == 1:
            return "cr", 1
        raise ValueError(f"method: {method!r} is ambiguous; say '{k}-fwl' (folklore) or "
                         f"'{k}-owl' (oblivious)")
    if kind == "fwl" and k not in (1, 2, 3):
        raise ValueError(f"method: k must be 1, 2 or 3 for k-FWL, got k={k}")
    if kind == "owl" and k not in (2, 3):
        raise ValueError(f"method: k must be 2 or 3 for k-OWL, got k={k} "
                         "(1-OWL is not defined; use 'cr')")
    return kind, k


@dataclasses.dataclass
class WLResult:
    """Result of :func:`refine` / :func:`refine_batch`.

    Attributes:
        colors: canonical colour ids. :func:`refine` on one graph: ``LongTensor[n]`` (cr) or
            ``LongTensor[n, ..., n]`` (k-WL, k dims). :func:`refine_batch`: flat
            ``LongTensor[sum of elements]``; use :meth:`colors_of`.
        rounds: rounds applied (the requested number, or the first stable round when
            ``rounds=None``).
        stable: whether the returned colouring was verified to be stable (a further round would
            split no class).
        num_colors: distinct colours of the returned colouring (over the whole call).
        graph_colors: sparse COO ``LongTensor[B, num_colors]``: the colour histogram of every graph.
        history: if asked, the colourings after rounds 0..``rounds`` (same layout as ``colors``).
        ptr: ``LongTensor[B + 1]`` offsets of each graph's elements (nodes or tuples) in the flat
            colours.
        num_nodes: ``LongTensor[B]``.
        colors_per_round: number of distinct colours after each round 0..``rounds``.
    """

    method: str
    k: int
    colors: Tensor
    rounds: int
    stable: bool
    num_colors: int
    graph_colors: Tensor
    ptr: Tensor
    num_nodes: Tensor
    colors_per_round: list[int]
    history: list[Tensor] | None = None
    _flat: Tensor | None = dataclasses.field(default=None, repr=False)

    @property
    def num_graphs(self) -> int:
        return self.num_nodes.numel()

    def flat_colors(self) -> Tensor:
        """LongTensor[sum of elements]: colours of all graphs, concatenated."""
        return self._flat if self._flat is not None else self.colors.reshape(-1)

    def colors_of(self, i: int) -> Tensor:
        """Colours of graph ``i``: ``LongTensor[n]`` (cr / 1-fwl) or ``LongTensor[n]*k`` tuples."""
        lo, hi = int(self.ptr[i]), int(self.ptr[i + 1])
        n = int(self.num_nodes[i])
        return self.flat_colors()[lo:hi].reshape((n,) * self.k)

    def node_colors_of(self, i: int) -> Tensor:
        """Vertex colours of graph ``i`` (for k-WL: the colours of the diagonal tuples (v,...,v))."""
        c = self.colors_of(i)
        if self.k == 1:
            return c
        n = c.shape[0]
        idx = torch.arange(n)
        return c[(idx,) * self.k]

    def histogram(self, i: int) -> dict[int, int]:
        """Colour histogram of graph ``i`` as ``{colour id: count}``."""
        gc = self.graph_colors
        idx, val = gc.indices(), gc.values()
        sel = idx[0] == i
        return dict(zip(idx[1, sel].tolist(), val[sel].tolist()))

    def graph_classes(self) -> Tensor:
        """LongTensor[B]: equal ids exactly for graphs with equal colour histograms (ids are the
        ranks of the histograms in sorted order)."""
        gc = self.graph_colors
        idx, val = gc.indices(), gc.values()
        B = self.num_graphs
        rows: list[list[tuple[int, int]]] = [[] for _ in range(B)]
        for g, c, v in zip(idx[0].tolist(), idx[1].tolist(), val.tolist()):
            rows[g].append((c, v))
        keys = [tuple(r) for r in rows]
        order = {key: j for j, key in enumerate(sorted(set(keys)))}
        return torch.tensor([order[key] for key in keys], dtype=torch.long)

    def same_histogram(self, i: int, j: int) -> bool:
        """Whether graphs ``i`` and ``j`` have equal colour histograms (not distinguished)."""
        return self.histogram(i) == self.histogram(j)


def _histograms(flat: Tensor, ptr: Tensor, C: int) -> Tensor:
    B = ptr.numel() - 1
    counts = ptr[1:] - ptr[:-1]
    graph = torch.repeat_interleave(torch.arange(B), counts)
    key = graph * max(C, 1) + flat
    uniq, cnt = torch.unique(key, sorted=True, return_counts=True)
    indices = torch.stack([uniq // max(C, 1), uniq % max(C, 1)])
    return sparse_coo(indices, cnt, (B, max(C, 0)))


def sparse_coo(indices: Tensor, values: Tensor, shape: tuple[int, ...]) -> Tensor:
    """A coalesced sparse COO tensor from sorted, unique ``indices`` (no invariant re-check)."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Sparse invariant checks")
        return torch.sparse_coo_tensor(indices, values, shape, is_coalesced=True,
                                       check_invariants=False)


def _check_rounds(rounds: int | None) -> int:
    if rounds is None:
        return -1
    if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
        raise ValueError(f"rounds must be None (until stable) or an int >= 0, got {rounds!r}")
    return rounds


def _finish(method: str, k: int, hist: Tensor, counts: Tensor, requested: int,
            ptr: Tensor, num_nodes: Tensor, return_history: bool,
            native_histogram: bool = False,
            histogram: tuple[Tensor, Tensor] | None = None) -> WLResult:
    R = counts.numel() - 1
    counts_l = counts.tolist()
    if requested < 0:
        rounds, stable = R, True
    else:
        rounds = requested
        stable = R < requested
        # A fixed number of rounds that stabilised early repeats the stable colouring.
        counts_l = counts_l + [counts_l[-1]] * (requested - R)
    flat = hist[-1] if hist.shape[0] == 1 and not return_history else hist[-1].clone()
    C = int(counts_l[-1]) if flat.numel() else 0
    history = None
    if return_history:
        rows = list(hist.unbind(0))
        if requested >= 0:
            rows += [rows[-1]] * (requested - R)
        history = [r.clone() for r in rows]
    if histogram is not None:  # computed by the kernel with the colours
        graph_colors = sparse_coo(histogram[0], histogram[1], (ptr.numel() - 1, max(C, 0)))
    elif native_histogram:
        from udl.ops.wl import wl_histogram

        idx, cnt = wl_histogram(flat, ptr, C)
        graph_colors = sparse_coo(idx, cnt, (ptr.numel() - 1, max(C, 0)))
    else:
        graph_colors = _histograms(flat, ptr, C)
    return WLResult(method=method, k=k, colors=flat, rounds=rounds, stable=stable, num_colors=C,
                    graph_colors=graph_colors, ptr=ptr, num_nodes=num_nodes,
                    colors_per_round=[int(c) for c in counts_l], history=history, _flat=flat)


def _move(t: Tensor, device: torch.device) -> Tensor:
    return t if t.device == device else t.to(device)


def _run_cr(u: _graphs.Union, rounds: int, return_history: bool, device: torch.device,
            method_name: str) -> WLResult:
    from udl.ops.wl import wl_refine, wl_refine_histogram

    N = u.num_nodes
    dst, src, code, K, arc_mode = _graphs.arcs(u)
    colors = u.node_labels if u.node_labels is not None else torch.zeros(N, dtype=torch.long)
    # arc_mode 2 (auto) decides per graph whether the arc list holds both directions.
    gptr = _move(u.node_ptr, device) if arc_mode == 2 and u.num_graphs > 1 else None
    histogram = None
    try:
        if device.type == "cpu" and not return_history:  # colours and histograms in one call
            hist, counts, idx, cnt = wl_refine_histogram(dst, src, code, colors, K, arc_mode,
                                                         rounds, u.node_ptr)
            histogram = (idx, cnt)
        else:
            hist, counts = wl_refine(_move(dst, device), _move(src, device),
                                     _move(code, device), _move(colors, device), K, arc_mode,
                                     rounds, return_history, gptr)
    except RuntimeError as err:  # node ids the kernel found out of range: the user's edge_index
        if "must lie in [0, N=" in str(err) and ("dst" in str(err) or "src" in str(err)):
            raise ValueError(f"edge_index has a node id outside [0, num_nodes={N}): "
                             f"{str(err).splitlines()[0]}") from err
        raise
    return _finish(method_name, 1, hist.cpu(), counts.cpu(), rounds, u.node_ptr, u.sizes,
                   return_history, native_histogram=True, histogram=histogram)


def _rank_rows(key: Tensor) -> Tensor:
    """Canonical ids of the rows of a non-negative integer matrix: ranks of the distinct rows in
    lexicographic order (packed into one int64 per row when the ranges allow)."""
    if key.shape[0] == 0:
        return torch.empty(0, dtype=torch.long)
    span = (key.max(0).values + 1).tolist()
    total = 1
    for r in span:
        total *= r
    if total < 2**62:
        packed = torch.zeros(key.shape[0], dtype=torch.long)
        for j, r in enumerate(span):
            packed = packed * r + key[:, j]
        _, inv = torch.unique(packed, sorted=True, return_inverse=True)
    else:
        _, inv = torch.unique(key, dim=0, sorted=True, return_inverse=True)
    return inv.to(torch.long)


def _grid(n: int, k: int) -> list[Tensor]:
    idx = torch.arange(n)
    return [t.reshape(-1) for t in torch.meshgrid(*([idx] * k), indexing="ij")]


def _estimate_bytes(sizes: list[int], k: int, kind: str, return_history: bool) -> int:
    tuples = sum(n**k for n in sizes)
    items = sum(n**k * (k * n if kind == "owl" else n) for n in sizes)
    item_bytes = 16 if (kind == "fwl" and k == 3 and tuples**3 >= 2**64) else 8
    per_tuple = 8 * 6 + 24  # colours, next, ptr, start flags, rank, keys
    return items * item_bytes + tuples * per_tuple + (tuples * 8 * 8 if return_history else 0)


def _tuple_inputs(u: _graphs.Union, kind: str, k: int, return_history: bool,
                  memory_limit: int, method_name: str) -> tuple[Tensor, Tensor, Tensor, int, Tensor]:
    """Initial colours (atomic types), pair codes, op mode and tuple offsets for k-WL."""
    sizes = u.sizes.tolist()
    need = _estimate_bytes(sizes, k, kind, return_history)
    if need > memory_limit:
        raise MemoryError(
            f"{method_name} on graphs with up to {max(sizes)} nodes needs about "
            f"{need / 2**30:.2f} GiB ({need} bytes: {sum(n**k for n in sizes)} {k}-tuples), above "
            f"memory_limit={memory_limit} bytes; pass a larger memory_limit= to allow it")
    mats, _ = _graphs.pair_types(u)
    N = u.num_nodes
    nc = u.node_labels if u.node_labels is not None else torch.zeros(N, dtype=torch.long)
    ptr = u.node_ptr.tolist()
    keys = []
    pair_keys = []
    for g, n in enumerate(sizes):
        A = mats[g]
        c = nc[ptr[g]:ptr[g + 1]]
        pos = _grid(n, k)
        cols = [c[p] for p in pos]
        for i in range(k):
            for j in range(i + 1, k):
                cols.append((pos[i] == pos[j]).long())
        for i in range(k):
            for j in range(k):
                cols.append(A[pos[i], pos[j]])
        keys.append(torch.stack(cols, 1) if cols else torch.empty(0, 0, dtype=torch.long))
        if kind == "fwl" and k == 1:
            v, w = _grid(n, 2)
            pair_keys.append(torch.stack([(v == w).long(), A[v, w], A[w, v]], 1))
    key = torch.cat(keys, 0) if keys else torch.empty(0, 1, dtype=torch.long)
    colors = _rank_rows(key)
    if pair_keys and sum(p.shape[0] for p in pair_keys):
        pair_code = _rank_rows(torch.cat(pair_keys, 0))
    else:
        pair_code = torch.empty(0, dtype=torch.long)
    mode = {"fwl": 0, "owl": 1}[kind] if k > 1 else 2
    tptr = torch.zeros(len(sizes) + 1, dtype=torch.long)
    tptr[1:] = torch.cumsum(torch.tensor([n**k for n in sizes], dtype=torch.long), 0)
    return colors, pair_code, mode, k, tptr


def _run_tuples(u: _graphs.Union, kind: str, k: int, rounds: int, return_history: bool,
                device: torch.device, memory_limit: int, method_name: str) -> WLResult:
    from udl.ops.wl import wl_refine_tuples

    colors, pair_code, mode, k, tptr = _tuple_inputs(u, kind, k, return_history, memory_limit,
                                                     method_name)
    hist, counts = wl_refine_tuples(_move(colors, device), u.sizes, _move(pair_code, device), k,
                                    mode, rounds, return_history)
    return _finish(method_name, k, hist.cpu(), counts.cpu(), rounds, tptr, u.sizes,
                   return_history)


def _stepper(u: _graphs.Union, kind: str, k: int, device: torch.device, memory_limit: int,
             method_name: str):
    """(initial colours, element offsets, step) where ``step(colors) -> (next colours, split)``
    runs one refinement round (``split`` is False when no class split: stable)."""
    from udl.ops.wl import wl_refine, wl_refine_tuples

    if kind == "cr":
        dst, src, code, K, arc_mode = _graphs.arcs(u)
        N = u.num_nodes
        c0 = u.node_labels if u.node_labels is not None else torch.zeros(N, dtype=torch.long)
        args = [_move(t, device) for t in (dst, src, code)]

        def step(c: Tensor) -> tuple[Tensor, bool]:
            hist, counts = wl_refine(*args, c, K, arc_mode, 1, False)
            return hist[-1], counts.numel() > 1

        return _move(c0, device), u.node_ptr, step
    colors, pair_code, mode, k, tptr = _tuple_inputs(u, kind, k, False, memory_limit,
                                                     method_name)
    pc = _move(pair_code, device)

    def step_t(c: Tensor) -> tuple[Tensor, bool]:
        hist, counts = wl_refine_tuples(c, u.sizes, pc, k, mode, 1, False)
        return hist[-1], counts.numel() > 1

    return _move(colors, device), tptr, step_t


def refine_batch(graphs: Sequence[Any] | Any, method: str = "cr", rounds: int | None = None,
                 node_labels: Any = None, edge_labels: Any = None,
                 return_history: bool = False, directed: bool | None = None,
                 device: str | torch.device = "cpu",
                 memory_limit: int = DEFAULT_MEMORY_LIMIT) -> WLResult:
    """Refine many graphs in one call with one shared canonical colour space.

    Args:
        graphs: a list of graphs (PyG ``Data``, networkx graphs, ``(edge_index, num_nodes)``
            tuples) or a PyG ``Batch``.
        method: ``"cr"`` (= ``"1-wl"``), ``"1-fwl"``, ``"2-fwl"``, ``"3-fwl"``, ``"2-owl"``,
            ``"3-owl"``.
        rounds: number of refinement rounds, or ``None`` to run until the partition is stable.
        node_labels, edge_labels: ``None`` (PyG ``x`` / ``edge_attr`` when present), ``False``
            (ignore), a networkx attribute name, or a list with one label tensor per graph
            (``[n]`` / ``[n, d]`` node labels, ``[E]`` / ``[E, d]`` edge labels; int or float, no
            NaN).
        return_history: also return the colouring after every round.
        directed: ``None`` = networkx's ``is_directed()``, undirected for tensors. An undirected
            tensor graph may list every edge once or in both directions (PyG convention: a
            symmetric arc list is read as one entry per edge); anything else counts as
            multi-edges.
        device: ``"cpu"`` or ``"cuda"``.
        memory_limit: bytes a k-WL call may use before it is refused with a ``MemoryError``.

    Returns:
        :class:`WLResult` with flat ``colors`` (graph ``i``'s elements at
        ``colors[ptr[i]:ptr[i+1]]``).
    """
    kind, k = parse_method(method)
    r = _check_rounds(rounds)
    dev = torch.device(device)
    u = _graphs.build_union(graphs, node_labels, edge_labels, directed,
                            lazy_symmetry=(kind == "cr"))
    name = "cr" if kind == "cr" else f"{k}-{kind}"
    if kind == "cr":
        return _run_cr(u, r, return_history, dev, name)
    return _run_tuples(u, kind, k, r, return_history, dev, memory_limit, name)


def refine(graph: Any, method: str = "cr", rounds: int | None = None, node_labels: Any = None,
           edge_labels: Any = None, return_history: bool = False, directed: bool | None = None,
           device: str | torch.device = "cpu",
           memory_limit: int = DEFAULT_MEMORY_LIMIT) -> WLResult:
    """Canonical WL colouring of one graph.

    Args:
        graph: a PyG ``Data`` (``edge_index``; ``x`` / ``edge_attr`` are used as labels), a
            networkx graph, or ``(edge_index, num_nodes)``.
        method, rounds, directed, device, memory_limit: see :func:`refine_batch`.
        node_labels: ``LongTensor[n]`` / ``[n, d]`` (or float without NaN), a networkx attribute
            name, ``None`` (PyG ``x``) or ``False``.
        edge_labels: ``[E]`` / ``[E, d]`` labels aligned with ``edge_index`` columns (networkx:
            ``G.edges`` order), a networkx attribute name, ``None`` or ``False``.
        return_history: also return the colouring after each round.

    Returns:
        :class:`WLResult`; ``colors`` is ``LongTensor[n]`` for cr and 1-fwl, ``LongTensor[n]*k``
        for k-WL (colour of tuple ``(v1, ..., vk)`` at ``colors[v1, ..., vk]``); ``history`` (if
        asked) has the same shapes.

    Example:
        >>> import networkx as nx, udl.wl
        >>> res = udl.wl.refine(nx.path_graph(4))
        >>> res.colors.tolist(), res.rounds
        ([0, 1, 1, 0], 1)
    """
    nl = [node_labels] if node_labels is not None and not isinstance(node_labels, (str, bool)) \
        else node_labels
    el = [edge_labels] if edge_labels is not None and not isinstance(edge_labels, (str, bool)) \
        else edge_labels
    res = refine_batch([graph], method, rounds, nl, el, return_history, directed, device,
                       memory_limit)
    shape = (int(res.num_nodes[0]),) * res.k
    res.colors = res.flat_colors().reshape(shape)
    if res.history is not None:
        res.history = [h.reshape(shape) for h in res.history]
    return res


def equivalent(g1: Any, g2: Any, method: str = "cr", rounds: int | None = None,
               node_labels: Any = None, edge_labels: Any = None, directed: bool | None = None,
               device: str | torch.device = "cpu",
               memory_limit: int = DEFAULT_MEMORY_LIMIT) -> bool:
    """Whether ``method`` fails to distinguish the two graphs: equal colour histograms after
    ``rounds`` rounds (``None``: at the stable colouring of the pair, refined jointly).

    Runs round by round and stops as soon as the histograms differ (a distinguished pair rarely
    needs the stable colouring). ``node_labels`` / ``edge_labels``: an attribute name, ``False``,
    ``None``, or a list with one entry per graph; other arguments as in :func:`refine_batch`.
    """
    kind, k = parse_method(method)
    r = _check_rounds(rounds)
    dev = torch.device(device)
    u = _graphs.build_union([g1, g2], node_labels, edge_labels, directed,
                            lazy_symmetry=(kind == "cr"))
    name = "cr" if kind == "cr" else f"{k}-{kind}"
    if kind == "fwl" and k == 2 and r < 0:
        return bool(_pair_equivalent(u, dev, memory_limit, name)[0])
    colors, ptr, step = _stepper(u, kind, k, dev, memory_limit, name)
    p1, p2 = int(ptr[1]), int(ptr[2])
    if p1 != p2 - p1:
        return False
    done = 0
    while True:
        a, b = colors[:p1], colors[p1:p2]
        if not torch.equal(torch.sort(a).values, torch.sort(b).values):
            return False
        if done == r:
            return True
        colors, split = step(colors)
        done += 1
        if not split:
            return True


def _pair_equivalent(u: _graphs.Union, device: torch.device, memory_limit: int,
                     method_name: str, hash_bits: int = 0) -> list[bool]:
    """2-FWL to stability on pairs (graphs 2p, 2p+1 of ``u``): True where not distinguished."""
    from udl.ops.wl import wl_pair_equivalent

    sizes = u.sizes.tolist()
    big = max(sizes, default=0)
    need = _estimate_bytes([big, big], 2, "fwl", False) * min(torch.get_num_threads(),
                                                                max(len(sizes) // 2, 1))
    if need > memory_limit:
        raise MemoryError(
            f"{method_name} on graph pairs with up to {big} nodes needs about {need / 2**30:.2f} "
            f"GiB ({need} bytes), above memory_limit={memory_limit} bytes; pass a larger "
            "memory_limit= to allow it")
    nc = u.node_labels if u.node_labels is not None else torch.zeros(u.num_nodes,
                                                                     dtype=torch.long)
    pt, _ = _graphs.pair_types_flat(u)
    eq = wl_pair_equivalent(_move(nc, device), _move(pt, device), u.sizes, hash_bits)
    return eq.cpu().tolist()


def equivalent_pairs(pairs: Sequence[tuple[Any, Any]], method: str = "2-fwl",
                     node_labels: Any = None, edge_labels: Any = None,
                     directed: bool | None = None, device: str | torch.device = "cpu",
                     memory_limit: int = DEFAULT_MEMORY_LIMIT) -> list[bool]:
    """:func:`equivalent` (stable colouring) for many pairs ``[(g1, g2), ...]`` in one call.

    For ``"2-fwl"`` all pairs go to one native call (pairs processed in parallel; per pair the
    two graphs are refined jointly with an exact early exit as soon as their histograms differ);
    other methods loop over :func:`equivalent`. ``node_labels`` / ``edge_labels``: ``None``,
    ``False`` or an attribute name (applied to every graph). Returns one bool per pair (True: not
    distinguished).
    """
    kind, k = parse_method(method)
    for what, spec in (("node_labels", node_labels), ("edge_labels", edge_labels)):
        if spec is not None and not isinstance(spec, (str, bool)):
            raise ValueError(f"{what}: equivalent_pairs takes None, False or an attribute name, "
                             f"got {type(spec).__name__}")
    pairs = list(pairs)
    for i, p in enumerate(pairs):
        if not isinstance(p, (tuple, list)) or len(p) != 2:
            raise ValueError(f"pairs[{i}] must be a pair (g1, g2), got {type(p).__name__}")
    if not (kind == "fwl" and k == 2):
        return [equivalent(g1, g2, method, None, node_labels, edge_labels, directed, device,
                           memory_limit) for g1, g2 in pairs]
    if not pairs:
        return []
    u = _graphs.build_union([g for p in pairs for g in p], node_labels, edge_labels, directed)
    return _pair_equivalent(u, torch.device(device), memory_limit, "2-fwl")


def equivalent_vertices(g1: Any, v1: int, g2: Any, v2: int, method: str = "cr",
                        rounds: int | None = None, **kwargs: Any) -> bool:
    """Whether vertex ``v1`` of ``g1`` and ``v2`` of ``g2`` get the same colour (for k-WL: the
    diagonal tuples (v,...,v)), refining both graphs in one call. ``v1`` / ``v2`` are positions in
    the node order (networkx: ``list(G.nodes)``)."""
    res = refine_batch([g1, g2], method, rounds, **kwargs)
    n1, n2 = int(res.num_nodes[0]), int(res.num_nodes[1])
    for v, n, name in ((v1, n1, "v1"), (v2, n2, "v2")):
        if not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < n:
            raise ValueError(f"{name} must be a node position in [0, {n}), got {v!r}")
    return int(res.node_colors_of(0)[v1]) == int(res.node_colors_of(1)[v2])


def partition(graph: Any, method: str = "cr", rounds: int | None = None,
              **kwargs: Any) -> list[list[Any]]:
    """The (by default stable) partition as a list of classes, ordered by colour id.

    cr / 1-fwl: classes of node positions; k-WL: classes of k-tuples of node positions. Members of
    a class are in increasing order.
    """
    res = refine(graph, method, rounds, **kwargs)
    flat = res.flat_colors()
    order = torch.argsort(flat * max(flat.numel(), 1) + torch.arange(flat.numel()))
    sorted_c = flat[order]
    bounds = torch.nonzero(sorted_c[1:] != sorted_c[:-1]).flatten() + 1
    groups = torch.tensor_split(order, bounds.tolist()) if flat.numel() else []
    n = int(res.num_nodes[0])
    if res.k == 1:
        return [g.tolist() for g in groups]
    out = []
    for g in groups:
        cls = []
        for t in g.tolist():
            pos = []
            for _ in range(res.k):
                pos.append(t % n)
                t //= n
            cls.append(tuple(reversed(pos)))
        out.append(cls)
    return out
