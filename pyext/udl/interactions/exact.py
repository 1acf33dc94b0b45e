"""Exact multi-order interactions by enumerating all 2^n coalitions (ground truth for n ≤ 20).

Coalitions are indexed by bitmask (bit p set = player p present). All quantities follow from the
table v[mask]:

* I^(m)(i, j) = mean over S ⊆ N \\ {i, j}, |S| = m of Δ(i, j, S);
* Harsanyi dividends a(T) = Σ_{L ⊆ T} (−1)^{|T|−|L|} v(L) (fast Möbius transform);
* the Shapley interaction index SII(i, j) = (1/(n−1)) Σ_m I^(m)(i, j);
* Shapley–Taylor (top order 2) STII(i, j) = Σ_m 2(n−1−m)/(n(n−1)) · I^(m)(i, j);
* Shapley values φ_i and singleton effects μ_i = v({i}) − v(∅).
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable

import torch

__all__ = ["ExactInteractions", "exact_interactions", "MAX_EXACT_PLAYERS"]

#: Largest n accepted by :func:`exact_interactions` (2^20 evaluations).
MAX_EXACT_PLAYERS = 20


def _masks(start: int, stop: int, n: int) -> torch.Tensor:
    idx = torch.arange(start, stop, dtype=torch.long)
    return ((idx[:, None] >> torch.arange(n)) & 1).bool()


def _popcount(idx: torch.Tensor, n: int) -> torch.Tensor:
    return ((idx[:, None] >> torch.arange(n)) & 1).sum(1)


def _insert_zero_bit(t: torch.Tensor, pos: torch.Tensor) -> torch.Tensor:
    """Insert a 0 bit at position ``pos`` (broadcast) into the integers ``t``."""
    low = t & ((1 << pos) - 1)
    return low | ((t >> pos) << (pos + 1))


@dataclasses.dataclass
class ExactInteractions:
    """Exact interaction quantities of an n-player game.

    Attributes:
        values: ``Tensor[2^n]`` float64, v(S) indexed by bitmask.
        I: ``Tensor[n, n, n−1]`` float64, I^(m)(i, j) at ``[i, j, m]`` (symmetric, zero diagonal).
        harsanyi: ``Tensor[2^n]`` float64, Harsanyi dividends a(T) by bitmask.
        shapley_values: ``Tensor[n]``.
        num_players: n.
    """

    values: torch.Tensor
    I: torch.Tensor
    harsanyi: torch.Tensor
    shapley_values: torch.Tensor
    num_players: int

    @property
    def shapley_interaction(self) -> torch.Tensor:
        """``Tensor[n, n]``: the Shapley interaction index (uniform average over orders)."""
        return self.I.mean(dim=-1)

    @property
    def shapley_taylor(self) -> torch.Tensor:
        """``Tensor[n, n]``: the Shapley–Taylor interaction index of top order 2."""
        n = self.num_players
        m = torch.arange(n - 1, dtype=torch.float64)
        w = 2 * (n - 1 - m) / (n * (n - 1))
        return (self.I * w).sum(dim=-1)

    @property
    def singleton_effects(self) -> torch.Tensor:
        """``Tensor[n]``: μ_i = v({i}) − v(∅)."""
        n = self.num_players
        return self.values[1 << torch.arange(n)] - self.values[0]

    @property
    def strength(self) -> torch.Tensor:
        """``Tensor[n−1]``: mean over pairs i < j of |I^(m)(i, j)|."""
        n = self.num_players
        a, b = torch.triu_indices(n, n, offset=1)
        return self.I[a, b].abs().mean(dim=0)

    @property
    def J(self) -> torch.Tensor:
        """``Tensor[n−1]``: relative strength over all orders (mean 1)."""
        s = self.strength
        return s / s.mean().clamp_min(torch.finfo(s.dtype).tiny)

    def efficiency_gap(self) -> float:
        """v(N) − v(∅) − [Σ_i μ_i + Σ_{i≠j} Σ_m (n−1−m)/(n(n−1)) I^(m)(i, j)]; 0 up to rounding."""
        n = self.num_players
        m = torch.arange(n - 1, dtype=torch.float64)
        w = (n - 1 - m) / (n * (n - 1))
        total = self.singleton_effects.sum() + (self.I * w).sum()
        return float(self.values[-1] - self.values[0] - total)


def exact_interactions(value_fn: Callable[[torch.Tensor], torch.Tensor], n: int,
                       batch_size: int = 16384) -> ExactInteractions:
    """Enumerate all 2^n coalitions of ``n`` players and compute interactions exactly.

    Args:
        value_fn: maps a boolean mask ``Tensor[B, n]`` (True = player present) to values
            ``Tensor[B]``. Called on batches of at most ``batch_size`` masks (on the CPU; move
            them to your device inside ``value_fn``).
        n: number of players, ``2 <= n <= 20``.
        batch_size: masks per call.

    Returns:
        :class:`ExactInteractions` with ``.I`` of shape ``[n, n, n − 1]``.
    """
    if not isinstance(n, int) or n < 2:
        raise ValueError(f"n must be an int >= 2, got {n!r}")
    if n > MAX_EXACT_PLAYERS:
        raise ValueError(f"n = {n} is too large for exact enumeration (2^n evaluations); "
                         f"use at most {MAX_EXACT_PLAYERS} players or multi_order_interaction")
    if batch_size < 1:
        raise ValueError(f"batch_size must be >= 1, got {batch_size}")
    total = 1 << n
    values = torch.empty(total, dtype=torch.float64)
    for start in range(0, total, batch_size):
        stop = min(total, start + batch_size)
        out = value_fn(_masks(start, stop, n))
        if not isinstance(out, torch.Tensor) or out.shape != (stop - start,):
            raise ValueError(f"value_fn must return a tensor of shape [B] = [{stop - start}], got "
                             f"{getattr(out, 'shape', type(out))}")
        out = out.detach().to("cpu", torch.float64)
        if not bool(torch.isfinite(out).all()):
            raise ValueError(f"value_fn returned non-finite values for masks {start}..{stop - 1}")
        values[start:stop] = out

    # I^(m)(i, j): Δ over the 2^(n-2) contexts of each pair, summed by context size.
    a, b = torch.triu_indices(n, n, offset=1)
    t = torch.arange(1 << (n - 2), dtype=torch.long)
    size = _popcount(t, max(n - 2, 1)) if n > 2 else torch.zeros(1, dtype=torch.long)
    binom = torch.tensor([math.comb(n - 2, m) for m in range(n - 1)], dtype=torch.float64)
    I = torch.zeros(n, n, n - 1, dtype=torch.float64)
    chunk = max(1, (1 << 22) // t.numel())
    for s in range(0, a.numel(), chunk):
        aa, bb = a[s:s + chunk, None], b[s:s + chunk, None]
        base = _insert_zero_bit(_insert_zero_bit(t[None, :], aa), bb)  # bits a, b clear (a < b)
        bi, bj = 1 << aa, 1 << bb
        delta = values[base | bi | bj] - values[base | bi] - values[base | bj] + values[base]
        sums = torch.zeros(delta.shape[0], n - 1, dtype=torch.float64)
        sums.scatter_add_(1, size.expand_as(delta), delta)
        Im = sums / binom
        I[aa[:, 0], bb[:, 0]] = Im
        I[bb[:, 0], aa[:, 0]] = Im

    # Shapley values: φ_i = (1/n) Σ_m mean_{|S| = m, i ∉ S} [v(S ∪ {i}) − v(S)].
    t1 = torch.arange(1 << (n - 1), dtype=torch.long)
    size1 = _popcount(t1, n - 1)
    binom1 = torch.tensor([math.comb(n - 1, m) for m in range(n)], dtype=torch.float64)
    players = torch.arange(n)[:, None]
    base1 = _insert_zero_bit(t1[None, :], players)
    marg = values[base1 | (1 << players)] - values[base1]
    per_size = torch.zeros(n, n, dtype=torch.float64).scatter_add_(1, size1.expand_as(marg), marg)
    shapley = (per_size / binom1).mean(dim=1)

    # Harsanyi dividends by the fast Möbius transform.
    h = values.clone()
    for p in range(n):
        v = h.view(-1, 2, 1 << p)
        v[:, 1, :] -= v[:, 0, :]
    return ExactInteractions(values=values, I=I, harsanyi=h, shapley_values=shapley,
                             num_players=n)
