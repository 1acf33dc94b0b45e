"""Side-by-side benchmarks against peers, shared by ``udl bench`` and ``benchmarks/``.

A method joins ``udl bench`` by shipping ``udl/<method>/bench.py`` with::

    def side_by_side(quick: bool, device: str) -> list[BenchRow]: ...

Each row compares one udl implementation with one peer *measured in the same run*; the
ratio is ``peer_seconds / ours_seconds`` (> 1 means udl is faster).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from udl._plugins import find_plugins, load_plugin

__all__ = ["BenchRow", "time_fn", "peak_memory", "run_benchmarks", "format_table", "device_name"]


@dataclasses.dataclass
class BenchRow:
    """udl vs one peer on one case. ``ratio`` = peer / ours (> 1: udl faster)."""

    method: str
    case: str
    ours: str
    peer: str
    ours_s: float
    peer_s: float
    goal: str = ""
    note: str = ""

    @property
    def ratio(self) -> float:
        return self.peer_s / self.ours_s if self.ours_s > 0 else float("inf")

    def as_dict(self) -> dict[str, Any]:
        return {**dataclasses.asdict(self), "ratio": self.ratio}


def _sync(device: str | torch.device) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def time_fn(fn: Callable[[], Any], device: str | torch.device = "cpu", repeat: int = 5,
            warmup: int = 1, min_time: float = 0.0) -> float:
    """Median wall time of ``fn()`` in seconds, with warm-up and CUDA synchronisation."""
    for _ in range(warmup):
        fn()
    _sync(device)
    times = []
    start_all = time.perf_counter()
    while len(times) < repeat or (time.perf_counter() - start_all) < min_time:
        t0 = time.perf_counter()
        fn()
        _sync(device)
        times.append(time.perf_counter() - t0)
        if len(times) >= 1000:
            break
    times.sort()
    return times[len(times) // 2]


def peak_memory(fn: Callable[[], Any], device: str | torch.device = "cpu") -> int:
    """Peak bytes allocated while running ``fn`` (CUDA: allocator stats; CPU: profiler)."""
    device = torch.device(device)
    if device.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
        base = torch.cuda.memory_allocated()
        fn()
        torch.cuda.synchronize()
        return torch.cuda.max_memory_allocated() - base
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], profile_memory=True) as prof:
        fn()
    # Running sum of allocations/frees in event order gives the peak.
    events = sorted(
        (e for e in prof.events() if getattr(e, "cpu_memory_usage", 0)),
        key=lambda e: e.time_range.start,
    )
    cur = peak = 0
    for e in events:
        cur += e.cpu_memory_usage
        peak = max(peak, cur)
    return peak


def device_name(device: str = "cpu") -> str:
    if torch.device(device).type == "cuda":
        return torch.cuda.get_device_name()
    return f"{platform.processor() or platform.machine()} ({torch.get_num_threads()} threads)"


def run_benchmarks(only: list[str] | None = None, quick: bool = False,
                   device: str = "cpu") -> list[BenchRow]:
    plugins = find_plugins("bench")
    if only:
        unknown = sorted(set(only) - set(plugins))
        if unknown:
            raise ValueError(f"--only: no benchmarks for {unknown}; available: {sorted(plugins)}")
        plugins = {k: v for k, v in plugins.items() if k in only}
    rows: list[BenchRow] = []
    for module in plugins.values():
        rows.extend(load_plugin(module).side_by_side(quick=quick, device=device))
    return rows


def format_table(rows: list[BenchRow]) -> str:
    header = ["method", "case", "udl", "peer", "udl s", "peer s", "peer/udl", "goal"]
    data = [[r.method, r.case, r.ours, r.peer, f"{r.ours_s:.4g}", f"{r.peer_s:.4g}",
             f"{r.ratio:.2f}x", r.goal] for r in rows]
    widths = [max(len(str(x)) for x in col) for col in zip(header, *data)]
    lines = ["  ".join(str(c).ljust(w) for c, w in zip(header, widths))]
    lines.append("  ".join("-" * w for w in widths))
    lines += ["  ".join(str(c).ljust(w) for c, w in zip(row, widths)) for row in data]
    return "\n".join(lines)


def save_rows(rows: list[BenchRow], path: str | Path, device: str = "cpu") -> Path:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    payload = {
        "device": device_name(device),
        "torch": torch.__version__,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "rows": [r.as_dict() for r in rows],
    }
    path.write_text(json.dumps(payload, indent=2))
    return path
