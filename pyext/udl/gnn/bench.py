"""Side-by-side timings for ``udl bench --only gnn``: k-MPNN message passing vs the naive dense
formulation, the GIN layer vs PyG's ``GINConv``, and ``udl.tl.evaluate`` vs the layers it checks."""

from __future__ import annotations

import torch

from udl.bench import BenchRow, time_fn

__all__ = ["side_by_side", "naive_message"]


def naive_message(gs: list[torch.Tensor]) -> torch.Tensor:
    """Σ_y Π_i g_i(F(x[y/i])) by broadcasting the k substituted tensors on a (k+1)-dim grid and
    summing over y (n^(k+1) memory): the textbook formulation the batched kernels replace."""
    if len(gs) == 2:
        g1, g2 = gs  # out[a, b] = Σ_y g2[a, y] g1[y, b]
        return (g2[:, :, :, None, :] * g1[:, None, :, :, :]).sum(2)
    g1, g2, g3 = gs  # out[a, b, c] = Σ_y g1[y, b, c] g2[a, y, c] g3[a, b, y]
    prod = (g1.permute(0, 2, 3, 1, 4)[:, None]        # [B, 1, b, c, y, C]
            * g2.permute(0, 1, 3, 2, 4)[:, :, None]   # [B, a, 1, c, y, C]
            * g3[:, :, :, None])                      # [B, a, b, 1, y, C]
    return prod.sum(4)


def _rand_graph(n: int, p: float, seed: int):
    import networkx as nx

    return nx.gnp_random_graph(n, p, seed=seed)


def side_by_side(quick: bool, device: str) -> list[BenchRow]:
    """Rows udl vs peer, both timed in this run (CPU: one thread each, to limit noise on a shared
    machine)."""
    old = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        return _rows(quick, device)
    finally:
        torch.set_num_threads(old)


def _rows(quick: bool, device: str) -> list[BenchRow]:
    from udl.gnn.dense import nx_to_edge_index, tuple_mask
    from udl.gnn.kmpnn import KMPNNLayer
    from udl.gnn.mpnn import GINLayer

    dev = torch.device(device)
    rows: list[BenchRow] = []
    repeat = 3 if quick else 7
    torch.manual_seed(0)

    # k-MPNN message: batched matmul (k=2) / looped contraction (k=3) vs naive broadcast-sum
    for k, b, n, c in ((2, 8, 48 if quick else 96, 32), (3, 2, 12 if quick else 20, 16)):
        layer = KMPNNLayer(k, c, c, hidden=c).to(dev)
        h = torch.randn(b, *([n] * k), c, device=dev)
        adj = (torch.rand(b, n, n, device=dev) < 0.3).float()
        tm = tuple_mask(torch.ones(b, n, dtype=torch.bool, device=dev), k)
        gs = [g(h) for g in layer.g]

        def ours(layer=layer, h=h, adj=adj, tm=tm):
            with torch.no_grad():
                return layer.message(h, adj, tm)

        def peer(layer=layer, h=h, gs=gs):
            with torch.no_grad():
                return naive_message([g(h) for g in layer.g])

        torch.testing.assert_close(ours(), naive_message(gs).detach(), rtol=1e-4, atol=1e-3)
        rows.append(BenchRow("gnn", f"{k}-MPNN message, B={b} n={n} C={c}",
                             f"KMPNNLayer(k={k}).message",
                             "naive broadcast-sum (torch)", time_fn(ours, dev, repeat),
                             time_fn(peer, dev, repeat), goal=">= 2x" if k == 2 else "~1x, n^3 memory",
                             note="same MLPs; the peer materialises the n^(k+1) grid"))

    # GIN layer vs PyG GINConv (same MLP), on a sparse random graph
    try:
        from torch_geometric.nn import GINConv
    except ImportError:  # pragma: no cover - torch_geometric is a runtime dependency
        GINConv = None
    if GINConv is not None:
        n = 2000 if quick else 20000
        ei, _ = nx_to_edge_index(_rand_graph(n, 8.0 / n, 1))
        ei = ei.to(dev)
        x = torch.randn(n, 64, device=dev)
        ours_layer = GINLayer(64, 64).to(dev)
        peer_layer = GINConv(ours_layer.mlp).to(dev)
        with torch.no_grad():
            torch.testing.assert_close(ours_layer(x, ei), peer_layer(x, ei))

        def ours_gin():
            with torch.no_grad():
                return ours_layer(x, ei)

        def peer_gin():
            with torch.no_grad():
                return peer_layer(x, ei)

        rows.append(BenchRow("gnn", f"GIN layer, n={n}, deg~8, C=64", "udl.gnn.GINLayer",
                             "torch_geometric GINConv", time_fn(ours_gin, dev, repeat),
                             time_fn(peer_gin, dev, repeat), goal="~1x",
                             note="both on PyG MessagePassing"))

        # tl.evaluate of a 2-layer GIN expression vs running the PyG layers (the check's overhead)
        from udl import tl
        from udl.tl.architectures import gin

        n2 = 150 if quick else 400
        ei2, _ = nx_to_edge_index(_rand_graph(n2, 0.05, 2))
        ei2 = ei2.to(dev)
        x2 = torch.randn(n2, 16, device=dev)
        convs = [GINConv(torch.nn.Sequential(torch.nn.Linear(16, 16), torch.nn.ReLU())).to(dev)
                 for _ in range(2)]
        emb, _ = gin(2)
        fns = {"mlp1": convs[0].nn, "mlp2": convs[1].nn}

        def ours_eval():
            with torch.no_grad():
                return tl.evaluate(emb, (ei2, n2), x2, fns)

        def peer_eval():
            with torch.no_grad():
                return convs[1](convs[0](x2, ei2), ei2)

        torch.testing.assert_close(ours_eval(), peer_eval(), rtol=1e-4, atol=1e-4)
        rows.append(BenchRow("gnn", f"tl.evaluate GIN(2), n={n2}", "udl.tl.evaluate (dense einsum)",
                             "torch_geometric GINConv x2", time_fn(ours_eval, dev, repeat),
                             time_fn(peer_eval, dev, repeat), goal="checker, not a layer",
                             note="ratio < 1 expected: evaluate is a dense reference"))
    return rows
