"""Where the time of one ``multi_order_interaction`` run goes (torch profiler), per batch size.

The benchmark's CNN, 16x16 grid players, 13 orders, 50 pairs, 100 contexts. Prints the wall time
of udl and of the plain-forward floor, then the ops with the most self device time (CUDA) or self
CPU time (CPU), so one can tell launch-bound (wall >> device time) from kernel-bound runs.

Run: ``python benchmarks/interactions_profile.py --device cuda --batch 400 5200``
"""

from __future__ import annotations

import argparse

import torch
from torch.profiler import ProfilerActivity, profile

from udl.bench import time_fn
from udl.interactions.bench import cifar_cnn, ours_and_floor
from udl.interactions.core import ORDER_RATIOS, resolve_orders


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--batch", type=int, nargs="+", default=[400])
    parser.add_argument("--rows", type=int, default=12, help="ops listed per batch size")
    args = parser.parse_args()
    dev = args.device
    model = cifar_cnn().to(dev)
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0)).to(dev)
    orders = resolve_orders(ORDER_RATIOS, 256).tolist()
    pairs = torch.stack([torch.arange(50) * 5, torch.arange(50) * 5 + 1], 1)
    cuda = torch.device(dev).type == "cuda"
    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if cuda else [])
    for bs in args.batch:
        ours, floor, forwards = ours_and_floor(model, x, 0, pairs, orders, 100, bs)
        t_ours = time_fn(ours, dev, repeat=5)
        t_floor = time_fn(floor, dev, repeat=5)
        print(f"batch {bs}: udl {t_ours:.4f} s, floor {t_floor:.4f} s, "
              f"udl/floor {t_ours / t_floor:.2f}x ({forwards} forwards)")
        with profile(activities=acts) as prof:
            ours()
            if cuda:
                torch.cuda.synchronize()
        key = "self_cuda_time_total" if cuda else "self_cpu_time_total"
        print(prof.key_averages().table(sort_by=key, row_limit=args.rows,
                                        max_name_column_width=48))


if __name__ == "__main__":
    main()
