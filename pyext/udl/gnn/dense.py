"""Dense k-tuple tensors for higher-order GNNs: batching, masks and atomic types."""

from __future__ import annotations

import itertools
from typing import Any

import torch

__all__ = ["DenseGraphs", "nx_to_edge_index", "to_dense_graphs", "tuple_features", "tuple_mask", "atp_pairs",
           "atp_channels", "tuple_bytes"]


class DenseGraphs:
    """A padded batch: ``adj [B, N, N]``, ``x [B, N, d]``, ``mask [B, N]`` (True = real vertex)."""

    def __init__(self, adj: torch.Tensor, x: torch.Tensor, mask: torch.Tensor) -> None:
        self.adj, self.x, self.mask = adj, x, mask

    @property
    def num_graphs(self) -> int:
        return self.adj.shape[0]

    @property
    def max_nodes(self) -> int:
        return self.adj.shape[1]

    @property
    def num_nodes(self) -> torch.Tensor:
        return self.mask.sum(1)


def nx_to_edge_index(g: Any) -> tuple[torch.Tensor, int]:
    """``(edge_index [2, m], n)`` of a networkx graph in ``list(g.nodes)`` order; undirected edges
    appear in both directions (PyG convention)."""
    index = {v: i for i, v in enumerate(g.nodes())}
    pairs = [(index[u], index[v]) for u, v in g.edges()]
    ei = torch.tensor(pairs, dtype=torch.long).reshape(-1, 2).t()
    if not g.is_directed():
        loops = ei[0] == ei[1]
        ei = torch.cat([ei, ei[:, ~loops].flip(0)], dim=1)
    return ei.contiguous(), len(index)


def _one_graph(adj: torch.Tensor, x: torch.Tensor | None, dtype: torch.dtype) -> DenseGraphs:
    n = adj.shape[-1]
    if x is None:
        x = torch.ones(n, 1, dtype=dtype, device=adj.device)
    if x.dim() == 1:
        x = x[:, None]
    if x.shape[0] != n:
        raise ValueError(f"x: expected {n} rows (one per vertex), got shape {tuple(x.shape)}")
    mask = torch.ones(1, n, dtype=torch.bool, device=adj.device)
    return DenseGraphs(adj[None].to(dtype), x[None].to(dtype), mask)


def to_dense_graphs(data: Any, dtype: torch.dtype | None = None) -> DenseGraphs:
    """Pad a PyG ``Data``/``Batch``, a networkx graph, a list of networkx graphs, or a dense
    ``(adj [n,n] or [B,N,N], x, mask)`` tuple into :class:`DenseGraphs`. Graphs without ``x`` get
    the constant feature 1."""
    if isinstance(data, DenseGraphs):
        return data
    if isinstance(data, tuple):
        adj = data[0]
        x = data[1] if len(data) > 1 else None
        dtype = dtype or (x.dtype if x is not None and x.is_floating_point() else torch.get_default_dtype())
        if adj.dim() == 2:
            return _one_graph(adj, x, dtype)
        if adj.dim() != 3 or adj.shape[1] != adj.shape[2]:
            raise ValueError(f"adj: expected [n, n] or [B, N, N], got shape {tuple(adj.shape)}")
        b, n = adj.shape[:2]
        if x is None:
            x = torch.ones(b, n, 1, dtype=dtype, device=adj.device)
        mask = data[2] if len(data) > 2 else torch.ones(b, n, dtype=torch.bool, device=adj.device)
        if x.shape[:2] != (b, n) or mask.shape != (b, n):
            raise ValueError(f"x/mask: expected leading shape ({b}, {n}), got {tuple(x.shape)} / "
                             f"{tuple(mask.shape)}")
        return DenseGraphs(adj.to(dtype), x.to(dtype), mask.bool())
    if isinstance(data, list):
        if not data:
            raise ValueError("data: empty list of graphs")
        from torch_geometric.data import Batch, Data

        datas = []
        for g in data:
            if hasattr(g, "edge_index"):
                x = getattr(g, "x", None)
                d = Data(x=torch.ones(g.num_nodes, 1) if x is None else x, edge_index=g.edge_index,
                         num_nodes=g.num_nodes)
            else:
                ei, n = nx_to_edge_index(g)
                d = Data(x=torch.ones(n, 1), edge_index=ei, num_nodes=n)
            datas.append(d)
        return to_dense_graphs(Batch.from_data_list(datas), dtype)
    if hasattr(data, "nodes") and hasattr(data, "edges") and not hasattr(data, "edge_index"):
        from udl.tl.evaluate import dense_adjacency

        dtype = dtype or torch.get_default_dtype()
        return _one_graph(dense_adjacency(data, dtype), None, dtype)
    if hasattr(data, "edge_index"):
        from torch_geometric.utils import to_dense_adj, to_dense_batch

        n = int(data.num_nodes)
        x = getattr(data, "x", None)
        if x is None:
            x = torch.ones(n, 1, device=data.edge_index.device)
        if x.dim() == 1:
            x = x[:, None]
        dtype = dtype or (x.dtype if x.is_floating_point() else torch.get_default_dtype())
        batch = getattr(data, "batch", None)
        if batch is None:
            batch = torch.zeros(n, dtype=torch.long, device=x.device)
        xd, mask = to_dense_batch(x.to(dtype), batch)
        adj = to_dense_adj(data.edge_index, batch, max_num_nodes=xd.shape[1],
                           batch_size=xd.shape[0]).to(dtype)
        return DenseGraphs(adj, xd, mask)
    raise TypeError("data: expected a PyG Data/Batch, networkx graph(s) or (adj, x[, mask]), got "
                    f"{type(data).__name__}")


