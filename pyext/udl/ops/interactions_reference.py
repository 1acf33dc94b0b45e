"""Pure-PyTorch / pure-Python references for the ``udl.interactions`` ops (what tests compare to).

* :func:`context_reference` re-implements the kernels' counter-based context sampler and the
  lexicographic unranking in plain Python integers (bit-exact with the C++/CUDA code).
* :func:`masked_inputs_reference` writes the 4 masked inputs from given context bitsets with
  ordinary tensor ops.
* :func:`reduce_reference` computes the per-group mean/variance of Δ in float64.
"""

from __future__ import annotations

import torch

__all__ = ["context_reference", "masked_inputs_reference", "reduce_reference", "bits_to_mask"]

_M64 = (1 << 64) - 1


def _mix64(z: int) -> int:
    z &= _M64
    z = ((z ^ (z >> 30)) * 0xBF58476D1CE4E5B9) & _M64
    z = ((z ^ (z >> 27)) * 0x94D049BB133111EB) & _M64
    return z ^ (z >> 31)


class _Rng:
    def __init__(self, seed: int, i: int, j: int, m: int, k: int) -> None:
        h = _mix64((seed & _M64) ^ 0x6A09E667F3BCC909)
        h = _mix64(h ^ ((i * 0x9E3779B97F4A7C15) & _M64))
        h = _mix64(h ^ ((j * 0xC2B2AE3D27D4EB4F) & _M64))
        h = _mix64(h ^ ((m * 0x165667B19E3779F9) & _M64))
        h = _mix64(h ^ ((k * 0xD6E8FEB86659FD93) & _M64))
        self.state = h

    def below(self, bound: int) -> int:
        self.state = (self.state + 0x9E3779B97F4A7C15) & _M64
        return (_mix64(self.state) * bound) >> 64


def context_reference(n: int, i: int, j: int, m: int, k: int, enumerate: bool,
                      seed: int) -> list[int]:
    """The sorted players of the context the kernels draw for row ``(i, j, m, k)``."""
    a, b = min(i, j), max(i, j)
    others = [p for p in range(n) if p != a and p != b]
    N = n - 2
    if m <= 0:
        return []
    if enumerate:
        from math import comb

        chosen, r, rank = [], m, k
        for q in range(N):
            if r == 0:
                break
            c = comb(N - 1 - q, r - 1)
            if rank < c:
                chosen.append(others[q])
                r -= 1
            else:
                rank -= c
        return sorted(chosen)
    rng = _Rng(seed, i, j, m, k)
    complement = 2 * m > N
    draw = N - m if complement else m
    picked: set[int] = set()
    for t in range(N - draw, N):
        u = rng.below(t + 1)
        picked.add(t if u in picked else u)
    idx = set(range(N)) - picked if complement else picked
    return sorted(others[q] for q in idx)


def bits_to_mask(contexts: torch.Tensor, num_players: int) -> torch.Tensor:
    """``Tensor[R, W]`` int64 bitsets -> ``Tensor[R, n]`` bool membership."""
    words = contexts.to(torch.int64)
    p = torch.arange(num_players, device=contexts.device)
    w = words[:, p // 64]
    return ((w >> (p % 64)) & 1).bool()


def masked_inputs_reference(x: torch.Tensor, baseline: torch.Tensor, player_map: torch.Tensor,
                            pairs: torch.Tensor, rows: torch.Tensor, contexts: torch.Tensor,
                            num_players: int) -> torch.Tensor:
    """``Tensor[R, 4, *F]``: the 4 masked inputs of each row for the given context bitsets."""
    in_s = bits_to_mask(contexts, num_players)                      # [R, n]
    in_s = torch.cat([in_s, torch.ones_like(in_s[:, :1])], dim=1)   # column n: never masked
    pm = torch.where(player_map < 0, torch.full_like(player_map, num_players), player_map)
    present = in_s[:, pm.reshape(-1)]                               # [R, D]
    ij = pairs[rows[:, 0]]                                          # [R, 2]
    flat = pm.reshape(1, -1)
    is_i = flat == ij[:, :1]
    is_j = flat == ij[:, 1:]
    terms = torch.stack([present | is_i | is_j, present | is_i, present | is_j, present], dim=1)
    xf, bf = x.reshape(1, 1, -1), baseline.reshape(1, 1, -1)
    out = torch.where(terms, xf, bf)
    return out.reshape(rows.shape[0], 4, *x.shape)


def reduce_reference(values: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-group mean and unbiased variance of Δ in float64 (cast back to ``values.dtype``)."""
    v = values.double()
    delta = v[:, 0] - v[:, 1] - v[:, 2] + v[:, 3]
    means, variances = [], []
    for g in range(offsets.numel() - 1):
        d = delta[int(offsets[g]):int(offsets[g + 1])]
        means.append(d.mean() if d.numel() else d.new_zeros(()))
        variances.append(d.var(unbiased=True) if d.numel() > 1 else d.new_zeros(()))
    mean = torch.stack(means) if means else v.new_zeros(0)
    var = torch.stack(variances) if variances else v.new_zeros(0)
    return mean.to(values.dtype), var.to(values.dtype)
