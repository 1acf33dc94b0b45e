"""TL(Ω) core: builders, parser round-trips and errors, analysis (minimum variables), evaluate."""

from __future__ import annotations

import itertools

import networkx as nx
import pytest
import torch

from udl import tl
from udl.tl import architectures as A

x1, x2, x3, x4 = tl.vars("x1 x2 x3 x4")
DT = torch.float64


pytestmark = pytest.mark.usefixtures("one_thread")


# ----------------------------------------------------------------------------------- parser

ROUND_TRIP = [
    "sum_{x2} E(x1,x2) * P0(x2)",
    "mlp(P(x1) + sum_{x2} E(x1,x2) * P(x2))",
    "sum_{x1} sum_{x2} E(x1,x2) * sum_{x1} E(x2,x1) * sum_{x2} E(x1,x2)",
    "2 * E(x1,x2) + -1 * eq(x1,x2) + neq(x1,x2) * P3(x2)",
    "f(P(x1), sum_{x2} (E(x1,x2) + eq(x1,x2)) * g(P(x2), P(x1)))",
    "(sum_{x2} E(x1,x2)) * P(x1)",
    "0.5 * sum_{x3} h(P(x3)) * E(x3,x1)",
]


@pytest.mark.parametrize("text", ROUND_TRIP)
def test_parse_round_trip(text):
    e = tl.parse(text)
    assert str(e) == text
    assert tl.same(tl.parse(str(e)), e)


def test_parse_variants_and_builders_agree():
    built = tl.Sum(x2, tl.E(x1, x2) * tl.P[0](x2))
    for text in ["sum_{x2} E(x1,x2) * P0(x2)", "sum_x2 E(x1, x2)*P[0](x2)", "Σ_{x2} E(x1,x2) * P0(x2)"]:
        assert tl.same(tl.parse(text), built)
    multi = tl.parse("sum_{x1,x2} E(x1,x2)")
    assert tl.same(multi, tl.Sum(x1, tl.Sum(x2, tl.E(x1, x2))))
    assert tl.same(multi, tl.sums("x1 x2".split(), tl.E(x1, x2)))
    # sum binds the whole product that follows but not a following +
    e = tl.parse("sum_{x2} E(x1,x2) * P(x2) + P(x1)")
    assert isinstance(e, tl.Add) and isinstance(e.terms[0], tl.Sum)
    sub = tl.parse("P(x1) - P0(x1)")
    assert isinstance(sub.terms[1], tl.Scale) and sub.terms[1].a == -1.0


@pytest.mark.parametrize("text, match", [
    ("E(x1)", "arity mismatch: E expects 2"),
    ("eq(x1,x2,x3)", "arity mismatch: eq expects 2"),
    ("P(x1,x2)", "arity mismatch: P expects 1"),
    ("sum_{x2} E(x1,x2) *", "expected an expression"),
    ("mlp(P(x1)", r"expected '\)'"),
    ("x1 + P(x1)", "not an expression"),
    ("P(x1) $ P(x2)", "unexpected character"),
    ("", "empty expression"),
    ("sum_{x2}", "missing the expression"),
    ("E(sum, x1)", "reserved"),
    ("P(x1) P(x2)", "after a complete expression"),
    ("P[a](x1)", "non-negative integer"),
])
def test_parse_errors(text, match):
    with pytest.raises(tl.TLSyntaxError, match=match):
        tl.parse(text)


def test_parse_unbound_variable_and_functions():
    with pytest.raises(ValueError, match=r"unbound variable\(s\) \['x3'\]"):
        tl.parse("sum_{x2} E(x1,x2) * P(x3)", free=["x1"])
    tl.parse("sum_{x2} E(x1,x2) * P(x1)", free=["x1"])
    fns = {"mlp": tl.Function("mlp", arity=1)}
    with pytest.raises(tl.TLSyntaxError, match="arity mismatch: function mlp expects 1"):
        tl.parse("mlp(P(x1), P(x1))", functions=fns)
    with pytest.raises(tl.TLSyntaxError, match="unknown function 'foo'"):
        tl.parse("foo(P(x1))", functions=fns)


def test_builder_errors():
    with pytest.raises(ValueError, match="arity mismatch"):
        tl.Function("f", arity=2)(tl.P(x1))
    with pytest.raises(TypeError, match="bare variable"):
        tl.Sum(x1, x1)
    with pytest.raises(ValueError, match="reserved"):
        tl.var("E")
    with pytest.raises(ValueError, match="non-negative"):
        tl.P[-1]


# --------------------------------------------------------------------------------- analysis

