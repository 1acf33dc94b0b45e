"""The torch solver's interior-point method: exactness vs Clarabel, an honest stopping rule,
feasible iterates, phase I, fallbacks and argument checks."""

from __future__ import annotations

import warnings

import pytest
import torch
from _convex_data import planted as _planted
from _convex_data import planted_problem

import udl.convex as cx
from udl.convex.solvers import _interior_points, convex_objective, solve_torch

pytestmark = pytest.mark.usefixtures("one_thread")


CASES = [(40, 4, 30, 0.5, 0), (120, 6, 60, 1.0, 1), (60, 10, 8, 0.2, 2), (200, 3, 40, 5.0, 3)]


@pytest.mark.parametrize("n,d,P,beta,seed", CASES)
@pytest.mark.parametrize("tol", [1e-4, 1e-7])
def test_ipm_reaches_clarabel_optimum_and_its_gap_is_honest(n, d, P, beta, seed, tol):
    """Covers both Newton solvers (2Pd ≤ n: dense Cholesky; else Woodbury)."""
    pytest.importorskip("cvxpy")
    X, y, D = planted_problem(n, d, P, seed)
    ref = cx.ConvexReLU(beta, patterns=D).fit(X, y)
    assert ref.status == "optimal"
    U, V, info = solve_torch(X, y, D, beta, "squared", tol=tol)
    assert info["method"] == "ipm" and info["status"] == "optimal"
    value = convex_objective(U, V, D, X, y, beta, "squared")
    assert value == pytest.approx(info["upper_bound"], rel=1e-12)
    # honest: the certified gap bounds the true error, the lower bound is below the optimum
    assert info["gap"] <= tol
    assert info["lower_bound"] <= ref.value * (1 + 1e-8)
    assert (value - ref.value) / ref.value <= info["gap"] + 1e-8
    # the iterate is feasible, so it cannot beat the optimum (up to Clarabel's own accuracy)
    assert value >= ref.value * (1 - 1e-7)
    S = 2 * D - 1
    scale = float(X.norm(dim=1).max()) * float(torch.cat([U, V]).norm(dim=1).max())
    assert float((S * (X @ U.T)).min()) >= -1e-12 * scale
    assert float((S * (X @ V.T)).min()) >= -1e-12 * scale
    if tol <= 1e-7:
        assert value == pytest.approx(ref.value, rel=1e-6)


def test_ipm_exact_arrangement_default_instance():
    """The degenerate exact program (optimal neurons on data hyperplanes, T9's instance)."""
    pytest.importorskip("cvxpy")
    g = torch.Generator().manual_seed(1)
    X = torch.randn(10, 3, dtype=torch.float64, generator=g)
    y = torch.randn(10, dtype=torch.float64, generator=g)
    ref = cx.ConvexReLU(0.1).fit(X, y)
    res = cx.ConvexReLU(0.1, solver="torch", tol=1e-7).fit(X, y)
    assert res.info["method"] == "ipm" and res.status == "optimal"
    assert res.value == pytest.approx(ref.value, rel=1e-6)
    assert res.network_value == pytest.approx(ref.value, rel=1e-6)
    cert = cx.certify(res.to_network(), X, y, 0.1)
    assert cert.is_global is True, cert.verdict


def test_ipm_lower_bound_is_valid_when_stopped_early():
    """Stopped after a few steps, the bound must still sit below the optimum."""
    pytest.importorskip("cvxpy")
    X, y = _planted(80, 5, 7)
    D = cx.sample_patterns(X, 40, generator=torch.Generator().manual_seed(0))
    ref = cx.ConvexReLU(1.0, patterns=D).fit(X, y).value
    for k in (2, 5, 9):
        with pytest.warns(cx.ConvexSolverWarning, match="duality gap"):
            U, V, info = solve_torch(X, y, D, 1.0, "squared", tol=1e-9, max_iter=k)
        assert info["status"] == "max_iter"
        assert info["lower_bound"] <= ref * (1 + 1e-9)
        assert info["upper_bound"] >= ref * (1 - 1e-9)
        assert info["gap"] >= (info["upper_bound"] - ref) / info["upper_bound"] - 1e-9


