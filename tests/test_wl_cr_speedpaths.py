"""udl.wl colour refinement: the fast paths of the CPU kernel (giant classes split over threads,
bucket-local merging, 32/64-bit items, per-graph symmetry of a PyG Batch) and udl::wl_histogram,
checked against an independent torch implementation of the id convention."""

from __future__ import annotations

import pytest
import torch

import udl.wl as wl
from udl.ops.wl import wl_histogram, wl_refine
from udl.ops.wl_reference import cr_reference


def _torch_cr(dst, src, code, colors, num_codes, rounds=None):
    """Independent reference: per round, rows (own, degree, sorted items, padding) ranked with
    torch.unique(dim=0) (lexicographic). Items are code * N + colour; arcs as given."""
    N = colors.numel()
    deg = torch.bincount(dst, minlength=N)
    order = torch.argsort(dst, stable=True)
    d, s = dst[order], src[order]
    cd = code[order] if code.numel() else torch.zeros_like(d)
    start = torch.zeros(N + 1, dtype=torch.long)
    start[1:] = torch.cumsum(deg, 0)
    pos = torch.arange(d.numel()) - start[d]
    width = int(deg.max()) if N and d.numel() else 0
    hist = [colors.clone()]
    c = colors.clone()
    count = int(torch.unique(c).numel())
    while rounds is None or len(hist) - 1 < rounds:
        items = torch.full((N, width), -1, dtype=torch.long)
        items[d, pos] = cd * N + c[s]
        items = torch.sort(items, 1).values
        sig = torch.cat([c[:, None], deg[:, None], items], 1)
        _, new = torch.unique(sig, dim=0, sorted=True, return_inverse=True)
        if int(new.max()) + 1 == count:
            break
        c, count = new, int(new.max()) + 1
        hist.append(c)
    return hist


def _reference_history(batch):
    """The independent reference on a PyG Batch's arcs as given (dst = edge_index[1])."""
    ei = batch.edge_index
    return _torch_cr(ei[1].contiguous(), ei[0].contiguous(), torch.empty(0, dtype=torch.long),
                     torch.zeros(batch.num_nodes, dtype=torch.long), 1)


def _random_arcs(n, m, seed, codes=1):
    g = torch.Generator().manual_seed(seed)
    a = torch.randint(0, n, (2, m), generator=g)
    code = torch.randint(0, codes, (m,), generator=g) if codes > 1 else torch.empty(0, dtype=torch.long)
    return a[0].contiguous(), a[1].contiguous(), code


@pytest.mark.parametrize("threads", [1, 2])
def test_giant_classes_match_reference(threads):
    # 40k nodes, one initial class: round 1 is one giant bucket (split over threads), round 2 has
    # classes of > 2^14 members.
    n = 40_000
    dst, src, code = _random_arcs(n, 100_000, 0)
    colors = torch.zeros(n, dtype=torch.long)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        hist, counts = wl_refine(dst, src, code, colors, 1, 0, -1, True)
    finally:
        torch.set_num_threads(old)
    ref = _torch_cr(dst, src, code, colors, 1)
    assert [h.tolist() for h in hist.unbind(0)] == [r.tolist() for r in ref]
    assert counts.tolist() == [int(r.max()) + 1 for r in ref]


@pytest.mark.parametrize("threads", [1, 2])
def test_skewed_keys_in_a_large_class_match_reference(threads):
    # 3,000 nodes of one colour, each seeing 4 hubs and one marker whose colour is one of
    # {2..9} or {2050..2057}: the keys of the class differ in one isolated high bit and four low
    # bits, so the class sort's first digit (10 bits from the high one down) leaves six buckets of
    # about 500 that it must split again on their own lowest bits.
    members, hubs, markers = 3_000, 4, 16
    n = members + hubs + markers
    g = torch.Generator().manual_seed(11)
    colors = torch.zeros(n, dtype=torch.long)
    hub = torch.arange(members, members + hubs)
    colors[hub] = 1
    marker = torch.arange(members + hubs, n)
    colors[marker] = torch.tensor(list(range(2, 10)) + list(range(2050, 2058)))
    v = torch.arange(members)
    seen = torch.cat([hub.repeat_interleave(members), marker[torch.randint(0, markers, (members,),
                                                                           generator=g)]])
    dst = torch.cat([v.repeat(hubs), v])
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        hist, _ = wl_refine(dst, seen, torch.empty(0, dtype=torch.long), colors, 1, 0, -1, True)
    finally:
        torch.set_num_threads(old)
    ref = _torch_cr(dst, seen, torch.empty(0, dtype=torch.long), colors, 1)
    assert [h.tolist() for h in hist.unbind(0)] == [r.tolist() for r in ref]
    assert int(hist[1][:members].unique().numel()) == markers  # the class split by marker


