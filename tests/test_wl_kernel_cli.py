"""udl.wl.WLHistogram (WL subtree kernel) against grakel, and the ``udl wl`` command line."""

from __future__ import annotations

import networkx as nx
import pytest
import torch

import udl.wl as wl


def _graphs(count: int = 12):
    out = []
    for s in range(count):
        g = nx.gnm_random_graph(6 + s % 5, 8 + s % 7, seed=s)
        g.add_edges_from((v, v + 1) for v in range(g.number_of_nodes() - 1))  # no isolated nodes
        nx.set_node_attributes(g, {v: (v * 7 + s) % 3 for v in g.nodes}, "label")
        out.append(g)
    return out


def test_wl_kernel_matches_grakel():
    grakel = pytest.importorskip("grakel")
    from grakel.kernels import VertexHistogram, WeisfeilerLehman

    graphs = _graphs()
    gk = [grakel.Graph([tuple(e) for e in g.edges] + [tuple(reversed(e)) for e in g.edges],
                       node_labels=dict(g.nodes(data="label"))) for g in graphs]
    ref = WeisfeilerLehman(n_iter=3, base_graph_kernel=VertexHistogram, normalize=False)
    K_gk = torch.as_tensor(ref.fit_transform(gk), dtype=torch.float64)
    K = wl.WLHistogram(rounds=3, node_labels="label").fit(graphs).kernel()
    torch.testing.assert_close(K, K_gk)


def test_wl_histogram_transform_uses_fitted_columns():
    graphs = _graphs()
    h = wl.WLHistogram(rounds=2, node_labels="label")
    F = h.fit_transform(graphs[:8]).to_dense()
    T = h.transform(graphs[:8]).to_dense()
    torch.testing.assert_close(F, T)
    new = h.transform(graphs[8:]).to_dense()
    assert new.shape == (4, h.num_features)
    # Round-0 counts of the new graphs are exact (labels 0..2 all occur in the fitted graphs).
    sizes = torch.tensor([g.number_of_nodes() for g in graphs[8:]], dtype=torch.float64)
    torch.testing.assert_close(new[:, :3].sum(1), sizes)
    K = h.kernel(graphs[8:])
    assert K.shape == (4, 8)
    Kn = wl.WLHistogram(rounds=2, node_labels="label", normalize=True).fit(graphs).kernel()
    torch.testing.assert_close(torch.diagonal(Kn), torch.ones(len(graphs), dtype=torch.float64))
    with pytest.raises(RuntimeError, match="fit"):
        wl.WLHistogram().transform(graphs)
    with pytest.raises(ValueError, match="rounds"):
        wl.WLHistogram(rounds=-1)


def test_cli_refine_and_equivalent(tmp_path, capsys):
    from udl.cli import main

    c6 = tmp_path / "c6.txt"
    c6.write_text("\n".join(f"{i} {(i + 1) % 6}" for i in range(6)))
    tri = tmp_path / "2c3.txt"
    tri.write_text("0 1\n1 2\n2 0\n3 4\n4 5\n5 3\n")
    assert main(["wl", "refine", str(c6)]) == 0
    assert '"num_colors": 1' in capsys.readouterr().out
    assert main(["wl", "equivalent", str(c6), str(tri)]) == 0
    assert main(["wl", "equivalent", str(c6), str(tri), "--method", "2-fwl"]) == 1
    assert "distinguished" in capsys.readouterr().out
    assert main(["wl", "refine", str(tmp_path / "missing.txt")]) == 2
    assert main(["wl", "brec", "--method", "cr", "--categories", "basic"]) == 0
    assert "0/60" in capsys.readouterr().out
