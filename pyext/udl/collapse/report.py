"""Report section "collapse": neural collapse under MSE on scikit-learn's digits (miniature)."""

from __future__ import annotations

import math
from typing import Any

import torch

from udl.report import Context, SectionResult, section

_RUNS_QUICK = [("MLP", "mlp", "mse", 30, 0.5), ("MLP", "mlp", "ce", 30, 0.05),
               ("CNN", "cnn", "mse", 5, 0.5)]
_RUNS_FULL = [("MLP", "mlp", "mse", 250, 0.5), ("MLP", "mlp", "ce", 250, 0.05),
              ("CNN", "cnn", "mse", 45, 0.5), ("CNN", "cnn", "ce", 45, 0.05)]


def _first(hist: list[dict[str, Any]], key: str) -> float:
    return float(hist[0][key])


def _fmt(v: Any) -> str:
    if v is None:
        return "-"
    if isinstance(v, float):
        return f"{v:.3g}" if math.isfinite(v) else str(v)
    return str(v)


@section("collapse", title="Neural collapse under MSE: NC1-NC4, MSE decomposition, central path", order=40)
def run(ctx: Context) -> SectionResult:
    import matplotlib.pyplot as plt

    from udl.collapse.train import analysis_epochs, load_dataset, train_collapse

    threads = torch.get_num_threads()
    torch.set_num_threads(1)          # tiny models: one thread avoids OpenMP overhead on a busy CPU
    try:
        x, y, c = load_dataset("digits", seed=ctx.seed)
        runs = ctx.pick(quick=_RUNS_QUICK, full=_RUNS_FULL)
        results = []
        for name, arch, loss, epochs, lr in ctx.progress(runs, desc="collapse runs"):
            r = train_collapse(x, y, c, arch=arch, loss=loss, epochs=epochs, lr=lr, weight_decay=5e-4,
                               eval_epochs=analysis_epochs(epochs, ctx.pick(10, 24), 3),
                               device=ctx.device, seed=ctx.seed)
            results.append((f"{name}-{loss.upper()}", loss, r))
    finally:
        torch.set_num_threads(threads)

    res = SectionResult(summary=(
        f"Trained {', '.join(n for n, _, _ in results)} on scikit-learn's digits "
        f"({len(y)} images, balanced to {len(y) // c} per class) with SGD (momentum 0.9, weight decay "
        f"5e-4, lr x0.1 at 1/3 and 2/3) past zero training error, on {ctx.device}. At log-spaced "
        "epochs a CollapseMonitor hooks the input of the last linear layer, accumulates float64 "
        "class means and pooled within-class scatter in one pass, counts NC4 against those means in a "
        "second pass, and evaluates NC1-NC4, the exact split of the ridge MSE "
        "(lambda = C*wd/2 for nn.MSELoss) into L_NC1 + L_NC2/3 + L_perp, and the SNR singular values "
        "omega of Sigma_W^{-1/2} Mbar. The paper trains VGG/ResNet/DenseNet for 350 epochs on "
        "MNIST/CIFAR10-sized data; this is a CPU miniature, so expect the trends, not the magnitudes."))

    # ---- figure 1: NC1-NC4
    fig, axes = plt.subplots(1, 5, figsize=(20, 3.8))
    keys = [("nc1", "NC1 = Tr(Σ_W Σ_B⁺)/C"), ("nc2_equinorm_means", "NC2 equinorm (means)"),
            ("nc2_maxangle_means", "NC2 max-angle (means)"), ("nc3", "NC3 ‖W/‖W‖−M̄/‖M̄‖‖²"),
            ("nc4", "NC4 (NCC mismatch)")]
    for ax, (key, title) in zip(axes, keys):
        for label, _, r in results:
            pts = [(h["epoch"], h[key]) for h in r.monitor.history if h.get(key) and h[key] > 0]
            if pts:
                ax.plot(*zip(*pts), marker="o", ms=3, label=label)
        ax.set_yscale("log")
        ax.set_title(title, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(True, which="both", alpha=0.3)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    res.add_figure(ctx.savefig(fig, "collapse_nc.png"),
                   "NC1-NC4 over epochs on digits (log scale; NC4 = 0 points are not drawn).")

    # ---- figure 2: decomposition + omega
    mse_runs = [(n, r) for n, loss, r in results if loss == "mse"]
    fig, axes = plt.subplots(1, len(mse_runs) + 1, figsize=(5 * (len(mse_runs) + 1), 3.8))
    for ax, (label, r) in zip(axes, mse_runs):
        for key, name in (("L_NC1", "L_NC1"), ("L_NC23", "L_NC2/3"), ("L_perp", "L_⊥")):
            pts = [(h["epoch"], h[key]) for h in r.monitor.history if h[key] > 0]
            ax.plot(*zip(*pts), marker="o", ms=3, label=name)
        ax.set_yscale("log")
        ax.set_title(f"{label}: ridge-MSE decomposition", fontsize=10)
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
        ax.grid(True, which="both", alpha=0.3)
    ax = axes[-1]
    for label, _, r in results:
        ax.plot([h["epoch"] for h in r.monitor.history], [h["omega_spread"] for h in r.monitor.history],
                marker="o", ms=3, label=label)
    ax.set_yscale("log")
    ax.set_title("SNR spread max ω / min ω", fontsize=10)
    ax.set_xlabel("epoch")
    ax.legend(fontsize=8)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    res.add_figure(ctx.savefig(fig, "collapse_decomposition.png"),
                   "Left: L_NC1, L_NC2/3 and L_⊥ (term B, the distance to the central path) for the MSE "
                   "runs. Right: spread of the SNR singular values ω_j.")

    # ---- table + numbers
    rows = []
    for label, _loss, r in results:
        h = r.monitor.history[-1]
        rows.append([label, len(r.losses), _fmt(r.first_zero_error_epoch), _fmt(h["accuracy"]),
                     _fmt(h["nc1"]), _fmt(h["nc2_equinorm_means"]), _fmt(h["nc2_maxangle_means"]),
                     _fmt(h["nc3"]), _fmt(h["nc4"]), _fmt(h["L_perp"] / (h["L_NC1"] + h["L_NC23"])),
                     _fmt(h["omega_spread"]), f"{r.seconds:.1f}"])
        tag = label.lower().replace("-", "_")
        for key in ("nc1", "nc2_equinorm_means", "nc2_maxangle_means", "nc3", "nc4", "accuracy",
                    "L_NC1", "L_NC23", "L_perp", "omega_spread"):
            res.numbers[f"{tag}_{key}"] = h[key]
    res.add_table("Final epoch", ["run", "epochs", "first 0-error epoch", "train acc", "NC1",
                                  "NC2 equinorm", "NC2 max-angle", "NC3", "NC4",
                                  "L_⊥ / (L_NC1+L_NC2/3)", "max ω / min ω", "train s"], rows)

    # ---- claims
    for label, loss, r in results:
        hist = r.monitor.history
        last = hist[-1]
        tpt = r.first_zero_error_epoch is not None
        na = "" if tpt else " (zero training error not reached at this scale)"

        def decide(ok: bool, tpt: bool = tpt) -> bool | None:
            return ok if tpt else None

        if loss == "mse":
            ratio = last["L_perp"] / (last["L_NC1"] + last["L_NC23"])
            res.add_claim(f"{label}: term (B) L_⊥ is negligible next to L_NC1 + L_NC2/3 "
                          "(training stays near the central path)",
                          paper="L_⊥ ≪ L_NC1 + L_NC2/3 throughout training",
                          ours=f"ratio {ratio:.3g} at the end (first analysis: "
                               f"{hist[0]['L_perp'] / (hist[0]['L_NC1'] + hist[0]['L_NC23']):.3g}){na}",
                          holds=decide(ratio < 0.1))
        res.add_claim(f"{label}: NC1 decreases in the terminal phase",
                      paper="NC1 → 0 (≈1e-2 to 1e-3 after 350 epochs)",
                      ours=f"{_first(hist, 'nc1'):.3g} → {last['nc1']:.3g}{na}",
                      holds=decide(last["nc1"] < 0.5 * _first(hist, "nc1")))
        res.add_claim(f"{label}: the SNR singular values equalise (max ω / min ω → 1)",
                      paper="max ω / min ω → 1 on the central path",
                      ours=f"{_first(hist, 'omega_spread'):.3g} → {last['omega_spread']:.3g}{na}",
                      holds=decide(last["omega_spread"] < _first(hist, "omega_spread")))
        res.add_claim(f"{label}: NC4, the classifier agrees with the nearest class mean",
                      paper="NC4 → 0", ours=f"{last['nc4']:.3g}{na}", holds=decide(last["nc4"] <= 0.01))
    res.notes.append("NC1 is Tr(Σ_W Σ_B⁺)/C computed through the thin SVD of the centred class means "
                     "(never a d×d pseudo-inverse); the reference notebook plots it without the 1/C. "
                     "L_⊥ is evaluated from its quadratic form, not as a difference, so the small "
                     "values are accurate. With cross-entropy the ridge-MSE decomposition is still "
                     "computed but is not the trained objective, so L_⊥ is large there by design.")
    return res
