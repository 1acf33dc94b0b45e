"""Solvers of the cone-constrained group lasso (the convex twin of two-layer ReLU training).

    minimize   ℓ(Σ_i D_i X (u_i − v_i), y) + β Σ_i (‖u_i‖₂ + ‖v_i‖₂)
    subject to (2D_i − I) X u_i ≥ 0,  (2D_i − I) X v_i ≥ 0,   i = 1..P

* :func:`solve_cvxpy`: the vectorized cvxpy model (Clarabel by default, SCS, MOSEK, ...), imported
  lazily.
* :func:`solve_torch`: pure torch (float64 CPU, float32/64 CUDA), three methods.

  ``method="ipm"`` (default for the squared loss when one dense Newton factorization costs
  ≤ ``IPM_MAX_FLOPS``, see :func:`auto_method`): a primal-dual interior-point method (Mehrotra
  predictor-corrector) on the blocks, kept strictly feasible from interior points of the pattern
  cones found by a batched phase I; each Newton system is ``AᵀA`` plus ``2P`` diagonal
  ``d × d`` blocks. Its ``u``/``v`` halves share ``AᵀA = [[B, −B], [−B, B]]`` (``B = GᵀG``,
  ``G = [D_1X, …, D_PX]``), so it is eliminated to one ``P·d × P·d`` Cholesky of
  ``B + (H_u⁻¹ + H_v⁻¹)⁻¹`` (plus one step of iterative refinement), or, when cheaper, solved by
  Woodbury with an ``n × n`` Cholesky. The group norms are second-order cones ``t_j ≥ ‖w_j‖``
  (Nesterov–Todd scaling; Mehrotra and Gondzio correctors, which reuse the factorization). It
  stops on a certified relative duality gap: the returned blocks are feasible and their
  objective is within ``tol`` of the optimum (15–35 iterations measured).

  ``method="pcg"``: the same interior point, but each Newton step whose eliminated ``P·d``
  system is cheaper to solve by preconditioned CG than to factor is solved matrix-free
  (products with ``B`` through ``X``, ``O(n·P·d)``). The preconditioner is exact on the
  patterns still coupled through ``B`` (``λ_min(C_p) < ‖B_pp‖``; a Cholesky of ``B_AA + C_A`` or
  a Woodbury ``n × n`` system) and block Jacobi on the rest, whose barrier blocks dominate. The
  early steps, where every pattern is coupled, stay dense when a dense system fits. The stop is
  the same certified gap.

  ``method="ws"`` (default for the squared loss beyond that size): the same interior point on a
  *working set* of patterns, certified on all of them. The blocks outside the working set are
  zero; their exact dual norms ``min_{μ≥0} ‖(Aᵀz)_j − X̂ᵀ(S_j μ)‖`` at the restricted solution
  come from a batched interior point on the ``d``-dimensional projections (:func:`_dual_norms`;
  any ``μ ≥ 0`` gives a valid bound), so the lower bound ``−ℓ*(τz)``,
  ``τ = β / max_j c_j`` over **all** blocks, certifies the full program. Patterns with a dual
  norm above ``β`` join the working set and it repeats.

  ``method="admm"`` (the logistic loss, and sizes beyond the IPM's dense algebra). The splitting
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

from udl._utils import retained_heap
from udl.convex._core import loss_conjugate_lower_bound, loss_value

__all__ = ["ConvexSolverError", "ConvexSolverWarning", "solve_cvxpy", "solve_torch",
           "convex_objective", "CVXPY_SOLVERS"]

CVXPY_SOLVERS = ("clarabel", "scs", "mosek", "gurobi", "ecos")


class ConvexSolverError(RuntimeError):
    """The solver failed (infeasible/unbounded/error status): no value is returned."""


class _EmptyInterior(ConvexSolverError):
    """A pattern cone has no interior point (the interior-point method cannot start)."""

    def __init__(self, bad: int, total: int):
        super().__init__(
            f"{bad} of the {total} pattern cones have an empty interior (e.g. patterns that force "
            "x_k·u = 0); the interior-point method (solver='torch', method='ipm'/'ws') needs "
            "strictly feasible cones: use method='admm' or a cvxpy solver")


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


IPM_MAX_FLOPS = 5e11  # per Newton factorization: beyond it the working set is cheaper
# A GPU affords 20x more: on an H100, at n=10000 d=50 P=1000 (5e12 flops per Woodbury system) the
# dense IPM reached gap 1.4e-3 in 120 s (53 it) where the working set was at 0.91 after 60 s.
IPM_MAX_FLOPS_CUDA = 1e13


def ipm_newton_cost(n: int, d: int, P: int, ipm_max_dim: int = 10000) -> float:
    """Flops of one dense Newton factorization of :func:`_ipm` (the cheaper of the ``P·d``
    Cholesky and the ``n × n`` Woodbury system, each only when its size is ``≤ ipm_max_dim``)."""
    direct = (P * d) ** 3 / 3 if P * d <= ipm_max_dim else float("inf")
    wood = float(n) * n * d * P + n ** 3 / 3 if n <= ipm_max_dim else float("inf")
    return min(direct, wood)


def auto_method(n: int, d: int, P: int, loss: str, ipm_max_dim: int = 10000,
                device: str | torch.device = "cpu") -> str:
    """The method ``solve_torch(method="auto")`` uses for the squared loss: ``"ipm"`` when one
    dense Newton factorization fits (size ``≤ ipm_max_dim``) and costs at most
    ``IPM_MAX_FLOPS`` (``IPM_MAX_FLOPS_CUDA`` on a CUDA ``device``), else ``"ws"`` (the interior
    point on a working set of patterns, certified on all of them); ``"admm"`` for the logistic
    loss."""
    if loss != "squared":
        return "admm"
    budget = IPM_MAX_FLOPS_CUDA if torch.device(device).type == "cuda" else IPM_MAX_FLOPS
    return "ipm" if ipm_newton_cost(n, d, P, ipm_max_dim) <= budget else "ws"


def solve_torch(X: torch.Tensor, y: torch.Tensor, D: torch.Tensor, beta: float, loss: str,
                tol: float = 1e-6, max_iter: int = 20000, rho: float | None = None,
                init: tuple[torch.Tensor, torch.Tensor] | None = None, verbose: bool = False,
                direct_max_n: int = 5000, check_every: int = 10, relax: float = 1.6,
                adaptive: bool = True, cone_scale: float = 1.0, method: str = "auto",
                time_limit: float | None = None, ipm_max_dim: int = 10000,
                ws_size: int | None = None, ws_add: int | None = None, progress: bool = False):
    """Solve the cone-constrained group lasso in torch (see the module docstring).

    Args:
        X: ``[n, d]``, y: ``[n]``, D: ``[n, P]`` 0/1 patterns, all on one device and dtype.
        beta: β > 0. loss: ``"squared"`` or ``"logistic"``.
        tol: ``"ipm"``: relative duality gap ``(F(w) − LB) / F(w)`` at which it stops, where
            ``F(w)`` is the objective of the returned (strictly feasible) blocks and ``LB`` a
            certified lower bound (a dual-feasible point), so ``F(w)`` is within ``tol`` of the
            optimum. ``"admm"``: tolerance on the relative primal/dual residuals (Boyd et al.
            §3.3) and on the change of the objective between checks.
        max_iter: iterations (interior-point steps for ``"ipm"``, ADMM steps for ``"admm"``;
            the IPM uses at most ``min(max_iter, 200)``).
        method: ``"ipm"`` (primal-dual interior point, squared loss; computed in float64 for
            any input dtype, the blocks are returned in ``X.dtype``), ``"pcg"`` (the IPM with
            PCG Newton steps where they are cheaper than dense ones), ``"ws"`` (the IPM on a
            working set of patterns, certified on all patterns; squared loss), ``"admm"``, or
            ``"auto"`` (:func:`auto_method`): for the squared loss the IPM when its dense
            Newton systems (``P·d`` or ``n`` at most ``ipm_max_dim``) cost at most
            ``IPM_MAX_FLOPS`` per factorization (``IPM_MAX_FLOPS_CUDA`` on a GPU), the working
            set otherwise; ADMM for the logistic loss.
        ws_size, ws_add: ``"ws"`` only: patterns in the first working set (default
            ``2000 // d``) and the most violating patterns added per round.
        progress: ``"ws"`` only: print one line per working-set round.
        time_limit: stop (status ``"time_limit"``, with a warning) after this many seconds.
        rho, init, direct_max_n, check_every, relax, adaptive, cone_scale: ADMM only (initial
            penalty, warm start ``(U, V)``, eigendecomposition size limit, convergence-test
            period, over-relaxation, residual balancing, weight of the cone constraints).

    Returns:
        ``(U [P, d], V [P, d], info)``; ``info["status"]`` is ``"optimal"`` only when the
        stopping rule held. The IPM's ``info`` also has ``upper_bound`` (objective of ``U, V``),
        ``lower_bound`` and ``gap`` (relative).
    """
    if loss not in ("squared", "logistic"):
        raise ValueError(f"solver='torch' supports loss 'squared' or 'logistic', got {loss!r}; "
                         "use a cvxpy solver for the hinge loss")
    if method not in ("auto", "ipm", "pcg", "ws", "admm"):
        raise ValueError(f"method must be 'auto', 'ipm', 'pcg', 'ws' or 'admm', got {method!r}")
    if not tol > 0:
        raise ValueError(f"tol must be > 0, got {tol!r}")
    t_start = time.perf_counter()
    n, d = X.shape
    P = D.shape[1]
    auto = method == "auto"
    if auto:
        method = auto_method(n, d, P, loss, ipm_max_dim, X.device)
    if method in ("ipm", "pcg", "ws") and loss != "squared":
        raise ValueError(f"method={method!r} supports loss='squared' only; use method='admm'")
    # big CPU problems re-allocate n × J temporaries every step: keep them mapped (see
    # retained_heap; measured 15.3 -> 8.9 s an iteration at n=10⁴, d=10, P=1000)
    big_cpu = X.device.type == "cpu" and float(n) * P >= 1e6
    with _cpu_threads(X.device, float(n) * d * P), retained_heap(big_cpu):
        if method in ("ipm", "pcg", "ws"):
            try:  # in float64 whatever the input dtype: the iterates approach the cone faces
                if method in ("ipm", "pcg"):
                    U, V, info = _ipm(X.double(), y.double(), D.double(), float(beta), tol,
                                      min(int(max_iter), 200), verbose, time_limit, t_start,
                                      ipm_max_dim, linear="pcg" if method == "pcg" else "exact")
                else:
                    U, V, info = _ipm_working_set(
                        X.double(), y.double(), D.double(), float(beta), tol,
                        min(int(max_iter), 200), verbose, time_limit, t_start, ipm_max_dim,
                        ws_size=ws_size, ws_add=ws_add, progress=progress)
                U, V = U.to(X.dtype), V.to(X.dtype)
            except _EmptyInterior:
                if not auto:
                    raise
                method = "admm"  # a degenerate pattern cone: ADMM needs no interior point
        if method == "admm":
            U, V, info = _admm(X, y, D.to(X.dtype), float(beta), loss, tol, max_iter, rho, init,
                               verbose, direct_max_n, check_every, relax, adaptive, cone_scale,
                               time_limit, t_start)
    info["method"] = method
    info["solve_time"] = time.perf_counter() - t_start
    if info["status"] != "optimal":
        if method in ("ipm", "pcg", "ws"):
            what = (f"relative duality gap {info['gap']:.2e} > tol={tol:g} (objective "
                    f"{info['upper_bound']:.10g}, certified lower bound {info['lower_bound']:.10g})")
        else:
            what = (f"primal residual {info['r_pri']:.2e}, dual residual {info['r_dual']:.2e} vs "
                    f"tol={tol:g}")
        if info["status"] == "time_limit":
            why = f"time_limit={time_limit} s"
        elif info["status"] == "max_iter":
            why = f"max_iter={max_iter}"
        else:
            why = f"a numerical error ({info['status']})"
        warnings.warn(f"solver='torch' ({method}) stopped at {why} before reaching tol: {what}; "
                      "the value may be inaccurate", ConvexSolverWarning, stacklevel=3)
    return U, V, info


def _admm(X, y, D, beta, loss, tol, max_iter, rho, init, verbose, direct_max_n, check_every,
          relax=1.6, adaptive=True, cone_scale=1.0, time_limit=None, t_start=None):
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
        if time_limit is not None and time.perf_counter() - t_start > time_limit:
            status = "time_limit"  # checked every iteration (host clock only, no device sync)
            break
    U = v[:, :P].T.contiguous()
    V = v[:, P:].T.contiguous()
    return U, V, {"status": status, "solver": "torch", "iterations": it, "rho": rho,
                  "r_pri": r_pri, "r_dual": r_dual, "history": history,
                  "linear_solver": mode}


# ------------------------------------------------------------------------ interior point
def _interior_points(Xh: torch.Tensor, S: torch.Tensor, max_steps: int = 80):
    """A strictly interior point ``h_j`` of every cone ``{h : S_j ⊙ X̂h ≥ 0}`` (columns of ``S``).

    Batched damped Newton on ``M θ + ½‖h‖² − Σ_k log(S_jk x̂_kᵀh + θ)`` from ``(h, θ) = (0, 1)``
    (always in the domain); block ``j`` is done once ``θ_j < 0``, i.e. ``S_j ⊙ X̂h_j ≥ −θ_j > 0``.
    ``M`` grows ×10 every 20 steps. Returns ``H [d, J]`` and a bool mask of the blocks found (a
    cone with an empty interior, e.g. a pattern forcing ``x_kᵀh = 0``, is never found).
    """
    n, d = Xh.shape
    J = S.shape[1]
    dtype, dev = Xh.dtype, Xh.device
    XX = (Xh[:, :, None] * Xh[:, None, :]).reshape(n, d * d)
    h = torch.zeros(d, J, dtype=dtype, device=dev)
    th = torch.ones(J, dtype=dtype, device=dev)
    M = 10.0 * n
    eye = torch.eye(d, dtype=dtype, device=dev)
    found = torch.zeros(J, dtype=torch.bool, device=dev)
    H = torch.zeros(d, J, dtype=dtype, device=dev)
    inf = torch.tensor(float("inf"), dtype=dtype, device=dev)
    for step in range(max_steps):
        e = S * (Xh @ h) + th
        ok = (th < 0) & ~found
        H = torch.where(ok[None, :], h, H)
        found = found | ok
        if step % 5 == 0 and bool(found.all()):
            break
        ie = 1.0 / e
        ie2 = ie * ie
        g = torch.cat([(h - Xh.T @ (S * ie)).T, (M - ie.sum(0))[:, None]], 1)  # [J, d+1]
        Hhh = (XX.T @ ie2).T.reshape(J, d, d) + eye
        Hht = (Xh.T @ (S * ie2)).T
        Hfull = torch.cat([torch.cat([Hhh, Hht[:, :, None]], 2),
                           torch.cat([Hht[:, None, :], ie2.sum(0)[:, None, None]], 2)], 1)
        step_ = -torch.linalg.solve(Hfull, g[:, :, None])[:, :, 0]
        dh, dt = step_[:, :d].T, step_[:, d]
        de = S * (Xh @ dh) + dt
        ratio = torch.where(de < 0, -e / de, inf).amin(0)
        alpha = torch.clamp(0.95 * ratio, max=1.0)
        h = h + alpha * dh
        th = th + alpha * dt
        if step % 20 == 19:
            M *= 10.0
    return H, found


def _chol(Mat: torch.Tensor) -> torch.Tensor:
    """Cholesky factor of a (batch of) SPD matrices, with growing diagonal jitter if needed."""
    L, info = torch.linalg.cholesky_ex(Mat)
    if not bool((info > 0).any()):
        return L
    diag = Mat.diagonal(dim1=-2, dim2=-1)
    scale = diag.abs().amax(-1, keepdim=True).clamp_min(1e-300)
    eye = torch.eye(Mat.shape[-1], dtype=Mat.dtype, device=Mat.device)
    for k in range(8):
        jit = (1e-14 * 100.0 ** k) * scale
        L, info = torch.linalg.cholesky_ex(Mat + jit[..., None] * eye)
        if not bool((info > 0).any()):
            return L
    raise torch.linalg.LinAlgError("matrix not positive definite even with jitter")


def _chol_solve(b: torch.Tensor, L: torch.Tensor) -> torch.Tensor:
    """``(L Lᵀ)⁻¹ b`` for a (batch of) lower Cholesky factors, by two triangular solves.

    ``torch.cholesky_solve`` copies ``L`` on every call on the CPU: at 10⁴ × 10⁴ that is 800 MB and
    ~0.5 s per solve against 0.07 s for the solves themselves (measured, 2 threads)."""
    z = torch.linalg.solve_triangular(L, b, upper=False)
    return torch.linalg.solve_triangular(L.mT, z, upper=True)


def _refine_dual_norms(c, Q, Xh, S2, beta, k):
    """Tighten the dual norms ``c_j = ‖Q_j − X̂ᵀ(S_j μ_j)‖`` of the (at most ``k``) blocks with
    ``c_j > β`` by the exact ``min_{μ ≥ 0}`` (one NNLS each, scipy, float64); any ``μ ≥ 0`` gives
    a dual-feasible point, so the result stays a valid bound."""
    import numpy as np
    from scipy.optimize import nnls

    over = torch.nonzero(c > beta).flatten()
    if over.numel() == 0:
        return c
    over = over[torch.argsort(c[over], descending=True)[:k]]
    c = c.clone()
    Xn = Xh.detach().cpu().double().numpy()
    for j in over.tolist():
        Sj = S2[:, j].detach().cpu().double().numpy()
        b = Q[:, j].detach().cpu().double().numpy()
        try:
            mu, _ = nnls(Xn.T * Sj[None, :], b, maxiter=50 * max(Xn.shape))
        except RuntimeError:  # iteration limit: keep the IPM's dual
            continue
        res = float(np.linalg.norm(b - (Xn.T * Sj[None, :]) @ mu))
        c[j] = min(float(c[j]), res)
    return c


_IPM_W0 = {"soc": 0.03, "smooth": 0.3}  # start block norm, × ‖y‖ / max ‖x_k‖
_IPM_ETA0 = 1.0
_IPM_CONE = "soc"  # "smooth": the earlier IPM on √(‖w‖² + ε²) (kept for comparison)
_IPM_FTB = 0.95  # fraction to the boundary (SOC IPM)
_IPM_CORRECTORS = 4  # Gondzio correctors per step at most (SOC IPM)
_GZ_DELTA = 0.2  # each asks for a step this much longer
_GZ_LO, _GZ_HI = 0.1, 10.0  # centrality box for the products, × σμ
_GZ_GAIN = 0.1  # kept if the step lengths grow by at least this × _GZ_DELTA


def _ipm(X, y, D, beta, tol, max_iter, verbose, time_limit, t_start, max_dim, linear="exact",
         cone=None):
    """The interior-point method on all ``2P`` blocks (u then v): :func:`_ipm_blocks`."""
    P = D.shape[1]
    pat = torch.cat([torch.arange(P, device=X.device)] * 2)
    sg = torch.cat([torch.ones(P, dtype=X.dtype, device=X.device),
                    -torch.ones(P, dtype=X.dtype, device=X.device)])
    w, _, info = _ipm_blocks(X, y, D, pat, sg, beta, tol, max_iter, verbose, time_limit,
                             t_start, max_dim, paired=True, linear=linear, cone=cone)
    return w[:, :P].T.contiguous(), w[:, P:].T.contiguous(), info


def _paired_solve(factor, b, P, d):
    """Solve ``[[B + H_u, −B], [−B, B + H_v]] [x; y] = [a; b]`` given a solver of
    ``B + H_u(H_u+H_v)⁻¹H_v`` (``solve_delta``: a Cholesky factor or PCG) and the factor of
    ``H_u + H_v``: with ``δ = x − y``, ``(B + H_u(H_u+H_v)⁻¹H_v) δ = a − H_u(H_u+H_v)⁻¹(a+b)`` and
    ``x = (H_u+H_v)⁻¹(a + b + H_v δ)``."""
    _, solve_delta, Ls, Hu, Hv = factor
    a_, ab = b[:P], b[:P] + b[P:]
    rd = a_ - (Hu @ _chol_solve(ab[:, :, None], Ls))[:, :, 0]
    dl = solve_delta(rd)
    x = _chol_solve((ab + (Hv @ dl[:, :, None])[:, :, 0])[:, :, None], Ls)[:, :, 0]
    return torch.cat([x, x - dl])


def _block_gram(X: torch.Tensor, Du: torch.Tensor) -> torch.Tensor:
    """``GᵀG`` for ``G = [D_1X, …, D_PX]`` (``n × P·d``), accumulated over row chunks."""
    n, d = X.shape
    pd = Du.shape[1] * d
    step = max(1, int(2e7 // max(pd, 1)))
    out = torch.zeros(pd, pd, dtype=X.dtype, device=X.device)
    for a in range(0, n, step):
        B = (Du[a:a + step, :, None] * X[a:a + step, None, :]).reshape(-1, pd)
        # the full product: a mirrored lower triangle (as in _woodbury_gram) rounds differently
        # and tipped a tight-tolerance working-set test into a numerical error
        out += B.T @ B
    return out


def _woodbury_gram(X: torch.Tensor, Du: torch.Tensor, Lg: torch.Tensor,
                   row_blocks: int = 8) -> torch.Tensor:
    """``I + Σ_p D_p X L_p L_pᵀ Xᵀ D_p`` (``n × n``, ``Lg [P, d, d]``), in chunks of patterns.

    Only the lower block triangle is multiplied (``row_blocks`` row blocks: ~56 % of the flops
    of the full product, which dominates the Woodbury Newton step) and then mirrored."""
    n, d = X.shape
    K = torch.zeros(n, n, dtype=X.dtype, device=X.device)
    chunk = max(1, int(2e7 // max(n * d, 1)))
    edges = [round(i * n / row_blocks) for i in range(row_blocks + 1)]
    for a in range(0, Lg.shape[0], chunk):
        Lc = Lg[a:a + chunk]
        # one GEMM for all X L_p of the chunk, masked by the patterns
        C = (X @ Lc.permute(1, 0, 2).reshape(d, -1)).reshape(n, -1, d)
        C = (C * Du[:, a:a + chunk, None]).reshape(n, -1)
        for lo, hi in zip(edges[:-1], edges[1:]):
            K[lo:hi, :hi].addmm_(C[lo:hi], C[:hi].T)
    K = torch.tril(K) + torch.tril(K, -1).T
    K.diagonal().add_(1.0)
    return K


def _block_rows(idx: torch.Tensor, d: int) -> torch.Tensor:
    """Rows ``p·d … p·d + d − 1`` of the listed patterns ``p`` in a ``P·d`` matrix."""
    return (idx[:, None] * d + torch.arange(d, device=idx.device)).reshape(-1)


class _PatternGram:
    """Blocks ``B_AA`` of ``B = GᵀG`` for pattern subsets ``A``: sliced from the full matrix when
    it exists, else formed for ``A`` plus spare patterns and reused while later ``A`` stay
    inside (the active set of the interior point mostly shrinks)."""

    def __init__(self, X: torch.Tensor, Du: torch.Tensor, full: torch.Tensor | None = None):
        self.X, self.Du, self.full = X, Du, full
        P = Du.shape[1]
        self.pos = torch.full((P,), -1, dtype=torch.long, device=X.device)
        self.gram = full
        if full is not None:
            self.pos = torch.arange(P, device=X.device)

    def form_cost(self, k: int) -> float:
        """Flops to form the Gram of ``k`` patterns (0 when sliced from the full matrix)."""
        return 0.0 if self.full is not None else (k * self.X.shape[1]) ** 2 * self.X.shape[0]

    def get(self, A: torch.Tensor, spare: torch.Tensor) -> torch.Tensor:
        d = self.X.shape[1]
        if bool((self.pos[A] < 0).any()):
            keep = torch.unique(torch.cat([A, spare]))
            self.gram = _block_gram(self.X, self.Du[:, keep])
            self.pos.fill_(-1)
            self.pos[keep] = torch.arange(len(keep), device=A.device)
        rows = _block_rows(self.pos[A], d)
        return self.gram[rows][:, rows]


# PCG Newton solves (method="pcg"): the exact part of the preconditioner covers the patterns
# whose eliminated barrier block C_p is below _PCG_TAU·‖B_pp‖ (the others are nearly decoupled
# and take block Jacobi), within _PCG_FACTOR_FLOPS per Newton step.
_PCG_TAU = 1.0
_PCG_FACTOR_FLOPS = 1e11
_PCG_TOL = 1e-9
_PCG_MAX_ITER = 400
_PCG_REL = 0.7  # a PCG step is taken when its estimated flops are below this share of dense


def _subset_cost(k: int, n: int, d: int, gram: _PatternGram) -> tuple[float, bool]:
    """(flops, direct) of the exact part of the preconditioner on ``k`` patterns: Cholesky of
    ``B_AA + C_A`` (``k·d``; its Gram formed with spares unless sliced) or Woodbury ``n × n``."""
    direct = (k * d) ** 3 / 3 + gram.form_cost(int(1.5 * k))
    wood = 2.0 * n * n * d * k + n ** 3 / 3
    return min(direct, wood), direct <= wood


def _coupled_patterns(Cp: torch.Tensor, bmax: torch.Tensor) -> tuple[torch.Tensor, int]:
    """Patterns ordered by ``λ_min(C_p) / ‖B_pp‖`` and how many are below ``_PCG_TAU``: those
    are coupled to the others through ``B`` and need the exact part of the preconditioner."""
    ratio = torch.linalg.eigvalsh(Cp)[:, 0] / bmax
    return torch.argsort(ratio), int((ratio < _PCG_TAU).sum())


def _subset_precond(Cp, Lg, Bd, gram, X, Du, order, k):
    """Preconditioner of the eliminated Newton matrix ``B + C`` (pattern space, ``C =
    blkdiag C_p``): exact on the first ``k`` patterns of ``order`` (Cholesky of ``B_AA + C_A``
    or Woodbury with ``C_A⁻¹ = L Lᵀ``, whichever :func:`_subset_cost` finds cheaper),
    ``(B_pp + C_p)⁻¹`` on the rest. Returns ``apply(r [P, d])``."""
    d = Cp.shape[1]
    n = X.shape[0]
    A, rest = order[:k], order[k:]
    L_rest = _chol(Bd[rest] + Cp[rest])
    direct = _subset_cost(k, n, d, gram)[1]
    if k and direct:
        M = gram.get(A, order[k:k + k // 2]).clone()
        M.reshape(k, d, k, d)[torch.arange(k), :, torch.arange(k), :] += Cp[A]
        L = _chol(M)
        del M
    elif k:
        LA, DA = Lg[A], Du[:, A]
        LK = _chol(_woodbury_gram(X, DA, LA))

    def c_inv(LA, r):  # C_A⁻¹ r = L Lᵀ r per block
        return (LA @ (LA.mT @ r[:, :, None]))[:, :, 0]

    def apply(r):
        out = torch.empty_like(r)
        out[rest] = _chol_solve(r[rest][:, :, None], L_rest)[:, :, 0]
        if k and direct:
            out[A] = _chol_solve(r[A].reshape(-1, 1), L).reshape(k, d)
        elif k:
            h = c_inv(LA, r[A])
            z = _chol_solve((((X @ h.T) * DA).sum(1))[:, None], LK)[:, 0]
            out[A] = h - c_inv(LA, ((X * z[:, None]).T @ DA).T)
        return out

    return apply


# Second-order cones ``{(x₀, x₁) : x₀ ≥ ‖x₁‖}``, one per column: ``x₀ [J]``, ``x₁ [d, J]``.
def _soc_det(x0, x1):
    """``x₀² − ‖x₁‖²``, factored so that points near the boundary keep their digits."""
    r = x1.norm(dim=0)
    return (x0 - r) * (x0 + r)


def _soc_mul(u0, u1, v0, v1):
    """Jordan product ``u ∘ v = (uᵀv, u₀v₁ + v₀u₁)``."""
    return u0 * v0 + (u1 * v1).sum(0), u0 * v1 + v0 * u1


def _soc_div(l0, l1, r0, r1):
    """``u`` with ``l ∘ u = r`` (``l`` interior)."""
    u0 = (l0 * r0 - (l1 * r1).sum(0)) / _soc_det(l0, l1)
    return u0, (r1 - u0 * l1) / l0


def _soc_nt(x0, x1, z0, z1):
    """Nesterov–Todd scaling of the interior pairs ``x, z``: ``(η, w̄₀, w̄₁)`` with
    ``W² = η²(2w̄w̄ᵀ − J)`` (``J = diag(1, −I)``, ``w̄ᵀJw̄ = 1``), so ``W²x = z`` and
    ``Wx = W⁻¹z``."""
    xn, zn = _soc_det(x0, x1).sqrt(), _soc_det(z0, z1).sqrt()
    gam = ((1 + (x0 * z0 + (x1 * z1).sum(0)) / (xn * zn)) / 2).sqrt()
    return (zn / xn).sqrt(), (z0 / zn + x0 / xn) / (2 * gam), (z1 / zn - x1 / xn) / (2 * gam)


def _soc_scale(nt, u0, u1, inverse=False):
    """``W u`` (or ``W⁻¹u``) for ``W = η(2vvᵀ − J)``, ``v = (w̄ + e) / √(2(w̄₀ + 1))``;
    ``W⁻¹ = (2Jv vᵀJ − J) / η``."""
    eta, w0, w1 = nt
    c = (2 * (w0 + 1)).sqrt()
    v0, v1 = (w0 + 1) / c, w1 / c
    if inverse:
        vu = v0 * u0 - (v1 * u1).sum(0)
        return (2 * v0 * vu - u0) / eta, (u1 - 2 * v1 * vu) / eta
    vu = v0 * u0 + (v1 * u1).sum(0)
    return eta * (2 * v0 * vu - u0), eta * (2 * v1 * vu + u1)


def _soc_max_step(x0, x1, d0, d1):
    """Largest ``α`` with ``x + αd`` in the cone (``x`` interior; ``inf`` where unbounded): the
    smallest positive root of ``(x₀ + αd₀)² − ‖x₁ + αd₁‖²``, in the cancellation-free form."""
    a = d0 * d0 - (d1 * d1).sum(0)
    b = x0 * d0 - (x1 * d1).sum(0)
    c = _soc_det(x0, x1)
    root = c / (torch.sqrt((b * b - a * c).clamp_min(0)) - b).clamp_min(1e-300)
    return torch.where((a < 0) | (d0 < 0), root, torch.full_like(root, float("inf")))


def _soc_clip(v0, v1, lo, hi):
    """``c − v`` where ``c`` has the eigenvalues ``v₀ ± ‖v₁‖`` of ``v`` clipped to ``[lo, hi]``
    (each moved down by at most ``hi``): Gondzio's centrality target on the cone."""
    r = v1.norm(dim=0)
    e1, e2 = v0 + r, v0 - r
    f1 = torch.maximum(e1.clamp(lo, hi), e1 - hi)
    f2 = torch.maximum(e2.clamp(lo, hi), e2 - hi)
    return (f1 + f2) / 2 - v0, ((f1 - f2) / 2 / r.clamp_min(1e-300) - 1) * v1


def _soc_start(w, beta, mu):
    """``(t, g)`` with ``(t_j, w_j) ∘ (β, g_j) = μ e``: ``g = −βw/t`` and ``β(t² − ‖w‖²)/t = μ``."""
    r = mu / beta
    t = (r + torch.sqrt(r * r + 4 * (w * w).sum(0))) / 2
    return t, -beta * w / t


def _moved(v, dv, a):
    """The iterate ``v + a·dv`` (tuples; ``None`` entries stay ``None``)."""
    return tuple(None if e is None else torch.add(e, de, alpha=a) for e, de in zip(v, dv))


def _feasible_slack(x, S2, Xh):
    """The slacks ``s = S ⊙ X̂w`` when ``s > 0`` and, with the cone variables ``t``, ``t > ‖w‖``;
    ``None`` otherwise (the next step reuses ``s``)."""
    w, t = x
    s = (Xh @ w).mul_(S2)
    inside = bool((s > 0).all()) and (t is None or bool((_soc_det(t, w) > 0).all()
                                                         and (t > 0).all()))
    return s if inside else None


def _ipm_blocks(X, y, D, pat, sg, beta, tol, max_iter, verbose, time_limit, t_start, max_dim,
                w_init=None, warm_shift=1e-2, warm_eta=1e-3, h_init=None, paired=False,
                refine_steps=1, linear="exact", cone=None):
    """Primal-dual interior point (Mehrotra predictor-corrector) for the squared loss.

    Blocks ``j = 1..J``: pattern ``D[:, pat[j]]`` with output sign ``sg[j] = ±1`` (all ``2P``
    blocks for :func:`_ipm`, a working set for :func:`_ipm_working_set`).
    Variables: blocks ``w [d, J]``, kept strictly feasible (``s = S ⊙ X̂w > 0`` with
    ``X̂`` the row-normalized ``X``; started at the interior points of :func:`_interior_points`),
    and the duals ``λ ≥ 0`` of ``S ⊙ X̂w ≥ 0``. ``cone="soc"`` (default): the norms are
    second-order cones, ``min ½‖Aw − y‖² + β Σ t_j`` s.t. ``t_j ≥ ‖w_j‖``, with SOC duals
    ``(β, g_j)``, Nesterov–Todd scaling, Mehrotra's second-order correction and Gondzio's
    centrality correctors (:func:`_soc_nt` …). ``cone="smooth"`` (the earlier method, kept for
    comparison): the norms are smoothed as ``√(‖w_j‖² + ε²)`` with ``ε`` tied to the duality
    measure. Either way the stopping rule is the exact duality gap of the program,

        F(w) − LB,  LB = −ℓ*(τ z),  z = Aw − y,  τ ≤ β / max_j ‖(Aᵀz)_j − X̂ᵀ(S_j λ_j)‖,

    a dual-feasible point, so ``F(w) − F* ≤ F(w) − LB``. Newton systems (``t``, ``g`` eliminated)
    ``(AᵀA + blockdiag H_j) Δw = b``: dense Cholesky of the ``Jd × Jd`` matrix when
    ``Jd ≤ n`` (``AᵀA`` formed once from the per-pattern Gram matrix), otherwise Woodbury with
    the ``n × n`` matrix ``I + Σ_p D_p X (Σ_{j: pat j = p} H_j⁻¹) Xᵀ D_p``; one factorization
    serves both solves. ``linear="pcg"`` (``paired`` only) solves the eliminated ``P·d`` system
    by preconditioned CG (:func:`_subset_precond`) whenever that is cheaper than the dense
    factorization or none fits. Returns ``(w [d, J], λ [n, J], info)``.
    """
    cone = cone or _IPM_CONE
    dtype, dev = X.dtype, X.device
    n, d = X.shape
    upat, ploc = torch.unique(pat, return_inverse=True)  # patterns used, block -> local pattern
    Du = D[:, upat]
    Pu = Du.shape[1]
    J = pat.shape[0]
    Su = 2 * Du - 1
    S2 = Su[:, ploc]
    DS = Du[:, ploc] * sg
    Xh = X / X.norm(dim=1, keepdim=True).clamp_min(1e-300)
    XX = (Xh[:, :, None] * Xh[:, None, :]).reshape(n, d * d)
    eye = torch.eye(d, dtype=dtype, device=dev)

    # fresh n × J temporaries cost ~5× their arithmetic (page faults at n·J = 2·10⁷, measured):
    # the per-iteration passes below work in place where they can
    def A(W):  # [d, J] -> [n]
        return (X @ W).mul_(DS).sum(dim=1)

    def At(z):  # [n] -> [d, J]
        return X.T @ (DS * z[:, None])

    if h_init is None:
        H0, found = _interior_points(Xh, Su)
    else:  # interior points given per block (e.g. cached by the working-set method)
        H0 = torch.zeros(d, Pu, dtype=dtype, device=dev)
        H0[:, ploc] = h_init
        found = (Su * (Xh @ H0)).amin(0) > 0
    if not bool(found.all()):
        bad = int((~found).sum())
        raise _EmptyInterior(bad, Pu)
    H0 = H0[:, ploc]
    # Newton solver: dense Cholesky in block space (``paired``: u, v of every pattern, whose
    # system ``[[B + H_u, −B], [−B, B + H_v]]`` is eliminated to ``B + (H_u⁻¹ + H_v⁻¹)⁻¹`` of size
    # ``P·d``), or Woodbury in data space (``n × n``); the cheaper of the two that fits
    dims = Pu * d if paired else J * d
    cost_direct = dims ** 3 / 3 if dims <= max_dim else float("inf")
    cost_wood = n * n * d * Pu + n ** 3 / 3 if n <= max_dim else float("inf")
    direct = cost_direct <= cost_wood and cost_direct < float("inf")
    pcg = linear == "pcg"
    if pcg and not paired:
        raise ValueError("linear='pcg' needs the paired (u, v) blocks")
    if direct:
        # AᵀA from the per-pattern Gram matrix: block (j, k) = sg_j sg_k Xᵀ D_pj D_pk X
        BtB = _block_gram(X, Du)
        if paired:
            AtA = BtB
            idx = torch.arange(Pu, device=dev)
        else:
            BtB = BtB.reshape(Pu, d, Pu, d)
            AtA = (BtB[ploc][:, :, ploc] * (sg[:, None, None, None] * sg[None, None, :, None])
                   ).reshape(J * d, J * d)
            idx = torch.arange(J, device=dev)
        del BtB
    elif cost_wood == float("inf") and not pcg:
        raise ValueError(f"method='ipm' needs min(n, {'P' if paired else '2·P'}·d) <= "
                         f"ipm_max_dim={max_dim} (dense Newton systems), got n={n}, "
                         f"{'P' if paired else '2·P'}·d={dims}; use method='ws' or 'admm'")
    cost_exact = min(cost_direct, cost_wood)
    # a Gondzio corrector costs one solve: GEMMs with X and passes over the n × J arrays, which
    # cost as much as ~600 (n·J = 2·10⁶) to ~2200 (n·J = 2·10⁷) factorization flops per entry
    # (measured, 1 thread); take at least one, more while they add up to ≤ ¼ factorization
    solve_cost = 8.0 * n * d * J + 2000.0 * n * J
    correctors = int(min(_IPM_CORRECTORS, max(1.0, 0.25 * cost_exact / solve_cost)))
    if pcg:  # per-pattern Gram blocks B_pp, their norms, and a source of B_AA
        XXr = (X[:, :, None] * X[:, None, :]).reshape(n, d * d)
        Bd = (Du.T @ XXr).reshape(Pu, d, d)
        bmax = torch.linalg.eigvalsh(Bd)[:, -1].clamp_min(1e-300)
        gram = _PatternGram(X, Du, AtA if direct else None)
        del XXr
    stats = {"pcg_steps": 0, "exact_steps": 0, "cg": 0, "exact_patterns": [], "cg_est": 30}
    m = n * J
    h0 = H0 / H0.norm(dim=0, keepdim=True)

    def bmat(dl, Cp):  # (B + C) δ with B = GᵀG applied through X (pattern space, δ [P, d])
        f = ((X @ dl.T) * Du).sum(1)
        return ((X * f[:, None]).T @ Du).T + (Cp @ dl[:, :, None])[:, :, 0]

    def pcg_cost(k):  # flops of a PCG Newton step: exact part + two solves of cg_est steps
        f, direct_k = _subset_cost(k, n, d, gram)
        apply = 2.0 * (k * d) ** 2 if direct_k else 2.0 * n * n + 4.0 * n * k * d
        return f + 2 * stats["cg_est"] * (4.0 * n * Pu * d + apply)

    def pcg_solver(Cp, Lg):  # a PCG solve of the eliminated system, or None if dense is cheaper
        order, k_all = _coupled_patterns(Cp, bmax)
        k = k_all
        while k > 0 and _subset_cost(k, n, d, gram)[0] > _PCG_FACTOR_FLOPS:
            k = k * 9 // 10  # only without a dense fallback: a partial exact part
        if cost_exact < float("inf") and (k < k_all or pcg_cost(k) > _PCG_REL * cost_exact):
            stats["cg_est"] = max(1, int(0.8 * stats["cg_est"]))  # retry PCG now and then
            return None
        apply = _subset_precond(Cp, Lg, Bd, gram, X, Du, order, k)
        stats["pcg_steps"] += 1
        stats["exact_patterns"].append(k)
        x0 = torch.zeros(Pu, d, dtype=dtype, device=dev)

        def solve(rd):
            before = stats["cg"]
            x = _cg(lambda v: bmat(v, Cp), rd, x0, _PCG_TOL, _PCG_MAX_ITER, precond=apply,
                    stats=stats)
            stats["cg_est"] = max(stats["cg"] - before, 1)  # the next step's cost estimate
            return x

        return solve

    def primal_value(W):
        return float(0.5 * ((A(W) - y) ** 2).sum() + beta * W.norm(dim=0).sum())

    mbuf = None  # AᵀA is copied into one buffer kept across steps: a fresh 800 MB clone faults

    def system_buffer():
        nonlocal mbuf
        if mbuf is None:
            mbuf = torch.empty_like(AtA)
        return mbuf.copy_(AtA)

    def factorize(Hb):
        """Factor ``AᵀA + blockdiag Hb`` with the solver chosen above (raises LinAlgError)."""
        solve_delta = None
        if paired and (pcg or direct):  # C = (H_u⁻¹ + H_v⁻¹)⁻¹ = (L_g L_gᵀ)⁻¹, once per step
            Lg = _chol(torch.cholesky_inverse(_chol(Hb[:Pu]))
                       + torch.cholesky_inverse(_chol(Hb[Pu:])))
            Cinv = torch.cholesky_inverse(Lg)
        if pcg:
            solve_delta = pcg_solver(Cinv, Lg)
        if solve_delta is not None:
            return ("pcg", solve_delta, _chol(Hb[:Pu] + Hb[Pu:]), Hb[:Pu], Hb[Pu:])
        if direct and paired:
            stats["exact_steps"] += 1
            Mf = system_buffer().reshape(Pu, d, Pu, d)
            Mf[idx, :, idx, :] += Cinv
            LM = _chol(Mf.reshape(dims, dims))
            return ("paired", lambda rd: _chol_solve(rd.reshape(-1, 1), LM).reshape(Pu, d),
                    _chol(Hb[:Pu] + Hb[Pu:]), Hb[:Pu], Hb[Pu:])
        if direct:
            Mf = system_buffer().reshape(J, d, J, d)
            Mf[idx, :, idx, :] += Hb
            return (_chol(Mf.reshape(J * d, J * d)),)
        stats["exact_steps"] += 1
        Lb = _chol(Hb)
        Hinv = torch.cholesky_inverse(Lb)
        Hs = torch.zeros(Pu, d, d, dtype=dtype, device=dev).index_add_(0, ploc, Hinv)
        return (Lb, Hinv, _chol(_woodbury_gram(X, Du, _chol(Hs))))

    def newton(factor, b, Hb):
        """``Δw [d, J]`` solving ``(AᵀA + blockdiag Hb) Δw = b`` (``b [J, d]``)."""
        if factor[0] in ("paired", "pcg"):
            dw = _paired_solve(factor, b, Pu, d)
            for _ in range(refine_steps if factor[0] == "paired" else 0):  # refinement
                res = b - (At(A(dw.T)).T + (Hb @ dw[:, :, None])[:, :, 0])
                dw = dw + _paired_solve(factor, res, Pu, d)
        elif len(factor) == 1:
            dw = _chol_solve(b.reshape(-1, 1), factor[0]).reshape(J, d)
        else:
            Lb, Hinv, LK = factor
            hb = _chol_solve(b[:, :, None], Lb)[:, :, 0]
            zz = _chol_solve(A(hb.T)[:, None], LK)[:, 0]
            dw = hb - torch.einsum("jde,je->jd", Hinv, At(zz).T)
        return dw.T

    def barrier_hessian(ratio):  # X̂ᵀ diag(λ/s) X̂ per block: the linear cones
        return (XX.T @ ratio).T.reshape(J, d, d)

    scratch = torch.empty(n, J, dtype=dtype, device=dev)

    def to_boundary(x, dx):  # largest α with x + α dx ≥ 0 (x > 0)
        r = float(torch.div(dx, x, out=scratch).min())
        return -1.0 / r if r < 0 else float("inf")

    eps = None

    def smooth_step(x, z, s):
        """One predictor-corrector step with the norms smoothed as ``√(‖w_j‖² + ε²)``."""
        nonlocal eps
        (w, _), (lam, _) = x, z
        eta = float((s * lam).sum()) / m
        eps = 0.1 * n * eta / beta if eps is None else min(eps, 0.1 * n * eta / beta)
        wn2 = (w * w).sum(0)
        rn = torch.sqrt(wn2 + eps * eps)
        grad = At(A(w) - y) + beta * w / rn
        wT = w.T
        Pw = wT[:, :, None] * wT[:, None, :] / wn2.clamp_min(1e-300)[:, None, None]
        Hb = barrier_hessian(lam / s) + (beta / rn)[:, None, None] * (
            eye - Pw + (eps * eps / (rn * rn))[:, None, None] * Pw)
        factor = factorize(Hb)

        def direction(target):
            """Newton direction for the complementarity target ``s ⊙ λ`` after the step."""
            dW = newton(factor, (-grad + Xh.T @ (S2 * (lam + target / s))).T, Hb)
            ds = S2 * (Xh @ dW)
            return dW, ds, (target - lam * ds) / s

        dW, ds, dl = direction(-s * lam)  # predictor (affine scaling)
        # separate primal and dual step lengths (the primal iterate stays feasible whatever λ
        # does; the next Newton step corrects the dual residual): ~10 % fewer iterations
        a_p, a_d = min(1.0, to_boundary(s, ds)), min(1.0, to_boundary(lam, dl))
        eta_aff = float(((s + a_p * ds) * (lam + a_d * dl)).sum()) / m
        sigma = min(1.0, (eta_aff / eta) ** 3)
        dW, ds, dl = direction(sigma * eta - s * lam - ds * dl)  # corrector
        alpha = min(1.0, 0.99 * to_boundary(s, ds))
        alpha_d = min(1.0, 0.99 * to_boundary(lam, dl))
        return (dW, None), (dl, None), alpha, alpha_d, eta, sigma

    zeta = torch.full((J,), beta, dtype=dtype, device=dev)  # dual of t_j: β (stationarity in t)

    def soc_step(x, z, s):
        """One predictor-corrector step on the cones ``t_j ≥ ‖w_j‖`` (NT scaling) and
        ``S ⊙ X̂w ≥ 0``; the SOC duals are ``(β, g_j)``, so ``Δζ = 0`` and eliminating ``Δt``,
        ``Δg`` leaves the block ``η²(I − 2w̄₁w̄₁ᵀ/(2w̄₀² − 1))`` (the Schur complement of
        ``W² = η²(2w̄w̄ᵀ − J)`` on ``w``) in each Newton block."""
        (w, t), (lam, g) = x, z
        sl = s * lam
        mu = (float(sl.sum()) + float((zeta * t + (w * g).sum(0)).sum())) / (m + J)
        nt = _soc_nt(t, w, zeta, g)
        e2, w0, w1 = nt[0] ** 2, nt[1], nt[2]
        l0, l1 = _soc_scale(nt, t, w)  # the scaled point W x = W⁻¹ z
        a0 = e2 * (2 * w0 * w0 - 1)  # W² = [[a0, bvᵀ], [bv, e2 (I + 2 w1 w1ᵀ)]]
        bv = 2 * e2 * w0 * w1
        w1T = w1.T
        ratio = lam / s
        Hb = barrier_hessian(ratio) + e2[:, None, None] * (
            eye - (2 / (2 * w0 * w0 - 1))[:, None, None] * w1T[:, :, None] * w1T[:, None, :])
        factor = factorize(Hb)
        rd = At(A(w) - y) - Xh.T @ (S2 * lam) - g  # dual residual in w

        def direction(rl, rc0, rc1):
            """Newton direction for the targets ``s ⊙ λ + rl`` and ``λ∘λ + rc`` (scaled)."""
            q0, q1 = _soc_scale(nt, *_soc_div(l0, l1, rc0, rc1))  # Δz + W²Δx = q
            rls = rl / s
            b = -rd + Xh.T @ (S2 * rls) + q1 - bv * (q0 / a0)
            dw = newton(factor, b.T, Hb)
            dt = (q0 - (bv * dw).sum(0)) / a0  # Δζ = 0
            dg = q1 - bv * dt - e2 * (dw + 2 * w1 * (w1 * dw).sum(0))
            ds = (Xh @ dw).mul_(S2)
            return dw, dt, ds, rls.addcmul_(ratio, ds, value=-1), dg  # Δλ = rl/s − (λ/s)Δs

        def lengths(dw, dt, ds, dl, dg):
            ap = min(to_boundary(s, ds), float(_soc_max_step(t, w, dt, dw).min()))
            ad = min(to_boundary(lam, dl), float(_soc_max_step(zeta, g, 0 * dt, dg).min()))
            return ap, ad

        def centre(dirs, steps, rhs, target):
            """Gondzio's centrality correctors (the factorization is reused: one solve each):
            aim the products at a longer step into the box ``[0.1, 10]·σμ``; keep a corrected
            direction while it lengthens the steps."""
            a_p, a_d = steps
            lo, hi = _GZ_LO * target, _GZ_HI * target
            for _ in range(correctors):
                if min(a_p, a_d) >= 1:
                    break
                tp, td = min(1.0, a_p + _GZ_DELTA), min(1.0, a_d + _GZ_DELTA)
                dw, dt, ds, dl, dg = dirs
                v = torch.add(s, ds, alpha=tp).mul_(torch.add(lam, dl, alpha=td))
                u0, u1 = _soc_scale(nt, dt, dw)
                z0, z1 = _soc_scale(nt, 0 * dt, dg, inverse=True)
                tc = _soc_clip(*_soc_mul(l0 + tp * u0, l1 + tp * u1, l0 + td * z0, l1 + td * z1),
                               lo, hi)
                trial = (v.clamp(lo, hi).sub_(v).clamp_min_(-hi).add_(rhs[0]), rhs[1] + tc[0],
                         rhs[2] + tc[1])
                new = direction(*trial)
                b_p, b_d = lengths(*new)
                if b_p + b_d < a_p + a_d + _GZ_GAIN * _GZ_DELTA:
                    break
                dirs, a_p, a_d, rhs = new, b_p, b_d, trial
            return dirs, a_p, a_d

        ll0, ll1 = _soc_mul(l0, l1, l0, l1)
        dw, dt, ds, dl, dg = direction(-sl, -ll0, -ll1)  # predictor (affine scaling)
        a_p, a_d = (min(1.0, a) for a in lengths(dw, dt, ds, dl, dg))
        mu_aff = (float(torch.add(s, ds, alpha=a_p).mul_(torch.add(lam, dl, alpha=a_d)).sum())
                  + float((zeta * (t + a_p * dt) + ((w + a_p * dw) * (g + a_d * dg)).sum(0)).sum())
                  ) / (m + J)
        sigma = min(1.0, (mu_aff / mu) ** 3)
        # Mehrotra's second-order term (W Δx_aff) ∘ (W⁻¹ Δz_aff) in the corrector
        c0, c1 = _soc_mul(*_soc_scale(nt, dt, dw), *_soc_scale(nt, 0 * dt, dg, inverse=True))
        rl = ds.mul_(dl).add_(sl).neg_().add_(sigma * mu)  # σμ − s⊙λ − Δs⊙Δλ (Δs not needed)
        rc0, rc1 = sigma * mu - ll0 - c0, -ll1 - c1
        dirs = direction(rl, rc0, rc1)
        dirs, a_p, a_d = centre(dirs, lengths(*dirs), (rl, rc0, rc1), sigma * mu)
        dw, dt, ds, dl, dg = dirs
        # separate primal and dual step lengths (a common one took more iterations)
        a_p, a_d = min(1.0, _IPM_FTB * a_p), min(1.0, _IPM_FTB * a_d)
        return (dw, dt), (dl, dg), a_p, a_d, mu, sigma

    # start: every block on its interior ray, of norm ‖y‖ / max ‖x_k‖; s ⊙ λ = ½‖y‖² / (n·J)
    w0 = _IPM_W0[cone] * float(y.norm()) / max(float(X.norm(dim=1).max()), 1e-300)
    eta0 = _IPM_ETA0 * 0.5 * float((y * y).sum()) / m
    if w_init is None:
        w = w0 * h0
    else:  # warm start: the given (feasible) blocks pushed into the interior, a smaller η
        w = w_init + (warm_shift * w0) * h0
        eta0 = eta0 * warm_eta
    s = (Xh @ w).mul_(S2)  # the slacks of the current iterate, kept from its feasibility check
    lam = eta0 / s
    if cone == "soc":  # (t_j, w_j) ∘ (β, g_j) = η₀ e: centred on the second-order cones too
        t, g = _soc_start(w, beta, eta0)
        x, z, step = (w, t), (lam, g), soc_step
    else:
        x, z, step = (w, None), (lam, None), smooth_step
    status, it = "max_iter", 0
    ub = lb = float("nan")
    best = (float("inf"), w)
    history = []

    def lower_bound(W, mu, refine=0):
        z = A(W) - y
        Q = At(z)
        c = (Q - Xh.T @ (S2 * mu)).norm(dim=0)
        if refine:
            c = _refine_dual_norms(c, Q, Xh, S2, beta, refine)
        cmax = float(c.max())
        gg, gy = float((z * z).sum()), float((z * y).sum())
        tmax = beta / cmax if cmax > 0 else float("inf")
        tau = min(max(-gy / gg, 0.0), tmax) if gg > 0 else 0.0
        return float(loss_conjugate_lower_bound(tau * z, y, "squared"))

    for it in range(1, max_iter + 1):
        try:
            dx, dz, alpha, alpha_d, eta, sigma = step(x, z, s)
        except torch.linalg.LinAlgError:
            status = "numerical_error"
            break
        x_new = _moved(x, dx, alpha)
        s_new = _feasible_slack(x_new, S2, Xh)
        if s_new is None:  # rounding at the boundary: shorten the step
            alpha *= 0.5
            x_new = _moved(x, dx, alpha)
            s_new = _feasible_slack(x_new, S2, Xh)
            if s_new is None:
                status = "numerical_error"
                break
        x, z, s = x_new, _moved(z, dz, alpha_d), s_new
        w, lam = x[0], z[0]
        ub = primal_value(w)
        if ub < best[0]:
            best = (ub, w)
        lb = max(lb if lb == lb else -float("inf"), lower_bound(w, lam))
        gap = (best[0] - lb) / max(abs(best[0]), 1e-300)
        if tol < gap < 1e-2:  # near the end: exact dual norms (NNLS) of the worst blocks
            lb = max(lb, lower_bound(best[1], lam, refine=32))
            gap = (best[0] - lb) / max(abs(best[0]), 1e-300)
        history.append((it, best[0], lb, gap, eta, sigma, alpha))
        if verbose:
            print(f"[convex/torch ipm] it {it} F {ub:.10g} LB {lb:.10g} gap {gap:.2e} "
                  f"eta {eta:.2e} sigma {sigma:.2e} step {alpha:.3f}/{alpha_d:.3f} "
                  f"at {time.perf_counter() - t_start:.1f} s")
        if gap <= tol:
            status = "optimal"
            break
        if time_limit is not None and time.perf_counter() - t_start > time_limit:
            status = "time_limit"
            break
    ub, w = best
    if not lb == lb:
        lb = -float("inf")
    gap = (ub - lb) / max(abs(ub), 1e-300) if ub < float("inf") else float("inf")
    return w, lam, {"status": status, "solver": "torch", "iterations": it, "upper_bound": ub,
                    "lower_bound": lb, "gap": gap, "history": history,
                    "linear_solver": _linear_name(pcg, stats, direct),
                    "pcg_steps": stats["pcg_steps"], "cg_iterations": stats["cg"],
                    "r_pri": 0.0, "r_dual": float("nan"), "cone": cone}


def _linear_name(pcg: bool, stats: dict, direct: bool) -> str:
    """How the IPM's Newton systems were solved, for ``info["linear_solver"]``."""
    dense = "direct" if direct else "woodbury"
    if not pcg or not stats["pcg_steps"]:
        return dense
    ks = stats["exact_patterns"]
    return (f"pcg ({stats['pcg_steps']} steps, {stats['cg']} CG iterations, exact part "
            f"{min(ks)}-{max(ks)} patterns; {stats['exact_steps']} {dense} steps)")


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


def _cg(matvec, b, x0, tol: float = 1e-10, max_iter: int = 500, precond=None,
        stats: dict | None = None):
    """Conjugate gradients for a symmetric positive definite operator (warm start ``x0``), with
    an optional SPD preconditioner ``precond(r) ≈ A⁻¹r``; stops at ``‖r‖ ≤ tol·‖b‖``. ``stats``
    (if given) accumulates the iterations under ``"cg"``."""
    x = x0.clone()
    r = b - matvec(x)
    z = r if precond is None else precond(r)
    p = z.clone()
    rz = (r * z).sum()
    bnorm = float(b.norm()) or 1.0
    its = 0
    while its < max_iter and float(r.norm()) > tol * bnorm:
        its += 1
        Ap = matvec(p)
        alpha = rz / (p * Ap).sum()
        x = x + alpha * p
        r = r - alpha * Ap
        z = r if precond is None else precond(r)
        rz_new = (r * z).sum()
        p = z + (rz_new / rz) * p
        rz = rz_new
    if stats is not None:
        stats["cg"] = stats.get("cg", 0) + its
    return x


# ----------------------------------------------------------------- working-set interior point
def _dual_norms(Q, Xh, S, cap=None, max_iter=40, rtol=1e-6, XX=None, deadline=None):
    """Certified dual norms ``c_j = min_{μ ≥ 0} ‖Q_j − X̂ᵀ(S_j ⊙ μ)‖`` of blocks ``j`` (columns
    of ``Q [d, J]`` and of the signs ``S [n, J]``), all at once.

    Batched primal-dual interior point (Mehrotra) on the projection of ``Q_j`` onto the polar
    cone ``{u : S_j ⊙ X̂u ≤ 0}``, whose multipliers are the ``μ`` of the NNLS: every iterate has
    ``μ > 0``, so ``‖Q_j − X̂ᵀ(S_j ⊙ μ)‖`` is a valid (certified) value at any iteration and the
    exact minimum at convergence. A block stops once its value is ``≤ cap`` (not the maximum
    that matters) or its projection gap is below ``rtol`` (relative). Newton systems are the
    ``d × d`` matrices ``I + X̂ᵀ diag(μ/t) X̂``. Returns ``c [J]`` (certified, ``≥`` the minimum)
    and ``r [J]`` (the norm of the projection iterate, ``≈ c`` at convergence; not certified,
    for ranking).
    """
    n, d = Xh.shape
    J = Q.shape[1]
    dtype, dev = Q.dtype, Q.device
    if XX is None:
        XX = (Xh[:, :, None] * Xh[:, None, :]).reshape(n, d * d)
    eye = torch.eye(d, dtype=dtype, device=dev)
    inf = torch.tensor(float("inf"), dtype=dtype, device=dev)
    c = Q.norm(dim=0)  # μ = 0
    r = c.clone()
    act = torch.arange(J, device=dev)
    if cap is not None:
        act = act[c > cap]
    if act.numel() == 0 or n == 0:
        return c, r
    q = Q[:, act]
    Sa = S[:, act]
    qn = q.norm(dim=0).clamp_min(1e-300)
    u = torch.zeros_like(q)
    t = qn.expand(n, -1).clone()
    mu = (qn / n).expand(n, -1).clone()
    for _ in range(max_iter):
        Gu = Sa * (Xh @ u)
        rd = u - q + Xh.T @ (Sa * mu)
        rp = Gu + t
        eta = (t * mu).sum(0) / n
        cval = (u - rd).norm(dim=0)  # ‖q − X̂ᵀ(S ⊙ μ)‖, as rd = u − q + X̂ᵀ(S ⊙ μ)
        c[act] = torch.minimum(c[act], cval)
        r[act] = u.norm(dim=0)
        # done: below the cap, or the projection solved (complementarity and residuals small)
        scale = cval.clamp_min(1e-300) ** 2
        done = ((n * eta <= rtol * scale) & (rd.norm(dim=0) <= rtol * qn)
                & (rp.norm(dim=0) <= rtol * qn))
        if cap is not None:
            done = done | (cval <= cap)
        if bool(done.all()) or (deadline is not None and time.perf_counter() > deadline):
            break
        if bool(done.any()):
            keep = ~done
            act, q, Sa, qn, u, t, mu = (act[keep], q[:, keep], Sa[:, keep], qn[keep], u[:, keep],
                                        t[:, keep], mu[:, keep])
            Gu, rd, rp, eta = Gu[:, keep], rd[:, keep], rp[:, keep], eta[keep]
        ratio = mu / t
        Hm = (XX.T @ ratio).T.reshape(-1, d, d) + eye
        L = _chol(Hm)

        def direction(rc, rd=rd, rp=rp, t=t, mu=mu, ratio=ratio, Sa=Sa, L=L):
            rhs = -rd - Xh.T @ (Sa * (ratio * rp + rc / t))
            du = _chol_solve(rhs.T[:, :, None], L)[:, :, 0].T
            dt = -rp - Sa * (Xh @ du)
            dmu = (rc - mu * dt) / t
            return du, dt, dmu

        def to_bd(x, dx):
            return torch.where(dx < 0, -x / dx, inf).amin(0).clamp(max=1.0)

        du, dt, dmu = direction(-t * mu)
        a_aff = torch.minimum(to_bd(t, dt), to_bd(mu, dmu))
        eta_aff = ((t + a_aff * dt) * (mu + a_aff * dmu)).sum(0) / n
        sigma = (eta_aff / eta.clamp_min(1e-300)).clamp(0, 1) ** 3
        du, dt, dmu = direction(sigma * eta - t * mu - dt * dmu)
        a = 0.99 * torch.minimum(to_bd(t, dt), to_bd(mu, dmu))
        a = a.clamp(max=1.0)
        u = u + a * du
        t = t + a * dt
        mu = mu + a * dmu
    cval = (q - Xh.T @ (Sa * mu)).norm(dim=0)
    c[act] = torch.minimum(c[act], cval)
    r[act] = u.norm(dim=0)
    return c, r


def _ipm_working_set(X, y, D, beta, tol, max_iter, verbose, time_limit, t_start, max_dim,
                     ws_size=None, ws_add=None, progress=False, warm=False, warm_opts=None,
                     loose_tol=1e-2):
    """Interior point on a working set of blocks, certified on the full problem.

    Most blocks are zero at the optimum. Rank all ``2P`` blocks by their dual norm at the
    zero network (:func:`_dual_norms` at ``z = −y``), solve the program restricted to the
    ``ws_size`` best with :func:`_ipm_blocks`, then compute certified dual norms of every block
    outside the working set at the restricted solution: the lower bound ``−ℓ*(τz)`` with
    ``τ = β / max_j c_j`` over **all** blocks is a bound for the full program, so the returned
    (zero-padded, feasible) blocks are within the stated gap of the full optimum. Blocks
    outside with ``c_j > β`` violate optimality: the ``ws_add`` worst join and it repeats.
    Returns ``(U, V, info)`` as :func:`_ipm`.
    """
    dtype, dev = X.dtype, X.device
    n, d = X.shape
    P = D.shape[1]
    J = 2 * P
    pat = torch.cat([torch.arange(P, device=dev)] * 2)
    sg = torch.cat([torch.ones(P, dtype=dtype, device=dev), -torch.ones(P, dtype=dtype, device=dev)])
    S = 2 * D - 1
    Xh = X / X.norm(dim=1, keepdim=True).clamp_min(1e-300)
    XX = (Xh[:, :, None] * Xh[:, None, :]).reshape(n, d * d)
    if ws_size is None:  # patterns (each with both signs): dense Newton systems of P_W·d
        ws_size = max(8, min(P, 2000 // d))
    if ws_add is None:
        ws_add = max(4, ws_size // 2)

    def grad_blocks(z, blocks):  # (Aᵀz)_j for the listed blocks: sg_j Xᵀ D_pj z
        return (X.T @ (D[:, pat[blocks]] * z[:, None])) * sg[blocks]

    def full_value(w, blocks):
        f = ((X @ w) * (D[:, pat[blocks]] * sg[blocks])).sum(1)
        return float(0.5 * ((f - y) ** 2).sum() + beta * w.norm(dim=0).sum()), f - y

    def bound(z, cmax):
        gg, gy = float((z * z).sum()), float((z * y).sum())
        tmax = beta / cmax if cmax > 0 else float("inf")
        tau = min(max(-gy / gg, 0.0), tmax) if gg > 0 else 0.0
        return float(loss_conjugate_lower_bound(tau * z, y, "squared"))

    deadline = None if time_limit is None else t_start + time_limit
    all_blocks = torch.arange(J, device=dev)
    c0, r0 = _dual_norms(grad_blocks(-y, all_blocks), Xh, S[:, pat], cap=beta, rtol=1e-3, XX=XX,
                         deadline=deadline)
    history = []
    zero_val = float(0.5 * (y * y).sum())
    if float(c0.max()) <= beta:  # the zero network is optimal (β ≥ β_max)
        U = torch.zeros(P, d, dtype=dtype, device=dev)
        return U, U.clone(), {"status": "optimal", "solver": "torch", "iterations": 0,
                              "upper_bound": zero_val, "lower_bound": zero_val, "gap": 0.0,
                              "history": history, "linear_solver": "none", "rounds": 0,
                              "working_set": 0, "r_pri": 0.0, "r_dual": float("nan")}
    score = torch.maximum(r0[:P], r0[P:])
    order = torch.argsort(score, descending=True)
    W = order[:max(1, min(ws_size, int((torch.maximum(c0[:P], c0[P:]) > beta).sum())))]
    best = (zero_val, None, None)
    lb = -float("inf")
    status, total_it, rounds = "max_iter", 0, 0
    tol_in = max(loose_tol, tol / 4)
    h_cache = torch.zeros(d, P, dtype=dtype, device=dev)
    h_ok = torch.zeros(P, dtype=torch.bool, device=dev)
    while True:
        rounds += 1
        W = torch.sort(W).values
        Wb_ = torch.cat([W, W + P])  # blocks: u then v of every working pattern
        left = None if time_limit is None else time_limit - (time.perf_counter() - t_start)
        w_init = None
        if warm and best[1] is not None:
            pos = torch.full((J,), -1, dtype=torch.long, device=dev)
            pos[Wb_] = torch.arange(len(Wb_), device=dev)
            w_init = torch.zeros(d, len(Wb_), dtype=dtype, device=dev)
            w_init[:, pos[best[2]]] = best[1]
        newp = W[~h_ok[W]]
        if newp.numel():  # phase I only for patterns not seen before
            Hn, fn = _interior_points(Xh, S[:, newp])
            if not bool(fn.all()):
                raise _EmptyInterior(int((~fn).sum()), len(newp))
            h_cache[:, newp] = Hn
            h_ok[newp] = True
        w, lam, info = _ipm_blocks(X, y, D, pat[Wb_], sg[Wb_], beta, tol_in, max_iter, verbose,
                                   left, time.perf_counter(), max(max_dim, len(W) * d),
                                   w_init=w_init, h_init=h_cache[:, pat[Wb_]], paired=True,
                                   **(warm_opts or {}))
        total_it += info["iterations"]
        ub, z = full_value(w, Wb_)
        if ub < best[0]:
            best = (ub, w, Wb_)
        # certified dual norms: inside from the IPM's λ (and the projection), outside by projection
        Q_in = grad_blocks(z, Wb_)
        S_in = S[:, pat[Wb_]]
        c_in = (Q_in - Xh.T @ (S_in * lam)).norm(dim=0)
        c_in2, _ = _dual_norms(Q_in, Xh, S_in, cap=beta, rtol=1e-4, XX=XX, deadline=deadline)
        c_in = torch.minimum(c_in, c_in2)
        out = torch.ones(J, dtype=torch.bool, device=dev)
        out[Wb_] = False
        out_idx = all_blocks[out]
        if out_idx.numel():
            c_out, r_out = _dual_norms(grad_blocks(z, out_idx), Xh, S[:, pat[out_idx]], cap=beta,
                                       rtol=1e-4, XX=XX, deadline=deadline)
        else:
            c_out = r_out = torch.zeros(0, dtype=dtype, device=dev)
        cmax = max(float(c_in.max()), float(c_out.max()) if c_out.numel() else 0.0)
        lb = max(lb, bound(z, cmax))
        gap = (best[0] - lb) / max(abs(best[0]), 1e-300)
        viol = r_out > beta * (1 + 1e-3)
        vp = torch.zeros(P, dtype=dtype, device=dev)  # worst violation per outside pattern
        vp = vp.scatter_reduce(0, pat[out_idx[viol]], r_out[viol], "amax")
        history.append((rounds, len(W), info["iterations"], best[0], lb, gap, int(viol.sum()),
                        time.perf_counter() - t_start))
        if verbose or progress:
            print(f"[convex/torch ws] round {rounds}: {len(W)} patterns, {info['iterations']} it, "
                  f"F {best[0]:.10g} LB {lb:.10g} gap {gap:.2e}, {int(viol.sum())} violating, "
                  f"{time.perf_counter() - t_start:.1f} s", flush=True)
        if gap <= tol:
            status = "optimal"
            break
        if info["status"] in ("time_limit", "numerical_error"):
            status = info["status"]
            break
        if time_limit is not None and time.perf_counter() - t_start > time_limit:
            status = "time_limit"
            break
        # Restricted solves stay loose while patterns are still being added far from the optimum;
        # close to it (or with nothing to add) they are solved to the final accuracy.
        if tol_in > tol / 4 and not (bool(viol.any()) and gap > 0.1):
            tol_in = tol / 4
        if bool(viol.any()):
            cand = torch.nonzero(vp > 0).flatten()
            cand = cand[torch.argsort(vp[cand], descending=True)[:ws_add]]
            W = torch.cat([W, cand])
        elif info["gap"] <= tol_in:  # no violator, yet not certified: solve more accurately
            tol_in /= 10
            if tol_in < 1e-12:
                break
        elif info["status"] != "optimal":  # the restricted solve stopped short (max_iter)
            status = info["status"]
            break
    ub, w, Wb = best
    full = torch.zeros(d, J, dtype=dtype, device=dev)
    if w is not None:
        full[:, Wb] = w
    return full[:, :P].T.contiguous(), full[:, P:].T.contiguous(), {
        "status": status, "solver": "torch", "iterations": total_it, "upper_bound": ub,
        "lower_bound": lb, "gap": (ub - lb) / max(abs(ub), 1e-300), "history": history,
        "linear_solver": "working_set", "rounds": rounds,
        "working_set": len(Wb) // 2 if w is not None else 0,
        "r_pri": 0.0, "r_dual": float("nan")}
