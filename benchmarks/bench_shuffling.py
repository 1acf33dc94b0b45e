"""pytest-benchmark: udl.shuffling simulator vs a per-seed Python loop, and the order hash.

Run: .venv/bin/python -m pytest benchmarks/bench_shuffling.py --benchmark-only
"""

from __future__ import annotations

import pytest
import torch

from udl.shuffling import orders, problems, simulate
from udl.shuffling.bench import python_loop

P = problems.skewed_quadratic(16, x0=0.3)
S, K, M = 1000, 8, 4


@pytest.mark.parametrize("algorithm, B", [("minibatch", 1), ("local", 4)])
def test_simulate_vectorised(benchmark, algorithm, B):
    res = benchmark(simulate, P, algorithm, "rr", M=M, B=B, K=K, lr=0.01, seeds=S)
    assert res.x.shape == (S, 1)


@pytest.mark.parametrize("algorithm, B", [("minibatch", 1), ("local", 4)])
def test_python_loop_10_seeds(benchmark, algorithm, B):
    """The peer: multiply by S/10 to compare with the vectorised run on S seeds."""
    out = benchmark.pedantic(python_loop, args=(P, algorithm, "rr", M, B, K, 0.01, range(10),
                                                0.3), rounds=2, iterations=1)
    assert len(out) == 10


def test_orders_block(benchmark):
    seeds = torch.arange(S)
    out = benchmark(orders, "syncshuf", M, 16, 3, seeds)
    assert out.shape == (S, M, 16)
