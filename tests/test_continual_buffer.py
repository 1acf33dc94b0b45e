"""Reservoir buffer: inclusion probability, sequential equivalence, state, errors."""

from __future__ import annotations

import pytest
import torch

import udl.continual as C

pytestmark = pytest.mark.usefixtures("one_thread")


def _sequential_reference(n: int, capacity: int, batch: int, seed: int) -> list[int]:
    """Item-by-item reservoir with the same random draws as the vectorised buffer."""
    g = torch.Generator().manual_seed(seed)
    slots: list[int] = []
    seen = 0
    for start in range(0, n, batch):
        items = list(range(start, min(n, start + batch)))
        fill = max(0, min(len(items), capacity - seen))
        for it in items[:fill]:
            slots.append(it)
        rest = items[fill:]
        if rest:
            u = torch.rand(len(rest), generator=g, dtype=torch.float64)
            for k, it in enumerate(rest):
                j = int(u[k] * (seen + fill + k + 1))
                if j < capacity:
                    slots[j] = it
        seen += len(items)
    return slots


@pytest.mark.parametrize("sync_free", [None, True])
@pytest.mark.parametrize("batch", [1, 7, 32])
def test_vectorised_equals_sequential(batch, sync_free):
    n, cap = 300, 40
    buf = C.ReservoirBuffer(cap)
    buf.sync_free = sync_free  # True: the accelerator path (scratch-row writes), also on CPU
    g = torch.Generator().manual_seed(5)
    for s in range(0, n, batch):
        ids = torch.arange(s, min(n, s + batch))
        buf.add(ids.float().view(-1, 1), generator=g, tag=ids)
    assert len(buf) == cap and buf.seen == n
    assert buf["tag"].tolist() == _sequential_reference(n, cap, batch, 5)
    assert torch.equal(buf["x"].view(-1).long(), buf["tag"])  # extras stay aligned


def test_inclusion_probability_chi_square():
    n, cap, runs = 200, 20, 600
    counts = torch.zeros(n)
    g = torch.Generator().manual_seed(0)
    for _ in range(runs):
        buf = C.ReservoirBuffer(cap)
        for s in range(0, n, 16):
            buf.add(torch.arange(s, min(n, s + 16)).float(), generator=g)
        counts[buf["x"].long()] += 1
    assert counts.sum() == cap * runs
    expected = runs * cap / n
    chi2 = ((counts - expected) ** 2 / expected).sum().item()
    # 199 degrees of freedom: mean 199, sd ~20; 300 is beyond 4.5 sd
    assert chi2 < 300, chi2
    # early and late items are equally likely (no bias towards the fill phase)
    assert abs(counts[:cap].mean() - counts[-cap:].mean()) < 0.2 * expected


def test_sample_and_state_dict_roundtrip():
    buf = C.ReservoirBuffer(10)
    assert len(buf) == 0 and buf.sample(4) == {}
    buf.add(torch.randn(6, 3, 4, 4), view2=torch.randn(6, 3, 4, 4))
    assert len(buf) == 6
    s = buf.sample(8, torch.Generator().manual_seed(0))
    assert s["x"].shape == (6, 3, 4, 4) and s["view2"].shape == (6, 3, 4, 4)
    idx = buf.sample_indices(6, torch.Generator().manual_seed(1))
    assert sorted(idx.tolist()) == list(range(6))
    buf.add(torch.randn(30, 3, 4, 4), view2=torch.randn(30, 3, 4, 4))
    other = C.ReservoirBuffer(10)
    other.load_state_dict(buf.state_dict())
    assert other.seen == 36 and len(other) == 10
    assert torch.equal(other["x"], buf["x"]) and torch.equal(other["view2"], buf["view2"])
    buf.add(torch.empty(0, 3, 4, 4), view2=torch.empty(0, 3, 4, 4))  # empty batch: no-op
    assert buf.seen == 36


def test_buffer_bad_input():
    for cap in (0, -3, 2.5):
        with pytest.raises(ValueError, match="capacity"):
            C.ReservoirBuffer(cap)
    buf = C.ReservoirBuffer(4)
    buf.add(torch.randn(2, 3), feat=torch.randn(2, 5))
    with pytest.raises(ValueError, match="leading"):
        buf.add(torch.randn(2, 3), feat=torch.randn(3, 5))
    with pytest.raises(ValueError, match="stores"):
        buf.add(torch.randn(2, 3))
    with pytest.raises(ValueError, match="per-example shape"):
        buf.add(torch.randn(2, 4), feat=torch.randn(2, 5))
    with pytest.raises(ValueError, match="n must be"):
        buf.sample_indices(-1)
