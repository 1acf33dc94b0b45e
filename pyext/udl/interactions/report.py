"""Report section "interactions": the representation bottleneck in miniature (sklearn digits)."""

from __future__ import annotations

import torch

from udl._utils import torch_threads
from udl.report import Context, SectionResult, section


def _bands(res) -> dict[str, float]:
    r = res.orders.double() / max(res.num_players - 2, 1)
    J = res.J
    return {
        "low": float(J[r <= 0.1].mean()),
        "mid": float(J[(r >= 0.3) & (r <= 0.7)].mean()),
        "high": float(J[r >= 0.9].mean()),
    }


@section("interactions", title="Multi-order interactions: the representation bottleneck",
         order=70)
def run(ctx: Context) -> SectionResult:
    # The models are tiny: one intra-op thread is faster than two (no fork/join per small op).
    with torch_threads(1):
        return _run(ctx)


def _run(ctx: Context) -> SectionResult:
    import matplotlib.pyplot as plt

    from udl.interactions.train import load_digits, make_model, measure_J, pgd_accuracy, train_model

    epochs = ctx.pick(quick=6, full=30)
    batch = ctx.pick(quick=128, full=64)
    lr = ctx.pick(quick=0.1, full=0.05)
    meas = dict(images=ctx.pick(quick=4, full=16), num_pairs=ctx.pick(quick=8, full=24),
                num_contexts=ctx.pick(quick=8, full=32), players=8, seed=ctx.seed)
    pgd_images = ctx.pick(quick=200, full=None)
    data = load_digits(seed=ctx.seed)
    res = SectionResult()

    runs = [("mlp", "normal"), ("cnn", "normal"), ("mlp", "low"), ("mlp", "mid"), ("mlp", "high")]
    if not ctx.quick:
        runs += [("cnn", "low"), ("cnn", "mid"), ("cnn", "high")]
    trained, curves, rows = {}, {}, []
    for arch, variant in ctx.progress(runs, desc="train+measure"):
        tr = train_model(data, arch, variant, epochs=epochs, lr=lr, batch_size=batch,
                         seed=ctx.seed)
        curve = measure_J(tr.model, data, **meas)
        adv = pgd_accuracy(tr.model, data, eps=0.1, steps=10, max_images=pgd_images)
        trained[(arch, variant)] = tr
        curves[(arch, variant)] = curve
        b = _bands(curve)
        rows.append([arch, variant, f"{tr.train_acc:.3f}", f"{tr.test_acc:.3f}",
                     f"{tr.test_loss - tr.train_loss:.3f}", f"{adv:.3f}", f"{b['low']:.2f}",
                     f"{b['mid']:.2f}", f"{b['high']:.2f}"])
        res.numbers[f"{arch}_{variant}_test_acc"] = tr.test_acc
        res.numbers[f"{arch}_{variant}_pgd_acc"] = adv
        res.numbers[f"{arch}_{variant}_J"] = [round(v, 4) for v in curve.J.tolist()]
    for arch in ("mlp", "cnn"):
        control = measure_J(make_model(arch, seed=ctx.seed + 1), data, only_correct=False, **meas)
        curves[(arch, "random init")] = control
        res.numbers[f"{arch}_random_J"] = [round(v, 4) for v in control.J.tolist()]

    n = curves[("mlp", "normal")].num_players
    ratio = curves[("mlp", "normal")].orders.double() / (n - 2)

    def plot(ax, key, **kw):
        c = curves[key]
        line, = ax.plot(ratio, c.J, marker="o", ms=3, label=f"{key[0]} {key[1]}", **kw)
        ax.fill_between(ratio, (c.J - c.J_noise_floor).clamp_min(0), c.J + c.J_noise_floor,
                        color=line.get_color(), alpha=0.12)

    fig, ax = plt.subplots(figsize=(5.2, 3.4))
    for key in [("mlp", "normal"), ("cnn", "normal"), ("mlp", "random init"),
                ("cnn", "random init")]:
        plot(ax, key, ls="--" if key[1] == "random init" else "-")
    ax.set_xlabel("order m / (n - 2)")
    ax.set_ylabel("J(m)")
    ax.set_title(f"Normally trained vs random nets (digits, n = {n} pixel players)")
    ax.legend(fontsize=7)
    res.add_figure(ctx.savefig(fig, "interactions_bottleneck.png"),
                   "J^(m) of normally trained MLP/CNN and of randomly initialised nets (control). "
                   "Shaded: ± mean σ̂/√K (Monte Carlo noise floor on the J scale).")

    fig, axes = plt.subplots(1, 2 if not ctx.quick else 1, figsize=(9 if not ctx.quick else 5.2,
                                                                       3.4), squeeze=False)
    for col, arch in enumerate(["mlp"] if ctx.quick else ["mlp", "cnn"]):
        a = axes[0, col]
        for variant in ("normal", "low", "mid", "high"):
            plot(a, (arch, variant))
        a.set_xlabel("order m / (n - 2)")
        a.set_ylabel("J(m)")
        a.set_title(f"{arch.upper()}: order losses move the curve")
        a.legend(fontsize=7)
    res.add_figure(ctx.savefig(fig, "interactions_losses.png"),
                   "J^(m) of models trained with L- on (0.7, 1) (low), L+ on (0.3, 0.7) (mid), "
                   "L- on (0, 0.5) (high), vs normal training.")

    variants = ["normal", "low", "mid", "high"]
    fig, ax = plt.subplots(figsize=(5.2, 3.0))
    xs = torch.arange(len(variants)).double()
    clean = [res.numbers[f"mlp_{v}_test_acc"] for v in variants]
    adv = [res.numbers[f"mlp_{v}_pgd_acc"] for v in variants]
    ax.bar(xs - 0.2, clean, 0.4, label="clean")
    ax.bar(xs + 0.2, adv, 0.4, label="PGD eps=0.1 (L-inf, 10 steps)")
    ax.set_xticks(xs.tolist(), variants)
    ax.set_ylabel("test accuracy")
    ax.set_ylim(0, 1.2)
    ax.legend(fontsize=7, loc="upper center", ncol=2)
    ax.set_title("MLP robustness by interaction order")
    res.add_figure(ctx.savefig(fig, "interactions_robustness.png"),
                   "Clean and PGD accuracy of the MLPs trained normally and with order losses.")

    res.add_table("Models (digits; J averaged over order bands m/(n-2) <= 0.1, 0.3-0.7, >= 0.9)",
                  ["arch", "variant", "train acc", "test acc", "loss gap", "PGD acc", "J low",
                   "J mid", "J high"], rows)

    bn, br = _bands(curves[("mlp", "normal")]), _bands(curves[("mlp", "random init")])
    bc = _bands(curves[("cnn", "normal")])
    u_shape = min(bn["low"], bn["high"]) > bn["mid"] and min(bc["low"], bc["high"]) > bc["mid"]
    res.add_claim("Normally trained nets encode low and high orders more than middle orders "
                  "(U-shaped J, the representation bottleneck)", paper="U-shape for every "
                  "architecture/dataset tested",
                  ours=f"MLP J low/mid/high = {bn['low']:.2f}/{bn['mid']:.2f}/{bn['high']:.2f}; "
                       f"CNN {bc['low']:.2f}/{bc['mid']:.2f}/{bc['high']:.2f}", holds=u_shape)
    res.add_claim("Control: a randomly initialised net is already U-shaped, so a U alone proves "
                  "neither the implementation nor a learned effect", paper="(methods notes, "
                  "verified on an n = 16 MLP)",
                  ours=f"random MLP J low/mid/high = {br['low']:.2f}/{br['mid']:.2f}/"
                       f"{br['high']:.2f}", holds=min(br["low"], br["high"]) > br["mid"])
    bl, bh, bm = (_bands(curves[("mlp", v)]) for v in ("low", "high", "mid"))
    res.add_claim("Order losses move J toward the targeted band", paper="curves shift toward the "
                  "chosen band (Sec. 6)",
                  ours=f"J low band: low-order model {bl['low']:.2f} vs normal {bn['low']:.2f}; "
                       f"J high band: high-order model {bh['high']:.2f} vs normal "
                       f"{bn['high']:.2f}; J mid band: mid-order model {bm['mid']:.2f} vs normal "
                       f"{bn['mid']:.2f}",
                  holds=(bl["low"] > bn["low"]) and (bh["high"] > bn["high"]))
    a_low, a_high = res.numbers["mlp_low_pgd_acc"], res.numbers["mlp_high_pgd_acc"]
    res.add_claim("Low-order models are more robust to adversarial attacks than high-order "
                  "models", paper="PGD acc. MLP-8 Census: low 44.65%, normal 39.33%, high 2.02% "
                  "(journal version, third-party summary)",
                  ours=f"digits MLP PGD acc.: low {a_low:.3f}, normal "
                       f"{res.numbers['mlp_normal_pgd_acc']:.3f}, high {a_high:.3f}",
                  holds=a_low > a_high if ctx.quick is False else None)
    c = curves[("mlp", "normal")]
    res.summary = (
        f"Trained a 64-128-128-10 MLP and a 3-layer CNN on scikit-learn digits ({epochs} epochs), "
        f"normally and with the paper's order losses, and measured J^(m) with the fused sampler: "
        f"n = {n} pixel players, {c.orders.numel()} orders, {meas['images']} correctly classified "
        f"training images × {meas['num_pairs']} local pairs × {meas['num_contexts']} contexts "
        f"(log-odds of the label, mean-intensity baseline). Random-init nets are the control.")
    res.notes.append("Digits have only n = 64 players, far from the paper's n = 256 CIFAR grid, "
                     "and the mid-order band averages over more contexts; treat the curves as a "
                     "qualitative miniature. PGD: L-inf eps = 0.1 in pixel units, 10 steps"
                     + (f", first {pgd_images} test images." if pgd_images else
                        ", full test split."))
    if ctx.quick:
        res.notes.append("Quick mode: 6 epochs and few contexts; the robustness claim is left "
                         "undecided at this scale.")
    return res