@pytest.mark.parametrize("codes", [3, 70_000])
def test_codes_and_wide_items_match_reference(codes):
    # codes * colours above 2^32 forces 64-bit items.
    n = 5_000
    dst, src, code = _random_arcs(n, 15_000, 1, codes)
    colors = torch.randint(0, 4, (n,), generator=torch.Generator().manual_seed(2))
    hist, _ = wl_refine(dst, src, code, colors, codes, 0, -1, True)
    ref = _torch_cr(dst, src, code, colors, codes)
    assert [h.tolist() for h in hist.unbind(0)] == [r.tolist() for r in ref]


def test_sparse_initial_colours_keep_their_order():
    # Initial colours need not be dense: ids are ranks of (own, ...) so the order is kept.
    dst = torch.tensor([1, 0, 2, 3])
    src = torch.tensor([0, 1, 3, 2])
    colors = torch.tensor([3, 3, 0, 0, 4])  # values 1 and 2 unused
    hist, counts = wl_refine(dst, src, torch.empty(0, dtype=torch.long), colors, 1, 0, -1, True)
    ref = _torch_cr(dst, src, torch.empty(0, dtype=torch.long), colors, 1)
    assert [h.tolist() for h in hist.unbind(0)] == [r.tolist() for r in ref]
    assert counts.tolist()[0] == 3


def test_undirected_modes_agree_with_reference():
    rng_graphs = []
    g = torch.Generator().manual_seed(5)
    for _ in range(4):
        n = int(torch.randint(1, 12, (1,), generator=g))
        m = int(torch.randint(0, 20, (1,), generator=g))
        e = torch.randint(0, n, (m, 2), generator=g).tolist()
        rng_graphs.append((n, [tuple(x) for x in e], [0] * n, [0] * len(e)))
    ref = cr_reference(rng_graphs, False)
    tuples = [(torch.tensor(e, dtype=torch.long).reshape(-1, 2).t(), n) for n, e, _, _ in rng_graphs]
    res = wl.refine_batch(tuples, return_history=True)
    assert [h.tolist() for h in res.history] == ref


def test_batch_symmetry_is_decided_per_graph():
    from torch_geometric.data import Batch, Data

    both = torch.tensor([[0, 1, 1, 2], [1, 0, 2, 1]])  # a path listed in both directions
    once = torch.tensor([[0, 1], [1, 2]])  # the same path, one entry per edge
    gs = [Data(edge_index=both, num_nodes=3), Data(edge_index=once, num_nodes=3),
          Data(edge_index=torch.tensor([[0], [1]]), num_nodes=3)]
    rb = wl.refine_batch(Batch.from_data_list(gs), return_history=True)
    rl = wl.refine_batch(gs, return_history=True)
    assert [h.tolist() for h in rb.history] == [h.tolist() for h in rl.history]
    # graphs 0 and 1 are the same path: equal colours and histograms
    assert rb.colors_of(0).tolist() == rb.colors_of(1).tolist()
    assert rb.same_histogram(0, 1)


