"""udl::interaction_masked_inputs and udl::interaction_reduce against their references."""

from __future__ import annotations

import math

import pytest
import torch

from udl.ops import interactions as ops
from udl.ops.interactions_reference import (
    bits_to_mask,
    context_reference,
    masked_inputs_reference,
    reduce_reference,
)


def _case(n=10, shape=(3, 4, 5), dtype=torch.float32, device="cpu", seed=0):
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    base = torch.randn(shape, generator=g, dtype=torch.float64).to(dtype)
    pm = torch.randint(-1, n, shape[-2:], generator=g)
    pm.view(-1)[:n] = torch.arange(n)  # every player present somewhere
    pm = pm.expand(shape).contiguous()
    pairs = torch.tensor([[0, 1], [3, 7], [9, 2], [5, 4]])
    rows = []
    for p in range(pairs.shape[0]):
        for m in range(n - 1):
            total = math.comb(n - 2, m)
            for k in range(3):
                rows.append([p, m, k if total > 3 else k % total, int(total <= 3)])
    rows = torch.tensor(rows)
    return (x.to(device), base.to(device), pm.to(device), pairs.to(device), rows.to(device))


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64, torch.float16, torch.bfloat16])
def test_masked_inputs_matches_reference(device, dtype):
    n = 10
    x, base, pm, pairs, rows = _case(n, dtype=dtype, device=device)
    masked, ctx = ops.masked_inputs(x, base, pm, pairs, rows, n, 1234)
    assert masked.shape == (rows.shape[0], 4, *x.shape) and masked.dtype == dtype
    assert ctx.shape == (rows.shape[0], 1) and ctx.dtype == torch.long
    ref = masked_inputs_reference(x, base, pm, pairs, rows, ctx, n)
    assert torch.equal(masked, ref)  # a pure selection: bit-exact


def test_contexts_bit_exact_with_python_sampler(device):
    n = 70  # two bitset words
    x, base, pm, _, _ = _case(n=n, shape=(2, 10, 10), device=device)
    pairs = torch.tensor([[0, 69], [64, 63], [10, 3]], device=device)
    rows = []
    for p in range(3):
        for m in (0, 1, 5, 34, 35, 60, 68):
            for k in range(2):
                rows.append([p, m, k, 0])
        rows.append([p, 2, 100, 1])  # enumerated: the 101st 2-subset of 68 players
    rows_t = torch.tensor(rows, device=device)
    _, ctx = ops.masked_inputs(x, base, pm, pairs, rows_t, n, 987654321)
    mask = bits_to_mask(ctx.cpu(), n)
    for r, (p, m, k, e) in enumerate(rows):
        i, j = pairs[p].tolist()
        got = torch.nonzero(mask[r]).flatten().tolist()
        assert got == context_reference(n, i, j, m, k, bool(e), 987654321)
        assert len(got) == m and i not in got and j not in got


def test_context_sampling_is_uniform():
    # All C(6, 3) = 20 contexts of N \ {i, j} for n = 8, m = 3 must be equally likely.
    n, K = 8, 8000
    x = torch.zeros(n)
    pm = torch.arange(n)
    pairs = torch.tensor([[2, 5]])
    rows = torch.stack([torch.zeros(K, dtype=torch.long), torch.full((K,), 3),
                        torch.arange(K), torch.zeros(K, dtype=torch.long)], dim=1)
    _, ctx = ops.masked_inputs(x, x, pm, pairs, rows, n, 7)
    codes = ctx[:, 0]
    assert bool(((codes >> 2) & 1).eq(0).all()) and bool(((codes >> 5) & 1).eq(0).all())
    uniq, counts = torch.unique(codes, return_counts=True)
    assert uniq.numel() == 20
    expected = K / 20
    chi2 = float(((counts.double() - expected) ** 2 / expected).sum())
    assert chi2 < 43.8  # 99.9% quantile of chi^2 with 19 dof


def test_enumeration_covers_every_context_once():
    n, m = 9, 3
    total = math.comb(n - 2, m)
    x = torch.zeros(n)
    rows = torch.stack([torch.zeros(total, dtype=torch.long), torch.full((total,), m),
                        torch.arange(total), torch.ones(total, dtype=torch.long)], dim=1)
    _, ctx = ops.masked_inputs(x, x, torch.arange(n), torch.tensor([[4, 0]]), rows, n, 0)
    assert torch.unique(ctx[:, 0]).numel() == total
    assert bool(((ctx[:, 0] & ((1 << 4) | 1)) == 0).all())


