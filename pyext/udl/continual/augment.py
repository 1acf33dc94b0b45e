"""Batched, on-device image augmentations for SSL views (no PIL, no host round trips).

:class:`BatchAugment` draws an independent random transform per image: a random resized crop
and/or random affine (rotation, scale, shift) and a horizontal flip applied in one
``grid_sample``, then colour jitter (brightness, contrast, saturation), random grayscale,
additive Gaussian noise and a final per-channel normalisation. Random numbers come from the
global generator of the input's device (seed it with ``torch.manual_seed``).
"""

from __future__ import annotations

import dataclasses
import math

import torch
import torch.nn.functional as F
from torch import Tensor

__all__ = ["BatchAugment", "glyph_augment", "digits_augment", "cifar_augment"]


def _uniform(n: int, lo: float, hi: float, like: Tensor) -> Tensor:
    return torch.rand(n, device=like.device, dtype=like.dtype) * (hi - lo) + lo


@dataclasses.dataclass
class BatchAugment:
    """Random per-image augmentation of a batch (N, C, H, W) of images in [0, 1].

    Attributes:
        crop_scale: area range of the random resized crop (``None``: no crop).
        crop_ratio: aspect-ratio range of the crop.
        hflip: probability of a horizontal flip.
        rotation: maximum absolute rotation in degrees.
        scale: range of the affine zoom factor (> 1 zooms in).
        translate: maximum shift as a fraction of the image half-width.
        jitter_p: probability of applying colour jitter to an image.
        brightness, contrast, saturation: jitter strengths (factor in [1-s, 1+s]).
        grayscale_p: probability of converting an RGB image to gray.
        noise: maximum std of the additive Gaussian noise (drawn per image in [0, noise]).
        mean, std: per-channel normalisation applied last (also by :meth:`normalize`).
    """

    crop_scale: tuple[float, float] | None = None
    crop_ratio: tuple[float, float] = (3 / 4, 4 / 3)
    hflip: float = 0.0
    rotation: float = 0.0
    scale: tuple[float, float] = (1.0, 1.0)
    translate: float = 0.0
    jitter_p: float = 0.0
    brightness: float = 0.0
    contrast: float = 0.0
    saturation: float = 0.0
    grayscale_p: float = 0.0
    noise: float = 0.0
    mean: tuple[float, ...] | None = None
    std: tuple[float, ...] | None = None

    def __post_init__(self) -> None:
        for name in ("hflip", "jitter_p", "grayscale_p"):
            p = getattr(self, name)
            if not 0.0 <= p <= 1.0:
                raise ValueError(f"{name} must be a probability in [0, 1], got {p}")
        if self.crop_scale is not None and not 0 < self.crop_scale[0] <= self.crop_scale[1] <= 1:
            raise ValueError(f"crop_scale must satisfy 0 < lo <= hi <= 1, got {self.crop_scale}")
        if (self.mean is None) != (self.std is None):
            raise ValueError("give both mean and std, or neither")

    def weak(self) -> BatchAugment:
        """The geometric part only (no colour jitter, grayscale or noise) — LUMP's buffer
        transform ``T_weak``."""
        return dataclasses.replace(self, jitter_p=0.0, grayscale_p=0.0, noise=0.0)

    def normalize(self, x: Tensor) -> Tensor:
        """The evaluation transform: only the per-channel normalisation."""
        if self.mean is None:
            return x
        mean = torch.tensor(self.mean, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        std = torch.tensor(self.std, device=x.device, dtype=x.dtype).view(1, -1, 1, 1)
        return (x - mean) / std

    def _geometry(self, x: Tensor) -> Tensor:
        n = x.shape[0]
        has_affine = self.rotation > 0 or self.scale != (1.0, 1.0) or self.translate > 0
        if self.crop_scale is None and not has_affine and self.hflip == 0:
            return x
        one = torch.ones(n, device=x.device, dtype=x.dtype)
        zero = torch.zeros_like(one)
        # crop: half-sizes (w, h) and centre (cx, cy) in normalised coordinates
        if self.crop_scale is not None:
            area = _uniform(n, *self.crop_scale, x)
            log_r = _uniform(n, math.log(self.crop_ratio[0]), math.log(self.crop_ratio[1]), x)
            r = torch.exp(log_r)
            w = torch.sqrt(area * r).clamp(max=1.0)
            h = torch.sqrt(area / r).clamp(max=1.0)
            cx = (torch.rand_like(w) * 2 - 1) * (1 - w)
            cy = (torch.rand_like(h) * 2 - 1) * (1 - h)
        else:
            w, h, cx, cy = one, one, zero, zero
        flip = torch.where(torch.rand_like(one) < self.hflip, -one, one)
        ang = _uniform(n, -self.rotation, self.rotation, x) * (math.pi / 180)
        zoom = _uniform(n, *self.scale, x)
        tx = _uniform(n, -self.translate, self.translate, x)
        ty = _uniform(n, -self.translate, self.translate, x)
        cos, sin = torch.cos(ang) / zoom, torch.sin(ang) / zoom
        # output -> input: crop ∘ (rotate/zoom + shift) ∘ flip
        theta = torch.stack([
            torch.stack([w * cos * flip, -w * sin, w * tx + cx], 1),
            torch.stack([h * sin * flip, h * cos, h * ty + cy], 1),
        ], 1)
        grid = F.affine_grid(theta, list(x.shape), align_corners=False)
        return F.grid_sample(x, grid, mode="bilinear", padding_mode="zeros", align_corners=False)

    def _colour(self, x: Tensor) -> Tensor:
        n, c = x.shape[:2]
        shape = (n, 1, 1, 1)
        if self.jitter_p > 0 and (self.brightness or self.contrast or self.saturation):
            apply = (torch.rand(shape, device=x.device) < self.jitter_p).to(x.dtype)
            y = x
            if self.brightness:
                y = y * _uniform(n, 1 - self.brightness, 1 + self.brightness, x).view(shape)
            if self.contrast:
                m = y.mean(dim=(1, 2, 3), keepdim=True)
                y = (y - m) * _uniform(n, 1 - self.contrast, 1 + self.contrast, x).view(shape) + m
            if self.saturation and c == 3:
                g = _gray(y)
                y = (y - g) * _uniform(n, 1 - self.saturation, 1 + self.saturation, x).view(shape) + g
            x = (apply * y + (1 - apply) * x).clamp(0, 1)
        if self.grayscale_p > 0 and c == 3:
            apply = (torch.rand(shape, device=x.device) < self.grayscale_p).to(x.dtype)
            x = apply * _gray(x).expand_as(x) + (1 - apply) * x
        if self.noise > 0:
            sigma = _uniform(n, 0.0, self.noise, x).view(shape)
            x = x + sigma * torch.randn_like(x)
        return x

    def __call__(self, x: Tensor) -> Tensor:
        """Augment a float batch (N, C, H, W) with values in [0, 1]; returns the same shape."""
        if x.dim() != 4:
            raise ValueError(f"x must be (N, C, H, W); got shape {tuple(x.shape)}")
        if not x.is_floating_point():
            raise ValueError(f"x must be a floating-point image batch, got {x.dtype}")
        if x.shape[0] == 0:
            return x
        return self.normalize(self._colour(self._geometry(x)))


def _gray(x: Tensor) -> Tensor:
    w = torch.tensor([0.299, 0.587, 0.114], device=x.device, dtype=x.dtype).view(1, 3, 1, 1)
    return (x * w).sum(1, keepdim=True)


def glyph_augment() -> BatchAugment:
    """Views for the glyph stream: random affine (±20°, zoom 0.8–1.25, shift ±25%), intensity
    jitter and noise."""
    return BatchAugment(rotation=20.0, scale=(0.8, 1.25), translate=0.25, jitter_p=0.8,
                        brightness=0.4, contrast=0.4, noise=0.1)


def digits_augment() -> BatchAugment:
    """Views for sklearn digits (8×8): small affine, intensity jitter and noise."""
    return BatchAugment(rotation=10.0, scale=(0.9, 1.1), translate=0.15, jitter_p=0.8,
                        brightness=0.3, contrast=0.3, noise=0.05)


def cifar_augment(mean: tuple[float, ...] = (0.4914, 0.4822, 0.4465),
                  std: tuple[float, ...] = (0.2470, 0.2435, 0.2616)) -> BatchAugment:
    """SimSiam CIFAR views: resized crop (0.08–1), flip, colour jitter (p 0.8), grayscale (0.2)
    and normalisation (hue jitter is not implemented)."""
    return BatchAugment(crop_scale=(0.08, 1.0), hflip=0.5, jitter_p=0.8, brightness=0.4,
                        contrast=0.4, saturation=0.4, grayscale_p=0.2, mean=mean, std=std)
