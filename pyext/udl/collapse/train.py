"""Train a classifier into the terminal phase while a :class:`CollapseMonitor` watches it.

Shared by ``udl collapse train`` and the report section. Datasets: scikit-learn's digits (bundled,
no download), MNIST / CIFAR-10 from a local torchvision folder (``download=False``). Architectures:
an MLP, a small CNN and the CIFAR/MNIST-style ResNet18 of the reference notebook (3x3 stride-1 stem,
no max-pool). Every model exposes its last linear layer as ``model.fc``.
"""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import nn

from udl.collapse.metrics import lam_from_weight_decay
from udl.collapse.monitor import CollapseMonitor

__all__ = ["load_dataset", "build_model", "analysis_epochs", "TrainResult", "train_collapse",
           "DATASETS", "ARCHS"]

DATASETS = ("digits", "mnist-folder", "cifar10-folder")
ARCHS = ("mlp", "cnn", "resnet18")


def _balanced(y: torch.Tensor, per_class: int | None, seed: int) -> torch.Tensor:
    """Indices of a class-balanced subset (``per_class`` each; default: the smallest class count)."""
    c = int(y.max()) + 1
    counts = torch.bincount(y, minlength=c)
    k = int(counts.min()) if per_class is None else int(per_class)
    if k < 1 or k > int(counts.min()):
        raise ValueError(f"per_class must be in [1, {int(counts.min())}] (smallest class), got {per_class}")
    g = torch.Generator().manual_seed(seed)
    idx = [torch.nonzero(y == j).flatten()[torch.randperm(int(counts[j]), generator=g)[:k]]
           for j in range(c)]
    return torch.sort(torch.cat(idx)).values


def load_dataset(name: str, root: str | None = None, per_class: int | None = None,
                 seed: int = 0) -> tuple[torch.Tensor, torch.Tensor, int]:
    """A balanced training set as ``(x (N, channels, H, W) float32 normalised, y (N,) int64, C)``.

    Args:
        name: ``"digits"`` (scikit-learn, 8x8, no download), ``"mnist-folder"`` or
            ``"cifar10-folder"`` (torchvision's format under ``root``; never downloads).
        root: the folder for the torchvision datasets.
        per_class: samples per class (default: as many as the smallest class has).
    """
    if name == "digits":
        from sklearn.datasets import load_digits

        data = load_digits()
        x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
        y = torch.tensor(data.target, dtype=torch.int64)
        mean, std = x.mean(), x.std()
    elif name in ("mnist-folder", "cifar10-folder"):
        if root is None:
            raise ValueError(f"dataset {name!r} needs --data-root (a local torchvision folder)")
        import torchvision

        cls = torchvision.datasets.MNIST if name == "mnist-folder" else torchvision.datasets.CIFAR10
        try:
            ds = cls(root, train=True, download=False)
        except RuntimeError as exc:
            raise FileNotFoundError(f"{name}: no torchvision dataset under {root!r} ({exc})") from exc
        data = torch.as_tensor(ds.data)
        x = (data.unsqueeze(1) if data.dim() == 3 else data.permute(0, 3, 1, 2)).float() / 255.0
        y = torch.as_tensor(ds.targets, dtype=torch.int64)
        if name == "mnist-folder":
            mean, std = torch.tensor(0.1307), torch.tensor(0.3081)
        else:
            mean = torch.tensor([0.4914, 0.4822, 0.4465]).view(1, 3, 1, 1)
            std = torch.tensor([0.2470, 0.2435, 0.2616]).view(1, 3, 1, 1)
    else:
        raise ValueError(f"dataset must be one of {DATASETS}, got {name!r}")
    idx = _balanced(y, per_class, seed)
    x = ((x[idx] - mean) / std).contiguous()
    return x, y[idx].contiguous(), int(y.max()) + 1


class MLP(nn.Module):
    """Flatten -> [Linear -> BatchNorm -> ReLU] x depth -> fc."""

    def __init__(self, in_features: int, num_classes: int, width: int = 128, depth: int = 3) -> None:
        super().__init__()
        layers: list[nn.Module] = [nn.Flatten()]
        dims = [in_features] + [width] * depth
        for a, b in zip(dims[:-1], dims[1:]):
            layers += [nn.Linear(a, b), nn.BatchNorm1d(b), nn.ReLU()]
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


