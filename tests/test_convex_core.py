"""udl.convex: ground-truth checks (method notes §5, T1–T10) and API behaviour."""

from __future__ import annotations

import math
import subprocess
import sys

import pytest
import torch

import udl.convex as cx

BETA = 0.1


pytestmark = pytest.mark.usefixtures("one_thread")


def _instance(n=10, d=3, seed=1):
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, dtype=torch.float64, generator=g)
    y = torch.randn(n, dtype=torch.float64, generator=g)
    return X, y


@pytest.fixture(scope="module")
def default():
    pytest.importorskip("cvxpy")
    X, y = _instance()
    res = cx.ConvexReLU(BETA).fit(X, y)
    return X, y, res


# ----------------------------------------------------------------------------- T1 patterns
@pytest.mark.parametrize("n,d,count", [(6, 2, 12), (8, 3, 58), (10, 3, 92), (12, 4, 464)])
def test_enumerate_matches_cover(n, d, count):
    X, _ = _instance(n, d)
    D, G = cx.enumerate_patterns(X, return_gates=True)
    assert D.shape == (n, count) == (n, cx.cover_count(n, d))
    assert torch.equal((X @ G >= 0).double(), D)
    assert torch.unique(D, dim=1).shape[1] == count


def test_enumerate_1d_with_bias_gives_2n():
    x = torch.randn(15, 1, dtype=torch.float64, generator=torch.Generator().manual_seed(3))
    assert cx.enumerate_patterns(cx.add_bias(x)).shape[1] == 30


def test_enumerate_rank_deficient_uses_row_space():
    X, _ = _instance(10, 3)
    X4 = torch.cat([X, X[:, :1] - 2 * X[:, 2:]], dim=1)
    assert cx.enumerate_patterns(X4).shape[1] == 92


@pytest.mark.parametrize("method", ["gaussian", "vertex"])
def test_samplers_are_subsets_of_exact(method):
    X, _ = _instance(12, 4)
    exact = {tuple(c) for c in cx.enumerate_patterns(X).T.tolist()}
    D, G = cx.sample_patterns(X, 300, method=method, generator=torch.Generator().manual_seed(0),
                              return_gates=True)
    cols = [tuple(c) for c in D.T.tolist()]
    assert len(set(cols)) == len(cols) <= 300
    assert set(cols) <= exact
    assert torch.equal((X @ G >= 0).double(), D)
    r = 4
    assert len(cols) <= 2 * r * (math.e * 11 / r) ** r
    assert not any(sum(c) == 0 for c in cols)


def test_vertex_sampling_finds_more_small_cones_than_gaussian():
    X, _ = _instance(12, 4)
    gen = torch.Generator().manual_seed(0)
    nv = cx.sample_patterns(X, 200, method="vertex", generator=gen).shape[1]
    ng = cx.sample_patterns(X, 200, method="gaussian", generator=gen).shape[1]
    assert nv > ng


def test_enumeration_refuses_to_explode():
    X = torch.randn(200, 10, dtype=torch.float64)
    with pytest.raises(ValueError, match="sample_patterns"):
        cx.enumerate_patterns(X)


def test_neuron_patterns_tie_aware():
    X, _ = _instance(10, 3)
    w = torch.linalg.svd(X[:2])[2][-1]  # orthogonal to rows 0 and 1: two ties
    D = cx.neuron_patterns(X, w[None, :])
    assert D.shape[1] == 4
    assert bool(((2 * D - 1) * (X @ w)[:, None] >= -1e-12).all())


# ----------------------------------------------------------------------------- T2 round trips
def test_convex_to_network_round_trip(default):
    X, y, res = default
    assert res.status == "optimal" and res.exact
    assert res.network_value == pytest.approx(res.value, rel=1e-6)
    net = res.to_network()
    assert isinstance(net, torch.nn.Module)
    assert cx.network_objective(net, X, y, BETA) == pytest.approx(res.value, rel=1e-6)
    assert torch.allclose(net(X), res.predict(X))


