"""The torch solver's working-set interior point (``method="ws"``, the large sizes): the same
optimum as Clarabel / the dense IPM, a certificate that holds on all patterns (also those never
in the working set), screening that must add patterns, and the batched dual norms."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from _convex_data import planted as _planted
from _convex_data import planted_problem

import udl.convex as cx
from udl.convex.solvers import _dual_norms, auto_method, convex_objective, solve_torch

pytestmark = pytest.mark.usefixtures("one_thread")


def _check_feasible(U, V, D, X):
    S = 2 * D - 1
    scale = float(X.norm(dim=1).max()) * max(float(torch.cat([U, V]).norm(dim=1).max()), 1e-300)
    assert float((S * (X @ U.T)).min()) >= -1e-12 * scale
    assert float((S * (X @ V.T)).min()) >= -1e-12 * scale


@pytest.mark.parametrize("n,d,P,beta,seed", [(150, 5, 60, 2.0, 0), (100, 4, 40, 0.5, 1)])
def test_working_set_matches_clarabel_and_must_add_patterns(n, d, P, beta, seed):
    pytest.importorskip("cvxpy")
    X, y, D = planted_problem(n, d, P, seed)
    ref = cx.ConvexReLU(beta, patterns=D).fit(X, y)
    tol = 1e-6
    # a working set of 3 patterns cannot hold the optimum: screening has to add patterns
    U, V, info = solve_torch(X, y, D, beta, "squared", tol=tol, method="ws", ws_size=3, ws_add=3)
    assert info["method"] == "ws" and info["status"] == "optimal"
    assert info["rounds"] >= 2 and info["working_set"] > 3
    value = convex_objective(U, V, D, X, y, beta, "squared")
    assert value == pytest.approx(info["upper_bound"], rel=1e-12)
    # the certificate is for the full program (every pattern), not just the working set
    assert info["gap"] <= tol
    assert info["lower_bound"] <= ref.value * (1 + 1e-8)
    assert (value - ref.value) / ref.value <= info["gap"] + 1e-8
    assert value == pytest.approx(ref.value, rel=1e-5)
    _check_feasible(U, V, D, X)
    # the blocks of patterns outside the working set are exactly zero
    used = (U.norm(dim=1) > 0) | (V.norm(dim=1) > 0)
    assert int(used.sum()) <= info["working_set"]
    # and the certified network passes the NNLS certificate over the same patterns
    res = cx.ConvexReLU(beta, patterns=D, solver="torch", tol=tol,
                        method="ws", ws_size=3).fit(X, y)
    cert = cx.certify(res.to_network(), X, y, beta, patterns=D)
    assert cert.max_dual <= beta * (1 + 1e-3)


def test_working_set_agrees_with_dense_ipm():
    X, y = _planted(300, 6, 3)
    D = cx.sample_patterns(X, 80, generator=torch.Generator().manual_seed(3))
    _, _, dense = solve_torch(X, y, D, 1.0, "squared", tol=1e-7, method="ipm")
    _, _, ws = solve_torch(X, y, D, 1.0, "squared", tol=1e-7, method="ws", ws_size=10)
    assert ws["status"] == dense["status"] == "optimal"
    assert ws["upper_bound"] == pytest.approx(dense["upper_bound"], rel=2e-7)
    assert ws["lower_bound"] <= dense["upper_bound"] and dense["lower_bound"] <= ws["upper_bound"]


def test_working_set_zero_network_above_beta_max():
    X, y = _planted(80, 4, 4)
    D = cx.sample_patterns(X, 30, generator=torch.Generator().manual_seed(4))
    bmax = cx.beta_max(X, y, patterns=D)
    U, V, info = solve_torch(X, y, D, 1.05 * bmax, "squared", method="ws")
    assert info["status"] == "optimal" and info["gap"] == 0.0
    assert float(U.abs().max()) == 0.0 and float(V.abs().max()) == 0.0
    assert info["upper_bound"] == pytest.approx(0.5 * float((y * y).sum()))


def test_working_set_lower_bound_is_valid_when_stopped_early():
    pytest.importorskip("cvxpy")
    X, y = _planted(120, 5, 5)
    D = cx.sample_patterns(X, 50, generator=torch.Generator().manual_seed(5))
    ref = cx.ConvexReLU(1.0, patterns=D).fit(X, y).value
    with pytest.warns(cx.ConvexSolverWarning, match="duality gap"):
        _, _, info = solve_torch(X, y, D, 1.0, "squared", tol=1e-12, method="ws", ws_size=2,
                                 ws_add=1, max_iter=6)
    assert info["status"] != "optimal"
    assert info["lower_bound"] <= ref * (1 + 1e-9) <= info["upper_bound"] * (1 + 2e-9)


def test_dual_norms_match_nnls_and_are_certified():
    from scipy.optimize import nnls

    X, y = _planted(200, 6, 6)
    D = cx.sample_patterns(X, 20, generator=torch.Generator().manual_seed(6))
    Xh = X / X.norm(dim=1, keepdim=True)
    S = 2 * D - 1
    Q = X.T @ (D * (-0.3 * y)[:, None])
    c, r = _dual_norms(Q, Xh, S, rtol=1e-9, max_iter=80)
    for j in range(D.shape[1]):
        G = (Xh.T * S[:, j][None, :]).numpy()
        _, exact = nnls(G, Q[:, j].numpy(), maxiter=100 * X.shape[0])
        assert float(c[j]) >= exact * (1 - 1e-9)  # certified: never below the minimum
        assert float(c[j]) == pytest.approx(exact, rel=1e-6, abs=1e-9)
    # with a cap, blocks stop once below it but their value stays an upper bound
    cap = float(c.median())
    c2, _ = _dual_norms(Q, Xh, S, cap=cap)
    assert bool((c2 >= c * (1 - 1e-9)).all())
    assert bool(((c2 <= cap) | (c2 <= c * (1 + 1e-3))).all())
    assert np.isfinite(r.numpy()).all()


def test_auto_method_choice():
    assert auto_method(1000, 10, 100, "squared") == "ipm"
    assert auto_method(10000, 50, 100, "squared") == "ipm"  # P·d = 5000: the paired Cholesky
    assert auto_method(10000, 10, 1000, "squared") == "ipm"  # P·d = 10^4: one Cholesky
    assert auto_method(20000, 10, 2000, "squared") == "ws"
    assert auto_method(10000, 50, 1000, "squared") == "ws"
    assert auto_method(10000, 50, 1000, "logistic") == "admm"
    # a GPU affords the dense IPM there (5e12 flops per Woodbury system), not at 2.5x that
    assert auto_method(10000, 50, 1000, "squared", device="cuda") == "ipm"
    assert auto_method(10000, 50, 1000, "squared", device=torch.device("cuda", 0)) == "ipm"
    assert auto_method(10000, 50, 2500, "squared", device="cuda") == "ws"
