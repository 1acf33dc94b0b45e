"""NC1-NC4, the exact MSE decomposition and the central path, from :class:`CollapseStats`.

Everything is computed in float64 from the sufficient statistics, through C x C (or d x C) matrices:

* NC1 = Tr(Sigma_W Sigma_B^+)/C with Sigma_B = Mbar Mbar^T / C (Mbar: d x C centred class means).
  With the thin SVD Mbar = U S V^T, Tr(Sigma_W Sigma_B^+) = C sum_{j<=r} u_j^T Sigma_W u_j / s_j^2 over
  the numerical rank r = #{s_j > rtol s_1}; no d x d pseudo-inverse is ever formed.
* The ridge-MSE objective of the last layer, L(W~) = 1/2 Ave ||W~ h~_i - e_{y_i}||^2 + lam/2 ||W~||^2
  (h~ = [h; 1], W~ = [W b]), splits exactly (balanced classes) into L_NC1 + L_NC23 + L_perp, where
  L_perp = 1/2 tr((W~ - W~_LS) A (W~ - W~_LS)^T) is evaluated from its quadratic form.
* Central path: distance of W~ to W~_LS(H) and the SNR singular values omega_j of
  Sigma_W^{-1/2} Mbar; at lam = 0 the least-squares loss equals 1/2 sum_j 1/(C + omega_j^2).
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable, Iterable
from typing import Any

import torch

from udl.collapse.stats import CollapseStats, _warn_absent

__all__ = ["nc_metrics", "mse_decomposition", "central_path", "lam_from_weight_decay",
           "class_geometry"]

_EPS64 = torch.finfo(torch.float64).eps


# ---------------------------------------------------------------------- helpers
def _check_stats(stats: Any) -> CollapseStats:
    if not isinstance(stats, CollapseStats):
        raise ValueError(f"stats must be a CollapseStats, got {type(stats).__name__}")
    if stats.num_samples == 0:
        raise ValueError("stats is empty: accumulate some samples with stats.update() first")
    return stats


def _check_classifier(stats: CollapseStats, weight: Any, bias: Any
                      ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Return (W (C, d), b (C,) or None) as float64 on the stats device; accepts an nn.Linear."""
    if isinstance(weight, torch.nn.Module):
        if bias is None:
            bias = getattr(weight, "bias", None)
        weight = getattr(weight, "weight", None)
    c, d = stats.num_classes, stats.dim
    if not isinstance(weight, torch.Tensor) or weight.shape != (c, d):
        shape = tuple(weight.shape) if isinstance(weight, torch.Tensor) else type(weight).__name__
        raise ValueError(f"weight must have shape (num_classes, dim) = ({c}, {d}), got {shape}")
    w = weight.detach().to(stats.device, torch.float64)
    if not bool(torch.isfinite(w).all()):
        raise ValueError("weight contains NaN or inf")
    if bias is None:
        return w, None
    if not isinstance(bias, torch.Tensor) or bias.shape != (c,):
        shape = tuple(bias.shape) if isinstance(bias, torch.Tensor) else type(bias).__name__
        raise ValueError(f"bias must have shape (num_classes,) = ({c},), got {shape}")
    b = bias.detach().to(stats.device, torch.float64)
    if not bool(torch.isfinite(b).all()):
        raise ValueError("bias contains NaN or inf")
    return w, b


def class_geometry(stats: CollapseStats, global_mean: str = "class") -> dict[str, torch.Tensor]:
    """Present-class geometry in float64.

    Returns a dict with ``present`` (C,) bool, ``M`` (C', d) class means of the C' present classes,
    ``mu_G`` (d,) global mean (``"class"``: unweighted mean of the class means, as the paper;
    ``"sample"``: the sample mean), ``Mbar`` (d, C') centred means, ``Sigma_W`` (d, d) and
    ``pi`` (C',) class proportions n_c / N.
    """
    _check_stats(stats)
    if global_mean not in ("class", "sample"):
        raise ValueError(f"global_mean must be 'class' or 'sample', got {global_mean!r}")
    present = _warn_absent(stats)
    if int(present.sum()) < 2:
        raise ValueError(f"neural-collapse metrics need at least 2 classes with samples, got "
                         f"{int(present.sum())}")
    m = stats.means[present]
    counts = stats.counts[present]
    pi = counts / counts.sum()
    mu_g = m.mean(0) if global_mean == "class" else pi @ m
    return {"present": present, "M": m, "mu_G": mu_g, "Mbar": (m - mu_g).T.contiguous(),
            "Sigma_W": stats.within_cov(), "pi": pi, "counts": counts}


