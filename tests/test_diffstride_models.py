"""udl.diffstride: layers, models, conversion, complexity and a tiny training run."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from udl.diffstride import (
    AudioNet,
    DiffStride1d,
    DiffStride2d,
    FixedSpectralPool2d,
    complexity,
    convert,
    diffstride2d,
    learned_strides,
    output_size,
    resnet18,
)

pytestmark = pytest.mark.usefixtures("one_thread")


def test_module_equals_functional_and_repr():
    pool = DiffStride2d(strides=(2.0, 1.5))
    x = torch.randn(2, 3, 20, 24)
    y = pool(x)
    torch.testing.assert_close(y, diffstride2d(x, pool.strides.detach()))
    assert y.shape == (2, 3, output_size(20, 2.0), output_size(24, 1.5))
    r = repr(pool)
    assert "DiffStride2d" in r and "strides=(2.000, 1.500)" in r and "smoothness=4" in r
    assert pool.output_size((20, 24)) == tuple(y.shape[2:])


def test_projection_in_place():
    pool = DiffStride2d(strides=(1.0, 30.0), upper_limit=8.0)
    pool(torch.randn(1, 1, 32, 20))
    s = pool.strides.detach().tolist()
    assert s[0] == pytest.approx(32 / 28)  # N/(N-R)
    assert s[1] == pytest.approx(8.0)  # min(upper_limit, N/2) = min(8, 10)
    pool2 = DiffStride2d(strides=(1.0, 30.0))
    pool2(torch.randn(1, 1, 32, 20))
    assert pool2.strides.detach()[1].item() == pytest.approx(10.0)


def test_shared_strides_and_double_call():
    pool = DiffStride2d(strides=2.0, shared=True)
    assert pool.strides.shape == (1,)
    x = torch.randn(2, 3, 16, 16, requires_grad=True)
    # the same instance twice in one graph (main branch + shortcut) must not break autograd
    out = pool(x).square().sum() + pool(x * 2).sum()
    out.backward()
    assert pool.strides.grad is not None and pool.strides.grad.shape == (1,)
    with pytest.raises(ValueError, match="shared=True"):
        DiffStride2d(strides=(2.0, 3.0), shared=True)


def test_module_bad_args():
    with pytest.raises(ValueError, match="strides must be finite"):
        DiffStride2d(strides=(0.5, 2.0))
    with pytest.raises(ValueError, match="smoothness"):
        DiffStride1d(stride=2.0, smoothness=-1)
    with pytest.raises(ValueError, match="upper_limit"):
        DiffStride2d(upper_limit=0.5)
    with pytest.raises(ValueError, match="x must be a 3-D"):
        DiffStride1d()(torch.randn(1, 2, 3, 16))


def test_diffstride1d_module():
    pool = DiffStride1d(stride=3.0)
    x = torch.randn(2, 4, 100, requires_grad=True)
    y = pool(x)
    assert y.shape == (2, 4, output_size(100, 3.0))
    y.square().sum().backward()
    assert pool.strides.grad.abs().item() > 0


def test_fixed_spectral_pool():
    pool = FixedSpectralPool2d((2, 2))
    x = torch.randn(2, 3, 16, 15, dtype=torch.float64)
    y = pool(x)
    assert y.shape == (2, 3, 8, 7)
    torch.testing.assert_close(y.mean(dim=(2, 3)), x.mean(dim=(2, 3)))
    # a band-limited signal is resampled exactly
    n = torch.arange(16, dtype=torch.float64)
    sig = torch.cos(2 * torch.pi * 2 * n / 16)
    img = (sig[:, None] * torch.ones(16, dtype=torch.float64)).expand(1, 1, 16, 16)
    out = FixedSpectralPool2d((2, 2))(img)
    m = torch.arange(8, dtype=torch.float64)
    torch.testing.assert_close(out[0, 0, :, 0], torch.cos(2 * torch.pi * 2 * m / 8))
    torch.testing.assert_close(FixedSpectralPool2d((1, 1))(x), x)


@pytest.mark.parametrize("pooling", ["diffstride", "strided", "spectral"])
def test_resnet18_shapes(pooling):
    model = resnet18(10, in_channels=1, pooling=pooling, strides=(1, 1, 2, 2, 2), width=4)
    out = model(torch.randn(2, 1, 32, 32))
    assert out.shape == (2, 10)
    n_ds = len(learned_strides(model))
    assert n_ds == (4 if pooling == "diffstride" else 0)


def test_resnet18_diffstride_sizes_and_sharing():
    model = resnet18(10, pooling="diffstride", strides=(1, 1, 3, 2, 3), width=4)
    strides = learned_strides(model)
    assert list(strides.values())[1:] == [[3.0, 3.0], [2.0, 2.0], [3.0, 3.0]]
    block = model.layers[1][0]
    assert block.pool is not None and block.shortcut is not None
    sizes = []
    hooks = [m.register_forward_hook(lambda m, i, o: sizes.append(o.shape[-1]))
             for m in model.modules() if isinstance(m, DiffStride2d)]
    model(torch.randn(1, 3, 32, 32))
    for h in hooks:
        h.remove()
    assert sizes == [32, 19, 19, 17, 17, 13, 13]  # 32 -> 19 -> 17 -> 13 with R = 4


def test_convert_torchvision_resnet():
    tv = pytest.importorskip("torchvision")
    model = tv.models.resnet18(num_classes=5)
    convert(model)
    strided = [m for m in model.modules() if isinstance(m, nn.Conv2d) and m.stride != (1, 1)]
    assert strided == []
    pools = learned_strides(model)
    # stem conv + maxpool + one shared pool in each of the 3 down-sampling blocks
    assert len(pools) == 5
    block = model.layer2[0]
    ds = [m for m in block.modules() if isinstance(m, DiffStride2d)]
    assert len({id(m) for m in ds}) == 1
    out = model(torch.randn(1, 3, 64, 64))
    assert out.shape == (1, 5)


def test_complexity_is_differentiable_and_monotone():
    model = resnet18(10, pooling="diffstride", strides=(1, 1, 2, 2, 2), width=4)
    c = complexity(model, (3, 32, 32))
    assert c.requires_grad and c.item() > 0
    c.backward()
    for _, m in model.named_modules():
        if isinstance(m, DiffStride2d) and m.strides.grad is not None:
            assert (m.strides.grad <= 0).all()
    grads = [m.strides.grad for m in model.modules() if isinstance(m, DiffStride2d)]
    assert any(g is not None and g.abs().sum() > 0 for g in grads)
    with torch.no_grad():
        for m in model.modules():
            if isinstance(m, DiffStride2d):
                m.strides.mul_(1.5)
    assert complexity(model, (3, 32, 32)).item() < c.item()
    base = resnet18(10, pooling="strided", width=4)
    cb = complexity(base, (3, 32, 32))
    assert not cb.requires_grad and cb.item() < c.item()


def test_audionet_mel_and_waveform():
    pytest.importorskip("torchaudio")
    net = AudioNet(3, sample_rate=8000, frontend="mel", n_mels=32, n_fft=256, hop_length=64,
                   width=4, blocks=3)
    out = net(torch.randn(2, 4000))
    assert out.shape == (2, 3)
    assert len(learned_strides(net)) == 3
    wav = AudioNet(3, frontend="waveform", width=4, blocks=3, stride=3.0)
    out = wav(torch.randn(2, 1, 600))
    assert out.shape == (2, 3)
    out.sum().backward()
    pools = [m for m in wav.modules() if isinstance(getattr(m, "strides", None), nn.Parameter)]
    assert len(pools) == 3 and all(isinstance(m, DiffStride1d) for m in pools)
    with pytest.raises(ValueError, match="frontend"):
        AudioNet(3, frontend="bogus")


def test_tiny_training_moves_strides():
    torch.manual_seed(0)
    model = resnet18(4, in_channels=1, pooling="diffstride", strides=(1, 1, 3, 2, 3), width=4)
    x = torch.randn(32, 1, 16, 16)
    y = torch.randint(0, 4, (32,))
    before = {k: list(v) for k, v in learned_strides(model).items()}
    opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9)
    for _ in range(4):
        opt.zero_grad()
        loss = nn.functional.cross_entropy(model(x), y) + 1e-3 * complexity(model, (1, 16, 16)) / 1e5
        loss.backward()
        opt.step()
    after = learned_strides(model)
    moved = sum(abs(a - b) for k in before for a, b in zip(before[k], after[k]))
    assert moved > 1e-3


def test_cli_sizes_and_missing_root(capsys, tmp_path):
    from udl.cli import main

    assert main(["diffstride", "sizes", "32", "--strides", "2"]) == 0
    assert "S=2 -> 23" in capsys.readouterr().out
    assert main(["diffstride", "train-cifar", "--root", str(tmp_path / "nope"), "--epochs", "1"]) == 2
    assert "does not exist" in capsys.readouterr().err


def test_gemm_method_module():
    x = torch.randn(2, 3, 20, 17, requires_grad=True)
    a, b = DiffStride2d((2.2, 1.7)), DiffStride2d((2.2, 1.7), method="gemm")
    ya, yb = a(x), b(x)
    torch.testing.assert_close(ya, yb, rtol=1e-4, atol=1e-5)
    ya.square().sum().backward()
    yb.square().sum().backward()
    torch.testing.assert_close(a.strides.grad, b.strides.grad, rtol=1e-3, atol=1e-4)
    assert "method='gemm'" in repr(b)
    with pytest.raises(ValueError, match="method"):
        DiffStride2d(method="fast")
