"""udl.collapse.CollapseMonitor, the training helper and ``udl collapse train``."""

from __future__ import annotations

import json

import pytest
import torch
from torch import nn

from udl.collapse import CollapseMonitor, CollapseStats, mse_decomposition, nc_metrics


class _Net(nn.Module):
    def __init__(self, d_in=6, d=8, c=4):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(d_in, d), nn.Dropout(0.5), nn.ReLU())
        self.fc = nn.Linear(d, c)

    def forward(self, x):
        return self.fc(self.body(x))


def _loader(n=120, d_in=6, c=4, bs=25):
    g = torch.Generator().manual_seed(0)
    y = torch.arange(c).repeat(n // c)
    x = torch.randn(c, d_in, generator=g)[y] * 2 + torch.randn(n, d_in, generator=g)
    return [(x[i:i + bs], y[i:i + bs]) for i in range(0, n, bs)], x, y


def test_monitor_matches_direct_computation_and_cleans_up(tmp_path):
    batches, x, y = _loader()
    net = _Net()
    net.train()
    mon = CollapseMonitor(net, net.fc, batches, 4, every=[2, 5], lam=0.01)
    assert mon(1) is None
    rec = mon(2, loss=0.5)
    assert rec is not None and rec["epoch"] == 2 and rec["loss"] == 0.5
    # hook removed, train mode restored, no autograd graph kept
    assert len(net.fc._forward_hooks) == 0 and net.training
    # same numbers as computing by hand in eval mode
    net.eval()
    with torch.no_grad():
        h = net.body(x)
        logits = net.fc(h)
    s = CollapseStats(4, 8).update(h, y, logits=logits)
    ref = nc_metrics(s, net.fc, data=[(h, y)])
    dec = mse_decomposition(s, net.fc.weight, net.fc.bias, 0.01)
    for key in ("nc1", "nc2_equinorm_means", "nc3", "nc4", "accuracy"):
        assert rec[key] == pytest.approx(ref[key], rel=1e-6, abs=1e-12), key
    for key in ("L_NC1", "L_NC23", "L_perp", "total"):
        assert rec[key] == pytest.approx(dec[key], rel=1e-6), key
    assert len(rec["omega"]) == 3
    mon(5)
    assert [r["epoch"] for r in mon.history] == [2, 5]
    path = mon.save(tmp_path / "h.json")
    hist = CollapseMonitor.load_history(path)
    assert hist[0]["nc1"] == pytest.approx(rec["nc1"])
    json.loads(path.read_text())
    mon.plot(tmp_path / "nc.png", title="t")
    assert (tmp_path / "nc.png").stat().st_size > 1000


def test_monitor_every_int_and_without_lam():
    batches, _, _ = _loader()
    net = _Net()
    mon = CollapseMonitor(net, net.fc, batches, 4, every=3)
    assert mon(2) is None
    rec = mon(3)
    assert "L_perp" not in rec and rec["omega_spread"] >= 1.0


def test_monitor_bad_inputs():
    batches, _, _ = _loader()
    net = _Net()
    with pytest.raises(ValueError, match="num_classes"):
        CollapseMonitor(net, net.fc, batches, 5)
    with pytest.raises(ValueError, match="weight"):
        CollapseMonitor(net, nn.ReLU(), batches, 4)
    with pytest.raises(ValueError, match="every"):
        CollapseMonitor(net, net.fc, batches, 4, every=0)
    other = nn.Linear(8, 4)
    mon = CollapseMonitor(net, other, batches, 4)
    with pytest.raises(ValueError, match="classifier was not called"):
        mon.analyse(0)
    assert len(other._forward_hooks) == 0


def test_dataset_models_and_schedule(tmp_path):
    from udl.collapse.train import analysis_epochs, build_model, load_dataset

    x, y, c = load_dataset("digits", per_class=30)
    assert x.shape == (300, 1, 8, 8) and torch.bincount(y).tolist() == [30] * 10
    for arch in ("mlp", "cnn", "resnet18"):
        model = build_model(arch, (1, 8, 8), 10)
        assert model(x[:2]).shape == (2, 10) and model.fc.out_features == 10
    assert analysis_epochs(5) == [1, 2, 3, 4, 5]
    sched = analysis_epochs(350, 30, 10)
    assert sched[:10] == list(range(1, 11)) and sched[-1] == 350 and len(sched) <= 31
    with pytest.raises(ValueError, match="dataset"):
        load_dataset("imagenet")
    with pytest.raises(ValueError, match="data-root"):
        load_dataset("cifar10-folder")
    with pytest.raises(FileNotFoundError):
        load_dataset("mnist-folder", root=str(tmp_path))


@pytest.mark.slow
def test_cli_train_end_to_end(tmp_path):
    """``udl collapse train`` on digits: trains, analyses, writes JSON and the figure (~10 s CPU)."""
    from udl.cli import main

    out = tmp_path / "run"
    threads = torch.get_num_threads()
    try:
        rc = main(["collapse", "train", "--dataset", "digits", "--per-class", "20", "--epochs", "3",
                   "--points", "3", "--out", str(out), "--no-progress", "--threads", "1"])
    finally:
        torch.set_num_threads(threads)
    assert rc == 0
    hist = json.loads((out / "collapse_history.json").read_text())["history"]
    assert [h["epoch"] for h in hist] == [1, 2, 3]
    assert all(h["L_perp"] >= 0 and 0 <= h["nc4"] <= 1 for h in hist)
    assert (out / "collapse_nc.png").exists() and (out / "collapse_run.json").exists()
