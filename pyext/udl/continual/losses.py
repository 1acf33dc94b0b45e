"""Self-supervised objectives used by UCL: SimSiam and Barlow Twins.

Both are plain :class:`torch.nn.Module` losses (and functional forms) so they can be dropped
into any training loop.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["negative_cosine", "simsiam_loss", "barlow_twins_loss", "SimSiamLoss", "BarlowTwinsLoss"]


def _check_pair(a: Tensor, b: Tensor, names: tuple[str, str]) -> None:
    if a.dim() != 2 or b.dim() != 2:
        raise ValueError(f"{names[0]} and {names[1]} must be 2-D (N, D); got shapes "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")
    if a.shape != b.shape:
        raise ValueError(f"{names[0]} and {names[1]} must have the same shape; got "
                         f"{tuple(a.shape)} and {tuple(b.shape)}")


def negative_cosine(p: Tensor, z: Tensor) -> Tensor:
    """``D(p, z) = -mean_n cos(p_n, sg(z_n))`` — the SimSiam distance with stop-gradient on ``z``.

    Args:
        p: (N, D) predictor outputs.
        z: (N, D) projector outputs (detached inside).
    Returns:
        0-d tensor in [-1, 1]; ``nan`` for N = 0.
    """
    _check_pair(p, z, ("p", "z"))
    if p.shape[0] == 0:
        return p.new_full((), float("nan"))
    return -F.cosine_similarity(p, z.detach(), dim=1).mean()


def simsiam_loss(p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
    """Symmetric SimSiam loss ``½ D(p1, sg(z2)) + ½ D(p2, sg(z1))`` (all inputs (N, D))."""
    return 0.5 * negative_cosine(p1, z2) + 0.5 * negative_cosine(p2, z1)


def barlow_twins_loss(z1: Tensor, z2: Tensor, lambda_: float = 5e-3, eps: float = 1e-5,
                      scale: float = 1.0) -> Tensor:
    """Barlow Twins redundancy-reduction loss.

    Each of the D embedding dimensions is standardised over the batch, ``C = z1ᵀ z2 / N``, and
    ``L = Σ_i (1 - C_ii)² + λ Σ_{i≠j} C_ij²`` (times ``scale``; UCL uses no scaling, solo-learn
    uses 0.025).

    Args:
        z1, z2: (N, D) projector outputs of the two views, N ≥ 2.
        lambda_: weight of the off-diagonal (redundancy) term.
        eps: added to the batch standard deviation.
        scale: overall factor.
    """
    _check_pair(z1, z2, ("z1", "z2"))
    if lambda_ < 0:
        raise ValueError(f"lambda_ must be >= 0, got {lambda_}")
    n = z1.shape[0]
    if n == 0:
        return z1.new_full((), float("nan"))
    if n < 2:
        raise ValueError("barlow_twins_loss needs a batch of at least 2 samples (batch statistics)")
    a = (z1 - z1.mean(0)) / (z1.std(0, unbiased=False) + eps)
    b = (z2 - z2.mean(0)) / (z2.std(0, unbiased=False) + eps)
    c = a.T @ b / n
    diag = torch.diagonal(c)
    on = (1.0 - diag).pow(2).sum()
    off = c.pow(2).sum() - diag.pow(2).sum()
    return scale * (on + lambda_ * off)


class SimSiamLoss(nn.Module):
    """Module form of :func:`simsiam_loss`: ``forward(p1, p2, z1, z2) -> 0-d tensor``."""

    def forward(self, p1: Tensor, p2: Tensor, z1: Tensor, z2: Tensor) -> Tensor:
        return simsiam_loss(p1, p2, z1, z2)


class BarlowTwinsLoss(nn.Module):
    """Module form of :func:`barlow_twins_loss`: ``forward(z1, z2) -> 0-d tensor``."""

    def __init__(self, lambda_: float = 5e-3, eps: float = 1e-5, scale: float = 1.0) -> None:
        super().__init__()
        if lambda_ < 0:
            raise ValueError(f"lambda_ must be >= 0, got {lambda_}")
        self.lambda_, self.eps, self.scale = float(lambda_), float(eps), float(scale)

    def forward(self, z1: Tensor, z2: Tensor) -> Tensor:
        return barlow_twins_loss(z1, z2, self.lambda_, self.eps, self.scale)

    def extra_repr(self) -> str:
        return f"lambda_={self.lambda_}, scale={self.scale}"
