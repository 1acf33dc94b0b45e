"""The continual training loop: tasks in sequence, SSL views made on the device, KNN evaluation
after every task, checkpoint/resume per task and optional torch.distributed data parallelism."""

from __future__ import annotations

import dataclasses
import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from udl.continual.data import Task, TaskStream
from udl.continual.evaluation import ContinualMetrics, extract_features, knn_accuracy
from udl.continual.strategies import Strategy

__all__ = ["TrainResult", "train", "evaluate", "evaluate_frozen", "task_tensors"]

MODES = ("til", "cil")


@dataclasses.dataclass
class TrainResult:
    """What :func:`train` returns: per-mode accuracy matrices, mean loss per task, timing."""

    metrics: dict[str, ContinualMetrics]
    losses: list[float]
    seconds: float
    strategy: Strategy | None = None

    def summary(self) -> dict[str, float]:
        out: dict[str, float] = {}
        for mode, m in self.metrics.items():
            out[f"{mode}_acc"] = m.average_accuracy()
            out[f"{mode}_fgt"] = m.forgetting()
            out[f"{mode}_fgt_first"] = m.forgetting(reference="first")
        return out

    def to_dict(self) -> dict[str, Any]:
        return {"metrics": {k: m.to_dict() for k, m in self.metrics.items()},
                "losses": self.losses, "seconds": self.seconds, "summary": self.summary()}

    def save_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=2))
        return path


def task_tensors(task: Task, batch_size: int = 512, num_workers: int = 0) -> tuple[Tensor, Tensor]:
    """All examples of a task as ``(x (n, C, H, W) float, y (n,))`` (loads lazy datasets)."""
    t = task.tensors()
    if t is not None:
        return t
    from torch.utils.data import DataLoader

    xs, ys = [], []
    for x, y in DataLoader(task.subset(), batch_size=batch_size, num_workers=num_workers):
        xs.append(x)
        ys.append(torch.as_tensor(y))
    if not xs:
        raise ValueError(f"task {task.index} is empty")
    return torch.cat(xs), torch.cat(ys).long()


def _features(fn: Callable[[Tensor], Tensor], tasks: Sequence[Task], device: torch.device,
              batch_size: int, cache: dict | None) -> list[tuple[Tensor, Tensor]]:
    out = []
    for task in tasks:
        key = (id(task.dataset), task.index, len(task))
        if cache is not None and key in cache:
            x, y = cache[key]
        else:
            x, y = task_tensors(task)
            if cache is not None:
                cache[key] = (x, y)
        out.append((extract_features(fn, x, batch_size, device), y))
    return out


def evaluate(feature_fn: Callable[[Tensor], Tensor], stream: TaskStream, after: int,
             modes: Sequence[str] = MODES, k: int = 200, temperature: float = 0.1,
             device: str | torch.device = "cpu", batch_size: int = 512,
             cache: dict | None = None) -> dict[str, list[float]]:
    """KNN accuracies (percent) after training task ``after``.

    - ``"til"`` (task-incremental, the paper's protocol): for **every** task i the bank is task
      i's training set and the queries its test set (tasks after ``after`` included, as the
      paper's forgetting formula uses them).
    - ``"cil"`` (class-incremental): bank = training sets of tasks 0..after, queries = the
      test set of each task i ≤ after (NaN for i > after).

    ``feature_fn`` maps a float image batch (already on ``device``) to features; it should
    include the evaluation normalisation.
    """
    for m in modes:
        if m not in MODES:
            raise ValueError(f"unknown mode {m!r}; choose from {MODES}")
    device = torch.device(device)
    t_count = stream.num_tasks
    needed = range(t_count) if "til" in modes else range(after + 1)
    tr = _features(feature_fn, [stream.train[i] for i in needed], device, batch_size, cache)
    te = _features(feature_fn, [stream.test[i] for i in needed], device, batch_size, cache)
    res: dict[str, list[float]] = {}
    if "til" in modes:
        res["til"] = [knn_accuracy(tr[i][0], tr[i][1], te[i][0], te[i][1], k, temperature)
                      for i in range(t_count)]
    if "cil" in modes:
        bank = torch.cat([tr[i][0] for i in range(after + 1)])
        bank_y = torch.cat([tr[i][1] for i in range(after + 1)])
        res["cil"] = [knn_accuracy(bank, bank_y, te[i][0], te[i][1], k, temperature)
                      if i <= after else float("nan") for i in range(t_count)]
    return res


