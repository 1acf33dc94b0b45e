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


def _cmd_brec(args: argparse.Namespace) -> int:
    from udl.gnn.separation import brec_comparison, default_specs

    specs = default_specs(layers=args.layers, hidden=args.hidden, max_nodes_3=args.max_nodes_3)
    specs[1].max_nodes = args.max_nodes_2
    if args.models:
        known = {s.name for s in specs}
        unknown = sorted(set(args.models) - known)
        if unknown:
            raise ValueError(f"--models: unknown {unknown}; known: {sorted(known)}")
        specs = [s for s in specs if s.name in args.models]
    rows = brec_comparison(specs, args.categories, args.per_category, seed=args.seed, use_wl=not args.no_wl)
    header = ["model", "bound", "category", "pairs run", "model separates", "bound separates", "violations",
              "s"]
    bound = {s.name: s.wl_method for s in specs}
    data = [[r.model, bound[r.model], r.category, r.pairs, r.model_separated,
             "-" if r.wl_separated is None else r.wl_separated, "-" if r.violations is None else r.violations,
             f"{r.seconds:.1f}"] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *data)]
    print("  ".join(str(c).ljust(w) for c, w in zip(header, widths)))
    print("  ".join("-" * w for w in widths))
    for row in data:
        print("  ".join(str(c).ljust(w) for c, w in zip(row, widths)))
    violations = sum(r.violations or 0 for r in rows)
    return 1 if violations else 0


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

    b = sub.add_parser("brec", help="random-weight GIN / 2-MPNN / 3-MPNN vs their WL bounds on BREC")
    b.add_argument("--categories", nargs="+", metavar="CAT", help="BREC categories (default: all)")
    b.add_argument("--per-category", type=int, default=None, help="first N pairs per category")
    b.add_argument("--models", nargs="+", metavar="NAME", help="GIN, 2-MPNN, 3-MPNN (default: all)")
    b.add_argument("--layers", type=int, default=3, help="layers = WL rounds compared (default 3)")
    b.add_argument("--hidden", type=int, default=16, help="hidden channels (default 16)")
    b.add_argument("--max-nodes-2", type=int, default=70, help="skip bigger graphs for 2-MPNN (default 70)")
    b.add_argument("--max-nodes-3", type=int, default=20, help="skip bigger graphs for 3-MPNN (default 20)")
    b.add_argument("--seed", type=int, default=0)
    b.add_argument("--no-wl", action="store_true", help="do not run the WL bounds (udl.wl)")
    b.set_defaults(func=_cmd_brec)
