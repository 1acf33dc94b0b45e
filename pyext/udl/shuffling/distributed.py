"""Real multi-process minibatch RR / local RR / SyncShuf training on ``torch.distributed``.

Every rank keeps its own fixed shard of ``N`` items (the paper's setting) and walks it in the
order ``udl.shuffling.orders(scheme, M, N, epoch, seed)[rank]`` -- the very index streams of
:func:`udl.shuffling.simulate`, so a float64 run reproduces the simulator's iterates.

* ``minibatch``: each of the ``N/B`` rounds per epoch, every rank computes the mean gradient of
  its next ``B`` items at the shared parameters; gradients (and floating buffers such as
  BatchNorm statistics) are all-reduced (SUM, then ``/M``: gloo has no portable AVG) and every
  rank takes the same optimiser step.
* ``local``: every rank takes single-item steps; after local steps ``B, 2B, ..., N`` all floating
  parameters **and buffers** are averaged (also those without gradients -- unlike
  ``get_params_to_average`` -- and exactly after step ``B``, not ``B+1`` as
  ``PeriodicModelAverager(warmup_steps=0)`` would).

Non-finite losses stop every rank at the same round with the epoch/step/rank where it happened.
Checkpoints (epoch, sampler state, model, optimiser, history; the previous one is kept) make a
killed run resume with identical results.

Launch::

    torchrun --nproc_per_node=4 -m udl.shuffling.distributed --problem skewed --N 16 -K 20
    udl shuffle train --nproc 4 --problem lstsq --algorithm local -B 4 -K 10 --lr 0.01
    python -m udl.shuffling.distributed --nproc 2 ...      # spawns on 127.0.0.1 itself
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import math
import os
import socket
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch import Tensor, nn

from udl.shuffling.sampler import ShuffleSampler
from udl.shuffling.simulator import check_config

__all__ = ["TrainConfig", "TrainResult", "train", "train_problem", "run_problems", "launch",
           "free_port",
           "build_problem", "add_train_arguments", "run_from_args", "main"]

_ALG_CODE = {"minibatch": 0, "local": 1}
_SCHEME_CODE = {"rr": 0, "wr": 1, "syncshuf": 2, "same": 3}


@dataclasses.dataclass
class TrainConfig:
    """What to run. ``B``: per-rank minibatch (minibatch) or local steps between syncs (local)."""

    algorithm: str = "minibatch"
    scheme: str = "rr"
    B: int = 1
    K: int = 1
    lr: float = 0.01
    seed: int = 0
    checkpoint: str | None = None  # folder; resumed from when it holds a checkpoint
    checkpoint_every: int = 1  # epochs
    record: str | None = "round"  # None | "epoch" | "round": synchronised parameters


@dataclasses.dataclass
class TrainResult:
    """Outcome on one rank (parameters are identical on every rank at the end of an epoch).

    ``trajectory``: flattened parameters ``[T + 1, P]`` after every round / epoch (float64);
    ``losses``: mean training loss of each epoch over all ranks' steps.
    """

    rank: int
    world_size: int
    state: dict[str, Tensor]
    trajectory: Tensor | None
    losses: list[float]
    epochs_run: int
    resumed_from: int
    seconds: float
    extra: dict[str, Any] = dataclasses.field(default_factory=dict)


# ---------------------------------------------------------------------------------------------
# helpers
# ---------------------------------------------------------------------------------------------
def _world(group) -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(group), dist.get_world_size(group)
    return 0, 1


def _coll_device(group) -> torch.device:
    """Where small control tensors must live for this group's collectives (NCCL: the GPU)."""
    if dist.is_available() and dist.is_initialized() and dist.get_backend(group) == "nccl":
        return torch.device("cuda", torch.cuda.current_device())
    return torch.device("cpu")


