"""Losses that encourage or penalise a band of interaction orders (the paper's L+ and L−).

For each training input, one random ordering of the players is drawn; the first k2 = ⌊r2·n⌋
players form S2 and the first k1 = ⌊r1·n⌋ form S1 ⊂ S2 (nested masks). With the model's output
vector f,

    Δv = f(x_S2) − (k2 / k1) · f(x_S1)          (α = 1 when k1 = 0)

uses the *actual kept counts* (the official code uses r2/r1, which leaves a small first-order
residue). Δv is dominated by interactions of orders in a triangle peaking at m ≈ k1 and vanishing
above k2 − 2.

* ``mode="encourage"`` (L+): cross-entropy of softmax(Δv) against the label — the band must be
  discriminative.
* ``mode="penalize"`` (L−): minus the entropy of softmax(Δv) — minimised, it maximises the
  entropy, so the band carries no class information.

Official presets: high-order model = penalize (0, 0.5); mid-order = encourage (0.3, 0.7);
low-order = penalize (0.7, 1.0).
"""

from __future__ import annotations

from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

from udl.interactions.core import Baseline, resolve_players

__all__ = ["OrderLoss", "ORDER_LOSS_PRESETS", "nested_player_masks"]

#: name -> (r1, r2, mode), the official models of ``train.sh``.
ORDER_LOSS_PRESETS: dict[str, tuple[float, float, str]] = {
    "high": (0.0, 0.5, "penalize"),
    "mid": (0.3, 0.7, "encourage"),
    "low": (0.7, 1.0, "penalize"),
}


