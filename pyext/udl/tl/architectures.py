"""Popular GNN architectures written in TL(Ω), and the architecture → bound table.

Each builder returns ``(embedding, graph)``: the TL expression of the vertex/tuple embedding after
``layers`` layers and of the graph-level output (read-out sum + head). Function names in the
expressions (``mlp1``, ``lin2``, ...) are documented per builder; the matching torch modules
(``udl.gnn`` models' ``tl_functions()``, or PyG convs) evaluate them with ``udl.tl.evaluate``.

Messages follow PyG's convention (source → target): the aggregation at ``x1`` is
``Σ_{x2} E(x2,x1)·...``. Layer-t features are built by a memoised recursion that swaps the roles of
the variables, so ``t`` layers stay a DAG of size O(t) and re-use the same few variables, exactly
as the paper writes them.
"""

from __future__ import annotations

import dataclasses
import functools
import itertools
from collections.abc import Callable

from udl.tl.analysis import Analysis, analyze
from udl.tl.expr import (
    Add,
    Apply,
    Const,
    E,
    Expr,
    Function,
    Mul,
    P,
    Sum,
    Var,
    eq,
)

__all__ = ["gin", "gcn", "sage", "gat", "mpnn_readout", "chebnet", "ppgn", "ign", "kgnn", "kmpnn",
           "tuple_init", "Architecture", "ARCHITECTURES", "table", "format_table"]


def _fn(name: str) -> Function:
    return Function(name)


def _v(*names: str) -> tuple[Var, ...]:
    return tuple(Var(n) for n in names)


def _sum_all(vs: tuple[Var, ...], body: Expr) -> Expr:
    for v in reversed(vs):
        body = Sum(v, body)
    return body


def _check_layers(layers: int) -> None:
    if isinstance(layers, bool) or not isinstance(layers, int) or layers < 0:
        raise ValueError(f"layers: expected an int >= 0, got {layers!r}")


def _readout(emb_free: tuple[Var, ...], emb: Expr, per_tuple: str | None = None) -> Expr:
    body = Apply(_fn(per_tuple), (emb,)) if per_tuple else emb
    return Apply(_fn("head"), (_sum_all(emb_free, body),))


# ------------------------------------------------------------------------------------ MPNN family

def gin(layers: int = 2, eps: float = 0.0, global_readout: bool = False) -> tuple[Expr, Expr]:
    """GIN (sum aggregation): ``F_t(x1) = mlp_t((1+eps)F(x1) + Σ_{x2} E(x2,x1) F(x2))``.

    With ``global_readout`` the layer also sees ``Σ_{x2} F(x2)`` (concatenated): the MPNN with
    global read-out. Functions: ``mlp1..mlpL``, ``head``. Matches ``udl.gnn.GIN`` and PyG's
    ``GINConv(nn=mlp_t, eps=eps)``.
    """
    _check_layers(layers)
    x1, x2 = _v("x1", "x2")

    @functools.cache
    def F(t: int, a: Var, b: Var) -> Expr:  # noqa: N802
        if t == 0:
            return P(a)
        own = F(t - 1, a, b)
        if eps != 0.0:
            own = (1.0 + eps) * own
        inner = own + Sum(b, E(b, a) * F(t - 1, b, a))
        args = (inner, Sum(b, F(t - 1, b, a))) if global_readout else (inner,)
        return Apply(_fn(f"mlp{t}"), args)

    emb = F(layers, x1, x2)
    return emb, _readout((x1,), emb)


def mpnn_readout(layers: int = 2) -> tuple[Expr, Expr]:
    """MPNN with a global read-out in every layer (``gin(..., global_readout=True)``)."""
    return gin(layers, global_readout=True)


def gcn(layers: int = 2) -> tuple[Expr, Expr]:
    """GCN with symmetric normalisation and self-loops (PyG ``GCNConv``):
    ``F_t(x1) = post_t(g(d(x1))·[g(d(x1))·lin_t(F(x1)) + Σ_{x2} E(x2,x1)·g(d(x2))·lin_t(F(x2))])``
    with ``d(x) = 1 + Σ_y E(y,x)`` and ``g = inv_sqrt``. Functions: ``lin_t`` (weights, no bias),
    ``post_t`` (bias + activation), ``head``. The degree costs one extra summation level.
    """
    _check_layers(layers)
    x1, x2 = _v("x1", "x2")
    g = _fn("inv_sqrt")

    @functools.cache
    def deg(a: Var, b: Var) -> Expr:
        return Apply(g, (Const(1.0) + Sum(b, E(b, a)),))

    @functools.cache
    def F(t: int, a: Var, b: Var) -> Expr:  # noqa: N802
        if t == 0:
            return P(a)
        lin = _fn(f"lin{t}")
        self_term = deg(a, b) * Apply(lin, (F(t - 1, a, b),))
        nbr = Sum(b, E(b, a) * deg(b, a) * Apply(lin, (F(t - 1, b, a),)))
        return Apply(_fn(f"post{t}"), (deg(a, b) * (self_term + nbr),))

    emb = F(layers, x1, x2)
    return emb, _readout((x1,), emb)