class SmallCNN(nn.Module):
    """Three 3x3 conv-BN-ReLU blocks (one max-pool), global average pool -> fc (d = 4 * width)."""

    def __init__(self, in_channels: int, num_classes: int, width: int = 16) -> None:
        super().__init__()

        def block(a, b):
            return [nn.Conv2d(a, b, 3, padding=1, bias=False), nn.BatchNorm2d(b), nn.ReLU()]

        self.features = nn.Sequential(*block(in_channels, width), *block(width, 2 * width),
                                      nn.MaxPool2d(2), *block(2 * width, 4 * width),
                                      nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.fc = nn.Linear(4 * width, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.features(x))


def build_model(arch: str, input_shape: Sequence[int], num_classes: int, width: int | None = None
                ) -> nn.Module:
    """``"mlp"``, ``"cnn"`` or ``"resnet18"`` for inputs of shape (channels, H, W); classifier: ``.fc``."""
    chans = int(input_shape[0])
    if arch == "mlp":
        return MLP(math.prod(input_shape), num_classes, width or 128)
    if arch == "cnn":
        return SmallCNN(chans, num_classes, width or 16)
    if arch == "resnet18":
        import torchvision

        model = torchvision.models.resnet18(num_classes=num_classes)
        model.conv1 = nn.Conv2d(chans, 64, 3, 1, 1, bias=False)     # as the notebook: 3x3 stride 1
        model.maxpool = nn.Identity()
        return model
    raise ValueError(f"arch must be one of {ARCHS}, got {arch!r}")


def analysis_epochs(epochs: int, points: int = 30, dense: int = 10) -> list[int]:
    """Epochs to analyse: every epoch up to ``dense``, then roughly log-spaced up to ``epochs``."""
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    out = set(range(1, min(dense, epochs) + 1))
    if epochs > dense:
        ratio = (epochs / dense) ** (1.0 / max(points - dense, 1))
        e = float(dense)
        while e < epochs:
            e *= ratio
            out.add(min(epochs, int(round(e))))
    out.add(epochs)
    return sorted(out)


@dataclasses.dataclass
class TrainResult:
    model: nn.Module
    monitor: CollapseMonitor
    losses: list[float]            # mean training loss per epoch
    lam: float
    seconds: float
    first_zero_error_epoch: int | None


def train_collapse(
    x: torch.Tensor, y: torch.Tensor, num_classes: int, *, arch: str = "mlp", loss: str = "mse",
    epochs: int = 100, lr: float | None = None, weight_decay: float = 5e-4, momentum: float = 0.9,
    batch_size: int = 128, eval_epochs: Sequence[int] | None = None, width: int | None = None,
    device: str | torch.device = "cpu", seed: int = 0,
    progress: Callable[[Any], Any] | None = None,
) -> TrainResult:
    """SGD (momentum, weight decay, lr x0.1 at 1/3 and 2/3 of training, as the notebook) with MSE on
    one-hot targets (``nn.MSELoss()``) or cross-entropy; a :class:`CollapseMonitor` analyses the
    training set at ``eval_epochs`` (default :func:`analysis_epochs`) with
    lam = ``lam_from_weight_decay(weight_decay, C, "mean")``.
    """
    if loss not in ("mse", "ce"):
        raise ValueError(f"loss must be 'mse' or 'ce', got {loss!r}")
    if x.shape[0] != y.shape[0] or x.shape[0] == 0:
        raise ValueError(f"x and y must have the same non-zero length, got {x.shape[0]} and {y.shape[0]}")
    device = torch.device(device)
    torch.manual_seed(seed)
    model = build_model(arch, tuple(x.shape[1:]), num_classes, width).to(device)
    if lr is None:
        lr = {"mse": 0.5, "ce": 0.05}[loss]
    opt = torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum, weight_decay=weight_decay)
    sched = torch.optim.lr_scheduler.MultiStepLR(opt, [max(1, epochs // 3), max(2, 2 * epochs // 3)], 0.1)
    lam = lam_from_weight_decay(weight_decay, num_classes, "mean")
    eval_batches = [(x[i:i + 512], y[i:i + 512]) for i in range(0, len(y), 512)]
    monitor = CollapseMonitor(model, model.fc, eval_batches, num_classes,
                              every=eval_epochs if eval_epochs is not None else analysis_epochs(epochs),
                              lam=lam, device=device, stats_device="cpu" if device.type == "mps" else None)
    crit = nn.MSELoss() if loss == "mse" else nn.CrossEntropyLoss()
    eye = torch.eye(num_classes, device=device)
    g = torch.Generator().manual_seed(seed)
    losses: list[float] = []
    first_zero = None
    t0 = time.perf_counter()
    it = range(1, epochs + 1)
    for epoch in (progress(it) if progress is not None else it):
        model.train()
        perm = torch.randperm(len(y), generator=g)
        total, seen = 0.0, 0
        for i in range(0, len(y) - batch_size + 1 if len(y) >= batch_size else 1, batch_size):
            idx = perm[i:i + batch_size]
            xb, yb = x[idx].to(device), y[idx].to(device)
            out = model(xb)
            loss_v = crit(out, eye[yb]) if loss == "mse" else crit(out, yb)
            opt.zero_grad(set_to_none=True)
            loss_v.backward()
            opt.step()
            total += float(loss_v.detach()) * len(idx)
            seen += len(idx)
        sched.step()
        losses.append(total / seen)
        rec = monitor(epoch, loss=losses[-1], lr=opt.param_groups[0]["lr"])
        if rec is not None and first_zero is None and rec["accuracy"] == 1.0:
            first_zero = epoch
    return TrainResult(model, monitor, losses, lam, time.perf_counter() - t0, first_zero)