def _cv(x: torch.Tensor) -> float:
    """std/mean (unbiased std, as torch.std and the reference notebook)."""
    mean = x.mean()
    if x.numel() < 2 or float(mean) == 0.0:
        return float("nan")
    return float(x.std() / mean)


def _angles(vectors: torch.Tensor) -> tuple[float, float]:
    """(std of pairwise cosines, mean |cos + 1/(C-1)|) of the columns of ``vectors`` (d, C)."""
    c = vectors.shape[1]
    norms = vectors.norm(dim=0)
    if bool((norms == 0).any()):
        return float("nan"), float("nan")
    u = vectors / norms
    cos = u.T @ u
    off = cos[~torch.eye(c, dtype=torch.bool, device=cos.device)]
    std = float(off.std()) if off.numel() > 1 else 0.0
    return std, float((off + 1.0 / (c - 1)).abs().mean())


# ---------------------------------------------------------------------- NC1-NC4
def nc_metrics(
    stats: CollapseStats,
    weight: torch.Tensor | torch.nn.Module,
    bias: torch.Tensor | None = None,
    logits_fn: Callable[[torch.Tensor], torch.Tensor] | None = None,
    *,
    data: Iterable[tuple[torch.Tensor, torch.Tensor]] | None = None,
    global_mean: str = "class",
    rtol: float | None = None,
) -> dict[str, Any]:
    """Neural-collapse metrics NC1-NC4 of features summarised by ``stats`` and a linear classifier.

    Args:
        stats: accumulated :class:`CollapseStats` (features of the training set).
        weight: (C, d) classifier weight, or an ``nn.Linear`` (its bias is used when ``bias`` is None).
        bias: optional (C,) classifier bias (used by NC4 and accuracy of the ``data`` pass).
        logits_fn: optional ``(B, d) features -> (B, C) logits`` used in the ``data`` pass instead of
            ``features @ W.T + b`` (e.g. a non-linear head); only valid with ``data``.
        data: optional iterable of ``(features (B, d), labels (B,))`` batches for an exact second pass:
            NC4 and accuracy are then counted against the *current* class means of ``stats``.
            Without it NC4 comes from the counters of ``stats`` (counted during ``update``/``score``
            against ``stats.reference_means``: the means of a first pass, or of the previous analysis),
            and is None when nothing was counted.
        global_mean: ``"class"`` (mean of class means, as the paper) or ``"sample"`` (sample mean).
        rtol: relative singular-value cutoff of the centred means for Sigma_B^+ (default
            ``max(d, C) * eps64``); the numerical rank is returned as ``rank``.

    Returns:
        dict of Python floats/ints: ``nc1`` = Tr(Sigma_W Sigma_B^+)/C (paper figures), ``nc1_raw``
        (no /C, reference notebook), ``rank``, ``rank_tol``, ``nc2_equinorm_means``,
        ``nc2_equinorm_weights`` (std/mean of norms), ``nc2_equiangle_means``,
        ``nc2_equiangle_weights`` (std of pairwise cosines), ``nc2_maxangle_means``,
        ``nc2_maxangle_weights`` (mean |cos + 1/(C-1)|), ``nc3`` = ||W^T/||W|| - Mbar/||Mbar|| ||^2,
        ``nc4`` (fraction where the nearest class mean disagrees with argmax of the logits, bias
        included), ``nc4_source``, ``accuracy``, ``ncc_accuracy``, ``tr_sigma_w``, ``tr_sigma_b``,
        ``num_samples``, ``num_classes``, ``balanced``, ``global_mean``.
        Classes without samples are left out (with a warning); C is then the number present.
    """
    if logits_fn is not None and data is None:
        raise ValueError("logits_fn is only used for the second pass over data=...; pass data too")
    w, b = _check_classifier(_check_stats(stats), weight, bias)
    geo = class_geometry(stats, global_mean)
    present, mbar, sigma_w = geo["present"], geo["Mbar"], geo["Sigma_W"]
    d, c = mbar.shape
    if rtol is None:
        rtol = max(d, c) * _EPS64
    elif not (isinstance(rtol, (int, float)) and rtol >= 0):
        raise ValueError(f"rtol must be a non-negative float, got {rtol!r}")

    # NC1 through the thin SVD of Mbar (d x C): never a d x d pseudo-inverse.
    u, s, _ = torch.linalg.svd(mbar, full_matrices=False)
    tol = rtol * float(s[0]) if s.numel() else 0.0
    keep = s > tol
    rank = int(keep.sum())
    if rank == 0:
        warnings.warn("the class means coincide (Sigma_B = 0): NC1 is undefined", RuntimeWarning,
                      stacklevel=2)
        nc1_raw = float("nan")
    else:
        ur, sr = u[:, keep], s[keep]
        quad = ((sigma_w @ ur) * ur).sum(0)          # u_j^T Sigma_W u_j
        nc1_raw = float(c * (quad / sr**2).sum())

    wp = w[present]
    out: dict[str, Any] = {
        "nc1": nc1_raw / c,
        "nc1_raw": nc1_raw,
        "rank": rank,
        "rank_tol": tol,
        "nc2_equinorm_means": _cv(mbar.norm(dim=0)),
        "nc2_equinorm_weights": _cv(wp.norm(dim=1)),
    }
    out["nc2_equiangle_means"], out["nc2_maxangle_means"] = _angles(mbar)
    out["nc2_equiangle_weights"], out["nc2_maxangle_weights"] = _angles(wp.T)
    wn, mn = wp.norm(), mbar.norm()
    out["nc3"] = float(((wp.T / wn - mbar / mn) ** 2).sum()) if wn > 0 and mn > 0 else float("nan")

    if data is not None:
        counter = CollapseStats(stats.num_classes, stats.dim, stats.device,
                                reference_means=stats.class_means(), precision=stats.precision)
        w32 = w.to(torch.float32)
        b32 = b.to(torch.float32) if b is not None else None
        for batch in data:
            h, y = batch[0], batch[1]
            h = h.flatten(1) if h.dim() > 2 else h
            with torch.no_grad():
                if logits_fn is not None:
                    logits = logits_fn(h)
                elif counter._gemm_dtype(h.dtype) == torch.float32:
                    # the classifier as the network runs it: float32 features, float32 GEMM
                    h = h.to(stats.device, torch.float32)
                    logits = torch.addmm(b32, h, w32.T) if b32 is not None else h @ w32.T
                else:
                    h = h.to(stats.device, torch.float64)
                    logits = torch.addmm(b, h, w.T) if b is not None else h @ w.T
            counter.score(h, y, logits)
        k, source = counter, "second_pass"
    else:
        k, source = stats, "counters"
    n_both, n_scored, n_ref = k.counter("n_both"), k.counter("n_scored"), k.counter("n_ref")
    out["nc4"] = k.counter("n_ncc_disagree") / n_both if n_both else None
    out["nc4_source"] = source if n_both else None
    out["accuracy"] = k.counter("n_correct") / n_scored if n_scored else None
    out["ncc_accuracy"] = k.counter("n_ncc_correct") / n_ref if n_ref else None
    out.update({
        "tr_sigma_w": float(torch.trace(sigma_w)),
        "tr_sigma_b": float((mbar * mbar).sum() / c),
        "num_samples": stats.num_samples,
        "num_classes": c,
        "balanced": stats.is_balanced(),
        "global_mean": global_mean,
    })
    return out