def sage(layers: int = 2) -> tuple[Expr, Expr]:
    """GraphSAGE with mean aggregation (PyG ``SAGEConv(aggr="mean")``):
    ``F_t(x1) = post_t(lin_l_t(Σ_{x2} E(x2,x1) F(x2) · inv(Σ_{x2} E(x2,x1))) + lin_r_t(F(x1)))``.
    Functions: ``lin_l_t``, ``lin_r_t``, ``post_t``, ``head``. Division is a function of Ω.
    """
    _check_layers(layers)
    x1, x2 = _v("x1", "x2")

    @functools.cache
    def F(t: int, a: Var, b: Var) -> Expr:  # noqa: N802
        if t == 0:
            return P(a)
        mean = Sum(b, E(b, a) * F(t - 1, b, a)) * Apply(_fn("inv"), (Sum(b, E(b, a)),))
        inner = Apply(_fn(f"lin_l{t}"), (mean,)) + Apply(_fn(f"lin_r{t}"), (F(t - 1, a, b),))
        return Apply(_fn(f"post{t}"), (inner,))

    emb = F(layers, x1, x2)
    return emb, _readout((x1,), emb)


def gat(layers: int = 2) -> tuple[Expr, Expr]:
    """GAT, one head, with self-loops (PyG ``GATConv``): attention = softmax over the neighbours
    and the vertex itself, written with ``exp`` inside ``score_t`` and a division (``div``)::

        s(a,b) = score_t(F(a), F(b))          # exp(leaky_relu(att_dst·W F(a) + att_src·W F(b)))
        F_t(a) = post_t(div(s(a,a)·lin_t(F(a)) + Σ_b E(b,a)·s(a,b)·lin_t(F(b)),
                            s(a,a) + Σ_b E(b,a)·s(a,b)))

    Functions: ``lin_t``, ``score_t``, ``post_t``, ``head``. Guarded: cr bound.
    """
    _check_layers(layers)
    x1, x2 = _v("x1", "x2")

    @functools.cache
    def F(t: int, a: Var, b: Var) -> Expr:  # noqa: N802
        if t == 0:
            return P(a)
        lin, score = _fn(f"lin{t}"), _fn(f"score{t}")
        fa, fb = F(t - 1, a, b), F(t - 1, b, a)
        s_aa = Apply(score, (fa, fa))
        s_ab = Apply(score, (fa, fb))
        num = s_aa * Apply(lin, (fa,)) + Sum(b, E(b, a) * s_ab * Apply(lin, (fb,)))
        den = s_aa + Sum(b, E(b, a) * s_ab)
        return Apply(_fn(f"post{t}"), (Apply(_fn("div"), (num, den)),))

    emb = F(layers, x1, x2)
    return emb, _readout((x1,), emb)


def chebnet(layers: int = 2, K: int = 3) -> tuple[Expr, Expr]:  # noqa: N803 - the paper's K
    """ChebNet (PyG ``ChebConv(K, normalization="sym")`` with λ_max = 2, a constant):
    ``L̂ F(a) = -Σ_b E(b,a)·g(d(a))·g(d(b))·F(b)`` with ``d(a) = Σ_y E(a,y)``, ``g = inv_sqrt``;
    ``T_0 = F``, ``T_1 = L̂ F``, ``T_k = 2 L̂ T_{k-1} - T_{k-2}``;
    ``F_t = post_t(Σ_k lin_t_k(T_k))``. Functions: ``lin{t}_{k}``, ``post{t}``, ``head``.
    """
    _check_layers(layers)
    if isinstance(K, bool) or not isinstance(K, int) or K < 1:
        raise ValueError(f"K: expected an int >= 1, got {K!r}")
    x1, x2 = _v("x1", "x2")
    g = _fn("inv_sqrt")

    @functools.cache
    def deg(a: Var, b: Var) -> Expr:
        return Apply(g, (Sum(b, E(a, b)),))

    def lap(inner: Callable[[Var, Var], Expr], a: Var, b: Var) -> Expr:
        return -1.0 * (deg(a, b) * Sum(b, E(b, a) * deg(b, a) * inner(b, a)))

    @functools.cache
    def F(t: int, a: Var, b: Var) -> Expr:  # noqa: N802
        if t == 0:
            return P(a)

        @functools.cache
        def T(k: int, u: Var, w: Var) -> Expr:  # noqa: N802
            if k == 0:
                return F(t - 1, u, w)
            if k == 1:
                return lap(lambda p, q: T(0, p, q), u, w)
            return 2.0 * lap(lambda p, q: T(k - 1, p, q), u, w) - T(k - 2, u, w)

        terms = [Apply(_fn(f"lin{t}_{k}"), (T(k, a, b),)) for k in range(K)]
        inner = terms[0] if K == 1 else Add(tuple(terms))
        return Apply(_fn(f"post{t}"), (inner,))

    emb = F(layers, x1, x2)
    return emb, _readout((x1,), emb)


