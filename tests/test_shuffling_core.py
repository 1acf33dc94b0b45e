"""udl.shuffling: orders, sampler, problems, simulator, rates (single process, fast)."""

from __future__ import annotations

import math

import pytest
import torch

from udl.shuffling import ShuffleSampler, fit_slope, orders, problems, rates, simulate
from udl.shuffling.orders import orders_block


# ------------------------------------------------------------------------------------ orders
@pytest.mark.parametrize("scheme", ["rr", "syncshuf", "same"])
def test_orders_rows_are_permutations(scheme):
    for epoch in range(3):
        o = orders(scheme, 4, 12, epoch, 5)
        assert o.shape == (4, 12) and o.dtype == torch.int64
        assert torch.equal(o.sort(-1).values, torch.arange(12).expand(4, 12))


def test_orders_deterministic_and_vectorised():
    a = orders("rr", 3, 10, 2, 11)
    assert torch.equal(a, orders("rr", 3, 10, 2, 11))
    assert not torch.equal(a, orders("rr", 3, 10, 3, 11))  # new epoch, new order
    assert not torch.equal(a, orders("rr", 3, 10, 2, 12))
    seeds = torch.tensor([4, 11, 2**40 + 3])
    batch = orders("rr", 3, 10, 2, seeds)
    assert batch.shape == (3, 3, 10)
    assert torch.equal(batch[1], a)
    blk = orders_block("syncshuf", 2, 6, torch.tensor([0, 5]), seeds)
    assert torch.equal(blk[1, 2], orders("syncshuf", 2, 6, 5, 2**40 + 3))
    for m in range(3):
        assert torch.equal(orders("rr", 3, 10, 2, 11, machine=m), a[m])
    # independent machines: not all rows equal
    assert not all(torch.equal(a[0], a[m]) for m in range(1, 3))


def test_orders_rr_uniform():
    # 24 permutations of 4 items, 4800 seeds: chi-square with 23 dof
    o = orders("rr", 1, 4, 0, torch.arange(4800))[:, 0]
    codes = (o * torch.tensor([64, 16, 4, 1])).sum(-1)
    counts = torch.bincount(codes, minlength=256)
    counts = counts[counts > 0].double()
    assert counts.numel() == 24
    chi2 = float(((counts - 200.0) ** 2 / 200.0).sum())
    assert chi2 < 60.0  # p < 1e-4 under uniformity


def test_orders_wr_in_range_and_uniform():
    o = orders("wr", 3, 7, 1, torch.arange(3000))
    assert int(o.min()) >= 0 and int(o.max()) < 7
    freq = torch.bincount(o.flatten(), minlength=7).double() / o.numel()
    assert float((freq - 1 / 7).abs().max()) < 0.01
    # with replacement: some rows repeat an index
    rows = o.reshape(-1, 7)
    assert bool((rows.sort(-1).values.diff(dim=-1) == 0).any())