def test_determinism_and_batch_independence(device):
    n = 10
    x, base, pm, pairs, rows = _case(n, device=device)
    a, ca = ops.masked_inputs(x, base, pm, pairs, rows, n, 42)
    b, cb = ops.masked_inputs(x, base, pm, pairs, rows[7:], n, 42)
    assert torch.equal(ca[7:], cb) and torch.equal(a[7:], b)
    _, cc = ops.masked_inputs(x, base, pm, pairs, rows, n, 43)
    assert not torch.equal(ca, cc)


def test_noncontiguous_inputs(device):
    n = 10
    x, base, pm, pairs, rows = _case(n, shape=(4, 5, 3), device=device)
    xt, bt, pt = x.transpose(0, 2), base.transpose(0, 2), pm.transpose(0, 2)
    assert not xt.is_contiguous()
    masked, ctx = ops.masked_inputs(xt, bt, pt, pairs, rows[::2], n, 5)
    ref = masked_inputs_reference(xt.contiguous(), bt.contiguous(), pt.contiguous(), pairs,
                                  rows[::2].contiguous(), ctx, n)
    assert torch.equal(masked, ref)


def test_empty_rows_and_groups(device):
    n = 10
    x, base, pm, pairs, _ = _case(n, device=device)
    rows = torch.zeros(0, 4, dtype=torch.long, device=device)
    masked, ctx = ops.masked_inputs(x, base, pm, pairs, rows, n, 1)
    assert masked.shape == (0, 4, *x.shape) and ctx.shape == (0, 1)
    mean, var = ops.reduce_deltas(torch.zeros(0, 4, device=device),
                                  torch.zeros(1, dtype=torch.long, device=device))
    assert mean.shape == (0,) and var.shape == (0,)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_reduce_matches_reference(device, dtype, tol):
    g = torch.Generator().manual_seed(3)
    values = torch.randn(50, 4, generator=g, dtype=torch.float64).to(dtype).to(device)
    offsets = torch.tensor([0, 10, 10, 11, 30, 50], device=device)
    mean, var = ops.reduce_deltas(values, offsets)
    rm, rv = reduce_reference(values.cpu(), offsets.cpu())
    torch.testing.assert_close(mean.cpu(), rm, **tol(dtype))
    torch.testing.assert_close(var.cpu(), rv, **tol(dtype))
    assert float(var[1]) == 0.0 and float(var[2]) == 0.0 and float(mean[1]) == 0.0
    # non-contiguous values
    wide = torch.randn(50, 8, generator=g, dtype=torch.float64).to(dtype).to(device)
    m2, v2 = ops.reduce_deltas(wide[:, ::2], offsets)
    rm2, rv2 = reduce_reference(wide[:, ::2].cpu(), offsets.cpu())
    torch.testing.assert_close(m2.cpu(), rm2, **tol(dtype))
    torch.testing.assert_close(v2.cpu(), rv2, **tol(dtype))


def test_opcheck():
    n = 10
    x, base, pm, pairs, rows = _case(n)
    torch.library.opcheck(torch.ops.udl.interaction_masked_inputs.default,
                          (x, base, pm, pairs, rows, n, 3))
    values = torch.randn(12, 4)
    torch.library.opcheck(torch.ops.udl.interaction_reduce.default,
                          (values, torch.tensor([0, 5, 12])))


def test_masked_inputs_gradcheck(device):
    n = 10
    x, base, pm, pairs, rows = _case(n, shape=(2, 3, 4), dtype=torch.float64, device=device)
    rows = rows[::5].contiguous()
    x.requires_grad_(True)
    base.requires_grad_(True)
    assert torch.autograd.gradcheck(
        lambda a, b: ops.masked_inputs(a, b, pm, pairs, rows, n, 9)[0], (x, base))
    # gradient = number of (row, term) slots where the element is present / absent
    masked, ctx = ops.masked_inputs(x, base, pm, pairs, rows, n, 9)
    masked.sum().backward()
    ref = masked_inputs_reference(torch.ones_like(x), torch.zeros_like(base), pm, pairs, rows,
                                  ctx, n)
    present = ref.sum(dim=(0, 1))
    torch.testing.assert_close(x.grad, present)
    torch.testing.assert_close(base.grad, 4 * rows.shape[0] - present)