# ------------------------------------------------------------------------------ tuple-based models

def tuple_init(xs: tuple[Var, ...]) -> Expr:
    """Initial k-tuple feature: ``cat(P(x_1), ..., P(x_k), eq(x_i,x_j) for i<j, E(x_i,x_j) for
    i≠j)`` — the vertex features and the atomic type (``udl.gnn.tuple_features``' order)."""
    k = len(xs)
    args: list[Expr] = [P(x) for x in xs]
    args += [eq(xs[i], xs[j]) for i, j in itertools.combinations(range(k), 2)]
    args += [E(xs[i], xs[j]) for i in range(k) for j in range(k) if i != j]
    return Apply(_fn("cat"), tuple(args))


def _pool(k: int, extra: int) -> tuple[Var, ...]:
    return tuple(Var(f"x{i}") for i in range(1, k + extra + 1))


def _fresh(pool: tuple[Var, ...], used: tuple[Var, ...]) -> Var:
    for v in pool:
        if v not in used:
            return v
    raise AssertionError("variable pool exhausted")  # pragma: no cover


def kmpnn(k: int = 2, layers: int = 2, aggr: str = "sum") -> tuple[Expr, Expr]:
    """k-MPNN (``udl.gnn.KMPNN``): per layer, with the fresh variable ``y``::

        k = 1:  F_t(x) = l{t}_f(F(x), Σ_y l{t}_g1(F(y)) · l{t}_gate(eq(x,y), E(x,y)))
        k ≥ 2:  F_t(x) = l{t}_f(F(x), atp(x), Σ_y Π_i l{t}_g{i}(F(x[y/i])))

    then ``head(Σ_x readout(F_L(x)))``. ``aggr="mean"`` multiplies the sum by ``inv(Σ_y 1)``.
    Uses k+1 variables: bound vwl_k (folklore k-WL).
    """
    if k not in (1, 2, 3):
        raise ValueError(f"k: expected 1, 2 or 3, got {k!r}")
    _check_layers(layers)
    if aggr not in ("sum", "mean"):
        raise ValueError(f"aggr: expected 'sum' or 'mean', got {aggr!r}")
    pool = _pool(k, 1)
    xs0 = pool[:k]

    @functools.cache
    def F(t: int, xs: tuple[Var, ...]) -> Expr:  # noqa: N802
        if t == 0:
            return tuple_init(xs)
        y = _fresh(pool, xs)
        p = f"l{t}_"
        if k == 1:
            msg = Sum(y, Apply(_fn(p + "g1"), (F(t - 1, (y,)),))
                      * Apply(_fn(p + "gate"), (eq(xs[0], y), E(xs[0], y))))
            atp: list[Expr] = []
        else:
            factors = []
            for i in range(k):
                sub = xs[:i] + (y,) + xs[i + 1:]
                factors.append(Apply(_fn(f"{p}g{i + 1}"), (F(t - 1, sub),)))
            msg = Sum(y, Mul(tuple(factors)))
            atp = list(tuple_init(xs).args[k:])
        if aggr == "mean":
            msg = msg * Apply(_fn("inv"), (Sum(y, Const(1.0)),))
        return Apply(_fn(p + "f"), (F(t - 1, xs), *atp, msg))

    emb = F(layers, xs0)
    return emb, _readout(xs0, emb, "readout")


