"""DiffStride: learnable-stride spectral downsampling (Riad et al., "Learning Strides in
Convolutional Neural Networks", ICLR 2022).

Drop-in replacements for strided convolutions and pooling whose strides are learned by
gradient descent. The spectral crop is a fused native op (``torch.ops.udl.spectral_crop``, CPU and
CUDA) between ``torch.fft`` transforms, with an exact, deterministic backward in the input and the
strides. See :mod:`udl.diffstride.functional` for the exact convention.
"""

from __future__ import annotations

from udl.diffstride.functional import (
    diffstride1d,
    diffstride2d,
    diffstride2d_gemm,
    output_size,
    spectral_operator,
)
from udl.diffstride.layers import DiffStride1d, DiffStride2d, FixedSpectralPool2d
from udl.diffstride.models import (
    AudioNet,
    PreActResNet,
    complexity,
    convert,
    learned_strides,
    resnet18,
)

__all__ = [
    "output_size",
    "diffstride2d",
    "diffstride1d",
    "diffstride2d_gemm",
    "spectral_operator",
    "DiffStride2d",
    "DiffStride1d",
    "FixedSpectralPool2d",
    "resnet18",
    "PreActResNet",
    "convert",
    "AudioNet",
    "complexity",
    "learned_strides",
]
