"""Side-by-side timings for ``udl bench``: LUMP's per-step overhead over Finetune (the issue's
goal: ≤ 10%, i.e. ratio Finetune/LUMP ≥ 0.91), DER's, and the vectorised reservoir update vs a
per-example Python loop (the mammoth/UCL ``Buffer`` style)."""

from __future__ import annotations

import random
import statistics
import time
from collections.abc import Callable

import torch

from udl.bench import BenchRow, time_fn

__all__ = ["side_by_side", "LoopReservoir"]


class LoopReservoir:
    """Reference per-example reservoir (one Python iteration and one host draw per example)."""

    def __init__(self, capacity: int, shape: tuple[int, ...], device: str) -> None:
        self.capacity, self.seen = capacity, 0
        self.x = torch.zeros((capacity, *shape), device=device)
        self.v = torch.zeros((capacity, *shape), device=device)
        self.rng = random.Random(0)

    def add(self, x: torch.Tensor, v: torch.Tensor) -> None:
        for i in range(x.shape[0]):
            if self.seen < self.capacity:
                j = self.seen
            else:
                j = self.rng.randint(0, self.seen)
            if j < self.capacity:
                self.x[j] = x[i]
                self.v[j] = v[i]
            self.seen += 1


def _paired_time(ours: Callable[[], object], peer: Callable[[], object], device: str,
                 rounds: int, repeat: int) -> tuple[float, float]:
    """Interleave single calls of the two functions ``rounds × repeat`` times, so both see the
    same machine load, and return the medians. On the CPU the process CPU time is measured
    (single thread); elsewhere wall time with synchronisation (:func:`udl.bench.time_fn`)."""
    if torch.device(device).type != "cpu":
        t_o, t_p = [], []
        for _ in range(rounds):
            t_p.append(time_fn(peer, device, repeat=repeat, warmup=1))
            t_o.append(time_fn(ours, device, repeat=repeat, warmup=1))
        return statistics.median(t_o), statistics.median(t_p)
    peer()
    ours()
    t_o, t_p = [], []
    for _ in range(rounds * repeat):
        t0 = time.process_time()
        peer()
        t1 = time.process_time()
        ours()
        t2 = time.process_time()
        t_p.append(t1 - t0)
        t_o.append(t2 - t1)
    return statistics.median(t_o), statistics.median(t_p)


def _step_rows(quick: bool, device: str, backbone: str) -> list[BenchRow]:
    from udl.continual import DER, LUMP, Finetune, SimSiam, SmallCNN, resnet18_cifar
    from udl.continual.augment import cifar_augment, glyph_augment

    if backbone == "small":
        shape, batch, aug = (1, 20, 20), 100, glyph_augment()

        def make_bb():
            return SmallCNN(1, 8, 32)
        proj, pred, case = 64, 32, "SimSiam step, SmallCNN(8, 32-d), 1×20×20, batch 100"
    else:
        shape, batch, aug = (3, 32, 32), 16, cifar_augment()

        def make_bb():
            return resnet18_cifar()
        proj, pred = 2048, 512
        case = f"SimSiam step, ResNet-18 (CIFAR stem), 3×32×32, batch {batch}"
    torch.manual_seed(0)
    raw = torch.rand(batch, *shape, device=device)
    v1, v2 = aug(raw), aug(raw)

    def build(cls, **kw):
        torch.manual_seed(0)
        model = SimSiam(make_bb(), proj_dim=proj, pred_dim=pred).to(device)
        s = cls(model, buffer_transform=aug.weak(), **kw) if kw else cls(model)
        s.begin_task(0)
        return s

    fin = build(Finetune)
    lump = build(LUMP, buffer=256, alpha=0.4)
    der = build(DER, buffer=256, alpha=0.4)
    for _ in range(3):  # fill the buffers so every timed step replays
        lump.buffer.add(raw, view2=v2)
        der.buffer.add(raw, feat=torch.randn(batch, der.model.feat_dim, device=device))
    rounds, repeat = (4, 5) if quick else (8, 5)
    if backbone != "small":
        rounds, repeat = 2, 2
    rows = []
    for name, strat, goal in (("LUMP", lump, "ratio ≥ 0.91 (LUMP overhead ≤ 10%)"),
                              ("DER", der, "info")):
        ours_s, peer_s = _paired_time(lambda s=strat: s.observe(v1, v2, raw),
                                      lambda: fin.observe(v1, v2, raw), device, rounds, repeat)
        rows.append(BenchRow("continual", case, f"udl {name}.observe", "udl Finetune.observe",
                             ours_s, peer_s, goal,
                             note=f"overhead {100 * (ours_s / peer_s - 1):+.1f}% per step"))
    return rows


def _buffer_row(quick: bool, device: str) -> BenchRow:
    from udl.continual import ReservoirBuffer

    shape = (3, 32, 32)
    batch, steps = 256, (10 if quick else 40)
    xs = [torch.rand(batch, *shape, device=device) for _ in range(4)]

    def ours():
        b = ReservoirBuffer(256, device=device)
        for i in range(steps):
            b.add(xs[i % 4], view2=xs[(i + 1) % 4])

    def peer():
        b = LoopReservoir(256, shape, device)
        for i in range(steps):
            b.add(xs[i % 4], xs[(i + 1) % 4])

    ours_s, peer_s = _paired_time(ours, peer, device, 3, 3)
    return BenchRow("continual", f"reservoir add, capacity 256, {steps} batches of {batch}×3×32×32 "
                    "(+ stored view)", "udl ReservoirBuffer.add (vectorised, on device)",
                    "per-example Python loop (mammoth/UCL Buffer style)", ours_s, peer_s,
                    "ratio > 1", note="same stream; both keep raw + view 2")


def side_by_side(quick: bool, device: str) -> list[BenchRow]:
    """Rows: LUMP and DER step vs Finetune step (small CNN; ResNet-18 in full mode) and the
    reservoir update vs a loop. CPU timings use one thread and process CPU time (the machine
    may be shared; wall time there is mostly other people's load)."""
    n = torch.get_num_threads()
    if torch.device(device).type == "cpu":
        torch.set_num_threads(1)
    try:
        rows = _step_rows(quick, device, "small")
        if not quick or torch.device(device).type == "cuda":
            rows += _step_rows(quick, device, "resnet18")
        rows.append(_buffer_row(quick, device))
        return rows
    finally:
        torch.set_num_threads(n)
