"""k-MPNNs (Geerts & Reutter, ICLR 2022): neural folklore k-WL on dense k-tuple features.

One layer, for a k-tuple ``x = (x1, ..., xk)`` and a fresh variable ``y``::

    k = 1:  F'(x) = f( F(x), Σ_y g1(F(y)) ⊙ gate(eq(x,y), E(x,y)) )
    k ≥ 2:  F'(x) = f( F(x), atp(x), Σ_y Π_i g_i(F(x[y/i])) )

with MLPs ``f``, ``g_i`` and a linear ``gate`` of the atomic type of ``(x, y)`` (for k ≥ 2 the
substituted tuples already carry it in their features). Every layer is a TL_{k+1} expression of
summation depth 1 (see ``udl.tl.architectures.kmpnn``), so t layers are bounded by vwl_k^(t), the
folklore k-WL, and the product form makes them as strong (the neural k-FWL of the paper).

For k = 2 the summation is a channel-wise batched matrix product (PPGN style): ``m = G2 @ G1``.
For k = 3 it is a 3-operand contraction looped over the first position (memory n^3 per step).
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from udl.gnn.dense import (
    DenseGraphs,
    atp_channels,
    to_dense_graphs,
    tuple_atp,
    tuple_bytes,
    tuple_features,
    tuple_mask,
)

__all__ = ["KMPNNLayer", "KMPNN", "mlp"]


def mlp(in_channels: int, hidden: int, out_channels: int, final_relu: bool = False) -> nn.Sequential:
    """Linear → ReLU → Linear (→ ReLU)."""
    layers: list[nn.Module] = [nn.Linear(in_channels, hidden), nn.ReLU(), nn.Linear(hidden, out_channels)]
    if final_relu:
        layers.append(nn.ReLU())
    return nn.Sequential(*layers)


def _check_int(name: str, value: Any, low: int = 1) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < low:
        raise ValueError(f"{name}: expected an int >= {low}, got {value!r}")
    return value


class KMPNNLayer(nn.Module):
    """One k-MPNN layer on dense k-tuple features.

    Args:
        k: tuple order, 1, 2 or 3.
        in_channels: channels of the input tuple features.
        out_channels: channels of the output tuple features.
        hidden: channels of the messages (default ``out_channels``).
        aggr: ``"sum"`` (the paper's Σ) or ``"mean"`` (Σ divided by the number of vertices, a graph
            invariant, so the TL bound is unchanged).

    Shapes:
        ``h [B, N, ..., N (k times), in_channels]``, ``adj [B, N, N]``, ``mask [B, N]`` (bool,
        optional) → ``[B, N, ..., N, out_channels]`` (zero on tuples touching padding).
    """

    def __init__(self, k: int, in_channels: int, out_channels: int, hidden: int | None = None,
                 aggr: str = "sum") -> None:
        super().__init__()
        if k not in (1, 2, 3):
            raise ValueError(f"k: expected 1, 2 or 3, got {k!r}")
        _check_int("in_channels", in_channels)
        _check_int("out_channels", out_channels)
        hidden = out_channels if hidden is None else _check_int("hidden", hidden)
        if aggr not in ("sum", "mean"):
            raise ValueError(f"aggr: expected 'sum' or 'mean', got {aggr!r}")
        self.k, self.in_channels, self.out_channels, self.hidden, self.aggr = (
            k, in_channels, out_channels, hidden, aggr)
        self.g = nn.ModuleList([mlp(in_channels, hidden, hidden) for _ in range(k)])
        self.gate = nn.Linear(2, hidden) if k == 1 else None
        self.f = mlp(in_channels + atp_channels(k) + hidden, out_channels, out_channels, final_relu=True)
        self.chunk_bytes = 64 << 20  # k = 3: memory of one chunk of the summation grid

    def extra_repr(self) -> str:
        return (f"k={self.k}, in_channels={self.in_channels}, out_channels={self.out_channels}, "
                f"hidden={self.hidden}, aggr={self.aggr!r}")

    def message(self, h: torch.Tensor, adj: torch.Tensor, tmask: torch.Tensor) -> torch.Tensor:
        """``Σ_y`` of the product of the substituted tuples' messages: ``[B, N^k, hidden]``."""
        k = self.k
        m = tmask[..., None].to(h.dtype)
        gs = [g(h) * m for g in self.g]
        if k == 1:
            g1 = gs[0]  # [B, N, H]
            w = self.gate.weight  # [H, 2]: columns (eq, E)
            total = g1.sum(1, keepdim=True)
            return (self.gate.bias * total + w[:, 0] * g1 + w[:, 1] * torch.bmm(adj, g1))
        if k == 2:
            # Σ_y g1(F(y, x2)) g2(F(x1, y)) = (G2 @ G1)[x1, x2], per channel
            g1 = gs[0].permute(0, 3, 1, 2)
            g2 = gs[1].permute(0, 3, 1, 2)
            return torch.matmul(g2, g1).permute(0, 2, 3, 1)
        # k == 3: Σ_y g1(F(y,x2,x3)) g2(F(x1,y,x3)) g3(F(x1,x2,y)): broadcast products summed over y,
        # in chunks of x1 so that a chunk's [B, s, N, N, N(y), H] grid stays within chunk_bytes.
        g1, g2, g3 = gs
        b, n, hdim = h.shape[0], h.shape[1], self.hidden
        a1 = g1.permute(0, 2, 3, 1, 4)[:, None]          # [B, 1, x2, x3, y, H]
        per_row = max(1, b * n ** 3 * hdim * h.element_size())
        step = max(1, min(n, self.chunk_bytes // per_row))
        out = torch.empty(b, n, n, n, hdim, dtype=h.dtype, device=h.device)
        for i in range(0, n, step):
            a2 = g2[:, i:i + step].permute(0, 1, 3, 2, 4)[:, :, None]  # [B, s, 1, x3, y, H]
            a3 = g3[:, i:i + step, :, None]                             # [B, s, x2, 1, y, H]
            out[:, i:i + step] = (a1 * a2 * a3).sum(4)
        return out

    def forward(self, h: torch.Tensor, adj: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        k = self.k
        if h.dim() != k + 2:
            raise ValueError(f"h: expected [B, N^{k}, C] with {k + 2} dims, got shape {tuple(h.shape)}")
        b, n = h.shape[0], h.shape[1]
        if h.shape[-1] != self.in_channels:
            raise ValueError(f"h: expected {self.in_channels} channels, got {h.shape[-1]}")
        if adj.shape != (b, n, n):
            raise ValueError(f"adj: expected shape ({b}, {n}, {n}), got {tuple(adj.shape)}")
        if mask is None:
            mask = torch.ones(b, n, dtype=torch.bool, device=h.device)
        tmask = tuple_mask(mask, k)
        adj = adj.to(h.dtype)
        msg = self.message(h, adj, tmask)
        if self.aggr == "mean":
            cnt = mask.sum(1).to(h.dtype).clamp_min(1)
            msg = msg / cnt.reshape(b, *([1] * (k + 1)))
        out = self.f(torch.cat([h, tuple_atp(adj, k), msg], dim=-1))
        return out * tmask[..., None].to(h.dtype)

    def tl_functions(self, prefix: str) -> dict[str, nn.Module]:
        """The modules behind the function names of ``udl.tl.architectures.kmpnn`` for this layer."""
        fns: dict[str, nn.Module] = {f"{prefix}f": self.f}
        for i, g in enumerate(self.g, start=1):
            fns[f"{prefix}g{i}"] = g
        if self.gate is not None:
            fns[f"{prefix}gate"] = self.gate
        return fns


class KMPNN(nn.Module):
    """A k-MPNN for graph-level outputs: tuple initialisation, ``num_layers`` KMPNNLayers, sum
    read-out over all k-tuples and an MLP head.

    Args:
        k: tuple order (1, 2, 3).
        num_layers: number of k-MPNN layers (= rounds of the folklore k-WL bound).
        in_channels: vertex feature channels (1 for unlabelled graphs: features default to 1).
        hidden: tuple feature channels.
        out_channels: output channels.
        aggr: ``"sum"`` or ``"mean"`` (see :class:`KMPNNLayer`).
        max_bytes: refuse batches whose ``[B, N^k, hidden]`` activations would exceed this many
            bytes (times a factor 8 for the intermediates); raise it deliberately for big graphs.

    ``forward(data)`` accepts a PyG ``Data``/``Batch``, networkx graph(s) or ``(adj, x[, mask])``
    and returns ``[B, out_channels]``; ``embed(data)`` returns the read-out ``[B, hidden]``.
    """

    def __init__(self, k: int, num_layers: int, in_channels: int = 1, hidden: int = 16,
                 out_channels: int = 1, aggr: str = "sum", max_bytes: int = 2 << 30) -> None:
        super().__init__()
        if k not in (1, 2, 3):
            raise ValueError(f"k: expected 1, 2 or 3, got {k!r}")
        _check_int("num_layers", num_layers, 0)
        _check_int("in_channels", in_channels)
        _check_int("hidden", hidden)
        _check_int("out_channels", out_channels)
        self.k, self.in_channels, self.hidden, self.max_bytes = k, in_channels, hidden, int(max_bytes)
        c0 = k * in_channels + atp_channels(k)
        self.layers = nn.ModuleList(
            [KMPNNLayer(k, c0 if i == 0 else hidden, hidden, hidden, aggr) for i in range(num_layers)])
        self.readout = mlp(c0 if num_layers == 0 else hidden, hidden, hidden, final_relu=True)
        self.head = mlp(hidden, hidden, out_channels)

    def _check_memory(self, graphs: DenseGraphs, dtype: torch.dtype) -> None:
        itemsize = torch.empty((), dtype=dtype).element_size()
        need = 8 * tuple_bytes(graphs.num_graphs, graphs.max_nodes, self.k, max(self.hidden, 1), itemsize)
        if need > self.max_bytes:
            raise ValueError(
                f"KMPNN(k={self.k}): {graphs.num_graphs} graph(s) padded to {graphs.max_nodes} vertices "
                f"need about {need / 2**20:.0f} MiB ({graphs.max_nodes}^{self.k} tuples x {self.hidden} "
                f"channels x ~8 buffers), above max_bytes={self.max_bytes / 2**20:.0f} MiB; use smaller "
                "graphs or batches, a smaller k, or raise max_bytes")

    def embed(self, data: Any) -> torch.Tensor:
        """Graph embeddings ``[B, hidden]`` (sum over all k-tuples of the read-out MLP)."""
        param = next(self.parameters())
        dtype, device = param.dtype, param.device
        graphs = to_dense_graphs(data, dtype)
        if graphs.adj.device != device:
            graphs = DenseGraphs(graphs.adj.to(device), graphs.x.to(device), graphs.mask.to(device))
        if graphs.x.shape[-1] != self.in_channels:
            raise ValueError(f"x: expected {self.in_channels} vertex feature channels, got "
                             f"{graphs.x.shape[-1]}")
        self._check_memory(graphs, dtype)
        h = tuple_features(graphs, self.k)
        for layer in self.layers:
            h = layer(h, graphs.adj, graphs.mask)
        tm = tuple_mask(graphs.mask, self.k)[..., None].to(dtype)
        r = self.readout(h) * tm
        return r.flatten(1, self.k).sum(1)

    def forward(self, data: Any) -> torch.Tensor:
        return self.head(self.embed(data))

    def tl_functions(self) -> dict[str, nn.Module]:
        """Function names of ``udl.tl.architectures.kmpnn(k, num_layers)`` → this model's modules."""
        fns: dict[str, nn.Module] = {"readout": self.readout, "head": self.head}
        for t, layer in enumerate(self.layers, start=1):
            fns.update(layer.tl_functions(f"l{t}_"))
        return fns
