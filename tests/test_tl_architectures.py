"""tl.evaluate of each architecture's TL expression == the torch implementation of the layer."""

from __future__ import annotations

import networkx as nx
import pytest
import torch

from udl import tl
from udl.gnn import GIN, KMPNN, IGNLayer, KGNNLayer, KMPNNLayer, to_dense_graphs, tuple_features
from udl.tl import architectures as A

pyg_nn = pytest.importorskip("torch_geometric.nn")
from torch_geometric.utils import from_networkx  # noqa: E402

DT = torch.float64
TOL = {"rtol": 1e-9, "atol": 1e-10}


pytestmark = pytest.mark.usefixtures("one_thread")


def _graph(n: int = 9, p: float = 0.35, seed: int = 0, isolated: bool = True):
    g = nx.gnp_random_graph(n, p, seed=seed)
    if isolated:
        g.add_node(n)  # an isolated vertex exercises the 0-degree conventions
    data = from_networkx(g)
    return g, data


def _features(n: int, d: int = 3) -> torch.Tensor:
    return torch.randn(n, d, dtype=DT)


@pytest.mark.parametrize("eps", [0.0, 0.25])  # exact in float32 (PyG stores eps so)
@pytest.mark.parametrize("layers", [1, 3])
def test_gin_matches_pyg_ginconv(layers, eps):
    g, data = _graph(seed=layers)
    x = _features(data.num_nodes)
    convs = [pyg_nn.GINConv(torch.nn.Sequential(torch.nn.Linear(3, 5), torch.nn.ReLU(),
                                                torch.nn.Linear(5, 3)), eps=eps).to(DT)
             for _ in range(layers)]
    h = x
    for c in convs:
        h = c(h, data.edge_index)
    emb, _ = A.gin(layers, eps=eps)
    fns = {f"mlp{t}": c.nn for t, c in enumerate(convs, start=1)}
    torch.testing.assert_close(tl.evaluate(emb, data, x, fns), h, **TOL)


@pytest.mark.parametrize("global_readout", [False, True])
def test_gin_model_graph_output(global_readout):
    g, data = _graph(seed=2)
    model = GIN(2, in_channels=1, hidden=6, out_channels=2, global_readout=global_readout).to(DT)
    emb, graph = A.gin(2, global_readout=global_readout)
    ones = torch.ones(data.num_nodes, 1, dtype=DT)
    out = tl.evaluate(graph, data, ones, model.tl_functions())
    torch.testing.assert_close(out, model(data)[0], **TOL)


@pytest.mark.parametrize("layers", [1, 2])
def test_gcn_matches_pyg_gcnconv(layers):
    g, data = _graph(seed=3)
    x = _features(data.num_nodes)
    convs = [pyg_nn.GCNConv(3, 3).to(DT) for _ in range(layers)]
    for c in convs:
        torch.nn.init.normal_(c.bias)
    h = x
    for c in convs:
        h = torch.tanh(c(h, data.edge_index))
    fns = {}
    for t, c in enumerate(convs, start=1):
        fns[f"lin{t}"] = c.lin
        fns[f"post{t}"] = (lambda b: (lambda v: torch.tanh(v + b)))(c.bias)
    emb, _ = A.gcn(layers)
    torch.testing.assert_close(tl.evaluate(emb, data, x, fns), h, **TOL)


def test_sage_matches_pyg_sageconv():
    g, data = _graph(seed=4)
    x = _features(data.num_nodes)
    convs = [pyg_nn.SAGEConv(3, 3, aggr="mean").to(DT) for _ in range(2)]
    h = x
    for c in convs:
        h = torch.relu(c(h, data.edge_index))
    fns = {}
    for t, c in enumerate(convs, start=1):
        fns.update({f"lin_l{t}": c.lin_l, f"lin_r{t}": c.lin_r, f"post{t}": torch.relu})
    emb, _ = A.sage(2)
    torch.testing.assert_close(tl.evaluate(emb, data, x, fns), h, **TOL)


def test_gat_matches_pyg_gatconv():
    g, data = _graph(seed=5)
    x = _features(data.num_nodes)
    convs = [pyg_nn.GATConv(3, 3, heads=1).to(DT) for _ in range(2)]
    for c in convs:
        torch.nn.init.normal_(c.bias)
    h = x
    for c in convs:
        h = torch.relu(c(h, data.edge_index))

    def score(c):
        def f(v):
            a, b = v[..., :3], v[..., 3:]
            s = (c.lin(a) * c.att_dst[0, 0]).sum(-1, keepdim=True) + \
                (c.lin(b) * c.att_src[0, 0]).sum(-1, keepdim=True)
            return torch.exp(torch.nn.functional.leaky_relu(s, c.negative_slope))
        return f

    fns = {}
    for t, c in enumerate(convs, start=1):
        fns.update({f"lin{t}": c.lin, f"score{t}": score(c),
                    f"post{t}": (lambda b: (lambda v: torch.relu(v + b)))(c.bias)})
    emb, _ = A.gat(2)
    torch.testing.assert_close(tl.evaluate(emb, data, x, fns), h, **TOL)


