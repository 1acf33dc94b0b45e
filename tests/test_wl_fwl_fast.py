"""The fast 2-FWL equivalence test (udl::wl_pair_equivalent) against plain 2-FWL refinement."""

from __future__ import annotations

import random

import networkx as nx
import pytest
import torch

import udl.wl as wl
from udl.data.brec import load_brec
from udl.wl import _graphs
from udl.wl.core import _pair_equivalent, equivalent_pairs


def _plain(g1, g2, **kw) -> bool:
    """Not distinguished by plain canonical 2-FWL: equal histograms at the stable colouring."""
    return wl.refine_batch([g1, g2], "2-fwl", **kw).same_histogram(0, 1)


def _fast(pairs, hash_bits=0, **kw) -> list[bool]:
    u = _graphs.build_union([g for p in pairs for g in p], **kw)
    return _pair_equivalent(u, torch.device("cpu"), 2**40, "2-fwl", hash_bits)


@pytest.fixture(scope="module")
def brec():
    return load_brec()


def test_brec_counts_per_category(brec):
    eq = equivalent_pairs([(p.g1, p.g2) for p in brec], "2-fwl")
    got: dict[str, int] = {}
    for p, e in zip(brec, eq):
        got[p.category] = got.get(p.category, 0) + int(not e)
    assert got == {"basic": 60, "regular": 50, "strongly_regular": 0, "extension": 100,
                   "cfi": 60, "4vertex": 0, "distance_regular": 0}
    assert sum(got.values()) == 270


def test_fast_path_matches_plain_refine_on_brec_sample(brec):
    sample = [p for p in brec[::6] if p.g1.number_of_nodes() <= 90]
    assert len(sample) >= 50
    plain = [_plain(p.g1, p.g2) for p in sample]
    assert _fast([(p.g1, p.g2) for p in sample]) == plain
    assert [wl.equivalent(p.g1, p.g2, "2-fwl") for p in sample] == plain
    # Both outcomes are represented (CFI #0-59 distinguished, #60-99 not; SRGs not).
    assert any(plain) and not all(plain)


@pytest.mark.parametrize("bits", [1, 3])
def test_forced_hash_collisions_stay_exact(brec, bits):
    # Tiny random weights make the grouping hash merge classes, so the exact stability check
    # fails and the exact sort-based rounds must finish the job: same answers as plain 2-FWL.
    sample = [p for p in brec if p.g1.number_of_nodes() <= 20][::3]
    sample += [p for p in brec if p.category in ("cfi", "strongly_regular")
               and p.g1.number_of_nodes() <= 26]
    plain = [_plain(p.g1, p.g2) for p in sample]
    assert _fast([(p.g1, p.g2) for p in sample], hash_bits=bits) == plain
    assert any(plain) and not all(plain)


def _random_pair(rng: random.Random, directed: bool):
    n = rng.randrange(1, 9)
    G = nx.MultiDiGraph() if directed else nx.MultiGraph()
    G.add_nodes_from(range(n))
    for _ in range(rng.randrange(0, 2 * n + 1)):
        G.add_edge(rng.randrange(n), rng.randrange(n), lab=rng.randrange(2))  # loops, multi-edges
    for v in G.nodes:
        G.nodes[v]["lab"] = rng.randrange(2)
    if rng.random() < 0.5:  # an isomorphic copy (must never be distinguished)
        perm = list(range(n))
        rng.shuffle(perm)
        H = nx.relabel_nodes(G, dict(zip(range(n), perm)))
        H = type(G)(H.subgraph(sorted(H.nodes)))
        H2 = type(G)()
        H2.add_nodes_from(sorted(H.nodes(data=True)))
        H2.add_edges_from(H.edges(data=True))
        return G, H2
    G2 = nx.MultiDiGraph() if directed else nx.MultiGraph()
    G2.add_nodes_from(G.nodes(data=True))
    edges = list(G.edges(data=True))
    if edges:  # rewire one edge: often (not always) distinguishable
        edges[rng.randrange(len(edges))] = (rng.randrange(n), rng.randrange(n),
                                            {"lab": rng.randrange(2)})
    G2.add_edges_from(edges)
    return G, G2


@pytest.mark.parametrize("directed", [False, True])
@pytest.mark.parametrize("labels", [False, True])
def test_random_labelled_pairs_match_plain_refine(directed, labels):
    rng = random.Random(7 + directed + 2 * labels)
    pairs = [_random_pair(rng, directed) for _ in range(40)]
    kw = dict(node_labels="lab", edge_labels="lab") if labels else \
        dict(node_labels=False, edge_labels=False)
    plain = [_plain(a, b, **kw) for a, b in pairs]
    for bits in (0, 1):
        assert _fast(pairs, hash_bits=bits, **kw) == plain
    assert equivalent_pairs(pairs, "2-fwl", **kw) == plain
    assert any(plain) and not all(plain)


def test_known_pairs_and_edge_cases():
    c6, two_c3 = nx.cycle_graph(6), nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))
    k33, prism = nx.complete_bipartite_graph(3, 3), nx.circular_ladder_graph(3)
    rook = nx.cartesian_product(nx.complete_graph(4), nx.complete_graph(4))
    shr = nx.Graph()
    for a in range(4):
        for b in range(4):
            for da, db in ((0, 1), (1, 0), (1, 1)):
                shr.add_edge((a, b), ((a + da) % 4, (b + db) % 4))
    pairs = [(c6, two_c3), (k33, prism), (rook, shr), (nx.Graph(), nx.Graph()),
             (nx.path_graph(3), nx.path_graph(4)), (nx.empty_graph(3), nx.empty_graph(3))]
    assert equivalent_pairs(pairs) == [False, False, True, True, False, True]
    assert [wl.equivalent(a, b, "2-fwl") for a, b in pairs] == [False, False, True, True, False,
                                                                 True]
    assert equivalent_pairs([]) == []
    # Other methods loop over equivalent().
    assert equivalent_pairs(pairs[:2], "cr") == [True, True]


