"""Functional DiffStride (Riad et al., ICLR 2022): learnable-stride spectral downsampling.

Convention (per axis of length N, stride S >= 1, smoothness R > 0, default 4):

* half-bandwidth ``T = max(N/S, 2) / 2``; bin frequency ``|f|(k) = min(k, N-k)`` on a full FFT axis,
  ``k`` on the rfft (last) axis;
* soft mask ``m(k) = clip((T + R - |f|(k)) / R, 0, 1)`` -- symmetric in ±f, so the spectrum stays
  Hermitian (the official code's off-by-one vertical mask is deliberately *not* copied);
* ``F`` = the largest integer < T + R; if ``2F+1 < N`` the bins with ``|f| <= F`` are kept and
  ``N' = 2F+1``, otherwise every bin is kept and ``N' = N``;
* 2-D: ``y = (H'W'/(HW)) · irfft2(crop(m_h ⊗ m_w ⊙ rfft2(x)), s=(H', W'))`` -- mean preserving;
  1-D: the same on the last axis.

Gradients are exact in ``x`` and in ``S`` (through the mask values in the ramp band; the crop
size is piecewise constant in S and carries none).
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch

from udl.ops.diffstride import spectral_crop

__all__ = ["output_size", "diffstride2d", "diffstride1d", "spectral_operator", "diffstride2d_gemm"]

_FLOAT_DTYPES = (torch.float16, torch.bfloat16, torch.float32, torch.float64)


def output_size(n: int, stride: float, smoothness: float = 4.0) -> int:
    """Output length ``N'`` of DiffStride on an axis of length ``n`` (see the module docstring).

    >>> output_size(32, 2.0), output_size(56, 2.0), output_size(224, 4.0)
    (23, 35, 63)
    """
    if n < 1:
        raise ValueError(f"n must be >= 1, got {n}")
    if not (math.isfinite(stride) and stride >= 1.0):
        raise ValueError(f"stride must be finite and >= 1, got {stride}")
    if not (math.isfinite(smoothness) and smoothness > 0):
        raise ValueError(f"smoothness must be finite and > 0, got {smoothness}")
    t = max(n / stride, 2.0) / 2.0
    f = math.ceil(t + smoothness) - 1  # the largest integer < T + R
    return 2 * f + 1 if 2 * f + 1 < n else n


def _as_strides(strides, n: int, device: torch.device) -> torch.Tensor:
    if not isinstance(strides, torch.Tensor):
        if isinstance(strides, (int, float)):
            strides = [float(strides)] * n
        strides = torch.tensor([float(s) for s in strides], dtype=torch.float32, device=device)
    if strides.dim() == 0:
        strides = strides.reshape(1).expand(n)
    if strides.dim() != 1 or strides.numel() not in (1, n):
        raise ValueError(f"strides must have {n} element(s), got shape {tuple(strides.shape)}")
    if strides.numel() == 1 and n > 1:
        strides = strides.expand(n)
    if not strides.is_floating_point():
        raise TypeError(f"strides must be a floating-point tensor, got {strides.dtype}")
    if strides.device != device:
        raise ValueError(f"strides and x must be on the same device, got {strides.device} and {device}")
    return strides


def _check_x(x: torch.Tensor, nd: int) -> None:
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"x must be a torch.Tensor, got {type(x).__name__}")
    layout = "(batch, channels, H, W)" if nd == 2 else "(batch, channels, L)"
    if x.dim() != 2 + nd:
        raise ValueError(f"x must be a {2 + nd}-D tensor {layout}, got shape {tuple(x.shape)}")
    if x.dtype not in _FLOAT_DTYPES:
        raise TypeError(f"x must be float16, bfloat16, float32 or float64, got {x.dtype}")
    if any(s < 2 for s in x.shape[2:]):
        raise ValueError(f"x: every spatial size must be >= 2, got shape {tuple(x.shape)}")


def _host_strides(strides: torch.Tensor) -> list[float]:
    # The one unavoidable device->host read: the output size is a function of the strides.
    values = strides.detach().to("cpu", torch.float64).tolist()
    for v in values:
        if not (math.isfinite(v) and v >= 1.0):
            raise ValueError(f"strides must be finite and >= 1, got {values}")
    return values


def _run(x: torch.Tensor, strides, smoothness: float, nd: int,
         host: Sequence[float] | None) -> torch.Tensor:
    _check_x(x, nd)
    if not (math.isfinite(smoothness) and smoothness > 0):
        raise ValueError(f"smoothness must be finite and > 0, got {smoothness}")
    strides = _as_strides(strides, nd, x.device)
    host = _host_strides(strides) if host is None else list(host)
    out = [output_size(n, s, smoothness) for n, s in zip(x.shape[2:], host)]
    return spectral_crop(x, strides, smoothness, out)


def diffstride2d(x: torch.Tensor, strides: torch.Tensor | Sequence[float] | float,
                 smoothness: float = 4.0) -> torch.Tensor:
    """DiffStride on the last two axes.

    Args:
        x: ``Tensor[B, C, H, W]`` (float16/bfloat16/float32/float64; any memory layout).
            Half inputs are transformed in float32 and the result is cast back.
        strides: ``Tensor[2]`` (S_h, S_w), each finite and >= 1; may require grad. A float or a
            pair is accepted too (then no stride gradient).
        smoothness: ramp width R > 0 in frequency bins.

    Returns:
        ``Tensor[B, C, H', W']`` with ``H' = output_size(H, S_h, R)``, ``W' = output_size(W, S_w, R)``.
    """
    return _run(x, strides, smoothness, 2, None)


def diffstride1d(x: torch.Tensor, stride: torch.Tensor | float, smoothness: float = 4.0) -> torch.Tensor:
    """DiffStride on the last axis: ``x`` is ``Tensor[B, C, L]``, ``stride`` a ``Tensor[1]`` (or a
    float); returns ``Tensor[B, C, output_size(L, S, R)]``."""
    return _run(x, stride, smoothness, 1, None)


def spectral_operator(n: int, n_out: int, weights: torch.Tensor) -> torch.Tensor:
    """The real ``n_out x n`` matrix of a 1-D masked spectral crop with frequency weights
    ``weights[f]`` for ``f = 0..n_out//2`` (scale ``n_out/n`` included):
    ``P[i, j] = (w_0 + 2 Σ_{f=1}^{F} w_f cos(2π f d) + [n_out even] w_{n_out/2} cos(π n_out d)) / n``
    with ``d = i/n_out - j/n`` and ``F = (n_out - 1)//2``. Differentiable in ``weights``.
    """
    dtype, device = weights.dtype, weights.device
    i = torch.arange(n_out, dtype=dtype, device=device)[:, None] / n_out
    j = torch.arange(n, dtype=dtype, device=device)[None, :] / n
    d = i - j
    big_f = (n_out - 1) // 2
    f = torch.arange(1, big_f + 1, dtype=dtype, device=device)
    p = weights[0] + 2.0 * (weights[1:big_f + 1] * torch.cos(2 * math.pi * f * d[..., None])).sum(-1)
    if n_out % 2 == 0:
        p = p + weights[n_out // 2] * torch.cos(math.pi * n_out * d)
    return p / n


def diffstride2d_gemm(x: torch.Tensor, strides: torch.Tensor, smoothness: float = 4.0,
                      _host: Sequence[float] | None = None) -> torch.Tensor:
    """Same result as :func:`diffstride2d`, computed as ``y = P_h x P_wᵀ`` with small real matrices
    built from the strides (plain autograd; exact stride gradient). Faster than the FFTs for small
    maps on some machines (e.g. 32x32 on CPU), at the cost of saving the input for the backward."""
    _check_x(x, 2)
    if not (math.isfinite(smoothness) and smoothness > 0):
        raise ValueError(f"smoothness must be finite and > 0, got {smoothness}")
    strides = _as_strides(strides, 2, x.device)
    host = _host_strides(strides) if _host is None else list(_host)
    cdt = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
    s = strides.to(cdt)
    mats = []
    for axis, (n, sv) in enumerate(zip(x.shape[2:], host)):
        n_out = output_size(n, sv, smoothness)
        f = torch.arange(n_out // 2 + 1, dtype=cdt, device=x.device)
        t = torch.clamp(n / s[axis], min=2.0) / 2.0
        mats.append(spectral_operator(n, n_out, ((t + smoothness - f) / smoothness).clamp(0.0, 1.0)))
    y = mats[0] @ x.to(cdt) @ mats[1].T
    return y.to(x.dtype)
