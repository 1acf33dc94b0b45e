"""Separation-power analysis of TL(Ω) expressions (Geerts & Reutter, ICLR 2022, Sec. 4).

``analyze(expr)`` reports what the theorems need:

* the free variables (vertex-, tuple- or graph-level embedding);
* the number of variables in use *with re-use allowed*: the minimum over all rewritings that
  push summations into products (Σ_x (a·b(x)) = a·Σ_x b(x)) and distribute them over ``+``. For a
  sum-product block this is the treewidth of its variable-interaction graph + 1 (free variables
  are never eliminated). Function applications are barriers: their arguments are analysed on their
  own and the application acts as one factor over its free variables. Elimination orders are
  searched exhaustively (with a subset dynamic programme above 7 bound variables);
* the summation depth (syntactic, and of the minimal-variable rewriting);
* whether the expression is guarded (GTL: one free variable, every summation is
  Σ_y E(x,y)·φ with φ built from sub-expressions guarded in x or in y);
* the resulting bound and the theorem it comes from:

  - Thm 4.1, vertex level: ρ1(cr^(t)) = ρ1(GTL^(t)(Ω));
  - Thm 4.1, graph level: ρ0(gcr^(t)) = ρ0(TL_2^(t+1)(Ω));
  - Thm 4.2 (k ≥ 1), vertex/tuple level: ρ1(vwl_k^(t)) = ρ1(TL_{k+1}^(t)(Ω));
  - Thm 4.2, graph level: ρ0(gwl_k^(t)) = ρ0(TL_{k+1}^(t+k)(Ω)).

  Here vwl_k is the *folklore* k-WL (k-FWL), so TL_3 ↔ 2-FWL (the "3-WL" of PPGN/BREC) and
  TL_2 ↔ vwl_1 (colour refinement plus global information). Ω (the non-linearities) never matters.
"""

from __future__ import annotations

import dataclasses
import itertools
from collections.abc import Sequence

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
    free_vars,
    nodes,
    summation_depth,
)

__all__ = ["Analysis", "analyze", "is_guarded", "min_variables", "syntactic_variables"]

_MAX_MONOMIALS = 256
_EXHAUSTIVE_LIMIT = 5
_DP_LIMIT = 16
_DP_WORK = 1 << 22  # subset-DP steps per block, shared by its distinct monomials


@dataclasses.dataclass(frozen=True)
class Analysis:
    """Result of :func:`analyze`.

    Attributes:
        free_vars: free variable names (sorted).
        num_vars: minimum number of variables over rewritings (treewidth + 1); with ``exact=False``
            an upper bound (heuristic elimination order or too many monomials).
        witness_depth: summation depth of the rewriting that achieves ``num_vars``.
        syntactic_vars: minimum over renamings of bound variables only (no rewriting).
        depth: summation depth of the expression as written.
        guarded: whether it lies in the guarded fragment GTL (one free variable).
        level: ``"vertex"``, ``"tuple"`` or ``"graph"``.
        bound: e.g. ``"cr^(2)"``, ``"vwl_2^(3)"``, ``"gcr^(2)"``.
        wl_method: the matching ``udl.wl`` method (``"cr"``, ``"2-fwl"``, ``"3-fwl"``, ...).
        wl_rounds: number of refinement rounds of the bound.
        theorem: the theorem the bound comes from.
        explanation: a human-readable derivation.
        exact: whether ``num_vars`` is guaranteed minimal.
    """

    free_vars: tuple[str, ...]
    num_vars: int
    witness_depth: int
    syntactic_vars: int
    depth: int
    guarded: bool
    level: str
    bound: str
    wl_method: str
    wl_rounds: int
    theorem: str
    explanation: str
    exact: bool = True

    @property
    def k(self) -> int:
        """The k of the folklore k-WL bound (1 for colour refinement)."""
        return 1 if self.wl_method == "cr" else int(self.wl_method.split("-")[0])

    def __str__(self) -> str:
        lines = [
            f"free variables : {', '.join(self.free_vars) or '(none: graph level)'}",
            f"variables      : {self.num_vars} (minimum over rewritings"
            f"{'' if self.exact else ', upper bound'}; "
            f"{self.syntactic_vars} as written)",
            f"summation depth: {self.depth} as written; {self.witness_depth} in the "
            f"{self.num_vars}-variable rewriting",
            f"guarded (GTL)  : {'yes' if self.guarded else 'no'}",
            f"bound          : {self.bound}  (udl.wl method={self.wl_method!r}, rounds={self.wl_rounds})",
            f"theorem        : {self.theorem}",
            "",
            self.explanation,
        ]
        return "\n".join(lines)


