"""Solvers of the cone-constrained group lasso (the convex twin of two-layer ReLU training).

    minimize   ℓ(Σ_i D_i X (u_i − v_i), y) + β Σ_i (‖u_i‖₂ + ‖v_i‖₂)
    subject to (2D_i − I) X u_i ≥ 0,  (2D_i − I) X v_i ≥ 0,   i = 1..P

* :func:`solve_cvxpy`: the vectorized cvxpy model (Clarabel by default, SCS, MOSEK, ...), imported
  lazily.
* :func:`solve_torch`: ADMM in pure torch (float64 CPU, float32/64 CUDA). The splitting
  ``u = v`` (group prox on ``v``) and ``(2D−I) ⊙ X̂u = s ≥ 0`` (``X̂``: row-normalized ``X``) makes
  the ``u``-step one linear system ``(c AᵀA + ρ (I + X̂ᵀX̂) ⊗ I) u = r`` that the Woodbury identity
  reduces to an ``n × n`` system with matrix ``I/c + Q/ρ``, ``Q = 2 (X (I + X̂ᵀX̂)⁻¹ Xᵀ) ⊙ DDᵀ``.
  ``Q`` is eigendecomposed once (``n ≤ direct_max_n``), so ``ρ`` can adapt for free; when
  ``P·d < n`` the u, v halves decouple and the ``P·d × P·d`` block Gram matrix is eigendecomposed
  instead (``P·d ≤ direct_max_n``); otherwise
  use warm-started conjugate gradients with the same matrix-free operator. The logistic loss is
  majorized by its curvature bound ``c = 1/4`` (a linearized ADMM step).

Both return ``(U [P, d], V [P, d], info)`` with ``info`` a dict (status, value, iterations, ...).
"""

from __future__ import annotations

import time
import warnings

import torch

from udl.convex._core import loss_value

__all__ = ["ConvexSolverError", "ConvexSolverWarning", "solve_cvxpy", "solve_torch",
           "convex_objective", "CVXPY_SOLVERS"]

CVXPY_SOLVERS = ("clarabel", "scs", "mosek", "gurobi", "ecos")


class ConvexSolverError(RuntimeError):
    """The solver failed (infeasible/unbounded/error status): no value is returned."""


class ConvexSolverWarning(UserWarning):
    """The solver returned an inaccurate solution ("optimal_inaccurate" or iteration limit)."""


def convex_objective(U: torch.Tensor, V: torch.Tensor, D: torch.Tensor, X: torch.Tensor,
                     y: torch.Tensor, beta: float, loss: str) -> float:
    """Objective of the convex program at blocks ``U, V [P, d]`` (fit taken with the masks D)."""
    f = ((X @ (U - V).T) * D).sum(dim=1)
    return float(loss_value(f, y, loss) + beta * (U.norm(dim=1).sum() + V.norm(dim=1).sum()))


def max_violation(U: torch.Tensor, V: torch.Tensor, D: torch.Tensor, X: torch.Tensor) -> float:
    """Largest cone-constraint violation ``max (−(2D−I) X u)_+`` over all blocks."""
    S = 2 * D - 1
    viol = torch.cat([(-S * (X @ U.T)).clamp_min(0), (-S * (X @ V.T)).clamp_min(0)], dim=1)
    return float(viol.max()) if viol.numel() else 0.0


