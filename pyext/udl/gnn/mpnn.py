"""MPNN baselines on PyG's ``MessagePassing``: GIN-style layers, optionally with a global read-out."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from udl.gnn.kmpnn import _check_int, mlp

__all__ = ["GINLayer", "GIN"]


def _message_passing_base():
    from torch_geometric.nn import MessagePassing

    return MessagePassing


class GINLayer(nn.Module):
    """``x'_v = mlp((1+eps)·x_v + Σ_{u→v} x_u [, Σ_{u in graph} x_u])`` (PyG sum aggregation).

    Messages flow along ``edge_index`` from source to target, i.e. the TL expression is
    ``mlp((1+eps)·F(x1) + Σ_{x2} E(x2,x1)·F(x2) [, Σ_{x2} F(x2)])``: guarded (cr) without the
    global read-out, vwl_1 (cr + global information) with it.

    Shapes: ``x [n, in_channels]``, ``edge_index [2, m]``, ``batch [n]`` (optional) → ``[n, out]``.
    """

    def __init__(self, in_channels: int, out_channels: int, hidden: int | None = None, eps: float = 0.0,
                 global_readout: bool = False) -> None:
        super().__init__()
        _check_int("in_channels", in_channels)
        _check_int("out_channels", out_channels)
        hidden = out_channels if hidden is None else _check_int("hidden", hidden)
        self.eps, self.global_readout = float(eps), bool(global_readout)
        self.in_channels, self.out_channels = in_channels, out_channels
        self.mlp = mlp(in_channels * (2 if global_readout else 1), hidden, out_channels, final_relu=True)
        self._conv = _make_sum_conv()

    def extra_repr(self) -> str:
        return (f"{self.in_channels}, {self.out_channels}, eps={self.eps}, "
                f"global_readout={self.global_readout}")

    def forward(self, x: torch.Tensor, edge_index: torch.Tensor,
                batch: torch.Tensor | None = None) -> torch.Tensor:
        if x.dim() != 2 or x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected [n, {self.in_channels}], got shape {tuple(x.shape)}")
        if edge_index.dim() != 2 or edge_index.shape[0] != 2:
            raise ValueError(f"edge_index: expected [2, m], got shape {tuple(edge_index.shape)}")
        h = (1.0 + self.eps) * x + self._conv(x, edge_index)
        if self.global_readout:
            if batch is None:
                g = x.sum(0, keepdim=True).expand_as(x)
            else:
                from torch_geometric.utils import scatter

                g = scatter(x, batch, dim=0, reduce="sum")[batch]
            h = torch.cat([h, g], dim=-1)
        return self.mlp(h)


def _make_sum_conv() -> nn.Module:
    base = _message_passing_base()

    class _SumConv(base):
        """Σ over incoming edges of the source features (no parameters)."""

        def __init__(self) -> None:
            super().__init__(aggr="add")

        def forward(self, x: torch.Tensor, edge_index: torch.Tensor) -> torch.Tensor:
            return self.propagate(edge_index, x=x)

        def message(self, x_j: torch.Tensor) -> torch.Tensor:
            return x_j

    return _SumConv()


class GIN(nn.Module):
    """GIN (or MPNN with a global read-out per layer) with a sum read-out and an MLP head.

    ``forward(data)`` takes a PyG ``Data``/``Batch`` (``x`` optional: constant 1) → ``[B, out]``;
    ``embed(data)`` → ``[B, hidden]``.
    """

    def __init__(self, num_layers: int, in_channels: int = 1, hidden: int = 16, out_channels: int = 1,
                 eps: float = 0.0, global_readout: bool = False) -> None:
        super().__init__()
        _check_int("num_layers", num_layers, 0)
        self.in_channels, self.hidden = _check_int("in_channels", in_channels), _check_int("hidden", hidden)
        self.layers = nn.ModuleList([GINLayer(in_channels if i == 0 else hidden, hidden, hidden, eps,
                                              global_readout) for i in range(num_layers)])
        self.head = mlp(hidden if num_layers else in_channels, hidden, out_channels)

    def embed(self, data: Any) -> torch.Tensor:
        if not hasattr(data, "edge_index"):
            if not (hasattr(data, "nodes") and hasattr(data, "edges")):
                raise TypeError("data: expected a PyG Data/Batch or a networkx graph, got "
                                f"{type(data).__name__}")
            from torch_geometric.data import Data

            from udl.gnn.dense import nx_to_edge_index

            ei, n_ = nx_to_edge_index(data)
            data = Data(edge_index=ei, num_nodes=n_)
        param = next(self.parameters())
        dtype, device = param.dtype, param.device
        n = int(data.num_nodes)
        x = getattr(data, "x", None)
        x = torch.ones(n, 1, dtype=dtype) if x is None else (x[:, None] if x.dim() == 1 else x)
        x = x.to(device=device, dtype=dtype)
        if x.shape[1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} feature channels, got {x.shape[1]}")
        batch = getattr(data, "batch", None)
        batch = batch.to(device) if batch is not None else None
        edge_index = data.edge_index.to(device)
        for layer in self.layers:
            x = layer(x, edge_index, batch)
        if batch is None:
            return x.sum(0, keepdim=True)
        from torch_geometric.utils import scatter

        return scatter(x, batch, dim=0, reduce="sum", dim_size=int(batch.max()) + 1 if n else 0)

    def forward(self, data: Any) -> torch.Tensor:
        return self.head(self.embed(data))

    def tl_functions(self) -> dict[str, nn.Module]:
        """Function names of ``udl.tl.architectures.gin(num_layers, ...)`` → this model's modules."""
        fns: dict[str, nn.Module] = {"head": self.head}
        for t, layer in enumerate(self.layers, start=1):
            fns[f"mlp{t}"] = layer.mlp
        return fns
