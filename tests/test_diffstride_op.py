"""udl.diffstride: the native spectral-crop op against the float64 reference of the spec."""

from __future__ import annotations

import math

import pytest
import torch

from udl.diffstride import diffstride1d, diffstride2d, diffstride2d_gemm, output_size
from udl.ops.diffstride import spectral_crop, spectral_crop_backward
from udl.ops.diffstride_reference import diffstride_reference, output_size_reference

SHAPES_2D = [  # (H, W, S_h, S_w): even/odd sizes, crop and no-crop axes, T floor at 2
    (32, 32, 2.0, 2.0),
    (17, 23, 1.7, 2.6),
    (12, 9, 1.3, 1.1),
    (20, 16, 3.3, 9.0),
    (8, 11, 1.5, 2.2),
]


pytestmark = pytest.mark.usefixtures("one_thread")


def _x(shape, dtype=torch.float64, device="cpu", grad=False):
    return torch.randn(*shape, dtype=dtype, device=device, requires_grad=grad)


def test_output_size_table():
    # the spec: F = largest integer < T + R, N' = 2F+1 if 2F+1 < N else N
    assert output_size(32, 2.0) == 23  # T=8, T+R=12 -> F=11
    assert output_size(56, 2.0) == 35
    assert output_size(224, 4.0) == 63
    assert output_size(32, 1.0) == 32  # no crop
    assert output_size(16, 4.0) == 11  # T=2, T+R=6 -> F=5
    for n in range(2, 70):
        for s in (1.0, 1.3, 2.0, 2.5, 3.0, 7.7, 40.0):
            for r in (1.0, 2.5, 4.0):
                assert output_size(n, s, r) == output_size_reference(n, s, r)
                o = output_size(n, s, r)
                assert 1 <= o <= n and (o == n or o % 2 == 1)
    # an exact integer T + R: F excludes it
    assert output_size(40, 4.0, 4.0) == 2 * 8 + 1


@pytest.mark.parametrize("h,w,sh,sw", SHAPES_2D)
def test_forward_matches_reference_2d(h, w, sh, sw, device, tol):
    x = _x((2, 3, h, w), device=device)
    s = torch.tensor([sh, sw], dtype=torch.float64, device=device)
    y = diffstride2d(x, s)
    assert y.shape == (2, 3, output_size(h, sh), output_size(w, sw))
    torch.testing.assert_close(y, diffstride_reference(x, s), **tol(torch.float64))


@pytest.mark.parametrize("length,s", [(50, 3.3), (16, 1.5), (9, 1.0), (64, 40.0)])
def test_forward_matches_reference_1d(length, s, device, tol):
    x = _x((2, 3, length), device=device)
    st = torch.tensor([s], dtype=torch.float64, device=device)
    y = diffstride1d(x, st)
    assert y.shape == (2, 3, output_size(length, s))
    torch.testing.assert_close(y, diffstride_reference(x, st), **tol(torch.float64))


@pytest.mark.parametrize("h,w,sh,sw", SHAPES_2D)
def test_gradients_match_reference(h, w, sh, sw):
    x = _x((2, 3, h, w), grad=True)
    s = torch.tensor([sh, sw], dtype=torch.float64, requires_grad=True)
    y = diffstride2d(x, s)
    g = torch.randn_like(y)
    gx, gs = torch.autograd.grad((y * g).sum(), (x, s))
    gxr, gsr = torch.autograd.grad((diffstride_reference(x, s) * g).sum(), (x, s))
    torch.testing.assert_close(gx, gxr, rtol=1e-10, atol=1e-11)
    torch.testing.assert_close(gs, gsr, rtol=1e-9, atol=1e-10)