# ------------------------------------------------------------------------------------- cvxpy
def solve_cvxpy(X: torch.Tensor, y: torch.Tensor, D: torch.Tensor, beta: float, loss: str,
                solver: str = "clarabel", verbose: bool = False, **solver_kwargs):
    """Vectorized cvxpy model: ``D ⊙ (XU)`` row sums for the fit, one matrix inequality per sign.

    Raises ``ImportError`` without cvxpy, :class:`ConvexSolverError` on a failed solve, and warns
    (:class:`ConvexSolverWarning`) on ``optimal_inaccurate``.
    """
    try:
        import cvxpy as cp
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise ImportError(f"solver={solver!r} needs cvxpy (pip install cvxpy); solver='torch' works "
                          "without it") from exc
    import numpy as np

    name = solver.upper()
    if name not in cp.installed_solvers():
        raise ValueError(f"solver={solver!r} is not installed for cvxpy (installed: "
                         f"{cp.installed_solvers()})")
    Xn = X.detach().cpu().double().numpy()
    yn = y.detach().cpu().double().numpy()
    Dn = D.detach().cpu().double().numpy()
    n, d = Xn.shape
    P = Dn.shape[1]
    U = cp.Variable((d, P))
    V = cp.Variable((d, P))
    XU, XV = Xn @ U, Xn @ V
    f = cp.sum(cp.multiply(Dn, XU - XV), axis=1)
    if loss == "squared":
        fit = 0.5 * cp.sum_squares(f - yn)
    elif loss == "logistic":
        fit = cp.sum(cp.logistic(-cp.multiply(yn, f)))
    else:  # hinge
        fit = cp.sum(cp.pos(1 - cp.multiply(yn, f)))
    reg = beta * (cp.sum(cp.norm(U, 2, axis=0)) + cp.sum(cp.norm(V, 2, axis=0)))
    S = 2 * Dn - 1
    cons = [cp.multiply(S, XU) >= 0, cp.multiply(S, XV) >= 0]
    prob = cp.Problem(cp.Minimize(fit + reg), cons)
    t0 = time.perf_counter()
    try:
        prob.solve(solver=name, verbose=verbose, **solver_kwargs)
    except cp.error.SolverError as exc:
        raise ConvexSolverError(f"cvxpy solver {name} failed: {exc}") from exc
    elapsed = time.perf_counter() - t0
    status = prob.status
    if status not in ("optimal", "optimal_inaccurate") or U.value is None:
        raise ConvexSolverError(f"cvxpy solver {name} returned status {status!r}; no solution")
    if status == "optimal_inaccurate":
        warnings.warn(f"cvxpy solver {name} returned 'optimal_inaccurate': the value "
                      f"{prob.value:.8g} may be off; try another solver or solver='torch'",
                      ConvexSolverWarning, stacklevel=3)
    Ut = torch.from_numpy(np.ascontiguousarray(U.value.T)).to(X.dtype)
    Vt = torch.from_numpy(np.ascontiguousarray(V.value.T)).to(X.dtype)
    return Ut, Vt, {"status": status, "solver": solver.lower(), "solve_time": elapsed,
                    "solver_value": float(prob.value), "iterations": prob.solver_stats.num_iters}


# ------------------------------------------------------------------------------------- torch
class _cpu_threads:
    """Use one CPU thread for small problems (BLAS threading only costs there)."""

    def __init__(self, device: torch.device, work: float):
        self.active = device.type == "cpu" and work < 2e7
        self.old = torch.get_num_threads()

    def __enter__(self):
        if self.active:
            torch.set_num_threads(1)

    def __exit__(self, *exc):
        if self.active:
            torch.set_num_threads(self.old)


def solve_torch(X: torch.Tensor, y: torch.Tensor, D: torch.Tensor, beta: float, loss: str,
                tol: float = 1e-6, max_iter: int = 20000, rho: float | None = None,
                init: tuple[torch.Tensor, torch.Tensor] | None = None, verbose: bool = False,
                direct_max_n: int = 5000, check_every: int = 10, relax: float = 1.6,
                adaptive: bool = True, cone_scale: float = 1.0):
    """ADMM for the cone-constrained group lasso (see the module docstring).

    Args:
        X: ``[n, d]``, y: ``[n]``, D: ``[n, P]`` 0/1 patterns, all on one device and dtype.
        beta: β > 0. loss: ``"squared"`` or ``"logistic"``.
        tol: relative tolerance on the primal and dual ADMM residuals (Boyd et al. §3.3) and on
            the change of the objective between checks.
        max_iter: ADMM iterations. rho: initial penalty (default: from the problem scale).
        init: warm start ``(U, V)``, each ``[P, d]``.
        direct_max_n: eigendecompose the ``n × n`` Woodbury matrix (or, when ``P·d < n``, the
            ``P·d × P·d`` block Gram matrix) up to this size; CG when both are larger.

    Returns:
        ``(U [P, d], V [P, d], info)``; ``U, V`` are the group-sparse iterate (exact zeros).
    """
    if loss not in ("squared", "logistic"):
        raise ValueError(f"solver='torch' supports loss 'squared' or 'logistic', got {loss!r}; "
                         "use a cvxpy solver for the hinge loss")
    t_start = time.perf_counter()
    n, d = X.shape
    P = D.shape[1]
    with _cpu_threads(X.device, float(n) * d * P):
        U, V, info = _admm(X, y, D.to(X.dtype), float(beta), loss, tol, max_iter, rho, init,
                           verbose, direct_max_n, check_every, relax, adaptive, cone_scale)
    info["solve_time"] = time.perf_counter() - t_start
    if info["status"] != "optimal":
        warnings.warn(
            f"solver='torch' stopped at max_iter={max_iter} before reaching tol={tol:g} "
            f"(primal residual {info['r_pri']:.2e}, dual residual {info['r_dual']:.2e}); the "
            "value may be inaccurate", ConvexSolverWarning, stacklevel=3)
    return U, V, info


