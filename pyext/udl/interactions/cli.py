"""``udl interactions ...``: train normal / low / mid / high-order models on digits and measure
their J^(m) curves.

    udl interactions train --arch mlp --variant low --epochs 30 --out low.pt
    udl interactions measure low.pt --images 16 --pairs 24 --contexts 32
"""

from __future__ import annotations

import argparse
import json


def _threads(args: argparse.Namespace) -> None:
    import torch

    if args.threads > 0:
        torch.set_num_threads(args.threads)


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from udl.interactions.train import load_digits, measure_J, pgd_accuracy, train_model

    _threads(args)
    data = load_digits(seed=args.seed)
    variants = ["normal", "low", "mid", "high"] if args.variant == "all" else [args.variant]
    summary = []
    for variant in variants:
        tr = train_model(data, args.arch, variant, epochs=args.epochs, lr=args.lr,
                         batch_size=args.batch_size, seed=args.seed, weight=args.weight)
        row = {"arch": args.arch, "variant": variant, "train_acc": round(tr.train_acc, 4),
               "test_acc": round(tr.test_acc, 4),
               "loss_gap": round(tr.test_loss - tr.train_loss, 4),
               "seconds": round(tr.seconds, 2)}
        if args.pgd:
            row["pgd_acc"] = round(pgd_accuracy(tr.model, data, eps=args.pgd_eps, steps=10), 4)
        if args.measure:
            res = measure_J(tr.model, data, images=args.images, num_pairs=args.pairs,
                            num_contexts=args.contexts, seed=args.seed, progress=True)
            row["orders"] = res.orders.tolist()
            row["J"] = [round(v, 4) for v in res.J.tolist()]
        summary.append(row)
        if args.out:
            path = args.out if len(variants) == 1 else args.out.replace(".pt", f"_{variant}.pt")
            torch.save({"arch": args.arch, "variant": variant, "seed": args.seed,
                        "state_dict": tr.model.state_dict()}, path)
            row["checkpoint"] = path
        print(json.dumps(row))
    return 0


def _cmd_measure(args: argparse.Namespace) -> int:
    import torch

    from udl.interactions.train import load_digits, make_model, measure_J

    _threads(args)
    ckpt = torch.load(args.checkpoint, map_location="cpu", weights_only=True)
    if not isinstance(ckpt, dict) or "state_dict" not in ckpt or "arch" not in ckpt:
        raise ValueError(f"{args.checkpoint} is not a checkpoint written by "
                         "`udl interactions train --out`")
    model = make_model(ckpt["arch"])
    model.load_state_dict(ckpt["state_dict"])
    data = load_digits(seed=int(ckpt.get("seed", 0)))
    res = measure_J(model, data, images=args.images, num_pairs=args.pairs,
                    num_contexts=args.contexts, seed=args.seed, progress=True)
    print(f"{'m':>4} {'m/(n-2)':>8} {'J':>7} {'floor':>7} {'J debiased':>11}")
    for m, j, f, jd in zip(res.orders.tolist(), res.J.tolist(), res.J_noise_floor.tolist(),
                           res.J_debiased.tolist()):
        print(f"{m:4d} {m / (res.num_players - 2):8.3f} {j:7.3f} {f:7.3f} {jd:11.3f}")
    print(f"({res.I.shape[0]} images x {res.I.shape[1]} pairs, K = {args.contexts}, "
          f"{res.num_forwards} forwards)")
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("interactions",
                              help="multi-order interactions: train order-loss models, measure J")
    sub = p.add_subparsers(dest="interactions_command", metavar="SUBCOMMAND")

    t = sub.add_parser("train", help="train a normal / low / mid / high-order model on digits")
    t.add_argument("--arch", choices=["mlp", "cnn"], default="mlp")
    t.add_argument("--variant", choices=["normal", "low", "mid", "high", "all"],
                   default="normal", help="low: L- on (0.7, 1); mid: L+ on (0.3, 0.7); "
                                          "high: L- on (0, 0.5)")
    t.add_argument("--epochs", type=int, default=30)
    t.add_argument("--lr", type=float, default=0.05)
    t.add_argument("--batch-size", type=int, default=64)
    t.add_argument("--weight", type=float, default=1.0, help="lambda of the order loss")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--pgd", action="store_true", help="also report PGD accuracy")
    t.add_argument("--pgd-eps", type=float, default=0.1)
    t.add_argument("--measure", action="store_true", help="also measure J^(m)")
    t.add_argument("--images", type=int, default=10)
    t.add_argument("--pairs", type=int, default=16)
    t.add_argument("--contexts", type=int, default=16)
    t.add_argument("--out", default=None, help="save the model here (.pt)")
    t.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: fastest for these tiny models; 0 = "
                        "leave torch's default)")
    t.set_defaults(func=_cmd_train)

    m = sub.add_parser("measure", help="J^(m) of a checkpoint from `udl interactions train`")
    m.add_argument("checkpoint")
    m.add_argument("--images", type=int, default=10)
    m.add_argument("--pairs", type=int, default=16)
    m.add_argument("--contexts", type=int, default=16)
    m.add_argument("--seed", type=int, default=0)
    m.add_argument("--threads", type=int, default=1,
                   help="torch intra-op threads (default 1: fastest for these tiny models; 0 = "
                        "leave torch's default)")
    m.set_defaults(func=_cmd_measure)

    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
