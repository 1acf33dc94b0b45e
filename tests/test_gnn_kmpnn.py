"""udl.gnn: k-MPNN layers, batching, memory guard, and the bounds being tight in practice."""

from __future__ import annotations

import networkx as nx
import pytest
import torch

from udl.gnn import GIN, KMPNN, IGNLayer, KGNNLayer, KMPNNLayer, to_dense_graphs, tuple_features
from udl.gnn.separation import embed_pair, rook_4x4, separates, shrikhande

DT = torch.float64
C6 = nx.cycle_graph(6)
TWO_C3 = nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))


pytestmark = pytest.mark.usefixtures("one_thread")


def _seeded(cls, *args, seed=0, **kw):
    torch.manual_seed(seed)
    return cls(*args, **kw).to(DT).eval()


# ------------------------------------------------------------------------------- known pairs

@pytest.mark.parametrize("seed", [0, 1])
def test_gin_cannot_separate_cr_equivalent_pairs(seed):
    gin = _seeded(GIN, 3, 1, 16, 4, seed=seed)
    assert not separates(gin, rook_4x4(), shrikhande())
    assert not separates(gin, C6, TWO_C3)
    assert separates(gin, nx.path_graph(6), C6)  # sanity: different degree sequences


@pytest.mark.parametrize("seed", [0, 1])
def test_2mpnn_separates_c6_but_not_srg_pair(seed):
    m = _seeded(KMPNN, 2, 2, 1, 16, 4, seed=seed)
    assert separates(m, C6, TWO_C3)                   # 2-FWL counts triangles
    assert not separates(m, rook_4x4(), shrikhande())  # both SRG(16,6,2,2): 2-FWL-equivalent


def test_3mpnn_separates_rook_and_shrikhande():
    m = _seeded(KMPNN, 3, 2, 1, 8, 4, aggr="mean")
    assert separates(m, rook_4x4(), shrikhande())     # 3-FWL sees the K4s of the rook's graph


def test_1mpnn_and_global_readout_are_cr_at_graph_level():
    m = _seeded(KMPNN, 1, 3, 1, 16, 4)
    glob = _seeded(GIN, 3, 1, 16, 4, global_readout=True)
    for model in (m, glob):
        assert not separates(model, C6, TWO_C3)
        assert not separates(model, rook_4x4(), shrikhande())


def _pyg_stack(kind: str, seed: int = 0):
    pyg_nn = pytest.importorskip("torch_geometric.nn")
    torch.manual_seed(seed)
    make = {
        "gcn": lambda i: pyg_nn.GCNConv(i, 8),
        "sage": lambda i: pyg_nn.SAGEConv(i, 8, aggr="mean"),
        "gat": lambda i: pyg_nn.GATConv(i, 8, heads=1),
        "cheb": lambda i: pyg_nn.ChebConv(i, 8, K=3),
    }[kind]
    convs = torch.nn.ModuleList([make(1), make(8), make(8)]).to(DT)

    class Stack(torch.nn.Module):
        def embed(self, g):
            from udl.gnn.dense import nx_to_edge_index

            ei, n = nx_to_edge_index(g)
            h = torch.ones(n, 1, dtype=DT)
            for c in convs:
                h = torch.relu(c(h, ei))
            return h.sum(0, keepdim=True)

    return Stack()


@pytest.mark.parametrize("kind", ["gcn", "sage", "gat", "cheb"])
def test_cr_bounded_pyg_layers_cannot_separate_regular_pairs(kind):
    # the table bounds GCN, GraphSAGE, GAT and ChebNet (λ_max constant) by colour refinement
    model = _pyg_stack(kind)
    assert not separates(model, rook_4x4(), shrikhande())
    assert not separates(model, C6, TWO_C3)
    assert separates(model, nx.path_graph(4), nx.path_graph(5))  # sanity: the read-out counts


def test_2fwl_bounded_tuple_layers_cannot_separate_srg_pair():
    rook, shri = rook_4x4(), shrikhande()
    torch.manual_seed(0)
    for layer_cls, k in ((IGNLayer, 3), (KGNNLayer, 3), (IGNLayer, 2)):
        outs = []
        for g in (rook, shri):
            graphs = to_dense_graphs(g, DT)
            h = tuple_features(graphs, k)
            torch.manual_seed(1)
            layer = layer_cls(k, h.shape[-1], 4).to(DT)
            outs.append(layer(h).flatten(1, k).sum(1))
        torch.testing.assert_close(outs[0], outs[1], rtol=1e-12, atol=0)


# ----------------------------------------------------------------------------------- batching

@pytest.mark.parametrize("k", [1, 2, 3])
def test_batched_padding_matches_single_graphs(k):
    graphs = [nx.cycle_graph(5), nx.path_graph(3), nx.complete_graph(4)]
    m = _seeded(KMPNN, k, 2, 1, 6, 2)
    batched = m(graphs)
    singles = torch.cat([m(g) for g in graphs])
    torch.testing.assert_close(batched, singles, rtol=1e-10, atol=1e-12)
    from torch_geometric.data import Batch, Data

    from udl.gnn.dense import nx_to_edge_index

    datas = []
    for g in graphs:
        ei, n = nx_to_edge_index(g)
        datas.append(Data(x=torch.ones(n, 1), edge_index=ei, num_nodes=n))
    torch.testing.assert_close(m(Batch.from_data_list(datas)), singles, rtol=1e-10, atol=1e-12)