def _allreduce_small(t: Tensor, op, group) -> Tensor:
    """All-reduce a small float64 CPU tensor (through the GPU under NCCL); returns a CPU copy."""
    dev = _coll_device(group)
    buf = t.to(dev)
    dist.all_reduce(buf, op=op, group=group)
    return buf.cpu()


def _shard_len(shard) -> int:
    if isinstance(shard, Tensor):
        return int(shard.shape[0])
    if isinstance(shard, (tuple, list)) and shard and all(isinstance(t, Tensor) for t in shard):
        n = {int(t.shape[0]) for t in shard}
        if len(n) != 1:
            raise ValueError(f"shard tensors disagree on their length: {sorted(n)}")
        return n.pop()
    return len(shard)


def _batch(shard, idx: Tensor, device: torch.device):
    if isinstance(shard, Tensor):
        return shard[idx].to(device)
    if isinstance(shard, (tuple, list)) and shard and all(isinstance(t, Tensor) for t in shard):
        return tuple(t[idx].to(device) for t in shard)
    from torch.utils.data import default_collate

    batch = default_collate([shard[i] for i in idx.tolist()])
    if isinstance(batch, Tensor):
        return batch.to(device)
    if isinstance(batch, (tuple, list)):
        return type(batch)(b.to(device) if isinstance(b, Tensor) else b for b in batch)
    return batch


def _sync_tensors(model: nn.Module) -> list[Tensor]:
    """Floating parameters and buffers: what local RR averages."""
    out = [p for p in model.parameters() if p.is_floating_point()]
    out += [b for b in model.buffers() if b.is_floating_point()]
    return out


def _allreduce_mean(tensors: list[Tensor], extras: Tensor, world: int, group) -> Tensor:
    """Average ``tensors`` in place over ranks; ``extras`` (float64 [e]) is SUMMED and returned.

    Tensors are flattened into one buffer per dtype (the extras travel with the first one), so a
    round costs one collective for the usual single-dtype model.
    """
    if world == 1:
        return extras
    by_dtype: dict[torch.dtype, list[Tensor]] = {}
    for t in tensors:
        by_dtype.setdefault(t.dtype, []).append(t)
    if not by_dtype:
        return _allreduce_small(extras, dist.ReduceOp.SUM, group)
    result = extras
    for n, (dtype, ts) in enumerate(by_dtype.items()):
        parts = [t.detach().reshape(-1) for t in ts]
        if n == 0:
            parts.append(extras.to(device=ts[0].device, dtype=dtype))
        flat = torch.cat(parts)
        dist.all_reduce(flat, op=dist.ReduceOp.SUM, group=group)
        if n == 0:
            result = flat[-extras.numel():].to(torch.float64).cpu() if extras.numel() else extras
            flat = flat[: flat.numel() - extras.numel()]
        flat.div_(world)
        offset = 0
        for t in ts:
            k = t.numel()
            t.data.copy_(flat[offset:offset + k].view_as(t))
            offset += k
    return result


def _flat_params(model: nn.Module) -> Tensor:
    ps = [p.detach().reshape(-1).to("cpu", torch.float64) for p in model.parameters()]
    return torch.cat(ps) if ps else torch.zeros(0, dtype=torch.float64)


def _check_same_everywhere(values: Sequence[float], names: Sequence[str], world: int,
                           group) -> None:
    """Raise ``ValueError`` on every rank if the ranks disagree on any value."""
    if world == 1:
        return
    v = torch.tensor(list(values), dtype=torch.float64)
    both = _allreduce_small(torch.cat([v, -v]), dist.ReduceOp.MAX, group)
    hi, lo = both[: len(values)], -both[len(values):]
    bad = [f"{n} (from {lo[i]:g} to {hi[i]:g})" for i, n in enumerate(names) if hi[i] != lo[i]]
    if bad:
        raise ValueError("world mismatch: the ranks disagree on " + ", ".join(bad))


def _atomic_save(obj: Any, path: Path) -> None:
    tmp = path.with_suffix(".tmp")
    torch.save(obj, tmp)
    os.replace(tmp, path)