def test_equivalent_fixed_rounds_still_uses_plain_rounds():
    c6, two_c3 = nx.cycle_graph(6), nx.disjoint_union(nx.cycle_graph(3), nx.cycle_graph(3))
    assert wl.equivalent(c6, two_c3, "2-fwl", rounds=0)
    assert not wl.equivalent(c6, two_c3, "2-fwl", rounds=None)


def test_thread_count_does_not_change_answers(brec):
    sample = [(p.g1, p.g2) for p in brec[::9]]
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = equivalent_pairs(sample)
        torch.set_num_threads(2)
        b = equivalent_pairs(sample)
    finally:
        torch.set_num_threads(old)
    assert a == b


def test_bad_inputs():
    op = torch.ops.udl.wl_pair_equivalent
    z = torch.zeros(2, dtype=torch.long)
    with pytest.raises(RuntimeError, match="even number of graphs"):
        op(z, torch.zeros(4, dtype=torch.long), torch.tensor([2]), 0)
    with pytest.raises(RuntimeError, match="node_colors must have"):
        op(z, torch.zeros(8, dtype=torch.long), torch.tensor([2, 2]), 0)
    with pytest.raises(RuntimeError, match="pair_type must have"):
        op(torch.zeros(4, dtype=torch.long), z, torch.tensor([2, 2]), 0)
    with pytest.raises(RuntimeError, match="pair_type must be >= 0"):
        op(torch.zeros(4, dtype=torch.long), -torch.ones(8, dtype=torch.long),
           torch.tensor([2, 2]), 0)
    with pytest.raises(RuntimeError, match="node_colors must have dtype"):
        op(torch.zeros(4), torch.zeros(8, dtype=torch.long), torch.tensor([2, 2]), 0)
    with pytest.raises(RuntimeError, match="hash_bits must lie"):
        op(torch.zeros(4, dtype=torch.long), torch.zeros(8, dtype=torch.long),
           torch.tensor([2, 2]), 40)
    with pytest.raises(ValueError, match=r"pairs\[0\] must be a pair"):
        equivalent_pairs([nx.path_graph(3)])
    with pytest.raises(ValueError, match="node_labels"):
        equivalent_pairs([(nx.path_graph(3), nx.path_graph(3))], node_labels=[torch.zeros(3)])
    with pytest.raises(MemoryError, match="memory_limit"):
        equivalent_pairs([(nx.path_graph(30), nx.path_graph(30))], memory_limit=1000)


def test_opcheck():
    nc = torch.tensor([0, 0, 1, 0, 0, 1])
    pt = torch.tensor([0, 1, 0, 1, 0, 1, 0, 1, 0] * 2)
    torch.library.opcheck(torch.ops.udl.wl_pair_equivalent.default,
                          (nc, pt, torch.tensor([3, 3]), 0),
                          test_utils=("test_schema", "test_autograd_registration",
                                      "test_faketensor"))
    out = torch.ops.udl.wl_pair_equivalent(nc, pt, torch.tensor([3, 3]), 0)
    assert out.dtype == torch.bool and out.tolist() == [True]
    # Non-contiguous inputs.
    nc2 = torch.stack([nc, nc], 1)[:, 0]
    assert not nc2.is_contiguous()
    assert torch.ops.udl.wl_pair_equivalent(nc2, pt, torch.tensor([3, 3]), 0).tolist() == [True]


@pytest.mark.cuda
def test_cuda_matches_cpu(brec):
    sample = [(p.g1, p.g2) for p in brec[::4] if p.g1.number_of_nodes() <= 80]
    assert equivalent_pairs(sample, device="cuda") == equivalent_pairs(sample)
    rng = random.Random(3)
    pairs = [_random_pair(rng, True) for _ in range(30)]
    kw = dict(node_labels="lab", edge_labels="lab")
    assert equivalent_pairs(pairs, device="cuda", **kw) == equivalent_pairs(pairs, **kw)


def test_many_new_classes_in_one_round():
    # Random graphs: 3 atomic types split into hundreds of classes in round 1 (the id table of
    # the hashed rounds must grow), and an isomorphic copy must stay undistinguished.
    pairs = []
    for s in range(4):
        g = nx.gnp_random_graph(40, 0.3, seed=s)
        perm = list(range(40))
        random.Random(s).shuffle(perm)
        h = nx.relabel_nodes(g, dict(zip(range(40), perm)))
        h = nx.Graph(h.subgraph(range(40)))
        h2 = nx.Graph()
        h2.add_nodes_from(range(40))
        h2.add_edges_from(h.edges)
        pairs += [(g, h2), (g, nx.gnp_random_graph(40, 0.3, seed=s + 10))]
    res = wl.refine_batch([pairs[0][0]], "2-fwl", rounds=1)
    assert res.num_colors > 200
    plain = [_plain(a, b) for a, b in pairs]
    assert plain == [True, False] * 4
    assert _fast(pairs) == plain
    assert _fast(pairs, hash_bits=2) == plain
