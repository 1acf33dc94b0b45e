"""Side-by-side timings for ``udl bench --only collapse``.

Each case times, on the same in-memory float32 feature batches: udl's full analysis (streaming float64
statistics, NC1-NC4 with the NC4 second pass, the MSE decomposition, central path and omega) against
(a) a port of the reference notebook's computation (:mod:`udl.collapse.reference`: per-class
outer products, scipy ``svds``, a per-sample NCC loop) and (b) the floor of one pass of X^T X over
the same batches (float64 and float32 GEMMs).
"""

from __future__ import annotations

import torch

from udl.bench import BenchRow, peak_memory, time_fn

_BATCH = 512


def make_features(n: int, d: int, c: int, device: str = "cpu", seed: int = 0):
    """Near-collapse synthetic features (float32 batches), a classifier and the label vector."""
    g = torch.Generator().manual_seed(seed)
    mu = torch.randn(c, d, generator=g) * 2.0
    y = torch.arange(n) % c
    h = torch.empty(n, d)
    for i in range(0, n, 8192):          # chunked to keep the temporary small
        j = slice(i, i + 8192)
        h[j] = mu[y[j]] + 0.3 * torch.randn(h[j].shape, generator=g)
    w = (mu - mu.mean(0)) / (mu - mu.mean(0)).norm(dim=1, keepdim=True) ** 2
    b = torch.zeros(c)
    h, y, w, b = h.to(device), y.to(device), w.to(device), b.to(device)
    batches = [(h[i:i + _BATCH], y[i:i + _BATCH]) for i in range(0, n, _BATCH)]
    return batches, w, b


def udl_analysis(batches, w, b, c: int, lam: float = 5e-3) -> dict:
    """What a user runs per analysis: stream, then NC1-NC4 (+ second pass), decomposition, omega."""
    from udl.collapse import CollapseStats, central_path, nc_metrics

    d = w.shape[1]
    stats = CollapseStats(c, d, device=w.device)
    for h, y in batches:
        stats.update(h, y)
    out = nc_metrics(stats, w, b, data=batches)
    out.update(central_path(stats, w, b, lam))
    return out


def floor_xtx(batches, dtype: torch.dtype) -> torch.Tensor:
    d = batches[0][0].shape[1]
    acc = torch.zeros(d, d, dtype=dtype, device=batches[0][0].device)
    for h, _ in batches:
        hh = h.to(dtype)
        acc.addmm_(hh.T, hh)
    return acc


def _case_rows(n: int, d: int, c: int, n_peer: int | None, device: str, repeat: int,
               memory: bool = True) -> list[BenchRow]:
    from udl.collapse.reference import notebook_metrics

    case = f"N={n:,} d={d} C={c}"
    batches, w, b = make_features(n, d, c, device)
    ours = time_fn(lambda: udl_analysis(batches, w, b, c), device, repeat=repeat, warmup=1)
    rows = []
    if n_peer:
        n_p = min(n, n_peer)
        pbatches = []
        for k, (h, y) in enumerate(batches):
            left = n_p - k * _BATCH
            if left <= 0:
                break
            pbatches.append((h[:left], y[:left]))
        ours_p = ours if n_p == n else time_fn(lambda: udl_analysis(pbatches, w, b, c), device,
                                                repeat=repeat, warmup=1)
        peer = time_fn(lambda: notebook_metrics(pbatches, w, b, c, 5e-3), device, repeat=1, warmup=0)
        note = "" if n_p == n else (f"peer run on N={n_p:,} (its per-sample loops make the full N "
                                    "too slow on 2 cores); ")
        if memory:
            mem_ours = peak_memory(lambda: udl_analysis(pbatches, w, b, c), device)
            mem_peer = peak_memory(lambda: notebook_metrics(pbatches, w, b, c, 5e-3), device)
            note += f"peak memory beyond the features: udl {mem_ours / 2**20:.0f} MiB, " \
                    f"peer {mem_peer / 2**20:.0f} MiB"
        rows.append(BenchRow("collapse", f"N={n_p:,} d={d} C={c}", "udl.collapse full analysis",
                             "notebook port (outer products, svds, NCC loop)", ours_p, peer,
                             goal=">= 20x", note=note.rstrip("; ")))
    for dtype, name in ((torch.float64, "float64"), (torch.float32, "float32")):
        fl = time_fn(lambda dtype=dtype: floor_xtx(batches, dtype), device, repeat=repeat, warmup=1)
        rows.append(BenchRow("collapse", case, "udl.collapse full analysis",
                             f"floor: one pass of X^T X ({name})", ours, fl,
                             goal="<= 3x slower (ratio >= 0.33)",
                             note="ratio < 1 means udl is slower than the floor"))
    return rows


def side_by_side(quick: bool, device: str = "cpu") -> list[BenchRow]:
    rows: list[BenchRow] = []
    if quick:
        rows += _case_rows(20_000, 512, 10, n_peer=2_560, device=device, repeat=3)
    else:
        rows += _case_rows(200_000, 512, 10, n_peer=10_240, device=device, repeat=3)
        # the second size at the full N (the notebook port only on a slice: it needs minutes per
        # thousand samples at d=2048, ~4 min for 10,000)
        rows += _case_rows(200_000, 2048, 100, n_peer=10_000, device=device, repeat=1)
    return rows
