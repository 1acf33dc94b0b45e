"""Shared pieces of :mod:`udl.convex`: input checks, losses, the two-layer network and its objective.

Conventions (pinned, documented in ``docs/convex.md`` and tested):

* Non-convex objective ``F(W, α) = ℓ(f, y) + (β/2) Σ_j (‖w_j‖² + α_j²)`` with prediction
  ``f = Σ_j (X w_j)_+ α_j``, ``W ∈ R^{m×d}`` (rows are neurons), ``α ∈ R^m``.
* ``ℓ`` is ``½‖f − y‖²`` (``"squared"``), ``Σ_k log(1 + exp(−y_k f_k))`` (``"logistic"``, labels ±1)
  or ``Σ_k max(0, 1 − y_k f_k)`` (``"hinge"``, labels ±1). No ``1/n`` factor.
* A bias is a column of ones appended to ``X`` (:func:`add_bias`).
* Patterns use ``D = diag(1[X h ≥ 0])`` (ties count as active).
"""

from __future__ import annotations

import math
from typing import Union

import torch
from torch import nn

__all__ = [
    "LOSSES",
    "TwoLayerReLU",
    "add_bias",
    "as_weights",
    "beta_from_scnn",
    "scnn_lambda",
    "loss_value",
    "loss_grad",
    "network_objective",
    "network_forward",
    "train_adam",
]

LOSSES = ("squared", "logistic", "hinge")

NetworkLike = Union["TwoLayerReLU", nn.Module, tuple]


class TwoLayerReLU(nn.Module):
    """``f(x) = Σ_j (x·w_j)_+ α_j`` without biases (append a ones column to ``x`` for a bias).

    Args:
        W: ``Tensor[m, d]`` first-layer weights, one row per neuron.
        alpha: ``Tensor[m]`` second-layer weights.
    """

    def __init__(self, W: torch.Tensor, alpha: torch.Tensor) -> None:
        super().__init__()
        W = torch.as_tensor(W)
        alpha = torch.as_tensor(alpha, dtype=W.dtype, device=W.device)
        if W.dim() != 2 or alpha.dim() != 1 or alpha.shape[0] != W.shape[0]:
            raise ValueError(f"TwoLayerReLU: expected W [m, d] and alpha [m], got W "
                             f"{tuple(W.shape)} and alpha {tuple(alpha.shape)}")
        self.W = nn.Parameter(W.clone())
        self.alpha = nn.Parameter(alpha.clone())

    @property
    def width(self) -> int:
        return self.W.shape[0]

    def forward(self, X: torch.Tensor) -> torch.Tensor:
        """``X: Tensor[n, d] -> Tensor[n]``."""
        return torch.relu(X @ self.W.T) @ self.alpha

    def extra_repr(self) -> str:
        return f"width={self.W.shape[0]}, in_features={self.W.shape[1]}"


def add_bias(X: torch.Tensor) -> torch.Tensor:
    """Append a column of ones: ``Tensor[n, d] -> Tensor[n, d + 1]`` (the bias convention)."""
    X = torch.as_tensor(X)
    return torch.cat([X, X.new_ones(X.shape[0], 1)], dim=1)


def beta_from_scnn(lam: float, n: int) -> float:
    """β of this package for scnn's ``NeuronGL1(λ)``: scnn scales the loss by ``1/(2n)``, so β = n·λ."""
    return float(lam) * int(n)


def scnn_lambda(beta: float, n: int) -> float:
    """scnn's ``λ`` (``NeuronGL1``) equivalent to this package's β on ``n`` samples: λ = β / n."""
    if n <= 0:
        raise ValueError(f"n must be positive, got {n}")
    return float(beta) / int(n)


# --------------------------------------------------------------------------------------- checks
def check_beta(beta: float) -> float:
    beta = float(beta)
    if not math.isfinite(beta) or beta <= 0:
        raise ValueError(f"beta must be a finite number > 0, got {beta}")
    return beta


def check_loss(loss: str) -> str:
    if loss not in LOSSES:
        raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")
    return loss