def test_float32_and_half_inputs(tol):
    x = _x((2, 4, 24, 20))
    s = torch.tensor([2.0, 1.6], dtype=torch.float64)
    ref = diffstride_reference(x, s)
    y32 = diffstride2d(x.float(), s.float())
    assert y32.dtype == torch.float32
    torch.testing.assert_close(y32.double(), ref, rtol=1e-5, atol=1e-5)
    for dt in (torch.float16, torch.bfloat16):
        yh = diffstride2d(x.to(dt), s.float())
        assert yh.dtype == dt
        torch.testing.assert_close(yh.double(), diffstride_reference(x.to(dt).double(), s),
                                   **tol(dt))


def test_mean_preserving_and_identity():
    c = torch.full((2, 3, 19, 26), 1.7, dtype=torch.float64)
    for s in ([2.0, 2.0], [1.2, 3.7], [5.0, 1.0]):
        y = diffstride2d(c, torch.tensor(s, dtype=torch.float64))
        torch.testing.assert_close(y, torch.full_like(y, 1.7))
    x = _x((2, 3, 16, 15))
    torch.testing.assert_close(diffstride2d(x, torch.tensor([1.0, 1.0], dtype=torch.float64)), x)
    # the mean of any input is kept (DC gain 1 after the scale)
    y = diffstride2d(x, torch.tensor([2.5, 1.8], dtype=torch.float64))
    torch.testing.assert_close(y.mean(dim=(2, 3)), x.mean(dim=(2, 3)))


def test_gradcheck_x_and_strides():
    x = _x((1, 2, 13, 10), grad=True)
    s = torch.tensor([1.9, 1.45], dtype=torch.float64, requires_grad=True)
    # output sizes are fixed near these strides, so the map is smooth there
    fn = lambda xx, ss: spectral_crop(xx, ss, 4.0, [11, 10])  # noqa: E731
    assert torch.autograd.gradcheck(fn, (x, s), eps=1e-6, atol=1e-7)
    x1 = _x((2, 1, 21), grad=True)
    s1 = torch.tensor([2.3], dtype=torch.float64, requires_grad=True)
    o1 = output_size(21, 2.3)
    assert torch.autograd.gradcheck(lambda a, b: spectral_crop(a, b, 4.0, [o1]), (x1, s1), eps=1e-6)


def test_stride_finite_differences():
    x = _x((3, 4, 28, 28))
    w = torch.randn(3, 4, output_size(28, 2.2), output_size(28, 1.7), dtype=torch.float64)
    s = torch.tensor([2.2, 1.7], dtype=torch.float64, requires_grad=True)
    (diffstride2d(x, s) * w).sum().backward()
    eps = 1e-5
    for a in range(2):
        sp, sm = s.detach().clone(), s.detach().clone()
        sp[a] += eps
        sm[a] -= eps
        fd = ((diffstride2d(x, sp) * w).sum() - (diffstride2d(x, sm) * w).sum()) / (2 * eps)
        assert abs(fd.item() - s.grad[a].item()) <= 1e-6 * max(1.0, abs(fd.item()))
        assert s.grad[a].abs().item() > 1e-6  # the ramp carries a real gradient


def test_stride_gradient_zero_beyond_floor():
    x = _x((1, 2, 10, 10))
    s = torch.tensor([6.0, 7.0], dtype=torch.float64, requires_grad=True)  # N/S < 2
    diffstride2d(x, s).sum().backward()
    assert torch.equal(s.grad, torch.zeros(2, dtype=torch.float64))


def test_noncontiguous_and_channels_last(tol):
    x = _x((2, 5, 18, 22))
    s = torch.tensor([2.1, 1.9], dtype=torch.float64)
    ref = diffstride_reference(x, s)
    xt = x.transpose(-1, -2).contiguous().transpose(-1, -2)
    assert not xt.is_contiguous()
    torch.testing.assert_close(diffstride2d(xt, s), ref, **tol(torch.float64))
    xc = x.to(memory_format=torch.channels_last)
    torch.testing.assert_close(diffstride2d(xc, s), ref, **tol(torch.float64))
    torch.testing.assert_close(diffstride2d(x[:, ::2], s), ref[:, ::2], **tol(torch.float64))


