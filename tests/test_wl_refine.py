"""udl.wl colour refinement and k-WL against the pure-Python reference, known facts and bad input."""

from __future__ import annotations

import random

import networkx as nx
import pytest
import torch

import udl.wl as wl
from udl.ops.wl_reference import cr_reference, kwl_reference


def _random_graph(rng: random.Random, n: int, m: int, labels: int, elabels: int,
                  directed: bool = False, loops: bool = True, multi: bool = True):
    edges = []
    for _ in range(m if n else 0):
        u, v = rng.randrange(n), rng.randrange(n)
        if u == v and not loops:
            continue
        edges.append((u, v))
    if not multi:
        seen, uniq = set(), []
        for u, v in edges:
            key = (u, v) if directed else (min(u, v), max(u, v))
            if key not in seen:
                seen.add(key)
                uniq.append((u, v))
        edges = uniq
    nl = [rng.randrange(labels) for _ in range(n)] if labels else None
    el = [rng.randrange(elabels) for _ in edges] if elabels else None
    return n, edges, nl, el


def _as_tuple(g):
    n, edges, _, _ = g
    ei = torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t()
    return (ei, n)


def _as_read(g, directed: bool):
    """The graph as udl reads an undirected tensor graph (documented in ``refine_batch``): an arc
    list whose multiset, with edge labels, equals its reverse lists every edge in both directions,
    so it is one entry per edge (the arcs u <= v); any other list is a list of edges. The
    references take edge lists, so they get this reading."""
    n, edges, nl, el = g
    if directed or not edges:
        return g
    labels = el if el is not None else [0] * len(edges)
    arcs = sorted((u, v, lab) for (u, v), lab in zip(edges, labels))
    if arcs != sorted((v, u, lab) for (u, v), lab in zip(edges, labels)):
        return g
    keep = [i for i, (u, v) in enumerate(edges) if u <= v]
    return (n, [edges[i] for i in keep], nl, [el[i] for i in keep] if el is not None else None)


def _run(graphs, method, directed, rounds=None, history=True):
    return wl.refine_batch(
        [_as_tuple(g) for g in graphs], method, rounds=rounds,
        node_labels=[torch.tensor(g[2]) if g[2] is not None else torch.zeros(g[0], dtype=torch.long)
                     for g in graphs],
        edge_labels=[torch.tensor(g[3], dtype=torch.long) if g[3] is not None
                     else torch.zeros(len(g[1]), dtype=torch.long) for g in graphs],
        directed=directed, return_history=history)


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("seed", range(6))
def test_cr_matches_reference_ids(directed, seed):
    rng = random.Random(seed)
    graphs = [_random_graph(rng, rng.randrange(0, 14), rng.randrange(0, 30), rng.choice([0, 3]),
                            rng.choice([0, 2]), directed) for _ in range(5)]
    # Labels must be given for all graphs or none: fill defaults consistently.
    graphs = [(n, e, nl if nl is not None else [0] * n, el if el is not None else [0] * len(e))
              for n, e, nl, el in graphs]
    ref = cr_reference([_as_read(g, directed) for g in graphs], directed)
    res = _run(graphs, "cr", directed)
    assert [h.tolist() for h in res.history] == ref
    assert res.rounds == len(ref) - 1 and res.stable
    assert res.colors.tolist() == ref[-1]
    assert res.colors_per_round == [len(set(r)) for r in ref]


# Fixed seeds (hash() of a str is salted per process, which made this test draw new graphs on
# every run). Seeds 22 and 234 draw small undirected graphs whose arc lists are symmetric (e.g. the
# arcs 0-1, 1-0 and the loop 0-0), which udl reads as one entry per edge (see _as_read).
@pytest.mark.parametrize("method", ["1-fwl", "2-fwl", "2-owl", "3-owl", "3-fwl"])
@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("seed", [0, 1, 2, 22, 234])
def test_kwl_matches_reference_ids(method, directed, seed):
    kind, k = wl.parse_method(method)
    rng = random.Random(seed)
    nmax = 7 if k == 3 else 9
    graphs = [_random_graph(rng, rng.randrange(0, nmax), rng.randrange(0, 14), 2, 2, directed)
              for _ in range(3)]
    ref = kwl_reference([_as_read(g, directed) for g in graphs], k, kind, directed)
    res = _run(graphs, method, directed)
    assert [h.tolist() for h in res.history] == ref