PATH3_REUSE = "sum_{x1} sum_{x2} E(x1,x2) * sum_{x1} E(x2,x1) * sum_{x2} E(x1,x2)"
PATH3_FLAT = "sum_{x1,x2,x3,x4} E(x1,x2) * E(x2,x3) * E(x3,x4)"
TRIANGLE = "sum_{x1,x2,x3} E(x1,x2) * E(x2,x3) * E(x3,x1)"
CYCLE4 = "sum_{x1,x2,x3,x4} E(x1,x2) * E(x2,x3) * E(x3,x4) * E(x4,x1)"
K4 = "sum_{x1,x2,x3,x4} " + " * ".join(f"E(x{a},x{b})" for a, b in itertools.combinations(range(1, 5), 2))


@pytest.mark.parametrize("text, nvars, written, method", [
    (PATH3_REUSE, 2, 2, "cr"),
    (PATH3_FLAT, 2, 4, "cr"),
    (TRIANGLE, 3, 3, "2-fwl"),
    (CYCLE4, 3, 4, "2-fwl"),
    (K4, 4, 4, "3-fwl"),
    ("sum_{x2} P(x2)", 1, 1, "cr"),
])
def test_minimum_variables(text, nvars, written, method):
    a = tl.analyze(tl.parse(text))
    assert a.num_vars == nvars and a.syntactic_vars == written
    assert a.level == "graph" and a.wl_method == method and a.exact


def test_min_variables_tree_pattern_with_free_variable():
    # star with centre x1 (free) and 3 leaves, plus a path hanging off a leaf: treewidth 1
    e = tl.parse("sum_{x2,x3,x4,x5} E(x1,x2) * E(x1,x3) * E(x1,x4) * E(x4,x5)")
    a = tl.analyze(e)
    assert a.num_vars == 2 and a.syntactic_vars == 5 and a.level == "vertex"
    assert not a.guarded  # guardedness is syntactic: the flat form is not GTL
    # a 3x3 grid pattern has treewidth 3 -> 4 variables (needs the subset DP: 9 bound variables)
    grid = [(f"x{3 * i + j + 1}") for i in range(3) for j in range(3)]
    edges = [(3 * i + j, 3 * i + j + 1) for i in range(3) for j in range(2)]
    edges += [(3 * i + j, 3 * (i + 1) + j) for i in range(2) for j in range(3)]
    text = "sum_{" + ",".join(grid) + "} " + " * ".join(f"E({grid[a]},{grid[b]})" for a, b in edges)
    g = tl.analyze(tl.parse(text))
    assert g.num_vars == 4 and g.exact


def test_function_applications_are_barriers():
    # f(E(x1,x2)) summed over both: the application needs both variables at once
    e = tl.parse("sum_{x1,x2,x3} f(E(x1,x2) * E(x2,x3))")
    assert tl.analyze(e).num_vars == 3
    # without the barrier the path has treewidth 1
    assert tl.analyze(tl.parse("sum_{x1,x2,x3} E(x1,x2) * E(x2,x3)")).num_vars == 2


def test_guarded_fragment():
    assert tl.is_guarded(tl.parse("mlp(P(x1) + sum_{x2} E(x1,x2) * g(P(x2), P(x1)))"))
    assert tl.is_guarded(tl.parse("sum_{x2} E(x2,x1) * P(x2) * inv(sum_{x2} E(x2,x1))"))
    assert not tl.is_guarded(tl.parse("sum_{x2} P(x2)"))                       # global sum
    assert not tl.is_guarded(tl.parse("sum_{x2} E(x1,x2) * eq(x1,x2)"))         # equality atom
    assert not tl.is_guarded(tl.parse("sum_{x2} E(x1,x2) * sum_{x3} E(x2,x3) * P(x1)"))
    assert not tl.is_guarded(tl.parse("sum_{x1} P(x1)"))                        # closed
    assert not tl.is_guarded(tl.parse("E(x1,x2)"))                              # two free variables


def test_bounds_and_theorems():
    gin1 = tl.analyze(tl.parse("mlp(P(x1) + sum_{x2} E(x1,x2) * P(x2))"))
    assert (gin1.bound, gin1.wl_method, gin1.wl_rounds, gin1.level) == ("cr^(1)", "cr", 1, "vertex")
    assert "Thm 4.1" in gin1.theorem and "guarded" in gin1.explanation
    glob = tl.analyze(tl.parse("mlp(P(x1), sum_{x2} P(x2))"))
    assert glob.bound == "vwl_1^(1)" and not glob.guarded and "Thm 4.2" in glob.theorem
    tri = tl.analyze(tl.parse(TRIANGLE))
    assert tri.bound == "gwl_2^(1)" and tri.k == 2
    pair = tl.analyze(tl.parse("sum_{x3} E(x1,x3) * E(x3,x2)"))
    assert pair.level == "tuple" and pair.bound == "vwl_2^(1)" and pair.wl_method == "2-fwl"
    s = str(tri)
    assert "bound" in s and "2-fwl" in s


