"""Vectorised simulator of minibatch / local SGD with RR, WR, SyncShuf and same-order shuffling.

All seeds, all machines and a list of epoch budgets ``K`` (each with its own step size) run as one
batched float64 tensor ``[nK, S, M, d]``; an entry whose budget is reached is snapshotted and
dropped from the batch. The index streams are :func:`udl.shuffling.orders`, shared with the
samplers and the distributed trainer, so ``simulate(..., seeds=[s])`` and a real
``torch.distributed`` run with seed ``s`` follow the same iterates.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from udl.shuffling.orders import check_scheme, orders_block
from udl.shuffling.problems import Problem

__all__ = ["ALGORITHMS", "SimResult", "simulate", "check_config"]

ALGORITHMS = ("minibatch", "local")
_BLOCK_ELEMS = 1 << 21  # index entries per block of pre-computed orders


@dataclasses.dataclass
class SimResult:
    """Output of :func:`simulate` (leading ``nK`` dim dropped when ``K`` was a single int).

    Attributes:
        K, lr: the epoch budgets and step sizes, in the order given.
        seeds: LongTensor ``[S]``.
        x: final (synchronised) iterates ``[nK, S, d]``.
        errors: ``F(x_K) - F*`` per seed ``[nK, S]``.
        final_error: mean over seeds ``[nK]``.
        trajectory: iterates ``[nK, S, T + 1, d]`` (``T`` = epochs or communication rounds of the
            largest ``K``; NaN after an entry's own budget), or ``None``.
    """

    algorithm: str
    scheme: str
    M: int
    N: int
    B: int
    K: list[int]
    lr: list[float]
    seeds: Tensor
    x: Tensor
    errors: Tensor
    final_error: Tensor
    trajectory: Tensor | None = None

    @property
    def stderr(self) -> Tensor:
        """Standard error of ``final_error`` over seeds."""
        S = self.errors.shape[-1]
        return self.errors.std(-1) / math.sqrt(S) if S > 1 else torch.zeros_like(self.final_error)


def _gather_noise(c: Tensor, idx: Tensor) -> Tensor:
    """``c[m, idx[..., m, i]]`` for ``c [Md, N, d]`` and ``idx [..., M, N]`` -> ``[..., M, N, d]``."""
    if c.shape[0] == 1:
        return c[0][idx]
    M = idx.shape[-2]
    return c[torch.arange(M).view(M, 1), idx]


def check_config(algorithm: str, scheme: str, M: int, N: int, B: int) -> None:
    """Validate an (algorithm, scheme, M, N, B) combination; raise ``ValueError`` with the reason."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"algorithm must be one of {ALGORITHMS}, got {algorithm!r}")
    check_scheme(scheme)
    for name, v in (("M", M), ("N", N), ("B", B)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if N % B:
        raise ValueError(f"B must divide N (no partial batches), got B={B}, N={N}")
    if scheme == "syncshuf" and N % M:
        raise ValueError(f"scheme 'syncshuf' needs M to divide N, got M={M}, N={N}")


def _check_lr(lr: float) -> float:
    lr = float(lr)
    if not math.isfinite(lr) or lr <= 0:
        raise ValueError(f"lr must be a finite number > 0, got {lr}")
    return lr


def simulate(
    problem: Problem,
    algorithm: str = "minibatch",
    scheme: str = "rr",
    M: int = 1,
    N: int | None = None,
    B: int = 1,
    K: int | Sequence[int] = 10,
    lr: float | Sequence[float] | Callable[[int], float] = 0.01,
    seeds: int | Sequence[int] | Tensor = 100,
    x0: Tensor | float | None = None,
    trajectory: str | None = None,
) -> SimResult:
    """Run minibatch or local shuffling SGD for many seeds (and epoch budgets) at once.

    Args:
        problem: a :class:`udl.shuffling.problems.Problem` (homogeneous problems run with any
            ``M``; split ones need ``M == problem.M``).
        algorithm: ``"minibatch"`` (each of the ``N/B`` rounds per epoch averages ``M*B``
            gradients at the shared iterate and takes one step) or ``"local"`` (single-component
            local steps, iterates averaged after local steps ``B, 2B, ...``).
        scheme: ``"rr"``, ``"wr"``, ``"syncshuf"`` or ``"same"`` (see :func:`orders`).
        M: machines. N: components per machine (default and check: ``problem.N``).
        B: minibatch size per machine (minibatch) or local steps between syncs (local); ``B | N``.
        K: number of epochs, or a list of budgets run side by side (common random numbers).
        lr: step size, one per ``K``, or a function ``K -> lr``
            (e.g. ``lambda K: udl.shuffling.rates.step_size(...)``).
        seeds: number of seeds ``S`` (seeds ``0..S-1``) or explicit non-negative seeds.
        x0: start ``[d]`` (default ``problem.x0``).
        trajectory: ``None``, ``"epoch"`` or ``"round"``: also return the synchronised iterates
            after every epoch / communication round.

    Returns:
        :class:`SimResult`; ``final_error`` is the mean over seeds of ``F(x_K) - F*``.

    Raises:
        ValueError: bad arguments (``B`` not dividing ``N``, ``M`` not dividing ``N`` for
            SyncShuf, ``M``/``N`` < 1, ``lr <= 0``, world-size mismatch with the problem).
        FloatingPointError: the iterates became non-finite (with the epoch and budget).
    """
    if not isinstance(problem, Problem):
        raise ValueError(f"problem must be a udl.shuffling.problems.Problem, got {type(problem)}")
    if N is None:
        N = problem.N
    elif N != problem.N:
        raise ValueError(f"N={N} does not match the problem's N={problem.N}")
    check_config(algorithm, scheme, M, N, B)
    problem.check_machines(M)
    if trajectory not in (None, "epoch", "round"):
        raise ValueError(f"trajectory must be None, 'epoch' or 'round', got {trajectory!r}")

    scalar_K = isinstance(K, int)
    Ks = [K] if scalar_K else [int(k) for k in K]
    if not Ks:
        raise ValueError("K must be an int or a non-empty list of ints")
    if any(k < 0 for k in Ks):
        raise ValueError(f"K must be >= 0, got {Ks}")
    if callable(lr):
        lrs = [_check_lr(lr(k)) for k in Ks]
    elif isinstance(lr, (int, float)):
        lrs = [_check_lr(lr)] * len(Ks)
    else:
        lrs = [_check_lr(v) for v in lr]
        if len(lrs) != len(Ks):
            raise ValueError(f"lr must give one step size per K: {len(lrs)} vs {len(Ks)}")

    if isinstance(seeds, int):
        if seeds < 1:
            raise ValueError(f"seeds must be >= 1 (a count) or a list of seeds, got {seeds}")
        seed_t = torch.arange(seeds, dtype=torch.int64)
    else:
        seed_t = torch.as_tensor(seeds, dtype=torch.int64).reshape(-1)
        if seed_t.numel() == 0:
            raise ValueError("seeds must not be empty")
        if int(seed_t.min()) < 0:
            raise ValueError("seeds must be non-negative")
    S = seed_t.numel()
    d = problem.dim
    start = problem.x0 if x0 is None else torch.as_tensor(x0, dtype=torch.float64).reshape(-1)
    if start.numel() != d:
        raise ValueError(f"x0 must have {d} coordinates, got {start.numel()}")
    start = start.to(torch.float64)

    nK = len(Ks)
    order = sorted(range(nK), key=lambda j: Ks[j])
    R = N // B
    Kmax = max(Ks)
    T = Kmax if trajectory == "epoch" else Kmax * R
    traj = None
    if trajectory is not None:
        traj = torch.full((nK, S, T + 1, d), float("nan"), dtype=torch.float64)
        traj[:, :, 0] = start
    x_final = torch.empty(nK, S, d, dtype=torch.float64)

    active = list(order)  # original positions, ascending K
    x = start.view(1, 1, 1, d).expand(nK, S, 1, d).clone()
    lr_t = torch.tensor([lrs[j] for j in active], dtype=torch.float64).view(-1, 1, 1, 1)

    def retire(k_done: int) -> None:
        nonlocal x, lr_t, active
        n = 0
        while n < len(active) and Ks[active[n]] == k_done:
            x_final[active[n]] = x[n].mean(-2)
            n += 1
        if n:
            active = active[n:]
            x, lr_t = x[n:], lr_t[n:]

    fast = problem.additive_noise()
    # Orders (and the fast path's gathered noise) are computed for blocks of epochs at once.
    E = max(1, min(Kmax, _BLOCK_ELEMS // max(1, S * M * N)))
    blk0, blk_idx, blk_c = 0, None, None
    retire(0)
    for k in range(Kmax):
        if blk_idx is None or k - blk0 >= blk_idx.shape[0]:
            blk0 = k
            eps = torch.arange(k, min(k + E, Kmax), dtype=torch.int64)
            blk_idx = orders_block(scheme, M, N, eps, seed_t)  # [E, S, M, N]
            if fast is not None:
                blk_c = _gather_noise(fast[1], blk_idx)  # [E, S, M, N, d]
                if algorithm == "minibatch":
                    blk_c = blk_c.view(-1, S, M, R, B, d).mean(dim=(2, 4))  # [E, S, R, d]
        idx = blk_idx[k - blk0]  # [S, M, N]
        ids = torch.tensor(active, dtype=torch.int64)
        if fast is not None:
            # grad f_i^m(x) = drift(x)[m] + c[m, i]: the noise of the epoch is pre-gathered.
            drift = fast[0]
            c_ord = blk_c[k - blk0]
            if algorithm == "minibatch":
                for r in range(R):
                    dr = drift(x)
                    if dr.shape[-2] != 1:
                        dr = dr.mean(-2, keepdim=True)
                    x = x - lr_t * (dr + c_ord[:, r].view(S, 1, d))
                    if trajectory == "round":
                        traj[ids, :, k * R + r + 1] = x[:, :, 0]
            else:
                for i in range(N):
                    x = x - lr_t * (drift(x) + c_ord[:, :, i])
                    if (i + 1) % B == 0:
                        x = x.mean(-2, keepdim=True)
                        if trajectory == "round":
                            traj[ids, :, k * R + (i + 1) // B] = x[:, :, 0]
        elif algorithm == "minibatch":
            for r in range(R):
                g = problem.grad(x, idx[:, :, r * B:(r + 1) * B])  # [nA, S, M, d]
                x = x - lr_t * g.mean(-2, keepdim=True)
                if trajectory == "round":
                    traj[ids, :, k * R + r + 1] = x[:, :, 0]
        else:
            for i in range(N):
                x = x - lr_t * problem.grad(x, idx[:, :, i:i + 1])
                if (i + 1) % B == 0:
                    x = x.mean(-2, keepdim=True)
                    if trajectory == "round":
                        traj[ids, :, k * R + (i + 1) // B] = x[:, :, 0]
        if not bool(torch.isfinite(x).all()):
            bad = int((~torch.isfinite(x)).flatten(1).any(1).nonzero()[0, 0])
            j = active[bad]
            raise FloatingPointError(
                f"non-finite iterate in epoch {k} (0-based) of the run with K={Ks[j]}, "
                f"lr={lrs[j]:g}: the step size is too large for this problem")
        if trajectory == "epoch":
            traj[ids, :, k + 1] = x[:, :, 0]
        retire(k + 1)

    errors = problem.error(x_final)  # [nK, S]
    res = SimResult(algorithm, scheme, M, N, B, Ks, lrs, seed_t, x_final, errors,
                    errors.mean(-1), traj)
    if scalar_K:
        res.x, res.errors, res.final_error = res.x[0], res.errors[0], res.final_error[0]
        if traj is not None:
            res.trajectory = traj[0]
    return res
