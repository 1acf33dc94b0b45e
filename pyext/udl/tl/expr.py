"""Expressions of the tensor language TL(Ω) (Geerts & Reutter, ICLR 2022).

An expression is an immutable tree (or DAG: sub-expressions may be shared) built from

* atoms: ``E(x, y)`` (adjacency), ``P(x)`` / ``P[l](x)`` (all input features / feature ``l``),
  ``eq(x, y)``, ``neq(x, y)`` and numeric constants;
* ``a + b``, ``a * b`` (point-wise product, broadcast over variables and channels), scalar
  multiplication ``2 * a``;
* ``Apply(f, e1, ..., ep)``: a function ``f`` of Ω applied to the (channel-concatenated) values of
  its arguments (an MLP, ReLU, ``1/sqrt``, ...);
* ``Sum(x, e)``: summation of ``e`` over all vertices assigned to ``x``.

Variables may be re-bound (``Sum(x1, ...)`` inside a scope where ``x1`` is already bound shadows
it); this is how TL_k re-uses its ``k`` variables.

Values are vector-valued: a feature vector of ``d`` channels is a ``d``-tuple of TL expressions,
which does not change any separation bound (the paper treats ``d``-tuples of expressions the same
way), so layers with many channels stay small expressions.
"""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

__all__ = [
    "Var", "Expr", "Const", "Edge", "Label", "Eq", "Neq", "Add", "Mul", "Scale", "Apply", "Sum",
    "Function", "vars", "var", "E", "P", "eq", "neq", "const", "apply", "sums", "free_vars", "to_str",
    "summation_depth", "nodes", "same",
]

_VAR_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
RESERVED = frozenset({"E", "P", "eq", "neq", "sum"})


def _natural_key(name: str) -> tuple:
    parts = re.split(r"(\d+)", name)
    return tuple(int(p) if p.isdigit() else p for p in parts)


@dataclasses.dataclass(frozen=True, order=False)
class Var:
    """An index variable (``x1``, ``x2``, ...). Variables are compared by name."""

    name: str

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _VAR_RE.match(self.name):
            raise ValueError(f"variable name: expected an identifier, got {self.name!r}")
        if self.name in RESERVED or self.name.startswith("sum_"):
            raise ValueError(f"variable name: {self.name!r} is reserved")

    def __lt__(self, other: Var) -> bool:
        return _natural_key(self.name) < _natural_key(other.name)

    def __repr__(self) -> str:
        return self.name


def var(name: str) -> Var:
    """One variable: ``x = tl.var("x1")``."""
    return Var(name)


def vars(names: str | Iterable[str]) -> tuple[Var, ...]:  # noqa: A001 - mirrors sympy.symbols
    """Several variables: ``x1, x2 = tl.vars("x1 x2")`` (space or comma separated)."""
    if isinstance(names, str):
        names = [n for n in re.split(r"[\s,]+", names.strip()) if n]
    return tuple(Var(n) for n in names)


def _as_var(v: Any, what: str) -> Var:
    if isinstance(v, Var):
        return v
    if isinstance(v, str):
        return Var(v)
    raise TypeError(f"{what}: expected a variable (tl.Var or name), got {type(v).__name__}")


def _as_expr(e: Any, what: str = "operand") -> Expr:
    if isinstance(e, Expr):
        return e
    if isinstance(e, bool):
        raise TypeError(f"{what}: expected a TL expression or a number, got bool")
    if isinstance(e, (int, float)):
        return Const(float(e))
    if isinstance(e, Var):
        raise TypeError(f"{what}: a bare variable {e.name} is not an expression; "
                        f"use an atom such as P({e.name}) or E({e.name}, y)")
    raise TypeError(f"{what}: expected a TL expression or a number, got {type(e).__name__}")