def test_architecture_table_rows():
    rows = {r["architecture"]: r for r in A.table(2)}
    expect = {
        "GIN": (2, True, "cr^(2)", "gcr^(2)"),
        "GCN": (2, True, "cr^(3)", "gcr^(3)"),
        "GraphSAGE-mean": (2, True, "cr^(2)", "gcr^(2)"),
        "GAT": (2, True, "cr^(2)", "gcr^(2)"),
        "MPNN+readout": (2, False, "vwl_1^(2)", "gcr^(2)"),
        "PPGN / 2-FGNN": (3, False, "vwl_2^(2)", "gwl_2^(2)"),
        "2-MPNN": (3, False, "vwl_2^(2)", "gwl_2^(2)"),
        "3-MPNN": (4, False, "vwl_3^(2)", "gwl_3^(2)"),
        "1-MPNN": (2, False, "vwl_1^(2)", "gcr^(2)"),
    }
    for name, (nv, guarded, emb, graph) in expect.items():
        r = rows[name]
        got = (r["variables"], r["guarded"], r["embedding_bound"], r["graph_bound"])
        assert got == (nv, guarded, emb, graph)
    assert rows["2-IGN"]["graph_variables"] == 2 and rows["2-IGN"]["wl_method"] == "cr"
    assert rows["3-IGN"]["graph_variables"] == 3 and rows["3-IGN"]["wl_method"] == "2-fwl"
    assert rows["3-GNN (Morris)"]["wl_method"] == "2-fwl"
    assert rows["ChebNet(K=3)"]["guarded"]
    assert "GIN" in A.format_table(list(rows.values()))
    with pytest.raises(ValueError, match="unknown architectures"):
        A.table(1, names=["nope"])


def test_dag_sharing_keeps_deep_models_small():
    emb, graph = A.gin(30)
    a = tl.analyze(graph)
    assert a.bound == "gcr^(30)" and a.num_vars == 2


# --------------------------------------------------------------------------------- evaluate

def test_evaluate_counts_match_networkx():
    g = nx.gnp_random_graph(9, 0.5, seed=1)
    tri = tl.evaluate(tl.parse(TRIANGLE), g)
    assert tri.shape == (1,) and tri.item() == 6 * sum(nx.triangles(g).values()) / 3
    a = torch.tensor(nx.to_numpy_array(g), dtype=DT)
    walks = tl.evaluate(tl.parse(PATH3_FLAT), g).item()
    assert walks == (a @ a @ a).sum().item() == tl.evaluate(tl.parse(PATH3_REUSE), g).item()
    deg = tl.evaluate(tl.parse("sum_{x2} E(x1,x2)"), g)
    assert deg.shape == (9, 1) and torch.equal(deg[:, 0], a.sum(1))
    pair = tl.evaluate(tl.parse("sum_{x3} E(x1,x3) * E(x3,x2)"), g)
    torch.testing.assert_close(pair[..., 0], a @ a)
    # free-variable order and broadcasting of variables that do not occur
    t = tl.evaluate(tl.parse("P0(x2)"), g, torch.arange(9.0, dtype=DT)[:, None], free=["x1", "x2"])
    assert t.shape == (9, 9, 1) and torch.equal(t[3, :, 0], torch.arange(9.0, dtype=DT))


def test_evaluate_inputs_and_errors():
    g = nx.path_graph(4)
    e = tl.parse("relu(P(x1) - 1) + sum_{x2} E(x1,x2) * P1(x2)")
    x = torch.tensor([[0.0, 1.0], [2.0, 3.0], [4.0, 5.0], [6.0, 7.0]], dtype=DT)
    out = tl.evaluate(e, g, x)
    ref = torch.relu(x - 1) + (torch.tensor(nx.to_numpy_array(g), dtype=DT) @ x[:, 1:])
    torch.testing.assert_close(out, ref)
    from torch_geometric.utils import from_networkx

    data = from_networkx(g)
    torch.testing.assert_close(tl.evaluate(e, data, x), out)
    torch.testing.assert_close(tl.evaluate(e, (data.edge_index, 4), x), out)
    with pytest.raises(ValueError, match="no features were given"):
        tl.evaluate(e, g)
    with pytest.raises(ValueError, match=r"features: expected shape \[4, d\]"):
        tl.evaluate(e, g, torch.zeros(3, 2))
    with pytest.raises(ValueError, match="P1 needs at least 2"):
        tl.evaluate(e, g, torch.zeros(4, 1))
    with pytest.raises(ValueError, match="no implementation for 'mlp'"):
        tl.evaluate(tl.parse("mlp(P(x1))"), g, x)
    with pytest.raises(ValueError, match=r"unbound variable\(s\) \['x1'\]"):
        tl.evaluate(e, g, x, free=["x2"])
    with pytest.raises(ValueError, match="do not broadcast"):
        tl.evaluate(tl.parse("P(x1) + cat(P(x1), P(x1), P(x1))"), g, x)
    with pytest.raises(ValueError, match="edge_index: entries must lie"):
        tl.evaluate(e, (torch.tensor([[0, 5], [1, 0]]), 4), x)
    with pytest.raises(ValueError, match="expected an output of shape"):
        tl.evaluate(tl.parse("f(P(x1))"), g, x, {"f": lambda t: t.sum()})