# ------------------------------------------------------------------------------ syntactic counts

def syntactic_variables(expr: Expr) -> int:
    """Fewest variable names that suffice by renaming bound variables only (no rewriting)."""
    fv_memo: dict[int, frozenset[Var]] = {}
    free_vars(expr, fv_memo)
    best = len(fv_memo[id(expr)])
    for e in nodes(expr):
        if isinstance(e, Sum):
            best = max(best, len(fv_memo[id(e.body)] | {e.var}))
        else:
            best = max(best, len(fv_memo[id(e)]))
    return best


# ------------------------------------------------------------------------------------ guardedness

def is_guarded(expr: Expr, x: Var | str | None = None) -> bool:
    """Whether ``expr`` is in GTL: guarded in its single free variable ``x``.

    Guarded in ``x`` means: atoms mention only ``x`` (``P(x)``, ``E(x,x)``), constants, ``+``,
    ``*``, scalars and function applications of guarded parts, and summations
    ``Σ_y E(x,y)·φ`` (or ``E(y,x)``) where every other factor of φ is built (by +, *, scalars and
    Ω) from expressions guarded in ``x`` or in ``y`` (and further ``E(x,y)``/``E(y,x)`` atoms).
    ``eq``/``neq`` between different variables are not guarded. Closed expressions are not guarded.
    """
    fv = free_vars(expr)
    if x is None:
        if len(fv) != 1:
            return False
        (x,) = fv
    x = Var(x) if isinstance(x, str) else x
    if not fv <= {x}:
        return False
    memo: dict[tuple[int, Var], bool] = {}
    return _guarded(expr, x, memo)


def _guarded(e: Expr, x: Var, memo: dict) -> bool:
    key = (id(e), x)
    if key in memo:
        return memo[key]
    if isinstance(e, Const):
        r = True
    elif isinstance(e, Label):
        r = e.x == x
    elif isinstance(e, (Edge, Eq, Neq)):
        r = e.x == x and e.y == x
    elif isinstance(e, (Add, Mul, Scale, Apply)):
        r = all(_guarded(c, x, memo) for c in e.children())
    elif isinstance(e, Sum):
        r = e.var != x and _guarded_sum(e.body, x, e.var, memo)
    else:  # pragma: no cover
        r = False
    memo[key] = r
    return r


def _is_guard(f: Expr, x: Var, y: Var) -> bool:
    return isinstance(f, Edge) and {f.x, f.y} == {x, y} and x != y


def _guarded_sum(body: Expr, x: Var, y: Var, memo: dict) -> bool:
    if isinstance(body, Add):
        return all(_guarded_sum(t, x, y, memo) for t in body.terms)
    if isinstance(body, Scale):
        return _guarded_sum(body.expr, x, y, memo)
    factors = body.factors if isinstance(body, Mul) else (body,)
    if not any(_is_guard(f, x, y) for f in factors):
        return False
    return all(_pair_guarded(f, x, y, memo) for f in factors)


def _pair_guarded(f: Expr, x: Var, y: Var, memo: dict) -> bool:
    if _is_guard(f, x, y) or _guarded(f, x, memo) or _guarded(f, y, memo):
        return True
    if isinstance(f, (Add, Mul, Scale, Apply)):
        return all(_pair_guarded(c, x, y, memo) for c in f.children())
    return False


# --------------------------------------------------------------------- minimum number of variables

@dataclasses.dataclass(frozen=True)
class _Factor:
    vars: frozenset  # Var (free) or int (bound token)
    depth: int
    nvars: int


@dataclasses.dataclass(frozen=True)
class _Mono:
    bound: frozenset
    factors: tuple[_Factor, ...]


class _Counter:
    def __init__(self) -> None:
        self.i = 0

    def fresh(self) -> int:
        self.i += 1
        return self.i


def _rename(m: _Mono, mapping: dict) -> _Mono:
    return _Mono(frozenset(mapping.get(v, v) for v in m.bound),
                 tuple(_Factor(frozenset(mapping.get(v, v) for v in f.vars), f.depth, f.nvars)
                       for f in m.factors))


def _refresh(m: _Mono, counter: _Counter) -> _Mono:
    if not m.bound:
        return m
    return _rename(m, {b: counter.fresh() for b in m.bound})