def evaluate_frozen(feature_fn: Callable[[Tensor], Tensor], stream: TaskStream,
                    modes: Sequence[str] = MODES, k: int = 200, temperature: float = 0.1,
                    device: str | torch.device = "cpu") -> dict[str, ContinualMetrics]:
    """Accuracy matrices of a fixed feature map (controls: random encoder, raw pixels)."""
    cache: dict = {}
    metrics = {m: ContinualMetrics(stream.num_tasks) for m in modes}
    til = None
    for t in range(stream.num_tasks):
        sub = [m for m in modes if m == "cil" or til is None]
        res = evaluate(feature_fn, stream, t, sub, k, temperature, device, cache=cache)
        til = res.get("til", til)
        for m in modes:
            metrics[m].update(t, res[m] if m in res else til)
    return metrics


def _dist_info(distributed: bool) -> tuple[int, int]:
    if not distributed:
        return 0, 1
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()):
        raise ValueError("distributed=True needs torch.distributed.init_process_group() first")
    return dist.get_rank(), dist.get_world_size()


def _broadcast_state(model: torch.nn.Module, world: int) -> None:
    if world == 1:
        return
    import torch.distributed as dist

    with torch.no_grad():
        for t in [*model.parameters(), *model.buffers()]:
            dist.broadcast(t.data, 0)


def _latest_checkpoint(ckpt_dir: Path) -> Path | None:
    files = sorted(ckpt_dir.glob("task_*.pt"))
    return files[-1] if files else None