def test_symmetric_arc_list_is_one_entry_per_edge():
    # The documented reading of an undirected tensor graph: a list holding every arc both ways is
    # one entry per edge; the same pair listed twice one way is a double edge, which colour
    # refinement and 2-FWL both see. (0-1, 1-0, 1-2 alone is not symmetric: a double 0-1 edge.)
    both = (torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]]), 3)
    once = (torch.tensor([[0, 1], [1, 2]]), 3)
    double = (torch.tensor([[0, 0, 1], [1, 1, 2]]), 3)
    half = (torch.tensor([[0, 1, 1], [1, 0, 2]]), 3)
    for method in ("cr", "2-fwl"):
        r = wl.refine_batch([both, once, double, half], method)
        assert r.same_histogram(0, 1)
        assert not r.same_histogram(0, 2)
        assert r.same_histogram(2, 3)


def test_fixed_rounds_and_history_shapes():
    g = nx.path_graph(7)
    r0 = wl.refine(g, rounds=0)
    assert r0.colors.tolist() == [0] * 7 and r0.rounds == 0
    r1 = wl.refine(g, rounds=1, return_history=True)
    assert r1.colors.tolist() == [0, 1, 1, 1, 1, 1, 0] and len(r1.history) == 2
    full = wl.refine(g, return_history=True)
    assert full.rounds == 3 and full.stable and len(full.history) == 4
    many = wl.refine(g, rounds=6, return_history=True)
    assert many.rounds == 6 and len(many.history) == 7 and many.stable
    assert torch.equal(many.colors, full.colors)
    t = wl.refine(nx.cycle_graph(5), "2-fwl")
    assert t.colors.shape == (5, 5)
    assert wl.refine(nx.cycle_graph(4), "3-fwl").colors.shape == (4, 4, 4)


def test_known_pairs():
    c6, two_c3 = nx.cycle_graph(6), nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))
    assert wl.equivalent(c6, two_c3, "cr")
    assert not wl.equivalent(c6, two_c3, "2-fwl")
    assert not wl.equivalent(c6, two_c3, "3-owl")
    assert wl.equivalent(c6, two_c3, "2-owl")
    k33 = nx.complete_bipartite_graph(3, 3)
    prism = nx.circular_ladder_graph(3)
    assert wl.equivalent(k33, prism, "cr")
    assert not wl.equivalent(k33, prism, "2-fwl")
    c7, c3c4 = nx.cycle_graph(7), nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(4))
    assert wl.equivalent(c7, c3c4, "cr") and not wl.equivalent(c7, c3c4, "2-fwl")
    # 1-FWL (CR + global information) separates a C3 vertex from a C4 vertex, CR does not.
    assert wl.equivalent_vertices(nx.cycle_graph(3), 0, nx.cycle_graph(4), 0, "cr")
    assert not wl.equivalent_vertices(nx.cycle_graph(3), 0, nx.cycle_graph(4), 0, "1-fwl")


def _shrikhande():
    g = nx.Graph()
    for a in range(4):
        for b in range(4):
            for da, db in ((0, 1), (1, 0), (1, 1)):
                g.add_edge((a, b), ((a + da) % 4, (b + db) % 4))
    return g


def test_rook_vs_shrikhande():
    rook = nx.cartesian_product(nx.complete_graph(4), nx.complete_graph(4))
    shr = _shrikhande()
    assert sorted(d for _, d in shr.degree()) == [6] * 16
    assert wl.equivalent(rook, shr, "cr")
    assert wl.equivalent(rook, shr, "2-fwl")
    assert wl.equivalent(rook, shr, "3-owl")
    assert not wl.equivalent(rook, shr, "3-fwl")


