"""The torch IPM on true second-order cones (``t_j ≥ ‖w_j‖``, Nesterov–Todd scaling, Mehrotra
and Gondzio correctors): the cone algebra, Clarabel's optimum with a certified gap, and fewer
iterations than the smoothed-norm IPM it replaced."""

from __future__ import annotations

import pytest
import torch
from _convex_data import planted as _planted
from _convex_data import planted_problem

import udl.convex as cx
from udl.convex import solvers as S

pytestmark = pytest.mark.usefixtures("one_thread")


def _interior(d, J, g):
    x1 = torch.randn(d, J, dtype=torch.float64, generator=g)
    x0 = x1.norm(dim=0) * (1 + torch.rand(J, dtype=torch.float64, generator=g)) + 1e-3
    return x0, x1


def test_nt_scaling_and_jordan_algebra():
    g = torch.Generator().manual_seed(0)
    (x0, x1), (z0, z1) = _interior(5, 7, g), _interior(5, 7, g)
    nt = S._soc_nt(x0, x1, z0, z1)
    eta, w0, w1 = nt
    assert torch.allclose(S._soc_det(w0, w1), torch.ones(7, dtype=torch.float64))
    # W x = W⁻¹ z (the scaled point) and W (W⁻¹ u) = u
    a, b = S._soc_scale(nt, x0, x1), S._soc_scale(nt, z0, z1, inverse=True)
    assert torch.allclose(a[0], b[0]) and torch.allclose(a[1], b[1])
    u0, u1 = torch.randn(7, dtype=torch.float64), torch.randn(5, 7, dtype=torch.float64)
    r = S._soc_scale(nt, *S._soc_scale(nt, u0, u1, inverse=True))
    assert torch.allclose(r[0], u0) and torch.allclose(r[1], u1)
    # l ∘ (l \ r) = r
    m = S._soc_mul(x0, x1, *S._soc_div(x0, x1, u0, u1))
    assert torch.allclose(m[0], u0) and torch.allclose(m[1], u1)


def test_max_step_reaches_the_boundary():
    g = torch.Generator().manual_seed(1)
    x0, x1 = _interior(4, 50, g)
    d0, d1 = torch.randn(50, dtype=torch.float64), torch.randn(4, 50, dtype=torch.float64)
    a = S._soc_max_step(x0, x1, d0, d1)
    fin = torch.isfinite(a)
    assert bool(fin.any()) and bool((a > 0).all())
    e0, e1 = x0 + a * d0, x1 + a * d1
    assert float((S._soc_det(e0[fin], e1[:, fin]) / (e0[fin] ** 2)).abs().max()) < 1e-10
    # unbounded exactly where the direction stays in the cone
    inside = (d0 >= d1.norm(dim=0))
    assert bool((~fin == inside).all())


@pytest.mark.parametrize("n,d,P,beta,seed", [(120, 5, 30, 1.0, 0), (200, 8, 60, 0.3, 1)])
def test_soc_ipm_matches_clarabel_with_certified_gap(n, d, P, beta, seed):
    pytest.importorskip("cvxpy")
    X, y, D = planted_problem(n, d, P, seed)
    ref = cx.ConvexReLU(beta, patterns=D).fit(X, y)
    tol = 1e-7
    U, V, info = S.solve_torch(X, y, D, beta, "squared", tol=tol, method="ipm")
    assert info["status"] == "optimal" and info["cone"] == "soc"
    assert info["gap"] <= tol
    value = S.convex_objective(U, V, D, X, y, beta, "squared")
    assert value == pytest.approx(ref.value, rel=1e-5)
    assert info["lower_bound"] <= value
    assert S.max_violation(U, V, D, X) == 0.0


def test_soc_ipm_takes_fewer_iterations_than_smoothed_norms():
    # many cone rows per block (large n), the regime of the big benchmark cells
    X, y = _planted(3000, 5, 2)
    D = cx.sample_patterns(X, 40, generator=torch.Generator().manual_seed(2)).double()
    its = {}
    for cone in ("smooth", "soc"):
        _, _, info = S._ipm(X, y, D, 1.0, 1e-4, 200, False, None, 0.0, 10000, cone=cone)
        assert info["status"] == "optimal" and info["cone"] == cone
        its[cone] = info["iterations"]
    assert its["soc"] < its["smooth"]