# ---------------------------------------------------------------------- MSE decomposition
def lam_from_weight_decay(weight_decay: float, num_classes: int, reduction: str = "mean",
                          batch_size: int | None = None) -> float:
    """The paper's lambda (objective 1/2 Ave||W~h~ - y||^2 + lam/2 ||W~||^2) for SGD weight decay.

    ``weight_decay`` = wd adds wd * theta to the gradient, i.e. wd/2 ||theta||^2 to the loss.

    Args:
        weight_decay: wd >= 0.
        num_classes: C.
        reduction: how the training loss reduces ||f(x) - y||^2:
            ``"mean"``: ``nn.MSELoss()`` default, mean over batch *and* the C outputs -> lam = C wd / 2;
            ``"sum_classes"``: sum over outputs, mean over batch -> lam = wd / 2 (the notebook's value);
            ``"paper"``: 1/2 sum over outputs, mean over batch -> lam = wd;
            ``"sum"``: sum over batch and outputs (needs ``batch_size`` B) -> lam = wd / (2 B).
    """
    if not (isinstance(weight_decay, (int, float)) and weight_decay >= 0):
        raise ValueError(f"weight_decay must be a non-negative number, got {weight_decay!r}")
    if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 1:
        raise ValueError(f"num_classes must be a positive int, got {num_classes!r}")
    if reduction == "mean":
        return num_classes * weight_decay / 2.0
    if reduction == "sum_classes":
        return weight_decay / 2.0
    if reduction == "paper":
        return float(weight_decay)
    if reduction == "sum":
        if not (isinstance(batch_size, int) and batch_size > 0):
            raise ValueError(f"reduction='sum' needs batch_size > 0, got {batch_size!r}")
        return weight_decay / (2.0 * batch_size)
    raise ValueError(f"reduction must be 'mean', 'sum_classes', 'paper' or 'sum', got {reduction!r}")