def test_two_fwl_equals_three_owl_on_random_pairs():
    rng = random.Random(5)
    for _ in range(8):
        n = rng.randrange(4, 8)
        g1 = nx.gnm_random_graph(n, rng.randrange(n, 2 * n), seed=rng.randrange(10**6))
        g2 = nx.gnm_random_graph(n, g1.number_of_edges(), seed=rng.randrange(10**6))
        r2 = wl.refine_batch([g1, g2], "2-fwl")
        r3 = wl.refine_batch([g1, g2], "3-owl")
        assert r2.same_histogram(0, 1) == r3.same_histogram(0, 1)
        # Same vertex-level partition (diagonal tuples) too.
        p2 = torch.cat([r2.node_colors_of(0), r2.node_colors_of(1)])
        p3 = torch.cat([r3.node_colors_of(0), r3.node_colors_of(1)])
        assert torch.equal(p2[:, None] == p2[None, :], p3[:, None] == p3[None, :])


@pytest.mark.parametrize("method", ["cr", "2-fwl", "2-owl", "1-fwl"])
def test_equivalent_early_exit_matches_full_refinement(method):
    rng = random.Random(11)
    for _ in range(6):
        n = rng.randrange(3, 9)
        g1 = nx.gnm_random_graph(n, rng.randrange(0, 2 * n), seed=rng.randrange(10**6))
        g2 = nx.gnm_random_graph(n, g1.number_of_edges(), seed=rng.randrange(10**6))
        for rounds in (None, 1, 2):
            full = wl.refine_batch([g1, g2], method, rounds=rounds).same_histogram(0, 1)
            assert wl.equivalent(g1, g2, method, rounds=rounds) == full
    assert not wl.equivalent(nx.path_graph(3), nx.path_graph(4))


def test_two_fwl_equals_three_owl_on_brec_basic():
    from udl.data.brec import load_brec

    pairs = load_brec(["basic"])[:6]
    for p in pairs:
        assert wl.equivalent(p.g1, p.g2, "cr")
        assert (not wl.equivalent(p.g1, p.g2, "2-fwl")) == (not wl.equivalent(p.g1, p.g2, "3-owl"))


def test_cfi_pair_from_brec():
    from udl.data.brec import load_brec

    pair = load_brec(["cfi"])[0]
    assert wl.equivalent(pair.g1, pair.g2, "cr")
    assert not wl.equivalent(pair.g1, pair.g2, "2-fwl")


def test_networkx_delimiter_collision_is_distinguished():
    g1, g2 = nx.Graph(), nx.Graph()
    g1.add_node(0, label="1")
    g1.add_node(1, label="212")
    g1.add_edge(0, 1)
    g2.add_node(0, label="2")
    g2.add_node(1, label="121")
    g2.add_edge(0, 1)
    h1 = nx.weisfeiler_lehman_graph_hash(g1, node_attr="label", iterations=3)
    h2 = nx.weisfeiler_lehman_graph_hash(g2, node_attr="label", iterations=3)
    assert h1 == h2  # networkx's collision, documented in the method notes
    assert not wl.equivalent(g1, g2, "cr", node_labels="label")
    assert not wl.equivalent(g1, g2, "2-fwl", node_labels="label")


@pytest.mark.parametrize("method", ["cr", "2-fwl", "3-owl"])
def test_permutation_invariance(method):
    g = nx.gnm_random_graph(9, 16, seed=3)
    for v in g.nodes:
        g.nodes[v]["label"] = v % 3
    perm = list(range(9))
    random.Random(1).shuffle(perm)
    h = nx.relabel_nodes(g, {v: perm[v] for v in g.nodes})
    h = nx.Graph(h.subgraph(range(9)))  # node order 0..8 after relabelling
    h.add_nodes_from(sorted(h.nodes(data=True)))
    order = list(h.nodes)
    res = wl.refine_batch([g, h], method, node_labels="label")
    c1, c2 = res.colors_of(0), res.colors_of(1)
    pos = torch.tensor([order.index(perm[v]) for v in range(9)])
    if res.k == 1:
        assert torch.equal(c1, c2[pos])
    else:
        idx = torch.meshgrid(*([pos] * res.k), indexing="ij")
        assert torch.equal(c1, c2[idx])