@pytest.mark.parametrize("k", [2, 3])
def test_kmpnn_invariant_under_relabelling(k):
    g = nx.gnp_random_graph(7, 0.4, seed=2)
    perm = list(torch.randperm(7).tolist())
    h = nx.relabel_nodes(g, dict(zip(range(7), perm)))
    h = nx.convert_node_labels_to_integers(h, ordering="sorted")
    m = _seeded(KMPNN, k, 2, 1, 6, 3)
    e1, e2 = embed_pair(m, g, h)
    torch.testing.assert_close(e1, e2, rtol=1e-12, atol=1e-12)


def test_kmpnn_gradients_flow():
    m = KMPNN(2, 2, 1, 4, 1).to(DT)
    out = m([C6, TWO_C3]).sum()
    out.backward()
    assert all(p.grad is not None for p in m.parameters())


def test_gin_on_pyg_batch_matches_singles():
    from torch_geometric.data import Batch, Data

    from udl.gnn.dense import nx_to_edge_index

    m = _seeded(GIN, 2, 1, 8, 3)
    graphs = [nx.cycle_graph(4), nx.star_graph(3)]
    datas = [Data(edge_index=nx_to_edge_index(g)[0], num_nodes=g.number_of_nodes()) for g in graphs]
    torch.testing.assert_close(m(Batch.from_data_list(datas)), torch.cat([m(g) for g in graphs]))


# --------------------------------------------------------------------------------- bad inputs

def test_memory_guard_refuses_big_graphs():
    m = KMPNN(3, 1, 1, 16, 1, max_bytes=1 << 20)
    with pytest.raises(ValueError, match=r"KMPNN\(k=3\).*above max_bytes"):
        m(nx.cycle_graph(40))
    m.max_bytes = 1 << 30
    assert m(nx.cycle_graph(8)).shape == (1, 1)


def test_bad_arguments():
    with pytest.raises(ValueError, match="k: expected 1, 2 or 3"):
        KMPNNLayer(4, 2, 2)
    with pytest.raises(ValueError, match="aggr"):
        KMPNNLayer(2, 2, 2, aggr="max")
    with pytest.raises(ValueError, match="in_channels"):
        KMPNN(2, 1, in_channels=0)
    layer = KMPNNLayer(2, 3, 4)
    with pytest.raises(ValueError, match="expected 3 channels"):
        layer(torch.zeros(1, 4, 4, 2), torch.zeros(1, 4, 4))
    with pytest.raises(ValueError, match="adj: expected shape"):
        layer(torch.zeros(1, 4, 4, 3), torch.zeros(1, 5, 5))
    with pytest.raises(ValueError, match=r"h: expected \[B, N\^2"):
        layer(torch.zeros(4, 4, 3), torch.zeros(1, 4, 4))
    m = KMPNN(2, 1, in_channels=2)
    with pytest.raises(ValueError, match="x: expected 2 vertex feature channels"):
        m(C6)
    with pytest.raises(TypeError, match="data: expected"):
        m("not a graph")


def test_empty_and_isolated_graphs():
    m = _seeded(KMPNN, 2, 2, 1, 4, 2)
    g = nx.empty_graph(3)
    assert torch.isfinite(m(g)).all()
    one = nx.empty_graph(1)
    assert m(one).shape == (1, 2)
    # the empty graph: the read-out sums over nothing, so the output is head(0)
    empty = m(nx.empty_graph(0))
    torch.testing.assert_close(empty, m.head(torch.zeros(1, 4, dtype=DT)))
    # graphs that differ only by an isolated vertex are separated (2-FWL sees the vertex count)
    assert separates(m, nx.empty_graph(2), nx.empty_graph(3))


@pytest.mark.cuda
@pytest.mark.parametrize("k", [1, 2, 3])
def test_kmpnn_cuda_matches_cpu(k):
    m = _seeded(KMPNN, k, 2, 1, 6, 2)
    graphs = [nx.cycle_graph(5), nx.path_graph(4)]
    cpu = m(graphs)
    gpu = m.to("cuda")(graphs)
    assert gpu.device.type == "cuda"
    torch.testing.assert_close(gpu.cpu(), cpu, rtol=1e-9, atol=1e-9)


@pytest.mark.cuda
def test_gin_cuda_matches_cpu():
    m = _seeded(GIN, 2, 1, 8, 3)
    cpu = m(C6)
    torch.testing.assert_close(m.to("cuda")(C6).cpu(), cpu, rtol=1e-9, atol=1e-9)


def test_cfi_pairs_are_tight_for_the_bounds():
    from udl.gnn.separation import cfi_pair

    a3, b3 = cfi_pair(nx.complete_graph(3))
    assert a3.number_of_nodes() == b3.number_of_nodes() == 18 and not nx.is_isomorphic(a3, b3)
    assert not separates(_seeded(GIN, 3, 1, 16, 4), a3, b3)    # tw(K3) = 2 > 1: CR fails
    a4, b4 = cfi_pair(nx.complete_graph(4))
    assert a4.number_of_nodes() == 40
    assert not separates(_seeded(KMPNN, 2, 3, 1, 16, 4), a4, b4)  # tw(K4) = 3 > 2: 2-FWL fails
    with pytest.raises(ValueError, match="connected"):
        cfi_pair(nx.empty_graph(2))
