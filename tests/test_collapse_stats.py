"""udl.collapse.CollapseStats: streaming, merging, DDP all_reduce, (de)serialisation, bad input."""

from __future__ import annotations

import datetime
import socket

import pytest
import torch
import torch.distributed as dist
import torch.multiprocessing as mp

from udl.collapse import CollapseStats


def _data(c=5, d=7, n=300, seed=0):
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, c, (n,), generator=g)
    mu = torch.randn(c, d, generator=g, dtype=torch.float64) * 4
    return mu[y] + torch.randn(n, d, generator=g, dtype=torch.float64), y


def _exact(h, y, c):
    counts = torch.bincount(y, minlength=c).double()
    means = torch.stack([h[y == k].mean(0) for k in range(c)])
    z = h - means[y]
    return counts, means, z.T @ z


def _assert_same(a: CollapseStats, b: CollapseStats, rtol=1e-12):
    torch.testing.assert_close(a.counts, b.counts, rtol=0, atol=0)
    torch.testing.assert_close(a.means, b.means, rtol=rtol, atol=1e-12)
    torch.testing.assert_close(a.scatter, b.scatter, rtol=rtol, atol=1e-10)
    torch.testing.assert_close(a.counters, b.counters, rtol=0, atol=0)


def test_update_matches_two_pass_float64():
    c, d = 5, 7
    h, y = _data(c, d)
    s = CollapseStats(c, d)
    for i in range(0, len(y), 37):
        s.update(h[i:i + 37], y[i:i + 37])
    counts, means, scatter = _exact(h, y, c)
    torch.testing.assert_close(s.counts, counts)
    torch.testing.assert_close(s.means, means, rtol=1e-12, atol=1e-12)
    torch.testing.assert_close(s.scatter, scatter, rtol=1e-12, atol=1e-10)
    torch.testing.assert_close(s.within_cov(), scatter / len(y))
    assert s.num_samples == len(y) and s.dim == d


@pytest.mark.parametrize("sizes", [[300], [1] * 10 + [290], [150, 150], [7, 93, 0, 200]])
def test_streaming_independent_of_partition_and_merge_order(sizes):
    c, d = 5, 7
    h, y = _data(c, d)
    whole = CollapseStats(c, d).update(h, y)
    parts, start = [], 0
    for n in sizes:
        parts.append(CollapseStats(c, d).update(h[start:start + n], y[start:start + n]))
        start += n
    fwd = CollapseStats(c, d)
    for p in parts:
        fwd.merge(p)
    rev = CollapseStats(c, d)
    for p in reversed(parts):
        rev.merge(p)
    # tree merge
    tree = parts[0].copy()
    if len(parts) > 1:
        rest = parts[-1].copy()
        for p in parts[1:-1]:
            rest.merge(p)
        tree.merge(rest)
    for other in (fwd, rev, tree):
        torch.testing.assert_close(other.counts, whole.counts, rtol=0, atol=0)
        torch.testing.assert_close(other.means, whole.means, rtol=1e-12, atol=1e-12)
        torch.testing.assert_close(other.scatter, whole.scatter, rtol=1e-12, atol=1e-10)


@pytest.mark.parametrize("precision, rtol", [("float64", 1e-9), ("auto", 2e-5)])
def test_float32_features_converted_before_arithmetic(precision, rtol):
    """Means 1e6 x the spread: exact in float64 mode; "auto" (float32 GEMM of the float64-centred
    residuals) stays accurate relative to the spread itself, unlike any raw-moment shortcut."""
    c, d = 3, 4
    g = torch.Generator().manual_seed(0)
    y = torch.arange(c).repeat(500)
    h = (1000.0 + torch.randn(len(y), d, generator=g) * 1e-3).float()
    s = CollapseStats(c, d, precision=precision)
    for i in range(0, len(y), 64):
        s.update(h[i:i + 64], y[i:i + 64])
    _, _, scatter = _exact(h.double(), y, c)
    torch.testing.assert_close(s.scatter, scatter, rtol=rtol, atol=1e-15 if rtol < 1e-6 else 1e-9)
    if precision == "auto":
        assert s._gemm_dtype(h.dtype) == torch.float32
        assert s._gemm_dtype(torch.float64) == torch.float64


