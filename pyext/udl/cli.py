"""The ``udl`` command line: ``info``, ``report``, ``bench`` and one sub-command per method.

A method adds ``udl <method> ...`` by shipping ``udl/<method>/cli.py`` with::

    def register(subparsers) -> None:
        p = subparsers.add_parser("collapse", help="...")
        ...  # sub-sub-commands; each sets p.set_defaults(func=callable(args) -> int)
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import platform
import sys

from udl._plugins import find_plugins, load_plugin

_OPTIONAL_DEPS = ("torchvision", "torchaudio", "torch_geometric", "cvxpy", "clarabel", "sklearn",
                  "networkx", "matplotlib", "tqdm", "scipy", "shapiq", "grakel", "pynauty", "scnn")


def _cmd_info(args: argparse.Namespace) -> int:
    import torch

    import udl

    info = {
        "udl": udl.__version__,
        "python": platform.python_version(),
        "torch": torch.__version__,
        "torch_cuda": torch.version.cuda,
        "build": dict(udl.BUILD_INFO),
        "native_ops": udl.native_ops(),
        "devices": ["cpu"] + [f"cuda:{i} ({torch.cuda.get_device_name(i)})"
                              for i in range(torch.cuda.device_count())],
        "threads": torch.get_num_threads(),
        "optional_deps": {name: importlib.util.find_spec(name) is not None
                          for name in _OPTIONAL_DEPS},
    }
    if args.json:
        print(json.dumps(info, indent=2))
        return 0
    print(f"udl {info['udl']}  (python {info['python']}, torch {info['torch']}, "
          f"torch CUDA {info['torch_cuda']})")
    b = info["build"]
    print(f"native extension: CUDA compiled={b['with_cuda']} (CUDA {b['cuda_version']}, "
          f"archs {b['cuda_archs'] or '-'}), OpenMP={b['with_openmp']}, "
          f"built against torch {b['torch_version']}")
    print(f"native ops ({len(info['native_ops'])}): {', '.join(info['native_ops']) or '-'}")
    print(f"devices: {', '.join(info['devices'])}; CPU threads: {info['threads']}")
    deps = info["optional_deps"]
    print("optional deps: " + ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in deps.items()))
    return 0


def _cmd_report(args: argparse.Namespace) -> int:
    from udl.report import run_report

    results = run_report(args.out, quick=args.quick, only=args.only, device=args.device,
                         seed=args.seed, show_progress=not args.no_progress)
    failed = [n for n, s in results["sections"].items() if s["status"] != "ok"]
    for name, sec in results["sections"].items():
        print(f"  {name:14s} {sec['status']:7s} {sec['seconds']:8.1f} s")
    print(f"report written to {args.out}/index.html")
    if failed:
        print(f"failed sections: {failed}", file=sys.stderr)
        for name in failed:
            print(results["sections"][name]["error"], file=sys.stderr)
        return 1
    return 0


def _cmd_bench(args: argparse.Namespace) -> int:
    from udl.bench import format_table, run_benchmarks, save_rows

    rows = run_benchmarks(only=args.only, quick=args.quick, device=args.device)
    print(format_table(rows))
    if args.out:
        print(f"saved to {save_rows(rows, args.out, args.device)}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="udl", description="udl: tools for understanding deep learning (ICLR 2022 papers).")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")

    p = sub.add_parser("info", help="versions, build info, devices and optional deps")
    p.add_argument("--json", action="store_true", help="print as JSON")
    p.set_defaults(func=_cmd_info)

    p = sub.add_parser("report", help="run every method's miniature reproduction -> HTML")
    p.add_argument("--quick", action="store_true", help="small settings (< 3 min on 2 CPU cores)")
    p.add_argument("--out", default="udl-report", help="output folder (default: udl-report)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="run only these sections")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--no-progress", action="store_true", help="hide progress bars")
    p.set_defaults(func=_cmd_report)

    p = sub.add_parser("bench", help="side-by-side benchmarks against peers (ratios)")
    p.add_argument("--only", nargs="+", metavar="NAME", help="only these methods")
    p.add_argument("--quick", action="store_true", help="smaller problem sizes")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument("--out", default=None, help="also save the rows as JSON here")
    p.set_defaults(func=_cmd_bench)

    for module in find_plugins("cli").values():
        load_plugin(module).register(sub)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except (ValueError, FileNotFoundError) as exc:
        print(f"udl: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