def _ckpt_paths(folder: Path, rank: int) -> tuple[Path, Path]:
    return folder / f"rank{rank}.pt", folder / f"rank{rank}.prev.pt"


def _ckpt_epoch(path: Path) -> int:
    if not path.exists():
        return -1
    return int(torch.load(path, map_location="cpu", weights_only=False)["epoch"])


# ---------------------------------------------------------------------------------------------
# the engine
# ---------------------------------------------------------------------------------------------
def train(
    model: nn.Module,
    loss_fn: Callable[[nn.Module, Any], Tensor],
    shard,
    config: TrainConfig,
    *,
    optimizer: torch.optim.Optimizer | None = None,
    group=None,
    on_epoch_end: Callable[[int, nn.Module], bool | None] | None = None,
) -> TrainResult:
    """Train ``model`` with minibatch or local shuffling SGD on this rank's fixed ``shard``.

    Call it on every rank of an initialised process group (or without one: a single machine).

    Args:
        model: any ``nn.Module``; rank 0's parameters and buffers are broadcast at the start.
        loss_fn: ``loss_fn(model, batch) -> scalar``, the **mean** loss of a batch of items.
        shard: this rank's ``N`` items: a tensor ``[N, ...]``, a tuple of such tensors, or any
            map-style dataset (collated with ``default_collate``). Every rank needs the same ``N``.
        config: :class:`TrainConfig`.
        optimizer: default ``torch.optim.SGD(model.parameters(), lr=config.lr)`` (the paper's
            algorithm). In local mode only parameters and buffers are averaged, not optimiser
            state.
        on_epoch_end: ``f(epoch, model)`` called after each epoch (and its checkpoint) on every
            rank; returning ``True`` stops training there (a pre-emption, resumable).

    Raises:
        ValueError: bad configuration, or ranks that disagree on ``N``/``B``/scheme/... or on
            the checkpoint they resume from.
        FloatingPointError: a non-finite loss (raised on every rank at the same round).
    """
    rank, world = _world(group)
    N = _shard_len(shard)
    check_config(config.algorithm, config.scheme, world, N, config.B)
    if not (math.isfinite(config.lr) and config.lr > 0):
        raise ValueError(f"lr must be a finite number > 0, got {config.lr}")
    if not isinstance(config.K, int) or config.K < 0:
        raise ValueError(f"K must be an integer >= 0, got {config.K!r}")
    if config.record not in (None, "epoch", "round"):
        raise ValueError(f"record must be None, 'epoch' or 'round', got {config.record!r}")
    if config.checkpoint_every < 1:
        raise ValueError(f"checkpoint_every must be >= 1, got {config.checkpoint_every}")
    _check_same_everywhere(
        [N, config.B, config.K, config.seed % (2**52), _ALG_CODE[config.algorithm],
         _SCHEME_CODE[config.scheme], config.lr],
        ["N (shard size)", "B", "K", "seed", "algorithm", "scheme", "lr"], world, group)

    t_start = time.perf_counter()
    params = [p for p in model.parameters()]
    device = params[0].device if params else torch.device("cpu")
    if optimizer is None:
        optimizer = torch.optim.SGD(model.parameters(), lr=config.lr)
    sampler = ShuffleSampler(N, config.scheme, rank, world, config.seed)
    R = N // config.B

    # The run's common start: every rank takes rank 0's parameters and buffers.
    if world > 1:
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0, group=group)

    trajectory: list[Tensor] = []
    losses: list[float] = []
    start_epoch = 0
    if config.checkpoint:
        folder = Path(config.checkpoint)
        folder.mkdir(parents=True, exist_ok=True)
        cur, prev = _ckpt_paths(folder, rank)
        mine = torch.full((world, 2), -1.0, dtype=torch.float64)
        mine[rank] = torch.tensor([_ckpt_epoch(cur), _ckpt_epoch(prev)], dtype=torch.float64)
        if world > 1:
            mine += 1.0  # all-gather by SUM of rows that are 0 except our own
            mine[torch.arange(world) != rank] = 0.0
            mine = _allreduce_small(mine, dist.ReduceOp.SUM, group) - 1.0
        common = set(mine[0].tolist())
        for r in range(1, world):
            common &= set(mine[r].tolist())
        common.discard(-1.0)
        if common:
            epoch = int(max(common))
            path = cur if _ckpt_epoch(cur) == epoch else prev
            state = torch.load(path, map_location=device, weights_only=False)
            want = {"algorithm": config.algorithm, "scheme": config.scheme, "B": config.B,
                    "lr": config.lr, "seed": config.seed, "N": N, "world_size": world}
            for key, val in want.items():
                if state["config"][key] != val:
                    raise ValueError(f"checkpoint in {folder} was written with {key}="
                                     f"{state['config'][key]!r}, this run has {key}={val!r}")
            model.load_state_dict(state["model"])
            optimizer.load_state_dict(state["optimizer"])
            sampler.load_state_dict(state["sampler"])
            trajectory = [t for t in state["trajectory"]]
            losses = list(state["losses"])
            start_epoch = epoch
        elif bool((mine >= 0).any()):
            raise ValueError(f"world mismatch: the ranks' checkpoints in {folder} share no "
                             f"epoch: {mine.tolist()}")
    resumed_from = start_epoch
    if config.record and not trajectory:
        trajectory.append(_flat_params(model))

    step = start_epoch * N  # local steps (local) or rounds * B (minibatch) done so far
    epochs_run = start_epoch
    for k in range(start_epoch, config.K):
        sampler.set_epoch(k)
        order = sampler.indices()
        loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        if config.algorithm == "minibatch":
            float_buffers = [b for b in model.buffers() if b.is_floating_point()]
            for r in range(R):
                batch = _batch(shard, order[r * config.B:(r + 1) * config.B], device)
                optimizer.zero_grad(set_to_none=False)
                loss = loss_fn(model, batch)
                loss.backward()
                grads = []
                for p in params:
                    if p.grad is None:  # unused parameter: contributes a zero gradient
                        p.grad = torch.zeros_like(p)
                    grads.append(p.grad)
                # floating buffers (e.g. BatchNorm statistics) are averaged with the gradients
                tot = _allreduce_mean(grads + float_buffers,
                                      loss.detach().to(torch.float64).reshape(1).cpu(),
                                      world, group)
                if not math.isfinite(float(tot[0])):
                    _raise_nonfinite(float(loss.detach()), k, f"round {r}", step + (r + 1) * config.B,
                                     rank, world, group)
                optimizer.step()
                loss_sum += tot[0] / world
                if config.record == "round":
                    trajectory.append(_flat_params(model))
            loss_mean = float(loss_sum) / R
        else:
            bad = -1
            sync = _sync_tensors(model)
            for i in range(N):
                batch = _batch(shard, order[i:i + 1], device)
                optimizer.zero_grad(set_to_none=False)
                loss = loss_fn(model, batch)
                lv = float(loss.detach())
                if bad < 0 and not math.isfinite(lv):
                    bad = i
                if math.isfinite(lv):
                    loss.backward()
                    optimizer.step()
                loss_sum += lv if math.isfinite(lv) else 0.0
                if (i + 1) % config.B == 0:
                    flag = torch.tensor([1.0 if bad >= 0 else 0.0], dtype=torch.float64)
                    tot = _allreduce_mean(sync, flag, world, group)
                    if float(tot[0]) > 0:
                        _raise_local_nonfinite(bad, k, step, rank, world, group)
                    if config.record == "round":
                        trajectory.append(_flat_params(model))
            loss_mean = float(loss_sum) / N
            if world > 1:
                lt = torch.tensor([loss_mean], dtype=torch.float64)
                lt = _allreduce_small(lt, dist.ReduceOp.SUM, group)
                loss_mean = float(lt[0]) / world
        step += N
        losses.append(loss_mean)
        if config.record == "epoch":
            trajectory.append(_flat_params(model))
        epochs_run = k + 1
        if config.checkpoint and ((k + 1) % config.checkpoint_every == 0 or k + 1 == config.K):
            folder = Path(config.checkpoint)
            cur, prev = _ckpt_paths(folder, rank)
            sampler.set_epoch(k + 1)
            state = {
                "version": 1,
                "epoch": k + 1,
                "config": {"algorithm": config.algorithm, "scheme": config.scheme, "B": config.B,
                           "lr": config.lr, "seed": config.seed, "N": N, "world_size": world},
                "model": model.state_dict(),
                "optimizer": optimizer.state_dict(),
                "sampler": sampler.state_dict(),
                "trajectory": trajectory,
                "losses": losses,
            }
            if cur.exists():
                os.replace(cur, prev)
            _atomic_save(state, cur)
            if world > 1:
                dist.barrier(group=group)
        if on_epoch_end is not None and on_epoch_end(k, model):
            break
    traj = torch.stack(trajectory) if trajectory else None
    state_out = {k: v.detach().cpu().clone() for k, v in model.state_dict().items()}
    return TrainResult(rank, world, state_out, traj, losses, epochs_run, resumed_from,
                       time.perf_counter() - t_start)