def test_empty_batch():
    x = torch.randn(0, 3, 16, 16, requires_grad=True)
    s = torch.tensor([2.0, 2.0], requires_grad=True)
    y = diffstride2d(x, s)
    assert y.shape == (0, 3, 15, 15)
    y.sum().backward()
    assert x.grad.shape == x.shape and torch.equal(s.grad, torch.zeros(2))


def test_deterministic_backward():
    x = torch.randn(32, 8, 24, 24)
    s = torch.tensor([2.3, 1.7], requires_grad=True)
    grads = []
    for threads in (1, 2, 1):
        torch.set_num_threads(threads)
        s.grad = None
        diffstride2d(x, s).square().sum().backward()
        grads.append(s.grad.clone())
    assert torch.equal(grads[0], grads[1]) and torch.equal(grads[0], grads[2])


def test_gemm_path_matches():
    x = _x((2, 3, 19, 16), grad=True)
    s = torch.tensor([2.4, 1.6], dtype=torch.float64, requires_grad=True)
    y1 = diffstride2d(x, s)
    y2 = diffstride2d_gemm(x, s)
    torch.testing.assert_close(y1, y2, rtol=1e-10, atol=1e-11)
    g = torch.randn_like(y1)
    a = torch.autograd.grad((y1 * g).sum(), (x, s))
    b = torch.autograd.grad((y2 * g).sum(), (x, s))
    for u, v in zip(a, b):
        torch.testing.assert_close(u, v, rtol=1e-9, atol=1e-10)


@pytest.mark.parametrize("requires_grad", [False, True])
def test_opcheck(requires_grad):
    x = torch.randn(2, 3, 14, 11, requires_grad=requires_grad)
    s = torch.tensor([1.8, 1.4], requires_grad=requires_grad)
    torch.library.opcheck(torch.ops.udl.spectral_crop.default, (x, s, 4.0, [11, 11]))
    x1 = torch.randn(2, 3, 30, dtype=torch.float64, requires_grad=requires_grad)
    s1 = torch.tensor([2.5], dtype=torch.float64, requires_grad=requires_grad)
    torch.library.opcheck(torch.ops.udl.spectral_crop.default, (x1, s1, 3.0, [17]))
    g = torch.randn(2, 3, 11, 11)
    kept = torch.randn(2, 3, 11, 6, dtype=torch.complex64)
    torch.library.opcheck(torch.ops.udl.spectral_crop_backward.default,
                          (g, kept, s.detach(), 4.0, [14, 11], True))


def test_backward_op_adjoint():
    # <P x, g> == <x, P^T g>: the x-gradient is the exact adjoint of the forward
    x = _x((2, 2, 15, 12))
    s = torch.tensor([1.8, 1.5], dtype=torch.float64)
    out = [output_size(15, 1.8), output_size(12, 1.5)]
    y, kept = torch.ops.udl.spectral_crop(x, s, 4.0, out)
    g = torch.randn_like(y)
    gx, _ = spectral_crop_backward(g, kept, s, 4.0, [15, 12], False)
    assert math.isclose((y * g).sum().item(), (x * gx).sum().item(), rel_tol=1e-10)