def test_syncshuf_structure():
    M, N = 4, 12
    for epoch in range(3):
        o = orders("syncshuf", M, N, epoch, 3)
        for i in range(N):  # the M machines hit distinct indices at every step
            assert len(set(o[:, i].tolist())) == M
        for start in range(N):  # any N/M consecutive steps cover all of [N]
            cols = [(start + j) % N for j in range(N // M)]
            assert sorted(o[:, cols].flatten().tolist()) == list(range(N))
        # cyclic shifts of one permutation
        for m in range(M):
            shift = (o[m, 0] == o[0]).nonzero()[0, 0]
            assert torch.equal(o[m], torch.roll(o[0], -int(shift)))


def test_same_scheme_identical_rows():
    o = orders("same", 3, 8, 1, 9)
    assert torch.equal(o[0], o[1]) and torch.equal(o[0], o[2])


@pytest.mark.parametrize("kw, match", [
    (dict(scheme="xx", M=2, N=4), "scheme"),
    (dict(scheme="rr", M=0, N=4), "M must"),
    (dict(scheme="rr", M=2, N=0), "N must"),
    (dict(scheme="syncshuf", M=3, N=4), "M to divide N"),
])
def test_orders_bad_input(kw, match):
    with pytest.raises(ValueError, match=match):
        orders(kw["scheme"], kw["M"], kw["N"], 0, 0)
    with pytest.raises(ValueError, match="seed"):
        orders("rr", 2, 4, 0, -1)
    with pytest.raises(ValueError, match="epoch"):
        orders("rr", 2, 4, -1, 0)


# ----------------------------------------------------------------------------------- sampler
def test_sampler_matches_orders_and_epochs():
    s = ShuffleSampler(10, "rr", rank=1, world_size=3, seed=4)
    assert len(s) == 10
    assert list(s) == orders("rr", 3, 10, 0, 4)[1].tolist()
    s.set_epoch(5)
    assert list(s) == orders("rr", 3, 10, 5, 4)[1].tolist()
    st = s.state_dict()
    s2 = ShuffleSampler(10, "rr", rank=1, world_size=3, seed=4)
    s2.load_state_dict(st)
    assert list(s2) == list(s)
    with pytest.raises(ValueError, match="seed"):
        ShuffleSampler(10, "rr", rank=1, world_size=3, seed=5).load_state_dict(st)
    # works with a DataLoader over the rank's shard
    data = torch.arange(100, 110)
    dl = torch.utils.data.DataLoader(data, batch_size=5, sampler=s)
    got = torch.cat(list(dl))
    assert torch.equal(got, data[orders("rr", 3, 10, 5, 4)[1]])


def test_sampler_bad_input():
    with pytest.raises(ValueError, match="rank"):
        ShuffleSampler(8, "rr", rank=2, world_size=2)
    with pytest.raises(ValueError, match="world_size"):
        ShuffleSampler(8, "rr", rank=0, world_size=0)
    with pytest.raises(ValueError, match="dataset_size"):
        ShuffleSampler(0, "rr", rank=0, world_size=1)
    with pytest.raises(ValueError, match="divide"):
        ShuffleSampler(9, "syncshuf", rank=0, world_size=2)
    with pytest.raises(ValueError, match="scheme"):
        ShuffleSampler(8, "bogus", rank=0, world_size=1)


# ---------------------------------------------------------------------------------- problems
def test_skewed_problem_gradients_match_autograd():
    p = problems.near_homogeneous(3, 6, lam=0.3, nu=0.7)
    x = torch.tensor([[[-0.4]], [[0.2]]], dtype=torch.float64).expand(2, 3, 1)  # [2, M, 1]
    idx = torch.tensor([[0, 5], [3, 1], [2, 2]])  # [M, b]
    g = p.grad(x, idx)
    g_auto = problems.Problem.grad(p, x, idx)
    torch.testing.assert_close(g, g_auto, rtol=1e-12, atol=1e-12)
    # F is the plain (skewed) quadratic: the perturbations cancel
    xs = torch.tensor([[-0.5], [0.5]], dtype=torch.float64)
    torch.testing.assert_close(p.objective(xs), torch.tensor([0.5 * 4 * 0.25, 0.5 * 0.25],
                                                              dtype=torch.float64))
    torch.testing.assert_close(problems.Problem.objective(p, xs), p.objective(xs))


@pytest.mark.parametrize("make", [
    lambda: problems.least_squares(3, 40),
    lambda: problems.logistic_regression(2, 50),
    lambda: problems.heterogeneous(2, 4, tau=0.5, nu=0.2),
])
def test_analytic_gradients_match_autograd(make):
    p = make()
    M = p.M
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, M, p.dim, dtype=torch.float64, generator=g)
    idx = torch.randint(0, p.N, (M, 3), generator=g)
    torch.testing.assert_close(p.grad(x, idx), problems.Problem.grad(p, x, idx),
                               rtol=1e-10, atol=1e-12)
    xs = torch.randn(4, p.dim, dtype=torch.float64, generator=g)
    torch.testing.assert_close(p.objective(xs), problems.Problem.objective(p, xs),
                               rtol=1e-10, atol=1e-12)


def test_real_data_optimum():
    p = problems.least_squares(2, 60)
    # F* is the minimum: the gradient of F vanishes at w*
    A, y = p.data[0].reshape(-1, p.dim), p.data[1].reshape(-1)
    grad = A.T @ (A @ p.w_star - y) / A.shape[0]
    assert float(grad.abs().max()) < 1e-10
    assert float(p.error(p.w_star.view(1, -1))[0]) == pytest.approx(0.0, abs=1e-12)
    lg = problems.logistic_regression(2, 100)
    assert float(lg.error(lg.w_star.view(1, -1))[0]) == pytest.approx(0.0, abs=1e-12)
    assert float(lg.error(torch.zeros(1, lg.dim, dtype=torch.float64))[0]) > 0.05


def test_problem_bad_input():
    with pytest.raises(ValueError, match="even"):
        problems.skewed_quadratic(5)
    with pytest.raises(ValueError, match="mu"):
        problems.skewed_quadratic(4, L=1.0, mu=2.0)
    with pytest.raises(ValueError, match="M must be an even"):
        problems.heterogeneous(3, 4, tau=1.0)
    with pytest.raises(ValueError, match="exceeds"):
        problems.least_squares(10, 100)
    with pytest.raises(ValueError, match="split"):
        problems.least_squares(2, 10, split="weird")
    with pytest.raises(ValueError, match="disagree"):
        problems.custom(lambda x, a, b: a, (torch.zeros(1, 4), torch.zeros(1, 5)), torch.zeros(1))


# --------------------------------------------------------------------------------- simulator
def _python_loop(p, algorithm, scheme, M, B, K, lr, seed, x0):
    """A straightforward per-seed float loop on the 1-D skewed problem (independent code)."""
    c = p.data[0]  # [Md, N]
    L, mu, N = p.L, p.mu, p.N
    x = float(x0)
    for k in range(K):
        o = orders(scheme, M, N, k, seed).tolist()
        if algorithm == "minibatch":
            for r in range(N // B):
                g = 0.0
                for m in range(M):
                    for j in range(r * B, (r + 1) * B):
                        a = L if x <= 0 else mu
                        g += a * x + float(c[m % c.shape[0], o[m][j]])
                x -= lr * g / (M * B)
        else:
            xs = [x] * M
            for i in range(N):
                for m in range(M):
                    a = L if xs[m] <= 0 else mu
                    xs[m] -= lr * (a * xs[m] + float(c[m % c.shape[0], o[m][i]]))
                if (i + 1) % B == 0:
                    xs = [sum(xs) / M] * M
            x = xs[0]
    return x


@pytest.mark.parametrize("algorithm, scheme, B", [
    ("minibatch", "rr", 2), ("minibatch", "wr", 1), ("minibatch", "syncshuf", 4),
    ("local", "rr", 2), ("local", "syncshuf", 4), ("local", "same", 8),
])
def test_simulator_matches_python_loop(algorithm, scheme, B):
    p = problems.near_homogeneous(2, 8, lam=0.2, x0=0.7)
    res = simulate(p, algorithm, scheme, M=2, B=B, K=[1, 3], lr=[0.1, 0.07], seeds=[3, 8])
    for j, (K, lr) in enumerate([(1, 0.1), (3, 0.07)]):
        for s, seed in enumerate([3, 8]):
            want = _python_loop(p, algorithm, scheme, 2, B, K, lr, seed, 0.7)
            assert float(res.x[j, s, 0]) == pytest.approx(want, abs=1e-13)


def test_simulator_general_path_matches_fast_path():
    p = problems.near_homogeneous(2, 6, lam=0.3, x0=-0.4)
    generic = problems.custom(p.loss_fn, p.data, p.x0, f_star=0.0)
    for alg, B in (("minibatch", 3), ("local", 2)):
        a = simulate(p, alg, "rr", M=2, B=B, K=[2, 4], lr=0.05, seeds=5, trajectory="round")
        b = simulate(generic, alg, "rr", M=2, B=B, K=[2, 4], lr=0.05, seeds=5,
                     trajectory="round")
        torch.testing.assert_close(a.x, b.x, rtol=0, atol=1e-13)
        torch.testing.assert_close(a.trajectory, b.trajectory, rtol=0, atol=1e-13,
                                   equal_nan=True)
        torch.testing.assert_close(a.errors, b.errors, rtol=1e-10, atol=1e-15)


def test_nu_zero_is_gradient_descent():
    # nu = 0: every component has the gradient of F, so minibatch RR is GD with N/B steps/epoch
    p = problems.skewed_quadratic(8, L=4.0, mu=1.0, nu=0.0, x0=-1.0)
    lr, K, B = 0.05, 3, 2
    res = simulate(p, "minibatch", "rr", M=3, B=B, K=K, lr=lr, seeds=4)
    x = -1.0
    for _ in range(K * 8 // B):
        x -= lr * (4.0 if x <= 0 else 1.0) * x
    torch.testing.assert_close(res.x[:, 0], torch.full((4,), x, dtype=torch.float64),
                               rtol=0, atol=1e-15)
    # local RR with nu = 0 on homogeneous data: GD with N steps per epoch
    res = simulate(p, "local", "rr", M=3, B=4, K=K, lr=lr, seeds=2)
    x = -1.0
    for _ in range(K * 8):
        x -= lr * (4.0 if x <= 0 else 1.0) * x
    torch.testing.assert_close(res.x[:, 0], torch.full((2,), x, dtype=torch.float64),
                               rtol=0, atol=1e-14)


def test_local_B1_equals_minibatch_B1():
    for p in (problems.near_homogeneous(4, 8, lam=0.5, x0=0.3), problems.least_squares(4, 8)):
        a = simulate(p, "local", "rr", M=4, B=1, K=3, lr=0.03, seeds=6, trajectory="round")
        b = simulate(p, "minibatch", "rr", M=4, B=1, K=3, lr=0.03, seeds=6, trajectory="round")
        torch.testing.assert_close(a.trajectory, b.trajectory, rtol=0, atol=1e-14)


def test_local_sync_schedule():
    # machines are averaged exactly after local steps B, 2B, ..., N: compare the round
    # trajectory with a manual local loop that syncs on that schedule
    p = problems.heterogeneous(2, 6, tau=1.0, nu=0.5, x0=0.2)
    B, lr = 3, 0.1
    res = simulate(p, "local", "rr", M=2, B=B, K=2, lr=lr, seeds=[1], trajectory="round")
    a, lin = p.a, p.data[1]
    xs = [0.2, 0.2]
    want = [0.2]
    for k in range(2):
        o = orders("rr", 2, 6, k, 1)
        for i in range(6):
            xs = [xs[m] - lr * (float(a[m]) * xs[m] + float(lin[m, o[m, i]])) for m in range(2)]
            if (i + 1) % B == 0:
                xs = [sum(xs) / 2] * 2
                want.append(xs[0])
    assert res.trajectory.shape == (1, 2 * 6 // B + 1, 1)
    torch.testing.assert_close(res.trajectory[0, :, 0], torch.tensor(want, dtype=torch.float64),
                               rtol=0, atol=1e-14)


def test_simulator_result_shapes_and_trajectory():
    p = problems.skewed_quadratic(4, x0=0.5)
    r = simulate(p, "minibatch", "rr", M=2, B=2, K=[3, 1], lr=[0.1, 0.2], seeds=3,
                 trajectory="epoch")
    assert r.x.shape == (2, 3, 1) and r.errors.shape == (2, 3) and r.final_error.shape == (2,)
    assert r.trajectory.shape == (2, 3, 4, 1)
    assert torch.isnan(r.trajectory[1, :, 2:]).all()  # K=1 stops after one epoch
    torch.testing.assert_close(r.trajectory[0, :, 3], r.x[0])
    torch.testing.assert_close(r.final_error, r.errors.mean(-1))
    # K given in any order: the entry for K=1 equals a run with K=1 alone at lr 0.2
    alone = simulate(p, "minibatch", "rr", M=2, B=2, K=1, lr=0.2, seeds=3)
    torch.testing.assert_close(r.x[1], alone.x)
    assert alone.x.shape == (3, 1) and alone.final_error.dim() == 0
    z = simulate(p, "minibatch", "rr", M=2, B=2, K=0, lr=0.1, seeds=2)
    torch.testing.assert_close(z.x, torch.full((2, 1), 0.5, dtype=torch.float64))


@pytest.mark.parametrize("kw, err, match", [
    (dict(B=3), ValueError, "B must divide N"),
    (dict(scheme="syncshuf", M=3), ValueError, "M to divide N"),
    (dict(M=0), ValueError, "M must"),
    (dict(lr=0.0), ValueError, "lr must"),
    (dict(lr=-1.0), ValueError, "lr must"),
    (dict(lr=float("nan")), ValueError, "lr must"),
    (dict(algorithm="fancy"), ValueError, "algorithm"),
    (dict(K=[]), ValueError, "non-empty"),
    (dict(seeds=[]), ValueError, "seeds"),
    (dict(seeds=0), ValueError, "seeds"),
    (dict(N=6), ValueError, "does not match"),
    (dict(K=[1, 2], lr=[0.1]), ValueError, "one step size per K"),
])
def test_simulator_bad_input(kw, err, match):
    p = problems.skewed_quadratic(8)
    args = dict(algorithm="minibatch", scheme="rr", M=2, B=2, K=2, lr=0.1, seeds=2) | kw
    with pytest.raises(err, match=match):
        simulate(p, **args)


def test_simulator_world_mismatch_and_divergence():
    with pytest.raises(ValueError, match="world size mismatch"):
        simulate(problems.heterogeneous(2, 4, tau=1.0), M=4)
    p = problems.skewed_quadratic(8, L=4.0, x0=-1.0)
    with pytest.raises(FloatingPointError, match="epoch .*K=400"):
        simulate(p, "minibatch", "rr", M=1, B=1, K=[2, 400], lr=[0.01, 3.0], seeds=2)


# ------------------------------------------------------------------------------------- rates
def test_rates_and_step_sizes():
    eta = rates.step_size("minibatch", "rr", mu=1.0, N=16, K=100, M=4, B=2)
    assert eta == pytest.approx(2 * math.log(4 * 16 * 100 ** 2) / (16 * 100))
    eta_l = rates.step_size("local", "syncshuf", mu=2.0, N=16, K=100, M=4)
    assert eta_l == pytest.approx(math.log(16 * 16 * 100 ** 2) / (2.0 * 16 * 100))
    K = rates.min_epochs("minibatch", "rr", L=4, mu=1, M=4, N=16)
    assert K >= 24 * math.log(64 * K * K) and K - 1 < 24 * math.log(64 * (K - 1) ** 2)
    ub = rates.upper_bound("minibatch", "rr", L=4, mu=1, nu=1, M=4, N=16, B=1,
                           K=torch.tensor([10.0, 20.0]))
    assert float(ub[0] / ub[1]) == pytest.approx(4.0)
    ub_wr = rates.upper_bound("minibatch", "wr", L=4, mu=1, nu=1, M=4, N=16, B=1, K=[10, 20])
    assert float(ub_wr[0] / ub_wr[1]) == pytest.approx(2.0)
    ss = [rates.upper_bound("minibatch", "syncshuf", L=4, mu=1, nu=1, M=m, N=16, B=1, K=50)
          for m in (2, 4)]
    assert ss[0] / ss[1] == pytest.approx(4.0)
    loc = [rates.upper_bound("local", "rr", L=4, mu=1, nu=0, tau=1, M=2, N=16, B=b, K=50)
           for b in (2, 4)]
    assert loc[1] / loc[0] == pytest.approx(4.0)
    assert rates.expected_slope("K", "minibatch", "wr") == -1.0
    with pytest.raises(ValueError, match="no slope"):
        rates.expected_slope("Q", "minibatch", "rr")


def test_fit_slope():
    x = torch.tensor([1.0, 2.0, 4.0, 8.0])
    f = fit_slope(x, 3.0 * x ** -2)
    assert f.slope == pytest.approx(-2.0) and f.intercept == pytest.approx(math.log(3.0))
    assert f.lo == pytest.approx(-2.0, abs=1e-6) and f.hi == pytest.approx(-2.0, abs=1e-6)
    g = torch.Generator().manual_seed(0)
    errs = (x ** -1).view(-1, 1) * torch.rand(4, 500, generator=g, dtype=torch.float64) * 2
    fb = fit_slope(x, errors=errs)
    assert fb.lo < -1.0 < fb.hi and fb.hi - fb.lo < 0.2
    assert "bootstrap" in fb.method
    with pytest.raises(ValueError, match="positive"):
        fit_slope([1, 2], [1, -1])
    with pytest.raises(ValueError, match="length"):
        fit_slope([1], [1])


def test_minibatch_rr_beats_wr_and_syncshuf_beats_rr():
    # the paper's headline comparisons at a modest scale (common random numbers)
    p = problems.skewed_quadratic(16, L=4.0, mu=1.0, nu=1.0)
    K, M = 64, 4

    def err(scheme):
        lr = rates.step_size("minibatch", scheme, mu=1.0, N=16, K=K, M=M)
        return float(simulate(p, "minibatch", scheme, M=M, B=1, K=K, lr=lr,
                              seeds=200).final_error)

    e_rr, e_wr, e_ss = err("rr"), err("wr"), err("syncshuf")
    assert e_rr < e_wr / 5
    assert e_ss < e_rr / 2