def atp_pairs(k: int) -> tuple[list[tuple[int, int]], list[tuple[int, int]]]:
    """Position pairs of the atomic type of a k-tuple: equalities (i<j) and ordered edges (i≠j)."""
    eqs = list(itertools.combinations(range(k), 2))
    edges = [(i, j) for i in range(k) for j in range(k) if i != j]
    return eqs, edges


def atp_channels(k: int) -> int:
    eqs, edges = atp_pairs(k)
    return len(eqs) + len(edges)


def _expand_pos(t: torch.Tensor, positions: tuple[int, ...], k: int) -> torch.Tensor:
    """``t [B, N, ..., N (len(positions)), C]`` placed on tuple positions of a ``[B, N^k, C]`` grid."""
    b = t.shape[0]
    n = t.shape[1] if t.dim() > 2 else 1
    shape = [b] + [n if p in positions else 1 for p in range(k)] + [t.shape[-1]]
    # positions must be increasing to use a plain reshape
    return t.reshape(shape)


def tuple_atp(adj: torch.Tensor, k: int) -> torch.Tensor:
    """Atomic type of every k-tuple: ``[B, N^k, atp_channels(k)]`` (eq(x_i,x_j) for i<j, then
    E(x_i,x_j) for i≠j, in lexicographic order)."""
    b, n = adj.shape[:2]
    eqs, edges = atp_pairs(k)
    eye = torch.eye(n, dtype=adj.dtype, device=adj.device).expand(b, n, n)
    full = [b] + [n] * k
    chans = []
    for i, j in eqs:
        chans.append(_expand_pos(eye[..., None], (i, j), k).expand(*full, 1))
    for i, j in edges:
        a = adj if i < j else adj.transpose(1, 2)
        chans.append(_expand_pos(a[..., None], (min(i, j), max(i, j)), k).expand(*full, 1))
    if not chans:
        return adj.new_zeros(*full, 0)
    return torch.cat(chans, dim=-1)


def tuple_features(graphs: DenseGraphs, k: int) -> torch.Tensor:
    """Initial k-tuple features ``[B, N^k, k*d + atp_channels(k)]``: the vertex features of each
    position, then the atomic type; zero on tuples touching padding."""
    if k not in (1, 2, 3):
        raise ValueError(f"k: expected 1, 2 or 3, got {k}")
    b, n, d = graphs.x.shape
    full = [b] + [n] * k
    parts = [_expand_pos(graphs.x, (i,), k).expand(*full, d) for i in range(k)]
    parts.append(tuple_atp(graphs.adj, k))
    return torch.cat(parts, dim=-1) * tuple_mask(graphs.mask, k)[..., None].to(graphs.x.dtype)


def tuple_mask(mask: torch.Tensor, k: int) -> torch.Tensor:
    """``[B, N^k]`` True where every position is a real vertex."""
    b, n = mask.shape
    out = mask.reshape(b, n, *([1] * (k - 1)))
    for p in range(1, k):
        out = out & mask.reshape(b, *([1] * p), n, *([1] * (k - 1 - p)))
    return out


def tuple_bytes(num_graphs: int, max_nodes: int, k: int, channels: int, itemsize: int) -> int:
    """Bytes of one ``[B, N^k, channels]`` tensor."""
    return int(num_graphs) * int(max_nodes) ** k * int(channels) * int(itemsize)