def test_network_to_convex_is_lower(default):
    X, y, res = default
    g = torch.Generator().manual_seed(5)
    for m in (1, 3, 8):
        W = torch.randn(m, 3, dtype=torch.float64, generator=g)
        a = torch.randn(m, dtype=torch.float64, generator=g)
        F = cx.network_objective((W, a), X, y, BETA)
        cp = cx.from_network((W, a), X, y, BETA)
        assert cp.value <= F + 1e-12
        assert res.value <= cp.value + 1e-9
        # feasibility of the aggregated point
        S = 2 * cp.patterns - 1
        assert bool((S * (X @ cp.U.T) >= -1e-12).all()) and bool((S * (X @ cp.V.T) >= -1e-12).all())
        # balanced single neurons: equality
    W1 = torch.randn(1, 3, dtype=torch.float64, generator=g)
    Wb, ab = cx.balance((W1, torch.tensor([0.7], dtype=torch.float64)))
    assert cx.from_network((Wb, ab), X, y, BETA).value == pytest.approx(
        cx.network_objective((Wb, ab), X, y, BETA), rel=1e-12)


# ----------------------------------------------------------------------------- T3 lower bound vs Adam
def _adam(X, y, m, seed, steps, beta=BETA, lr=1e-2):
    g = torch.Generator().manual_seed(seed)
    d = X.shape[1]
    W = (torch.randn(m, d, dtype=torch.float64, generator=g) / math.sqrt(d)).requires_grad_()
    a = (torch.randn(m, dtype=torch.float64, generator=g) / math.sqrt(m)).requires_grad_()
    opt = torch.optim.Adam([W, a], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        f = torch.relu(X @ W.T) @ a
        F = 0.5 * ((f - y) ** 2).sum() + 0.5 * beta * ((W ** 2).sum() + (a ** 2).sum())
        F.backward()
        opt.step()
        sched.step()
    return W.detach(), a.detach()


@pytest.mark.slow
def test_convex_value_lower_bounds_adam_and_gap_closes(default):
    X, y, res = default
    best = {}
    for m in (2, 30):
        vals = [cx.network_objective(_adam(X, y, m, s, 1500), X, y, BETA) for s in range(2)]
        assert min(vals) >= res.value - 1e-7
        best[m] = min(vals)
    assert (best[30] - res.value) / res.value < 1e-2
    assert best[30] <= best[2] + 1e-9


# ----------------------------------------------------------------------------- T4 certificate
def test_certificate_optimum_vs_perturbed(default):
    X, y, res = default
    cert = cx.certify(res.to_network(), X, y, BETA)
    assert cert.exact and cert.is_global is True, cert.verdict
    assert cert.max_dual <= BETA * (1 + 1e-4)
    assert cert.rel_gap < 1e-5
    assert cert.lower_bound <= res.value + 1e-9
    assert "GLOBALLY OPTIMAL" in str(cert)
    W, a = res.to_network(as_module=False)
    g = torch.Generator().manual_seed(0)
    Wp = cx.balance((W + 0.05 * torch.randn(W.shape, dtype=torch.float64, generator=g), a))
    bad = cx.certify(Wp, X, y, BETA)
    assert bad.is_global is False and bad.max_dual > BETA * 1.5
    assert bad.lower_bound <= res.value + 1e-9  # the dual bound stays valid
    assert cx.certify((W, 1.3 * a), X, y, BETA).is_global is False  # unbalanced


def test_certificate_with_sampled_patterns_only_refutes(default):
    X, y, res = default
    cert = cx.certify(res.to_network(), X, y, BETA, patterns="sample",
                      generator=torch.Generator().manual_seed(0))
    assert cert.is_global is None and not cert.exact


# ----------------------------------------------------------------------------- T5 beta_max
def test_beta_max_threshold():
    pytest.importorskip("cvxpy")
    X, y = _instance()
    bm = cx.beta_max(X, y)
    hi = cx.ConvexReLU(1.01 * bm).fit(X, y)
    assert hi.U.norm(dim=1).max() <= 1e-7 and hi.V.norm(dim=1).max() <= 1e-7
    assert hi.value == pytest.approx(0.5 * float((y ** 2).sum()), rel=1e-7)
    lo = cx.ConvexReLU(0.99 * bm).fit(X, y)
    assert lo.value < 0.5 * float((y ** 2).sum()) - 1e-9
    assert cx.is_optimal((torch.zeros(1, 3, dtype=torch.float64),
                          torch.zeros(1, dtype=torch.float64)), X, y, 1.01 * bm)
    # the unconstrained group-lasso formula over-estimates it
    D = cx.enumerate_patterns(X)
    assert float((X.T @ (D * y[:, None])).norm(dim=0).max()) >= bm - 1e-9


# ----------------------------------------------------------------------------- T6 1-D closed form
def test_one_dimensional_closed_form():
    pytest.importorskip("cvxpy")
    g = torch.Generator().manual_seed(7)
    x = torch.randn(15, dtype=torch.float64, generator=g)
    y = torch.randn(15, dtype=torch.float64, generator=g)
    beta = 0.5
    expected = 0.0
    for side in (x > 0, x < 0):
        xs, ys = x[side], y[side]
        ip = float(xs @ ys)
        c = math.copysign(max(abs(ip) - beta, 0.0), ip) / float(xs @ xs)
        expected += 0.5 * float(((c * xs - ys) ** 2).sum()) + beta * abs(c)
    expected += 0.5 * float((y[x == 0] ** 2).sum())
    X = x[:, None]
    assert cx.enumerate_patterns(X).shape[1] == 2
    res = cx.ConvexReLU(beta).fit(X, y)
    assert res.value == pytest.approx(expected, rel=1e-7)


# ----------------------------------------------------------------------------- T7 invariances
def test_invariances(default):
    X, y, res = default
    W, a = res.to_network(as_module=False)
    F0 = cx.network_objective((W, a), X, y, BETA)
    f0 = torch.relu(X @ W.T) @ a
    perm = torch.randperm(W.shape[0])
    assert cx.network_objective((W[perm], a[perm]), X, y, BETA) == pytest.approx(F0, rel=1e-12)
    c = torch.tensor([0.2, 0.5, 0.3], dtype=torch.float64)
    Ws = torch.cat([W[1:], c.sqrt()[:, None] * W[:1]])
    As = torch.cat([a[1:], c.sqrt() * a[:1]])
    assert cx.network_objective((Ws, As), X, y, BETA) == pytest.approx(F0, rel=1e-12)
    assert cx.is_optimal((Ws, As), X, y, BETA)
    t = torch.linspace(0.5, 2.0, W.shape[0], dtype=torch.float64)
    Wr, ar = W * t[:, None], a / t
    assert torch.allclose(torch.relu(X @ Wr.T) @ ar, f0)
    assert cx.network_objective((Wr, ar), X, y, BETA) >= F0 - 1e-12
    assert not cx.is_optimal((Wr, ar), X, y, BETA)
    # merging two same-pattern same-sign non-collinear neurons: same f, strictly lower F
    w1 = torch.tensor([1.0, 0.2, 0.1], dtype=torch.float64)
    w2 = w1 + torch.tensor([0.0, 0.05, -0.05], dtype=torch.float64)
    assert torch.equal(X @ w1 >= 0, X @ w2 >= 0)
    two = (torch.stack([w1, w2]), torch.tensor([1.0, 1.0], dtype=torch.float64))
    Wm, am = cx.canonicalize(two, X=X)
    assert Wm.shape[0] == 1
    assert torch.allclose(torch.relu(X @ Wm.T) @ am, torch.relu(X @ two[0].T) @ two[1])
    assert cx.network_objective((Wm, am), X, y, BETA) < cx.network_objective(two, X, y, BETA)


# ----------------------------------------------------------------------------- T8 subsampled
def test_subsampled_certificate(default):
    X, y, res = default
    sc = cx.subsampled_certificate(res.to_network(), X, y, BETA)
    assert abs(sc.gap) <= 1e-6 * sc.objective
    g = torch.Generator().manual_seed(2)
    for _ in range(3):
        W = torch.randn(3, 3, dtype=torch.float64, generator=g)
        a = torch.randn(3, dtype=torch.float64, generator=g)
        sc = cx.subsampled_certificate((W, a), X, y, BETA)
        assert sc.gap >= -1e-9
        assert sc.subsampled_value >= res.value - 1e-7
        assert "subsampled optimum" in str(sc)


@pytest.mark.slow
def test_subsampled_matches_smooth_stationary_points(default):
    """Adam at width 2 ends at smooth stationary points (spurious or not): F = subsampled opt."""
    X, y, res = default
    matched = 0
    for seed in range(6):
        W, a = _adam(X, y, 2, seed, 6000, lr=5e-3)
        Wt, at = W.clone().requires_grad_(), a.clone().requires_grad_()
        F = (0.5 * ((torch.relu(X @ Wt.T) @ at - y) ** 2).sum()
             + 0.5 * BETA * ((Wt ** 2).sum() + (at ** 2).sum()))
        gW, ga = torch.autograd.grad(F, [Wt, at])
        gn = float(torch.sqrt((gW ** 2).sum() + (ga ** 2).sum()))
        z = (X @ W.T).abs() / (X.norm(dim=1)[:, None] * W.norm(dim=1)[None, :])
        sc = cx.subsampled_certificate((W, a), X, y, BETA)
        assert sc.gap >= -1e-7
        if gn < 1e-6 and float(z.min()) > 1e-6:
            assert sc.rel_gap < 1e-5
            matched += 1
    assert matched >= 1


# ----------------------------------------------------------------------------- T9 solvers agree
def test_solvers_agree(default):
    X, y, res = default
    scs = cx.ConvexReLU(BETA, solver="scs", eps=1e-9).fit(X, y)
    assert scs.value == pytest.approx(res.value, rel=1e-4)
    tr = cx.ConvexReLU(BETA, solver="torch", tol=1e-7, max_iter=20000).fit(X, y)
    assert tr.status == "optimal"
    assert tr.value == pytest.approx(res.value, rel=1e-5)
    assert tr.network_value == pytest.approx(res.value, rel=1e-5)


@pytest.mark.filterwarnings("ignore::udl.convex.ConvexSolverWarning")
def test_logistic_and_hinge_losses():
    pytest.importorskip("cvxpy")
    X, y = _instance(12, 3, seed=4)
    lab = torch.sign(y)
    cl = cx.ConvexReLU(0.5, loss="logistic").fit(X, lab)
    tr = cx.ConvexReLU(0.5, loss="logistic", solver="torch", tol=1e-6, max_iter=4000).fit(X, lab)
    assert tr.value == pytest.approx(cl.value, rel=3e-3)
    assert cl.network_value == pytest.approx(cl.value, rel=1e-5)
    cert = cx.certify(cl.to_network(), X, lab, 0.5, loss="logistic")
    assert cert.is_global is True, cert.verdict
    hi = cx.ConvexReLU(0.5, loss="hinge").fit(X, lab)
    assert hi.network_value == pytest.approx(hi.value, rel=1e-5)
    with pytest.raises(ValueError, match="hinge"):
        cx.ConvexReLU(0.5, loss="hinge", solver="torch")


@pytest.mark.slow
def test_against_scnn_peer():
    pytest.importorskip("scnn")
    pytest.importorskip("cvxpy")
    import numpy as np
    from scnn.metrics import Metrics
    from scnn.models import ConvexReLU as ScnnReLU
    from scnn.optimize import optimize_model
    from scnn.regularizers import NeuronGL1
    from scnn.solvers import AL

    X, y = _instance(40, 4, seed=3)
    beta = 1.0
    D, G = cx.sample_patterns(X, 20, generator=torch.Generator().manual_seed(0), return_gates=True)
    model = ScnnReLU(G.numpy(), c=1)
    model, _ = optimize_model(model, AL(model), Metrics(), X.numpy(), y.numpy(),
                              regularizer=NeuronGL1(cx.scnn_lambda(beta, 40)), return_convex=True,
                              unitize_data=False, dtype="float64")
    Ds = torch.from_numpy(model.compute_activations(X.numpy()))
    U = torch.from_numpy(np.ascontiguousarray(model.parameters[0][0]))
    V = torch.from_numpy(np.ascontiguousarray(model.parameters[1][0]))
    from udl.convex.solvers import convex_objective

    theirs = convex_objective(U, V, Ds, X, y, beta, "squared")
    ours = cx.ConvexReLU(beta, patterns=Ds).fit(X, y).value
    assert ours <= theirs * (1 + 1e-6)


# ----------------------------------------------------------------------------- T10 merging, m*
def test_merging_and_m_star(default):
    X, y, res = default
    Wc, ac = cx.canonicalize(res.to_network(as_module=False), X=X)
    assert res.m_star == Wc.shape[0] <= X.shape[0] + 1
    assert res.m_star < len(res.blocks) or len(res.blocks) == res.m_star
    assert cx.network_objective((Wc, ac), X, y, BETA) == pytest.approx(res.value, rel=1e-6)
    assert cx.is_optimal((Wc, ac), X, y, BETA)
    assert cx.optimal_set(res).m_star == res.m_star


# ----------------------------------------------------------------------------- optimal set, path
def test_sampled_optimal_networks_pass_and_random_fail(default):
    X, y, res = default
    S = cx.optimal_set(res)
    g = torch.Generator().manual_seed(1)
    for width in (res.m_star, res.m_star + 7):
        net = S.sample(width, generator=g)
        assert net[0].shape[0] == width
        assert S.contains(net)
        assert cx.network_objective(net, X, y, BETA) == pytest.approx(res.value, rel=1e-6)
    assert torch.allclose(S.prediction, res.predict(X))
    for _ in range(3):
        W = torch.randn(6, 3, dtype=torch.float64, generator=g)
        a = torch.randn(6, dtype=torch.float64, generator=g)
        assert not cx.is_optimal((W, a), X, y, BETA)
        assert not cx.is_optimal(cx.balance((W, a)), X, y, BETA)
    with pytest.raises(ValueError, match="m\\*"):
        S.sample(res.m_star - 1)


def test_path_is_continuous_and_non_increasing(default):
    X, y, res = default
    g = torch.Generator().manual_seed(4)
    W = torch.randn(7, 3, dtype=torch.float64, generator=g)
    a = torch.randn(7, dtype=torch.float64, generator=g)
    a[0] = 0.0  # a wasted neuron
    coarse = cx.path_to_global((W, a), X, y, BETA, steps=10, result=res)
    fine = cx.path_to_global((W, a), X, y, BETA, steps=80, result=res)
    for p in (coarse, fine):
        assert p.is_non_increasing
        assert p.values[0] == pytest.approx(cx.network_objective((W, a), X, y, BETA))
        assert p.values[-1] == pytest.approx(res.value, rel=1e-6)
        assert all(Wt.shape == (p.width, 3) for Wt, _ in p.networks)
        assert {"balance", "merge", "interpolate"} <= set(p.legs)
    assert fine.max_step() < 0.6 * coarse.max_step()
    W9 = torch.randn(12, 3, dtype=torch.float64, generator=g)  # 12 neurons > n = 10: prune
    p = cx.path_to_global(cx.balance((W9, torch.ones(12, dtype=torch.float64))), X, y, BETA,
                          steps=5, result=res)
    assert p.is_non_increasing and "prune" in p.legs


def test_plot_path(default, tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    X, y, res = default
    p = cx.path_to_global(res.to_network(), X, y, BETA, steps=4, result=res)
    ax = cx.plot_path(p)
    ax.figure.savefig(tmp_path / "p.png")
    assert (tmp_path / "p.png").stat().st_size > 0


# ----------------------------------------------------------------------------- bad input, misc
def test_bad_inputs():
    X, y = _instance()
    for beta in (0.0, -1.0, float("nan")):
        with pytest.raises(ValueError, match="beta"):
            cx.ConvexReLU(beta)
    Xn = X.clone()
    Xn[0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        cx.ConvexReLU(1.0, solver="torch").fit(Xn, y)
    yi = y.clone()
    yi[1] = float("inf")
    with pytest.raises(ValueError, match="y contains"):
        cx.ConvexReLU(1.0, solver="torch").fit(X, yi)
    with pytest.raises(ValueError, match="mismatched"):
        cx.ConvexReLU(1.0, solver="torch").fit(X, y[:5])
    with pytest.raises(ValueError, match="empty"):
        cx.ConvexReLU(1.0, solver="torch").fit(X[:0], y[:0])
    with pytest.raises(ValueError, match="loss"):
        cx.ConvexReLU(1.0, loss="l1")
    with pytest.raises(ValueError, match="solver"):
        cx.ConvexReLU(1.0, solver="ecos2")
    with pytest.raises(ValueError, match="labels"):
        cx.ConvexReLU(1.0, loss="logistic", solver="torch").fit(X, y)
    with pytest.raises(ValueError, match="input dimension"):
        cx.certify((torch.ones(2, 4, dtype=torch.float64), torch.ones(2, dtype=torch.float64)),
                   X, y, 1.0)
    with pytest.raises(ValueError, match="bias=False"):
        cx.as_weights(torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(),
                                          torch.nn.Linear(4, 1)))
    with pytest.raises(ValueError, match="k must"):
        cx.sample_patterns(X, 0)


def test_rank_deficient_warns_and_solves():
    X, y = _instance(10, 2)
    X3 = torch.cat([X, X[:, :1]], dim=1)
    with pytest.warns(UserWarning, match="rank"):
        res = cx.ConvexReLU(0.5, solver="torch", tol=1e-6).fit(X3, y)
    assert res.network_value >= res.value - 1e-4


def test_solver_status_is_surfaced(monkeypatch):
    cp = pytest.importorskip("cvxpy")
    X, y = _instance()

    def fake_solve(self, *a, **k):
        self._status = "infeasible"
        return None

    monkeypatch.setattr(cp.Problem, "solve", fake_solve)
    monkeypatch.setattr(cp.Problem, "status", property(lambda self: "infeasible"))
    with pytest.raises(cx.ConvexSolverError, match="infeasible"):
        cx.ConvexReLU(BETA).fit(X, y)


def test_torch_solver_max_iter_warns():
    X, y = _instance()
    with pytest.warns(cx.ConvexSolverWarning, match="max_iter"):
        res = cx.ConvexReLU(BETA, solver="torch", max_iter=3).fit(X, y)
    assert res.status == "max_iter"


def test_sequential_networks_and_scnn_scaling():
    X, y = _instance()
    seq = torch.nn.Sequential(torch.nn.Linear(3, 4, bias=False), torch.nn.ReLU(),
                              torch.nn.Linear(4, 1, bias=False)).double()
    W, a = cx.as_weights(seq)
    assert torch.allclose(seq(X)[:, 0], torch.relu(X @ W.T) @ a)
    assert cx.beta_from_scnn(cx.scnn_lambda(0.3, 50), 50) == pytest.approx(0.3)


def test_import_and_torch_solver_without_cvxpy():
    code = (
        "import sys; sys.modules['cvxpy'] = None\n"
        "import torch, udl.convex as cx\n"
        "X = torch.randn(8, 3, dtype=torch.float64); y = torch.randn(8, dtype=torch.float64)\n"
        "import warnings; warnings.simplefilter('ignore')\n"
        "r = cx.ConvexReLU(0.5, solver='torch', max_iter=300).fit(X, y)\n"
        "assert r.value > 0\n"
        "try:\n"
        "    cx.ConvexReLU(0.5).fit(X, y)\n"
        "except ImportError as e:\n"
        "    assert 'torch' in str(e)\n"
        "else:\n"
        "    raise SystemExit('expected ImportError')\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    assert "ok" in out.stdout


@pytest.mark.cuda
@pytest.mark.filterwarnings("ignore::udl.convex.ConvexSolverWarning")
@pytest.mark.parametrize("dtype,rel", [(torch.float64, 1e-5), (torch.float32, 1e-3)])
def test_torch_solver_on_cuda(dtype, rel):
    """The GPU solve reaches the optimum certified on the CPU (no cvxpy needed on a GPU box)."""
    X, y = _instance()
    ref = cx.ConvexReLU(BETA, solver="torch", tol=1e-9).fit(X, y)
    assert ref.status == "optimal" and ref.info["gap"] <= 1e-9
    res = cx.ConvexReLU(BETA, solver="torch", device="cuda", dtype=dtype, tol=1e-7,
                        max_iter=20000).fit(X, y)
    assert res.U.device.type == "cpu"
    assert res.value == pytest.approx(ref.value, rel=rel)


def test_torch_solver_block_eigh_matches_clarabel():
    """P·d < n: the u-step eigendecomposes the P·d × P·d block Gram matrix instead of n × n."""
    pytest.importorskip("cvxpy")
    g = torch.Generator().manual_seed(5)
    X = torch.randn(80, 3, dtype=torch.float64, generator=g)
    y = torch.relu(X @ torch.randn(3, dtype=torch.float64, generator=g)) + 0.1 * torch.randn(
        80, dtype=torch.float64, generator=g)
    D = cx.sample_patterns(X, 8, generator=torch.Generator().manual_seed(1))
    ref = cx.ConvexReLU(0.5, patterns=D).fit(X, y)
    tr = cx.ConvexReLU(0.5, patterns=D, solver="torch", tol=1e-8, max_iter=40000,
                       method="admm").fit(X, y)
    assert tr.info["linear_solver"] == "eigh_blocks"
    assert abs(tr.value - ref.value) <= 1e-5 * abs(ref.value)
