"""pytest-benchmark timings for udl.gnn and udl.tl: k-MPNN messages (k=2 batched matmul, k=3
chunked contraction) against the naive broadcast-sum, the GIN layer against PyG's GINConv, and the
TL analyzer / evaluator. Run: .venv/bin/python -m pytest benchmarks/bench_gnn.py --benchmark-only
"""

from __future__ import annotations

import networkx as nx
import pytest
import torch

from udl import tl
from udl.gnn import GINLayer, KMPNNLayer
from udl.gnn.bench import naive_message
from udl.gnn.dense import nx_to_edge_index, tuple_mask
from udl.tl import architectures as A


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


def _message_inputs(k: int, b: int, n: int, c: int):
    torch.manual_seed(0)
    layer = KMPNNLayer(k, c, c, hidden=c)
    h = torch.randn(b, *([n] * k), c)
    adj = (torch.rand(b, n, n) < 0.3).float()
    return layer, h, adj, tuple_mask(torch.ones(b, n, dtype=torch.bool), k)


@pytest.mark.parametrize("impl", ["udl", "naive"])
def test_bench_2mpnn_message(benchmark, impl):
    layer, h, adj, tm = _message_inputs(2, 4, 48, 32)
    with torch.no_grad():
        if impl == "udl":
            benchmark(layer.message, h, adj, tm)
        else:
            benchmark(lambda: naive_message([g(h) for g in layer.g]))


@pytest.mark.parametrize("impl", ["udl", "naive"])
def test_bench_3mpnn_message(benchmark, impl):
    layer, h, adj, tm = _message_inputs(3, 1, 14, 16)
    with torch.no_grad():
        if impl == "udl":
            benchmark(layer.message, h, adj, tm)
        else:
            benchmark(lambda: naive_message([g(h) for g in layer.g]))


@pytest.mark.parametrize("impl", ["udl", "pyg"])
def test_bench_gin_layer(benchmark, impl):
    from torch_geometric.nn import GINConv

    n = 2000
    ei, _ = nx_to_edge_index(nx.gnp_random_graph(n, 8.0 / n, seed=1))
    x = torch.randn(n, 64)
    layer = GINLayer(64, 64)
    conv = GINConv(layer.mlp)
    with torch.no_grad():
        benchmark(layer if impl == "udl" else conv, x, ei)


def test_bench_analyze_architecture_table(benchmark):
    benchmark(A.table, 2, ["GIN", "GCN", "GAT", "PPGN / 2-FGNN", "2-MPNN", "3-MPNN"])


def test_bench_analyze_treewidth_grid(benchmark):
    grid = [f"x{i}" for i in range(1, 10)]
    edges = [(3 * i + j, 3 * i + j + 1) for i in range(3) for j in range(2)]
    edges += [(3 * i + j, 3 * (i + 1) + j) for i in range(2) for j in range(3)]
    e = tl.parse("sum_{" + ",".join(grid) + "} " + " * ".join(f"E({grid[a]},{grid[b]})" for a, b in edges))
    assert benchmark(tl.analyze, e).num_vars == 4


def test_bench_evaluate_2mpnn_expression(benchmark):
    from udl.gnn import KMPNN

    torch.manual_seed(0)
    model = KMPNN(2, 2, 1, 8, 1)
    emb, graph = A.kmpnn(2, 2)
    g = nx.gnp_random_graph(40, 0.2, seed=3)
    x = torch.ones(40, 1)
    with torch.no_grad():
        benchmark(tl.evaluate, graph, g, x, model.tl_functions())
