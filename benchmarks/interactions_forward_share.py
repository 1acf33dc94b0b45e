"""How much of each pipeline's time is the model's own forwards (the issue's full size, CPU).

Wraps the benchmark CNN in a timer and runs udl's ``multi_order_interaction`` and the official
per-pair pipeline port once each: the forward share bounds how much faster udl can possibly be.

    OMP_NUM_THREADS=1 python benchmarks/interactions_forward_share.py
"""

from __future__ import annotations

import time

import torch

from udl.interactions.bench import cifar_cnn
from udl.interactions.core import ORDER_RATIOS, multi_order_interaction, resolve_orders
from udl.interactions.official_port import official_interactions


class TimedModel(torch.nn.Module):
    def __init__(self, model: torch.nn.Module) -> None:
        super().__init__()
        self.model, self.seconds, self.images = model, 0.0, 0

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = time.perf_counter()
        out = self.model(x)
        self.seconds += time.perf_counter() - t
        self.images += x.shape[0]
        return out


def main(pairs: int = 50, contexts: int = 100) -> None:
    model = TimedModel(cifar_cnn()).eval()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        label = int(model.model(x).argmax())
    orders = resolve_orders(ORDER_RATIOS, 256).tolist()
    ij = torch.stack([torch.arange(pairs) * 5, torch.arange(pairs) * 5 + 1], 1)
    runs = {
        "official port": lambda: official_interactions(model, x[0], label, ij.numpy(), orders, contexts),
        "udl": lambda: multi_order_interaction(model, x, label, players=16, pairs=ij, orders=orders,
                                               num_contexts=contexts, baseline="zero", batch_size=400,
                                               generator=torch.Generator().manual_seed(1)),
    }
    for name, run in runs.items():
        model.seconds, model.images = 0.0, 0
        t = time.perf_counter()
        run()
        total = time.perf_counter() - t
        print(f"{name:14s} total {total:6.2f} s, model forwards {model.seconds:6.2f} s "
              f"({model.seconds / total:.1%}), {model.images} images")


if __name__ == "__main__":
    main()