class Expr:
    """Base class of TL expressions (immutable; compared structurally with :func:`same`)."""

    __slots__ = ()

    # operator sugar ---------------------------------------------------------------------------
    def __add__(self, other: Any) -> Expr:
        return Add((self, _as_expr(other)))

    def __radd__(self, other: Any) -> Expr:
        return Add((_as_expr(other), self))

    def __sub__(self, other: Any) -> Expr:
        return Add((self, Scale(-1.0, _as_expr(other))))

    def __rsub__(self, other: Any) -> Expr:
        return Add((_as_expr(other), Scale(-1.0, self)))

    def __neg__(self) -> Expr:
        return Scale(-1.0, self)

    def __mul__(self, other: Any) -> Expr:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return Scale(float(other), self)
        return Mul((self, _as_expr(other)))

    def __rmul__(self, other: Any) -> Expr:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return Scale(float(other), self)
        return Mul((_as_expr(other), self))

    def children(self) -> tuple[Expr, ...]:
        return ()

    def __str__(self) -> str:
        return to_str(self)

    def __repr__(self) -> str:
        return f"tl.parse({to_str(self)!r})"


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Const(Expr):
    """A numeric constant (a 1-channel value with no free variable)."""

    value: float

    def __post_init__(self) -> None:
        if isinstance(self.value, bool) or not isinstance(self.value, (int, float)):
            raise TypeError(f"Const: expected a number, got {type(self.value).__name__}")
        object.__setattr__(self, "value", float(self.value))


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Edge(Expr):
    """``E(x, y)``: 1 if there is an edge from the vertex of ``x`` to the vertex of ``y``."""

    x: Var
    y: Var


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Label(Expr):
    """``P[l](x)``: input feature ``l`` of vertex ``x``; ``index=None`` means all features."""

    x: Var
    index: int | None = None

    def __post_init__(self) -> None:
        if self.index is not None and (isinstance(self.index, bool) or not isinstance(self.index, int)
                                       or self.index < 0):
            raise ValueError(f"P[index]: expected a non-negative int, got {self.index!r}")


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Eq(Expr):
    """``eq(x, y)``: 1 if ``x`` and ``y`` denote the same vertex."""

    x: Var
    y: Var


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Neq(Expr):
    """``neq(x, y)``: 1 if ``x`` and ``y`` denote different vertices."""

    x: Var
    y: Var


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Add(Expr):
    """Sum of two or more expressions (broadcast over variables and channels)."""

    terms: tuple[Expr, ...]

    def __post_init__(self) -> None:
        flat: list[Expr] = []
        for t in self.terms:
            t = _as_expr(t, "Add term")
            flat.extend(t.terms if isinstance(t, Add) else (t,))
        if len(flat) < 2:
            raise ValueError("Add: expected at least two terms")
        object.__setattr__(self, "terms", tuple(flat))

    def children(self) -> tuple[Expr, ...]:
        return self.terms


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Mul(Expr):
    """Point-wise product of two or more expressions (broadcast over variables and channels)."""

    factors: tuple[Expr, ...]

    def __post_init__(self) -> None:
        flat: list[Expr] = []
        for f in self.factors:
            f = _as_expr(f, "Mul factor")
            flat.extend(f.factors if isinstance(f, Mul) else (f,))
        if len(flat) < 2:
            raise ValueError("Mul: expected at least two factors")
        object.__setattr__(self, "factors", tuple(flat))

    def children(self) -> tuple[Expr, ...]:
        return self.factors


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Scale(Expr):
    """Scalar multiplication ``a * e``."""

    a: float
    expr: Expr

    def __post_init__(self) -> None:
        if isinstance(self.a, bool) or not isinstance(self.a, (int, float)):
            raise TypeError(f"Scale: expected a number as the scalar, got {type(self.a).__name__}")
        object.__setattr__(self, "a", float(self.a))
        object.__setattr__(self, "expr", _as_expr(self.expr, "Scale operand"))

    def children(self) -> tuple[Expr, ...]:
        return (self.expr,)


@dataclasses.dataclass(frozen=True, eq=False)
class Function:
    """A function of Ω, referenced by name in expressions.

    ``fn`` (optional) maps a tensor ``[..., c_in]`` (the channel-concatenation of the arguments'
    values) to ``[..., c_out]``; it can also be supplied at evaluation time through
    ``tl.evaluate(..., functions={name: fn})``. ``arity`` (optional) is checked when applied.
    Calling a Function builds an :class:`Apply` node: ``mlp = tl.Function("mlp"); mlp(P(x))``.
    """

    name: str
    fn: Callable[..., Any] | None = None
    arity: int | None = None

    def __post_init__(self) -> None:
        if not isinstance(self.name, str) or not _VAR_RE.match(self.name) or self.name in RESERVED:
            raise ValueError(f"Function name: expected a non-reserved identifier, got {self.name!r}")
        if self.arity is not None and (not isinstance(self.arity, int) or self.arity < 1):
            raise ValueError(f"Function arity: expected a positive int, got {self.arity!r}")

    def __call__(self, *args: Any) -> Apply:
        return Apply(self, tuple(args))

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Function) and other.name == self.name

    def __hash__(self) -> int:
        return hash(("tl.Function", self.name))


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Apply(Expr):
    """``f(e1, ..., ep)`` for ``f`` in Ω: ``f`` sees the channel-concatenated argument values."""

    f: Function
    args: tuple[Expr, ...]

    def __post_init__(self) -> None:
        f = self.f
        if isinstance(f, str):
            f = Function(f)
        elif not isinstance(f, Function):
            if callable(f):
                f = Function(getattr(f, "__name__", None) if _VAR_RE.match(
                    str(getattr(f, "__name__", ""))) else "f", fn=f)
            else:
                raise TypeError(f"Apply: expected a tl.Function, a name or a callable, got {f!r}")
        object.__setattr__(self, "f", f)
        args = tuple(_as_expr(a, f"argument of {f.name}") for a in self.args)
        if not args:
            raise ValueError(f"Apply {f.name}: expected at least one argument")
        if f.arity is not None and len(args) != f.arity:
            raise ValueError(f"arity mismatch: function {f.name} expects {f.arity} argument(s), "
                             f"got {len(args)}")
        object.__setattr__(self, "args", args)

    def children(self) -> tuple[Expr, ...]:
        return self.args