def test_precision_argument_checked():
    with pytest.raises(ValueError, match="precision must be 'auto' or 'float64'"):
        CollapseStats(3, 4, precision="float32")


def test_state_dict_roundtrip_and_copy(tmp_path):
    c, d = 4, 3
    h, y = _data(c, d)
    s = CollapseStats(c, d).update(h, y, logits=torch.randn(len(y), c))
    s.set_reference_means(s.class_means())
    s.score(h, y, torch.randn(len(y), c))
    torch.save(s.state_dict(), tmp_path / "s.pt")
    t = CollapseStats(c, d).load_state_dict(torch.load(tmp_path / "s.pt"))
    _assert_same(s, t, rtol=0)
    torch.testing.assert_close(t.reference_means, s.reference_means)
    u = s.copy()
    u.update(h[:3], y[:3])
    assert u.num_samples == s.num_samples + 3
    with pytest.raises(ValueError, match="expected"):
        CollapseStats(c + 1, d).load_state_dict(s.state_dict())


def test_reference_means_with_absent_class_never_predicted():
    c, d = 3, 2
    h = torch.tensor([[0.0, 0.0], [10.0, 0.0], [0.1, 0.0]], dtype=torch.float64)
    y = torch.tensor([0, 1, 0])
    s = CollapseStats(c, d).update(h, y)
    ref = s.class_means()
    assert torch.isnan(ref[2]).all()
    k = CollapseStats(c, d, reference_means=ref)
    k.score(h, y, torch.tensor([[1.0, 0, 0], [0, 1.0, 0], [0, 0, 1.0]]))
    assert k.counter("n_ncc_correct") == 3 and k.counter("n_ncc_disagree") == 1
    assert k.counter("n_correct") == 2


def test_empty_batch_is_a_no_op():
    s = CollapseStats(3, 4)
    s.update(torch.zeros(0, 4), torch.zeros(0, dtype=torch.long))
    assert s.num_samples == 0 and s.num_batches == 1
    with pytest.raises(ValueError, match="empty"):
        s.within_cov()


