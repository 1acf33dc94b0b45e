"""udl.interactions: closed forms, exact enumeration, the sampler, OrderLoss, bad inputs."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

from udl.interactions import (
    ORDER_RATIOS,
    OrderLoss,
    exact_interactions,
    grid_players,
    multi_order_interaction,
    nested_player_masks,
    resolve_orders,
    sample_pairs,
    value_from_logits,
)


def _mlp(n: int, seed: int = 0, classes: int = 3) -> nn.Module:
    torch.manual_seed(seed)
    return nn.Sequential(nn.Linear(n, 24), nn.Tanh(), nn.Linear(24, 24), nn.Tanh(),
                         nn.Linear(24, classes)).double().eval()


def _model_game(net: nn.Module, x: torch.Tensor, target: int, baseline: torch.Tensor):
    def value_fn(mask: torch.Tensor) -> torch.Tensor:
        inp = torch.where(mask, x, baseline)
        with torch.no_grad():
            return value_from_logits(net(inp), torch.full((mask.shape[0],), target))
    return value_fn


# ---------------------------------------------------------------- closed forms (exact) ---------
def test_and_game_closed_form():
    n, T = 8, [0, 2, 5, 6]
    ex = exact_interactions(lambda m: m[:, T].all(1).double(), n)
    expected = torch.tensor([math.comb(m, 2) / math.comb(n - 2, 2) for m in range(n - 1)],
                            dtype=torch.float64)
    for i in T:
        for j in T:
            if i != j:
                torch.testing.assert_close(ex.I[i, j], expected)
    outside = [p for p in range(n) if p not in T]
    assert float(ex.I[outside][:, :].abs().max()) < 1e-12
    assert abs(ex.efficiency_gap()) < 1e-12


def test_or_game_closed_form():
    n, T = 9, [1, 3, 4, 8]
    ex = exact_interactions(lambda m: m[:, T].any(1).double(), n)
    expected = torch.tensor([-math.comb(n - len(T), m) / math.comb(n - 2, m) for m in range(n - 1)],
                            dtype=torch.float64)
    torch.testing.assert_close(ex.I[1, 8], expected)
    torch.testing.assert_close(ex.I[3, 4], expected)
    assert float(ex.I[0, 2].abs().max()) < 1e-12


def test_additive_game_has_no_interactions():
    w = torch.randn(7, dtype=torch.float64)
    ex = exact_interactions(lambda m: (m.double() * w).sum(1), 7)
    assert float(ex.I.abs().max()) < 1e-12
    torch.testing.assert_close(ex.shapley_values, w)


def test_harsanyi_link_and_identities():
    # Sparse Harsanyi game: I^(m)(i,j) = sum_T a(T u {i,j}) C(m,|T|)/C(n-2,|T|).
    n = 8
    dividends = {(0, 1): 1.5, (0, 1, 4, 6): -2.0, (2, 3, 5): 0.7, tuple(range(n)): 0.3}

    def game(mask):
        out = torch.zeros(mask.shape[0], dtype=torch.float64)
        for T, a in dividends.items():
            out += a * mask[:, list(T)].all(1).double()
        return out

    ex = exact_interactions(game, n)
    for T, a in dividends.items():
        code = sum(1 << p for p in T)
        assert abs(float(ex.harsanyi[code]) - a) < 1e-12
    assert float(ex.harsanyi.abs().sum()) == pytest.approx(sum(abs(a) for a in dividends.values()))
    for (i, j) in [(0, 1), (2, 5), (4, 6), (3, 7)]:
        exp = torch.zeros(n - 1, dtype=torch.float64)
        for T, a in dividends.items():
            if i in T and j in T:
                t = len(T) - 2
                exp += a * torch.tensor([math.comb(m, t) / math.comb(n - 2, t)
                                         for m in range(n - 1)], dtype=torch.float64)
        torch.testing.assert_close(ex.I[i, j], exp)
    assert abs(ex.efficiency_gap()) < 1e-10
    # SII in Harsanyi form: sum_T a(T u {i,j}) / (|T| + 1)
    sii = sum(a / (len(T) - 1) for T, a in dividends.items() if 0 in T and 1 in T)
    assert float(ex.shapley_interaction[0, 1]) == pytest.approx(sii)


def test_product_of_two_players_constant_at_every_order():
    n, a, b = 10, 2, 7
    x = torch.randn(1, n, dtype=torch.float64)
    base = torch.randn(n, dtype=torch.float64)

    def model(inp):
        return 3.0 * inp[:, a] * inp[:, b]

    const = 3.0 * float((x[0, a] - base[a]) * (x[0, b] - base[b]))
    res = multi_order_interaction(model, x, None, torch.arange(n), pairs=torch.tensor([[a, b],
                                  [0, 1]]), orders=list(range(n - 1)), num_contexts=5,
                                  baseline=base, value="output")
    torch.testing.assert_close(res.I[0, 0], torch.full((n - 1,), const, dtype=torch.float64))
    assert float(res.I[0, 1].abs().max()) < 1e-12
    assert float(res.stderr.max()) < 1e-12  # Δ is the same constant in every context
    torch.testing.assert_close(res.J[res.strength > 0], torch.ones(n - 1, dtype=torch.float64))


def test_shapley_indices_match_shapiq():
    shapiq = pytest.importorskip("shapiq")
    n = 6
    net, x = _mlp(n), torch.randn(1, n, dtype=torch.float64)
    base = torch.zeros(n, dtype=torch.float64)
    fn = _model_game(net, x, 1, base)
    ex = exact_interactions(fn, n)

    def game(coalitions):
        return fn(torch.as_tensor(coalitions, dtype=torch.bool)).numpy()

    ec = shapiq.ExactComputer(n_players=n, game=game)
    sii = ec("SII", order=2)
    stii = ec("STII", order=2)
    sv = ec("SV", order=1)
    for i in range(n):
        assert float(ex.shapley_values[i]) == pytest.approx(sv[(i,)], abs=1e-10)
        for j in range(i + 1, n):
            assert float(ex.shapley_interaction[i, j]) == pytest.approx(sii[(i, j)], abs=1e-10)
            assert float(ex.shapley_taylor[i, j]) == pytest.approx(stii[(i, j)], abs=1e-10)


def test_order_loss_weights_identity():
    # Δu = E v(S2) - (k2/k1) E v(S1) + (k2/k1 - 1) v(∅) = Σ_{i≠j} Σ_m W_m I^(m) / (n(n-1)).
    n, k1, k2 = 8, 3, 6
    net, x = _mlp(n, seed=3), torch.randn(1, n, dtype=torch.float64)
    ex = exact_interactions(_model_game(net, x, 0, torch.zeros(n, dtype=torch.float64)), n)
    sizes = torch.tensor([bin(c).count("1") for c in range(1 << n)])

    def U(k):
        return float(ex.values[sizes == k].mean())

    alpha = k2 / k1
    du = U(k2) - alpha * U(k1) + (alpha - 1) * float(ex.values[0])
    m = torch.arange(n - 1, dtype=torch.float64)
    W = (k2 - 1 - m) * (m <= k2 - 2) - alpha * (k1 - 1 - m) * (m <= k1 - 2)
    assert W.tolist() == [1, 2, 3, 2, 1, 0, 0]
    assert du == pytest.approx(float((ex.I * W).sum()) / (n * (n - 1)), abs=1e-10)


# ---------------------------------------------------------------- the sampler -----------------
def test_sampler_matches_exact_within_stderr():
    n = 10
    net, x = _mlp(n, seed=1), torch.randn(2, n, dtype=torch.float64)
    base = torch.zeros(n, dtype=torch.float64)
    gen = torch.Generator().manual_seed(0)
    res = multi_order_interaction(net, x, torch.tensor([0, 2]), torch.arange(n), pairs="uniform",
                                  num_pairs=12, orders=list(range(n - 1)), num_contexts=25,
                                  baseline=base, generator=gen, batch_size=512)
    assert res.I.shape == (2, 12, n - 1) and res.pairs.shape == (2, 12, 2)
    assert res.exact.tolist() == [True, True] + [False] * 5 + [True, True]
    zs = []
    for s in range(2):
        ex = exact_interactions(_model_game(net, x[s:s + 1], [0, 2][s], base), n)
        exI = ex.I[res.pairs[s, :, 0], res.pairs[s, :, 1]]
        torch.testing.assert_close(res.I[s][:, res.exact], exI[:, res.exact])
        zs.append(((res.I[s] - exI) / res.stderr[s])[:, ~res.exact].flatten())
    z = torch.cat(zs)
    # (Î - I) / (σ̂/√K) ~ t(24): its second moment is ~1, and |z| < 3.5 almost always.
    assert 0.6 < float(z.square().mean()) < 1.6
    assert float((z.abs() > 3.5).double().mean()) < 0.01
    # J is normalised to mean 1 over the evaluated orders.
    assert float(res.J.mean()) == pytest.approx(1.0)
    assert res.num_forwards == 2 * 12 * 4 * int(res.num_contexts.sum())


def test_sampler_converges_with_more_contexts():
    n = 14
    net, x = _mlp(n, seed=2), torch.randn(1, n, dtype=torch.float64)
    base = torch.zeros(n, dtype=torch.float64)
    ex = exact_interactions(_model_game(net, x, 1, base), n)
    pairs = torch.tensor([[0, 1], [2, 9], [5, 13], [4, 6]])
    errs = []
    for K in (8, 128):
        res = multi_order_interaction(net, x, 1, torch.arange(n), pairs=pairs, orders=[4, 6, 8],
                                      num_contexts=K, baseline=base,
                                      generator=torch.Generator().manual_seed(K))
        exI = ex.I[pairs[:, 0], pairs[:, 1]][:, [4, 6, 8]]
        errs.append(float((res.I[0] - exI).square().mean().sqrt()))
    assert errs[1] < errs[0] / 2  # ~ 1/sqrt(16) = 1/4 expected


def test_images_with_grid_players_and_reproducibility():
    torch.manual_seed(0)
    net = nn.Sequential(nn.Conv2d(3, 4, 3, padding=1), nn.ReLU(), nn.AdaptiveAvgPool2d(2),
                        nn.Flatten(), nn.Linear(16, 5)).eval()
    x = torch.randn(2, 3, 8, 8)
    kw = dict(players=4, pairs="local", num_pairs=6, orders=ORDER_RATIOS, num_contexts=6,
              baseline="mean", batch_size=64)
    r1 = multi_order_interaction(net, x, None, generator=torch.Generator().manual_seed(5), **kw)
    r2 = multi_order_interaction(net, x, None, generator=torch.Generator().manual_seed(5), **kw)
    assert torch.equal(r1.I, r2.I) and torch.equal(r1.pairs, r2.pairs)
    assert r1.num_players == 16 and r1.orders.tolist() == sorted(set(
        int(14 * r) for r in ORDER_RATIOS))
    # local pairs on a 4x4 grid with radius 2: Chebyshev distance <= 2
    cell = r1.pairs
    dist = torch.maximum((cell[..., 0] // 4 - cell[..., 1] // 4).abs(),
                         (cell[..., 0] % 4 - cell[..., 1] % 4).abs())
    assert int(dist.max()) <= 2 and int(dist.min()) >= 1
    assert bool((r1.stderr[..., 0] == 0).all()) and bool((r1.stderr[..., -1] == 0).all())
    assert r1.J.shape == r1.orders.shape and torch.isfinite(r1.J_debiased).all()
    assert bool((r1.debiased_strength <= r1.strength + 1e-12).all())


def test_grid_players_and_pairs():
    g = grid_players(32, 32, 16)
    assert g.shape == (32, 32) and int(g.max()) == 255 and int(g[1, 1]) == 0 and int(g[2, 2]) == 17
    assert torch.equal(torch.bincount(g.flatten()), torch.full((256,), 4))
    assert grid_players(5, 7, (2, 3)).unique().numel() == 6
    p = sample_pairs(torch.arange(20), 30, mode="uniform", generator=torch.Generator())
    assert p.shape == (30, 2) and bool((p[:, 0] < p[:, 1]).all())
    assert len({tuple(r) for r in p.tolist()}) == 30
    q = sample_pairs(torch.arange(20), 5, mode="local", radius=1)
    assert bool(((q[:, 1] - q[:, 0]) == 1).all())
    with pytest.warns(UserWarning, match="exceeds the 19 available"):
        assert sample_pairs(torch.arange(20), 50, mode="local", radius=1).shape == (19, 2)


def test_orders_conversion():
    assert resolve_orders(None, 256).tolist() == [0, 12, 25, 50, 76, 101, 127, 152, 177, 203,
                                                  228, 241, 254]
    assert resolve_orders([3, 1], 10).tolist() == [1, 3]
    with pytest.warns(UserWarning, match="duplicate"):
        assert resolve_orders([0.0, 0.05, 0.1], 6).tolist() == [0]


# ---------------------------------------------------------------- bad inputs ------------------
def test_bad_inputs():
    net = _mlp(6)
    x = torch.randn(1, 6, dtype=torch.float64)
    pl = torch.arange(6)
    with pytest.raises(ValueError, match="at least n = 2 players"):
        multi_order_interaction(net, x, 0, torch.zeros(6, dtype=torch.long))
    with pytest.raises(ValueError, match=r"orders must be in \[0, n-2\] = \[0, 4\]"):
        multi_order_interaction(net, x, 0, pl, orders=[0, 5])
    with pytest.raises(ValueError, match="ratios must be in"):
        multi_order_interaction(net, x, 0, pl, orders=[0.5, 1.5])
    with pytest.raises(ValueError, match="i != j"):
        multi_order_interaction(net, x, 0, pl, pairs=torch.tensor([[1, 1]]))
    with pytest.raises(ValueError, match="players in"):
        multi_order_interaction(net, x, 0, pl, pairs=torch.tensor([[1, 6]]))
    with pytest.raises(ValueError, match="shape \\[B\\]"):
        multi_order_interaction(net, x, 0, pl, pairs=torch.tensor([[0, 1]]),
                                value=lambda out, t: out)
    with pytest.raises(ValueError, match="non-finite"):
        multi_order_interaction(lambda z: z[:, :3] / 0.0, x, 0, pl, pairs=torch.tensor([[0, 1]]))
    with pytest.raises(ValueError, match="batch dim"):
        multi_order_interaction(net, x[0], 0, pl)
    with pytest.raises(ValueError, match="target must be"):
        multi_order_interaction(net, x, torch.tensor([0, 1]), pl)
    with pytest.raises(ValueError, match="does not broadcast"):
        multi_order_interaction(net, x, 0, torch.arange(5))
    with pytest.warns(UserWarning, match="exceeds C\\(n-2, m\\) for orders \\[1, 3\\]"):
        res = multi_order_interaction(net, x, 0, pl, pairs=torch.tensor([[0, 1]]),
                                      orders=[0, 1, 2, 3, 4], num_contexts=5)
    assert res.num_contexts.tolist() == [1, 4, 5, 4, 1]
    assert res.exact.tolist() == [True, True, False, True, True]
    with pytest.raises(ValueError, match="n must be an int >= 2"):
        exact_interactions(lambda m: m.sum(1).double(), 1)
    with pytest.raises(ValueError, match="too large"):
        exact_interactions(lambda m: m.sum(1).double(), 24)
    with pytest.raises(ValueError, match="shape \\[B\\]"):
        exact_interactions(lambda m: m.double(), 4)
    with pytest.raises(ValueError, match="non-finite"):
        exact_interactions(lambda m: m.sum(1).double() / 0.0, 4)
    with pytest.raises(ValueError, match="grid must be in"):
        grid_players(8, 8, 9)


# ---------------------------------------------------------------- OrderLoss -------------------
def test_nested_masks():
    s1, s2 = nested_player_masks(50, 16, 4, 11, generator=torch.Generator().manual_seed(0))
    assert bool((s1.sum(1) == 4).all()) and bool((s2.sum(1) == 11).all())
    assert bool((s1 <= s2).all())
    with pytest.raises(ValueError, match="k1 <= k2"):
        nested_player_masks(2, 4, 3, 2)


class _Counting(nn.Module):
    def __init__(self):
        super().__init__()
        self.net = nn.Sequential(nn.Flatten(), nn.Linear(3 * 8 * 8, 10))
        self.rows = []

    def forward(self, x):
        self.rows.append(x.shape[0])
        return self.net(x)


@pytest.mark.parametrize("preset", ["low", "mid", "high"])
def test_order_loss_presets(preset):
    torch.manual_seed(0)
    model = _Counting()
    x, y = torch.randn(6, 3, 8, 8), torch.randint(0, 10, (6,))
    loss_fn = OrderLoss.preset(preset, players=4)
    logits = model(x)
    model.rows.clear()
    loss = loss_fn(model, x, y, logits=logits)
    assert loss.dim() == 0 and torch.isfinite(loss)
    loss.backward()
    assert model.net[1].weight.grad is not None
    k1, k2 = loss_fn.counts(16)
    assert (k1, k2) == {"low": (11, 16), "mid": (4, 11), "high": (0, 8)}[preset]
    # low: S2 = everything -> clean logits reused; high: S1 = empty -> one shared forward
    assert model.rows == {"low": [6], "mid": [6, 6], "high": [6, 1]}[preset]
    if preset in ("low", "high"):  # L- = -entropy in [-log C, 0]
        assert -math.log(10) - 1e-6 <= float(loss.detach()) <= 0


def test_order_loss_masks_and_values():
    # For a linear model without bias and zero baseline, f(x_S) = Σ_{p∈S} w·x_p exactly.
    torch.manual_seed(0)
    lin = nn.Linear(8, 2, bias=False)
    x, y = torch.randn(4, 8), torch.tensor([0, 1, 0, 1])
    loss_fn = OrderLoss(0.25, 0.75, "encourage", players=torch.arange(8))
    gen = torch.Generator().manual_seed(3)
    loss = loss_fn(lin, x, y, generator=gen)
    s1, s2 = nested_player_masks(4, 8, 2, 6, "cpu", torch.Generator().manual_seed(3))
    delta = lin(x * s2) - 3.0 * lin(x * s1)
    torch.testing.assert_close(loss, nn.functional.cross_entropy(delta, y))
    with pytest.raises(ValueError, match="0 <= r1 < r2 <= 1"):
        OrderLoss(0.5, 0.5)
    with pytest.raises(ValueError, match="mode must be"):
        OrderLoss(0.1, 0.5, mode="boost")
    with pytest.raises(ValueError, match="preset must be one of"):
        OrderLoss.preset("ultra")
    with pytest.raises(ValueError, match="same"):
        OrderLoss(0.3, 0.35, players=torch.arange(4)).counts(4)