def test_multi_edges_self_loops_and_directed():
    # A multi-edge counts twice: a double edge differs from a single edge.
    m1 = nx.MultiGraph([(0, 1), (0, 1), (1, 2)])
    m2 = nx.MultiGraph([(0, 1), (1, 2), (1, 2)])
    s = nx.Graph([(0, 1), (1, 2)])
    assert wl.equivalent(m1, m2, "cr")
    assert not wl.equivalent(m1, s, "cr")
    assert not wl.equivalent(m1, s, "2-fwl")
    # A self-loop is seen.
    loop = nx.Graph([(0, 1), (1, 2), (2, 2)])
    assert not wl.equivalent(loop, s, "cr")
    # Direction matters: in- and out-multisets are separate.
    a = nx.DiGraph([(0, 1), (0, 2)])
    b = nx.DiGraph([(1, 0), (2, 0)])
    assert not wl.equivalent(a, b, "cr")
    assert wl.equivalent(a.to_undirected(), b.to_undirected(), "cr")
    # Directed cycle vs path plus back edge, same in/out degrees everywhere:
    c = nx.DiGraph([(0, 1), (1, 2), (2, 0), (3, 4), (4, 5), (5, 3)])
    d = nx.DiGraph([(i, (i + 1) % 6) for i in range(6)])
    assert wl.equivalent(c, d, "cr") and not wl.equivalent(c, d, "2-fwl")


def test_edge_labels_matter():
    g1 = nx.path_graph(3)
    g2 = nx.path_graph(3)
    nx.set_edge_attributes(g1, {(0, 1): 1, (1, 2): 2}, "t")
    nx.set_edge_attributes(g2, {(0, 1): 1, (1, 2): 1}, "t")
    assert not wl.equivalent(g1, g2, "cr", edge_labels="t")
    assert wl.equivalent(g1, g2, "cr")
    assert not wl.equivalent(g1, g2, "2-fwl", edge_labels="t")


def test_pyg_symmetric_edge_index_is_one_edge_each():
    from torch_geometric.utils import from_networkx

    g = nx.gnm_random_graph(12, 20, seed=0)
    data = from_networkx(g)
    assert data.edge_index.shape[1] == 40
    assert wl.equivalent(g, data, "cr")
    assert wl.equivalent(g, data, "2-fwl")
    r_nx = wl.refine(g)
    r_pyg = wl.refine(data)
    assert torch.equal(r_nx.colors, r_pyg.colors)
    # One-direction tensor input gives the same colours as well.
    ei = torch.tensor(list(g.edges)).t()
    assert torch.equal(wl.refine((ei, 12)).colors, r_nx.colors)


def test_pyg_batch_and_labels():
    from torch_geometric.data import Batch, Data

    graphs = []
    for s in range(5):
        g = nx.gnm_random_graph(8, 10, seed=s)
        ei = torch.tensor(list(g.edges)).t()
        ei = torch.cat([ei, ei.flip(0)], 1)
        x = torch.nn.functional.one_hot(torch.arange(8) % 2, 2).float()
        graphs.append(Data(edge_index=ei, x=x, num_nodes=8))
    batch = Batch.from_data_list(graphs)
    rb = wl.refine_batch(batch)
    rl = wl.refine_batch(graphs)
    assert torch.equal(rb.flat_colors(), rl.flat_colors())
    assert rb.num_graphs == 5
    # x is used as labels by default, and can be switched off.
    off = wl.refine_batch(graphs, node_labels=False)
    assert off.colors_per_round[0] == 1 and rl.colors_per_round[0] == 2


def test_histograms_and_classes():
    gs = [nx.cycle_graph(6), nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3)),
          nx.path_graph(6), nx.cycle_graph(6)]
    res = wl.refine_batch(gs)
    assert res.graph_colors.shape == (4, res.num_colors)
    assert res.histogram(0) == res.histogram(1) == res.histogram(3)
    assert res.histogram(0) != res.histogram(2)
    cls = res.graph_classes()
    assert cls[0] == cls[1] == cls[3] != cls[2]
    assert sum(res.histogram(2).values()) == 6


