"""The Weisfeiler-Leman subtree kernel (Shervashidze et al., JMLR 2011) on udl's exact colours."""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor

from udl.wl.core import refine_batch, sparse_coo

__all__ = ["WLHistogram"]


class WLHistogram:
    """WL subtree kernel feature map: for every round r = 0..``rounds``, the number of elements
    (nodes for ``"cr"``, tuples for k-WL) of each colour, all rounds side by side.

    ``fit(graphs)`` fixes the reference set. Columns are the colours that occur in the reference
    graphs (round by round, in canonical order); :meth:`transform` refines the reference graphs
    together with the new ones, so colour ids are shared exactly, and drops colours never seen in
    the reference set (as grakel does). ``K = Φ(G) Φ(H)ᵀ`` equals grakel's
    ``WeisfeilerLehman(n_iter=rounds, base_graph_kernel=VertexHistogram)`` (grakel's n_iter
    counts refinement rounds; round 0 is always included).

    Args:
        rounds: refinement rounds h (features for rounds 0..h).
        method: ``"cr"`` (default) or a k-WL method (``"2-fwl"``, ...).
        normalize: divide the kernel by sqrt(K(G,G) K(H,H)) (cosine normalisation).
        node_labels, edge_labels, directed: as in :func:`udl.wl.refine_batch` (per-graph label
            lists are not supported here; use networkx attribute names or PyG ``x``).

    Example:
        >>> import networkx as nx
        >>> from udl.wl import WLHistogram
        >>> graphs = [nx.cycle_graph(6), nx.path_graph(6), nx.star_graph(5)]
        >>> K = WLHistogram(rounds=2).fit(graphs).kernel(graphs)   # Tensor[3, 3] float64
    """

    def __init__(self, rounds: int = 3, method: str = "cr", normalize: bool = False,
                 node_labels: Any = None, edge_labels: Any = None,
                 directed: bool | None = None) -> None:
        if isinstance(rounds, bool) or not isinstance(rounds, int) or rounds < 0:
            raise ValueError(f"rounds must be an int >= 0, got {rounds!r}")
        if isinstance(node_labels, (list, tuple)) or isinstance(edge_labels, (list, tuple)):
            raise ValueError("WLHistogram: per-graph label lists are not supported; use an "
                             "attribute name, PyG x / edge_attr, or None")
        self.rounds = rounds
        self.method = method
        self.normalize = normalize
        self.node_labels = node_labels
        self.edge_labels = edge_labels
        self.directed = directed
        self._fitted: list[Any] | None = None
        self._ref_features: Tensor | None = None

    def __repr__(self) -> str:
        return (f"WLHistogram(rounds={self.rounds}, method={self.method!r}, "
                f"normalize={self.normalize})")

    @property
    def num_features(self) -> int:
        self._check_fitted()
        return int(self._ref_features.shape[1])

    def _check_fitted(self) -> None:
        if self._fitted is None:
            raise RuntimeError("WLHistogram: call fit(graphs) first")

    def _features(self, graphs: list[Any], num_ref: int) -> Tensor:
        res = refine_batch(graphs, self.method, rounds=self.rounds,
                           node_labels=self.node_labels, edge_labels=self.edge_labels,
                           return_history=True, directed=self.directed)
        ptr = res.ptr
        B = len(graphs)
        graph = torch.repeat_interleave(torch.arange(B), ptr[1:] - ptr[:-1])
        ref_end = int(ptr[num_ref])
        rows, cols, vals = [], [], []
        offset = 0
        for colors in res.history:
            ref_colors = torch.unique(colors[:ref_end], sorted=True)
            pos = torch.searchsorted(ref_colors, colors)
            known = pos < ref_colors.numel()
            known[known.clone()] &= ref_colors[pos[known]] == colors[known]
            key = graph[known] * max(ref_colors.numel(), 1) + pos[known]
            uniq, cnt = torch.unique(key, sorted=True, return_counts=True)
            width = max(ref_colors.numel(), 1)
            rows.append(uniq // width)
            cols.append(uniq % width + offset)
            vals.append(cnt)
            offset += ref_colors.numel()
        idx = torch.stack([torch.cat(rows), torch.cat(cols)])
        # Rows restart in every round: sort the (row, column) pairs once to get a coalesced tensor.
        order = torch.argsort(idx[0] * max(offset, 1) + idx[1])
        return sparse_coo(idx[:, order], torch.cat(vals).to(torch.float64)[order], (B, offset))

    def fit(self, graphs: Sequence[Any]) -> WLHistogram:
        """Fix the reference graphs (the feature columns)."""
        graphs = list(graphs)
        if not graphs:
            raise ValueError("graphs: need at least one graph to fit")
        self._fitted = graphs
        self._ref_features = self._features(graphs, len(graphs))
        return self

    def fit_transform(self, graphs: Sequence[Any]) -> Tensor:
        """Fit and return the features of the reference graphs: sparse ``Tensor[B, F]`` float64."""
        return self.fit(graphs)._ref_features

    def transform(self, graphs: Sequence[Any]) -> Tensor:
        """Features of new graphs in the fitted columns: sparse ``Tensor[B', F]`` float64."""
        self._check_fitted()
        graphs = list(graphs)
        if not graphs:
            return sparse_coo(torch.empty(2, 0, dtype=torch.long),
                              torch.empty(0, dtype=torch.float64), (0, self.num_features))
        ref = len(self._fitted)
        feats = self._features(self._fitted + graphs, ref)
        return feats.index_select(0, torch.arange(ref, ref + len(graphs))).coalesce()

    def kernel(self, graphs: Sequence[Any] | None = None) -> Tensor:
        """Kernel matrix ``Tensor[B', B]`` (float64) between ``graphs`` (default: the reference
        graphs themselves) and the reference graphs."""
        self._check_fitted()
        ref = self._ref_features
        x = ref if graphs is None else self.transform(graphs)
        # Sparse x sparse product: features can have far more columns than there are graphs.
        with warnings.catch_warnings():
            warnings.filterwarnings("ignore", message="Sparse CSR tensor support is in beta")
            K = torch.sparse.mm(x, ref.t().coalesce()).to_dense()
        if self.normalize:
            dx = torch.sparse.sum(x * x, 1).to_dense().sqrt().clamp_min(1e-300)
            dr = torch.sparse.sum(ref * ref, 1).to_dense().sqrt().clamp_min(1e-300)
            K = K / dx[:, None] / dr[None, :]
        return K