@pytest.mark.parametrize("K", [1, 3])
def test_chebnet_matches_pyg_chebconv(K):
    g, data = _graph(seed=6)
    x = _features(data.num_nodes)
    convs = [pyg_nn.ChebConv(3, 3, K=K).to(DT) for _ in range(2)]
    for c in convs:
        torch.nn.init.normal_(c.bias)
    h = x
    for c in convs:
        h = torch.relu(c(h, data.edge_index))
    fns = {}
    for t, c in enumerate(convs, start=1):
        for k in range(K):
            fns[f"lin{t}_{k}"] = c.lins[k]
        fns[f"post{t}"] = (lambda b: (lambda v: torch.relu(v + b)))(c.bias)
    emb, _ = A.chebnet(2, K)
    torch.testing.assert_close(tl.evaluate(emb, data, x, fns), h, **TOL)


@pytest.mark.parametrize("k", [1, 2, 3])
@pytest.mark.parametrize("aggr", ["sum", "mean"])
def test_kmpnn_expression_matches_model(k, aggr):
    g, data = _graph(n=6 if k == 3 else 8, seed=7 + k)
    model = KMPNN(k, 2, in_channels=2, hidden=4, out_channels=3, aggr=aggr).to(DT)
    x = _features(data.num_nodes, 2)
    data.x = x
    emb, graph = A.kmpnn(k, 2, aggr=aggr)
    fns = model.tl_functions()
    torch.testing.assert_close(tl.evaluate(graph, data, x, fns), model(data)[0], **TOL)
    # the tuple embedding itself, before the read-out
    graphs = to_dense_graphs(data, DT)
    h = tuple_features(graphs, k)
    for layer in model.layers:
        h = layer(h, graphs.adj, graphs.mask)
    torch.testing.assert_close(tl.evaluate(emb, data, x, fns), h[0], **TOL)


def test_ppgn_matches_dense_block():
    g, data = _graph(n=7, seed=11)
    x = _features(data.num_nodes, 2)
    graphs = to_dense_graphs((tl.dense_adjacency(data), x))
    h = tuple_features(graphs, 2)[0]
    c0 = h.shape[-1]
    m1 = torch.nn.Linear(c0, 4).to(DT)
    m2 = torch.nn.Linear(c0, 4).to(DT)
    m3 = torch.nn.Sequential(torch.nn.Linear(c0 + 4, 4), torch.nn.ReLU()).to(DT)
    prod = torch.einsum("acz,cbz->abz", m1(h), m2(h))
    ref = m3(torch.cat([h, prod], -1))
    emb, _ = A.ppgn(1)
    out = tl.evaluate(emb, data, x, {"m1_1": m1, "m2_1": m2, "m3_1": m3})
    torch.testing.assert_close(out, ref, **TOL)


@pytest.mark.parametrize("k", [2, 3])
def test_ign_matches_layer(k):
    g, data = _graph(n=5 if k == 3 else 7, seed=12)
    x = _features(data.num_nodes, 1)
    graphs = to_dense_graphs((tl.dense_adjacency(data), x))
    h = tuple_features(graphs, k)
    layer = IGNLayer(k, h.shape[-1], 3).to(DT)
    ref = layer(h)[0]
    emb, _ = A.ign(k, 1)
    out = tl.evaluate(emb, data, x, {"mix1": layer.tl_function()})
    torch.testing.assert_close(out, ref, **TOL)
    assert len(layer.ops) == (15 if k == 2 else 203)


def test_ign_basis_is_equivariant():
    layer = IGNLayer(2, 2, 3).to(DT)
    h = torch.randn(1, 6, 6, 2, dtype=DT)
    perm = torch.randperm(6)
    out = layer(h)
    out_p = layer(h[:, perm][:, :, perm])
    torch.testing.assert_close(out_p, out[:, perm][:, :, perm], **TOL)


@pytest.mark.parametrize("k", [2, 3])
def test_kgnn_matches_layer(k):
    g, data = _graph(n=6, seed=13)
    x = _features(data.num_nodes, 1)
    graphs = to_dense_graphs((tl.dense_adjacency(data), x))
    h = tuple_features(graphs, k)
    layer = KGNNLayer(k, h.shape[-1], 3).to(DT)
    emb, _ = A.kgnn(k, 1)
    torch.testing.assert_close(tl.evaluate(emb, data, x, {"mlp1": layer.mlp}), layer(h)[0], **TOL)


def test_kmpnn_layer_k3_matches_naive_sum():
    layer = KMPNNLayer(3, 2, 3, hidden=4).to(DT)
    n = 5
    h = torch.randn(1, n, n, n, 2, dtype=DT)
    adj = (torch.rand(1, n, n) < 0.5).to(DT)
    mask = torch.ones(1, n, dtype=torch.bool)
    from udl.gnn.dense import tuple_mask

    msg = layer.message(h, adj, tuple_mask(mask, 3))
    g1, g2, g3 = (g(h)[0] for g in layer.g)
    ref = torch.zeros(n, n, n, 4, dtype=DT)
    for y in range(n):
        ref += g1[y, :, :] * g2[:, y, :][:, None] * g3[:, :, y][:, :, None]
    torch.testing.assert_close(msg[0], ref, **TOL)