def test_partition():
    p = wl.partition(nx.path_graph(5))
    assert sorted(map(sorted, p)) == [[0, 4], [1, 3], [2]]
    p2 = wl.partition(nx.complete_graph(3), "2-fwl")
    assert len(p2) == 2 and sorted(len(c) for c in p2) == [3, 6]
    assert all(isinstance(t, tuple) and len(t) == 2 for c in p2 for t in c)


def test_pynauty_orbits_refine_cr_classes():
    pynauty = pytest.importorskip("pynauty")
    for seed in range(4):
        g = nx.gnm_random_graph(12, 18, seed=seed)
        adj = {v: list(g[v]) for v in g.nodes}
        _, _, _, orbits, _ = pynauty.autgrp(pynauty.Graph(12, adjacency_dict=adj))
        colors = wl.refine(g).colors.tolist()
        for v in range(12):
            assert colors[v] == colors[orbits[v]]


def test_empty_and_isolated():
    empty = wl.refine((torch.empty(2, 0, dtype=torch.long), 0))
    assert empty.colors.numel() == 0 and empty.num_colors == 0
    iso = wl.refine((torch.empty(2, 0, dtype=torch.long), 4))
    assert iso.colors.tolist() == [0, 0, 0, 0] and iso.rounds == 0
    assert wl.refine((torch.empty(2, 0, dtype=torch.long), 0), "2-fwl").colors.shape == (0, 0)
    r = wl.refine_batch([nx.empty_graph(0), nx.path_graph(3), nx.empty_graph(2)])
    assert r.num_nodes.tolist() == [0, 3, 2]
    assert wl.refine_batch([], "cr").num_graphs == 0


def test_bad_inputs():
    with pytest.raises(ValueError, match="negative node id"):
        wl.refine((torch.tensor([[0, -1], [1, 0]]), 2))
    with pytest.raises(ValueError, match="num_nodes is 2"):
        wl.refine((torch.tensor([[0, 2], [1, 0]]), 2))
    with pytest.raises(ValueError, match=r"shape \[2, E\]"):
        wl.refine((torch.tensor([[0, 1, 2]]), 3))
    with pytest.raises(ValueError, match="integer tensor"):
        wl.refine((torch.tensor([[0.0], [1.0]]), 2))
    with pytest.raises(ValueError, match="node_labels has 2 entries, expected 3"):
        wl.refine(nx.path_graph(3), node_labels=torch.tensor([1, 2]))
    with pytest.raises(ValueError, match="edge_labels has 1 entries, expected 2"):
        wl.refine(nx.path_graph(3), edge_labels=torch.tensor([1]))
    with pytest.raises(ValueError, match="NaN"):
        wl.refine(nx.path_graph(3), node_labels=torch.tensor([1.0, float("nan"), 0.0]))
    with pytest.raises(ValueError, match="k must be 1, 2 or 3"):
        wl.refine(nx.path_graph(3), "4-fwl")
    with pytest.raises(ValueError, match="1-OWL is not defined"):
        wl.refine(nx.path_graph(3), "1-owl")
    with pytest.raises(ValueError, match="unknown"):
        wl.refine(nx.path_graph(3), "wl-magic")
    with pytest.raises(ValueError, match="rounds must be"):
        wl.refine(nx.path_graph(3), rounds=-2)
    with pytest.raises(ValueError, match="unsupported graph type"):
        wl.refine([1, 2, 3])
    with pytest.raises(ValueError, match="has no attribute 'label'"):
        wl.refine(nx.path_graph(3), node_labels="label")
    with pytest.raises(ValueError, match="v1 must be a node position"):
        wl.equivalent_vertices(nx.path_graph(3), 5, nx.path_graph(3), 0)
    with pytest.raises(MemoryError, match="memory_limit"):
        wl.refine(nx.path_graph(300), "3-fwl")
    with pytest.raises(MemoryError, match="bytes"):
        wl.refine(nx.path_graph(20), "2-fwl", memory_limit=1000)


def test_float_labels_negative_zero():
    g = nx.path_graph(2)
    a = wl.refine_batch([g, g], node_labels=[torch.tensor([0.0, 1.5]), torch.tensor([-0.0, 1.5])])
    assert a.same_histogram(0, 1)