def _solve_spd(a: torch.Tensor, rhs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Solve a X = rhs for SPD ``a``; returns (X, Cholesky factor or None if a fell back to pinv)."""
    chol, info = torch.linalg.cholesky_ex(a)
    if int(info) == 0:
        return torch.cholesky_solve(rhs, chol), chol
    warnings.warn("the ridge second-moment matrix is singular (lam = 0 with degenerate features): "
                  "using the minimum-norm least-squares classifier", RuntimeWarning, stacklevel=3)
    evals, evecs = torch.linalg.eigh(a)
    inv = torch.where(evals > evals[-1] * a.shape[0] * _EPS64, 1.0 / evals, torch.zeros_like(evals))
    return evecs @ (inv.unsqueeze(1) * (evecs.T @ rhs)), None


def mse_decomposition(
    stats: CollapseStats,
    weight: torch.Tensor | torch.nn.Module,
    bias: torch.Tensor | None,
    lam: float,
    *,
    class_weighting: str = "uniform",
) -> dict[str, Any]:
    """Exact split of the last-layer ridge MSE into L_NC1 + L_NC23 + L_perp (Han, Papyan, Donoho).

    The objective is L(W~) = 1/2 Ave_i ||W h_i + b - e_{y_i}||^2 + lam/2 (||W||^2 + ||b||^2) over the
    samples summarised by ``stats`` (targets: one-hot in R^C). With A = Ave h~h~^T + lam I and
    W~_LS = argmin L (Cholesky solve in float64):

    * ``L_NC1``  = 1/2 [tr(W_LS (Sigma_W + lam I) W_LS^T) + lam ||b_LS||^2]
    * ``L_NC23`` = 1/(2C) ||W_LS M + b_LS 1^T - I||^2  (``class_weighting="empirical"``: weights n_c/N)
    * ``L_perp`` = 1/2 tr((W~ - W~_LS) A (W~ - W~_LS)^T), from its quadratic form (never a difference)

    ``total`` is L(W~) computed directly (within-class and class-mean parts, no cancellation);
    ``total == L_NC1 + L_NC23 + L_perp`` to rounding for balanced classes (or with
    ``class_weighting="empirical"``). With unbalanced classes and uniform weighting the split is not
    exact and a warning is issued (``gap`` reports by how much).

    Args:
        stats: accumulated statistics.
        weight: (C, d) classifier weight or an ``nn.Linear``.
        bias: (C,) bias or None for the bias-free variant (h instead of h~).
        lam: ridge lambda >= 0 in the paper's normalisation (see :func:`lam_from_weight_decay`).
        class_weighting: ``"uniform"`` (the paper's 1/C) or ``"empirical"`` (n_c/N, exact always).

    Returns:
        dict with floats ``L_NC1``, ``L_NC23``, ``L_perp``, ``sum``, ``total``, ``gap``
        (= total - sum), ``ls_loss`` (= L(W~_LS)), ``lam``, ``balanced``, ``bias``; and float64
        tensors ``W_LS`` (C, d) and ``b_LS`` (C,) (or None).
    """
    if class_weighting not in ("uniform", "empirical"):
        raise ValueError(f"class_weighting must be 'uniform' or 'empirical', got {class_weighting!r}")
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    return _decompose(stats, weight, bias, float(lam), class_weighting)[0]


def _decompose(stats, weight, bias, lam, class_weighting):
    w, b = _check_classifier(_check_stats(stats), weight, bias)
    geo = class_geometry(stats, "sample")
    present, m, pi, sigma_w = geo["present"], geo["M"], geo["pi"], geo["Sigma_W"]
    cp, d = m.shape
    ctot = stats.num_classes
    balanced = stats.is_balanced()
    if class_weighting == "uniform" and not balanced:
        warnings.warn("classes are unbalanced: the split L_NC1 + L_NC23 + L_perp with the paper's uniform "
                      "1/C weighting is not exact (see 'gap'); use class_weighting='empirical' for an "
                      "exact split", RuntimeWarning, stacklevel=3)
    eye_c = torch.eye(ctot, dtype=torch.float64, device=stats.device)
    targets = eye_c[:, present]                                   # (C, C') one-hot columns
    with_bias = b is not None
    mu_s = pi @ m
    second = sigma_w + (m.T * pi) @ m                             # Ave h h^T
    if with_bias:
        a = torch.empty(d + 1, d + 1, dtype=torch.float64, device=stats.device)
        a[:d, :d] = second
        a[:d, d] = mu_s
        a[d, :d] = mu_s
        a[d, d] = 1.0
        mt = torch.cat([m, torch.ones(cp, 1, dtype=m.dtype, device=m.device)], 1)   # (C', d+1)
        wt = torch.cat([w, b.unsqueeze(1)], 1)
    else:
        a, mt, wt = second.clone(), m, w
    a.diagonal().add_(lam)
    p = targets @ (pi.unsqueeze(1) * mt)                          # (C, d(+1)) = Ave y h~^T
    x, chol = _solve_spd(a, p.T)
    wt_ls = x.T
    w_ls, b_ls = (wt_ls[:, :d], wt_ls[:, d]) if with_bias else (wt_ls, None)

    # L_NC1 and L_NC23 at the least-squares classifier
    l_nc1 = 0.5 * float(((w_ls @ sigma_w) * w_ls).sum() + lam * (w_ls * w_ls).sum())
    if with_bias:
        l_nc1 += 0.5 * lam * float((b_ls * b_ls).sum())
    resid_ls = w_ls @ m.T - targets                               # (C, C')
    if with_bias:
        resid_ls = resid_ls + b_ls.unsqueeze(1)
    cw = torch.full_like(pi, 1.0 / cp) if class_weighting == "uniform" else pi
    l_nc23 = 0.5 * float(((resid_ls * resid_ls) * cw).sum())

    # L_perp from its quadratic form: 1/2 ||D L||^2 with A = L L^T (>= 0 by construction)
    dlt = wt - wt_ls
    if chol is not None:
        l_perp = 0.5 * float(((dlt @ chol) ** 2).sum())
    else:
        l_perp = 0.5 * float(((dlt @ a) * dlt).sum())

    # the objective itself, from within-class and class-mean parts
    resid = w @ m.T - targets
    if with_bias:
        resid = resid + b.unsqueeze(1)
    total = 0.5 * float(((w @ sigma_w) * w).sum() + ((resid * resid) * pi).sum())
    total += 0.5 * lam * float((wt * wt).sum())
    ls_loss = l_nc1 + l_nc23 if (balanced or class_weighting == "empirical") else None
    s = l_nc1 + l_nc23 + l_perp
    res = {"L_NC1": l_nc1, "L_NC23": l_nc23, "L_perp": l_perp, "sum": s, "total": total,
           "gap": total - s, "ls_loss": ls_loss, "lam": lam, "balanced": balanced,
           "bias": with_bias, "class_weighting": class_weighting, "W_LS": w_ls, "b_LS": b_ls}
    return res, wt, wt_ls


# ---------------------------------------------------------------------- central path
def central_path(
    stats: CollapseStats,
    weight: torch.Tensor | torch.nn.Module,
    bias: torch.Tensor | None,
    lam: float,
    *,
    class_weighting: str = "uniform",
    cov_ridge: float = 1e-10,
    rtol: float | None = None,
) -> dict[str, Any]:
    """Proximity to the central path and the SNR singular values.

    Args:
        stats, weight, bias, lam, class_weighting: as :func:`mse_decomposition`.
        cov_ridge: when Sigma_W is singular (dead ReLU units, d > N), Sigma_W + eps I is used with
            eps = cov_ridge * tr(Sigma_W)/d, grown by 10x until the Cholesky succeeds; reported as
            ``cov_ridge_used`` (0 when none was needed).
        rtol: rank cutoff of the centred means, as in :func:`nc_metrics`.

    Returns:
        dict with ``dist_to_ls`` = ||W~ - W~_LS||_F / ||W~_LS||_F, ``perp_ratio`` = L_perp / L,
        the decomposition terms ``L_NC1``, ``L_NC23``, ``L_perp``, ``sum``, ``total``, ``lam``,
        ``omega`` (float64 tensor, descending: the non-zero singular values of
        Sigma_W^{-1/2} Mbar, Mbar centred by the mean of class means), ``omega_max``, ``omega_min``,
        ``omega_spread`` = max/min, ``snr_ls_loss`` = 1/2 sum_j 1/(C + omega_j^2) (equals the
        least-squares loss at lam = 0 with bias, balanced classes), ``cov_ridge_used``.
    """
    if not (isinstance(lam, (int, float)) and math.isfinite(lam) and lam >= 0):
        raise ValueError(f"lam must be a finite number >= 0, got {lam!r}")
    if class_weighting not in ("uniform", "empirical"):
        raise ValueError(f"class_weighting must be 'uniform' or 'empirical', got {class_weighting!r}")
    dec, wt, wt_ls = _decompose(stats, weight, bias, float(lam), class_weighting)
    omega, ridge = snr_singular_values(stats, rtol=rtol, cov_ridge=cov_ridge)
    c = int(stats.present.sum())
    nrm = float(wt_ls.norm())
    out = {
        "dist_to_ls": float((wt - wt_ls).norm()) / nrm if nrm > 0 else float("inf"),
        "perp_ratio": dec["L_perp"] / dec["total"] if dec["total"] > 0 else float("nan"),
        "L_NC1": dec["L_NC1"], "L_NC23": dec["L_NC23"], "L_perp": dec["L_perp"],
        "sum": dec["sum"], "total": dec["total"], "lam": dec["lam"],
        "omega": omega,
        "omega_max": float(omega.max()) if omega.numel() else float("nan"),
        "omega_min": float(omega.min()) if omega.numel() else float("nan"),
        "snr_ls_loss": 0.5 * float((1.0 / (c + omega**2)).sum()),
        "cov_ridge_used": ridge,
    }
    out["omega_spread"] = out["omega_max"] / out["omega_min"] if omega.numel() else float("nan")
    return out


def snr_singular_values(stats: CollapseStats, rtol: float | None = None,
                        cov_ridge: float = 1e-10) -> tuple[torch.Tensor, float]:
    """Non-zero singular values omega (descending) of Sigma_W^{-1/2} Mbar and the ridge used.

    Computed as the singular values of L^{-1} Mbar with Sigma_W (+ eps I) = L L^T (a triangular
    solve, d x C), so only a d x d Cholesky is needed. Invariant under invertible affine maps of
    the features.
    """
    geo = class_geometry(stats, "class")
    mbar, sigma_w = geo["Mbar"], geo["Sigma_W"]
    d, c = mbar.shape
    if not (isinstance(cov_ridge, (int, float)) and cov_ridge >= 0):
        raise ValueError(f"cov_ridge must be a non-negative float, got {cov_ridge!r}")
    scale = float(torch.trace(sigma_w)) / d
    if scale <= 0:
        raise ValueError("Sigma_W is zero (no within-class variation): the SNR is infinite")
    chol, info = torch.linalg.cholesky_ex(sigma_w)
    ridge = 0.0
    eps = max(cov_ridge, _EPS64) * scale
    while int(info) != 0:
        ridge = eps
        shifted = sigma_w.clone()
        shifted.diagonal().add_(eps)
        chol, info = torch.linalg.cholesky_ex(shifted)
        eps *= 10.0
    x = torch.linalg.solve_triangular(chol, mbar, upper=False)
    smb = torch.linalg.svdvals(mbar)
    if rtol is None:
        rtol = max(d, c) * _EPS64
    rank = int((smb > rtol * smb[0]).sum()) if smb.numel() else 0
    return torch.linalg.svdvals(x)[:rank], ridge
