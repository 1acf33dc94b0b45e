"""udl.tl: the tensor language TL(Ω) of Geerts & Reutter (ICLR 2022) — bound any GNN by a WL test.

Write a layer as an expression, get its separation-power bound::

    from udl import tl
    x1, x2 = tl.vars("x1 x2")
    mlp = tl.Function("mlp")
    layer = mlp(tl.P(x1) + tl.Sum(x2, tl.E(x1, x2) * tl.P(x2)))     # one GIN layer
    print(tl.analyze(layer).bound)                                   # cr^(1)
    tl.analyze(tl.parse("sum_{x1,x2,x3} E(x1,x2)*E(x2,x3)*E(x3,x1)")).wl_method   # '2-fwl'

``tl.evaluate(expr, graph, features, functions)`` computes the tensor an expression denotes, so an
expression can be checked against the layer it claims to describe; ``tl.architectures`` holds
GIN, GCN, GraphSAGE, GAT, MPNN+read-out, ChebNet, PPGN, k-IGN, k-GNN and k-MPNN.
"""

from __future__ import annotations

import importlib

from udl.tl.analysis import Analysis, analyze, is_guarded, min_variables, syntactic_variables
from udl.tl.evaluate import BUILTINS, dense_adjacency, evaluate
from udl.tl.expr import (
    Add,
    Apply,
    Const,
    E,
    Edge,
    Eq,
    Expr,
    Function,
    Label,
    Mul,
    Neq,
    P,
    Scale,
    Sum,
    Var,
    apply,
    check_vars,
    const,
    eq,
    free_vars,
    neq,
    same,
    summation_depth,
    sums,
    to_str,
    var,
    vars,
)
from udl.tl.parser import TLSyntaxError, parse

__all__ = [
    "Analysis", "analyze", "is_guarded", "min_variables", "syntactic_variables",
    "BUILTINS", "dense_adjacency", "evaluate",
    "Add", "Apply", "Const", "E", "Edge", "Eq", "Expr", "Function", "Label", "Mul", "Neq", "P",
    "Scale", "Sum", "Var", "apply", "check_vars", "const", "eq", "free_vars", "neq", "same",
    "summation_depth", "sums", "to_str", "var", "vars", "TLSyntaxError", "parse", "architectures",
]


def __getattr__(name: str):
    if name == "architectures":
        return importlib.import_module("udl.tl.architectures")
    raise AttributeError(f"module 'udl.tl' has no attribute {name!r}")