BAD = [
    (lambda: diffstride2d(torch.randn(3, 8, 8), [2.0, 2.0]), ValueError, "x must be a 4-D"),
    (lambda: diffstride1d(torch.randn(2, 3, 4, 8), 2.0), ValueError, "x must be a 3-D"),
    (lambda: diffstride2d(torch.randn(1, 1, 8, 8), [0.5, 2.0]), ValueError, "strides must be finite"),
    (lambda: diffstride2d(torch.randn(1, 1, 8, 8), [float("nan"), 2.0]), ValueError,
     "strides must be finite"),
    (lambda: diffstride2d(torch.randn(1, 1, 8, 8), [2.0, 2.0], smoothness=0.0), ValueError,
     "smoothness"),
    (lambda: diffstride2d(torch.ones(1, 1, 8, 8, dtype=torch.int64), [2.0, 2.0]), TypeError,
     "x must be float"),
    (lambda: diffstride2d(torch.ones(1, 1, 8, 8, dtype=torch.complex64), [2.0, 2.0]), TypeError,
     "x must be float"),
    (lambda: diffstride2d(torch.randn(1, 1, 1, 8), [2.0, 2.0]), ValueError, "spatial size"),
    (lambda: diffstride2d(torch.randn(1, 1, 8, 8), torch.tensor([2.0, 2.0, 2.0])), ValueError,
     "strides must have 2"),
    (lambda: diffstride2d(torch.randn(1, 1, 8, 8), torch.tensor([2, 2])), TypeError,
     "strides must be a floating"),
    (lambda: diffstride2d(torch.randn(1, 1, 8, 8), torch.tensor([2.0, 2.0], device="meta")),
     ValueError, "same device"),
]


@pytest.mark.parametrize("i", range(len(BAD)))
def test_bad_inputs(i):
    fn, exc, match = BAD[i]
    with pytest.raises(exc, match=match):
        fn()


def test_bad_inputs_native():
    s = torch.tensor([2.0, 2.0])
    with pytest.raises(RuntimeError, match="out_size"):
        torch.ops.udl.spectral_crop(torch.randn(1, 1, 8, 8), s, 4.0, [6, 8])
    with pytest.raises(RuntimeError, match="smoothness"):
        torch.ops.udl.spectral_crop(torch.randn(1, 1, 8, 8), s, -1.0, [7, 7])
    with pytest.raises(RuntimeError, match="strides must be finite"):
        torch.ops.udl.spectral_crop(torch.randn(1, 1, 8, 8), torch.tensor([0.5, 2.0]), 4.0, [7, 7])
    with pytest.raises(RuntimeError, match="x must be a floating"):
        torch.ops.udl.spectral_crop(torch.ones(1, 1, 8, 8, dtype=torch.int32), s, 4.0, [7, 7])
    with pytest.raises(RuntimeError, match="x must be a 4-D"):
        torch.ops.udl.spectral_crop(torch.randn(1, 8, 8), s, 4.0, [7, 7])


@pytest.mark.cuda
def test_cuda_matches_cpu():
    x = _x((4, 3, 30, 27), dtype=torch.float32)
    s = torch.tensor([2.2, 1.7], requires_grad=True)
    y = diffstride2d(x, s)
    g = torch.randn_like(y)
    gs = torch.autograd.grad((y * g).sum(), s)[0]
    xc = x.cuda().requires_grad_()
    sc = s.detach().cuda().requires_grad_()
    yc = diffstride2d(xc, sc)
    gxc, gsc = torch.autograd.grad((yc * g.cuda()).sum(), (xc, sc))
    torch.testing.assert_close(yc.cpu(), y, rtol=1e-4, atol=1e-5)
    torch.testing.assert_close(gsc.cpu(), gs, rtol=1e-4, atol=1e-4)
    # deterministic: same bits on a second run
    gsc2 = torch.autograd.grad((diffstride2d(xc, sc) * g.cuda()).sum(), sc)[0]
    assert torch.equal(gsc, gsc2)
    x64 = x.double().cuda()
    s64 = s.detach().double().cuda()
    torch.testing.assert_close(diffstride2d(x64, s64).cpu(), diffstride_reference(x.double(), s.double()))


def test_torch_compile_fullgraph_with_fixed_sizes():
    s = torch.tensor([2.0, 2.0], requires_grad=True)
    x = torch.randn(2, 3, 32, 32)

    def f(xx, ss):
        return spectral_crop(xx, ss, 4.0, [23, 23]).square().mean()

    compiled = torch.compile(f, fullgraph=True, backend="aot_eager")
    loss = compiled(x, s)
    (gc,) = torch.autograd.grad(loss, s)
    (ge,) = torch.autograd.grad(f(x, s), s)
    torch.testing.assert_close(gc, ge)