def ppgn(layers: int = 2) -> tuple[Expr, Expr]:
    """PPGN / 2-FGNN block (Maron et al. 2019):
    ``F_t(x1,x2) = m3_t(F(x1,x2), Σ_{x3} m1_t(F(x1,x3)) · m2_t(F(x3,x2)))`` (channel-wise matrix
    product), initial features :func:`tuple_init`, read-out ``head(Σ_{x1,x2} F_L(x1,x2))``.
    Functions: ``m1_t``, ``m2_t``, ``m3_t``, ``head``.
    """
    _check_layers(layers)
    pool = _pool(2, 1)

    @functools.cache
    def F(t: int, a: Var, b: Var) -> Expr:  # noqa: N802
        if t == 0:
            return tuple_init((a, b))
        c = _fresh(pool, (a, b))
        prod = Sum(c, Apply(_fn(f"m1_{t}"), (F(t - 1, a, c),)) * Apply(_fn(f"m2_{t}"), (F(t - 1, c, b),)))
        return Apply(_fn(f"m3_{t}"), (F(t - 1, a, b), prod))

    emb = F(layers, pool[0], pool[1])
    return emb, _readout(pool[:2], emb)


def ign(k: int = 2, layers: int = 2) -> tuple[Expr, Expr]:
    """k-IGN (``udl.gnn.IGNLayer``): ``F_t(x) = mix_t(op_1(F), ..., op_m(F), bias_1, ...)`` over the
    Bell(2k) basis maps and Bell(k) bias maps; read-out ``head(Σ_x F_L(x))``. Functions:
    ``mix_t``, ``head``. In TL_k: bound vwl_{k-1} (Geerts 2020; Maron et al.)."""
    from udl.gnn.higher import ign_basis

    if k not in (1, 2, 3):
        raise ValueError(f"k: expected 1, 2 or 3, got {k!r}")
    _check_layers(layers)
    ops, biases = ign_basis(k)
    pool = _pool(k, 2 * k)
    xs0 = pool[:k]

    @functools.cache
    def F(t: int, xs: tuple[Var, ...]) -> Expr:  # noqa: N802
        if t == 0:
            return tuple_init(xs)
        args: list[Expr] = []
        for part in ops:
            block_var: dict[int, Var] = {}
            eqs: list[Expr] = []
            bound: list[Var] = []
            # output blocks keep their variable; input-only blocks get summed variables, named
            # as low as possible (shadowing outer names is fine inside the sum) so that the
            # sub-expressions F_{t-1}(...) coincide across basis maps and the DAG stays small
            used = tuple(xs[o] for bi, block in enumerate(part)
                         for o in block[:1] if o < k and any(p >= k for p in block))
            for bi, block in enumerate(part):
                outs = [p for p in block if p < k]
                if outs:
                    block_var[bi] = xs[outs[0]]
                    eqs += [eq(xs[outs[0]], xs[o]) for o in outs[1:]]
                elif any(p >= k for p in block):
                    v = _fresh(pool, used + tuple(bound))
                    bound.append(v)
                    block_var[bi] = v
            block_of = {p: bi for bi, b in enumerate(part) for p in b}
            inner = F(t - 1, tuple(block_var[block_of[k + i]] for i in range(k)))
            term = _sum_all(tuple(bound), inner)
            args.append(Mul(tuple(eqs) + (term,)) if eqs else term)
        for part in biases:
            eqs = [eq(xs[b[0]], xs[o]) for b in part for o in b[1:]]
            args.append(Mul(tuple(eqs) + (Const(1.0),)) if eqs else Const(1.0))
        return Apply(_fn(f"mix{t}"), tuple(args))

    emb = F(layers, xs0)
    return emb, _readout(xs0, emb)


def kgnn(k: int = 2, layers: int = 2) -> tuple[Expr, Expr]:
    """Oblivious k-GNN on tuples (``udl.gnn.KGNNLayer``; Morris et al. 2019):
    ``F_t(x) = mlp_t(F(x), Σ_y F(x[y/1]), ..., Σ_y F(x[y/k]))``; read-out ``head(Σ_x F_L(x))``.
    Each summation only needs the k-1 other positions, so it is in TL_k: bound vwl_{k-1}
    (= k-OWL)."""
    if k not in (1, 2, 3):
        raise ValueError(f"k: expected 1, 2 or 3, got {k!r}")
    _check_layers(layers)
    pool = _pool(k, 1)
    xs0 = pool[:k]

    @functools.cache
    def F(t: int, xs: tuple[Var, ...]) -> Expr:  # noqa: N802
        if t == 0:
            return tuple_init(xs)
        y = _fresh(pool, xs)
        sums = [Sum(y, F(t - 1, xs[:i] + (y,) + xs[i + 1:])) for i in range(k)]
        return Apply(_fn(f"mlp{t}"), (F(t - 1, xs), *sums))

    emb = F(layers, xs0)
    return emb, _readout(xs0, emb)