class _MinVars:
    """Monomial expansion between function-application barriers, then elimination orders."""

    def __init__(self) -> None:
        self.counter = _Counter()
        self.fv: dict[int, frozenset[Var]] = {}
        self.block: dict[int, tuple[int, int]] = {}  # id -> (nvars, witness depth) of a whole block
        self.mono_memo: dict[int, list[_Mono]] = {}
        self.elim_memo: dict[tuple, tuple[int, int]] = {}
        self.exact = True

    def analyse(self, e: Expr) -> tuple[int, int]:
        key = id(e)
        if key not in self.block:
            monos = self.monomials(e)
            nv = len(free_vars(e, self.fv))
            depth = 0
            budget_each = max(1, _DP_WORK // max(1, len(monos)))
            for m in monos:
                sig = _signature(m)
                if sig not in self.elim_memo:
                    self.elim_memo[sig] = _eliminate(m, self, budget_each)
                w, d = self.elim_memo[sig]
                nv, depth = max(nv, w), max(depth, d)
            self.block[key] = (nv, depth)
        return self.block[key]

    def monomials(self, e: Expr) -> list[_Mono]:
        key = id(e)
        if key not in self.mono_memo:
            self.mono_memo[key] = self._monomials(e)
        return self.mono_memo[key]

    def _monomials(self, e: Expr) -> list[_Mono]:
        if isinstance(e, Const):
            return [_Mono(frozenset(), ())]
        if isinstance(e, (Edge, Eq, Neq)):
            vs = frozenset((e.x, e.y))
            return [_Mono(frozenset(), (_Factor(vs, 0, len(vs)),))]
        if isinstance(e, Label):
            return [_Mono(frozenset(), (_Factor(frozenset((e.x,)), 0, 1),))]
        if isinstance(e, Scale):
            return self.monomials(e.expr)
        if isinstance(e, Apply):
            args_nv, args_d = 0, 0
            for a in e.args:
                nv, d = self.analyse(a)
                args_nv, args_d = max(args_nv, nv), max(args_d, d)
            vs = frozenset(free_vars(e, self.fv))
            return [_Mono(frozenset(), (_Factor(vs, args_d, max(args_nv, len(vs))),))]
        if isinstance(e, Add):
            out: list[_Mono] = []
            for t in e.terms:
                out.extend(self.monomials(t))
            if len(out) > _MAX_MONOMIALS:
                self.exact = False
                return [_Mono(frozenset(), (self.barrier_nosplit(t),)) for t in e.terms]
            return out
        if isinstance(e, Mul):
            parts = [self.monomials(f) for f in e.factors]
            total = 1
            for p in parts:
                total *= len(p)
            if total > _MAX_MONOMIALS:
                self.exact = False
                return [_Mono(frozenset(), tuple(self.barrier_nosplit(f) for f in e.factors))]
            out = []
            for combo in itertools.product(*parts):
                combo = [_refresh(m, self.counter) for m in combo]
                out.append(_Mono(frozenset().union(*(m.bound for m in combo)),
                                 tuple(f for m in combo for f in m.factors)))
            return out
        if isinstance(e, Sum):
            out = []
            for m in self.monomials(e.body):
                tok = self.counter.fresh()
                m = _rename(m, {e.var: tok})
                out.append(_Mono(m.bound | {tok}, m.factors))
            return out
        raise TypeError(f"unknown TL node {type(e).__name__}")  # pragma: no cover

    def barrier_nosplit(self, e: Expr) -> _Factor:
        """Fallback for huge expansions: treat ``e`` as a barrier (sound, maybe not minimal)."""
        nv, d = self.analyse_rename_only(e)
        return _Factor(frozenset(free_vars(e, self.fv)), d, nv)

    def analyse_rename_only(self, e: Expr) -> tuple[int, int]:
        return syntactic_variables(e), summation_depth(e)


def _signature(m: _Mono) -> tuple:
    """The monomial up to renaming of its bound variables (in construction order)."""
    names: dict = {}
    out = []
    for f in m.factors:
        vs = []
        for v in sorted(f.vars, key=lambda u: (isinstance(u, int), str(u) if not isinstance(u, int) else "")):
            if v in m.bound:
                if v not in names:
                    names[v] = len(names)
                vs.append(("b", names[v]))
            else:
                vs.append(("f", v.name))
        out.append((tuple(vs), f.depth, f.nvars))
    isolated = len(m.bound) - len(names)
    return tuple(out), isolated


def _eliminate(m: _Mono, ctx: _MinVars, budget: int = 1 << 62) -> tuple[int, int]:
    """Best (width, depth) over elimination orders of the bound variables of one monomial.

    width = number of variables needed = max(#free, max over eliminated v of |N(v)|+1, inner
    factors' own needs); depth = height of the resulting nesting of sums.
    """
    free = frozenset().union(*(f.vars for f in m.factors)) - m.bound if m.factors else frozenset()
    base = max([len(free)] + [f.nvars for f in m.factors])
    bound = sorted(m.bound)
    if not bound:
        return base, max((f.depth for f in m.factors), default=0)
    adj: dict = {v: set() for v in bound}
    for v in free:
        adj.setdefault(v, set())
    for f in m.factors:
        for a in f.vars:
            adj[a] |= f.vars - {a}
    if len(bound) <= _EXHAUSTIVE_LIMIT:
        best = None
        for order in itertools.permutations(bound):
            w, d = _simulate(order, adj, m.factors)
            if best is None or (w, d) < best:
                best = (w, d)
        w, d = best
    else:
        order = _dp_order(bound, adj, ctx, budget)
        w, d = _simulate(order, adj, m.factors)
    return max(base, w), d


def _simulate(order: Sequence, adj: dict, factors: Sequence[_Factor]) -> tuple[int, int]:
    g = {v: set(n) for v, n in adj.items()}
    pos = {v: i for i, v in enumerate(order)}
    width = 0
    parent: dict = {}
    for v in order:
        nb = g[v]
        width = max(width, len(nb) + 1)
        later = [u for u in nb if u in pos]
        parent[v] = min(later, key=pos.__getitem__) if later else None
        for a in nb:
            g[a] |= nb - {a}
            g[a].discard(v)
        del g[v]
    # depth: each factor sits inside the sum of its first-eliminated bound variable
    depth_at = {v: 0 for v in order}
    top = 0
    for f in factors:
        bvs = [u for u in f.vars if u in pos]
        if bvs:
            home = min(bvs, key=pos.__getitem__)
            depth_at[home] = max(depth_at[home], f.depth)
        else:
            top = max(top, f.depth)
    height: dict = {}
    for v in order:  # children are eliminated before parents
        height[v] = 1 + depth_at[v]
    for v in order:
        p = parent[v]
        if p is not None:
            depth_at[p] = max(depth_at[p], height[v])
            height[p] = 1 + depth_at[p]
    roots = [v for v in order if parent[v] is None]
    return width, max([top] + [height[r] for r in roots])


def _dp_order(bound: list, adj: dict, ctx: _MinVars, budget: int = 1 << 62) -> list:
    """Minimum-width elimination order by dynamic programming over subsets (<= 16 variables and
    within the work budget), else the greedy min-degree order (then only an upper bound)."""
    if len(bound) > _DP_LIMIT or (1 << len(bound)) * len(bound) > budget:
        ctx.exact = False
        g = {v: set(n) for v, n in adj.items()}
        order = []
        rest = set(bound)
        while rest:
            v = min(rest, key=lambda u: (len(g[u]), str(u)))
            order.append(v)
            nb = g.pop(v)
            for a in nb:
                g[a] |= nb - {a}
                g[a].discard(v)
            rest.discard(v)
        return order
    idx = {v: i for i, v in enumerate(bound)}

    def q(s_mask: int, v) -> int:
        # vertices outside S ∪ {v} reachable from v through S (then the width term is q + 1)
        seen, stack, out = {v}, [v], set()
        while stack:
            u = stack.pop()
            for w in adj[u]:
                if w in seen:
                    continue
                seen.add(w)
                if w in idx and s_mask >> idx[w] & 1:
                    stack.append(w)
                else:
                    out.add(w)
        return len(out)

    n = len(bound)
    best = {0: (0, [])}
    for mask in range(1, 1 << n):
        cand = None
        for v in bound:
            bit = 1 << idx[v]
            if mask & bit:
                prev = best[mask ^ bit]
                w = max(prev[0], q(mask ^ bit, v) + 1)
                if cand is None or w < cand[0]:
                    cand = (w, prev[1] + [v])
        best[mask] = cand
    return best[(1 << n) - 1][1]


def min_variables(expr: Expr) -> tuple[int, int, bool]:
    """``(num_vars, witness_depth, exact)``: fewest variables over rewritings and the depth then."""
    ctx = _MinVars()
    nv, d = ctx.analyse(expr)
    return nv, d, ctx.exact


# -------------------------------------------------------------------------------------- analyze

def _fmt(name: str, t: int) -> str:
    return f"{name}^({t})"


def analyze(expr: Expr, free: Sequence[Var | str] | None = None) -> Analysis:
    """Separation-power analysis of ``expr`` (see the module docstring for the theorems).

    Args:
        expr: a TL expression.
        free: optionally the allowed free variables (ValueError for any other unbound variable).
    """
    if not isinstance(expr, Expr):
        raise TypeError(f"expr: expected a TL expression, got {type(expr).__name__}")
    order = check_vars(expr, free)
    fv = tuple(v.name for v in sorted(free_vars(expr)))
    f = len(fv)
    depth = summation_depth(expr)
    syn = syntactic_variables(expr)
    nv, wdepth, exact = min_variables(expr)
    guarded = is_guarded(expr)
    rewrite_note = ""
    if nv < syn:
        rewrite_note = (f" Written, it needs {syn} variables; pushing summations into products "
                        f"(treewidth of the variable-interaction graph + 1) brings it to {nv}.")
    # Two valid (variables, depth) pairs: the minimal-variable rewriting and the text as written.
    if nv < syn or wdepth <= depth:
        kv, t_used = nv, wdepth
    else:
        kv, t_used = syn, depth
    if guarded:
        level, bound, method, rounds = "vertex", _fmt("cr", depth), "cr", depth
        theorem = "Thm 4.1 (vertex level): ρ1(cr^(t)) = ρ1(GTL^(t)(Ω))"
        expl = (f"The expression is guarded (GTL): one free variable {fv[0]} and every summation "
                f"ranges over neighbours only. With summation depth t={depth} its separation power is "
                f"bounded by {depth} rounds of colour refinement: vertices with equal cr^({depth}) "
                "colours get equal values, whatever the functions in Ω are.")
    elif f == 0 and kv <= 2:
        t = max(t_used - 1, 0)
        level, bound, method, rounds = "graph", _fmt("gcr", t), "cr", t
        theorem = "Thm 4.1 (graph level): ρ0(gcr^(t)) = ρ0(TL_2^(t+1)(Ω))"
        expl = (f"A closed expression (graph embedding) with {kv} variable(s) and summation depth "
                f"{t_used}: the outer read-out sum costs one level, so graphs with equal colour-refinement "
                f"histograms after {t} round(s) get equal values.{rewrite_note}")
    else:
        k = max(kv - 1, 1)
        if f == 0:
            t = max(t_used - k, 0)
            level, bound, method, rounds = "graph", _fmt(f"gwl_{k}", t), ("cr" if k == 1 else f"{k}-fwl"), t
            theorem = "Thm 4.2 (graph level): ρ0(gwl_k^(t)) = ρ0(TL_{k+1}^(t+k)(Ω))"
            expl = (f"A closed expression with {kv} variables (TL_{k + 1}) and summation depth {t_used}: "
                    f"the k={k} read-out sums cost {k} levels, so graphs with equal folklore {k}-WL "
                    f"colour histograms after {t} round(s) get equal values.{rewrite_note}")
        else:
            if f > k:
                k = f  # f free variables need f-tuples: TL_{f+1} with f free variables
            level = "vertex" if f == 1 else "tuple"
            bound, method, rounds = _fmt(f"vwl_{k}", t_used), ("cr" if k == 1 else f"{k}-fwl"), t_used
            theorem = "Thm 4.2 (vertex/tuple level): ρ1(vwl_k^(t)) = ρ1(TL_{k+1}^(t)(Ω))"
            at = (f"vertex {fv[0]} (via the diagonal tuple)" if f == 1 else
                  f"the {f}-tuple ({', '.join(fv)})" + (" padded to a k-tuple" if f < k else ""))
            extra = (" It is not guarded (a sum ranges over all vertices or an equality atom links "
                     "two variables), so colour refinement alone does not bound it; vwl_1 is cr "
                     "plus global information." if k == 1 else "")
            expl = (f"An embedding of {at} with {kv} variables (TL_{kv}, i.e. TL_{k + 1} with re-use) "
                    f"and summation depth {t_used}: bounded by {t_used} rounds of folklore {k}-WL "
                    f"(vwl_{k}, the paper's k-WL; {k}-FWL = {k + 1}-OWL).{extra}{rewrite_note}")
    if not exact:
        expl += (" (The variable count is an upper bound: the expression was too large to search "
                 "exhaustively.)")
    del order
    return Analysis(free_vars=fv, num_vars=nv, witness_depth=wdepth, syntactic_vars=syn, depth=depth,
                    guarded=guarded, level=level, bound=bound, wl_method=method, wl_rounds=rounds,
                    theorem=theorem, explanation=expl, exact=exact)
