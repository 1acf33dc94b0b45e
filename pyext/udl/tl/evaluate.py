"""Dense evaluation of TL(Ω) expressions on a graph: the tensor an expression denotes.

Every sub-expression evaluates to a tensor with one axis of size ``n`` per free variable (in a
canonical order) and a trailing channel axis. Summations over products are contracted with
``torch.einsum`` (so ``sum_{x3} g(F(x1,x3)) * h(F(x3,x2))`` is a batched matrix product), shared
sub-expressions of a DAG are evaluated once. Memory is ``n^(#live variables) x channels``, which is
fine for the small graphs this is meant for (checking that an expression describes a layer).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import torch

from udl.tl.expr import (
    Add,
    Apply,
    Const,
    Edge,
    Eq,
    Expr,
    Label,
    Mul,
    Neq,
    Scale,
    Sum,
    Var,
    check_vars,
    nodes,
)

__all__ = ["evaluate", "BUILTINS", "dense_adjacency"]


def _inv(t: torch.Tensor) -> torch.Tensor:
    return torch.where(t != 0, 1.0 / torch.where(t != 0, t, torch.ones_like(t)), torch.zeros_like(t))


def _inv_sqrt(t: torch.Tensor) -> torch.Tensor:
    safe = torch.where(t > 0, t, torch.ones_like(t))
    return torch.where(t > 0, safe.rsqrt(), torch.zeros_like(t))


def _div(t: torch.Tensor) -> torch.Tensor:
    if t.shape[-1] < 2:
        raise ValueError("div: expects at least two channels (numerator channels, then the denominator)")
    return t[..., :-1] * _inv(t[..., -1:])


BUILTINS: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {
    "relu": torch.relu,
    "tanh": torch.tanh,
    "sigmoid": torch.sigmoid,
    "exp": torch.exp,
    "lrelu": lambda t: torch.nn.functional.leaky_relu(t, 0.2),
    "identity": lambda t: t,
    "cat": lambda t: t,
    "inv": _inv,
    "inv_sqrt": _inv_sqrt,
    "sqrt": lambda t: t.clamp_min(0).sqrt(),
    "square": lambda t: t * t,
    "div": _div,
}
"""Functions available by name without passing ``functions=``: element-wise ``relu``, ``tanh``,
``sigmoid``, ``exp``, ``lrelu`` (slope 0.2), ``identity``/``cat`` (return the concatenated
arguments), ``inv`` (1/x, 0 at 0), ``inv_sqrt`` (x^-1/2, 0 for x <= 0), ``sqrt``, ``square`` and
``div`` (all channels but the last divided by the last channel; 0 where it is 0)."""


def dense_adjacency(graph: Any, dtype: torch.dtype = torch.float64,
                    device: torch.device | str | None = None) -> torch.Tensor:
    """Dense adjacency ``[n, n]`` of a graph given as a tensor, networkx graph, PyG Data or
    ``(edge_index, num_nodes)``. Undirected networkx graphs give a symmetric matrix; multi-edges
    count with multiplicity."""
    if isinstance(graph, torch.Tensor):
        if graph.dim() != 2 or graph.shape[0] != graph.shape[1]:
            raise ValueError(f"graph: expected a square [n, n] adjacency, got shape {tuple(graph.shape)}")
        return graph.to(dtype=dtype, device=device)
    if isinstance(graph, tuple) and len(graph) == 2:
        edge_index, n = graph
        return _from_edge_index(torch.as_tensor(edge_index), int(n), dtype, device)
    if hasattr(graph, "edge_index") and hasattr(graph, "num_nodes"):
        return _from_edge_index(graph.edge_index, int(graph.num_nodes), dtype, device)
    if hasattr(graph, "nodes") and hasattr(graph, "edges"):
        nodes_ = list(graph.nodes())
        index = {v: i for i, v in enumerate(nodes_)}
        a = torch.zeros(len(nodes_), len(nodes_), dtype=dtype, device=device)
        directed = graph.is_directed() if hasattr(graph, "is_directed") else False
        for u, v in graph.edges():
            a[index[u], index[v]] += 1
            if not directed and u != v:
                a[index[v], index[u]] += 1
        return a
    raise TypeError("graph: expected a dense adjacency tensor, a networkx graph, a PyG Data or "
                    f"(edge_index, num_nodes), got {type(graph).__name__}")


def _from_edge_index(edge_index: torch.Tensor, n: int, dtype: torch.dtype,
                     device: torch.device | str | None) -> torch.Tensor:
    if edge_index.dim() != 2 or edge_index.shape[0] != 2:
        raise ValueError(f"edge_index: expected shape [2, m], got {tuple(edge_index.shape)}")
    if n < 0:
        raise ValueError(f"num_nodes: expected >= 0, got {n}")
    if edge_index.numel() and (int(edge_index.min()) < 0 or int(edge_index.max()) >= n):
        raise ValueError(f"edge_index: entries must lie in [0, {n}), got range "
                         f"[{int(edge_index.min())}, {int(edge_index.max())}]")
    a = torch.zeros(n, n, dtype=dtype, device=device)
    ei = edge_index.to(device=a.device, dtype=torch.long)
    a.index_put_((ei[0], ei[1]), torch.ones(ei.shape[1], dtype=dtype, device=a.device), accumulate=True)
    return a


class _Val:
    """A value: tensor of shape ``[n]*len(vars) + [channels]`` with named variable axes."""

    __slots__ = ("t", "vars")

    def __init__(self, t: torch.Tensor, vars_: tuple[Var, ...]) -> None:
        self.t, self.vars = t, vars_

    @property
    def channels(self) -> int:
        return self.t.shape[-1]

    def aligned(self, order: tuple[Var, ...]) -> torch.Tensor:
        """View with axes in ``order`` (size-1 axes for absent variables)."""
        perm = [self.vars.index(v) for v in order if v in self.vars]
        t = self.t.permute(*perm, len(self.vars)) if perm != list(range(len(perm))) else self.t
        shape = []
        it = iter(t.shape[:-1])
        for v in order:
            shape.append(next(it) if v in self.vars else 1)
        return t.reshape(*shape, t.shape[-1])


def _union(vals: Sequence[_Val]) -> tuple[Var, ...]:
    seen: list[Var] = []
    for v in vals:
        for x in v.vars:
            if x not in seen:
                seen.append(x)
    return tuple(sorted(seen))


def _check_channels(vals: Sequence[_Val], what: str) -> None:
    cs = {v.channels for v in vals} - {1}
    if len(cs) > 1:
        raise ValueError(f"{what}: channel counts {sorted(cs)} do not broadcast (only 1 broadcasts)")


def evaluate(expr: Expr, graph: Any, features: torch.Tensor | None = None,
             functions: Mapping[str, Callable[[torch.Tensor], torch.Tensor]] | None = None,
             free: Sequence[Var | str] | None = None, dtype: torch.dtype | None = None) -> torch.Tensor:
    """The tensor that ``expr`` denotes on ``graph``.

    Args:
        expr: a TL expression.
        graph: dense adjacency ``[n, n]``, networkx graph, PyG ``Data`` or ``(edge_index, n)``.
        features: vertex features ``[n, d]``; ``P(x)`` is the whole row, ``P[l](x)`` column ``l``.
        functions: ``name -> callable`` for the functions of Ω used in ``expr``; each callable maps
            ``[..., c_in]`` (its arguments' values concatenated along channels) to ``[..., c_out]``.
            Names not given fall back to the Function's own ``fn``, then to :data:`BUILTINS`.
        free: order of the output's variable axes (default: free variables in natural order);
            every free variable of ``expr`` must be listed (ValueError otherwise).
        dtype: computation dtype (default: ``features.dtype``, else float64).

    Returns:
        Tensor of shape ``[n] * len(free) + [channels]``.
    """
    if not isinstance(expr, Expr):
        raise TypeError(f"expr: expected a TL expression, got {type(expr).__name__}")
    order = check_vars(expr, free)
    if dtype is None:
        dtype = features.dtype if features is not None and features.is_floating_point() else torch.float64
    device = features.device if features is not None else None
    adj = dense_adjacency(graph, dtype=dtype, device=device)
    n = adj.shape[0]
    device = adj.device
    if features is not None:
        if features.dim() == 1:
            features = features[:, None]
        if features.dim() != 2 or features.shape[0] != n:
            raise ValueError(f"features: expected shape [{n}, d] for a graph with {n} vertices, got "
                             f"{tuple(features.shape)}")
        features = features.to(dtype=dtype, device=device)
    functions = dict(functions or {})
    eye = torch.eye(n, dtype=dtype, device=device)
    memo: dict[int, _Val] = {}

    def get(e: Expr) -> _Val:
        val = memo.get(id(e))
        if val is None:
            val = memo[id(e)] = go(e)
        return val

    def resolve(node: Apply) -> Callable[[torch.Tensor], torch.Tensor]:
        name = node.f.name
        if name in functions:
            return functions[name]
        if node.f.fn is not None:
            return node.f.fn
        if name in BUILTINS:
            return BUILTINS[name]
        raise ValueError(f"functions: no implementation for {name!r}; pass functions={{'{name}': ...}} "
                         f"(built-ins: {sorted(BUILTINS)})")

    def go(e: Expr) -> _Val:
        if isinstance(e, Const):
            return _Val(torch.full((1,), e.value, dtype=dtype, device=device), ())
        if isinstance(e, Edge):
            if e.x == e.y:
                return _Val(torch.diagonal(adj)[:, None], (e.x,))
            return _Val(adj[:, :, None], (e.x, e.y))
        if isinstance(e, (Eq, Neq)):
            if e.x == e.y:
                value = 1.0 if isinstance(e, Eq) else 0.0
                return _Val(torch.full((1,), value, dtype=dtype, device=device), ())
            m = eye if isinstance(e, Eq) else 1.0 - eye
            return _Val(m[:, :, None], (e.x, e.y))
        if isinstance(e, Label):
            if features is None:
                raise ValueError(f"features: the expression uses {'P' if e.index is None else f'P{e.index}'}"
                                 f"({e.x.name}) but no features were given")
            if e.index is None:
                return _Val(features, (e.x,))
            if e.index >= features.shape[1]:
                raise ValueError(f"features: P{e.index} needs at least {e.index + 1} feature channels, "
                                 f"got {features.shape[1]}")
            return _Val(features[:, e.index:e.index + 1], (e.x,))
        if isinstance(e, Scale):
            v = get(e.expr)
            return _Val(v.t * e.a, v.vars)
        if isinstance(e, Add):
            vals = [get(t) for t in e.terms]
            _check_channels(vals, "+")
            order_ = _union(vals)
            out = vals[0].aligned(order_)
            for v in vals[1:]:
                out = out + v.aligned(order_)
            shape = [n] * len(order_) + [out.shape[-1]]
            return _Val(out.expand(*shape), order_)
        if isinstance(e, Mul):
            vals = [get(f) for f in e.factors]
            _check_channels(vals, "*")
            order_ = _union(vals)
            out = vals[0].aligned(order_)
            for v in vals[1:]:
                out = out * v.aligned(order_)
            shape = [n] * len(order_) + [out.shape[-1]]
            return _Val(out.expand(*shape), order_)
        if isinstance(e, Apply):
            vals = [get(a) for a in e.args]
            order_ = _union(vals)
            shape = [n] * len(order_)
            parts = [v.aligned(order_).expand(*shape, v.channels) for v in vals]
            x = parts[0] if len(parts) == 1 else torch.cat(parts, dim=-1)
            y = resolve(e)(x)
            ok = isinstance(y, torch.Tensor) and y.dim() == len(shape) + 1
            if not ok or tuple(y.shape[:-1]) != tuple(shape):
                got = tuple(y.shape) if isinstance(y, torch.Tensor) else type(y).__name__
                raise ValueError(f"function {e.f.name!r}: expected an output of shape {tuple(shape)} + "
                                 f"(channels,), got {got}")
            return _Val(y, order_)
        if isinstance(e, Sum):
            return _sum(e)
        raise TypeError(f"unknown TL node {type(e).__name__}")  # pragma: no cover

    def _sum(e: Sum) -> _Val:
        body = e.body
        scale = 1.0
        while isinstance(body, Scale):
            scale *= body.a
            body = body.expr
        factors = body.factors if isinstance(body, Mul) else (body,)
        vals = [get(f) for f in factors]
        _check_channels(vals, "*")
        out_vars = tuple(sorted({x for v in vals for x in v.vars} - {e.var}))
        if not any(e.var in v.vars for v in vals):
            b = get(e.body)
            return _Val(b.t * n, b.vars)
        letters = {x: chr(ord("a") + i) for i, x in enumerate(out_vars + (e.var,))}
        if len(letters) > 25:
            raise ValueError("evaluate: more than 25 simultaneously live variables")
        chan = max(v.channels for v in vals)
        operands, subs = [], []
        for v in vals:
            s = "".join(letters[x] for x in v.vars)
            if v.channels == chan and chan > 1:
                s += "z"
                operands.append(v.t)
            elif v.channels == 1 and chan > 1:
                operands.append(v.t[..., 0])
            else:  # chan == 1
                s += "z"
                operands.append(v.t)
            subs.append(s)
        spec = ",".join(subs) + "->" + "".join(letters[x] for x in out_vars) + "z"
        t = torch.einsum(spec, *operands)
        if scale != 1.0:
            t = t * scale
        return _Val(t, out_vars)

    if n == 0:
        # No vertex: sums are 0 and every variable axis is empty; channels need a dry run.
        return _empty_result(expr, order, features, functions, dtype, device)
    res = get(expr)
    shape = [n] * len(order)
    return res.aligned(order).expand(*shape, res.channels).contiguous()


def _empty_result(expr: Expr, order: tuple[Var, ...], features: torch.Tensor | None,
                  functions: Mapping[str, Callable], dtype: torch.dtype,
                  device: torch.device | str | None) -> torch.Tensor:
    """Result on the empty graph: closed expressions are evaluated on a 1-vertex dummy graph for
    their channel count, then sums over no vertex are zero except for applied functions of zero."""
    d = features.shape[1] if features is not None and features.dim() == 2 else 1
    dummy_feat = torch.zeros(1, d, dtype=dtype, device=device) if features is not None else None
    # Evaluate with sums forced to zero: replace the graph by one vertex and scale every sum by 0.
    zeroed = _zero_sums(expr)
    val = evaluate(zeroed, torch.zeros(1, 1, dtype=dtype, device=device), dummy_feat, functions,
                   free=order, dtype=dtype)
    return val.new_zeros(*([0] * len(order)), val.shape[-1]) if order else val


def _zero_sums(expr: Expr) -> Expr:
    memo: dict[int, Expr] = {}

    def go(e: Expr) -> Expr:
        if id(e) in memo:
            return memo[id(e)]
        if isinstance(e, Sum):
            r: Expr = Scale(0.0, Sum(e.var, go(e.body)))
        elif isinstance(e, Add):
            r = Add(tuple(go(t) for t in e.terms))
        elif isinstance(e, Mul):
            r = Mul(tuple(go(f) for f in e.factors))
        elif isinstance(e, Scale):
            r = Scale(e.a, go(e.expr))
        elif isinstance(e, Apply):
            r = Apply(e.f, tuple(go(a) for a in e.args))
        else:
            r = e
        memo[id(e)] = r
        return r

    for node in reversed(nodes(expr)):
        go(node)
    return go(expr)
