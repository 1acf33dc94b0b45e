"""pytest-benchmark timings for udl.interactions
(run: pytest benchmarks/bench_interactions.py --benchmark-only).

Groups:
* ``masked``: writing the 4 masked inputs of 100 contexts of a 3×32×32 image with 16×16 grid
  players (n = 256): the fused native kernel vs the pure-torch reference (float mask, gather,
  where) for the same contexts.
* ``reduce``: mean/variance of Δ for 650 (pair, order) groups of 100 contexts: native vs torch.
* ``pipeline``: a small end-to-end I^(m) estimate (CNN, 4 pairs, 13 orders, 10 contexts) vs the
  port of the official per-pair pipeline and vs the same number of plain forwards.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from udl.interactions import grid_players, multi_order_interaction, resolve_orders
from udl.interactions.bench import cifar_cnn
from udl.interactions.official_port import official_interactions
from udl.ops import interactions as ops
from udl.ops.interactions_reference import masked_inputs_reference


@pytest.fixture(scope="module")
def image_case():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(3, 32, 32, generator=g)
    pm = grid_players(32, 32, 16).expand(3, 32, 32).contiguous()
    pairs = torch.tensor([[0, 1], [40, 57]])
    rows = torch.stack([torch.zeros(100, dtype=torch.long), torch.full((100,), 127),
                        torch.arange(100), torch.zeros(100, dtype=torch.long)], dim=1)
    _, ctx = ops.masked_inputs(x, torch.zeros_like(x), pm, pairs, rows, 256, 1)
    return x, torch.zeros_like(x), pm, pairs, rows, ctx


@pytest.mark.benchmark(group="masked")
def test_masked_native(benchmark, image_case):
    x, b, pm, pairs, rows, _ = image_case
    benchmark(ops.masked_inputs, x, b, pm, pairs, rows, 256, 1)


@pytest.mark.benchmark(group="masked")
def test_masked_torch_reference(benchmark, image_case):
    x, b, pm, pairs, rows, ctx = image_case
    benchmark(masked_inputs_reference, x, b, pm, pairs, rows, ctx, 256)


@pytest.fixture(scope="module")
def reduce_case():
    values = torch.randn(65_000, 4, generator=torch.Generator().manual_seed(0))
    offsets = torch.arange(0, 65_001, 100)
    return values, offsets


def _torch_reduce(values, offsets):
    d = (values[:, 0] - values[:, 1] - values[:, 2] + values[:, 3]).double()
    d = d.view(offsets.numel() - 1, -1)  # equal group sizes here
    return d.mean(1), d.var(1)


@pytest.mark.benchmark(group="reduce")
def test_reduce_native(benchmark, reduce_case):
    benchmark(ops.reduce_deltas, *reduce_case)


@pytest.mark.benchmark(group="reduce")
def test_reduce_torch(benchmark, reduce_case):
    benchmark(_torch_reduce, *reduce_case)


@pytest.fixture(scope="module")
def pipeline_case():
    model = cifar_cnn()
    x = torch.randn(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    pairs = torch.tensor([[0, 1], [5, 6], [10, 11], [15, 16]])
    return model, x, pairs, resolve_orders(None, 256).tolist()


@pytest.mark.benchmark(group="pipeline")
def test_pipeline_udl(benchmark, pipeline_case):
    model, x, pairs, orders = pipeline_case
    benchmark.pedantic(multi_order_interaction, args=(model, x, 0, 16),
                       kwargs=dict(pairs=pairs, orders=orders, num_contexts=10, batch_size=400),
                       rounds=2, iterations=1)


@pytest.mark.benchmark(group="pipeline")
def test_pipeline_official_port(benchmark, pipeline_case):
    model, x, pairs, orders = pipeline_case
    benchmark.pedantic(official_interactions, args=(model, x[0], 0, pairs.numpy(), orders, 10),
                       rounds=2, iterations=1)


@pytest.mark.benchmark(group="pipeline")
def test_pipeline_forward_floor(benchmark, pipeline_case):
    model, x, _, _ = pipeline_case
    forwards = 4 * 4 * (11 * 10 + 2)
    batch = x.expand(400, -1, -1, -1).contiguous()

    def floor():
        with torch.no_grad():
            for s in range(0, forwards, 400):
                model(batch[: min(400, forwards - s)])

    benchmark.pedantic(floor, rounds=2, iterations=1)


def test_official_port_agrees_with_udl_at_exact_orders(pipeline_case):
    # At m = 0 and m = n-2 there is one context: both pipelines must give the same Î.
    model, x, pairs, _ = pipeline_case
    with torch.no_grad():
        label = int(model(x).argmax())
    ours = multi_order_interaction(model, x, label, 16, pairs=pairs, orders=[0, 254],
                                   num_contexts=3)
    theirs = official_interactions(model, x[0], label, pairs.numpy(), [0, 254], 3)
    np.testing.assert_allclose(ours.I[0].numpy(), theirs, rtol=1e-4, atol=1e-5)
