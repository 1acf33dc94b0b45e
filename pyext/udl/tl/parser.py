"""A small text syntax for TL(Ω) expressions.

Grammar (``*`` binds tighter than the ``sum`` prefix, which binds tighter than ``+``)::

    expr    := term (('+' | '-') term)*
    term    := 'sum_{' var (',' var)* '}' term          # sums the whole product that follows
             | factor ('*' factor)*  [ '*' 'sum_{...}' term ]
    factor  := NUMBER | '-' factor | '(' expr ')'
             | 'E(' var ',' var ')' | 'eq(' var ',' var ')' | 'neq(' var ',' var ')'
             | 'P(' var ')' | 'P' INT '(' var ')' | 'P[' INT '](' var ')'
             | NAME '(' expr (',' expr)* ')'           # function application, f in Ω

``sum_x2 e`` (no braces) and ``Σ_{x2} e`` are accepted too. Examples::

    sum_{x2} E(x1,x2) * P0(x2)
    mlp(P(x1) + sum_{x2} E(x1,x2) * P(x2))
    sum_{x1,x2,x3} E(x1,x2) * E(x2,x3) * E(x3,x1)      # 6 x the triangle count
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping, Sequence
from typing import Any

from udl.tl.expr import (
    RESERVED,
    Apply,
    Const,
    Edge,
    Eq,
    Expr,
    Function,
    Label,
    Mul,
    Neq,
    Scale,
    Sum,
    Var,
    check_vars,
)

__all__ = ["parse", "TLSyntaxError"]


class TLSyntaxError(ValueError):
    """A syntax error in a TL expression, with the position and a caret under it."""

    def __init__(self, message: str, text: str, pos: int) -> None:
        self.message, self.text, self.pos = message, text, pos
        super().__init__(f"{message} at position {pos}\n  {text}\n  {' ' * pos}^")


_TOKEN_RE = re.compile(r"""
    (?P<ws>\s+)
  | (?P<num>(?:\d+\.\d*|\.\d+|\d+)(?:[eE][+-]?\d+)?)
  | (?P<sum>(?:sum|Σ)_)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>[()\[\]{},+*-])
