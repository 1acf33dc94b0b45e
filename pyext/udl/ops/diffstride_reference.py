"""Pure-PyTorch (eager, op-by-op, plain autograd) reference of the DiffStride spectral crop.

This is the specification the native op is tested against, and the "eager" baseline of the
benchmarks. One axis of length N, stride S >= 1, smoothness R > 0:

* T = max(N/S, 2)/2;  |f|(k) = min(k, N-k) on a full FFT axis, k on the rfft axis;
* m(k) = clip((T + R - |f|(k)) / R, 0, 1);
* F = the largest integer < T + R; N' = 2F+1 if 2F+1 < N else N (bins with |f| <= F are kept);
* y = (H'W'/(HW)) * irfft2(crop(m_h ⊗ m_w ⊙ rfft2(x)), s=(H', W')) (1-D: the last axis only).
"""

from __future__ import annotations

import math

import torch

__all__ = ["output_size_reference", "mask_reference", "diffstride_reference"]


def output_size_reference(n: int, stride: float, smoothness: float = 4.0) -> int:
    """N' of an axis of length ``n`` (see the module docstring)."""
    t = max(n / stride, 2.0) / 2.0
    f = math.ceil(t + smoothness) - 1  # the largest integer < T + R
    return 2 * f + 1 if 2 * f + 1 < n else n


def mask_reference(n: int, stride: torch.Tensor, smoothness: float, rfft: bool,
                   nbins: int | None = None) -> torch.Tensor:
    """Soft mask over the first ``nbins`` bins of an axis (differentiable in ``stride``)."""
    nbins = (n // 2 + 1 if rfft else n) if nbins is None else nbins
    k = torch.arange(nbins, device=stride.device, dtype=stride.dtype)
    f = k if rfft else torch.minimum(k, n - k)
    t = torch.clamp(n / stride, min=2.0) / 2.0
    return ((t + smoothness - f) / smoothness).clamp(0.0, 1.0)


def _crop_rows(n: int, n_out: int, device) -> torch.Tensor:
    half = (n_out + 1) // 2
    return torch.cat([torch.arange(half, device=device),
                      torch.arange(n - (n_out - half), n, device=device)])


def diffstride_reference(x: torch.Tensor, strides: torch.Tensor, smoothness: float = 4.0,
                         out_size: tuple[int, ...] | None = None) -> torch.Tensor:
    """Reference DiffStride: ``x`` is ``Tensor[B, C, H, W]`` with ``strides`` of shape (2,), or
    ``Tensor[B, C, L]`` with shape (1,). Returns ``Tensor[B, C, *out_size]``."""
    nd = strides.numel()
    sizes = tuple(x.shape[-nd:])
    if out_size is None:
        svals = [float(s) for s in strides.detach().cpu()]
        out_size = tuple(output_size_reference(n, s, smoothness) for n, s in zip(sizes, svals))
    strides = strides.to(x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32)
    dims = tuple(range(-nd, 0))
    xf = x.to(strides.dtype)
    X = torch.fft.rfftn(xf, dim=dims)
    w, wo = sizes[-1], out_size[-1]
    mw = mask_reference(w, strides[-1], smoothness, rfft=True)
    if nd == 2:
        h, ho = sizes[0], out_size[0]
        mh = mask_reference(h, strides[0], smoothness, rfft=False)
        Y = X * mh[:, None] * mw[None, :]
        Y = Y.index_select(-2, _crop_rows(h, ho, x.device))
    else:
        Y = X * mw
    Y = Y[..., : wo // 2 + 1]
    scale = math.prod(out_size) / math.prod(sizes)
    y = scale * torch.fft.irfftn(Y, s=tuple(out_size), dim=dims)
    return y.to(x.dtype)
