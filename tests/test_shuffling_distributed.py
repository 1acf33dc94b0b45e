"""udl.shuffling.distributed: real gloo runs on 127.0.0.1 reproduce the simulator.

Process start-up dominates (each spawned rank imports torch), so every multi-process test
runs all its cases inside one spawn.
"""

from __future__ import annotations

import pytest
import torch
from torch import nn

from udl.shuffling import problems, simulate
from udl.shuffling.distributed import (
    TrainConfig,
    launch,
    run_problems,
    train,
    train_problem,
)

SKEW = problems.skewed_quadratic(8, L=4.0, mu=1.0, nu=1.0, x0=0.6)


def _sim_traj(problem, cfg: TrainConfig, M: int) -> torch.Tensor:
    sim = simulate(problem, cfg.algorithm, cfg.scheme, M=M, B=cfg.B, K=cfg.K, lr=cfg.lr,
                   seeds=[cfg.seed], trajectory="round")
    return sim.trajectory[0]


def _equality_jobs(M: int):
    lsq = problems.least_squares(M, 8)
    jobs = [
        (SKEW, TrainConfig("minibatch", "rr", 2, 3, 0.05, 11)),
        (SKEW, TrainConfig("local", "rr", 4, 3, 0.05, 11)),
        (SKEW, TrainConfig("minibatch", "syncshuf", 1, 2, 0.05, 3)),
        (SKEW, TrainConfig("local", "syncshuf", 2, 2, 0.05, 3)),
        (lsq, TrainConfig("minibatch", "rr", 2, 3, 0.02, 5)),
        (lsq, TrainConfig("local", "rr", 4, 3, 0.02, 5)),
    ]
    if M == 2:
        jobs += [
            (SKEW, TrainConfig("minibatch", "wr", 2, 2, 0.05, 1)),
            (problems.heterogeneous(2, 8, tau=1.0, nu=0.5, x0=0.3),
             TrainConfig("local", "rr", 4, 3, 0.05, 2)),
            (problems.near_homogeneous(2, 8, lam=0.3, x0=-0.2),
             TrainConfig("local", "same", 2, 2, 0.05, 2)),
        ]
    return jobs


