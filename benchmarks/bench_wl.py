"""pytest-benchmark timings of udl.wl (modest sizes; ``udl bench --only wl`` has the peer ratios).

Run: ``.venv/bin/python -m pytest benchmarks/bench_wl.py --benchmark-only``
"""

from __future__ import annotations

import networkx as nx
import pytest
import torch

import udl.wl as wl
from udl.wl.bench import random_graph, small_graph_batch


@pytest.fixture(scope="module")
def big_graph():
    n = 20_000
    return random_graph(n, 100_000), n


@pytest.fixture(scope="module")
def small_batch():
    from torch_geometric.data import Batch, Data

    graphs = small_graph_batch(1_000)
    return Batch.from_data_list([Data(edge_index=e, num_nodes=k) for e, k in graphs])


def test_cr_random_graph_to_stability(benchmark, big_graph):
    ei, n = big_graph
    res = benchmark(wl.refine, (ei, n))
    assert res.stable


def test_networkx_same_graph(benchmark, big_graph):
    ei, n = big_graph
    G = nx.Graph()
    G.add_nodes_from(range(n))
    G.add_edges_from(ei[:, : ei.shape[1] // 2].t().tolist())
    rounds = wl.refine((ei, n)).rounds
    benchmark.pedantic(nx.weisfeiler_lehman_graph_hash, args=(G,),
                       kwargs={"iterations": rounds}, rounds=1, iterations=1)


def test_cr_batch_of_small_graphs(benchmark, small_batch):
    res = benchmark(wl.refine_batch, small_batch, rounds=3)
    assert res.num_graphs == 1_000


def test_two_fwl_brec_basic(benchmark):
    from udl.data.brec import load_brec

    pairs = load_brec(["basic"])
    graphs = [g for p in pairs for g in (p.g1, p.g2)]
    res = benchmark(wl.refine_batch, graphs, "2-fwl")
    cls = res.graph_classes()
    assert all(int(cls[2 * i]) != int(cls[2 * i + 1]) for i in range(len(pairs)))


def test_three_fwl_rook_shrikhande(benchmark):
    rook = nx.cartesian_product(nx.complete_graph(4), nx.complete_graph(4))
    shr = nx.Graph()
    for a in range(4):
        for b in range(4):
            for da, db in ((0, 1), (1, 0), (1, 1)):
                shr.add_edge((a, b), ((a + da) % 4, (b + db) % 4))
    same = benchmark(wl.equivalent, rook, shr, "3-fwl")
    assert not same
    assert torch.get_num_threads() >= 1