def _raise_nonfinite(loss: float, epoch: int, where: str, step: int, rank: int, world: int,
                     group) -> None:
    """Minibatch mode: every rank is here in the same round; find which rank(s) saw it."""
    flags = torch.zeros(world, dtype=torch.float64)
    flags[rank] = 0.0 if math.isfinite(loss) else 1.0
    if world > 1:
        flags = _allreduce_small(flags, dist.ReduceOp.SUM, group)
    ranks = [r for r in range(world) if flags[r] > 0]
    raise FloatingPointError(
        f"non-finite loss at epoch {epoch} (0-based), {where}, after {step} samples per rank, "
        f"on rank(s) {ranks or 'unknown (non-finite gradient)'}: lower the step size")


def _raise_local_nonfinite(bad: int, epoch: int, step: int, rank: int, world: int,
                           group) -> None:
    """Local mode: report the earliest (step, rank) with a non-finite loss."""
    code = torch.tensor([float(bad * world + rank) if bad >= 0 else float("inf")],
                        dtype=torch.float64)
    if world > 1:
        code = _allreduce_small(code, dist.ReduceOp.MIN, group)
    c = int(code[0])
    i, r = divmod(c, world)
    raise FloatingPointError(
        f"non-finite loss at epoch {epoch} (0-based), local step {i} of the epoch "
        f"(global step {step + i}), on rank {r}: lower the step size")