def test_opcheck_with_grad():
    n = 10
    x, base, pm, pairs, rows = _case(n, dtype=torch.float64)
    torch.library.opcheck(torch.ops.udl.interaction_masked_inputs.default,
                          (x.requires_grad_(True), base.requires_grad_(True), pm, pairs, rows[:8],
                           n, 3))
    masked, ctx = ops.masked_inputs(x.detach(), base.detach(), pm, pairs, rows[:8], n, 3)
    torch.library.opcheck(torch.ops.udl.interaction_masked_inputs_backward.default,
                          (torch.randn_like(masked), ctx, pm, pairs, rows[:8], n))
    with pytest.raises(RuntimeError, match="contexts must have shape"):
        torch.ops.udl.interaction_masked_inputs_backward(masked, ctx[:, :0], pm, pairs, rows[:8],
                                                         n)


def test_bad_inputs():
    n = 10
    x, base, pm, pairs, rows = _case(n)
    with pytest.raises(RuntimeError, match="x must be a floating-point"):
        ops.masked_inputs(x.long(), base.long(), pm, pairs, rows, n, 0)
    with pytest.raises(RuntimeError, match="baseline must have the shape"):
        ops.masked_inputs(x, base[0], pm, pairs, rows, n, 0)
    with pytest.raises(RuntimeError, match="player_map values must be in"):
        ops.masked_inputs(x, base, pm.clamp_max(n - 1) + 1, pairs, rows, n, 0)
    with pytest.raises(RuntimeError, match="must name two different players"):
        ops.masked_inputs(x, base, pm, torch.tensor([[1, 1]]), rows[:1], n, 0)
    with pytest.raises(RuntimeError, match="out of range"):
        ops.masked_inputs(x, base, pm, torch.tensor([[1, 10]]), rows[:1], n, 0)
    with pytest.raises(RuntimeError, match=r"order m\) must be in \[0, n-2=8\]"):
        ops.masked_inputs(x, base, pm, pairs, torch.tensor([[0, 9, 0, 0]]), n, 0)
    with pytest.raises(RuntimeError, match="pair index"):
        ops.masked_inputs(x, base, pm, pairs, torch.tensor([[4, 1, 0, 0]]), n, 0)
    with pytest.raises(RuntimeError, match="num_players must be >= 2"):
        ops.masked_inputs(x, base, pm.clamp_max(0), pairs, rows, 1, 0)
    with pytest.raises(RuntimeError, match="rows must have shape"):
        ops.masked_inputs(x, base, pm, pairs, rows[:, :3], n, 0)
    with pytest.raises(RuntimeError, match="offsets\\[-1\\] must equal"):
        ops.reduce_deltas(torch.zeros(5, 4), torch.tensor([0, 4]))
    with pytest.raises(RuntimeError, match="non-decreasing"):
        ops.reduce_deltas(torch.zeros(5, 4), torch.tensor([0, 4, 3, 5]))
    with pytest.raises(RuntimeError, match="values must have shape"):
        ops.reduce_deltas(torch.zeros(5, 3), torch.tensor([0, 5]))


@pytest.mark.cuda
def test_cpu_cuda_parity():
    n = 70
    x, base, pm, _, _ = _case(n=n, shape=(3, 10, 10))
    pairs = torch.tensor([[0, 69], [64, 63]])
    rows = torch.tensor([[p, m, k, 0] for p in range(2) for m in (0, 3, 40, 68) for k in range(5)])
    a, ca = ops.masked_inputs(x, base, pm, pairs, rows, n, 11)
    b, cb = ops.masked_inputs(x.cuda(), base.cuda(), pm.cuda(), pairs.cuda(), rows.cuda(), n, 11)
    assert torch.equal(ca, cb.cpu()) and torch.equal(a, b.cpu())
    g = torch.randn_like(a)
    gx1, gb1 = torch.ops.udl.interaction_masked_inputs_backward(g, ca, pm, pairs, rows, n)
    gx2, gb2 = torch.ops.udl.interaction_masked_inputs_backward(g.cuda(), cb, pm.cuda(),
                                                                pairs.cuda(), rows.cuda(), n)
    torch.testing.assert_close(gx1, gx2.cpu())
    torch.testing.assert_close(gb1, gb2.cpu())
    values = torch.randn(40, 4, dtype=torch.float64)
    off = torch.tensor([0, 3, 3, 20, 40])
    m1, v1 = ops.reduce_deltas(values, off)
    m2, v2 = ops.reduce_deltas(values.cuda(), off.cuda())
    torch.testing.assert_close(m1, m2.cpu())
    torch.testing.assert_close(v1, v2.cpu())
