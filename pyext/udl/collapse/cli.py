"""``udl collapse train``: train into the terminal phase and write the NC history and figures."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _cmd_train(args: argparse.Namespace) -> int:
    import torch

    from udl.collapse.train import analysis_epochs, load_dataset, train_collapse

    if args.epochs < 1:
        raise ValueError(f"--epochs must be >= 1, got {args.epochs}")
    if args.device == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda: no CUDA GPU is available")
    if args.threads:
        torch.set_num_threads(args.threads)
    x, y, c = load_dataset(args.dataset, root=args.data_root, per_class=args.per_class, seed=args.seed)
    print(f"{args.dataset}: {len(y)} samples, {c} classes ({len(y) // c} per class), input "
          f"{tuple(x.shape[1:])}; {args.arch} with {args.loss.upper()} for {args.epochs} epochs")
    progress = None
    if not args.no_progress:
        from tqdm.auto import tqdm

        def progress(it):
            return tqdm(it, desc="epochs", leave=False)

    res = train_collapse(x, y, c, arch=args.arch, loss=args.loss, epochs=args.epochs, lr=args.lr,
                         weight_decay=args.weight_decay, momentum=args.momentum,
                         batch_size=args.batch_size,
                         eval_epochs=analysis_epochs(args.epochs, args.points), width=args.width,
                         device=args.device, seed=args.seed, progress=progress)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    hist_path = res.monitor.save(out / "collapse_history.json")
    meta = {k: v for k, v in vars(args).items() if k != "func"}
    meta.update(lam=res.lam, seconds=res.seconds, first_zero_error_epoch=res.first_zero_error_epoch,
                train_loss=res.losses)
    (out / "collapse_run.json").write_text(json.dumps(meta, indent=2))
    title = f"{args.arch} / {args.loss.upper()} on {args.dataset}"
    res.monitor.plot(out / "collapse_nc.png", title=title)
    last = res.monitor.history[-1]
    print(f"done in {res.seconds:.1f} s; first zero-training-error epoch: {res.first_zero_error_epoch}")
    print(f"final: acc {last['accuracy']:.4f}  NC1 {last['nc1']:.3g}  NC2 equinorm "
          f"{last['nc2_equinorm_means']:.3g}  max-angle {last['nc2_maxangle_means']:.3g}  NC3 "
          f"{last['nc3']:.3g}  NC4 {last['nc4']:.3g}")
    print(f"MSE decomposition (lam={res.lam:g}): L_NC1 {last['L_NC1']:.3g}  L_NC2/3 {last['L_NC23']:.3g}"
          f"  L_perp {last['L_perp']:.3g}  omega max/min {last['omega_spread']:.3g}")
    print(f"wrote {hist_path}, {out / 'collapse_run.json'}, {out / 'collapse_nc.png'}")
    return 0


def register(subparsers) -> None:
    from udl.collapse.train import ARCHS, DATASETS

    p = subparsers.add_parser("collapse", help="neural collapse under MSE (Han, Papyan & Donoho 2022)")
    sub = p.add_subparsers(dest="collapse_command", metavar="SUBCOMMAND")
    t = sub.add_parser("train", help="train past zero training error and track NC1-NC4, the MSE "
                                     "decomposition and the central path")
    t.add_argument("--dataset", default="digits", choices=DATASETS,
                   help="digits (scikit-learn, no download) or a local torchvision folder")
    t.add_argument("--data-root", default=None, help="folder of the torchvision dataset (no download)")
    t.add_argument("--per-class", type=int, default=None,
                   help="balanced subsample size per class (default: the smallest class count)")
    t.add_argument("--loss", default="mse", choices=["mse", "ce"])
    t.add_argument("--arch", default="mlp", choices=ARCHS)
    t.add_argument("--width", type=int, default=None, help="MLP width / CNN base channels")
    t.add_argument("--epochs", type=int, default=100)
    t.add_argument("--lr", type=float, default=None, help="default: 0.5 (MSE), 0.05 (CE)")
    t.add_argument("--weight-decay", type=float, default=5e-4)
    t.add_argument("--momentum", type=float, default=0.9)
    t.add_argument("--batch-size", type=int, default=128)
    t.add_argument("--points", type=int, default=30, help="number of analysed epochs (log-spaced)")
    t.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    t.add_argument("--threads", type=int, default=0, help="torch CPU threads (0: leave as is)")
    t.add_argument("--seed", type=int, default=0)
    t.add_argument("--out", default="collapse-run", help="output folder")
    t.add_argument("--no-progress", action="store_true")
    t.set_defaults(func=_cmd_train)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
