"""pytest-benchmark timings for udl.continual: one SSL step per strategy, the reservoir update
and the KNN evaluation. Run: .venv/bin/python -m pytest benchmarks/bench_continual.py --benchmark-only
"""

from __future__ import annotations

import pytest
import torch

import udl.continual as C


@pytest.fixture(autouse=True, scope="module")
def _one_thread():
    n = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(n)


@pytest.fixture(scope="module")
def batch():
    torch.manual_seed(0)
    aug = C.glyph_augment()
    raw = torch.rand(100, 1, 20, 20)
    return raw, aug(raw), aug(raw), aug


def _strategy(name: str, aug):
    torch.manual_seed(0)
    model = C.SimSiam(C.SmallCNN(1, 8, 32), proj_dim=64, pred_dim=32)
    if name == "finetune":
        s = C.Finetune(model)
    elif name == "lump":
        s = C.LUMP(model, buffer=256, alpha=0.4, buffer_transform=aug.weak())
    elif name == "der":
        s = C.DER(model, buffer=256, buffer_transform=aug.weak())
    else:
        s = C.SI(model)
        s.end_task(0)  # importances present: the penalty path is timed
    s.begin_task(1)
    return s


@pytest.mark.parametrize("name", ["finetune", "lump", "der", "si"])
def test_bench_step(benchmark, batch, name):
    raw, v1, v2, aug = batch
    s = _strategy(name, aug)
    for _ in range(3):
        s.observe(v1, v2, raw)  # fills replay buffers
    benchmark(s.observe, v1, v2, raw)


def test_bench_reservoir_add(benchmark):
    buf = C.ReservoirBuffer(256)
    x = torch.rand(64, 3, 32, 32)
    for _ in range(5):
        buf.add(x, view2=x)
    benchmark(buf.add, x, view2=x)


def test_bench_knn(benchmark):
    g = torch.Generator().manual_seed(0)
    bank, query = torch.randn(5000, 128, generator=g), torch.randn(1000, 128, generator=g)
    labels = torch.randint(0, 10, (5000,), generator=g)
    benchmark(C.knn_predict, bank, labels, query, 200, 0.1)