def train_problem(problem, config: TrainConfig, group=None, **kw) -> TrainResult:
    """:func:`train` on a :class:`udl.shuffling.problems.Problem` (this rank's shard, float64)."""
    rank, world = _world(group)
    problem.check_machines(world)
    model = problem.model()
    shard = problem.shard(rank, world)
    return train(model, problem.batch_loss, shard, config, group=group, **kw)


def run_problems(rank: int, world: int, jobs: Sequence[dict[str, Any]]) -> list[Any]:
    """Run several problem jobs in one process group (a :func:`launch` target).

    Each job is a dict with

    * ``"problem"``: a :class:`udl.shuffling.problems.Problem`;
    * ``"config"``: a :class:`TrainConfig`, or a list of them (one per rank);
    * optional ``"stop_after_epoch": k``: stop after epoch ``k`` (a graceful pre-emption);
    * optional ``"kill_after_epoch": k``: fault injection -- after epoch ``k``'s checkpoint the
      process ends at once with ``os._exit(17)``, as if it had been killed;
    * optional ``"capture": True``: return a raised ``ValueError``/``FloatingPointError`` as the
      job's value instead of raising (the ranks raise together, so the group stays usable).
    """
    out: list[Any] = []
    for job in jobs:
        kill, stop = job.get("kill_after_epoch"), job.get("stop_after_epoch")

        def hook(epoch: int, model: nn.Module, kill=kill, stop=stop) -> bool:
            if kill is not None and epoch >= kill:
                os._exit(17)
            return stop is not None and epoch >= stop

        config = job["config"]
        if isinstance(config, (list, tuple)):
            config = config[rank]
        try:
            out.append(train_problem(job["problem"], config, on_epoch_end=hook))
        except (ValueError, FloatingPointError) as exc:
            if not job.get("capture"):
                raise
            out.append(exc)
    return out


