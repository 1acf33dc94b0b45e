"""udl.gnn: k-MPNNs (neural folklore k-WL, Geerts & Reutter ICLR 2022) and companion layers.

* :class:`KMPNNLayer` / :class:`KMPNN` for k = 1, 2, 3 on dense k-tuple features (PyG batches are
  padded per graph); the 2-MPNN summation is a channel-wise batched matrix product (PPGN style).
* :class:`GINLayer` / :class:`GIN`: the MPNN baseline on PyG's ``MessagePassing`` (optionally with
  a global read-out per layer).
* :class:`IGNLayer` (k-IGN, all Bell(2k) equivariant basis maps) and :class:`KGNNLayer` (oblivious
  k-GNN).

Each model's ``tl_functions()`` maps the function names of the matching ``udl.tl.architectures``
expression to its modules, so ``udl.tl.evaluate`` can check the expression against the layer.
"""

from __future__ import annotations

from udl.gnn.dense import DenseGraphs, to_dense_graphs, tuple_atp, tuple_features, tuple_mask
from udl.gnn.higher import IGNLayer, KGNNLayer, ign_basis, set_partitions
from udl.gnn.kmpnn import KMPNN, KMPNNLayer, mlp
from udl.gnn.mpnn import GIN, GINLayer

__all__ = ["DenseGraphs", "to_dense_graphs", "tuple_atp", "tuple_features", "tuple_mask",
           "IGNLayer", "KGNNLayer", "ign_basis", "set_partitions", "KMPNN", "KMPNNLayer", "mlp",
           "GIN", "GINLayer"]
