"""Training recipe shared by the report section and ``udl diffstride train-cifar``."""

from __future__ import annotations

import dataclasses
import math
import time
from collections.abc import Callable, Iterable
from typing import Any

import torch
from torch import nn

from udl.diffstride.layers import _DiffStrideNd
from udl.diffstride.models import complexity, learned_strides

__all__ = ["History", "fit", "evaluate", "digits_32", "cifar_loaders"]


@dataclasses.dataclass
class History:
    """Per-epoch record of one training run."""

    test_acc: list[float] = dataclasses.field(default_factory=list)
    train_loss: list[float] = dataclasses.field(default_factory=list)
    strides: list[dict[str, list[float]]] = dataclasses.field(default_factory=list)
    macs: list[float] = dataclasses.field(default_factory=list)
    seconds: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


@torch.no_grad()
def evaluate(model: nn.Module, batches: Iterable[tuple[torch.Tensor, torch.Tensor]],
             device: torch.device | str = "cpu") -> float:
    """Top-1 accuracy of ``model`` over ``batches`` of (images, labels)."""
    was = model.training
    model.eval()
    correct = total = 0
    for xb, yb in batches:
        pred = model(xb.to(device)).argmax(1).cpu()
        correct += int((pred == yb).sum())
        total += len(yb)
    model.train(was)
    return correct / max(total, 1)


def fit(model: nn.Module, train: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]],
        test: Callable[[], Iterable[tuple[torch.Tensor, torch.Tensor]]], epochs: int,
        input_shape: tuple[int, ...], lr: float = 0.05, stride_lr: float | None = None,
        lam: float = 0.0, weight_decay: float = 5e-4, label_smoothing: float = 0.0,
        optimizer: str = "sgd", device: torch.device | str = "cpu",
        progress: Callable | None = None) -> History:
    """Train on cross-entropy ``+ lam * complexity / complexity_0`` with a cosine schedule.

    ``optimizer``: ``"sgd"`` (momentum 0.9, Nesterov; the paper's choice) or ``"adam"`` (AdamW;
    converges in fewer steps, used by the miniature report). ``train``/``test`` return fresh
    iterables of (images, labels) batches each epoch. The strides get no weight decay and learning
    rate ``stride_lr`` (default ``lr``).
    """
    if optimizer not in ("sgd", "adam"):
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {optimizer!r}")
    model.to(device)
    strides = [p for m in model.modules() if isinstance(m, _DiffStrideNd) for p in m.parameters()]
    ids = {id(p) for p in strides}
    others = [p for p in model.parameters() if id(p) not in ids]
    groups = [{"params": others, "weight_decay": weight_decay}]
    if strides:
        groups.append({"params": strides, "weight_decay": 0.0,
                       "lr": lr if stride_lr is None else stride_lr})
    if optimizer == "sgd":
        opt = torch.optim.SGD(groups, lr=lr, momentum=0.9, nesterov=True)
    else:
        opt = torch.optim.AdamW(groups, lr=lr)
    base_lrs = [g["lr"] for g in opt.param_groups]
    c0 = float(complexity(model, input_shape).detach()) if lam > 0 else 1.0
    hist = History()
    t0 = time.perf_counter()
    epoch_iter = range(epochs) if progress is None else progress(range(epochs), desc="epochs")
    batches_seen, total_batches = 0, None
    for _ in epoch_iter:
        model.train()
        data = list(train())
        if total_batches is None:
            total_batches = max(1, epochs * len(data))
        losses = []
        for xb, yb in data:
            frac = batches_seen / total_batches
            for g, base in zip(opt.param_groups, base_lrs):
                g["lr"] = base * 0.5 * (1 + math.cos(math.pi * frac))
            batches_seen += 1
            xb, yb = xb.to(device), yb.to(device)
            loss = nn.functional.cross_entropy(model(xb), yb, label_smoothing=label_smoothing)
            total = loss + lam * complexity(model, input_shape) / c0 if lam > 0 else loss
            opt.zero_grad(set_to_none=True)
            total.backward()
            opt.step()
            losses.append(float(loss.detach()))
        hist.train_loss.append(sum(losses) / max(len(losses), 1))
        hist.test_acc.append(evaluate(model, test(), device))
        hist.strides.append(learned_strides(model))
        hist.macs.append(float(complexity(model, input_shape).detach()))
    hist.seconds = time.perf_counter() - t0
    return hist


