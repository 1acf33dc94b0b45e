"""SimSiam / Barlow Twins losses and the SSL models."""

from __future__ import annotations

import pytest
import torch

import udl.continual as C

pytestmark = pytest.mark.usefixtures("one_thread")


def test_simsiam_identical_views_is_minus_one():
    z = torch.randn(16, 8)
    assert C.simsiam_loss(z, z, z, z).item() == pytest.approx(-1.0, abs=1e-6)
    assert C.SimSiamLoss()(z, z, 3 * z, 2 * z).item() == pytest.approx(-1.0, abs=1e-6)


def test_simsiam_opposite_views_is_plus_one_and_stops_gradient():
    p = torch.randn(10, 6, requires_grad=True)
    z = (-p.detach().clone() * 2).requires_grad_(True)
    loss = C.simsiam_loss(p, p, z, z)
    assert loss.item() == pytest.approx(1.0, abs=1e-6)
    loss.backward()
    assert z.grad is None  # stop-gradient on the projector outputs
    assert p.grad is not None


def test_simsiam_matches_float64_rederivation():
    g = torch.Generator().manual_seed(1)
    p1, p2, z1, z2 = (torch.randn(12, 5, generator=g, dtype=torch.float64) for _ in range(4))

    def d(p, z):
        return -sum((p[i] @ z[i]) / (p[i].norm() * z[i].norm()) for i in range(p.shape[0])) / p.shape[0]

    ref = 0.5 * d(p1, z2) + 0.5 * d(p2, z1)
    torch.testing.assert_close(C.simsiam_loss(p1, p2, z1, z2), ref)


def _orthogonal_standardised(n: int = 8, d: int = 4) -> torch.Tensor:
    # columns of a Hadamard matrix (without the constant one): mean 0, std 1, orthogonal
    h = torch.tensor([[1.0]])
    while h.shape[0] < n:
        h = torch.cat([torch.cat([h, h], 1), torch.cat([h, -h], 1)], 0)
    return h[:, 1:d + 1].double()


def test_barlow_perfectly_correlated_decorrelated_is_zero():
    z = _orthogonal_standardised()
    loss = C.barlow_twins_loss(z, z, eps=0.0)
    assert loss.item() == pytest.approx(0.0, abs=1e-12)
    # scaling/shifting a view does not matter (standardisation)
    assert C.BarlowTwinsLoss(eps=0.0)(z, 3 * z + 1).item() == pytest.approx(0.0, abs=1e-12)


def test_barlow_matches_float64_rederivation():
    g = torch.Generator().manual_seed(2)
    z1 = torch.randn(20, 6, generator=g, dtype=torch.float64)
    z2 = z1 + 0.5 * torch.randn(20, 6, generator=g, dtype=torch.float64)
    lam = 5e-3
    n, d = z1.shape
    a = (z1 - z1.mean(0)) / z1.std(0, unbiased=False)
    b = (z2 - z2.mean(0)) / z2.std(0, unbiased=False)
    ref = 0.0
    for i in range(d):
        for j in range(d):
            cij = sum(a[k, i] * b[k, j] for k in range(n)) / n
            ref += (1 - cij) ** 2 if i == j else lam * cij**2
    torch.testing.assert_close(C.barlow_twins_loss(z1, z2, lam, eps=0.0), ref)
    torch.testing.assert_close(C.barlow_twins_loss(z1, z2, lam, eps=0.0, scale=0.025), 0.025 * ref)


def test_loss_bad_inputs():
    with pytest.raises(ValueError, match="same shape"):
        C.simsiam_loss(torch.randn(4, 3), torch.randn(4, 3), torch.randn(4, 2), torch.randn(4, 3))
    with pytest.raises(ValueError, match="2-D"):
        C.barlow_twins_loss(torch.randn(4), torch.randn(4))
    with pytest.raises(ValueError, match="at least 2"):
        C.barlow_twins_loss(torch.randn(1, 3), torch.randn(1, 3))
    with pytest.raises(ValueError, match="lambda_"):
        C.BarlowTwinsLoss(lambda_=-1.0)
    assert torch.isnan(C.simsiam_loss(*(torch.empty(0, 3) for _ in range(4))))
    assert torch.isnan(C.barlow_twins_loss(torch.empty(0, 3), torch.empty(0, 3)))


def test_models_shapes_and_heads():
    bb = C.SmallCNN(1, width=4, feat_dim=16)
    x1, x2 = torch.rand(6, 1, 12, 12), torch.rand(6, 1, 12, 12)
    sim = C.SimSiam(bb, proj_dim=32, pred_dim=8)
    out = sim(x1, x2)
    assert out["f1"].shape == (6, 16) and out["z1"].shape == (6, 32) and out["p2"].shape == (6, 32)
    # projector: Linear+BN+ReLU, Linear+BN; predictor Linear+BN+ReLU, Linear
    assert [type(m).__name__ for m in sim.projector] == ["Linear", "BatchNorm1d", "ReLU", "Linear",
                                                         "BatchNorm1d"]
    assert [type(m).__name__ for m in sim.predictor] == ["Linear", "BatchNorm1d", "ReLU", "Linear"]
    loss, f1 = sim.ssl_loss(x1, x2)
    assert loss.dim() == 0 and -1 <= loss.item() <= 1 and f1.shape == (6, 16)
    bt = C.BarlowTwins(C.SmallCNN(1, 4, 16), proj_dim=32)
    loss, _ = bt.ssl_loss(x1, x2)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="same shape"):
        sim.ssl_loss(x1, x2[:3])
    with pytest.raises(ValueError, match="feat_dim"):
        C.SimSiam(torch.nn.Flatten())
    clf = C.Classifier(C.SmallCNN(1, 4, 16), num_classes=5)
    assert clf(x1).shape == (6, 5)


def test_resnet18_cifar_stem():
    net = C.resnet18_cifar()
    assert net.conv1.kernel_size == (3, 3) and net.conv1.stride == (1, 1)
    assert isinstance(net.maxpool, torch.nn.Identity)
    net.eval()
    with torch.no_grad():
        assert net(torch.rand(2, 3, 8, 8)).shape == (2, 512)