# ---------------------------------------------------------------------------------------------
# spawning on one host
# ---------------------------------------------------------------------------------------------
def free_port() -> int:
    """A free TCP port on 127.0.0.1."""
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _spawn_worker(rank: int, fn: Callable, world: int, backend: str, port: int, args: tuple,
                  out_dir: str, timeout: float) -> None:
    import datetime

    os.environ["MASTER_ADDR"] = "127.0.0.1"
    os.environ["MASTER_PORT"] = str(port)
    torch.set_num_threads(1)
    dist.init_process_group(backend, rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=timeout))
    try:
        if backend == "nccl":
            torch.cuda.set_device(rank % torch.cuda.device_count())
        res = fn(rank, world, *args)
        torch.save(("ok", res), Path(out_dir) / f"rank{rank}.pt")
    except BaseException as exc:  # noqa: BLE001 - handed to the parent, then re-raised
        with contextlib.suppress(Exception):
            torch.save(("error", exc), Path(out_dir) / f"rank{rank}.pt")
        raise
    finally:
        with contextlib.suppress(Exception):
            dist.destroy_process_group()


def launch(fn: Callable[..., Any], nproc: int, args: tuple = (), backend: str = "gloo",
           port: int | None = None, timeout: float = 300.0) -> list[Any]:
    """Run ``fn(rank, world_size, *args)`` in ``nproc`` spawned processes on 127.0.0.1.

    Each process initialises a ``backend`` process group (``MASTER_ADDR=127.0.0.1``, a free
    port), uses one thread, and returns ``fn``'s value; ``fn`` and ``args`` must be picklable
    (a module-level function). Returns the per-rank values. If a rank raises, the first such
    exception (by rank) is re-raised here with its original type.
    """
    import torch.multiprocessing as mp

    if not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"nproc must be an integer >= 1, got {nproc!r}")
    if backend not in ("gloo", "nccl"):
        raise ValueError(f"backend must be 'gloo' or 'nccl', got {backend!r}")
    port = free_port() if port is None else port
    with tempfile.TemporaryDirectory(prefix="udl_shuffle_") as out_dir:
        failure: BaseException | None = None
        try:
            mp.start_processes(_spawn_worker, args=(fn, nproc, backend, port, args, out_dir,
                                                    timeout),
                               nprocs=nproc, join=True, start_method="spawn")
        except Exception as exc:  # noqa: BLE001 - replaced by the rank's own exception below
            failure = exc
        results = []
        for r in range(nproc):
            path = Path(out_dir) / f"rank{r}.pt"
            if not path.exists():
                results.append(None)
                continue
            status, value = torch.load(path, weights_only=False)
            if status == "error":
                raise value
            results.append(value)
        if failure is not None:
            raise failure
        return results


# ---------------------------------------------------------------------------------------------
# command line (torchrun / udl shuffle train)
# ---------------------------------------------------------------------------------------------
def _mlp(d_in: int, hidden: int, n_out: int) -> nn.Module:
    """A small MLP for the digits demo (LayerNorm: works with single-item local steps)."""
    return nn.Sequential(nn.Linear(d_in, hidden), nn.LayerNorm(hidden), nn.ReLU(),
                         nn.Linear(hidden, n_out))


