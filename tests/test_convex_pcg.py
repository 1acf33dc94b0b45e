"""The torch solver's interior point with PCG Newton solves (``method="pcg"``, the large sizes):
the same optimum as Clarabel / the dense IPM with a certified gap, both variants of the
preconditioner's exact part (Cholesky in pattern space, Woodbury in data space), the hybrid
choice of dense steps, and the option checks."""

from __future__ import annotations

import pytest
import torch
from _convex_data import planted_problem

import udl.convex as cx
from udl.convex import solvers as S
from udl.convex.solvers import _subset_precond, convex_objective, solve_torch

pytestmark = pytest.mark.usefixtures("one_thread")


@pytest.mark.parametrize("n,d,P,seed", [(150, 5, 60, 0), (300, 4, 20, 1)])
def test_pcg_only_matches_clarabel_and_dense_ipm(n, d, P, seed):
    pytest.importorskip("cvxpy")
    X, y, D = planted_problem(n, d, P, seed)
    ref = cx.ConvexReLU(1.0, patterns=D).fit(X, y).value
    tol = 1e-6
    _, _, dense = solve_torch(X, y, D, 1.0, "squared", tol=tol, method="ipm")
    # ipm_max_dim=1: no dense Newton system fits, every step is a PCG solve
    U, V, info = solve_torch(X, y, D, 1.0, "squared", tol=tol, method="pcg", ipm_max_dim=1)
    assert info["method"] == "pcg" and info["status"] == "optimal"
    assert info["pcg_steps"] == info["iterations"] and info["cg_iterations"] > 0
    assert info["linear_solver"].startswith("pcg") and "; 0 " in info["linear_solver"]
    value = convex_objective(U, V, D, X, y, 1.0, "squared")
    assert value == pytest.approx(info["upper_bound"], rel=1e-12)
    assert info["gap"] <= tol
    assert info["lower_bound"] <= ref * (1 + 1e-9)  # a certified lower bound
    assert value == pytest.approx(ref, rel=1e-5)
    assert value == pytest.approx(dense["upper_bound"], rel=1e-5)
    Sg = 2 * D - 1
    scale = float(X.norm(dim=1).max()) * float(torch.cat([U, V]).norm(dim=1).max())
    assert float((Sg * (X @ U.T)).min()) >= -1e-12 * scale  # feasible
    assert float((Sg * (X @ V.T)).min()) >= -1e-12 * scale


@pytest.mark.parametrize("n,d,k_all", [(120, 4, True), (40, 6, False)])
def test_subset_preconditioner_is_exact_on_its_patterns(n, d, k_all):
    """The exact part inverts ``B_AA + C_A`` (either variant); the rest is block Jacobi."""
    g = torch.Generator().manual_seed(7)
    X = torch.randn(n, d, dtype=torch.float64, generator=g)
    P = 12
    Du = (torch.rand(n, P, generator=g) > 0.5).double()
    R = torch.randn(P, d, d, dtype=torch.float64, generator=g)
    scale = 1e-3 if k_all else torch.logspace(-3, 4, P, dtype=torch.float64)[:, None, None]
    Cp = scale * (R @ R.mT + torch.eye(d, dtype=torch.float64))
    Lg = torch.linalg.cholesky(torch.linalg.inv(Cp))
    XXr = (X[:, :, None] * X[:, None, :]).reshape(n, d * d)
    Bd = (Du.T @ XXr).reshape(P, d, d)
    bmax = torch.linalg.eigvalsh(Bd)[:, -1]
    G = (Du[:, :, None] * X[:, None, :]).reshape(n, P * d)
    B = G.T @ G
    gram = S._PatternGram(X, Du)
    order, k = S._coupled_patterns(Cp, bmax)
    apply = _subset_precond(Cp, Lg, Bd, gram, X, Du, order, k)
    ratio = torch.linalg.eigvalsh(Cp)[:, 0] / bmax
    A = torch.nonzero(ratio < S._PCG_TAU).flatten()
    assert k == len(A) and (k == P) == k_all and 0 < k
    assert set(order[:k].tolist()) == set(A.tolist())
    r = torch.randn(P, d, dtype=torch.float64, generator=g)
    out = apply(r)
    rows = S._block_rows(A, d)
    M = B[rows][:, rows] + torch.block_diag(*Cp[A])
    torch.testing.assert_close(out[A].reshape(-1), torch.linalg.solve(M, r[A].reshape(-1)))
    rest = torch.nonzero(ratio >= S._PCG_TAU).flatten()
    for p in rest.tolist():
        torch.testing.assert_close(out[p], torch.linalg.solve(Bd[p] + Cp[p], r[p]))


def test_pcg_hybrid_uses_dense_steps_when_all_patterns_are_coupled():
    X, y, D = planted_problem(200, 5, 40, 2)
    _, _, dense = solve_torch(X, y, D, 1.0, "squared", tol=1e-6, method="ipm")
    _, _, hyb = solve_torch(X, y, D, 1.0, "squared", tol=1e-6, method="pcg")
    assert hyb["status"] == "optimal"
    # early on every pattern is coupled: the dense factorization is used, not a weak PCG
    assert hyb["pcg_steps"] < hyb["iterations"]
    assert hyb["upper_bound"] == pytest.approx(dense["upper_bound"], rel=1e-5)


def test_pcg_options_are_checked():
    X, y, D = planted_problem(60, 3, 10, 3)
    with pytest.raises(ValueError, match="'pcg'"):
        solve_torch(X, y, D, 1.0, "squared", method="cg")
    with pytest.raises(ValueError, match="squared"):
        solve_torch(X, y, D, 1.0, "logistic", method="pcg")
