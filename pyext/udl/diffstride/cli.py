"""``udl diffstride ...`` sub-commands."""

from __future__ import annotations

import argparse
import json


def _cmd_train_cifar(args: argparse.Namespace) -> int:
    import torch

    from udl.diffstride import complexity, learned_strides, resnet18
    from udl.diffstride.train import cifar_loaders, fit

    if args.epochs < 1 or args.batch_size < 1 or args.width < 1:
        raise ValueError("--epochs, --batch-size and --width must be >= 1")
    torch.manual_seed(args.seed)
    train, test = cifar_loaders(args.root, args.dataset, args.batch_size, args.workers, args.limit)
    num_classes = 10 if args.dataset == "cifar10" else 100
    model = resnet18(num_classes, pooling=args.pooling, strides=args.strides, width=args.width,
                     smoothness=args.smoothness)
    print(f"{args.dataset}: ResNet-18 ({args.pooling}, strides {tuple(args.strides)}, width "
          f"{args.width}); {complexity(model, (3, 32, 32)).item() / 1e6:.1f} MMACs at init")

    def progress(it, desc=""):
        from tqdm.auto import tqdm

        return tqdm(it, desc=desc)

    hist = fit(model, lambda: train, lambda: test, args.epochs, (3, 32, 32), lr=args.lr,
               stride_lr=args.stride_lr, lam=args.lam, label_smoothing=args.label_smoothing,
               device=args.device, progress=progress)
    for e, (acc, loss, macs) in enumerate(zip(hist.test_acc, hist.train_loss, hist.macs)):
        print(f"epoch {e + 1:3d}  loss {loss:.4f}  test acc {acc:.4f}  {macs / 1e6:.1f} MMACs")
    print("learned strides:", {k: [round(v, 3) for v in s] for k, s in learned_strides(model).items()})
    if args.out:
        with open(args.out, "w") as fh:
            json.dump({"args": {k: v for k, v in vars(args).items() if k != "func"},
                       **hist.as_dict()}, fh, indent=2)
        print(f"history written to {args.out}")
    if args.save:
        torch.save(model.state_dict(), args.save)
    return 0


def _cmd_sizes(args: argparse.Namespace) -> int:
    from udl.diffstride import output_size

    for n in args.n:
        print(f"N={n}: " + ", ".join(f"S={s:g} -> {output_size(n, s, args.smoothness)}"
                                     for s in args.strides))
    return 0


def register(subparsers) -> None:
    p = subparsers.add_parser("diffstride", help="DiffStride: learnable strides (ICLR 2022)")
    sub = p.add_subparsers(dest="diffstride_command", metavar="ACTION")

    t = sub.add_parser("train-cifar", help="ResNet-18 on CIFAR-10/100 from a local folder")
    t.add_argument("--root", required=True, help="folder holding cifar-10-batches-py / cifar-100-python")
    t.add_argument("--dataset", default="cifar10", choices=["cifar10", "cifar100"])
    t.add_argument("--pooling", default="diffstride", choices=["diffstride", "strided", "spectral"])
    t.add_argument("--strides", type=float, nargs=5, default=[1, 1, 2, 2, 2],
                   metavar="S", help="stem and 4 group strides (default 1 1 2 2 2)")
    t.add_argument("--width", type=int, default=64)
    t.add_argument("--smoothness", type=float, default=4.0)
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--lr", type=float, default=0.1)
    t.add_argument("--stride-lr", type=float, default=None, help="learning rate of the strides")
    t.add_argument("--lam", type=float, default=0.0, help="weight of complexity/complexity_at_init")
    t.add_argument("--label-smoothing", type=float, default=0.0)
    t.add_argument("--limit", type=int, default=None, help="use only the first N images (smoke runs)")
    t.add_argument("--workers", type=int, default=2)
    t.add_argument("--device", default="cuda" if _cuda() else "cpu")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default=None, help="write the history as JSON here")
    t.add_argument("--save", default=None, help="save the trained state_dict here")
    t.set_defaults(func=_cmd_train_cifar)

    s = sub.add_parser("sizes", help="output sizes N' for given N and strides")
    s.add_argument("n", type=int, nargs="+")
    s.add_argument("--strides", type=float, nargs="+", default=[1.0, 1.5, 2.0, 3.0, 4.0])
    s.add_argument("--smoothness", type=float, default=4.0)
    s.set_defaults(func=_cmd_sizes)

    p.set_defaults(func=lambda a: (p.print_help(), 2)[1])


def _cuda() -> bool:
    import torch

    return torch.cuda.is_available()