def check_data(X, y, loss: str = "squared", dtype: torch.dtype = torch.float64,
               device: torch.device | str | None = None) -> tuple[torch.Tensor, torch.Tensor]:
    """Validate and convert ``X: [n, d]``, ``y: [n]`` to tensors of ``dtype``."""
    X = torch.as_tensor(X)
    y = torch.as_tensor(y)
    if device is None:
        device = X.device
    X = X.to(device=device, dtype=dtype)
    y = y.to(device=device, dtype=dtype)
    if X.dim() != 2:
        raise ValueError(f"X must be a 2-D tensor [n, d], got shape {tuple(X.shape)}")
    if y.dim() == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.dim() != 1:
        raise ValueError(f"y must be a 1-D tensor [n] (scalar output), got shape {tuple(y.shape)}")
    if X.shape[0] != y.shape[0]:
        raise ValueError(f"X and y have mismatched numbers of samples: X has {X.shape[0]} rows, "
                         f"y has {y.shape[0]}")
    if X.shape[0] == 0:
        raise ValueError("empty data: X has no rows")
    if X.shape[1] == 0:
        raise ValueError("X has no columns (d = 0)")
    if not torch.isfinite(X).all():
        raise ValueError("X contains NaN or inf")
    if not torch.isfinite(y).all():
        raise ValueError("y contains NaN or inf")
    if loss in ("logistic", "hinge") and not bool(((y == 1) | (y == -1)).all()):
        raise ValueError(f"loss={loss!r} expects labels y in {{-1, +1}}")
    return X, y


