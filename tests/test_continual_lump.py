"""LUMP mixup arithmetic, λ sampling and the LUMP strategy."""

from __future__ import annotations

import pytest
import torch

import udl.continual as C

pytestmark = pytest.mark.usefixtures("one_thread")


def test_lump_mix_arithmetic():
    x = torch.arange(12.0).view(4, 3)
    b = torch.full((4, 3), 100.0)
    out = C.lump_mix(x, b, 0.25)
    torch.testing.assert_close(out, 0.25 * x + 75.0)
    out = C.lump_mix(x, b, torch.tensor(1.0))
    torch.testing.assert_close(out, x)


def test_lump_mix_buffer_smaller_than_batch():
    x = torch.ones(5, 2)
    b = torch.zeros(2, 2)
    out = C.lump_mix(x, b, 0.3)
    torch.testing.assert_close(out[:2], torch.full((2, 2), 0.3))
    torch.testing.assert_close(out[2:], x[2:])  # the rest stays clean
    assert torch.equal(C.lump_mix(x, torch.zeros(0, 2), 0.3), x)


def test_lump_mix_bad_input():
    with pytest.raises(ValueError, match="rows"):
        C.lump_mix(torch.ones(3, 2), torch.ones(3, 4), 0.5)
    with pytest.raises(ValueError, match="only"):
        C.lump_mix(torch.ones(2, 2), torch.ones(3, 2), 0.5)
    with pytest.raises(ValueError, match="lam"):
        C.lump_mix(torch.ones(2, 2), torch.ones(2, 2), 1.5)


def test_beta_lambda_distribution():
    torch.manual_seed(0)
    lam = torch.stack([C.sample_lambda(0.4) for _ in range(4000)])
    assert ((lam >= 0) & (lam <= 1)).all()
    # Beta(0.4, 0.4): mean 1/2, variance 1/(4(2α+1)) = 0.1389
    assert lam.mean().item() == pytest.approx(0.5, abs=0.02)
    assert lam.var().item() == pytest.approx(1 / (4 * 1.8), abs=0.01)
    for a in (0.0, -1.0):
        with pytest.raises(ValueError, match="alpha"):
            C.sample_lambda(a)


def test_mixer_uses_one_lambda_for_both_views_and_stored_view2():
    buf = C.ReservoirBuffer(3)
    mixer = C.LUMPMixer(buf, alpha=0.4)
    v1, v2 = torch.rand(4, 1, 5, 5), torch.rand(4, 1, 5, 5)
    out1, out2, lam = mixer.mix(v1, v2)
    assert lam is None and out1 is v1  # empty buffer: no mixing
    raw = torch.rand(4, 1, 5, 5)
    stored_v2 = torch.rand(4, 1, 5, 5)
    mixer.update(raw, stored_v2)
    assert len(buf) == 3
    # make the buffer content identifiable: raw rows are constant images of value k
    buf._data["x"][:3] = torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 5, 5)
    buf._data["view2"][:3] = 10 + torch.arange(3.0).view(3, 1, 1, 1).expand(3, 1, 5, 5)
    c1, c2 = torch.zeros(4, 1, 5, 5), torch.zeros(4, 1, 5, 5)
    out1, out2, lam = mixer.mix(c1, c2)
    assert lam is not None and 0 <= lam.item() <= 1
    # rows 0..2 mixed with buffer rows k (view 1: raw k, view 2: stored view 10+k), row 3 clean
    k1 = out1[:3, 0, 0, 0] / (1 - lam)
    k2 = out2[:3, 0, 0, 0] / (1 - lam)
    torch.testing.assert_close(k2 - 10, k1, atol=1e-4, rtol=1e-4)
    assert sorted(k1.round().tolist()) == [0.0, 1.0, 2.0]
    assert torch.equal(out1[3], c1[3]) and torch.equal(out2[3], c2[3])
    with pytest.raises(ValueError, match="alpha"):
        C.LUMPMixer(4, alpha=0.0)
    with pytest.raises(ValueError, match="same shape"):
        mixer.mix(c1, c2[:2])


def test_lump_strategy_fills_buffer_and_trains():
    torch.manual_seed(0)
    model = C.SimSiam(C.SmallCNN(1, 4, 16), proj_dim=16, pred_dim=8)
    strat = C.LUMP(model, buffer=8, alpha=0.4)
    before = [p.detach().clone() for p in model.parameters()]
    strat.begin_task(0)
    for _ in range(3):
        x = torch.rand(6, 1, 10, 10)
        loss = strat.observe(x + 0.01 * torch.randn_like(x), x, x)
        assert torch.isfinite(loss)
    assert len(strat.buffer) == 8 and strat.buffer.seen == 18
    assert set(strat.buffer.keys) == {"x", "view2"}
    assert any(not torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="same shape"):
        strat.observe(torch.rand(6, 1, 10, 10), torch.rand(5, 1, 10, 10), torch.rand(6, 1, 10, 10))
