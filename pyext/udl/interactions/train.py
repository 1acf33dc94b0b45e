"""Miniature training setup: scikit-learn digits, tiny MLP/CNN, normal / low / mid / high-order
training with :class:`~udl.interactions.OrderLoss`, J^(m) curves and a PGD robustness check.

Digits are 8×8 images scaled to [0, 1] and normalised by the training-set pixel mean/std, so the
zero baseline is the mean intensity (the official code's convention: absent players are 0 after
normalisation). Players are single pixels (n = 64) by default.
"""

from __future__ import annotations

import dataclasses
import time

import torch
import torch.nn.functional as F
from torch import nn

from udl.interactions.core import ORDER_RATIOS, InteractionResult, multi_order_interaction
from udl.interactions.loss import ORDER_LOSS_PRESETS, OrderLoss

__all__ = ["Digits", "load_digits", "make_model", "train_model", "TrainResult", "pgd_accuracy",
           "measure_J", "VARIANTS"]

VARIANTS = ("normal", "low", "mid", "high")


@dataclasses.dataclass
class Digits:
    """Normalised digits: ``x_* [N, 1, 8, 8]`` float32, ``y_* [N]``; ``mean``/``std`` of pixels."""

    x_train: torch.Tensor
    y_train: torch.Tensor
    x_test: torch.Tensor
    y_test: torch.Tensor
    mean: float
    std: float

    def pixel_bounds(self) -> tuple[float, float]:
        """Normalised values of the pixel intensities 0 and 1."""
        return (0.0 - self.mean) / self.std, (1.0 - self.mean) / self.std


def load_digits(seed: int = 0, test_fraction: float = 0.25) -> Digits:
    """scikit-learn's digits (1797 images, bundled with sklearn: no download), split and scaled."""
    from sklearn.datasets import load_digits as _load

    data = _load()
    x = torch.tensor(data.images, dtype=torch.float32)[:, None] / 16.0
    y = torch.tensor(data.target, dtype=torch.long)
    perm = torch.randperm(x.shape[0], generator=torch.Generator().manual_seed(seed))
    n_test = int(round(test_fraction * x.shape[0]))
    te, tr = perm[:n_test], perm[n_test:]
    mean, std = float(x[tr].mean()), float(x[tr].std())
    norm = (x - mean) / std
    return Digits(norm[tr], y[tr], norm[te], y[te], mean, std)


def make_model(arch: str = "mlp", classes: int = 10, seed: int = 0) -> nn.Module:
    """``"mlp"``: 64-128-128-10 ReLU; ``"cnn"``: 3 conv layers (16, 32, 32 ch) + linear."""
    torch.manual_seed(seed)
    if arch == "mlp":
        return nn.Sequential(nn.Flatten(), nn.Linear(64, 128), nn.ReLU(), nn.Linear(128, 128),
                             nn.ReLU(), nn.Linear(128, classes))
    if arch == "cnn":
        return nn.Sequential(
            nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(),
            nn.Conv2d(16, 32, 3, padding=1, stride=2), nn.ReLU(),
            nn.Conv2d(32, 32, 3, padding=1, stride=2), nn.ReLU(),
            nn.Flatten(), nn.Linear(32 * 2 * 2, classes))
    raise ValueError(f"arch must be 'mlp' or 'cnn', got {arch!r}")


@dataclasses.dataclass
class TrainResult:
    model: nn.Module
    arch: str
    variant: str
    train_acc: float
    test_acc: float
    train_loss: float
    test_loss: float
    seconds: float


def _evaluate(model: nn.Module, x: torch.Tensor, y: torch.Tensor) -> tuple[float, float]:
    model.eval()
    with torch.no_grad():
        out = model(x)
        return float((out.argmax(1) == y).float().mean()), float(F.cross_entropy(out, y))