def _mlp_loss(model: nn.Module, batch) -> Tensor:
    x, y = batch
    return nn.functional.cross_entropy(model(x), y)


def _digits_shards(world: int, N: int | None, B: int):
    import sklearn.datasets as skd

    X, y = skd.load_digits(return_X_y=True)
    X = torch.as_tensor(X, dtype=torch.float32) / 16.0
    y = torch.as_tensor(y, dtype=torch.int64)
    perm = torch.randperm(X.shape[0], generator=torch.Generator().manual_seed(0))
    X, y = X[perm], y[perm]
    n = X.shape[0] // world if N is None else N
    n -= n % B
    if n < 1 or n * world > X.shape[0]:
        raise ValueError(f"cannot give {world} ranks {N} digits each (1797 in all)")
    return X, y, n


def build_problem(args: argparse.Namespace, world: int):
    """The :class:`Problem` named by ``--problem`` (``None`` for the ``mlp`` demo)."""
    from udl.shuffling import problems

    if args.problem == "skewed":
        return problems.skewed_quadratic(args.N, L=args.L, mu=args.mu, nu=args.nu, x0=args.x0)
    if args.problem == "near":
        return problems.near_homogeneous(world, args.N, args.lam, L=args.L, mu=args.mu,
                                         nu=args.nu, x0=args.x0)
    if args.problem == "hetero":
        return problems.heterogeneous(world, args.N, args.tau, a=(args.L, args.mu), nu=args.nu,
                                      x0=args.x0)
    if args.problem in ("lstsq", "logistic"):
        make = problems.least_squares if args.problem == "lstsq" else problems.logistic_regression
        ds = args.dataset or ("diabetes" if args.problem == "lstsq" else "breast_cancer")
        p = make(world, args.N, dataset=ds)
        if args.N is None and p.N % args.B:  # default N: as many rows as fit, a multiple of B
            p = make(world, p.N - p.N % args.B, dataset=ds)
        return p
    if args.problem == "mlp":
        return None
    raise ValueError(f"unknown problem {args.problem!r}")


def _lr(args: argparse.Namespace, problem, world: int) -> float:
    if args.lr != "theory":
        return float(args.lr)
    from udl.shuffling.rates import step_size

    mu = getattr(problem, "mu", None)
    if mu is None:
        raise ValueError("--lr theory needs a problem with a known mu")
    return step_size(args.algorithm, args.scheme, mu=mu, N=problem.N, K=max(args.K, 1),
                     M=world, B=args.B)