def test_time_limit_is_surfaced():
    X, y = _planted(60, 4, 0)
    D = cx.sample_patterns(X, 20, generator=torch.Generator().manual_seed(0))
    with pytest.warns(cx.ConvexSolverWarning, match="time_limit"):
        _, _, info = solve_torch(X, y, D, 1.0, "squared", time_limit=0.0)
    assert info["status"] == "time_limit"
    with pytest.warns(cx.ConvexSolverWarning, match="time_limit"):
        _, _, info = solve_torch(X, y, D, 1.0, "squared", method="admm", time_limit=0.0)
    assert info["status"] == "time_limit"


def test_interior_points_phase_one():
    X, _ = _planted(300, 6, 4)
    D = cx.sample_patterns(X, 200, generator=torch.Generator().manual_seed(4))
    Xh = X / X.norm(dim=1, keepdim=True)
    S = 2 * D - 1
    H, found = _interior_points(Xh, S)
    assert bool(found.all())
    assert float((S * (Xh @ H)).min()) > 0


def test_empty_interior_cone():
    """Duplicate rows with opposite signs force x·u = 0: the cone has no interior."""
    X, y = _planted(30, 3, 5)
    X = torch.cat([X, X[:1]])
    y = torch.cat([y, y[:1]])
    D = cx.sample_patterns(X, 10, generator=torch.Generator().manual_seed(5))
    bad = D[:, :1].clone()
    bad[-1] = 1 - bad[0]
    D = torch.cat([D, bad], 1)
    Xh = X / X.norm(dim=1, keepdim=True)
    _, found = _interior_points(Xh, 2 * D - 1)
    assert not bool(found[-1]) and bool(found[:-1].all())
    with pytest.raises(cx.ConvexSolverError, match="empty interior"):
        solve_torch(X, y, D, 1.0, "squared", method="ipm")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        U, V, info = solve_torch(X, y, D, 1.0, "squared", max_iter=200)
    assert info["method"] == "admm"


def test_solver_arguments_are_checked():
    X, y = _planted(20, 3, 0)
    D = cx.sample_patterns(X, 5, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError, match="method"):
        solve_torch(X, y, D, 1.0, "squared", method="newton")
    with pytest.raises(ValueError, match="tol"):
        solve_torch(X, y, D, 1.0, "squared", tol=0.0)
    with pytest.raises(ValueError, match="ipm"):
        solve_torch(X, y.sign(), D, 1.0, "logistic", method="ipm")
    with pytest.raises(ValueError, match="ipm_max_dim"):
        solve_torch(X, y, D, 1.0, "squared", method="ipm", ipm_max_dim=4)


def test_auto_picks_admm_for_logistic_and_ws_for_huge_sizes():
    X, y = _planted(30, 3, 1)
    D = cx.sample_patterns(X, 6, generator=torch.Generator().manual_seed(1))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        _, _, info = solve_torch(X, y.sign(), D, 1.0, "logistic", max_iter=50)
        assert info["method"] == "admm"
        _, _, info = solve_torch(X, y, D, 1.0, "squared", max_iter=50, ipm_max_dim=10)
        assert info["method"] == "ws"  # the squared loss beyond the dense IPM: working set


def test_ipm_float32_input_is_solved_in_float64():
    pytest.importorskip("cvxpy")
    X, y = _planted(150, 5, 8)
    D = cx.sample_patterns(X, 50, generator=torch.Generator().manual_seed(8))
    ref = cx.ConvexReLU(1.0, patterns=D).fit(X, y).value
    U, V, info = solve_torch(X.float(), y.float(), D.float(), 1.0, "squared", tol=1e-5)
    assert U.dtype == torch.float32 and info["status"] == "optimal"
    assert info["upper_bound"] == pytest.approx(ref, rel=1e-5)
