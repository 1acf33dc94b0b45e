"""``udl bench --only shuffling``: simulator throughput and distributed overhead, side by side.

Rows (ratio = peer seconds / udl seconds for the same work):

* the vectorised simulator vs a straightforward per-seed Python loop (float arithmetic, same
  orders), for minibatch RR and local RR on the 1-D skewed quadratic -- the peer's time is
  measured on a subset of the seeds and scaled linearly to all of them (it is linear in seeds);
* the vectorised simulator vs calling it once per seed (a per-seed torch loop);
* a 2-process gloo run (127.0.0.1) vs the same training in one process: the time per
  communication round measured inside training (process start-up excluded). Ratio < 1 is the
  communication overhead.
"""

from __future__ import annotations

import torch

from udl.bench import BenchRow, time_fn
from udl.shuffling import orders, problems, simulate
from udl.shuffling.distributed import TrainConfig, launch, run_problems, train_problem


def python_loop(problem, algorithm: str, scheme: str, M: int, B: int, K: int, lr: float,
                seeds, x0: float = 0.0) -> list[float]:
    """The straightforward implementation: one seed at a time, Python floats, per-step loops."""
    c = problem.data[0].tolist()  # [Md][N] linear coefficients of the skewed problem
    L, mu, N = problem.L, problem.mu, problem.N
    out = []
    for seed in seeds:
        x = float(x0)
        for k in range(K):
            o = orders(scheme, M, N, k, int(seed)).tolist()
            if algorithm == "minibatch":
                for r in range(N // B):
                    g = 0.0
                    for m in range(M):
                        cm, om = c[m % len(c)], o[m]
                        for j in range(r * B, (r + 1) * B):
                            g += (L if x <= 0 else mu) * x + cm[om[j]]
                    x -= lr * g / (M * B)
            else:
                xs = [x] * M
                for i in range(N):
                    for m in range(M):
                        xm = xs[m]
                        xs[m] = xm - lr * ((L if xm <= 0 else mu) * xm + c[m % len(c)][o[m][i]])
                    if (i + 1) % B == 0:
                        xs = [sum(xs) / M] * M
                x = xs[0]
        out.append(x)
    return out


def _dist_overhead(quick: bool) -> BenchRow | None:
    p = problems.least_squares(2, 64)
    cfg = TrainConfig("minibatch", "rr", 4, 2 if quick else 5, 0.02, 0, record=None)
    rounds = cfg.K * p.N // cfg.B
    try:
        res = launch(run_problems, 2, ([{"problem": p, "config": cfg}],), timeout=300)
    except Exception as exc:  # noqa: BLE001 - report, do not break the whole table
        return BenchRow("shuffling", "distributed round (2 ranks, gloo)", "udl gloo x2",
                        "single process", float("nan"), float("nan"), note=f"failed: {exc}")
    dist_s = max(r[0].seconds for r in res) / rounds
    single = problems.least_squares(1, 128)
    t1 = time_fn(lambda: train_problem(single, cfg), repeat=3) / rounds
    return BenchRow("shuffling", f"minibatch RR round, lstsq d=10, B=4, {rounds} rounds",
                    "udl gloo 2 ranks", "1 process, batch 2B", dist_s, t1,
                    goal="overhead visible (ratio < 1)",
                    note="time per communication round inside training; spawn excluded")


def side_by_side(quick: bool, device: str) -> list[BenchRow]:
    """The rows above; the simulator runs on one intra-op thread, like the Python loop."""
    prev = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        return _rows(quick)
    finally:
        torch.set_num_threads(prev)


def _rows(quick: bool) -> list[BenchRow]:
    rows: list[BenchRow] = []
    N, M, K = 16, 4, (16 if quick else 32)
    S = 4000 if quick else 16000
    S_peer = 10 if quick else 20
    p = problems.skewed_quadratic(N, x0=0.3)
    seeds = list(range(S))
    for alg, B in (("minibatch", 1), ("local", 4)):
        ours = time_fn(lambda alg=alg, B=B: simulate(p, alg, "rr", M=M, B=B, K=K, lr=0.01,
                                                       seeds=S), repeat=3)
        # correctness of the comparison: both give the same iterates
        sim = simulate(p, alg, "rr", M=M, B=B, K=K, lr=0.01, seeds=seeds[:3])
        ref = python_loop(p, alg, "rr", M, B, K, 0.01, seeds[:3], 0.3)
        assert torch.allclose(sim.x[:, 0], torch.tensor(ref, dtype=torch.float64), atol=1e-12)
        peer = time_fn(lambda alg=alg, B=B: python_loop(p, alg, "rr", M, B, K, 0.01,
                                                         seeds[:S_peer], 0.3), repeat=1)
        steps = S * K * N
        rows.append(BenchRow(
            "shuffling", f"{alg} RR simulator, M={M} N={N} K={K}, {S} seeds",
            "udl simulate (vectorised)", "per-seed Python loop", ours, peer * S / S_peer,
            goal=">= 100x",
            note=f"{steps / ours:.3g} seed-steps/s vs {S_peer * K * N / peer:.3g}; peer timed on "
                 f"{S_peer} seeds and scaled"))
    S_t = 40 if quick else 100
    ours = time_fn(lambda: simulate(p, "minibatch", "rr", M=M, B=1, K=K, lr=0.01, seeds=S),
                   repeat=3)
    peer = time_fn(lambda: [simulate(p, "minibatch", "rr", M=M, B=1, K=K, lr=0.01, seeds=[s])
                            for s in range(S_t)], repeat=1)
    rows.append(BenchRow("shuffling", f"minibatch RR simulator, {S} seeds",
                         "udl simulate (vectorised)", "simulate once per seed",
                         ours, peer * S / S_t, goal=">= 100x",
                         note=f"peer timed on {S_t} seeds and scaled"))
    row = _dist_overhead(quick)
    if row is not None:
        rows.append(row)
    return rows
