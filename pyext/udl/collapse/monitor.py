"""A training-loop callback that tracks neural collapse, and the standard NC figures."""

from __future__ import annotations

import json
import math
import warnings
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import torch

from udl.collapse.metrics import central_path, nc_metrics, snr_singular_values
from udl.collapse.stats import _IDX, CollapseStats

__all__ = ["CollapseMonitor", "plot_history"]


class CollapseMonitor:
    """Track NC1-NC4, the MSE decomposition and the central path during training.

    At each scheduled epoch the monitor runs two passes over ``loader`` with the model in eval mode
    under ``torch.no_grad()``: a forward hook on ``classifier`` captures its input (the features h,
    (B, d)) and its output (the logits, bias included); pass 1 accumulates :class:`CollapseStats`
    and the train accuracy, pass 2 counts NC4 against the pass-1 class means. The hook is removed
    and the model's train/eval mode restored after every analysis.

    Args:
        model: the network; ``model(x)`` must call ``classifier``.
        classifier: the last linear layer (weight (C, d), optional bias (C,)), e.g. ``model.fc``.
        loader: iterable of ``(x, y)`` batches (use the training set, without augmentation/shuffle).
        num_classes: C.
        every: an int k (analyse when ``epoch % k == 0``) or an iterable of epochs to analyse
            (e.g. the paper's log-spaced schedule).
        lam: ridge lambda of the paper's MSE objective (see
            :func:`udl.collapse.lam_from_weight_decay`); None skips the decomposition and the
            distance to the least-squares classifier (the SNR omega is always tracked).
        device: where batches go (default: the model's parameters' device).
        stats_device: where the float64 statistics live (default: ``device``; use "cpu" on devices
            without float64).
        global_mean: ``"class"`` (paper) or ``"sample"``.
        all_reduce: combine statistics over torch.distributed ranks (default: when initialised).
        max_batches: analyse only the first ``max_batches`` batches of each pass (None: all).

    Example::

        mon = CollapseMonitor(model, model.fc, train_eval_loader, 10, every=5, lam=lam)
        for epoch in range(1, epochs + 1):
            train_one_epoch(...)
            mon(epoch, loss=running_loss)
        mon.save("nc.json"); mon.plot("nc.png")
    """

    def __init__(self, model: torch.nn.Module, classifier: torch.nn.Module, loader: Iterable,
                 num_classes: int, every: int | Iterable[int] = 1, *, lam: float | None = None,
                 device: str | torch.device | None = None,
                 stats_device: str | torch.device | None = None, global_mean: str = "class",
                 all_reduce: bool | None = None, max_batches: int | None = None) -> None:
        if not isinstance(model, torch.nn.Module) or not isinstance(classifier, torch.nn.Module):
            raise ValueError("model and classifier must be torch.nn.Module instances")
        weight = getattr(classifier, "weight", None)
        if not isinstance(weight, torch.Tensor) or weight.dim() != 2:
            raise ValueError("classifier must have a 2-D .weight of shape (num_classes, dim) "
                             "(e.g. an nn.Linear)")
        if weight.shape[0] != num_classes:
            raise ValueError(f"classifier.weight has {weight.shape[0]} rows but num_classes={num_classes}")
        if isinstance(every, int):
            if every < 1:
                raise ValueError(f"every must be >= 1, got {every}")
            self._every: int | frozenset[int] = every
        else:
            self._every = frozenset(int(e) for e in every)
        if lam is not None and not (isinstance(lam, (int, float)) and lam >= 0):
            raise ValueError(f"lam must be None or a number >= 0, got {lam!r}")
        if global_mean not in ("class", "sample"):
            raise ValueError(f"global_mean must be 'class' or 'sample', got {global_mean!r}")
        self.model, self.classifier, self.loader = model, classifier, loader
        self.num_classes, self.dim = int(num_classes), int(weight.shape[1])
        self.lam, self.global_mean, self.max_batches = lam, global_mean, max_batches
        self.device = torch.device(device) if device is not None else weight.device
        self.stats_device = torch.device(stats_device) if stats_device is not None else self.device
        self.all_reduce = all_reduce
        self.history: list[dict[str, Any]] = []
        self.last_stats: CollapseStats | None = None

    def should_analyse(self, epoch: int) -> bool:
        if isinstance(self._every, int):
            return epoch % self._every == 0
        return epoch in self._every

    def __call__(self, epoch: int, **extra: Any) -> dict[str, Any] | None:
        """Analyse if ``epoch`` is scheduled; ``extra`` (e.g. loss=..., test_acc=...) is logged too."""
        if not self.should_analyse(epoch):
            return None
        return self.analyse(epoch, **extra)

    step = __call__

    # ------------------------------------------------------------------ passes
    def _passes(self, fn) -> None:
        captured: dict[str, torch.Tensor] = {}

        def hook(module, inputs, output):
            captured["h"] = inputs[0].detach()
            captured["logits"] = output.detach()

        handle = self.classifier.register_forward_hook(hook)
        was_training = self.model.training
        try:
            self.model.eval()
            with torch.no_grad():
                for i, batch in enumerate(self.loader):
                    if self.max_batches is not None and i >= self.max_batches:
                        break
                    x, y = batch[0], batch[1]
                    captured.clear()
                    self.model(x.to(self.device))
                    if "h" not in captured:
                        raise ValueError("the classifier was not called by model(x): pass the module "
                                         "that produces the logits (e.g. model.fc)")
                    h = captured["h"]
                    if h.dim() != 2:
                        raise ValueError(f"classifier input must be (B, d), got {tuple(h.shape)}")
                    fn(h, y.to(self.stats_device), captured["logits"])
        finally:
            handle.remove()
            self.model.train(was_training)

    def _distributed(self) -> bool:
        if self.all_reduce is not None:
            return bool(self.all_reduce)
        import torch.distributed as dist

        return dist.is_available() and dist.is_initialized()

    def collect(self) -> CollapseStats:
        """Run both passes and return the statistics (moments, accuracy and NC4 counters)."""
        stats = CollapseStats(self.num_classes, self.dim, self.stats_device)
        self._passes(lambda h, y, z: stats.update(h, y, z))
        dist = self._distributed()
        if dist:
            stats.all_reduce()
        if stats.num_samples == 0:
            raise ValueError("the loader produced no samples")
        second = CollapseStats(self.num_classes, self.dim, self.stats_device,
                               reference_means=stats.class_means())
        self._passes(lambda h, y, z: second.score(h, y, z))
        if dist:
            second.all_reduce()
        n2 = second.counter("n_ref")
        if n2 != stats.num_samples:
            warnings.warn(f"the two passes saw different numbers of samples ({stats.num_samples} vs "
                          f"{n2}); use a deterministic loader", RuntimeWarning, stacklevel=2)
        for name in ("n_ref", "n_ncc_correct", "n_both", "n_ncc_disagree"):
            stats.counters[_IDX[name]] = second.counters[_IDX[name]]
        return stats

    def analyse(self, epoch: int | None = None, **extra: Any) -> dict[str, Any]:
        """Run the two passes now and append a record to :attr:`history` (returned)."""
        stats = self.collect()
        self.last_stats = stats
        w = self.classifier.weight
        b = getattr(self.classifier, "bias", None)
        rec: dict[str, Any] = {"epoch": epoch}
        rec.update({k: _plain(v) for k, v in extra.items()})
        rec.update(nc_metrics(stats, w, b, global_mean=self.global_mean))
        if self.lam is not None:
            cp = central_path(stats, w, b, self.lam,
                              class_weighting="uniform" if stats.is_balanced() else "empirical")
            rec.update({k: cp[k] for k in ("L_NC1", "L_NC23", "L_perp", "sum", "total", "lam",
                                           "dist_to_ls", "perp_ratio", "omega_spread", "omega_max",
                                           "omega_min", "snr_ls_loss", "cov_ridge_used")})
            rec["omega"] = cp["omega"].tolist()
        else:
            omega, ridge = snr_singular_values(stats)
            rec["omega"] = omega.tolist()
            rec["omega_max"] = float(omega.max()) if omega.numel() else math.nan
            rec["omega_min"] = float(omega.min()) if omega.numel() else math.nan
            rec["omega_spread"] = rec["omega_max"] / rec["omega_min"] if omega.numel() else math.nan
            rec["cov_ridge_used"] = ridge
        self.history.append(rec)
        return rec

    # ------------------------------------------------------------------ output
    def save(self, path: str | Path) -> Path:
        """Write the history (and the configuration) as JSON."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        payload = {"num_classes": self.num_classes, "dim": self.dim, "lam": self.lam,
                   "global_mean": self.global_mean, "history": self.history}
        path.write_text(json.dumps(payload, indent=2, default=_plain))
        return path

    @staticmethod
    def load_history(path: str | Path) -> list[dict[str, Any]]:
        """Read the ``history`` list written by :meth:`save`."""
        return json.loads(Path(path).read_text())["history"]

    def plot(self, path: str | Path | None = None, title: str | None = None):
        """The standard NC figures (log scale) for :attr:`history`; see :func:`plot_history`."""
        return plot_history(self.history, path, title)


def _plain(v: Any) -> Any:
    if isinstance(v, torch.Tensor):
        return v.item() if v.numel() == 1 else v.tolist()
    if hasattr(v, "item"):
        return v.item()
    return v


def _series(history: Sequence[dict[str, Any]], key: str) -> tuple[list[float], list[float]]:
    xs, ys = [], []
    for i, rec in enumerate(history):
        v = rec.get(key)
        if v is None or not isinstance(v, (int, float)) or not math.isfinite(v) or v <= 0:
            continue
        e = rec.get("epoch")
        xs.append(e if e is not None else i)
        ys.append(float(v))
    return xs, ys


def plot_history(history: Sequence[dict[str, Any]], path: str | Path | None = None,
                 title: str | None = None):
    """Plot NC1, NC2 (equinorm, equiangle, max-angle), NC3, NC4, the MSE decomposition and the omega
    spread against epoch, each on a log y-axis (non-positive values are not drawn).

    Returns the matplotlib figure (saved to ``path`` when given, then closed).
    """
    import matplotlib

    if path is not None:
        matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    panels = [
        ("NC1: Tr(Σ_W Σ_B⁺)/C", [("nc1", "NC1")]),
        ("NC2: equinorm (std/mean)", [("nc2_equinorm_means", "means"),
                                      ("nc2_equinorm_weights", "weights")]),
        ("NC2: equiangle (std cos)", [("nc2_equiangle_means", "means"),
                                      ("nc2_equiangle_weights", "weights")]),
        ("NC2: max-angle |cos+1/(C-1)|", [("nc2_maxangle_means", "means"),
                                          ("nc2_maxangle_weights", "weights")]),
        ("NC3: ‖W/‖W‖ − M̄/‖M̄‖‖²", [("nc3", "NC3")]),
        ("NC4: NCC mismatch", [("nc4", "NC4"), ("train_error", "train error")]),
        ("MSE decomposition", [("L_NC1", "L_NC1"), ("L_NC23", "L_NC2/3"), ("L_perp", "L_⊥")]),
        ("SNR ω", [("omega_spread", "max ω / min ω"), ("omega_min", "min ω")]),
    ]
    hist = [dict(r) for r in history]
    for r in hist:
        if isinstance(r.get("accuracy"), (int, float)):
            r["train_error"] = 1.0 - r["accuracy"]
    fig, axes = plt.subplots(2, 4, figsize=(16, 7))
    for ax, (name, keys) in zip(axes.flat, panels):
        drawn = False
        for key, label in keys:
            xs, ys = _series(hist, key)
            if xs:
                ax.plot(xs, ys, marker="o", ms=3, label=label)
                drawn = True
        if drawn:
            ax.set_yscale("log")
            if len(keys) > 1:
                ax.legend(fontsize=8)
        else:
            ax.text(0.5, 0.5, "not tracked", ha="center", va="center", transform=ax.transAxes)
        ax.set_title(name, fontsize=10)
        ax.set_xlabel("epoch")
        ax.grid(True, which="both", alpha=0.3)
    if title:
        fig.suptitle(title)
    fig.tight_layout()
    if path is not None:
        fig.savefig(path, dpi=110, bbox_inches="tight")
        plt.close(fig)
    return fig
