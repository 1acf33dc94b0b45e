"""udl.collapse: NC metrics, the exact MSE decomposition and the central path."""

from __future__ import annotations

import math
import warnings

import pytest
import torch

from udl.collapse import (
    CollapseStats,
    central_path,
    lam_from_weight_decay,
    mse_decomposition,
    nc_metrics,
    snr_singular_values,
)


def _data(c=6, d=20, n=40, spread=1.0, scale=3.0, unbalanced=False, seed=0, dtype=torch.float64):
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(c, d, generator=g, dtype=torch.float64) * scale
    if unbalanced:
        counts = [n // 2 + 7 * k for k in range(c)]
        y = torch.cat([torch.full((m,), k) for k, m in enumerate(counts)])
    else:
        y = torch.arange(c).repeat_interleave(n)
    a = torch.randn(d, d, generator=g, dtype=torch.float64) / math.sqrt(d) + torch.eye(d, dtype=torch.float64)
    h = mu[y] + spread * torch.randn(len(y), d, generator=g, dtype=torch.float64) @ a
    return h.to(dtype), y


def _zeros(*shape):
    return torch.zeros(*shape, dtype=torch.float64)


def _stats(h, y, c, bs=33, precision="auto"):
    s = CollapseStats(c, h.shape[1], precision=precision)
    for i in range(0, len(y), bs):
        s.update(h[i:i + bs], y[i:i + bs])
    return s


def _direct_loss(h, y, w, b, lam, c):
    h = h.double()
    out = h @ w.T + (b if b is not None else 0.0)
    r = out - torch.eye(c, dtype=torch.float64)[y]
    reg = (w * w).sum() + ((b * b).sum() if b is not None else 0.0)
    return float(0.5 * (r * r).sum(1).mean() + 0.5 * lam * reg)


@pytest.mark.parametrize("with_bias", [True, False])
@pytest.mark.parametrize("lam", [0.0, 1e-4, 1e-2, 0.5, 5.0])
def test_decomposition_identity_exact(with_bias, lam):
    c, d = 6, 20
    h, y = _data(c, d)
    s = _stats(h, y, c)
    g = torch.Generator().manual_seed(1)
    w = torch.randn(c, d, generator=g, dtype=torch.float64) * 0.1
    b = torch.randn(c, generator=g, dtype=torch.float64) * 0.1 if with_bias else None
    dec = mse_decomposition(s, w, b, lam)
    direct = _direct_loss(h, y, w, b, lam, c)
    assert abs(dec["total"] - direct) <= 1e-10 * abs(direct)
    assert abs(dec["sum"] - direct) <= 1e-10 * abs(direct)
    assert dec["L_NC1"] >= 0 and dec["L_NC23"] >= 0 and dec["L_perp"] >= 0
    # the least-squares classifier: L_perp == 0 and the loss there is L_NC1 + L_NC23
    at_ls = mse_decomposition(s, dec["W_LS"], dec["b_LS"], lam)
    assert at_ls["L_perp"] <= 1e-12 * dec["ls_loss"]
    at_ls_direct = _direct_loss(h, y, dec["W_LS"], dec["b_LS"], lam, c)
    assert abs(at_ls_direct - dec["ls_loss"]) <= 1e-10 * dec["ls_loss"]
    # L_perp is the excess over the optimum, so moving away from W_LS increases it
    assert abs(dec["total"] - dec["ls_loss"] - dec["L_perp"]) <= 1e-10 * dec["total"]


def test_decomposition_perp_accurate_when_tiny():
    """L_perp comes from its quadratic form: accurate even when it is 1e-14 of the loss."""
    c, d = 5, 12
    h, y = _data(c, d)
    s = _stats(h, y, c)
    ls = mse_decomposition(s, _zeros(c, d), _zeros(c), 0.1)
    g = torch.Generator().manual_seed(3)
    dw = torch.randn(c, d, generator=g, dtype=torch.float64) * 1e-8
    dec = mse_decomposition(s, ls["W_LS"] + dw, ls["b_LS"], 0.1)
    # exact value of the quadratic form from the explicit second-moment matrix
    ht = torch.cat([h, torch.ones(len(y), 1, dtype=torch.float64)], 1)
    a = ht.T @ ht / len(y) + 0.1 * torch.eye(d + 1, dtype=torch.float64)
    dt = torch.cat([dw, torch.zeros(c, 1, dtype=torch.float64)], 1)
    expect = 0.5 * float(torch.trace(dt @ a @ dt.T))
    assert dec["L_perp"] / dec["total"] < 1e-11
    assert dec["L_perp"] == pytest.approx(expect, rel=1e-6)


def test_decomposition_unbalanced_warns_and_empirical_is_exact():
    c, d = 5, 10
    h, y = _data(c, d, unbalanced=True)
    s = _stats(h, y, c)
    w = torch.randn(c, d, dtype=torch.float64) * 0.1
    b = torch.randn(c, dtype=torch.float64) * 0.1
    direct = _direct_loss(h, y, w, b, 0.05, c)
    with pytest.warns(RuntimeWarning, match="unbalanced"):
        dec = mse_decomposition(s, w, b, 0.05)
    assert abs(dec["gap"]) > 1e-6 * direct           # the paper's uniform split is not exact
    assert abs(dec["total"] - direct) <= 1e-10 * direct
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        emp = mse_decomposition(s, w, b, 0.05, class_weighting="empirical")
    assert abs(emp["sum"] - direct) <= 1e-10 * direct


def test_lam_from_weight_decay_matches_pytorch_mse_gradient():
    """nn.MSELoss() + SGD weight decay wd is (2/C) x the paper's objective with lam = C wd / 2."""
    c, d, wd = 7, 5, 3e-2
    h, y = _data(c, d, n=10)
    lin = torch.nn.Linear(d, c).double()
    target = torch.eye(c, dtype=torch.float64)[y]
    loss = torch.nn.functional.mse_loss(lin(h), target)
    loss.backward()
    g_torch = torch.cat([lin.weight.grad + wd * lin.weight, (lin.bias.grad + wd * lin.bias)[:, None]], 1)
    lam = lam_from_weight_decay(wd, c, "mean")
    w = lin.weight.detach().clone().requires_grad_(True)
    b = lin.bias.detach().clone().requires_grad_(True)
    paper = 0.5 * ((h @ w.T + b - target) ** 2).sum(1).mean() + 0.5 * lam * ((w * w).sum() + (b * b).sum())
    paper.backward()
    g_paper = torch.cat([w.grad, b.grad[:, None]], 1)
    torch.testing.assert_close(g_torch, (2.0 / c) * g_paper, rtol=1e-12, atol=1e-14)
    assert lam_from_weight_decay(wd, c, "sum_classes") == wd / 2
    assert lam_from_weight_decay(wd, c, "paper") == wd
    assert lam_from_weight_decay(wd, c, "sum", batch_size=4) == wd / 8
    with pytest.raises(ValueError, match="batch_size"):
        lam_from_weight_decay(wd, c, "sum")
    with pytest.raises(ValueError, match="reduction"):
        lam_from_weight_decay(wd, c, "median")
    with pytest.raises(ValueError, match="weight_decay"):
        lam_from_weight_decay(-1.0, c)


def _etf(c, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(d, d, generator=g, dtype=torch.float64))
    simplex = math.sqrt(c / (c - 1)) * (torch.eye(c, dtype=torch.float64) - 1.0 / c)   # C x C
    mbar = 5.0 * q[:, :c] @ simplex                                                      # d x C
    mu_g = 2.0 * q[:, c]                                                                 # orthogonal offset
    return mbar, mu_g


def test_exact_simplex_etf_zero_noise_gives_zero_nc():
    c, d, n = 5, 12, 8
    mbar, mu_g = _etf(c, d)
    means = (mbar + mu_g[:, None]).T                         # C x d
    y = torch.arange(c).repeat(n)
    h = means[y]
    s = _stats(h, y, c, bs=7)
    w = mbar.T.clone()
    b = torch.zeros(c, dtype=torch.float64)
    m = nc_metrics(s, w, b, data=[(h, y)])
    for key in ("nc1", "nc2_equinorm_means", "nc2_equinorm_weights", "nc2_equiangle_means",
                "nc2_equiangle_weights", "nc2_maxangle_means", "nc2_maxangle_weights", "nc3", "nc4"):
        assert abs(m[key]) < 1e-12, (key, m[key])
    assert m["rank"] == c - 1
    assert m["accuracy"] == 1.0 and m["ncc_accuracy"] == 1.0


def test_nc1_matches_dxd_pseudo_inverse_on_well_conditioned_data():
    c, d = 8, 30
    h, y = _data(c, d, spread=0.7)
    s = _stats(h, y, c)
    m = nc_metrics(s, torch.randn(c, d, dtype=torch.float64))
    means = torch.stack([h[y == k].mean(0) for k in range(c)])
    mbar = means - means.mean(0)
    sw = sum((h[y == k] - means[k]).T @ (h[y == k] - means[k]) for k in range(c)) / len(y)
    sb = mbar.T @ mbar / c
    expect = float(torch.trace(sw @ torch.linalg.pinv(sb, hermitian=True, rtol=1e-10)))
    assert m["nc1_raw"] == pytest.approx(expect, rel=1e-10)
    assert m["nc1"] == pytest.approx(expect / c, rel=1e-10)
    assert m["rank"] == c - 1
    # NC2/NC3 against direct formulas
    norms = mbar.norm(dim=1)
    assert m["nc2_equinorm_means"] == pytest.approx(float(norms.std() / norms.mean()), rel=1e-10)
    cos = (mbar / norms[:, None]) @ (mbar / norms[:, None]).T
    off = cos[~torch.eye(c, dtype=torch.bool)]
    assert m["nc2_equiangle_means"] == pytest.approx(float(off.std()), rel=1e-10)
    assert m["nc2_maxangle_means"] == pytest.approx(float((off + 1 / (c - 1)).abs().mean()), rel=1e-10)


def test_nc1_rank_is_numerical_rank_when_d_small():
    c, d = 9, 3
    h, y = _data(c, d)
    m = nc_metrics(_stats(h, y, c), torch.randn(c, d, dtype=torch.float64))
    assert m["rank"] == d
    assert m["nc1"] > 0 and math.isfinite(m["nc1"])


def test_sample_global_mean_convention():
    c, d = 4, 6
    h, y = _data(c, d, unbalanced=True)
    s = _stats(h, y, c)
    w = torch.randn(c, d, dtype=torch.float64)
    a = nc_metrics(s, w, global_mean="class")
    b = nc_metrics(s, w, global_mean="sample")
    means = torch.stack([h[y == k].mean(0) for k in range(c)])
    mbar = means - h.mean(0)
    norms = mbar.norm(dim=1)
    assert b["nc2_equinorm_means"] == pytest.approx(float(norms.std() / norms.mean()), rel=1e-10)
    assert a["nc2_equinorm_means"] != pytest.approx(b["nc2_equinorm_means"], rel=1e-6)
    with pytest.raises(ValueError, match="global_mean"):
        nc_metrics(s, w, global_mean="median")


@pytest.mark.parametrize("precision, rtol", [("float64", 1e-9), ("auto", 1e-5)])
def test_float32_near_collapse_stays_accurate(precision, rtol):
    """Tiny within-class spread around large means, fed as float32: NC1 still right."""
    c, d = 10, 64
    h, y = _data(c, d, n=200, spread=1e-3, scale=100.0, dtype=torch.float32)
    s = _stats(h, y, c, bs=128, precision=precision)
    # exact two-pass float64 computation on the same float32 values
    h64 = h.double()
    means = torch.stack([h64[y == k].mean(0) for k in range(c)])
    sw = sum((h64[y == k] - means[k]).T @ (h64[y == k] - means[k]) for k in range(c)) / len(y)
    torch.testing.assert_close(s.within_cov(), sw, rtol=rtol, atol=1e-18 if rtol < 1e-6 else 1e-12)
    mbar = means - means.mean(0)
    u, sv, _ = torch.linalg.svd(mbar.T, full_matrices=False)
    u, sv = u[:, : c - 1], sv[: c - 1]
    expect = float(c * (((sw @ u) * u).sum(0) / sv**2).sum()) / c
    m = nc_metrics(s, torch.randn(c, d))
    assert m["nc1"] > 0
    assert m["nc1"] == pytest.approx(expect, rel=10 * rtol)
    # the raw-moment shortcut in float32 loses everything here (what this design avoids)
    raw = (h.T @ h - sum((y == k).sum() * torch.outer(means[k].float(), means[k].float())
                         for k in range(c))) / len(y)
    assert abs(float(torch.trace(raw)) - float(torch.trace(sw))) > 0.1 * float(torch.trace(sw))


def test_omega_affine_invariance_and_ls_loss_identity():
    c, d = 6, 15
    h, y = _data(c, d, spread=1.5)
    s = _stats(h, y, c)
    w = torch.randn(c, d, dtype=torch.float64)
    b = torch.randn(c, dtype=torch.float64)
    cp = central_path(s, w, b, 0.0)
    dec = mse_decomposition(s, w, b, 0.0)
    assert cp["snr_ls_loss"] == pytest.approx(dec["ls_loss"], rel=1e-10)
    assert cp["omega"].numel() == c - 1
    assert cp["omega_spread"] == pytest.approx(cp["omega_max"] / cp["omega_min"])
    g = torch.Generator().manual_seed(7)
    a = torch.randn(d, d, generator=g, dtype=torch.float64) + 3 * torch.eye(d, dtype=torch.float64)
    shift = torch.randn(d, generator=g, dtype=torch.float64) * 10
    s2 = _stats(h @ a.T + shift, y, c)
    om2, _ = snr_singular_values(s2)
    torch.testing.assert_close(om2, cp["omega"], rtol=1e-9, atol=0)
    # NC1 is *not* affine invariant (the reason to track omega)
    n1 = nc_metrics(s, w)["nc1"]
    n2 = nc_metrics(s2, w @ torch.linalg.inv(a))["nc1"]
    assert abs(n1 - n2) > 1e-3 * n1


def test_central_path_distance():
    c, d = 4, 8
    h, y = _data(c, d)
    s = _stats(h, y, c)
    dec = mse_decomposition(s, _zeros(c, d), _zeros(c), 0.1)
    on = central_path(s, dec["W_LS"], dec["b_LS"], 0.1)
    assert on["dist_to_ls"] < 1e-12 and on["perp_ratio"] < 1e-12
    off = central_path(s, 1.1 * dec["W_LS"], 1.1 * dec["b_LS"], 0.1)
    assert off["dist_to_ls"] == pytest.approx(0.1, rel=1e-10)
    assert 0 < off["perp_ratio"] < 1


def test_singular_within_cov_uses_ridge():
    c, d = 3, 10
    h, y = _data(c, d, n=5)            # N = 15 > d but within-class rank 12 ... make it singular:
    h[:, -1] = 0.0                      # a dead unit
    s = _stats(h, y, c)
    cp = central_path(s, torch.randn(c, d, dtype=torch.float64), None, 0.1)
    assert cp["cov_ridge_used"] > 0
    assert torch.isfinite(cp["omega"]).all()


def test_nc4_counters_with_reference_means_equal_second_pass():
    c, d = 5, 8
    h, y = _data(c, d, spread=3.0)
    w = torch.randn(c, d, dtype=torch.float64)
    b = torch.randn(c, dtype=torch.float64)
    s = _stats(h, y, c)
    exact = nc_metrics(s, w, b, data=[(h[i:i + 17], y[i:i + 17]) for i in range(0, len(y), 17)])
    s.set_reference_means(s.class_means())
    s.score(h, y, h @ w.T + b)
    counted = nc_metrics(s, w, b)
    assert counted["nc4"] == pytest.approx(exact["nc4"]) and 0 < exact["nc4"] < 1
    assert counted["nc4_source"] == "counters" and exact["nc4_source"] == "second_pass"
    # direct count
    means = torch.stack([h[y == k].mean(0) for k in range(c)])
    ncc = torch.cdist(h, means).argmin(1)
    assert exact["nc4"] == pytest.approx(float((ncc != (h @ w.T + b).argmax(1)).double().mean()))
    assert exact["accuracy"] == pytest.approx(float(((h @ w.T + b).argmax(1) == y).double().mean()))
    # a custom head
    head = nc_metrics(s, w, b, lambda f: -(f.double() @ w.T), data=[(h, y)])
    assert head["accuracy"] == pytest.approx(float(((-(h @ w.T)).argmax(1) == y).double().mean()))
    assert nc_metrics(_stats(h, y, c), w, b)["nc4"] is None


def test_nn_linear_accepted():
    c, d = 3, 4
    h, y = _data(c, d)
    s = _stats(h, y, c)
    lin = torch.nn.Linear(d, c).double()
    a = mse_decomposition(s, lin, None, 0.1)
    b = mse_decomposition(s, lin.weight, lin.bias, 0.1)
    assert a["total"] == b["total"] and a["bias"]


def test_absent_class_warns_and_uses_present_classes():
    c, d = 5, 6
    h, y = _data(c, d)
    keep = y != 2
    s = _stats(h[keep], y[keep], c)
    w = torch.randn(c, d, dtype=torch.float64)
    b = torch.randn(c, dtype=torch.float64)
    with pytest.warns(RuntimeWarning, match=r"classes \[2\] have no samples"):
        m = nc_metrics(s, w, b)
    assert m["num_classes"] == 4 and m["rank"] == 3
    with pytest.warns(RuntimeWarning, match="no samples"):
        dec = mse_decomposition(s, w, b, 0.1)
    direct = _direct_loss(h[keep], y[keep], w, b, 0.1, c)
    assert abs(dec["total"] - direct) < 1e-10 * direct
    assert abs(dec["sum"] - direct) < 1e-10 * direct


def test_bad_inputs_for_metrics():
    c, d = 3, 4
    h, y = _data(c, d)
    s = _stats(h, y, c)
    with pytest.raises(ValueError, match=r"weight must have shape \(num_classes, dim\) = \(3, 4\)"):
        nc_metrics(s, torch.randn(4, 3))
    with pytest.raises(ValueError, match="bias must have shape"):
        mse_decomposition(s, torch.randn(c, d), torch.randn(c + 1), 0.1)
    with pytest.raises(ValueError, match="lam"):
        mse_decomposition(s, torch.randn(c, d), None, -1.0)
    with pytest.raises(ValueError, match="class_weighting"):
        mse_decomposition(s, torch.randn(c, d), None, 0.1, class_weighting="x")
    with pytest.raises(ValueError, match="weight contains NaN"):
        nc_metrics(s, torch.full((c, d), float("nan")))
    with pytest.raises(ValueError, match="empty"):
        nc_metrics(CollapseStats(c, d), torch.randn(c, d))
    with pytest.raises(ValueError, match="logits_fn"):
        nc_metrics(s, torch.randn(c, d), logits_fn=lambda f: f)
    only_one = _stats(h[y == 0], y[y == 0], c)
    with pytest.warns(RuntimeWarning), pytest.raises(ValueError, match="at least 2 classes"):
        nc_metrics(only_one, torch.randn(c, d))


def test_agrees_with_notebook_port_on_well_conditioned_data():
    """Same quantities as the reference notebook's computation (float32 there: loose tolerance)."""
    from udl.collapse.reference import notebook_metrics

    c, d = 4, 10
    h, y = _data(c, d, n=30, spread=1.0, dtype=torch.float32)
    g = torch.Generator().manual_seed(2)
    w = torch.randn(c, d, generator=g) * 0.2
    b = torch.randn(c, generator=g) * 0.1
    batches = [(h[i:i + 32], y[i:i + 32]) for i in range(0, len(y), 32)]
    ref = notebook_metrics(batches, w, b, c, 0.05)
    s = _stats(h, y, c)
    m = nc_metrics(s, w, b, data=batches)
    dec = mse_decomposition(s, w, b, 0.05)
    assert m["nc1_raw"] == pytest.approx(ref["nc1_raw"], rel=1e-4)
    for key in ("nc2_equinorm_means", "nc2_equinorm_weights", "nc2_maxangle_means",
                "nc2_maxangle_weights", "nc3", "nc4", "accuracy"):
        assert m[key] == pytest.approx(ref[key], rel=1e-4, abs=1e-6), key
    for key in ("L_NC1", "L_NC23", "L_perp"):
        assert dec[key] == pytest.approx(ref[key], rel=2e-3), key


def test_float32_second_pass_matches_float64():
    """precision="auto" scores float32 features with float32 GEMMs (centred NCC distances, float32
    logits); away from exact ties the NC4 / accuracy counts equal the float64 ones, also when the
    means sit far from the origin."""
    c, d = 8, 32
    h, y = _data(c, d, n=300, spread=2.0, scale=1.0, dtype=torch.float64)
    h = (h + 500.0).float()                         # large common offset, overlapping classes
    w = torch.randn(c, d, dtype=torch.float64)
    b = torch.randn(c, dtype=torch.float64)
    batches = [(h[i:i + 100], y[i:i + 100]) for i in range(0, len(y), 100)]
    out = {}
    for precision in ("auto", "float64"):
        s = CollapseStats(c, d, precision=precision)
        for hb, yb in batches:
            s.update(hb, yb)
        out[precision] = nc_metrics(s, w, b, data=batches)
    assert 0.0 < out["float64"]["ncc_accuracy"] < 1.0   # the classes overlap: a real test of ties
    for key in ("nc4", "accuracy", "ncc_accuracy"):
        assert out["auto"][key] == pytest.approx(out["float64"][key], abs=2.0 / len(y)), key
    assert out["auto"]["nc1"] == pytest.approx(out["float64"]["nc1"], rel=1e-5)
