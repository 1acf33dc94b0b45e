"""Python side of the DiffStride native ops ``torch.ops.udl.spectral_crop{,_backward}``.

``spectral_crop(x, strides, smoothness, out_size) -> (y, kept)`` runs ``rfft`` -> fused
mask·crop·scale kernel -> ``irfft`` (see ``csrc/diffstride/spectral_crop.h`` for the maths). ``kept`` is
an auxiliary output: the unmasked kept spectrum, saved for the backward (it is marked
non-differentiable). Output sizes are arguments, so the fake kernel below gives exact static shapes:
under ``torch.compile`` the op itself traces without graph breaks; only reading the strides to the
host to *choose* ``out_size`` (done by :func:`udl.diffstride.diffstride2d`) breaks the graph.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["spectral_crop", "spectral_crop_backward"]


def _complex_of(dtype: torch.dtype) -> torch.dtype:
    return torch.complex128 if dtype == torch.float64 else torch.complex64


@torch.library.register_fake("udl::spectral_crop")
def _spectral_crop_fake(x, strides, smoothness, out_size):
    nd = strides.shape[0]
    torch._check(x.dim() == 2 + nd, lambda: f"x must be a {2 + nd}-D tensor, got {x.dim()}-D")
    torch._check(len(out_size) == nd, lambda: f"out_size must have {nd} element(s)")
    lead = tuple(x.shape[:2])
    y = x.new_empty((*lead, *out_size))
    kept_shape = (*lead, *out_size[:-1], out_size[-1] // 2 + 1)
    kept = x.new_empty(kept_shape, dtype=_complex_of(x.dtype))
    return y, kept


@torch.library.register_fake("udl::spectral_crop_backward")
def _spectral_crop_backward_fake(grad_y, kept, strides, smoothness, in_size, need_strides_grad):
    grad_x = grad_y.new_empty((*grad_y.shape[:2], *in_size))
    return grad_x, strides.new_empty(strides.shape)


def _setup_context(ctx, inputs, output):
    x, strides, smoothness, out_size = inputs
    _, kept = output
    ctx.mark_non_differentiable(kept)
    ctx.save_for_backward(kept, strides)
    ctx.smoothness = smoothness
    ctx.in_size = list(x.shape[2:])


def _backward(ctx, grad_y, _grad_kept):
    kept, strides = ctx.saved_tensors
    need_x, need_s = ctx.needs_input_grad[0], ctx.needs_input_grad[1]
    if not (need_x or need_s):
        return None, None, None, None
    grad_x, grad_s = torch.ops.udl.spectral_crop_backward(
        grad_y, kept, strides, ctx.smoothness, ctx.in_size, bool(need_s))
    return (grad_x if need_x else None), (grad_s if need_s else None), None, None


torch.library.register_autograd("udl::spectral_crop", _backward, setup_context=_setup_context)


def spectral_crop(x: torch.Tensor, strides: torch.Tensor, smoothness: float,
                  out_size: Sequence[int]) -> torch.Tensor:
    """Masked spectral crop ``y`` of ``x`` (``Tensor[B, C, H, W]`` with ``strides`` of shape (2,), or
    ``Tensor[B, C, L]`` with shape (1,)) to ``Tensor[B, C, *out_size]``; differentiable in ``x`` and
    ``strides``. Prefer :func:`udl.diffstride.diffstride2d`, which picks ``out_size`` from the strides.
    """
    return torch.ops.udl.spectral_crop(x, strides, float(smoothness), [int(s) for s in out_size])[0]


def spectral_crop_backward(grad_y: torch.Tensor, kept: torch.Tensor, strides: torch.Tensor,
                           smoothness: float, in_size: Sequence[int],
                           need_strides_grad: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """(grad_x, grad_strides) of :func:`spectral_crop` (see the module docstring)."""
    return torch.ops.udl.spectral_crop_backward(grad_y, kept, strides, float(smoothness),
                                                [int(s) for s in in_size], bool(need_strides_grad))