""", re.VERBOSE)


def _tokenize(text: str) -> list[tuple[str, str, int]]:
    tokens = []
    pos = 0
    while pos < len(text):
        m = _TOKEN_RE.match(text, pos)
        if not m:
            raise TLSyntaxError(f"unexpected character {text[pos]!r}", text, pos)
        kind = m.lastgroup
        if kind != "ws":
            tokens.append((kind, m.group(), pos))
        pos = m.end()
    tokens.append(("end", "", len(text)))
    return tokens


class _Parser:
    def __init__(self, text: str, functions: Mapping[str, Any] | None) -> None:
        self.text = text
        self.toks = _tokenize(text)
        self.i = 0
        self.functions = functions

    # helpers ----------------------------------------------------------------------------------
    @property
    def tok(self) -> tuple[str, str, int]:
        return self.toks[self.i]

    def error(self, msg: str, pos: int | None = None) -> TLSyntaxError:
        return TLSyntaxError(msg, self.text, self.tok[2] if pos is None else pos)

    def accept(self, value: str) -> bool:
        if self.tok[1] == value and self.tok[0] in ("op", "name"):
            self.i += 1
            return True
        return False

    def expect(self, value: str, what: str = "") -> None:
        if not self.accept(value):
            found = self.tok[1] or "end of input"
            raise self.error(f"expected {value!r}{what}, found {found!r}")

    def variable(self, context: str) -> Var:
        kind, value, pos = self.tok
        if kind != "name":
            found = value or "end of input"
            raise self.error(f"{context}: expected a variable name, found {found!r}")
        if value in RESERVED:
            raise self.error(f"{context}: {value!r} is reserved and cannot be a variable")
        self.i += 1
        return Var(value)

    # grammar ----------------------------------------------------------------------------------
    def parse(self) -> Expr:
        if self.tok[0] == "end":
            raise self.error("empty expression")
        e = self.expr()
        if self.tok[0] != "end":
            raise self.error(f"unexpected {self.tok[1]!r} after a complete expression")
        return e

    def expr(self) -> Expr:
        e = self.term()
        while self.tok[1] in ("+", "-") and self.tok[0] == "op":
            op = self.tok[1]
            self.i += 1
            rhs = self.term()
            e = e + rhs if op == "+" else e - rhs
        return e

    def sum_prefix(self) -> list[Var]:
        self.i += 1  # the 'sum_' token
        if self.accept("{"):
            vs = [self.variable("sum")]
            while self.accept(","):
                vs.append(self.variable("sum"))
            self.expect("}", " closing the summation variables")
        else:
            vs = [self.variable("sum")]
        return vs

    def term(self) -> Expr:
        if self.tok[0] == "sum":
            vs = self.sum_prefix()
            if self.tok[0] == "end" or self.tok[1] in (")", ",", "+", "}"):
                raise self.error("sum: missing the expression to sum")
            body = self.term()
            for v in reversed(vs):
                body = Sum(v, body)
            return body
        factors = [self.factor()]
        while self.tok[1] == "*" and self.tok[0] == "op":
            self.i += 1
            if self.tok[0] == "sum":
                factors.append(self.term())
                break
            factors.append(self.factor())
        if len(factors) == 1:
            return factors[0]
        if isinstance(factors[0], Const):
            rest = factors[1:]
            return Scale(factors[0].value, rest[0] if len(rest) == 1 else Mul(tuple(rest)))
        return Mul(tuple(factors))

    def args(self, name: str, pos: int) -> list[Expr]:
        self.expect("(", f" after {name}")
        if self.accept(")"):
            raise self.error(f"function {name} applied to no argument", pos)
        out = [self.expr()]
        while self.accept(","):
            out.append(self.expr())
        self.expect(")", f" closing the arguments of {name}")
        return out

    def var_args(self, name: str, arity: int, pos: int) -> list[Var]:
        self.expect("(", f" after {name}")
        vs: list[Var] = []
        if self.tok[1] != ")":
            vs.append(self.variable(name))
            while self.accept(","):
                vs.append(self.variable(name))
        self.expect(")", f" closing {name}(...)")
        if len(vs) != arity:
            raise self.error(f"arity mismatch: {name} expects {arity} variable(s), got {len(vs)}", pos)
        return vs

    def factor(self) -> Expr:
        kind, value, pos = self.tok
        if kind == "num":
            self.i += 1
            return Const(float(value))
        if kind == "op" and value == "-":
            self.i += 1
            inner = self.factor()
            if isinstance(inner, Const):
                return Const(-inner.value)
            return Scale(-1.0, inner)
        if kind == "op" and value == "(":
            self.i += 1
            e = self.expr()
            self.expect(")", " closing '('")
            return e
        if kind == "sum":
            raise self.error("a sum inside a product must come last or be parenthesised")
        if kind != "name":
            raise self.error(f"expected an expression, found {value or 'end of input'!r}")
        self.i += 1
        if value == "E":
            x, y = self.var_args("E", 2, pos)
            return Edge(x, y)
        if value == "eq":
            x, y = self.var_args("eq", 2, pos)
            return Eq(x, y)
        if value == "neq":
            x, y = self.var_args("neq", 2, pos)
            return Neq(x, y)
        m = re.fullmatch(r"P(\d*)", value)
        if m:
            index: int | None = int(m.group(1)) if m.group(1) else None
            if index is None and self.accept("["):
                if self.tok[0] != "num" or not self.tok[1].isdigit():
                    raise self.error("P[...]: expected a non-negative integer feature index")
                index = int(self.tok[1])
                self.i += 1
                self.expect("]", " closing P[...]")
            (x,) = self.var_args("P", 1, pos)
            return Label(x, index)
        if self.tok[1] != "(":
            raise self.error(f"{value!r} is not an expression (a variable can only appear inside an "
                             f"atom such as P({value}) or E({value},y))", pos)
        return self.application(value, pos)

    def application(self, name: str, pos: int) -> Expr:
        f: Function
        if self.functions is not None:
            if name not in self.functions:
                raise self.error(f"unknown function {name!r}; known: {sorted(self.functions)}", pos)
            given = self.functions[name]
            f = given if isinstance(given, Function) else Function(name, fn=given)
        else:
            f = Function(name)
        args = self.args(name, pos)
        if f.arity is not None and len(args) != f.arity:
            raise self.error(f"arity mismatch: function {name} expects {f.arity} argument(s), "
                             f"got {len(args)}", pos)
        return Apply(f, tuple(args))


def parse(text: str, free: Sequence[Var | str] | None = None,
          functions: Mapping[str, Function | Callable] | None = None) -> Expr:
    """Parse the text syntax into an expression.

    Args:
        text: e.g. ``"sum_{x2} E(x1,x2) * P0(x2)"``.
        free: if given, the allowed free variables; any other unbound variable raises ValueError.
        functions: if given, the known functions of Ω (``name -> tl.Function`` or callable);
            unknown names and wrong arities raise :class:`TLSyntaxError`. Without it every
            ``name(...)`` becomes an application of ``tl.Function(name)``.

    Raises:
        TLSyntaxError (a ValueError): malformed text, with position and caret.
    """
    if not isinstance(text, str):
        raise TypeError(f"text: expected str, got {type(text).__name__}")
    expr = _Parser(text, functions).parse()
    if free is not None:
        check_vars(expr, free)
    return expr