def nested_player_masks(batch: int, n: int, k1: int, k2: int, device: torch.device | str = "cpu",
                        generator: torch.Generator | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Random nested coalitions: ``(S1, S2)`` bool ``Tensor[B, n]`` with |S1| = k1 ⊂ S2, |S2| = k2.

    One uniform random ordering of the n players per row (argsort of uniform keys on ``device``).
    """
    if not 0 <= k1 <= k2 <= n:
        raise ValueError(f"need 0 <= k1 <= k2 <= n, got k1={k1}, k2={k2}, n={n}")
    keys = torch.rand(batch, n, device=device, generator=generator)
    rank = keys.argsort(dim=1).argsort(dim=1)
    return rank < k1, rank < k2


class OrderLoss(nn.Module):
    """The paper's L+ / L− on Δv = f(x_S2) − (|S2| / |S1|) · f(x_S1); add it to the usual loss.

    Args:
        r1, r2: ratios ``0 <= r1 < r2 <= 1`` of players kept in S1 ⊂ S2.
        mode: ``"encourage"`` (L+) or ``"penalize"`` (L−).
        players: player map (int tensor broadcastable to one input's shape) or a grid size over
            the last two dims; see :func:`udl.interactions.resolve_players`.
        baseline: ``"zero"``, a float, or a tensor broadcastable to one input's shape (values of
            absent players). Use the normalised dataset mean (0 after normalisation) for images.
        weight: multiplier λ of the loss.

    Shape:
        ``forward(model, x [B, *F], target [B], logits=None) -> scalar``. Pass the clean
        ``logits = model(x)`` to reuse them when r2 = 1 (S2 = all players).
    """

    def __init__(self, r1: float, r2: float, mode: str = "encourage",
                 players: torch.Tensor | int | tuple[int, int] = 4, baseline: Baseline = "zero",
                 weight: float = 1.0) -> None:
        super().__init__()
        if not (0.0 <= r1 < r2 <= 1.0):
            raise ValueError(f"need 0 <= r1 < r2 <= 1, got r1={r1}, r2={r2}")
        if mode not in ("encourage", "penalize"):
            raise ValueError(f"mode must be 'encourage' or 'penalize', got {mode!r}")
        if isinstance(baseline, str) and baseline != "zero":
            raise ValueError(f"OrderLoss baseline must be 'zero', a float or a tensor, got "
                             f"{baseline!r}")
        self.r1, self.r2, self.mode, self.weight = float(r1), float(r2), mode, float(weight)
        self.players = players
        self.baseline = baseline
        self._cache: tuple[tuple[int, ...], torch.Tensor, int] | None = None

    @classmethod
    def preset(cls, name: str, players: torch.Tensor | int | tuple[int, int] = 4,
               baseline: Baseline = "zero", weight: float = 1.0) -> OrderLoss:
        """The official ``"low"``, ``"mid"`` or ``"high"``-order model's loss."""
        if name not in ORDER_LOSS_PRESETS:
            raise ValueError(f"preset must be one of {sorted(ORDER_LOSS_PRESETS)}, got {name!r}")
        r1, r2, mode = ORDER_LOSS_PRESETS[name]
        return cls(r1, r2, mode, players=players, baseline=baseline, weight=weight)

    def extra_repr(self) -> str:
        return f"r1={self.r1}, r2={self.r2}, mode={self.mode!r}, weight={self.weight}"

    def _player_map(self, sample_shape: tuple[int, ...], device: torch.device) -> tuple[torch.Tensor, int]:
        if self._cache is None or self._cache[0] != sample_shape or self._cache[1].device != device:
            pmap, n = resolve_players(self.players, sample_shape)
            self._cache = (sample_shape, pmap.to(device), n)
        return self._cache[1], self._cache[2]

    def counts(self, n: int) -> tuple[int, int]:
        """Kept players ``(k1, k2) = (⌊r1·n⌋, ⌊r2·n⌋)``."""
        k1 = int(self.r1 * n + 1e-9)
        k2 = int(self.r2 * n + 1e-9)
        if k2 <= k1:
            raise ValueError(f"with n={n} players, r1={self.r1} and r2={self.r2} keep the same "
                             f"number of players ({k1}); widen the band")
        return k1, k2

    def forward(self, model: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                target: torch.Tensor, logits: torch.Tensor | None = None,
                generator: torch.Generator | None = None) -> torch.Tensor:
        if x.dim() < 2 or x.shape[0] == 0:
            raise ValueError(f"x must be a non-empty batch [B, *F], got {tuple(x.shape)}")
        B, sample_shape = x.shape[0], tuple(x.shape[1:])
        pmap, n = self._player_map(sample_shape, x.device)
        k1, k2 = self.counts(n)
        s1, s2 = nested_player_masks(B, n, k1, k2, x.device, generator)
        if isinstance(self.baseline, torch.Tensor):
            base = torch.broadcast_to(self.baseline.to(x), x.shape)
        else:
            base = torch.zeros_like(x) if self.baseline == "zero" else torch.full_like(
                x, float(self.baseline))
        idx = torch.where(pmap < 0, torch.full_like(pmap, n), pmap).reshape(-1)

        def masked(s: torch.Tensor) -> torch.Tensor:
            b = s.shape[0]
            ones = torch.ones(b, 1, dtype=torch.bool, device=x.device)
            keep = torch.cat([s, ones], dim=1)[:, idx].view(b, *sample_shape)
            return torch.where(keep, x[:b], base[:b])

        if k2 == n and logits is not None:
            f2 = logits
        else:
            f2 = model(masked(s2))
        if k1 == 0:
            shared = not isinstance(self.baseline, torch.Tensor) or self.baseline.dim() < x.dim()
            f1 = model(masked(s1[:1]))[:1].expand_as(f2) if shared else model(masked(s1))
            alpha = 1.0
        else:
            f1 = model(masked(s1))
            alpha = k2 / k1
        if f2.dim() != 2:
            raise ValueError(f"OrderLoss needs model outputs [B, C], got {tuple(f2.shape)}")
        delta = f2 - alpha * f1
        if self.mode == "encourage":
            loss = F.cross_entropy(delta, target)
        else:
            logp = F.log_softmax(delta, dim=1)
            loss = (logp.exp() * logp).sum(dim=1).mean()
        return self.weight * loss
