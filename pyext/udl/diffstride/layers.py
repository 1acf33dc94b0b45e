"""DiffStride layers (learnable strides) and the fixed spectral-pooling baseline."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from udl.diffstride.functional import (
    _check_x,
    _host_strides,
    diffstride2d_gemm,
    output_size,
    spectral_operator,
)
from udl.ops.diffstride import spectral_crop

__all__ = ["DiffStride2d", "DiffStride1d", "FixedSpectralPool2d"]


def _pair(v, name: str, n: int) -> tuple[float, ...]:
    if isinstance(v, (int, float)):
        return (float(v),) * n
    vals = tuple(float(s) for s in v)
    if len(vals) != n:
        raise ValueError(f"{name} must be a number or a sequence of {n}, got {v!r}")
    return vals


class _DiffStrideNd(nn.Module):
    _nd = 2

    def __init__(self, strides, smoothness: float = 4.0, shared: bool = False,
                 lower_limit: float = 1.0, upper_limit: float | None = None,
                 method: str = "fft") -> None:
        super().__init__()
        if method not in ("fft", "gemm") or (method == "gemm" and self._nd != 2):
            raise ValueError(f"method must be 'fft' (or 'gemm' for 2-D), got {method!r}")
        self.method = method
        init = _pair(strides, "strides", self._nd)
        for s in init:
            if not (math.isfinite(s) and s >= 1.0):
                raise ValueError(f"strides must be finite and >= 1, got {init}")
        if not (math.isfinite(smoothness) and smoothness > 0):
            raise ValueError(f"smoothness must be finite and > 0, got {smoothness}")
        if not (math.isfinite(lower_limit) and lower_limit >= 1.0):
            raise ValueError(f"lower_limit must be finite and >= 1, got {lower_limit}")
        if upper_limit is not None and not upper_limit >= lower_limit:
            raise ValueError(f"upper_limit must be >= lower_limit={lower_limit}, got {upper_limit}")
        if shared and len(set(init)) != 1:
            raise ValueError(f"shared=True needs equal initial strides, got {init}")
        self.smoothness = float(smoothness)
        self.shared = bool(shared) and self._nd > 1
        self.lower_limit = float(lower_limit)
        self.upper_limit = None if upper_limit is None else float(upper_limit)
        self.strides = nn.Parameter(torch.tensor(init[:1] if self.shared else init,
                                                 dtype=torch.float32))

    def _bounds(self, sizes: Sequence[int]) -> tuple[list[float], list[float]]:
        r = self.smoothness
        upper = math.inf if self.upper_limit is None else self.upper_limit
        lo = [max(self.lower_limit, n / (n - r)) if n > r else self.lower_limit for n in sizes]
        hi = [max(1.0, min(upper, n / 2.0)) for n in sizes]
        if self.shared:
            lo, hi = [max(lo)], [min(hi)]
        return lo, hi

    @torch.no_grad()
    def project_(self, sizes: Sequence[int]) -> list[float]:
        """Project the strides in place (no grad) into ``[max(lower_limit, N/(N-R)),
        min(upper_limit, N/2)]`` for input sizes ``sizes`` so a gradient can always flow; returns
        the host values (per axis). Writes only when a value changes, so calling the layer twice
        in one forward (e.g. main branch and shortcut) does not bump the version counter."""
        lo, hi = self._bounds(sizes)
        cur = _host_strides(self.strides)
        new = [min(max(s, a), b) for s, a, b in zip(cur, lo, hi)]
        if new != cur:
            self.strides.copy_(torch.tensor(new, dtype=self.strides.dtype))
            new = self.strides.detach().to("cpu", torch.float64).tolist()
        return new * self._nd if self.shared else new

    def output_size(self, sizes: Sequence[int]) -> tuple[int, ...]:
        """Output spatial size for an input of spatial size ``sizes`` at the current strides
        (after projection)."""
        host = self.project_(sizes)
        return tuple(output_size(n, s, self.smoothness) for n, s in zip(sizes, host))

    def _strides_full(self) -> torch.Tensor:
        return self.strides.expand(self._nd) if self.shared else self.strides

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, self._nd)
        sizes = tuple(x.shape[2:])
        host = self.project_(sizes)
        if self.method == "gemm":
            return diffstride2d_gemm(x, self._strides_full(), self.smoothness, _host=host)
        out = [output_size(n, s, self.smoothness) for n, s in zip(sizes, host)]
        return spectral_crop(x, self._strides_full(), self.smoothness, out)

    def extra_repr(self) -> str:
        vals = ", ".join(f"{v:.3f}" for v in self.strides.detach().cpu().tolist())
        lim = f"[{self.lower_limit:g}, {'inf' if self.upper_limit is None else f'{self.upper_limit:g}'}]"
        method = "" if self.method == "fft" else f", method={self.method!r}"
        return (f"strides=({vals}), smoothness={self.smoothness:g}, shared={self.shared}, "
                f"limits={lim}{method}")


class DiffStride2d(_DiffStrideNd):
    """Learnable-stride spectral downsampling of ``Tensor[B, C, H, W]`` -> ``Tensor[B, C, H', W']``.

    Args:
        strides: initial (S_h, S_w) (a number is used for both); learnable ``.strides`` parameter.
        smoothness: ramp width R in frequency bins (default 4).
        shared: one stride for both axes (parameter of shape (1,)).
        lower_limit, upper_limit: bounds of the in-place projection done before each forward.
        method: ``"fft"`` (native fused op, default; saves only the kept spectrum) or ``"gemm"``
            (``P_h x P_wᵀ`` with plain autograd; can be faster on small maps, saves the input).

    Example:
        >>> pool = DiffStride2d(strides=(2.0, 2.0))
        >>> pool(torch.randn(8, 16, 32, 32)).shape
        torch.Size([8, 16, 23, 23])
    """

    _nd = 2

    def __init__(self, strides: float | Sequence[float] = (2.0, 2.0), smoothness: float = 4.0,
                 shared: bool = False, lower_limit: float = 1.0,
                 upper_limit: float | None = None, method: str = "fft") -> None:
        super().__init__(strides, smoothness, shared, lower_limit, upper_limit, method)


class DiffStride1d(_DiffStrideNd):
    """Learnable-stride spectral downsampling of ``Tensor[B, C, L]`` -> ``Tensor[B, C, L']`` (audio,
    sequences); the same maths on the last axis. ``.strides`` has shape (1,)."""

    _nd = 1

    def __init__(self, stride: float = 2.0, smoothness: float = 4.0, lower_limit: float = 1.0,
                 upper_limit: float | None = None) -> None:
        super().__init__(stride, smoothness, False, lower_limit, upper_limit)


class FixedSpectralPool2d(nn.Module):
    """Spectral pooling (Rippel et al. 2015): a hard low-pass crop of the spectrum to
    ``(max(floor(H/S_h), 2), max(floor(W/S_w), 2))`` (mean preserving, no learnable parameter).

    Computed as ``y = P_h x P_wᵀ`` with the real crop operators of :func:`spectral_operator`
    (all weights 1; the Nyquist bin of an even output size takes the average of ±f).
    """

    def __init__(self, strides: float | Sequence[float] = (2.0, 2.0)) -> None:
        super().__init__()
        self.strides = _pair(strides, "strides", 2)
        for s in self.strides:
            if not (math.isfinite(s) and s >= 1.0):
                raise ValueError(f"strides must be finite and >= 1, got {self.strides}")
        self._cache: dict = {}

    def output_size(self, sizes: Sequence[int]) -> tuple[int, int]:
        return tuple(min(n, max(int(n // s), 2)) for n, s in zip(sizes, self.strides))

    def _matrix(self, n: int, n_out: int, dtype: torch.dtype, device: torch.device) -> torch.Tensor:
        key = (n, n_out, dtype, device)
        if key not in self._cache:
            w = torch.ones(n_out // 2 + 1, dtype=torch.float64)
            self._cache[key] = spectral_operator(n, n_out, w).to(device=device, dtype=dtype)
        return self._cache[key]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        _check_x(x, 2)
        h, w = x.shape[-2:]
        ho, wo = self.output_size((h, w))
        cdt = x.dtype if x.dtype in (torch.float32, torch.float64) else torch.float32
        ph = self._matrix(h, ho, cdt, x.device)
        pw = self._matrix(w, wo, cdt, x.device)
        return (ph @ x.to(cdt) @ pw.T).to(x.dtype)

    def extra_repr(self) -> str:
        return f"strides=({self.strides[0]:g}, {self.strides[1]:g})"
