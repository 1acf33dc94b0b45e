"""``udl continual run``: train one strategy on a task stream and write the accuracy matrices,
metrics JSON and heat-map plots."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

DATASETS = ("glyphs", "digits", "cifar10-folder", "cifar100-folder", "tinyimagenet-folder")


def register(subparsers) -> None:
    p = subparsers.add_parser("continual", help="unsupervised continual learning (LUMP, UCL)")
    sub = p.add_subparsers(dest="continual_command", metavar="COMMAND")
    r = sub.add_parser("run", help="train a strategy over a task stream, KNN-evaluate each task")
    r.add_argument("--method", default="lump",
                   choices=["finetune", "lump", "der", "si", "multitask", "sup_finetune",
                            "sup_der"])
    r.add_argument("--ssl", default="simsiam", choices=["simsiam", "barlowtwins"])
    r.add_argument("--dataset", default="glyphs", choices=DATASETS)
    r.add_argument("--root", default=None, help="local dataset folder (the *-folder datasets)")
    r.add_argument("--tasks", type=int, default=None,
                   help="number of tasks (default: 5; CIFAR-100/Tiny-ImageNet 20)")
    r.add_argument("--epochs", type=int, default=5, help="epochs per task")
    r.add_argument("--batch-size", type=int, default=None,
                   help="default: 50 (glyphs/digits), 256 (folders)")
    r.add_argument("--lr", type=float, default=None, help="default 0.1 (glyphs/digits), 0.03 (folders)")
    r.add_argument("--buffer-size", type=int, default=None, help="default 128 (small), 256")
    r.add_argument("--alpha", type=float, default=0.4, help="LUMP mixup / DER weight")
    r.add_argument("--backbone", default=None, choices=["small", "resnet18"],
                   help="default: small for glyphs/digits, resnet18 for folders")
    r.add_argument("--image-size", type=int, default=20, help="glyph canvas size")
    r.add_argument("--train-per-class", type=int, default=100, help="glyph train images/class")
    r.add_argument("--knn-k", type=int, default=None, help="default 20 (small), 200 (folders)")
    r.add_argument("--seed", type=int, default=0, help="init, data order and class order")
    r.add_argument("--device", default="cpu")
    r.add_argument("--checkpoint-dir", default=None, help="save/resume after every task")
    r.add_argument("--out", default="continual-run", help="output folder")
    r.add_argument("--no-progress", action="store_true")
    r.set_defaults(func=_cmd_run)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])


def _cmd_run(args: argparse.Namespace) -> int:
    import torch

    from udl.continual.evaluation import ContinualMetrics
    from udl.continual.experiment import ExperimentConfig, run_method

    folder = args.dataset.endswith("-folder")
    if folder and not args.root:
        raise ValueError(f"--dataset {args.dataset} needs --root (udl never downloads data)")
    cfg = ExperimentConfig(
        dataset=args.dataset, root=args.root,
        num_tasks=args.tasks or (20 if args.dataset.startswith(("cifar100", "tiny")) else 5),
        image_size=args.image_size, train_per_class=args.train_per_class,
        backbone=args.backbone or ("resnet18" if folder else "small"),
        proj_dim=2048 if folder else 64, pred_dim=512 if folder else 32,
        epochs_per_task=args.epochs, batch_size=args.batch_size or (256 if folder else 50),
        lr=args.lr or (0.03 if folder else 0.1), alpha=args.alpha,
        buffer_size=args.buffer_size or (256 if folder else 128),
        knn_k=args.knn_k or (200 if folder else 20), device=args.device)
    if args.method == "lump" and args.alpha <= 0:
        raise ValueError("--alpha must be > 0 for LUMP")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but no CUDA device is available")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    res = run_method(args.method, cfg, args.seed, progress=not args.no_progress,
                     checkpoint_dir=args.checkpoint_dir, ssl=args.ssl)
    import dataclasses

    res["config"] = {**dataclasses.asdict(cfg), "method": args.method, "ssl": args.ssl,
                     "seed": args.seed}
    (out / "metrics.json").write_text(json.dumps(res, indent=2))
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, len(res["metrics"]), figsize=(4.2 * len(res["metrics"]), 3.6),
                             squeeze=False, layout="constrained")
    for ax, (mode, d) in zip(axes[0], res["metrics"].items()):
        m = ContinualMetrics.from_dict(d)
        rows = [",".join("" if v != v else f"{v:.2f}" for v in row) for row in m.matrix.tolist()]
        (out / f"accuracy_matrix_{mode}.csv").write_text("\n".join(rows) + "\n")
        m.plot(ax=ax, title=f"{mode.upper()} accuracy ({args.method}, {args.ssl})")
    fig.savefig(out / "accuracy_matrix.png", dpi=110)
    plt.close(fig)
    s = res["summary"]
    print(f"{args.method} ({args.ssl}) on {args.dataset}: "
          f"TIL acc {s['til_acc']:.2f}  forgetting {s['til_fgt']:.2f} (first-ref "
          f"{s['til_fgt_first']:.2f}) | CIL acc {s['cil_acc']:.2f}  forgetting "
          f"{s['cil_fgt']:.2f}  [{res['seconds']:.1f} s]")
    print(f"wrote {out}/metrics.json, accuracy_matrix_{{til,cil}}.csv, accuracy_matrix.png",
          file=sys.stderr)
    return 0
