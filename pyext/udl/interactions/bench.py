"""Side-by-side benchmarks of ``udl.interactions`` (``udl bench --only interactions``).

1. I^(m) on a small CIFAR-style CNN, 16×16 grid players (n = 256), the official 13 orders:
   udl (fused kernels, batched) vs (a) a faithful port of the official per-pair pipeline and
   (b) the floor: the same number of plain batched forwards of the model.
2. Shapley interaction index on a tabular MLP with n = 14 players: udl's order-stratified estimate
   (mean of Î^(m) over all orders) vs shapiq's approximators at the same number of model
   evaluations; errors against exact enumeration are in the row notes.
"""

from __future__ import annotations

import warnings

import numpy as np
import torch
from torch import nn

from udl.bench import BenchRow, time_fn
from udl.interactions.core import ORDER_RATIOS, multi_order_interaction, resolve_orders

__all__ = ["side_by_side", "cifar_cnn", "sizes", "ours_and_floor"]


def cifar_cnn(seed: int = 0) -> nn.Module:
    """A small CIFAR-style CNN (3×32×32 -> 10 logits, ~0.2 MMAC per image)."""
    torch.manual_seed(seed)
    return nn.Sequential(
        nn.Conv2d(3, 8, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(8, 16, 3, stride=2, padding=1), nn.ReLU(),
        nn.Conv2d(16, 32, 3, stride=2, padding=1), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(32, 10)).eval()


def sizes(quick: bool) -> dict[str, int]:
    """Problem sizes: the issue's full size (50 pairs × 100 contexts) or the quick one."""
    return {"pairs": 4, "contexts": 10} if quick else {"pairs": 50, "contexts": 100}


def _interleaved(fns, device: str, repeat: int) -> list[float]:
    """Median times of ``fns``, run alternately (fair under fluctuating machine load)."""
    times: list[list[float]] = [[] for _ in fns]
    for _ in range(repeat):
        for t, fn in zip(times, fns):
            t.append(time_fn(fn, device, repeat=1, warmup=0))
    return [sorted(t)[len(t) // 2] for t in times]


# On a GPU a batch of 400 small images is all launch overhead (the floor itself runs at ~0.3 ms a
# batch), so the GPU rows also use batches of all 13 orders x 100 contexts x 4 inputs (and 4x
# that), where the forwards rather than the launches set the time. Both sides always use the
# same batch size.
GPU_BATCHES = (5200, 20800)


def ours_and_floor(model, x, label, pairs, orders, contexts: int, batch_size: int):
    """``(ours, floor, forwards)``: udl's run as a thunk, and the same number of plain forwards of
    the model at the same batch size (the floor)."""
    def ours():
        return multi_order_interaction(model, x, label, players=16, pairs=pairs, orders=orders,
                                       num_contexts=contexts, baseline="zero",
                                       batch_size=batch_size,
                                       generator=torch.Generator().manual_seed(1))

    forwards = ours().num_forwards
    batch = x.expand(batch_size, -1, -1, -1).contiguous()

    def floor():
        with torch.no_grad():
            for s in range(0, forwards, batch_size):
                model(batch[: min(batch_size, forwards - s)])

    return ours, floor, forwards


def _cnn_rows(quick: bool, device: str) -> list[BenchRow]:
    from udl.interactions.official_port import official_interactions

    sz = sizes(quick)
    model = cifar_cnn().to(device)
    g = torch.Generator().manual_seed(0)
    x = torch.randn(1, 3, 32, 32, generator=g).to(device)
    with torch.no_grad():
        label = int(model(x).argmax())
    orders = resolve_orders(ORDER_RATIOS, 256).tolist()
    pairs = torch.stack([torch.arange(sz["pairs"]) * 5, torch.arange(sz["pairs"]) * 5 + 1], 1)
    case = (f"CNN 3x32x32, n=256 (16x16 grid), 13 orders, {sz['pairs']} pairs, "
            f"{sz['contexts']} contexts")
    batch_sizes = [400] if torch.device(device).type == "cpu" else [400, *GPU_BATCHES]
    rows: list[BenchRow] = []
    for bs in batch_sizes:
        ours, floor, forwards = ours_and_floor(model, x, label, pairs, orders, sz["contexts"], bs)
        repeat = 5 if quick or device != "cpu" else 2
        t_ours, t_floor = _interleaved([ours, floor], device, repeat)
        rows.append(BenchRow("interactions", f"{case}, batch {bs}", "udl.multi_order_interaction",
                             "plain forwards (floor)", t_ours, t_floor,
                             goal="ratio >= 0.87 (udl <= 1.15x floor)",
                             note=f"{forwards} forwards, batch {bs}"))
    # the official pipeline on the same device (one pair and order per forward, 4 x contexts
    # inputs: its batch is fixed by its design; on a GPU the masks go over and the logits back)
    pairs_np = pairs.numpy()
    official_n = 4 * sz["pairs"] * sz["contexts"] * len(orders)

    def official():
        return official_interactions(model, x[0], label, pairs_np, orders, sz["contexts"])

    t_off = time_fn(official, device, repeat=1 if not quick else 3, warmup=0)
    rows.append(BenchRow("interactions", f"{case}, batch {batch_sizes[-1]}",
                         "udl.multi_order_interaction", "official per-pair pipeline (port)",
                         t_ours, t_off, goal="ratio >= 3",
                         note=f"official: {official_n} forwards (K copies at m=0, n-2), "
                              f"udl: {forwards} (batch {batch_sizes[-1]})"))
    return rows


def _shapiq_rows(quick: bool, device: str) -> list[BenchRow]:
    try:
        import shapiq
    except ImportError:  # pragma: no cover - peer missing
        return []
    from udl.interactions.core import value_from_logits
    from udl.interactions.exact import exact_interactions

    n = 14
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(n, 64), nn.Tanh(), nn.Linear(64, 64), nn.Tanh(),
                        nn.Linear(64, 3)).eval()
    x = torch.randn(1, n)
    base = torch.zeros(n)

    def value_fn(mask: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            inp = torch.where(mask, x, base)
            return value_from_logits(net(inp), torch.zeros(mask.shape[0], dtype=torch.long))

    exact = exact_interactions(value_fn, n).shapley_interaction
    a, b = torch.triu_indices(n, n, offset=1)
    true = exact[a, b].numpy()
    all_pairs = torch.stack([a, b], 1)
    K = 2 if quick else 3  # full: 12,740 evaluations, still below 2^14 (shapiq turns exact)
    state = {}

    def ours():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            res = multi_order_interaction(net, x, 0, torch.arange(n), pairs=all_pairs,
                                          orders=list(range(n - 1)), num_contexts=K,
                                          baseline=base, batch_size=4096,
                                          generator=torch.Generator().manual_seed(2))
        state["ours"] = res
        return res

    ours()
    budget = state["ours"].num_forwards
    t_ours = time_fn(ours, device, repeat=3, warmup=0)
    err_ours = float(np.sqrt(np.mean((state["ours"].mean_interaction()[0].numpy() - true) ** 2)))

    def game(coalitions: np.ndarray) -> np.ndarray:
        mask = torch.as_tensor(np.atleast_2d(coalitions), dtype=torch.bool)
        return value_fn(mask).double().numpy()

    rows = []
    approximators = {
        "shapiq KernelSHAPIQ(SII)": lambda: shapiq.KernelSHAPIQ(n=n, max_order=2, index="SII",
                                                                random_state=0),
        "shapiq PermutationSamplingSII": lambda: shapiq.PermutationSamplingSII(
            n=n, max_order=2, index="SII", random_state=0),
        "shapiq SVARMIQ(SII)": lambda: shapiq.SVARMIQ(n=n, max_order=2, index="SII",
                                                      random_state=0),
    }
    for name, make in approximators.items():
        out = {}

        def peer(make=make, out=out):
            out["iv"] = make().approximate(budget=budget, game=game)

        t_peer = time_fn(peer, device, repeat=1, warmup=0)
        est = np.array([out["iv"][(int(i), int(j))] for i, j in zip(a, b)])
        err_peer = float(np.sqrt(np.mean((est - true) ** 2)))
        rows.append(BenchRow(
            "interactions", f"SII, MLP n={n}, budget {budget} evaluations (all 91 pairs)",
            "udl order-stratified SII", name, t_ours, t_peer,
            note=f"RMSE vs exact: udl {err_ours:.2e}, peer {err_peer:.2e} "
                 f"(RMS of true SII {float(np.sqrt(np.mean(true ** 2))):.2e}); udl also returns "
                 f"every I^(m)"))
    return rows


def side_by_side(quick: bool, device: str) -> list[BenchRow]:
    rows = _cnn_rows(quick, device)
    if device == "cpu":
        rows += _shapiq_rows(quick, device)
    return rows