def train(strategy: Strategy, stream: TaskStream, epochs_per_task: int = 1,
          batch_size: int = 64, *, knn_k: int = 200, temperature: float = 0.1,
          modes: Sequence[str] = MODES, seed: int = 0, checkpoint_dir: str | Path | None = None,
          resume: bool = True, progress: bool = True, distributed: bool = False,
          max_tasks: int | None = None, eval_batch_size: int = 512) -> TrainResult:
    """Train ``strategy`` on ``stream`` task by task and KNN-evaluate after each task.

    Every step draws two augmented views of a batch of raw images with ``stream.augment`` on the
    model's device and calls ``strategy.observe(view1, view2, raw, labels)``. Replayed raw
    inputs go through ``stream.augment.weak()`` (LUMP's T_weak) unless the strategy has its own
    ``buffer_transform``. A :class:`~udl.continual.strategies.Multitask` strategy is trained once
    on the union of all tasks for ``epochs_per_task`` epochs (the same number of steps as the
    sequence) and evaluated at the end only.

    Args:
        strategy: the strategy (its model already on the target device).
        stream: the task stream.
        epochs_per_task: passes over each task.
        batch_size: examples per step per process; a trailing batch of 1 is skipped.
        knn_k, temperature: KNN evaluation (k capped at the bank size).
        modes: subset of ``("til", "cil")``.
        seed: with the task index, seeds the data order and the augmentations of each task, so
            a resumed run reproduces an uninterrupted one exactly.
        checkpoint_dir: if given, the strategy, metrics and losses are saved after each task;
            with ``resume=True`` training continues after the last saved task.
        progress: tqdm progress bar (rank 0 only).
        distributed: shard every batch over the torch.distributed world and average gradients
            (each process keeps its own replay buffer); needs an initialised process group.
        max_tasks: stop after this many tasks (e.g. to simulate an interruption).
    Returns:
        :class:`TrainResult` (metrics in percent).
    """
    if not isinstance(epochs_per_task, int) or epochs_per_task < 0:
        raise ValueError(f"epochs_per_task must be an int >= 0, got {epochs_per_task!r}")
    if not isinstance(batch_size, int) or batch_size < 2:
        raise ValueError(f"batch_size must be an int >= 2, got {batch_size!r}")
    if stream.num_tasks == 0:
        raise ValueError("the stream has no tasks")
    rank, world = _dist_info(distributed)
    model = strategy.model
    try:
        device = next(model.parameters()).device
    except StopIteration as exc:
        raise ValueError("the strategy's model has no parameters") from exc
    if strategy.buffer_transform is None:
        strategy.buffer_transform = stream.augment.weak()
    aug = stream.augment
    _broadcast_state(model, world)

    t_count = stream.num_tasks
    metrics = {m: ContinualMetrics(t_count) for m in modes}
    losses: list[float] = []
    start_task, elapsed = 0, 0.0
    ckpt = Path(checkpoint_dir) if checkpoint_dir is not None else None
    config = {"stream": stream.name, "num_tasks": t_count, "class_order": stream.class_order,
              "strategy": type(strategy).__name__, "modes": list(modes)}
    if ckpt is not None:
        ckpt.mkdir(parents=True, exist_ok=True)
        last = _latest_checkpoint(ckpt) if resume else None
        if last is not None:
            state = torch.load(last, map_location=device, weights_only=False)
            if state["config"] != config:
                raise ValueError(f"checkpoint {last} was written for {state['config']}, "
                                 f"not {config}")
            strategy.load_state_dict(state["strategy"])
            metrics = {m: ContinualMetrics.from_matrix(a) for m, a in state["metrics"].items()}
            losses, start_task, elapsed = state["losses"], state["task"] + 1, state["seconds"]

    joint = strategy.joint
    plan = [(-1, list(range(t_count)))] if joint else [(t, [t]) for t in range(t_count)]
    if joint and start_task > 0:
        plan = []
    plan = [p for p in plan if p[0] >= start_task or joint]
    if max_tasks is not None:
        plan = plan[:max_tasks]
    eval_cache: dict = {}

    from tqdm.auto import tqdm

    for t, task_ids in plan:
        t0 = time.perf_counter()
        task_seed = seed * 100_003 + (t if t >= 0 else t_count)
        gen = torch.Generator().manual_seed(task_seed)
        torch.manual_seed(task_seed + 7_919 * rank)
        data = [task_tensors(stream.train[i]) for i in task_ids]
        x_all = torch.cat([d[0] for d in data])
        y_all = torch.cat([d[1] for d in data])
        n = x_all.shape[0]
        strategy.begin_task(max(t, 0))
        steps_per_epoch = max(0, -(-n // (batch_size * world)))
        bar = tqdm(total=epochs_per_task * steps_per_epoch, disable=not progress or rank != 0,
                   desc=f"task {t + 1}/{t_count}" if t >= 0 else "multitask", leave=False)
        loss_sum = torch.zeros((), device=device)
        count = 0
        for _ in range(epochs_per_task):
            perm = torch.randperm(n, generator=gen)
            for s in range(0, n, batch_size * world):
                idx = perm[s:s + batch_size * world][rank::world]
                if idx.numel() < 2:
                    continue
                raw = x_all[idx].to(device, non_blocking=True)
                labels = y_all[idx].to(device, non_blocking=True)
                view1, view2 = aug(raw), aug(raw)
                loss_sum = loss_sum + strategy.observe(view1, view2, raw, labels)
                count += 1
                bar.update(1)
                if count % 25 == 0:
                    bar.set_postfix(loss=f"{float(loss_sum) / count:.3f}")
        bar.close()
        strategy.end_task(max(t, 0))
        losses.append(float(loss_sum) / max(count, 1))
        # all ranks use rank 0's BatchNorm statistics for evaluation
        _broadcast_state(model, world)

        def feature_fn(x: Tensor) -> Tensor:
            return strategy.features(aug.normalize(x))

        after = t if t >= 0 else t_count - 1
        res = evaluate(feature_fn, stream, after, modes, knn_k, temperature, device,
                       eval_batch_size, eval_cache)
        for m in modes:
            metrics[m].update(after, res[m])
        elapsed += time.perf_counter() - t0
        if ckpt is not None and rank == 0:
            tmp = ckpt / f".task_{after:03d}.pt.tmp"
            torch.save({"task": after, "config": config, "strategy": strategy.state_dict(),
                        "metrics": {m: v.matrix for m, v in metrics.items()},
                        "losses": losses, "seconds": elapsed}, tmp)
            tmp.replace(ckpt / f"task_{after:03d}.pt")
        if world > 1:
            import torch.distributed as dist

            dist.barrier()
    return TrainResult(metrics, losses, elapsed, strategy)
