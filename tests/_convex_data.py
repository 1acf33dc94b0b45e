"""Synthetic data shared by the convex solver tests (importable because pytest puts tests/ on
sys.path)."""

from __future__ import annotations

import torch


def planted(n: int, d: int, seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``X [n, d]`` and ``y [n]`` from a planted 4-neuron ReLU network plus 0.1 noise, float64."""
    g = torch.Generator().manual_seed(seed)
    X = torch.randn(n, d, dtype=torch.float64, generator=g)
    W = torch.randn(d, 3, dtype=torch.float64, generator=g)
    y = torch.relu(X @ W).sum(1) - torch.relu(-X @ W[:, :1]).sum(1)
    return X, y + 0.1 * torch.randn(n, dtype=torch.float64, generator=g)


def planted_problem(n: int, d: int, P: int, seed: int):
    """``(X, y, D)``: :func:`planted` data and ``P`` sampled activation patterns."""
    from udl.convex import sample_patterns

    X, y = planted(n, d, seed)
    return X, y, sample_patterns(X, P, generator=torch.Generator().manual_seed(seed))
