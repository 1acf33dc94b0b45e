"""Batched on-device augmentations."""

from __future__ import annotations

import pytest
import torch

import udl.continual as C


def test_identity_and_exact_flip():
    x = torch.rand(4, 3, 8, 8)
    assert torch.equal(C.BatchAugment()(x), x)
    flipped = C.BatchAugment(hflip=1.0)(x)
    torch.testing.assert_close(flipped, x.flip(-1), atol=1e-5, rtol=0)


def test_normalize_and_weak():
    aug = C.cifar_augment()
    x = torch.rand(5, 3, 8, 8)
    mean = torch.tensor(aug.mean).view(1, 3, 1, 1)
    std = torch.tensor(aug.std).view(1, 3, 1, 1)
    torch.testing.assert_close(aug.normalize(x), (x - mean) / std)
    weak = aug.weak()
    assert weak.jitter_p == 0 and weak.grayscale_p == 0 and weak.noise == 0
    assert weak.crop_scale == aug.crop_scale and weak.mean == aug.mean
    out = aug(x)
    assert out.shape == x.shape and torch.isfinite(out).all()
    assert not torch.equal(aug(x), aug(x))  # random per call


def test_per_image_randomness_and_shift_keeps_mass():
    x = torch.zeros(64, 1, 16, 16)
    x[:, :, 6:10, 6:10] = 1.0
    out = C.BatchAugment(translate=0.25)(x)
    # each image gets its own shift; the 4×4 blob stays (mostly) on the canvas
    assert len({tuple(o.flatten().nonzero().flatten()[:1].tolist()) for o in out}) > 5
    torch.testing.assert_close(out.sum((1, 2, 3)), x.sum((1, 2, 3)), atol=1.0, rtol=0.1)


def test_bad_input():
    with pytest.raises(ValueError, match="hflip"):
        C.BatchAugment(hflip=2.0)
    with pytest.raises(ValueError, match="crop_scale"):
        C.BatchAugment(crop_scale=(0.5, 0.2))
    with pytest.raises(ValueError, match="mean and std"):
        C.BatchAugment(mean=(0.5,))
    with pytest.raises(ValueError, match="N, C, H, W"):
        C.glyph_augment()(torch.rand(3, 8, 8))
    with pytest.raises(ValueError, match="floating"):
        C.glyph_augment()(torch.zeros(2, 1, 8, 8, dtype=torch.uint8))
    assert C.glyph_augment()(torch.empty(0, 1, 8, 8)).shape == (0, 1, 8, 8)
