"""Side-by-side benchmarks of DiffStride (``udl bench --only diffstride``).

Forward+backward of ``DiffStride2d`` (S=2, float32) against, in the same run:
(a) the eager op-by-op PyTorch implementation of the same spec with plain autograd
(:func:`udl.ops.diffstride_reference.diffstride_reference`), (b) the FFT floor (rfft2 + crop slice +
irfft2 of the same sizes, forward+backward), (c) what users pick instead: a stride-2 3x3 conv and a
2x2 average pool. Also the bytes autograd saves for the backward (udl vs eager), and the GEMM path.
"""

from __future__ import annotations

from collections.abc import Callable

import torch

from udl.bench import BenchRow, time_fn

__all__ = ["side_by_side", "make_cases", "saved_bytes"]


def _fwd_bwd(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
             params: list[torch.Tensor]) -> Callable[[], None]:
    def run() -> None:
        x.grad = None
        for p in params:
            p.grad = None
        y = fn(x)
        y.backward(torch.ones_like(y))

    return run


def make_cases(shape: tuple[int, int, int, int], device: str) -> dict[str, Callable[[], None]]:
    """Closures running forward+backward of each implementation on a random ``shape`` input."""
    from udl.diffstride import DiffStride2d, diffstride2d_gemm, output_size
    from udl.ops.diffstride_reference import diffstride_reference

    b, c, h, w = shape
    x = torch.randn(shape, device=device, requires_grad=True)
    pool = DiffStride2d((2.0, 2.0)).to(device)
    pool(x[:1].detach())  # project once so every implementation sees the same strides
    s_ref = pool.strides.detach().clone().requires_grad_()
    s_gemm = pool.strides.detach().clone().requires_grad_()
    ho, wo = output_size(h, 2.0), output_size(w, 2.0)

    def floor(t: torch.Tensor) -> torch.Tensor:
        spec = torch.fft.rfft2(t)
        return torch.fft.irfft2(spec[..., :ho, : wo // 2 + 1], s=(ho, wo))

    conv = torch.nn.Conv2d(c, c, 3, 2, 1, bias=False).to(device)
    avg = torch.nn.AvgPool2d(2)
    return {
        "udl": _fwd_bwd(pool, x, [pool.strides]),
        "eager": _fwd_bwd(lambda t: diffstride_reference(t, s_ref), x, [s_ref]),
        "gemm": _fwd_bwd(lambda t: diffstride2d_gemm(t, s_gemm), x, [s_gemm]),
        "fft_floor": _fwd_bwd(floor, x, []),
        "conv3x3_s2": _fwd_bwd(conv, x, list(conv.parameters())),
        "avgpool2": _fwd_bwd(avg, x, []),
    }


def saved_bytes(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor) -> int:
    """Bytes of the distinct tensors autograd saves for the backward of ``fn(x)`` (the input
    itself excluded)."""
    seen: dict[int, int] = {}

    def pack(t: torch.Tensor):
        if t.data_ptr() != x.data_ptr():
            seen[t.untyped_storage().data_ptr()] = t.untyped_storage().nbytes()
        return t

    with torch.autograd.graph.saved_tensors_hooks(pack, lambda t: t):
        fn(x)
    return sum(seen.values())


def side_by_side(quick: bool, device: str) -> list[BenchRow]:
    from udl.diffstride import DiffStride2d
    from udl.ops.diffstride_reference import diffstride_reference

    shapes = [(8, 64, 56, 56), (32, 64, 32, 32)] if quick else [(32, 64, 56, 56), (128, 64, 32, 32)]
    repeat = 3 if quick else 5
    rows: list[BenchRow] = []
    for shape in shapes:
        case = "x".join(map(str, shape)) + " f32 S=2 fwd+bwd"
        fns = make_cases(shape, device)
        t = {name: time_fn(fn, device, repeat=repeat, warmup=1) for name, fn in fns.items()}
        rows.append(BenchRow("diffstride", case, "udl DiffStride2d", "eager PyTorch (same spec)",
                             t["udl"], t["eager"], goal=">= 2x"))
        rows.append(BenchRow("diffstride", case, "udl DiffStride2d", "FFT floor rfft2+irfft2",
                             t["udl"], t["fft_floor"], goal=">= 0.77x (<= 1.3x of floor)"))
        rows.append(BenchRow("diffstride", case, "udl DiffStride2d", "conv3x3 stride 2 (C->C)",
                             t["udl"], t["conv3x3_s2"], note="what users pick instead"))
        rows.append(BenchRow("diffstride", case, "udl DiffStride2d", "avg_pool 2x2",
                             t["udl"], t["avgpool2"], note="what users pick instead"))
        rows.append(BenchRow("diffstride", case, "udl DiffStride2d (FFT)", "udl diffstride2d_gemm",
                             t["udl"], t["gemm"], note="GEMM path P_h x P_w^T"))
        x = torch.randn(shape, device=device, requires_grad=True)
        pool = DiffStride2d((2.0, 2.0)).to(device)
        ours = saved_bytes(pool, x)
        s = pool.strides.detach().clone().requires_grad_()
        eager = saved_bytes(lambda t, s=s: diffstride_reference(t, s), x)
        rows.append(BenchRow("diffstride", case.replace("fwd+bwd", "saved MB"), "udl DiffStride2d",
                             "eager PyTorch (same spec)", ours / 2**20, eager / 2**20,
                             goal=">= 2x", note="MB saved for backward, not seconds"))
    return rows