def test_evaluate_empty_graph_and_shadowing():
    empty = torch.zeros(0, 0)
    out = tl.evaluate(tl.parse("sum_{x1} P(x1) * 2 + 1"), empty, torch.zeros(0, 3, dtype=DT))
    torch.testing.assert_close(out, torch.ones(3, dtype=DT))
    assert tl.evaluate(tl.parse("P(x1)"), empty, torch.zeros(0, 3)).shape == (0, 3)
    # shadowing: the inner sum re-binds x1, so this is (sum_v p_v)^2; a vacuous sum multiplies by n
    g = nx.cycle_graph(5)
    p = torch.arange(1.0, 6.0, dtype=DT)[:, None]
    out = tl.evaluate(tl.parse("sum_{x1} P0(x1) * sum_{x1} P0(x1)"), g, p)
    assert out.item() == 15.0 ** 2
    assert tl.evaluate(tl.parse("sum_{x2} P0(x1)"), g, p)[:, 0].tolist() == (5 * p[:, 0]).tolist()


def test_evaluate_is_permutation_equivariant():
    g = nx.gnp_random_graph(7, 0.4, seed=3)
    emb, _ = A.kmpnn(2, 1)
    from udl.gnn import KMPNN

    model = KMPNN(2, 1, hidden=3).to(DT)
    x = torch.ones(7, 1, dtype=DT)
    out = tl.evaluate(emb, g, x, model.tl_functions())
    perm = torch.randperm(7)
    a = tl.dense_adjacency(g)[perm][:, perm]
    out_p = tl.evaluate(emb, a, x, model.tl_functions())
    torch.testing.assert_close(out_p, out[perm][:, perm])


# ------------------------------------------------------------------------------------- CLI

def test_cli_table_and_analyze(capsys):
    from udl.cli import main

    assert main(["tl", "table", "--layers", "1", "--only", "GIN", "2-MPNN"]) == 0
    out = capsys.readouterr().out
    assert "GIN" in out and "cr^(1)" in out and "gwl_2^(1)" in out
    assert main(["tl", "analyze", TRIANGLE]) == 0
    out = capsys.readouterr().out
    assert "gwl_2^(1)" in out and "Thm 4.2" in out
    assert main(["tl", "analyze", "--json", PATH3_FLAT]) == 0
    import json

    data = json.loads(capsys.readouterr().out)
    assert data["num_vars"] == 2 and data["syntactic_vars"] == 4
    assert main(["tl", "analyze", "sum_{x2} E(x1"]) == 2
    assert "expected ')'" in capsys.readouterr().err
    assert main(["tl", "brec", "--categories", "basic", "--per-category", "2", "--models", "GIN",
                 "--no-wl"]) == 0
    assert "GIN" in capsys.readouterr().out
    assert main(["tl", "brec", "--models", "nope"]) == 2
    assert main(["tl", "analyze", "P(x3)", "--free", "x1"]) == 2
    assert "unbound variable" in capsys.readouterr().err


def test_large_sum_product_blocks_fall_back_soundly():
    # a 12-layer *linear* GNN has 2^12 monomials between barriers: the analyzer caps the expansion
    # and reports a sound upper bound, flagged as not exact
    import functools

    @functools.cache
    def F(t, a, b):  # noqa: N802
        if t == 0:
            return tl.P(a)
        return F(t - 1, a, b) + tl.Sum(b, tl.E(b, a) * F(t - 1, b, a))

    small = tl.analyze(F(4, x1, x2))
    assert small.exact and small.bound == "cr^(4)" and small.num_vars == 2
    big = tl.analyze(F(12, x1, x2))
    assert not big.exact and big.num_vars == 2 and big.bound == "cr^(12)"
    assert "upper bound" in big.explanation