class _RunningMean(nn.Module):
    """A linear model with a buffer updated in forward (like BatchNorm statistics)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2, dtype=torch.float64))
        self.register_buffer("stat", torch.zeros(2, dtype=torch.float64))
        self.register_buffer("count", torch.zeros((), dtype=torch.int64))

    def forward(self, a):
        with torch.no_grad():
            self.stat.mul_(0.5).add_(0.5 * a.mean(0))
            self.count += 1
        return a @ self.w


def _buffer_loss(model, batch):
    a, y = batch
    return 0.5 * ((model(a) - y) ** 2).mean()


def _two_proc_target(rank: int, world: int, tmp: str):
    """Everything the 2-process test checks, in one process group."""
    out = {}
    jobs = [{"problem": p, "config": c} for p, c in _equality_jobs(world)]
    out["equality"] = run_problems(rank, world, jobs)
    bad = TrainConfig("minibatch", "rr", 1, 10, 1e6, 0)  # diverges to inf
    out["errors"] = run_problems(rank, world, [
        {"problem": problems.skewed_quadratic(8, x0=-1.0), "config": bad, "capture": True},
        {"problem": problems.skewed_quadratic(8, x0=-1.0), "capture": True,
         "config": TrainConfig("local", "rr", 2, 10, 1e6, 0)},
        {"problem": problems.heterogeneous(4, 8, tau=1.0), "capture": True,
         "config": TrainConfig("local", "rr", 2, 1, 0.1, 0)},
        {"problem": SKEW, "capture": True,
         "config": [TrainConfig("minibatch", "rr", 2, 1, 0.1, 0),
                    TrainConfig("minibatch", "rr", 4, 1, 0.1, 0)]},
    ])
    # checkpoint: stop after epoch 1, resume to 4 epochs; compare with an uninterrupted run
    cfg = TrainConfig("local", "syncshuf", 2, 4, 0.05, 9, checkpoint=f"{tmp}/ck")
    ref = TrainConfig("local", "syncshuf", 2, 4, 0.05, 9)
    out["resume"] = run_problems(rank, world, [
        {"problem": SKEW, "config": ref},
        {"problem": SKEW, "config": cfg, "stop_after_epoch": 1},
        {"problem": SKEW, "config": cfg},
    ])
    # buffers are averaged in local mode, at every sync
    g = torch.Generator().manual_seed(rank)
    a = torch.randn(6, 2, dtype=torch.float64, generator=g)
    y = torch.randn(6, dtype=torch.float64, generator=g)
    model = _RunningMean()
    res = train(model, _buffer_loss, (a, y), TrainConfig("local", "rr", 3, 2, 0.1, 0))
    out["buffers"] = (res.state["stat"], res.state["count"], res.state["w"])
    model = _RunningMean()
    res = train(model, _buffer_loss, (a, y), TrainConfig("minibatch", "rr", 2, 2, 0.1, 0))
    out["buffers_minibatch"] = (res.state["stat"], res.state["count"], res.state["w"])
    return out


def test_distributed_two_processes(tmp_path):
    out = launch(_two_proc_target, 2, (str(tmp_path),), timeout=120)
    r0, r1 = out
    # 1) the real run is the simulator's algorithm: same iterates (float64)
    for (problem, cfg), res0, res1 in zip(_equality_jobs(2), r0["equality"], r1["equality"]):
        want = _sim_traj(problem, cfg, 2)
        assert res0.trajectory.shape == want.shape
        torch.testing.assert_close(res0.trajectory, want, rtol=0, atol=1e-10)
        torch.testing.assert_close(res0.state["x"], res1.state["x"], rtol=0, atol=0)
    # 2) clear errors, raised on every rank together
    e_mb, e_loc, e_world, e_cfg = r0["errors"]
    assert isinstance(e_mb, FloatingPointError) and "at epoch" in str(e_mb)
    assert "round" in str(e_mb)
    assert isinstance(e_loc, FloatingPointError) and "local step" in str(e_loc)
    assert "rank" in str(e_loc)
    assert isinstance(e_world, ValueError) and "world size mismatch" in str(e_world)
    assert isinstance(e_cfg, ValueError) and "disagree on B" in str(e_cfg)
    assert isinstance(r1["errors"][3], ValueError)
    # 3) checkpoint/resume gives the uninterrupted result exactly
    ref, first, resumed = r0["resume"]
    assert first.epochs_run == 2 and resumed.resumed_from == 2 and resumed.epochs_run == 4
    torch.testing.assert_close(resumed.trajectory, ref.trajectory, rtol=0, atol=0)
    assert resumed.losses == ref.losses
    # 4) buffers averaged too (the two ranks saw different data)
    for t0, t1 in zip(r0["buffers"], r1["buffers"]):
        assert torch.equal(t0, t1)
    assert int(r0["buffers"][1]) == 12
    for t0, t1 in zip(r0["buffers_minibatch"], r1["buffers_minibatch"]):
        assert torch.equal(t0, t1)
    assert float(r0["buffers_minibatch"][0].abs().sum()) > 0


def _four_proc_target(rank: int, world: int):
    return run_problems(rank, world,
                        [{"problem": p, "config": c} for p, c in _equality_jobs(world)])


@pytest.mark.slow
def test_distributed_four_processes_match_simulator():
    out = launch(_four_proc_target, 4, timeout=120)
    for (problem, cfg), res in zip(_equality_jobs(4), out[0]):
        torch.testing.assert_close(res.trajectory, _sim_traj(problem, cfg, 4), rtol=0,
                                   atol=1e-10)
    for r in range(1, 4):
        for a, b in zip(out[0], out[r]):
            torch.testing.assert_close(a.state["x"], b.state["x"], rtol=0, atol=0)


@pytest.mark.slow
def test_killed_run_resumes_identically(tmp_path):
    cfg = TrainConfig("minibatch", "rr", 2, 4, 0.05, 4, checkpoint=str(tmp_path / "ck"))
    with pytest.raises(Exception, match="17|exit"):
        launch(run_problems, 2, ([{"problem": SKEW, "config": cfg, "kill_after_epoch": 1}],),
               timeout=120)
    assert (tmp_path / "ck" / "rank0.pt").exists()
    out = launch(run_problems, 2, ([{"problem": SKEW, "config": cfg}],), timeout=120)
    res = out[0][0]
    assert res.resumed_from == 2
    torch.testing.assert_close(res.trajectory, _sim_traj(SKEW, cfg, 2), rtol=0, atol=1e-10)


# ---------------------------------------------------------------------- single process (no group)
@pytest.mark.parametrize("algorithm, B", [("minibatch", 2), ("local", 4)])
def test_single_process_matches_simulator(algorithm, B):
    p = problems.logistic_regression(1, 16)
    cfg = TrainConfig(algorithm, "rr", B, 2, 0.1, 3)
    res = train_problem(p, cfg)
    torch.testing.assert_close(res.trajectory, _sim_traj(p, cfg, 1), rtol=0, atol=1e-10)
    assert len(res.losses) == 2 and res.epochs_run == 2


def test_single_process_checkpoint_resume(tmp_path):
    cfg = TrainConfig("minibatch", "wr", 4, 3, 0.05, 1, checkpoint=str(tmp_path))
    ref = train_problem(SKEW, TrainConfig("minibatch", "wr", 4, 3, 0.05, 1))
    part = train_problem(SKEW, cfg, on_epoch_end=lambda k, m: k >= 0)
    assert part.epochs_run == 1
    full = train_problem(SKEW, cfg)
    assert full.resumed_from == 1
    torch.testing.assert_close(full.trajectory, ref.trajectory, rtol=0, atol=0)
    with pytest.raises(ValueError, match="lr"):  # resuming with another step size
        train_problem(SKEW, TrainConfig("minibatch", "wr", 4, 5, 0.07, 1,
                                        checkpoint=str(tmp_path)))


def test_single_process_bad_input():
    with pytest.raises(ValueError, match="B must divide N"):
        train_problem(SKEW, TrainConfig("minibatch", "rr", 3, 1, 0.1, 0))
    with pytest.raises(ValueError, match="lr"):
        train_problem(SKEW, TrainConfig("minibatch", "rr", 2, 1, 0.0, 0))
    with pytest.raises(ValueError, match="record"):
        train_problem(SKEW, TrainConfig("minibatch", "rr", 2, 1, 0.1, 0, record="step"))
    with pytest.raises(FloatingPointError, match=r"at epoch \d+ \(0-based\), round \d+"):
        train_problem(problems.skewed_quadratic(8, x0=-1.0),
                      TrainConfig("minibatch", "rr", 1, 10, 1e6, 0))
    with pytest.raises(ValueError, match="nproc"):
        launch(run_problems, 0)


def test_generic_dataset_and_model():
    # any nn.Module and a map-style dataset: a tiny classifier drives its loss down
    g = torch.Generator().manual_seed(0)
    X = torch.randn(32, 4, generator=g)
    y = (X[:, 0] > 0).long()
    ds = torch.utils.data.TensorDataset(X, y)
    model = nn.Sequential(nn.Linear(4, 8), nn.Tanh(), nn.Linear(8, 2))

    def loss_fn(m, batch):
        return nn.functional.cross_entropy(m(batch[0]), batch[1])

    res = train(model, loss_fn, ds, TrainConfig("minibatch", "rr", 4, 15, 0.5, 0, record="epoch"))
    assert res.losses[-1] < 0.5 * res.losses[0]
    assert res.trajectory.shape == (16, sum(p.numel() for p in model.parameters()))