@dataclasses.dataclass(frozen=True, eq=False, repr=False)
class Sum(Expr):
    """``Sum(x, e)``: summation of ``e`` over all vertices for ``x`` (binds ``x``)."""

    var: Var
    body: Expr

    def __post_init__(self) -> None:
        object.__setattr__(self, "var", _as_var(self.var, "Sum variable"))
        object.__setattr__(self, "body", _as_expr(self.body, "Sum body"))

    def children(self) -> tuple[Expr, ...]:
        return (self.body,)


# ----------------------------------------------------------------------------------------- builders

def E(x: Var | str, y: Var | str) -> Edge:  # noqa: N802 - the paper's name
    """Adjacency atom ``E(x, y)``."""
    return Edge(_as_var(x, "E first argument"), _as_var(y, "E second argument"))


class _LabelBuilder:
    """``P(x)`` (all feature channels) or ``P[l](x)`` (feature channel ``l``)."""

    def __call__(self, x: Var | str) -> Label:
        return Label(_as_var(x, "P argument"), None)

    def __getitem__(self, index: int) -> Callable[[Var | str], Label]:
        if isinstance(index, bool) or not isinstance(index, int) or index < 0:
            raise ValueError(f"P[index]: expected a non-negative int, got {index!r}")
        return lambda x: Label(_as_var(x, "P argument"), index)

    def __repr__(self) -> str:
        return "tl.P"


P = _LabelBuilder()


def eq(x: Var | str, y: Var | str) -> Eq:
    """Equality atom ``eq(x, y)`` (the paper's 1[x = y])."""
    return Eq(_as_var(x, "eq first argument"), _as_var(y, "eq second argument"))


def neq(x: Var | str, y: Var | str) -> Neq:
    """Inequality atom ``neq(x, y)`` (the paper's 1[x ≠ y])."""
    return Neq(_as_var(x, "neq first argument"), _as_var(y, "neq second argument"))


def sums(variables: Var | str | Sequence[Var | str], body: Any) -> Expr:
    """``Σ_{v1} ... Σ_{vm} body``: nested summations, outermost first (``sum_{x2,x3} e`` in text)."""
    if isinstance(variables, (Var, str)):
        variables = [variables]
    out = _as_expr(body, "Sum body")
    for v in reversed(list(variables)):
        out = Sum(_as_var(v, "Sum variable"), out)
    return out


def const(value: float) -> Const:
    return Const(value)


def apply(f: Function | str | Callable, *args: Any) -> Apply:
    """``f(args...)``; ``f`` is a :class:`Function`, a name (resolved at evaluation) or a callable."""
    return Apply(f, tuple(args))


# --------------------------------------------------------------------------------------- traversal

def nodes(expr: Expr) -> list[Expr]:
    """Distinct nodes of the expression DAG (each shared node once), parents before children."""
    seen: set[int] = set()
    out: list[Expr] = []
    stack = [expr]
    while stack:
        e = stack.pop()
        if id(e) in seen:
            continue
        seen.add(id(e))
        out.append(e)
        stack.extend(reversed(e.children()))
    return out


def _atom_vars(e: Expr) -> tuple[Var, ...]:
    if isinstance(e, (Edge, Eq, Neq)):
        return (e.x, e.y)
    if isinstance(e, Label):
        return (e.x,)
    return ()


def free_vars(expr: Expr, memo: dict[int, frozenset[Var]] | None = None) -> frozenset[Var]:
    """The free variables of ``expr`` (DAG-aware, linear time)."""
    memo = {} if memo is None else memo

    def go(e: Expr) -> frozenset[Var]:
        key = id(e)
        if key in memo:
            return memo[key]
        if isinstance(e, Sum):
            r = go(e.body) - {e.var}
        elif e.children():
            r = frozenset().union(*(go(c) for c in e.children()))
        else:
            r = frozenset(_atom_vars(e))
        memo[key] = r
        return r

    return _iterative(go, expr, memo)