def _batches(x: torch.Tensor, y: torch.Tensor, batch_size: int, shuffle: bool,
             generator: torch.Generator | None = None, augment: bool = False):
    idx = torch.randperm(len(x), generator=generator) if shuffle else torch.arange(len(x))
    for i in range(0, len(x), batch_size):
        j = idx[i:i + batch_size]
        xb = x[j]
        if augment:  # random shifts of up to 2 pixels and horizontal flips are not used for digits
            shift = torch.randint(-2, 3, (2,), generator=generator).tolist()
            xb = torch.roll(xb, shifts=shift, dims=(2, 3))
        yield xb, y[j]


def digits_32(n_train: int, n_test: int, size: int = 32, seed: int = 0):
    """scikit-learn's 8x8 digits upsampled (bilinear) to ``size`` x ``size``, standardised.
    Returns ``(x_train, y_train, x_test, y_test)``; images are ``Tensor[N, 1, size, size]``."""
    from sklearn.datasets import load_digits

    data = load_digits()
    x = torch.tensor(data.images, dtype=torch.float32).unsqueeze(1) / 16.0
    x = nn.functional.interpolate(x, size=(size, size), mode="bilinear", align_corners=False)
    x = (x - x.mean()) / x.std()
    y = torch.tensor(data.target, dtype=torch.long)
    perm = torch.randperm(len(x), generator=torch.Generator().manual_seed(seed))
    n_train = min(n_train, len(x) - 1)
    n_test = min(n_test, len(x) - n_train)
    tr, te = perm[:n_train], perm[n_train:n_train + n_test]
    return x[tr], y[tr], x[te], y[te]


def cifar_loaders(root: str, dataset: str = "cifar10", batch_size: int = 128, workers: int = 2,
                  limit: int | None = None):
    """Train/test DataLoaders for CIFAR-10/100 read from a local folder (never downloads):
    random crop (pad 4) + horizontal flip for training, per-channel normalisation."""
    from pathlib import Path

    import torchvision
    from torchvision import transforms as T

    if not Path(root).exists():
        raise FileNotFoundError(f"--root {root} does not exist")
    cls = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}
    if dataset not in cls:
        raise ValueError(f"dataset must be one of {sorted(cls)}, got {dataset!r}")
    mean, std = (0.4914, 0.4822, 0.4465), (0.2470, 0.2435, 0.2616)
    train_tf = T.Compose([T.RandomCrop(32, padding=4), T.RandomHorizontalFlip(), T.ToTensor(),
                          T.Normalize(mean, std)])
    test_tf = T.Compose([T.ToTensor(), T.Normalize(mean, std)])
    try:
        train_set = cls[dataset](root, train=True, download=False, transform=train_tf)
        test_set = cls[dataset](root, train=False, download=False, transform=test_tf)
    except RuntimeError as exc:  # torchvision: "Dataset not found or corrupted"
        raise FileNotFoundError(f"{dataset} not found under {root}: {exc}") from exc
    if limit:
        train_set = torch.utils.data.Subset(train_set, range(min(limit, len(train_set))))
        test_set = torch.utils.data.Subset(test_set, range(min(limit, len(test_set))))
    dl = torch.utils.data.DataLoader
    train = dl(train_set, batch_size=batch_size, shuffle=True, num_workers=workers, drop_last=True)
    test = dl(test_set, batch_size=256, shuffle=False, num_workers=workers)
    return train, test