def test_native_op_errors():
    op = torch.ops.udl.wl_refine
    d = torch.tensor([0, 1])
    z = torch.zeros(2, dtype=torch.long)
    with pytest.raises(RuntimeError, match="dst must lie in"):
        op(torch.tensor([0, 5]), d, z, z, 1, 0, -1, False)
    with pytest.raises(RuntimeError, match="code must lie in"):
        op(d, d, torch.tensor([0, 3]), z, 1, 0, -1, False)
    with pytest.raises(RuntimeError, match="colors must have dtype"):
        op(d, d, z, torch.zeros(2), 1, 0, -1, False)
    with pytest.raises(RuntimeError, match="same length"):
        op(d, d[:1], z, z, 1, 0, -1, False)
    with pytest.raises(RuntimeError, match="arc_mode must be"):
        op(d, d, z, z, 1, 3, -1, False)
    with pytest.raises(RuntimeError, match="colors must lie in"):
        op(d, d, z, torch.tensor([0, 7]), 1, 0, -1, False)
    top = torch.ops.udl.wl_refine_tuples
    with pytest.raises(RuntimeError, match="k must be 2 or 3"):
        top(torch.zeros(16, dtype=torch.long), torch.tensor([2]), torch.empty(0, dtype=torch.long),
            4, 0, -1, False)
    with pytest.raises(RuntimeError, match="colors must have"):
        top(torch.zeros(3, dtype=torch.long), torch.tensor([2]), torch.empty(0, dtype=torch.long),
            2, 0, -1, False)


def test_opcheck():
    from udl.wl import _graphs

    g = nx.gnm_random_graph(10, 15, seed=1)
    u = _graphs.build_union([g])
    dst, src, code, K, mode = _graphs.arcs(u)
    colors = torch.zeros(10, dtype=torch.long)
    torch.library.opcheck(torch.ops.udl.wl_refine.default,
                          (dst, src, code, colors, K, mode, -1, True),
                          test_utils=("test_schema", "test_autograd_registration",
                                      "test_faketensor"))
    torch.library.opcheck(torch.ops.udl.wl_refine_tuples.default,
                          (torch.zeros(16, dtype=torch.long), torch.tensor([4]),
                           torch.empty(0, dtype=torch.long), 2, 0, 2, False),
                          test_utils=("test_schema", "test_autograd_registration",
                                      "test_faketensor"))


def test_noncontiguous_inputs_to_op():
    g = nx.gnm_random_graph(10, 15, seed=2)
    from udl.wl import _graphs

    u = _graphs.build_union([g])
    dst, src, code, K, mode = _graphs.arcs(u)
    colors = torch.zeros(10, dtype=torch.long)
    a = torch.ops.udl.wl_refine(dst, src, code, colors, K, mode, -1, False)
    both = torch.stack([dst, src], 1)  # columns are non-contiguous views
    b = torch.ops.udl.wl_refine(both[:, 0], both[:, 1], code, colors, K, mode, -1, False)
    assert not both[:, 0].is_contiguous()
    assert torch.equal(a[0], b[0])


def test_deterministic_across_threads():
    g = nx.gnm_random_graph(3000, 9000, seed=4)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = wl.refine(g).colors
        torch.set_num_threads(2)
        b = wl.refine(g).colors
    finally:
        torch.set_num_threads(old)
    assert torch.equal(a, b)


@pytest.mark.cuda
@pytest.mark.parametrize("method", ["cr", "1-fwl", "2-fwl", "2-owl", "3-owl", "3-fwl"])
def test_cuda_matches_cpu(method):
    rng = random.Random(0)
    gs = [nx.gnm_random_graph(rng.randrange(3, 9), rng.randrange(3, 14), seed=s) for s in range(6)]
    cpu = wl.refine_batch(gs, method, return_history=True)
    gpu = wl.refine_batch(gs, method, return_history=True, device="cuda")
    assert [h.tolist() for h in cpu.history] == [h.tolist() for h in gpu.history]
    big = nx.gnm_random_graph(20000, 80000, seed=1)
    assert torch.equal(wl.refine(big).colors, wl.refine(big, device="cuda").colors)