# ------------------------------------------------------------------------------------------ table

@dataclasses.dataclass(frozen=True)
class Architecture:
    """A named architecture: ``build(layers) -> (embedding, graph)`` and what the paper says."""

    name: str
    description: str
    build: Callable[[int], tuple[Expr, Expr]]
    paper: str
    max_layers: int | None = None  # analysed with at most this many layers (DAG size)


ARCHITECTURES: tuple[Architecture, ...] = (
    Architecture("GIN", "sum aggregation + MLP", gin, "cr^(t) / gcr^(t)"),
    Architecture("GCN", "symmetric normalisation, self-loops", gcn, "cr^(t+1) (degree costs a level)"),
    Architecture("GraphSAGE-mean", "mean aggregation", sage, "cr (division in Ω)"),
    Architecture("GAT", "attention softmax (exp, div in Ω)", gat, "cr"),
    Architecture("MPNN+readout", "global sum in every layer", mpnn_readout, "vwl_1 (cr + global)"),
    Architecture("ChebNet(K=3)", "Chebyshev filters, λ_max = 2", lambda t: chebnet(t, 3),
                 "cr (λ_max constant)"),
    Architecture("PPGN / 2-FGNN", "channel-wise matrix products", ppgn, "vwl_2 = 2-FWL"),
    Architecture("2-IGN", "15 equivariant basis maps", lambda t: ign(2, t), "vwl_1"),
    Architecture("3-IGN", "203 equivariant basis maps", lambda t: ign(3, t), "vwl_2", max_layers=1),
    Architecture("2-GNN (Morris)", "oblivious 2-tuples", lambda t: kgnn(2, t), "vwl_1 = 2-OWL"),
    Architecture("3-GNN (Morris)", "oblivious 3-tuples", lambda t: kgnn(3, t), "vwl_2 = 3-OWL"),
    Architecture("1-MPNN", "unguarded sum, atomic-type gate", lambda t: kmpnn(1, t), "vwl_1"),
    Architecture("2-MPNN", "neural 2-FWL (batched matmul)", lambda t: kmpnn(2, t), "vwl_2 = 2-FWL"),
    Architecture("3-MPNN", "neural 3-FWL", lambda t: kmpnn(3, t), "vwl_3 = 3-FWL"),
)


def table(layers: int = 2, names: list[str] | None = None) -> list[dict]:
    """Analyse every architecture with ``layers`` layers: one row per architecture with the
    embedding's and the graph output's variables, depth, guardedness and bound."""
    _check_layers(layers)
    rows = []
    known = {a.name for a in ARCHITECTURES}
    if names is not None:
        unknown = sorted(set(names) - known)
        if unknown:
            raise ValueError(f"names: unknown architectures {unknown}; known: {sorted(known)}")
    for arch in ARCHITECTURES:
        if names is not None and arch.name not in names:
            continue
        used = layers if arch.max_layers is None else min(layers, arch.max_layers)
        emb, graph = arch.build(used)
        a_emb: Analysis = analyze(emb)
        a_graph: Analysis = analyze(graph)
        rows.append({
            "architecture": arch.name,
            "description": arch.description,
            "layers": used,
            "variables": a_emb.num_vars,
            "depth": a_emb.depth,
            "guarded": a_emb.guarded,
            "embedding_bound": a_emb.bound,
            "graph_variables": a_graph.num_vars,
            "graph_depth": a_graph.depth,
            "graph_bound": a_graph.bound,
            "wl_method": a_graph.wl_method,
            "wl_rounds": a_graph.wl_rounds,
            "paper": arch.paper,
            "analysis": a_emb,
            "graph_analysis": a_graph,
        })
    return rows


def format_table(rows: list[dict]) -> str:
    """Plain-text rendering of :func:`table` rows."""
    header = ["architecture", "layers", "vars", "depth", "guarded", "embedding bound", "graph vars",
              "graph depth",
              "graph bound", "paper"]
    data = [[r["architecture"], r["layers"], r["variables"], r["depth"], "yes" if r["guarded"] else "no",
             r["embedding_bound"], r["graph_variables"], r["graph_depth"], r["graph_bound"], r["paper"]]
            for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *data)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths)),
             "  ".join("-" * w for w in widths)]
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in data]
    return "\n".join(lines)
