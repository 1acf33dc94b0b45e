"""pytest-benchmark: forward+backward of DiffStride2d (S=2, float32) and its baselines.

Run: .venv/bin/python -m pytest benchmarks/bench_diffstride.py --benchmark-only
Side-by-side ratios (same cases): .venv/bin/udl bench --only diffstride [--quick]
"""

from __future__ import annotations

import pytest
import torch

from udl.diffstride.bench import make_cases

SHAPES = [(8, 64, 56, 56), (32, 64, 32, 32)]
IMPLS = ["udl", "eager", "gemm", "fft_floor", "conv3x3_s2", "avgpool2"]


@pytest.mark.parametrize("shape", SHAPES, ids=lambda s: "x".join(map(str, s)))
@pytest.mark.parametrize("impl", IMPLS)
def test_diffstride_fwd_bwd(benchmark, impl, shape):
    torch.manual_seed(0)
    fn = make_cases(shape, "cpu")[impl]
    benchmark.group = "diffstride " + "x".join(map(str, shape))
    benchmark.pedantic(fn, rounds=5, warmup_rounds=1)