def test_batch_with_labels_matches_list():
    from torch_geometric.data import Batch, Data

    g = torch.Generator().manual_seed(3)
    gs = []
    for _ in range(30):
        n = int(torch.randint(3, 15, (1,), generator=g))
        e = torch.randint(0, n, (2, 2 * n), generator=g)
        e = torch.cat([e, e.flip(0)], 1)
        ea = torch.randint(0, 3, (e.shape[1] // 2,), generator=g).repeat(2)
        gs.append(Data(edge_index=e, num_nodes=n, x=torch.randint(0, 2, (n,), generator=g),
                       edge_attr=ea))
    rb = wl.refine_batch(Batch.from_data_list(gs), rounds=4, return_history=True)
    rl = wl.refine_batch(gs, rounds=4, return_history=True)
    assert [h.tolist() for h in rb.history] == [h.tolist() for h in rl.history]
    assert torch.equal(rb.graph_colors.to_dense(), rl.graph_colors.to_dense())


def test_graph_ptr_errors():
    d = torch.tensor([0, 1, 2, 3])
    s = torch.tensor([1, 0, 3, 2])
    z = torch.zeros(4, dtype=torch.long)
    e = torch.empty(0, dtype=torch.long)
    # The full messages, numbers included: a broken integer formatting (a second copy of
    # libstdc++ in the extension) cuts them at their first number.
    with pytest.raises(RuntimeError, match=r"graph_ptr must start at 0 and end at N=4, got 0 and 5"):
        wl_refine(d, s, e, z, 1, 2, -1, False, torch.tensor([0, 2, 5]))
    with pytest.raises(RuntimeError, match=r"graph_ptr must be non-decreasing, got 3 > 1 at graph 1"):
        wl_refine(d, s, e, z, 1, 2, -1, False, torch.tensor([0, 3, 1, 4]))
    with pytest.raises(RuntimeError,
                       match=r"arc 0 \(1 -> 0\) joins nodes of different graphs of graph_ptr"):
        wl_refine(d, s, e, z, 1, 2, -1, False, torch.tensor([0, 1, 4]))
    with pytest.raises(RuntimeError, match="graph_ptr must have dtype"):
        wl_refine(d, s, e, z, 1, 2, -1, False, torch.tensor([0.0, 4.0]))
    a = wl_refine(d, s, e, z, 1, 2, -1, False, torch.tensor([0, 2, 4]))
    b = wl_refine(d, s, e, z, 1, 2, -1, False)
    assert torch.equal(a[0], b[0])


def test_histogram_op():
    g = torch.Generator().manual_seed(0)
    sizes = [0, 5, 1, 5000, 17, 0]
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(torch.tensor(sizes), 0)
    C = 600
    colors = torch.randint(0, C, (int(ptr[-1]),), generator=g)
    idx, cnt = wl_histogram(colors, ptr, C)
    graph = torch.repeat_interleave(torch.arange(len(sizes)), torch.tensor(sizes))
    uniq, ref_cnt = torch.unique(graph * C + colors, sorted=True, return_counts=True)
    assert torch.equal(idx, torch.stack([uniq // C, uniq % C]))
    assert torch.equal(cnt, ref_cnt)
    with pytest.raises(RuntimeError, match="colors must lie in"):
        wl_histogram(colors, ptr, 10)
    short = ptr.clone()
    short[-1] -= 1
    with pytest.raises(RuntimeError, match="ptr must start at 0"):
        wl_histogram(colors, short, C)
    e_idx, e_cnt = wl_histogram(torch.empty(0, dtype=torch.long), torch.zeros(1, dtype=torch.long),
                                0)
    assert e_idx.shape == (2, 0) and e_cnt.shape == (0,)


def test_opcheck_graph_ptr_and_histogram():
    d = torch.tensor([0, 1, 2, 3, 3])
    s = torch.tensor([1, 0, 3, 2, 4])
    z = torch.zeros(5, dtype=torch.long)
    e = torch.empty(0, dtype=torch.long)
    utils = ("test_schema", "test_autograd_registration", "test_faketensor")
    torch.library.opcheck(torch.ops.udl.wl_refine.default,
                          (d, s, e, z, 1, 2, -1, True, torch.tensor([0, 2, 5])), test_utils=utils)
    torch.library.opcheck(torch.ops.udl.wl_histogram.default,
                          (torch.tensor([0, 1, 1, 2]), torch.tensor([0, 1, 4]), 3), test_utils=utils)
    torch.library.opcheck(torch.ops.udl.wl_refine_histogram.default,
                          (d, s, e, z, 1, 2, -1, torch.tensor([0, 2, 5])), test_utils=utils)
    torch.library.opcheck(torch.ops.udl.wl_refine_histogram.default, (d, s, e, z, 1, 0, 2, None),
                          test_utils=utils)


def _separate_calls(dst, src, code, colors, num_codes, arc_mode, rounds, ptr):
    out, counts = wl_refine(dst, src, code, colors, num_codes, arc_mode, rounds, False, ptr)
    whole = torch.tensor([0, colors.numel()]) if ptr is None else ptr
    return (out, counts, *wl_histogram(out[0], whole, int(counts[-1]) if colors.numel() else 0))


@pytest.mark.parametrize("threads", [1, 2])
def test_refine_histogram_matches_separate_calls(threads):
    # The fused op against wl_refine + wl_histogram: the small-graph path (its histograms read from
    # pass 3's order, rounds 1-5 and until stable), the general path (labels as codes, a long
    # graph, directed arcs), one graph without graph_ptr, empty graphs, no nodes at all.
    from udl.ops.wl import wl_refine_histogram

    small = _small_simple_batch(400, 43)
    sd, ss = small.edge_index[1].contiguous(), small.edge_index[0].contiguous()
    sz = torch.zeros(small.num_nodes, dtype=torch.long)
    e = torch.empty(0, dtype=torch.long)
    cases = [(sd, ss, e, sz, 1, 2, r, small.ptr) for r in (1, 2, 3, 4, 5, -1)]
    dst, src, code = _random_arcs(6000, 15000, 3, codes=3)
    labels = torch.randint(0, 4, (6000,), generator=torch.Generator().manual_seed(3))
    ptr = torch.tensor([0, 0, 5000, 5000, 6000])
    inside = (dst < 5000) == (src < 5000)  # arcs stay inside their graph
    cases += [(dst[inside], src[inside], code[inside], labels, 3, 0, r, ptr) for r in (1, 3, -1)]
    cases += [(dst, src, e, torch.zeros(6000, dtype=torch.long), 1, 1, -1, None),
              (e, e, e, e, 1, 2, -1, torch.tensor([0, 0, 0])), (e, e, e, e, 1, 2, 3, None)]
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for case in cases:
            fused = wl_refine_histogram(*case)
            separate = _separate_calls(*case)
            for got, want in zip(fused, separate):
                assert torch.equal(got, want), case[5:7]
    finally:
        torch.set_num_threads(old)


def test_deterministic_across_threads_batch():
    from udl.wl.bench import small_graph_batch

    graphs = small_graph_batch(300, seed=7)
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        a = wl.refine_batch(graphs, rounds=3)
        torch.set_num_threads(2)
        b = wl.refine_batch(graphs, rounds=3)
    finally:
        torch.set_num_threads(old)
    assert torch.equal(a.flat_colors(), b.flat_colors())
    assert torch.equal(a.graph_colors.to_dense(), b.graph_colors.to_dense())


def test_mirrored_and_shuffled_symmetric_lists_agree():
    # cat([e, e.flip(0)]) (fast path) and the same arcs shuffled (general path) are one graph.
    g = torch.Generator().manual_seed(11)
    e = torch.randint(0, 300, (2, 900), generator=g)
    e = e[:, e[0] != e[1]]  # a loop listed twice would be two loops
    both = torch.cat([e, e.flip(0)], 1)
    perm = torch.randperm(both.shape[1], generator=g)
    a = wl.refine((both, 300), return_history=True)
    b = wl.refine((both[:, perm], 300), return_history=True)
    c = wl.refine((e, 300), return_history=True)  # one entry per edge
    assert [h.tolist() for h in a.history] == [h.tolist() for h in b.history]
    assert [h.tolist() for h in a.history] == [h.tolist() for h in c.history]
    # Almost mirrored (one arc changed): not symmetric, so every entry is one edge.
    bad = both.clone()
    bad[0, -1] = (bad[0, -1] + 1) % 300
    d = wl.refine((bad, 300), return_history=True)
    ref = cr_reference([(300, [tuple(x) for x in bad.t().tolist()], [0] * 300,
                         [0] * bad.shape[1])], False)
    assert [h.tolist() for h in d.history] == ref


def _pyg_graphs(count, seed, empty_at=()):
    from torch_geometric.data import Data

    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        if i in empty_at:
            out.append(Data(edge_index=torch.empty(2, 0, dtype=torch.long), num_nodes=i % 3))
            continue
        n = int(torch.randint(2, 30, (1,), generator=g))
        e = torch.randint(0, n, (2, int(torch.randint(0, 3 * n, (1,), generator=g))), generator=g)
        out.append(Data(edge_index=torch.cat([e, e.flip(0)], 1), num_nodes=n))
    return out


def test_grouped_batch_fast_path_matches_general_path():
    # A Batch of cat([e, e.flip(0)]) graphs (with graphs of 0 nodes and without arcs, self-loops)
    # takes the per-graph one-pass build; the same arcs shuffled inside each graph, or with the
    # graphs' arc blocks out of order, take the general per-graph symmetry test.
    from torch_geometric.data import Batch

    gs = _pyg_graphs(60, 21, empty_at=(0, 7, 58, 59))
    batch = Batch.from_data_list(gs)
    fast = wl.refine_batch(batch, return_history=True)
    ei, ptr = batch.edge_index, batch.ptr
    per_graph = []
    g = torch.Generator().manual_seed(4)
    for k in range(len(gs)):
        block = ei[:, (ei[1] >= ptr[k]) & (ei[1] < ptr[k + 1])]
        per_graph.append(block[:, torch.randperm(block.shape[1], generator=g)])
    shuffled = batch.clone()
    shuffled.edge_index = torch.cat(per_graph, 1)
    reordered = batch.clone()
    reordered.edge_index = torch.cat(per_graph[::-1], 1)
    for other in (shuffled, reordered):
        slow = wl.refine_batch(other, return_history=True)
        assert [h.tolist() for h in fast.history] == [h.tolist() for h in slow.history]
    # and against the independent reference on the arcs as given
    ref = _reference_history(batch)
    assert [h.tolist() for h in fast.history] == [r.tolist() for r in ref]
    assert torch.equal(fast.graph_colors.to_dense(),
                       wl.refine_batch(gs).graph_colors.to_dense())


def test_workspace_reuse_across_calls():
    # The kernel keeps its buffers between calls: alternate graphs with and without codes and of
    # different sizes, each checked against the reference.
    cases = [(_random_arcs(3000, 9000, 30, codes=4), 4), (_random_arcs(500, 800, 31), 1),
             (_random_arcs(3000, 9000, 30, codes=4), 4), (_random_arcs(40, 10, 32), 1)]
    for (dst, src, code), K in cases * 2:
        n = 3000 if K == 4 else int(max(dst.max(), src.max())) + 1
        colors = torch.zeros(n, dtype=torch.long)
        hist, _ = wl_refine(dst, src, code, colors, K, 0, -1, True)
        ref = _torch_cr(dst, src, code, colors, K)
        assert [h.tolist() for h in hist.unbind(0)] == [r.tolist() for r in ref]


@pytest.mark.parametrize("hubs", [200, 1500])
def test_truncated_keys_tie_break_on_the_remaining_items(hubs):
    # Hubs see the same 20 labelled leaves first and differ only in their last neighbour: with 13-bit
    # items their keys hold 4 (64-bit) or 9 (128-bit) items, so every hub key is truncated and all
    # hubs tie on it. 200 hubs: 64-bit keys; 1500 hubs (> 1/16 of the nodes truncated): 128-bit.
    leaves = 5000
    hub = torch.arange(hubs) + leaves
    common = torch.arange(20).repeat(hubs)
    src = torch.cat([common, 20 + torch.arange(hubs) % 3])
    dst = torch.cat([hub.repeat_interleave(20), hub])
    dst, src = torch.cat([dst, src]), torch.cat([src, dst])  # both directions
    colors = torch.cat([torch.arange(leaves) + 1, torch.zeros(hubs, dtype=torch.long)])
    hist, _ = wl_refine(dst, src, torch.empty(0, dtype=torch.long), colors, 1, 0, -1, True)
    ref = _torch_cr(dst, src, torch.empty(0, dtype=torch.long), colors, 1)
    assert [h.tolist() for h in hist.unbind(0)] == [r.tolist() for r in ref]
    assert len(set(hist[-1, leaves:].tolist())) == 3  # the hubs split by their last leaf


def test_mirrored_layouts_still_check_ranges():
    # The L ++ reverse(L) fast paths check the ids themselves: bad ids in a mirrored list (single
    # graph and batch) get the same messages as on the general path, never a crash.
    e = torch.empty(0, dtype=torch.long)
    z = torch.zeros(4, dtype=torch.long)
    for bad in (-1, 4, 10**12):
        L = torch.tensor([[0, 1], [1, bad]])
        both = torch.cat([L, L.flip(0)], 1)
        with pytest.raises(RuntimeError, match=r"(dst|src) must lie in \[0, N=4\)"):
            wl_refine(both[1].contiguous(), both[0].contiguous(), e, z, 1, 2, -1, False)
        for gptr in (torch.tensor([0, 2, 4]), torch.tensor([0, 0, 2, 4, 4])):
            with pytest.raises(RuntimeError, match=r"(dst|src) must lie in \[0, N=4\)"):
                wl_refine(both[1].contiguous(), both[0].contiguous(), e, z, 1, 2, -1, False, gptr)
    # an arc from graph 0 into graph 1 of a mirrored batch
    L = torch.tensor([[0, 2], [1, 3]])
    cross = torch.tensor([[0], [2]])
    arcs = torch.cat([L[:, :1], cross, L[:, :1].flip(0), cross.flip(0)], 1)
    with pytest.raises(RuntimeError, match="joins nodes of different graphs"):
        wl_refine(arcs[1].contiguous(), arcs[0].contiguous(), e, z, 1, 2, -1, False,
                  torch.tensor([0, 2, 4]))
    with pytest.raises(RuntimeError, match="code must lie in"):
        wl_refine(torch.tensor([0, 1]), torch.tensor([1, 0]), torch.tensor([0, 5]),
                  torch.zeros(2, dtype=torch.long), 2, 2, -1, False)


@pytest.mark.parametrize("num_colors", [7, 2**31 - 2, 2**31])
def test_histogram_of_short_segments_matches_unique(num_colors):
    # Segments of 1..70 elements (the branch-free path up to 64 when there are at most 2^25
    # colours, the sorting path otherwise) with repeated and distinct values at both ends of the
    # value range.
    g = torch.Generator().manual_seed(3)
    sizes = torch.randint(1, 71, (300,), generator=g)
    ptr = torch.zeros(len(sizes) + 1, dtype=torch.long)
    ptr[1:] = torch.cumsum(sizes, 0)
    N = int(ptr[-1])
    low = torch.randint(0, min(num_colors, 5), (N,), generator=g)
    high = num_colors - 1 - torch.randint(0, min(num_colors, 5), (N,), generator=g)
    spread = torch.randint(0, num_colors, (N,), generator=g)
    pick = torch.randint(0, 3, (N,), generator=g)
    colors = torch.where(pick == 0, low, torch.where(pick == 1, high, spread))
    idx, cnt = wl_histogram(colors, ptr, num_colors)
    graph = torch.repeat_interleave(torch.arange(len(sizes)), sizes)
    uniq, ref_cnt = torch.unique(graph * num_colors + colors, sorted=True, return_counts=True)
    assert torch.equal(idx, torch.stack([uniq // num_colors, uniq % num_colors]))
    assert torch.equal(cnt, ref_cnt)


@pytest.mark.parametrize("threads", [1, 2])
def test_many_graph_batch_fixed_rounds_match_reference(threads):
    # Hundreds of graphs (several chunks of graphs per thread, their arc blocks found by search),
    # fixed round counts (the last round writes only the colours) against the reference; then the
    # same arcs with two graphs' blocks interleaved, which must leave the fast path, not the answer.
    from torch_geometric.data import Batch

    old = torch.get_num_threads()
    torch.set_num_threads(threads)
    try:
        batch = Batch.from_data_list(_pyg_graphs(400, 8, empty_at=(3, 200, 399)))
        ei, ptr = batch.edge_index, batch.ptr
        ref = _reference_history(batch)
        for r in range(1, len(ref) + 1):
            res = wl.refine_batch(batch, rounds=r)
            assert res.colors.tolist() == ref[min(r, len(ref) - 1)].tolist()
        k = 100  # swap the last arc of graph k with the first arc of graph k + 1
        end = int(((ei[1] >= ptr[k]) & (ei[1] < ptr[k + 1])).nonzero().max())
        mixed = batch.clone()
        perm = torch.arange(ei.shape[1])
        perm[end], perm[end + 1] = end + 1, end
        mixed.edge_index = ei[:, perm]
        assert int(mixed.edge_index[1, end]) >= int(ptr[k + 1])  # blocks no longer grouped
        res = wl.refine_batch(mixed, return_history=True)
        assert [h.tolist() for h in res.history] == [h.tolist() for h in ref]
    finally:
        torch.set_num_threads(old)


@pytest.mark.parametrize("bad", [-1, 6, 10**12])
def test_batch_ids_out_of_range_are_value_errors(bad):
    # A Batch's ids are checked by the kernel (no separate pass in Python): still a ValueError.
    from torch_geometric.data import Batch, Data

    e = torch.tensor([[0, 1], [1, 2]])
    good = Data(edge_index=torch.cat([e, e.flip(0)], 1), num_nodes=3)
    for directed in (None, True):
        batch = Batch.from_data_list([good, good])
        batch.edge_index[0, -1] = bad  # the last arc of graph 1 (nodes 3..5)
        with pytest.raises(ValueError, match=r"outside \[0, num_nodes=6\)"):
            wl.refine_batch(batch, directed=directed)


def _degree_capped_batch(count, seed, hub_degree):
    """Simple graphs of 30 nodes, average degree ~8, every degree <= 15, except that graph 0's
    node 0 gets ``hub_degree`` neighbours."""
    from torch_geometric.data import Batch, Data

    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        n = 30
        key = torch.unique(torch.randint(0, n * n, (160,), generator=g))
        a, b = key // n, key % n
        keep = a < b
        a, b = a[keep], b[keep]
        deg = torch.bincount(torch.cat([a, b]), minlength=n).tolist()
        ok = [True] * a.numel()  # drop edges at nodes above degree 15 (plain lists: fast)
        for k, (u, v) in enumerate(zip(a.tolist(), b.tolist())):
            if deg[u] > 15 or deg[v] > 15:
                ok[k] = False
                deg[u] -= 1
                deg[v] -= 1
        ok = torch.tensor(ok, dtype=torch.bool)
        a, b = a[ok], b[ok]
        if i == 0:
            others = torch.arange(1, n)
            others = others[~torch.isin(others, torch.cat([b[a == 0], a[b == 0]]))]
            extra = hub_degree - int(((a == 0) | (b == 0)).sum())
            a = torch.cat([a, torch.zeros(extra, dtype=torch.long)])
            b = torch.cat([b, others[:extra]])
        e = torch.stack([a, b])
        out.append(Data(edge_index=torch.cat([e, e.flip(0)], 1), num_nodes=n))
    return Batch.from_data_list(out)


@pytest.mark.parametrize("hub_degree", [15, 16])
@pytest.mark.parametrize("threads", [1, 2])
def test_signature_keys_after_the_degree_round(hub_degree, threads):
    # Batches whose degrees are all <= 15 rank the round after the degree round from keys packed
    # by the build (hash tables per chunk of nodes, grown past their first size here: thousands of
    # distinct signatures); a node of degree 16 sends the batch through the general rounds. Both
    # must agree with the independent reference and with the general path (arcs shuffled).
    batch = _degree_capped_batch(1200, 5, hub_degree)
    deg = torch.bincount(batch.edge_index[1], minlength=batch.num_nodes)
    assert int(deg.max()) == hub_degree
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        fast = wl.refine_batch(batch, return_history=True)
        shuffled = batch.clone()
        perm = torch.randperm(batch.edge_index.shape[1], generator=torch.Generator().manual_seed(1))
        shuffled.edge_index = batch.edge_index[:, perm]
        slow = wl.refine_batch(shuffled, return_history=True)
    finally:
        torch.set_num_threads(old)
    assert fast.colors_per_round[2] > 4096
    assert [h.tolist() for h in fast.history] == [h.tolist() for h in slow.history]
    ref = _reference_history(batch)
    assert [h.tolist() for h in fast.history] == [r.tolist() for r in ref]


def _small_simple_batch(count, seed, sizes=(0, 64), max_degree=15):
    """Simple graphs of ``sizes[0]..sizes[1]`` nodes (graph 1 has exactly ``sizes[1]``), listed as
    cat([e, e.flip(0)]), every degree <= ``max_degree``: the batches of the small-graph path."""
    from torch_geometric.data import Batch, Data

    g = torch.Generator().manual_seed(seed)
    out = []
    for i in range(count):
        n = sizes[1] if i == 1 else int(torch.randint(sizes[0], sizes[1] + 1, (1,), generator=g))
        m = int(torch.randint(0, 4 * n + 1, (1,), generator=g)) if n > 1 else 0
        key = torch.unique(torch.randint(0, max(n * n, 1), (m,), generator=g))
        a, b = key // max(n, 1), key % max(n, 1)
        keep = a < b
        a, b = a[keep].tolist(), b[keep].tolist()
        deg = [0] * n
        edges = []
        for u, v in zip(a, b):
            if deg[u] < max_degree and deg[v] < max_degree:
                deg[u] += 1
                deg[v] += 1
                edges.append((u, v))
        e = torch.tensor(edges, dtype=torch.long).reshape(-1, 2).t()
        out.append(Data(edge_index=torch.cat([e, e.flip(0)], 1), num_nodes=n))
    return Batch.from_data_list(out)


@pytest.mark.parametrize("threads", [1, 2])
def test_small_graph_batches_match_reference(threads):
    # Batches of simple graphs of at most 64 nodes and degree at most 15 (with graphs of 0 and 1
    # nodes, isolated nodes and one graph of exactly 64 nodes) run their first three rounds graph
    # by graph; every round count, with and without history, against the independent reference.
    batch = _small_simple_batch(700, 41)
    assert int(batch.ptr.diff().max()) == 64
    ref = _reference_history(batch)
    assert len(ref) > 4  # rounds past the third continue on the general path
    old = torch.get_num_threads()
    try:
        torch.set_num_threads(threads)
        for r in [1, 2, 3, 4, None]:
            res = wl.refine_batch(batch, rounds=r, return_history=True)
            want = ref[: (len(ref) if r is None else r + 1)]
            assert [h.tolist() for h in res.history[: len(want)]] == [w.tolist() for w in want]
            plain = wl.refine_batch(batch, rounds=r)
            assert plain.colors.tolist() == want[-1].tolist()
            assert plain.colors_per_round == res.colors_per_round
    finally:
        torch.set_num_threads(old)


def test_small_graph_batches_dense_rows_tie_on_truncated_keys():
    # Thousands of round-2 colours: round-3 keys hold 4 items. Each hub (degree 15) sees 14 leaves
    # and one path node w whose own neighbour x has degree 1, 2 or 3: all hubs share their round-2
    # colour and the first 14 items of their round-3 rows, so their keys tie and only the last
    # item (w's colour), read from the neighbour sets, tells them apart.
    from torch_geometric.data import Batch, Data

    graphs = _degree_capped_batch(600, 9, 15).to_data_list()
    for i in range(30):
        extra = i % 3  # x's extra leaves
        hub, leaves, w, x = 0, list(range(1, 15)), 15, 16
        edges = [(hub, u) for u in leaves] + [(hub, w), (w, x)]
        edges += [(x, 17 + j) for j in range(extra)]
        e = torch.tensor(edges).t()
        graphs.append(Data(edge_index=torch.cat([e, e.flip(0)], 1), num_nodes=17 + extra))
    batch = Batch.from_data_list(graphs)
    res = wl.refine_batch(batch, rounds=3, return_history=True)
    assert res.colors_per_round[2] > 1000
    assert [h.tolist() for h in res.history] == [r.tolist() for r in _reference_history(batch)[:4]]
    hubs = batch.ptr[600:-1]
    assert len(set(res.colors[hubs].tolist())) == 3  # split by the last item only


@pytest.mark.parametrize("change", ["65 nodes", "degree 16", "multi-edge", "self-loop"])
def test_batches_just_outside_the_small_graph_path(change):
    # One graph breaks one condition of the small-graph path: the batch takes the general path,
    # with the same answer as the reference on the arcs as given.
    from torch_geometric.data import Batch, Data

    graphs = _small_simple_batch(60, 42).to_data_list()
    e = graphs[5].edge_index[:, : graphs[5].edge_index.shape[1] // 2]
    n = graphs[5].num_nodes
    if change == "65 nodes":
        n = 65
        e = torch.cat([e, torch.tensor([[0], [64]])], 1)
    elif change == "degree 16":
        n = max(n, 17)
        e = torch.cat([e, torch.stack([torch.full((16,), n - 1), torch.arange(16)])], 1)
    elif change == "multi-edge":
        e = torch.cat([e, e[:, :1]], 1)
    else:
        e = torch.cat([e, torch.tensor([[0], [0]])], 1)
    graphs[5] = Data(edge_index=torch.cat([e, e.flip(0)], 1), num_nodes=n)
    batch = Batch.from_data_list(graphs)
    res = wl.refine_batch(batch, return_history=True)
    assert [h.tolist() for h in res.history] == [r.tolist() for r in _reference_history(batch)]


def test_small_graph_batches_stop_when_stable():
    # Cycles only: one degree, stable before round 1. Cycles and a path, two 3-node paths: the
    # rounds stop when nothing splits, inside the first three rounds.
    import networkx as nx
    from torch_geometric.data import Batch, Data
    from torch_geometric.utils import from_networkx

    for graphs in ([nx.cycle_graph(5), nx.cycle_graph(7)],
                   [nx.cycle_graph(6), nx.path_graph(4), nx.path_graph(4)],
                   [nx.path_graph(3), nx.star_graph(4)],
                   [nx.path_graph(3), nx.star_graph(2)]):  # stable after round 1
        batch = Batch.from_data_list([from_networkx(G) for G in graphs])
        ref = _reference_history(batch)
        res = wl.refine_batch(batch, return_history=True)
        assert [h.tolist() for h in res.history] == [r.tolist() for r in ref]
        assert res.rounds == len(ref) - 1
        # The same graphs as the small-graph path's layout (cat([e, e.flip(0)])), without the
        # history: round 1's colours are written only if they are the answer. (A call on another
        # batch with its history first leaves other colours in the reused buffers.)
        halves = [torch.tensor(list(G.edges)).t() for G in graphs]
        mirrored = Batch.from_data_list([Data(edge_index=torch.cat([e, e.flip(0)], 1),
                                              num_nodes=G.number_of_nodes())
                                         for e, G in zip(halves, graphs)])
        ref = _reference_history(mirrored)
        for r in (None, 1, 2, 3):
            wl.refine_batch(_small_simple_batch(20, 5), rounds=3, return_history=True)
            plain = wl.refine_batch(mirrored, rounds=r)
            assert plain.colors.tolist() == ref[min(len(ref) - 1, 3 if r is None else r)].tolist()
