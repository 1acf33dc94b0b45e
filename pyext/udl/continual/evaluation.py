"""KNN evaluation, continual-learning metrics (accuracy matrix, forgetting) and linear CKA."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

__all__ = ["knn_predict", "knn_accuracy", "extract_features", "ContinualMetrics", "linear_cka",
           "layerwise_cka"]


def knn_predict(bank_feats: Tensor, bank_labels: Tensor, query_feats: Tensor, k: int = 200,
                temperature: float = 0.1, chunk_size: int = 1024) -> Tensor:
    """Weighted KNN (Wu et al. 2018): cosine similarity, top-k neighbours vote with weight
    ``exp(sim / temperature)``; prediction = class with the largest summed weight.

    Args:
        bank_feats: (M, D) features of the labelled bank (normalised inside).
        bank_labels: (M,) integer labels (any values).
        query_feats: (Q, D) features to classify.
        k: number of neighbours, capped at M.
        temperature: T > 0.
        chunk_size: queries per block (bounds the (chunk, M) similarity memory).
    Returns:
        (Q,) predicted labels (same values as ``bank_labels``).
    """
    if bank_feats.dim() != 2 or query_feats.dim() != 2:
        raise ValueError(f"bank_feats and query_feats must be 2-D; got {tuple(bank_feats.shape)} "
                         f"and {tuple(query_feats.shape)}")
    if bank_labels.shape != (bank_feats.shape[0],):
        raise ValueError(f"bank_labels must have shape ({bank_feats.shape[0]},); got "
                         f"{tuple(bank_labels.shape)}")
    if bank_feats.shape[1] != query_feats.shape[1]:
        raise ValueError(f"feature sizes differ: bank {bank_feats.shape[1]}, query "
                         f"{query_feats.shape[1]}")
    if not isinstance(k, int) or k < 1:
        raise ValueError(f"k must be a positive int, got {k!r}")
    if not temperature > 0:
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if query_feats.shape[0] == 0:
        return bank_labels.new_empty(0)
    if bank_feats.shape[0] == 0:
        raise ValueError("the KNN bank is empty but there are queries to classify")
    classes, inv = torch.unique(bank_labels, return_inverse=True)
    c = classes.numel()
    k = min(k, bank_feats.shape[0])
    bank = F.normalize(bank_feats.float(), dim=1)
    query = F.normalize(query_feats.float().to(bank.device), dim=1)
    inv = inv.to(bank.device)
    preds = []
    for s in range(0, query.shape[0], chunk_size):
        sim = query[s:s + chunk_size] @ bank.T
        top_sim, top_idx = sim.topk(k, dim=1)
        w = torch.exp(top_sim / temperature)
        votes = torch.zeros(sim.shape[0], c, device=bank.device, dtype=w.dtype)
        votes.scatter_add_(1, inv[top_idx], w)
        preds.append(votes.argmax(1))
    return classes.to(bank.device)[torch.cat(preds)]


def knn_accuracy(bank_feats: Tensor, bank_labels: Tensor, query_feats: Tensor,
                 query_labels: Tensor, k: int = 200, temperature: float = 0.1) -> float:
    """Weighted-KNN accuracy in **percent** (see :func:`knn_predict`); ``nan`` for no queries."""
    if query_labels.shape != (query_feats.shape[0],):
        raise ValueError(f"query_labels must have shape ({query_feats.shape[0]},); got "
                         f"{tuple(query_labels.shape)}")
    pred = knn_predict(bank_feats, bank_labels, query_feats, k, temperature)
    if pred.numel() == 0:
        return float("nan")
    return float((pred.cpu() == query_labels.cpu()).float().mean()) * 100.0


@torch.no_grad()
def extract_features(fn: Callable[[Tensor], Tensor], x: Tensor, batch_size: int = 512,
                     device: str | torch.device | None = None) -> Tensor:
    """Apply ``fn`` to ``x`` (N, ...) in batches without gradients; returns (N, D) on CPU."""
    out = []
    for s in range(0, x.shape[0], batch_size):
        xb = x[s:s + batch_size]
        if device is not None:
            xb = xb.to(device, non_blocking=True)
        out.append(fn(xb).flatten(1).float().cpu())
    if not out:
        return torch.empty(0, 0)
    return torch.cat(out)


class ContinualMetrics:
    """The accuracy matrix of a continual run and the paper's summary metrics.

    ``matrix[τ, i]`` (T × T, percent, NaN = not measured) is the accuracy on task i after
    training task τ (0-based).

    Args:
        num_tasks: T ≥ 1.
    """

    def __init__(self, num_tasks: int) -> None:
        if not isinstance(num_tasks, int) or num_tasks < 1:
            raise ValueError(f"num_tasks must be a positive int, got {num_tasks!r}")
        self.num_tasks = num_tasks
        self.matrix = torch.full((num_tasks, num_tasks), float("nan"), dtype=torch.float64)

    @classmethod
    def from_matrix(cls, matrix: Sequence[Sequence[float]] | Tensor) -> ContinualMetrics:
        """From a square accuracy matrix ``A[τ, i]`` (NaN where not measured)."""
        a = torch.as_tensor(matrix, dtype=torch.float64)
        if a.dim() != 2 or a.shape[0] != a.shape[1] or a.shape[0] == 0:
            raise ValueError(f"matrix must be square T×T with T ≥ 1; got shape {tuple(a.shape)}")
        m = cls(a.shape[0])
        m.matrix = a.clone()
        return m

    def update(self, trained: int, accuracies: Sequence[float] | Tensor,
               tasks: Sequence[int] | None = None) -> None:
        """Record the accuracies measured after training task ``trained`` on ``tasks``
        (default: tasks 0..len(accuracies)-1)."""
        if not 0 <= trained < self.num_tasks:
            raise ValueError(f"trained must be in [0, {self.num_tasks}), got {trained}")
        acc = torch.as_tensor(accuracies, dtype=torch.float64).flatten()
        idx = list(range(acc.numel())) if tasks is None else list(tasks)
        if len(idx) != acc.numel() or any(not 0 <= i < self.num_tasks for i in idx):
            raise ValueError("tasks and accuracies must match and index existing tasks")
        self.matrix[trained, idx] = acc

    def _last(self, after: int | None) -> int:
        t = self.num_tasks - 1 if after is None else after
        if not 0 <= t < self.num_tasks:
            raise ValueError(f"after must be in [0, {self.num_tasks}), got {after}")
        return t

    def average_accuracy(self, after: int | None = None) -> float:
        """``A_τ = mean_{i ≤ τ} a[τ, i]`` (τ = last task by default); NaN entries are skipped."""
        t = self._last(after)
        return float(torch.nanmean(self.matrix[t, : t + 1]))

    def forgetting(self, reference: str = "max", include_pre_learning: bool = True,
                   after: int | None = None) -> float:
        """Average forgetting over tasks 0..τ-1 after training task τ (last by default).

        - ``reference="max"`` (paper): ``max_{s} a[s, i] − a[τ, i]`` where s runs over all
          measured rows 0..τ (``include_pre_learning=True``, the paper's formula) or only
          i..τ-1 (``False``: Chaudhry et al.; may be negative).
        - ``reference="first"``: ``a[i, i] − a[τ, i]`` (UCL HEAD code, avalanche).

        Returns NaN when τ = 0 or nothing needed was measured.
        """
        if reference not in ("max", "first"):
            raise ValueError(f"reference must be 'max' or 'first', got {reference!r}")
        t = self._last(after)
        vals = []
        for i in range(t):
            final = self.matrix[t, i]
            if reference == "first":
                ref = self.matrix[i, i]
            else:
                col = self.matrix[:t, i] if include_pre_learning else self.matrix[i:t, i]
                col = col[~torch.isnan(col)]
                # the paper's max also runs over the final row, which only matters when it is
                # the largest value (forgetting 0); with no earlier measurement it is undefined
                ref = (torch.maximum(col.max(), final) if include_pre_learning else col.max()
                       ) if col.numel() else torch.tensor(float("nan"))
            vals.append(float(ref - final))
        vals = [v for v in vals if not math.isnan(v)]
        return sum(vals) / len(vals) if vals else float("nan")

    def to_dict(self) -> dict[str, Any]:
        return {"matrix": [[None if math.isnan(v) else v for v in row]
                           for row in self.matrix.tolist()],
                "average_accuracy": self.average_accuracy(),
                "forgetting": self.forgetting(),
                "forgetting_first": self.forgetting(reference="first")}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> ContinualMetrics:
        return cls.from_matrix([[float("nan") if v is None else v for v in row]
                                for row in d["matrix"]])

    def plot(self, ax=None, title: str | None = None, vmin: float | None = None,
             vmax: float | None = None):
        """Heat map of the accuracy matrix (rows: after task τ, columns: task i)."""
        import matplotlib.pyplot as plt
        import numpy as np

        if ax is None:
            _, ax = plt.subplots(figsize=(3.2, 2.8))
        a = self.matrix.numpy()
        im = ax.imshow(a, cmap="viridis", vmin=vmin, vmax=vmax)
        t = self.num_tasks
        lo = float(np.nanmin(a)) if vmin is None and not np.isnan(a).all() else (vmin or 0.0)
        hi = float(np.nanmax(a)) if vmax is None and not np.isnan(a).all() else (vmax or 100.0)
        if t <= 10:
            for r in range(t):
                for c in range(t):
                    if not math.isnan(a[r, c]):
                        ax.text(c, r, f"{a[r, c]:.0f}", ha="center", va="center", fontsize=7,
                                color="w" if a[r, c] < lo + 0.6 * (hi - lo) else "k")
        ax.set_xlabel("evaluated task i")
        ax.set_ylabel("after training task τ")
        ax.set_xticks(range(t))
        ax.set_yticks(range(t))
        if title:
            ax.set_title(title, fontsize=9)
        ax.figure.colorbar(im, ax=ax, fraction=0.046)
        return ax

    def __repr__(self) -> str:
        return (f"ContinualMetrics(T={self.num_tasks}, acc={self.average_accuracy():.2f}, "
                f"forgetting={self.forgetting():.2f})")


def linear_cka(x: Tensor, y: Tensor) -> float:
    """Linear CKA between two feature matrices of the same N inputs: (N, D1), (N, D2).

    ``‖Yᶜᵀ Xᶜ‖²_F / (‖Xᶜᵀ Xᶜ‖_F ‖Yᶜᵀ Yᶜ‖_F)`` with column-centred Xᶜ, Yᶜ (computed in float64).
    """
    if x.dim() != 2 or y.dim() != 2 or x.shape[0] != y.shape[0]:
        raise ValueError(f"x and y must be (N, D1) and (N, D2) with the same N; got "
                         f"{tuple(x.shape)} and {tuple(y.shape)}")
    if x.shape[0] < 2:
        raise ValueError("linear_cka needs at least 2 examples")
    x = x.double() - x.double().mean(0)
    y = y.double() - y.double().mean(0)
    num = (y.T @ x).pow(2).sum()
    den = torch.linalg.matrix_norm(x.T @ x) * torch.linalg.matrix_norm(y.T @ y)
    return float(num / den) if den > 0 else float("nan")


@torch.no_grad()
def layerwise_cka(model_a: nn.Module, model_b: nn.Module, x: Tensor,
                  layers: Sequence[str] | None = None, batch_size: int = 256) -> dict[str, float]:
    """Linear CKA between the outputs of the same-named modules of two models on inputs ``x``.

    Args:
        model_a, model_b: two models with the same module names (e.g. two backbones).
        x: (N, ...) inputs.
        layers: module names (default: the direct children of ``model_a`` with parameters).
    Returns:
        ``{layer name: CKA}`` in the order of ``layers``.
    """
    if layers is None:
        layers = [n for n, m in model_a.named_children() if any(True for _ in m.parameters())]
    mods_a, mods_b = dict(model_a.named_modules()), dict(model_b.named_modules())
    for n in layers:
        if n not in mods_a or n not in mods_b:
            raise ValueError(f"layer {n!r} is not a module of both models")
    feats: dict[tuple[int, str], list[Tensor]] = {}
    hooks = []
    for which, mods in ((0, mods_a), (1, mods_b)):
        for n in layers:
            def hook(_m, _i, out, key=(which, n)):
                feats.setdefault(key, []).append(out.flatten(1).double().cpu())
            hooks.append(mods[n].register_forward_hook(hook))
    was = (model_a.training, model_b.training)
    model_a.eval()
    model_b.eval()
    try:
        for s in range(0, x.shape[0], batch_size):
            model_a(x[s:s + batch_size])
            model_b(x[s:s + batch_size])
    finally:
        for h in hooks:
            h.remove()
        model_a.train(was[0])
        model_b.train(was[1])
    return {n: linear_cka(torch.cat(feats[(0, n)]), torch.cat(feats[(1, n)])) for n in layers}