def train_model(data: Digits, arch: str = "mlp", variant: str = "normal", epochs: int = 20,
                lr: float = 0.05, batch_size: int = 64, seed: int = 0, players: int = 8,
                weight: float = 1.0) -> TrainResult:
    """Train on digits with CE (+ the variant's :class:`OrderLoss`): SGD, momentum 0.9,
    weight decay 5e-4, learning rate decayed log-uniformly by 10× (official schedule)."""
    if variant not in VARIANTS:
        raise ValueError(f"variant must be one of {VARIANTS}, got {variant!r}")
    if epochs < 0:
        raise ValueError(f"epochs must be >= 0, got {epochs}")
    model = make_model(arch, seed=seed)
    order_loss = None if variant == "normal" else OrderLoss.preset(variant, players=players,
                                                                  weight=weight)
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=0.9, weight_decay=5e-4)
    gen = torch.Generator().manual_seed(seed)
    t0 = time.perf_counter()
    n = data.x_train.shape[0]
    for epoch in range(epochs):
        for group in opt.param_groups:
            group["lr"] = lr * 10 ** (-epoch / max(epochs - 1, 1))
        model.train()
        perm = torch.randperm(n, generator=gen)
        for s in range(0, n, batch_size):
            idx = perm[s:s + batch_size]
            xb, yb = data.x_train[idx], data.y_train[idx]
            logits = model(xb)
            loss = F.cross_entropy(logits, yb)
            if order_loss is not None:
                loss = loss + order_loss(model, xb, yb, logits=logits, generator=gen)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
    tr_acc, tr_loss = _evaluate(model, data.x_train, data.y_train)
    te_acc, te_loss = _evaluate(model, data.x_test, data.y_test)
    return TrainResult(model, arch, variant, tr_acc, te_acc, tr_loss, te_loss,
                       time.perf_counter() - t0)


def pgd_accuracy(model: nn.Module, data: Digits, eps: float = 0.1, steps: int = 10,
                 step_size: float | None = None, max_images: int | None = None) -> float:
    """Accuracy under an untargeted L∞ PGD attack (ε in pixel units of [0, 1]; random start)."""
    x, y = data.x_test, data.y_test
    if max_images is not None:
        x, y = x[:max_images], y[:max_images]
    eps_n = eps / data.std
    step = (step_size if step_size is not None else 2.5 * eps / max(steps, 1)) / data.std
    lo, hi = data.pixel_bounds()
    model.eval()
    gen = torch.Generator().manual_seed(0)
    adv = (x + (torch.rand(x.shape, generator=gen) * 2 - 1) * eps_n).clamp(lo, hi)
    for _ in range(steps):
        adv.requires_grad_(True)
        loss = F.cross_entropy(model(adv), y)
        (grad,) = torch.autograd.grad(loss, adv)
        with torch.no_grad():
            adv = adv + step * grad.sign()
            adv = torch.minimum(torch.maximum(adv, x - eps_n), x + eps_n).clamp(lo, hi)
    with torch.no_grad():
        return float((model(adv).argmax(1) == y).float().mean())


def measure_J(model: nn.Module, data: Digits, images: int = 10, num_pairs: int = 16,
              num_contexts: int = 16, players: int = 8, orders=ORDER_RATIOS, seed: int = 0,
              only_correct: bool = True, progress: bool = False) -> InteractionResult:
    """J^(m) of ``model`` on the first training images (log-odds of the label, zero baseline,
    local pairs), keeping only correctly classified images like the official protocol."""
    model.eval()
    x, y = data.x_train, data.y_train
    if only_correct:
        with torch.no_grad():
            ok = model(x).argmax(1) == y
        x, y = x[ok], y[ok]
    x, y = x[:images], y[:images]
    if x.shape[0] == 0:
        raise ValueError("no correctly classified image to measure")
    return multi_order_interaction(
        model, x, y, players=players, pairs="local", num_pairs=num_pairs, orders=orders,
        num_contexts=num_contexts, baseline="zero", batch_size=1024,
        generator=torch.Generator().manual_seed(seed), progress=progress)


def describe_presets() -> str:
    return ", ".join(f"{k}: {m} ({r1}, {r2})" for k, (r1, r2, m) in ORDER_LOSS_PRESETS.items())