def check_X(X, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    X = torch.as_tensor(X).to(dtype=dtype)
    if X.dim() != 2:
        raise ValueError(f"X must be a 2-D tensor [n, d], got shape {tuple(X.shape)}")
    if not torch.isfinite(X).all():
        raise ValueError("X contains NaN or inf")
    return X


def as_weights(net: NetworkLike, dtype: torch.dtype | None = torch.float64
               ) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W [m, d], α [m])`` of a network, detached (copied).

    Accepts a :class:`TwoLayerReLU`, a tuple ``(W, alpha)``, or an ``nn.Sequential(Linear(d, m,
    bias=False), ReLU(), Linear(m, 1, bias=False))``. Networks with biases are refused: append a
    ones column to ``X`` instead (:func:`add_bias`) and fold the bias into ``W``.
    """
    if isinstance(net, TwoLayerReLU):
        W, a = net.W, net.alpha
    elif isinstance(net, (tuple, list)) and len(net) == 2:
        W, a = torch.as_tensor(net[0]), torch.as_tensor(net[1])
    elif isinstance(net, nn.Sequential):
        lin = [mod for mod in net if isinstance(mod, nn.Linear)]
        acts = [mod for mod in net if isinstance(mod, nn.ReLU)]
        if len(lin) != 2 or len(acts) != 1 or len(net) != 3:
            raise ValueError("net: expected nn.Sequential(Linear, ReLU, Linear)")
        if lin[0].bias is not None or lin[1].bias is not None:
            raise ValueError("net: Linear layers must have bias=False; put the bias into X as a "
                             "ones column (udl.convex.add_bias) and into W as a column")
        if lin[1].out_features != 1:
            raise ValueError("net: the second Linear must have out_features=1 (scalar output)")
        W, a = lin[0].weight, lin[1].weight[0]
    else:
        raise ValueError(f"net: expected TwoLayerReLU, (W, alpha) or nn.Sequential, got "
                         f"{type(net).__name__}")
    W = W.detach().clone()
    a = a.detach().clone().reshape(-1)
    if dtype is not None:
        W, a = W.to(dtype), a.to(dtype)
    if W.dim() != 2 or a.shape[0] != W.shape[0]:
        raise ValueError(f"net: expected W [m, d] and alpha [m], got {tuple(W.shape)} and "
                         f"{tuple(a.shape)}")
    if not (torch.isfinite(W).all() and torch.isfinite(a).all()):
        raise ValueError("net: weights contain NaN or inf")
    return W, a


# --------------------------------------------------------------------------------------- losses
def loss_value(f: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """``ℓ(f, y)`` (a 0-d tensor) for the pinned conventions above."""
    if loss == "squared":
        return 0.5 * ((f - y) ** 2).sum()
    if loss == "logistic":
        return torch.nn.functional.softplus(-y * f).sum()
    if loss == "hinge":
        return torch.relu(1 - y * f).sum()
    raise ValueError(f"loss must be one of {LOSSES}, got {loss!r}")


def loss_grad(f: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """``∇_f ℓ(f, y)``; the hinge loss is not differentiable and is refused."""
    if loss == "squared":
        return f - y
    if loss == "logistic":
        return -y * torch.sigmoid(-y * f)
    raise ValueError(f"loss={loss!r} is not differentiable; certificates need 'squared' or "
                     "'logistic'")


def loss_conjugate_lower_bound(g: torch.Tensor, y: torch.Tensor, loss: str) -> torch.Tensor:
    """``−ℓ*(g)``: the dual objective at a dual point ``g`` (any ``g`` for squared loss; for the
    logistic loss ``−y·g`` must lie in ``[0, 1]``)."""
    if loss == "squared":
        return -(0.5 * (g * g).sum() + (g * y).sum())
    if loss == "logistic":
        p = (-y * g).clamp(0, 1)
        ent = torch.xlogy(p, p) + torch.xlogy(1 - p, 1 - p)
        return -ent.sum()
    raise ValueError(f"no dual bound for loss={loss!r}")


def network_forward(W: torch.Tensor, alpha: torch.Tensor, X: torch.Tensor) -> torch.Tensor:
    """``Σ_j (X w_j)_+ α_j``: ``X [n, d], W [m, d], α [m] -> [n]``."""
    if W.shape[0] == 0:
        return X.new_zeros(X.shape[0])
    return torch.relu(X @ W.T) @ alpha


def network_objective(net: NetworkLike, X, y, beta: float, loss: str = "squared") -> float:
    """``F(W, α) = ℓ(f, y) + (β/2) Σ_j (‖w_j‖² + α_j²)`` in float64."""
    beta = check_beta(beta)
    check_loss(loss)
    X, y = check_data(X, y, loss)
    W, a = as_weights(net)
    if W.shape[1] != X.shape[1]:
        raise ValueError(f"net has input dimension {W.shape[1]} but X has {X.shape[1]} columns")
    return _objective(W, a, X, y, beta, loss)


def _objective(W: torch.Tensor, a: torch.Tensor, X: torch.Tensor, y: torch.Tensor, beta: float,
               loss: str) -> float:
    f = network_forward(W, a, X)
    return float(loss_value(f, y, loss) + 0.5 * beta * ((W ** 2).sum() + (a ** 2).sum()))


def train_adam(X: torch.Tensor, y: torch.Tensor, width: int, beta: float, steps: int,
               lr: float = 2e-2, seed: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
    """Train the non-convex network on F (squared loss) with Adam and a cosine schedule.

    The baseline the convex program is compared with. ``X``: ``[n, d]``, ``y``: ``[n]``, both
    float64; returns ``(W [width, d], alpha [width])``. Initialisation ``N(0, 1/d)`` for ``W`` and
    ``N(0, 1/width)`` for ``alpha`` from ``seed``.
    """
    g = torch.Generator().manual_seed(seed)
    d = X.shape[1]
    W = (torch.randn(width, d, dtype=X.dtype, generator=g) / math.sqrt(d)).requires_grad_()
    a = (torch.randn(width, dtype=X.dtype, generator=g) / math.sqrt(width)).requires_grad_()
    opt = torch.optim.Adam([W, a], lr=lr)
    sched = torch.optim.lr_scheduler.CosineAnnealingLR(opt, steps)
    for _ in range(steps):
        opt.zero_grad()
        F = (0.5 * ((torch.relu(X @ W.T) @ a - y) ** 2).sum()
             + 0.5 * beta * ((W ** 2).sum() + (a ** 2).sum()))
        F.backward()
        opt.step()
        sched.step()
    return W.detach(), a.detach()


def convex_blocks_to_network(U: torch.Tensor, V: torch.Tensor, zero_tol: float = 0.0
                             ) -> tuple[torch.Tensor, torch.Tensor]:
    """Map convex blocks to neurons: ``w = u/√‖u‖, α = +√‖u‖`` and ``w = v/√‖v‖, α = −√‖v‖``.

    ``U, V: [P, d]``; blocks with norm ``≤ zero_tol`` are dropped. Returns ``(W [k, d], α [k])``.
    """
    Ws, As = [], []
    for B, sign in ((U, 1.0), (V, -1.0)):
        nrm = B.norm(dim=1)
        keep = nrm > zero_tol
        if keep.any():
            s = nrm[keep].sqrt()
            Ws.append(B[keep] / s[:, None])
            As.append(sign * s)
    if not Ws:
        return U.new_zeros(0, U.shape[1]), U.new_zeros(0)
    return torch.cat(Ws), torch.cat(As)
