"""``udl convex fit`` and ``udl convex certify``."""

from __future__ import annotations

import argparse
import json
from pathlib import Path


def _load_data(spec: str, target: str | None, bias: bool):
    """``sklearn:NAME`` (a bundled scikit-learn dataset: diabetes, iris, wine, breast_cancer,
    digits; regression target or labels) or a CSV file (last column = y unless ``--target``)."""
    import numpy as np
    import torch

    if spec.startswith("sklearn:"):
        name = spec.split(":", 1)[1]
        import sklearn.datasets as ds

        loader = getattr(ds, f"load_{name}", None)
        if loader is None:
            raise ValueError(f"unknown scikit-learn dataset {name!r}")
        data = loader()
        X, y = np.asarray(data.data, dtype=float), np.asarray(data.target, dtype=float)
    else:
        path = Path(spec)
        if not path.exists():
            raise FileNotFoundError(f"data file {spec} not found")
        with open(path) as fh:
            first = fh.readline()
        has_header = any(c.isalpha() for c in first.replace("e", "").replace("E", ""))
        arr = np.genfromtxt(path, delimiter=",", names=True if has_header else None,
                            dtype=float)
        if has_header:
            names = list(arr.dtype.names)
            col = target if target is not None else names[-1]
            if col not in names:
                raise ValueError(f"--target {col!r} not in the CSV columns {names}")
            y = np.asarray(arr[col], dtype=float)
            X = np.stack([np.asarray(arr[c], dtype=float) for c in names if c != col], axis=1)
        else:
            arr = np.atleast_2d(arr)
            j = int(target) if target is not None else arr.shape[1] - 1
            y = arr[:, j]
            X = np.delete(arr, j, axis=1)
    X = torch.from_numpy(np.ascontiguousarray(X))
    y = torch.from_numpy(np.ascontiguousarray(y))
    if bias:
        from udl.convex import add_bias

        X = add_bias(X)
    return X, y


def _standardize(X, y, bias: bool):
    cols = X[:, :-1] if bias else X
    mu, sd = cols.mean(0), cols.std(0).clamp_min(1e-12)
    cols = (cols - mu) / sd
    X = torch_cat(cols, X[:, -1:]) if bias else cols
    return X, (y - y.mean()) / y.std().clamp_min(1e-12)


def torch_cat(a, b):
    import torch

    return torch.cat([a, b], dim=1)


def _cmd_fit(args: argparse.Namespace) -> int:
    import torch

    import udl.convex as cx

    X, y = _load_data(args.data, args.target, not args.no_bias)
    if args.standardize:
        X, y = _standardize(X, y, not args.no_bias)
    if args.max_rows and X.shape[0] > args.max_rows:
        X, y = X[: args.max_rows], y[: args.max_rows]
    gen = torch.Generator().manual_seed(args.seed)
    model = cx.ConvexReLU(args.beta, loss=args.loss, patterns=args.patterns,
                          n_patterns=args.n_patterns, solver=args.solver, tol=args.tol,
                          max_iter=args.max_iter, generator=gen, device=args.device)
    res = model.fit(X, y)
    W, a = cx.canonicalize(res.to_network(as_module=False), X=res.X)
    summary = {
        "n": X.shape[0], "d": X.shape[1], "beta": args.beta, "loss": args.loss,
        "patterns": res.patterns.shape[1], "exact": res.exact, "solver": res.solver,
        "status": res.status, "value": res.value, "network_value": res.network_value,
        "m_star": int(W.shape[0]), "solve_seconds": round(res.solve_time, 3),
    }
    print(json.dumps(summary, indent=2))
    if args.out:
        torch.save({"W": W, "alpha": a, "beta": args.beta, "loss": args.loss,
                    "data": args.data, "bias": not args.no_bias}, args.out)
        print(f"weights saved to {args.out} (W [{W.shape[0]}, {W.shape[1]}], alpha)")
    return 0


def _cmd_certify(args: argparse.Namespace) -> int:
    import torch

    import udl.convex as cx

    blob = torch.load(args.weights, weights_only=True) if Path(args.weights).exists() else None
    if blob is None:
        raise FileNotFoundError(f"weights file {args.weights} not found")
    W, a = blob["W"], blob["alpha"]
    beta = args.beta if args.beta is not None else blob.get("beta")
    if beta is None:
        raise ValueError("--beta is required (not stored in the weights file)")
    data = args.data or blob.get("data")
    if data is None:
        raise ValueError("--data is required (not stored in the weights file)")
    X, y = _load_data(data, args.target, not args.no_bias)
    if args.standardize:
        X, y = _standardize(X, y, not args.no_bias)
    if args.max_rows and X.shape[0] > args.max_rows:
        X, y = X[: args.max_rows], y[: args.max_rows]
    cert = cx.certify((W, a), X, y, beta, loss=args.loss or blob.get("loss", "squared"),
                      patterns=args.patterns, tol=args.tol)
    print(cert)
    return 0 if cert.is_global else 1


def register(subparsers) -> None:
    p = subparsers.add_parser("convex", help="convex two-layer ReLU networks: fit, certify")
    sub = p.add_subparsers(dest="convex_command", metavar="SUBCOMMAND")

    def common(q):
        q.add_argument("--target", default=None, help="CSV target column (name or index)")
        q.add_argument("--no-bias", action="store_true", help="do not append a ones column")
        q.add_argument("--standardize", action="store_true", help="z-score X columns and y")
        q.add_argument("--max-rows", type=int, default=0, help="use only the first N rows")
        q.add_argument("--patterns", default="exact", choices=["exact", "sample", "vertex"])

    f = sub.add_parser("fit", help="solve the convex program; print the optimum, save weights")
    f.add_argument("--data", required=True, help="FILE.csv or sklearn:NAME (e.g. sklearn:diabetes)")
    f.add_argument("--beta", type=float, required=True)
    f.add_argument("--loss", default="squared", choices=["squared", "logistic", "hinge"])
    f.add_argument("--n-patterns", type=int, default=200)
    f.add_argument("--solver", default="clarabel",
                   choices=["clarabel", "scs", "mosek", "gurobi", "torch"])
    f.add_argument("--tol", type=float, default=1e-6)
    f.add_argument("--max-iter", type=int, default=20000)
    f.add_argument("--device", default="cpu")
    f.add_argument("--seed", type=int, default=0)
    f.add_argument("--out", default=None, help="save the canonical network (torch .pt)")
    common(f)
    f.set_defaults(func=_cmd_fit)

    c = sub.add_parser("certify", help="is a saved network a global minimum? (exit 0 if yes)")
    c.add_argument("--weights", required=True, help=".pt file with W [m, d] and alpha [m]")
    c.add_argument("--data", default=None, help="FILE.csv or sklearn:NAME (default: as saved)")
    c.add_argument("--beta", type=float, default=None)
    c.add_argument("--loss", default=None, choices=["squared", "logistic"])
    c.add_argument("--tol", type=float, default=1e-4)
    common(c)
    c.set_defaults(func=_cmd_certify)
    p.set_defaults(func=lambda args: (p.print_help(), 2)[1])