def summation_depth(expr: Expr, memo: dict[int, int] | None = None) -> int:
    """Maximal nesting of ``Sum`` (the paper's summation depth)."""
    memo = {} if memo is None else memo

    def go(e: Expr) -> int:
        key = id(e)
        if key not in memo:
            inner = max((go(c) for c in e.children()), default=0)
            memo[key] = inner + (1 if isinstance(e, Sum) else 0)
        return memo[key]

    return _iterative(go, expr, memo)


def _iterative(go: Callable[[Expr], Any], expr: Expr, memo: dict | None = None) -> Any:
    """Run a memoised recursive pass bottom-up first so that deep DAGs do not hit the recursion
    limit; nodes already in ``memo`` (and everything below them) are not visited again."""
    if memo is None:
        order = nodes(expr)
    else:
        if id(expr) in memo:
            return memo[id(expr)]
        seen: set[int] = set()
        order = []
        stack = [expr]
        while stack:
            e = stack.pop()
            if id(e) in seen or id(e) in memo:
                continue
            seen.add(id(e))
            order.append(e)
            stack.extend(e.children())
    for node in reversed(order):
        go(node)
    return go(expr)


# ---------------------------------------------------------------------------------------- printing
# Precedence: + (1) < sum-prefix (2) < * (3) < atoms (4). ``sum_{x} A * B`` sums the whole product.

def _num(v: float) -> str:
    if v == int(v) and abs(v) < 1e15:
        return str(int(v))
    return repr(v)


def to_str(expr: Expr) -> str:
    """The text syntax of ``expr`` (``tl.parse(to_str(e))`` rebuilds ``e``)."""
    memo: dict[int, str] = {}

    def go(e: Expr) -> str:
        key = id(e)
        if key in memo:
            return memo[key]
        if isinstance(e, Const):
            s = _num(e.value)
        elif isinstance(e, Edge):
            s = f"E({e.x.name},{e.y.name})"
        elif isinstance(e, Label):
            s = f"P({e.x.name})" if e.index is None else f"P{e.index}({e.x.name})"
        elif isinstance(e, Eq):
            s = f"eq({e.x.name},{e.y.name})"
        elif isinstance(e, Neq):
            s = f"neq({e.x.name},{e.y.name})"
        elif isinstance(e, Add):
            s = " + ".join(go(t) for t in e.terms)
        elif isinstance(e, Mul):
            parts = []
            for i, f in enumerate(e.factors):
                last = i == len(e.factors) - 1
                s_f = go(f)
                if isinstance(f, Add) or (isinstance(f, (Sum, Scale, Mul)) and not last) or (
                        isinstance(f, Const) and f.value < 0):
                    s_f = f"({s_f})"
                parts.append(s_f)
            s = " * ".join(parts)
        elif isinstance(e, Scale):
            inner = go(e.expr)
            if isinstance(e.expr, Add) or (isinstance(e.expr, Const) and e.expr.value < 0):
                inner = f"({inner})"
            s = f"{_num(e.a)} * {inner}"
        elif isinstance(e, Apply):
            s = f"{e.f.name}(" + ", ".join(go(a) for a in e.args) + ")"
        elif isinstance(e, Sum):
            body = go(e.body)
            if isinstance(e.body, Add):
                body = f"({body})"
            s = f"sum_{{{e.var.name}}} {body}"
        else:  # pragma: no cover - every node type is handled above
            raise TypeError(f"unknown TL node {type(e).__name__}")
        memo[key] = s
        return s

    return _iterative(go, expr)


def same(a: Expr, b: Expr) -> bool:
    """Structural equality (same text form and the same constants)."""
    return to_str(a) == to_str(b)


def check_vars(expr: Expr, free: Sequence[Var | str] | None) -> tuple[Var, ...]:
    """Validate that every free variable of ``expr`` is in ``free``; return the ordered free tuple.

    ``free=None`` takes the free variables in natural order (x1 < x2 < x10).
    """
    fv = free_vars(expr)
    if free is None:
        return tuple(sorted(fv))
    order = tuple(_as_var(v, "free") for v in free)
    if len(set(order)) != len(order):
        raise ValueError(f"free: repeated variable in {[v.name for v in order]}")
    unbound = sorted(fv - set(order))
    if unbound:
        raise ValueError(f"unbound variable(s) {[v.name for v in unbound]}: not bound by a sum and "
                         f"not among the free variables {[v.name for v in order]}")
    return order
