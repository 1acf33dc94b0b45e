"""``udl shuffle ...``: real distributed training and quick simulations from the command line.

* ``udl shuffle train --nproc M [options]`` -- spawn ``M`` gloo (or NCCL) processes on
  127.0.0.1 and train (same options as ``python -m udl.shuffling.distributed``, which also runs
  under ``torchrun``);
* ``udl shuffle simulate [options]`` -- the vectorised simulator on the 1-D skewed quadratic for a
  list of epoch budgets with the theorem step sizes; prints the errors and the fitted K-slope.
"""

from __future__ import annotations

import argparse
import json


def _cmd_train(args: argparse.Namespace) -> int:
    import sys

    from udl.shuffling.distributed import run_from_args

    try:
        run_from_args(args)
    except FloatingPointError as exc:  # a diverging run: the message names epoch/step/rank
        print(f"udl: error: {exc}", file=sys.stderr)
        return 2
    return 0


def _cmd_simulate(args: argparse.Namespace) -> int:
    from udl.shuffling import fit_slope, problems, rates, simulate

    p = problems.skewed_quadratic(args.N, L=args.L, mu=args.mu, nu=args.nu)

    def lr(K: int) -> float:
        return args.c * rates.step_size(args.algorithm, args.scheme, mu=args.mu, N=args.N, K=K,
                                        M=args.M, B=args.B)

    res = simulate(p, args.algorithm, args.scheme, M=args.M, B=args.B, K=args.K, lr=lr,
                   seeds=args.seeds)
    out = {"algorithm": args.algorithm, "scheme": args.scheme, "M": args.M, "N": args.N,
           "B": args.B, "seeds": args.seeds, "K": res.K, "lr": res.lr,
           "final_error": res.final_error.tolist(), "stderr": res.stderr.tolist()}
    if len(args.K) >= 2:
        fit = fit_slope(args.K, errors=res.errors)
        out["slope_K"] = {"fit": fit.slope, "ci95": [fit.lo, fit.hi],
                          "theory": rates.expected_slope("K", args.algorithm, args.scheme)}
    print(json.dumps(out, indent=2))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("shuffle", help="minibatch/local RR and SyncShuf: train, simulate")
    sub = p.add_subparsers(dest="shuffle_command", metavar="SUBCOMMAND")

    from udl.shuffling.distributed import add_train_arguments

    t = sub.add_parser("train", help="real torch.distributed training (gloo on 127.0.0.1)")
    add_train_arguments(t)
    t.set_defaults(func=_cmd_train)

    s = sub.add_parser("simulate", help="vectorised simulator on the 1-D skewed quadratic")
    s.add_argument("--algorithm", default="minibatch", choices=["minibatch", "local"])
    s.add_argument("--scheme", default="rr", choices=["rr", "wr", "syncshuf", "same"])
    s.add_argument("-M", "--M", type=int, default=4)
    s.add_argument("-N", "--N", type=int, default=16)
    s.add_argument("-B", "--B", type=int, default=1)
    s.add_argument("-K", "--K", type=int, nargs="+", default=[32, 64, 128, 256])
    s.add_argument("--seeds", type=int, default=500)
    s.add_argument("--L", type=float, default=4.0)
    s.add_argument("--mu", type=float, default=1.0)
    s.add_argument("--nu", type=float, default=1.0)
    s.add_argument("--c", type=float, default=1.0, help="scale of the theorem step size")
    s.set_defaults(func=_cmd_simulate)

    def _help(args: argparse.Namespace) -> int:
        p.print_help()
        return 2

    p.set_defaults(func=_help)