def _admm(X, y, D, beta, loss, tol, max_iter, rho, init, verbose, direct_max_n, check_every,
          relax=1.6, adaptive=True, cone_scale=1.0):
    dtype, dev = X.dtype, X.device
    n, d = X.shape
    P = D.shape[1]
    c = 1.0 if loss == "squared" else 0.25
    D2 = torch.cat([D, D], dim=1)  # [n, 2P]
    S2 = 2 * D2 - 1
    sgn = torch.cat([torch.ones(P, dtype=dtype, device=dev),
                     -torch.ones(P, dtype=dtype, device=dev)])
    DS = D2 * sgn  # fit weights
    # row-normalized (and weighted) copy of X for the cone constraints
    Xh = cone_scale * X / X.norm(dim=1, keepdim=True).clamp_min(1e-300)
    M = torch.eye(d, dtype=dtype, device=dev) + Xh.T @ Xh
    Minv = torch.linalg.inv(M)
    XMinv = X @ Minv  # [n, d]

    def A(W):  # [d, 2P] -> [n]
        return ((X @ W) * DS).sum(dim=1)

    def At(z):  # [n] -> [d, 2P]
        return X.T @ (DS * z[:, None])

    # linear solver of the u-step: eigendecompose the smaller of the n x n Woodbury matrix and the
    # (P d) x (P d) block Gram matrix (u - v halves decouple); CG only when both are large
    pd = P * d
    if n <= direct_max_n and n <= pd:
        mode = "eigh"
    elif pd <= direct_max_n and pd < n:
        mode = "eigh_blocks"
    else:
        mode = "cg"
    direct = mode == "eigh"
    if direct:
        K = XMinv @ X.T
        Q = 2.0 * K * (D @ D.T)
        evals, evecs = torch.linalg.eigh(Q)
        evals = evals.clamp_min(0)
        q_max = float(evals[-1]) if n else 0.0
    elif mode == "eigh_blocks":
        # H = B~^T B~ with B~ = [D_1 X M^{-1/2}, ..., D_P X M^{-1/2}] (n x Pd), built in row chunks
        mev, mvec = torch.linalg.eigh(M)
        Mh = (mvec * mev.rsqrt()) @ mvec.T  # M^{-1/2}
        Xt = X @ Mh
        H = torch.zeros(pd, pd, dtype=dtype, device=dev)
        step = max(1, int(2e7 // max(pd, 1)))
        for a in range(0, n, step):
            Bt = (D[a:a + step, :, None] * Xt[a:a + step, None, :]).reshape(-1, pd)
            H += Bt.T @ Bt
        del Bt
        hev, hvec = torch.linalg.eigh(H)
        del H
        hev = hev.clamp_min(0)
        q_max = 2.0 * float(hev[-1]) if pd else 0.0
    else:
        q_max = _power_q(A, Minv, At, n, X)

    def u_solve_blocks(r, rho_):  # (c A^T A + rho M) u = r via sum/difference of the u, v halves
        r1, r2 = r[:, :P], r[:, P:]
        sig = (Minv @ (r1 + r2)) / rho_
        w = (Mh @ (r1 - r2)).T.reshape(-1)
        w = hvec @ ((hvec.T @ w) / (2.0 * c * hev + rho_))
        dlt = Mh @ w.reshape(P, d).T
        return torch.cat([(sig + dlt) / 2, (sig - dlt) / 2], dim=1)

    def solve_small(b, rho_):  # (I/c + Q/rho) z = b
        if direct:
            return evecs @ ((evecs.T @ b) / (1.0 / c + evals / rho_))
        return _cg(lambda z: z / c + A(Minv @ At(z)) / rho_, b, solve_small.z0, tol=1e-10)

    solve_small.z0 = torch.zeros(n, dtype=dtype, device=dev)

    def u_solve(r, rho_):  # (c A^T A + rho M) u = r
        if mode == "eigh_blocks":
            return u_solve_blocks(r, rho_)
        Br = (Minv @ r) / rho_
        z = solve_small(A(Br), rho_)
        if not direct:
            solve_small.z0 = z
        return Br - (Minv @ At(z)) / rho_

    if rho is None:
        # balance the loss curvature seen by the blocks with the constraint term
        rho = max(c * q_max / max(n, 1), 1e-6) if q_max > 0 else 1.0
    if init is not None:
        u = torch.cat([init[0], init[1]], dim=0).T.to(dtype=dtype, device=dev).contiguous()
    else:
        u = torch.zeros(d, 2 * P, dtype=dtype, device=dev)
    v = u.clone()
    s = (S2 * (Xh @ u)).clamp_min(0)
    lam = torch.zeros_like(u)  # scaled dual of u = v
    nu = torch.zeros_like(s)  # scaled dual of S2*(Xh u) = s
    Aty = At(y) if loss == "squared" else None

    def prox(Wc, step):
        nrm = Wc.norm(dim=0, keepdim=True)
        return Wc * (1 - step * beta / nrm.clamp_min(1e-300)).clamp_min(0)

    def objective(W):
        f = A(W)
        return float(loss_value(f, y, loss) + beta * W.norm(dim=0).sum())

    status, it = "max_iter", 0
    r_pri = r_dual = float("inf")
    last_obj = None
    history = []
    for it in range(1, max_iter + 1):
        if loss == "squared":
            rhs_loss = Aty
        else:
            Au = A(v)
            g = -y * torch.sigmoid(-y * Au)
            rhs_loss = At(c * Au - g)
        r = rhs_loss + rho * (v - lam) + rho * (Xh.T @ (S2 * (s - nu)))
        u = u_solve(r, rho)
        Zu = S2 * (Xh @ u)
        v_old, s_old = v, s
        # over-relaxation (Boyd et al. §3.4.3)
        u_hat = relax * u + (1 - relax) * v_old
        z_hat = relax * Zu + (1 - relax) * s_old
        v = prox(u_hat + lam, 1.0 / rho)
        s = (z_hat + nu).clamp_min(0)
        lam = lam + u_hat - v
        nu = nu + z_hat - s
        if it % check_every == 0 or it == max_iter:
            rp = torch.sqrt(((u - v) ** 2).sum() + ((Zu - s) ** 2).sum())
            rd = rho * (v - v_old + Xh.T @ (S2 * (s - s_old))).norm()
            scale_p = max(float(u.norm()), float(v.norm()), float(s.norm()), 1e-300)
            scale_d = max(float(rho * (lam + Xh.T @ (S2 * nu)).norm()), 1e-300)
            r_pri, r_dual = float(rp) / scale_p, float(rd) / scale_d
            obj = objective(v)
            dobj = abs(obj - last_obj) / max(abs(obj), 1e-300) if last_obj is not None else 1.0
            last_obj = obj
            history.append((it, r_pri, r_dual, obj, rho))
            if verbose:
                print(f"[convex/torch] it {it} r_pri {r_pri:.2e} r_dual {r_dual:.2e} "
                      f"obj {obj:.10g} rho {rho:.3g}")
            if r_pri <= tol and r_dual <= tol and dobj <= tol:
                status = "optimal"
                break
            # residual balancing (Boyd et al. §3.4.1); the eigendecomposition makes it free
            if adaptive and r_pri > 10 * r_dual:
                rho, lam, nu = rho * 2, lam / 2, nu / 2
            elif adaptive and r_dual > 10 * r_pri:
                rho, lam, nu = rho / 2, lam * 2, nu * 2
    U = v[:, :P].T.contiguous()
    V = v[:, P:].T.contiguous()
    return U, V, {"status": status, "solver": "torch", "iterations": it, "rho": rho,
                  "r_pri": r_pri, "r_dual": r_dual, "history": history,
                  "linear_solver": mode}


def _power_q(A, Minv, At, n, X, iters: int = 30) -> float:
    z = torch.randn(n, dtype=X.dtype, generator=torch.Generator().manual_seed(0)).to(X.device)
    z = z / z.norm().clamp_min(1e-300)
    lam = 0.0
    for _ in range(iters):
        w = A(Minv @ At(z))
        lam = float(w.norm())
        if lam == 0:
            return 0.0
        z = w / lam
    return lam


def _cg(matvec, b, x0, tol: float = 1e-10, max_iter: int = 500):
    """Conjugate gradients for a symmetric positive definite operator (warm start ``x0``)."""
    x = x0.clone()
    r = b - matvec(x)
    p = r.clone()
    rs = (r * r).sum()
    bnorm = float(b.norm()) or 1.0
    for _ in range(max_iter):
        if float(rs.sqrt()) <= tol * bnorm:
            break
        Ap = matvec(p)
        alpha = rs / (p * Ap).sum()
        x = x + alpha * p
        r = r - alpha * Ap
        rs_new = (r * r).sum()
        p = r + (rs_new / rs) * p
        rs = rs_new
    return x
