"""pytest-benchmark timings of udl.convex (run: pytest benchmarks/bench_convex.py --benchmark-only).

Small, fixed problems so that the numbers are comparable between runs on a shared CPU.
"""

from __future__ import annotations

import warnings

import pytest
import torch

import udl.convex as cx


def _data(n, d, seed=0):
    g = torch.Generator().manual_seed(seed)
    return (torch.randn(n, d, dtype=torch.float64, generator=g),
            torch.randn(n, dtype=torch.float64, generator=g))


@pytest.fixture(autouse=True)
def _one_thread():
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


def test_enumerate_patterns_n12_d4(benchmark):
    X, _ = _data(12, 4)
    D = benchmark(cx.enumerate_patterns, X)
    assert D.shape[1] == 464


def test_sample_patterns_vertex_n200_d10(benchmark):
    X, _ = _data(200, 10)
    D = benchmark(cx.sample_patterns, X, 100, "vertex", torch.Generator().manual_seed(0))
    assert D.shape[1] <= 100


@pytest.mark.parametrize("solver", ["clarabel", "torch"])
def test_fit_exact_n10_d3(benchmark, solver):
    if solver != "torch":
        pytest.importorskip("cvxpy")
    X, y = _data(10, 3, seed=1)

    def run():
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            return cx.ConvexReLU(0.1, solver=solver, tol=1e-6).fit(X, y)

    res = benchmark.pedantic(run, rounds=3, iterations=1)
    assert res.value > 0


def test_certify_exact_n10_d3(benchmark):
    pytest.importorskip("cvxpy")
    X, y = _data(10, 3, seed=1)
    res = cx.ConvexReLU(0.1).fit(X, y)
    cert = benchmark(cx.certify, res.to_network(), X, y, 0.1)
    assert cert.is_global