def test_bad_inputs():
    s = CollapseStats(3, 4)
    with pytest.raises(ValueError, match="num_classes must be an int >= 2"):
        CollapseStats(1, 4)
    with pytest.raises(ValueError, match="dim"):
        CollapseStats(3, 0)
    with pytest.raises(ValueError, match=r"labels must lie in \[0, 3\).*batch 0"):
        s.update(torch.randn(2, 4), torch.tensor([0, 3]))
    with pytest.raises(ValueError, match=r"labels must lie"):
        s.update(torch.randn(2, 4), torch.tensor([-1, 0]))
    with pytest.raises(ValueError, match="labels must be an integer tensor"):
        s.update(torch.randn(2, 4), torch.tensor([0.0, 1.0]))
    s.update(torch.randn(2, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="dim 5 but .* dim=4 .*batch 1"):
        s.update(torch.randn(2, 5), torch.tensor([0, 1]))
    bad = torch.randn(3, 4)
    bad[1, 2] = float("nan")
    with pytest.raises(ValueError, match=r"NaN or inf \(batch 1\)"):
        s.update(bad, torch.tensor([0, 1, 2]))
    bad[1, 2] = float("inf")
    with pytest.raises(ValueError, match=r"NaN or inf"):
        s.update(bad, torch.tensor([0, 1, 2]))
    with pytest.raises(ValueError, match="rows"):
        s.update(torch.randn(3, 4), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="logits must have shape"):
        s.update(torch.randn(2, 4), torch.tensor([0, 1]), logits=torch.randn(2, 4))
    with pytest.raises(ValueError, match="floating"):
        s.update(torch.ones(2, 4, dtype=torch.long), torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="reference_means"):
        s.score(torch.randn(2, 4), torch.tensor([0, 1]), torch.randn(2, 3))
    with pytest.raises(ValueError, match="reference_means must have shape"):
        s.set_reference_means(torch.zeros(2, 4))
    with pytest.raises(ValueError, match="expected"):
        s.merge(CollapseStats(3, 5))
    # nothing of the rejected batches was accumulated
    assert s.num_samples == 2


# ---------------------------------------------------------------------- DDP (gloo, 2 processes)
def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _ddp_worker(rank: int, world: int, port: int, out: str) -> None:
    torch.set_num_threads(1)
    dist.init_process_group("gloo", init_method=f"tcp://127.0.0.1:{port}", rank=rank, world_size=world,
                            timeout=datetime.timedelta(seconds=60))
    try:
        c, d = 5, 7
        h, y = _data(c, d)
        logits = torch.randn(len(y), c, generator=torch.Generator().manual_seed(5))
        idx = torch.arange(rank, len(y), world)       # interleaved shards of unequal class mixes
        s = CollapseStats(c, d)
        for i in range(0, len(idx), 29):
            j = idx[i:i + 29]
            s.update(h[j], y[j], logits=logits[j])
        s.all_reduce()
        if rank == 0:
            torch.save(s.state_dict(), out)
    finally:
        dist.destroy_process_group()


def test_all_reduce_two_gloo_processes_equals_single_process(tmp_path):
    out = str(tmp_path / "ddp.pt")
    # fork: the children inherit the imported torch/udl (spawn would re-import them, ~10 s each)
    method = "fork" if "fork" in mp.get_all_start_methods() else "spawn"
    mp.start_processes(_ddp_worker, args=(2, _free_port(), out), nprocs=2, join=True,
                       start_method=method)
    c, d = 5, 7
    h, y = _data(c, d)
    logits = torch.randn(len(y), c, generator=torch.Generator().manual_seed(5))
    single = CollapseStats(c, d).update(h, y, logits=logits)
    got = CollapseStats(c, d).load_state_dict(torch.load(out))
    _assert_same(got, single, rtol=1e-12)


def test_all_reduce_needs_process_group():
    with pytest.raises(ValueError, match="process group"):
        CollapseStats(2, 2).all_reduce()


def test_check_values_off_skips_value_checks_only():
    s = CollapseStats(3, 2, check_values=False)
    bad = torch.tensor([[float("nan"), 0.0]])
    s.update(bad, torch.tensor([0]))          # accepted (no host sync), poisons the statistics
    assert torch.isnan(s.means[0, 0])
    with pytest.raises(ValueError, match="dim"):
        s.update(torch.zeros(1, 3), torch.tensor([0]))
    assert s.copy().check_values is False


def test_float32_row_buffer_flushes_consistently():
    """The float32 path buffers residual rows: reading S_W mid-stream, a batch larger than the
    buffer, state_dict and merge must all see every row exactly once."""
    c, d = 4, 8                       # buffer capacity max(2048, 2 d) = 2048 rows
    g = torch.Generator().manual_seed(3)
    y = torch.randint(0, c, (6000,), generator=g)
    h = (torch.randn(c, d, generator=g)[y] * 10 + torch.randn(6000, d, generator=g)).float()
    s, t = CollapseStats(c, d), CollapseStats(c, d)
    for i in range(0, 2800, 700):     # 700 + 4 rows per batch: several flushes
        s.update(h[i:i + 700], y[i:i + 700])
        t.update(h[i:i + 700], y[i:i + 700])
        _ = t.scatter                 # forces a flush after every batch
    s.update(h[2800:], y[2800:])      # 3204 rows > capacity: the direct GEMM path
    t.update(h[2800:], y[2800:])
    _, _, exact = _exact(h.double(), y, c)
    tol = dict(rtol=1e-5, atol=1e-5 * float(exact.diagonal().max()))   # relative to the spread
    torch.testing.assert_close(s.scatter, exact, **tol)
    torch.testing.assert_close(t.scatter, exact, **tol)
    half = CollapseStats(c, d)
    half.update(h[:1000], y[:1000])   # 1004 rows still buffered
    other = CollapseStats(c, d).update(h[1000:], y[1000:])
    torch.testing.assert_close(half.copy().merge(other).scatter, exact, **tol)
    restored = CollapseStats(c, d).load_state_dict(half.state_dict())
    torch.testing.assert_close(restored.scatter, half.scatter, rtol=0, atol=0)