def _run_rank(rank: int, world: int, args: argparse.Namespace) -> dict[str, Any]:
    """Body of one rank for the command line (also used by torchrun)."""
    problem = build_problem(args, world)
    config = TrainConfig(args.algorithm, args.scheme, args.B, args.K, 0.0, args.seed,
                         args.checkpoint, args.checkpoint_every,
                         "round" if args.compare_sim else None)
    out: dict[str, Any] = {}
    if problem is not None:
        config.lr = _lr(args, problem, world)
        res = train_problem(problem, config)
        x = res.state["x"]
        out.update(final_x=x.tolist(), final_error=float(problem.error(x.view(1, -1))[0]),
                   f_star=problem.f_star)
    else:
        X, y, n = _digits_shards(world, args.N, args.B)
        torch.manual_seed(args.seed)
        model = _mlp(X.shape[1], 64, 10)
        config.lr = float(args.lr) if args.lr != "theory" else 0.1
        shard = (X[rank * n:(rank + 1) * n], y[rank * n:(rank + 1) * n])
        res = train(model, _mlp_loss, shard, config)
        model.eval()
        with torch.no_grad():
            acc = float((model(X).argmax(-1) == y).double().mean())
        out.update(train_accuracy_all_digits=acc, n_per_rank=n)
    out.update(rank=rank, world_size=world, algorithm=args.algorithm, scheme=args.scheme,
               B=args.B, K=args.K, lr=config.lr, seed=args.seed, epochs_run=res.epochs_run,
               resumed_from=res.resumed_from, losses=res.losses, seconds=res.seconds)
    if args.compare_sim and problem is not None and rank == 0:
        from udl.shuffling.simulator import simulate

        sim = simulate(problem, args.algorithm, args.scheme, M=world, B=args.B, K=args.K,
                       lr=config.lr, seeds=[args.seed], trajectory="round")
        ref = sim.trajectory[0]
        got = res.trajectory
        out["max_abs_diff_vs_simulator"] = float((ref - got[-ref.shape[0]:]).abs().max())
    return out


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """The options of ``udl shuffle train`` / ``python -m udl.shuffling.distributed``."""
    p.add_argument("--nproc", type=int, default=None,
                   help="spawn this many processes on 127.0.0.1 (ignored under torchrun)")
    p.add_argument("--backend", default="auto", choices=["auto", "gloo", "nccl"],
                   help="auto: nccl when CUDA is available, else gloo")
    p.add_argument("--problem", default="skewed",
                   choices=["skewed", "near", "hetero", "lstsq", "logistic", "mlp"])
    p.add_argument("--algorithm", default="minibatch", choices=["minibatch", "local"])
    p.add_argument("--scheme", default="rr", choices=["rr", "wr", "syncshuf", "same"])
    p.add_argument("-N", "--N", type=int, default=None,
                   help="items per rank (skewed/near/hetero: default 16; data: all that fit)")
    p.add_argument("-B", "--B", type=int, default=1)
    p.add_argument("-K", "--K", type=int, default=10, help="epochs")
    p.add_argument("--lr", default="0.01", help="step size, or 'theory' (Thm 1/2 step size)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--L", type=float, default=4.0)
    p.add_argument("--mu", type=float, default=1.0)
    p.add_argument("--nu", type=float, default=1.0)
    p.add_argument("--tau", type=float, default=1.0)
    p.add_argument("--lam", type=float, default=0.0)
    p.add_argument("--x0", type=float, default=0.5)
    p.add_argument("--dataset", default=None, help="scikit-learn dataset for lstsq/logistic")
    p.add_argument("--checkpoint", default=None, help="checkpoint folder (resumed if present)")
    p.add_argument("--checkpoint-every", type=int, default=1)
    p.add_argument("--compare-sim", action="store_true",
                   help="rank 0 also runs the simulator and reports the largest difference")
    p.add_argument("--out", default=None, help="write rank 0's summary as JSON here")


def run_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """Run under torchrun (``RANK``/``WORLD_SIZE`` set), spawned (``--nproc``) or alone."""
    if args.N is None and args.problem in ("skewed", "near", "hetero"):
        args.N = 16
    if args.lr != "theory":
        float(args.lr)  # ValueError early for a bad number
    backend = args.backend
    if backend == "auto":
        backend = "nccl" if torch.cuda.is_available() else "gloo"
    if "RANK" in os.environ and "WORLD_SIZE" in os.environ:  # torchrun
        if not dist.is_initialized():
            dist.init_process_group(backend)
        if backend == "nccl":
            torch.cuda.set_device(int(os.environ.get("LOCAL_RANK", 0)))
        try:
            summary = _run_rank(dist.get_rank(), dist.get_world_size(), args)
        finally:
            dist.destroy_process_group()
    elif args.nproc and args.nproc > 1:
        summary = launch(_run_rank, args.nproc, (args,), backend=backend)[0]
    else:
        summary = _run_rank(0, 1, args)
    if summary.get("rank", 0) == 0:
        text = json.dumps(summary, indent=2)
        if args.out:
            Path(args.out).write_text(text)
        print(text)
    return summary


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m udl.shuffling.distributed",
        description="Minibatch / local RR and SyncShuf on torch.distributed (gloo or nccl).")
    add_train_arguments(parser)
    args = parser.parse_args(argv)
    try:
        run_from_args(args)
    except (ValueError, FloatingPointError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
