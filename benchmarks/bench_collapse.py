"""pytest-benchmark timings for udl.collapse (run: pytest benchmarks/bench_collapse.py --benchmark-only).

Each group times udl against its peer on the same float32 feature batches (N=10,240, d=512, C=10):
the notebook port (per-class outer products, scipy svds, per-sample NCC loop) and the X^T X floor.
"""

from __future__ import annotations

import warnings

import pytest
import torch

from udl.collapse import CollapseStats, central_path, mse_decomposition, nc_metrics
from udl.collapse.bench import floor_xtx, make_features, udl_analysis
from udl.collapse.reference import notebook_metrics

N, D, C = 10_240, 512, 10


@pytest.fixture(scope="module")
def data():
    return make_features(N, D, C)


@pytest.fixture(scope="module")
def stats(data):
    batches, _, _ = data
    s = CollapseStats(C, D)
    for h, y in batches:
        s.update(h, y)
    return s


@pytest.mark.benchmark(group="collapse-analysis")
def test_udl_full_analysis(benchmark, data):
    batches, w, b = data
    out = benchmark(udl_analysis, batches, w, b, C)
    assert out["nc1"] > 0


@pytest.mark.benchmark(group="collapse-analysis")
def test_notebook_port_small(benchmark, data):
    batches, w, b = data
    small = batches[:5]            # its per-sample loop makes the full N too slow for a benchmark loop
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        out = benchmark.pedantic(notebook_metrics, args=(small, w, b, C, 5e-3), rounds=1, iterations=1)
    assert out["nc1_raw"] > 0


@pytest.mark.benchmark(group="collapse-analysis")
def test_udl_full_analysis_small(benchmark, data):
    batches, w, b = data
    out = benchmark(udl_analysis, batches[:5], w, b, C)
    assert out["nc1"] > 0


@pytest.mark.benchmark(group="collapse-stream")
def test_udl_stream_update(benchmark, data):
    batches, _, _ = data

    def run():
        s = CollapseStats(C, D)
        for h, y in batches:
            s.update(h, y)
        return s

    assert benchmark(run).num_samples == N


@pytest.mark.benchmark(group="collapse-stream")
def test_floor_xtx_float64(benchmark, data):
    assert benchmark(floor_xtx, data[0], torch.float64).shape == (D, D)


@pytest.mark.benchmark(group="collapse-stream")
def test_floor_xtx_float32(benchmark, data):
    assert benchmark(floor_xtx, data[0], torch.float32).shape == (D, D)


@pytest.mark.benchmark(group="collapse-metrics")
def test_nc_metrics(benchmark, stats, data):
    _, w, b = data
    assert benchmark(nc_metrics, stats, w, b)["rank"] == C - 1


@pytest.mark.benchmark(group="collapse-metrics")
def test_mse_decomposition(benchmark, stats, data):
    _, w, b = data
    assert benchmark(mse_decomposition, stats, w, b, 5e-3)["L_perp"] >= 0


@pytest.mark.benchmark(group="collapse-metrics")
def test_central_path(benchmark, stats, data):
    _, w, b = data
    assert benchmark(central_path, stats, w, b, 5e-3)["omega"].numel() == C - 1
