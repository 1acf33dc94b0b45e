"""``udl tl``: the architecture → WL bound table and the analyzer for any TL expression."""

from __future__ import annotations

import argparse
import json


def _cmd_table(args: argparse.Namespace) -> int:
    from udl.tl.architectures import format_table, table

    rows = table(args.layers, args.only)
    if args.json:
        keep = [{k: v for k, v in r.items() if k not in ("analysis", "graph_analysis")} for r in rows]
        print(json.dumps(keep, indent=2))
        return 0
    print(f"Separation-power bounds of {args.layers}-layer GNNs (Geerts & Reutter, ICLR 2022): variables "
          "after re-use, summation depth, guardedness; vwl_k = folklore k-WL.")
    print(format_table(rows))
    return 0


def _cmd_analyze(args: argparse.Namespace) -> int:
    from udl.tl.analysis import analyze
    from udl.tl.parser import parse

    expr = parse(args.expr, free=args.free)
    a = analyze(expr)
    if args.json:
        import dataclasses

        print(json.dumps(dataclasses.asdict(a), indent=2))
        return 0
    print(f"expression     : {expr}")
    print(a)
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("tl", help="tensor language: bound a GNN by a WL test (Geerts & Reutter)")
    sub = p.add_subparsers(dest="tl_command", metavar="SUBCOMMAND")
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])

    t = sub.add_parser("table", help="architecture -> variables, depth, guardedness, WL bound")
    t.add_argument("--layers", type=int, default=2, help="number of layers (default 2)")
    t.add_argument("--only", nargs="+", metavar="NAME", help="only these architectures")
    t.add_argument("--json", action="store_true", help="print JSON")
    t.set_defaults(func=_cmd_table)

    a = sub.add_parser("analyze", help='analyse a TL expression, e.g. "sum_{x2} E(x1,x2) * P0(x2)"')
    a.add_argument("expr", help="expression in the text syntax (see udl.tl.parser)")
    a.add_argument("--free", nargs="+", metavar="VAR", help="allowed free variables (others: error)")
    a.add_argument("--json", action="store_true", help="print JSON")
    a.set_defaults(func=_cmd_analyze)
