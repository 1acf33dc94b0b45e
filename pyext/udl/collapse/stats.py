"""Streaming sufficient statistics for neural-collapse metrics.

:class:`CollapseStats` keeps, in float64, exactly what NC1-NC3, the MSE decomposition and the
central-path quantities need: class counts ``n_c`` (C,), class means ``mu_c`` (C, d) and the pooled
within-class scatter ``S_W = sum_i (h_i - mu_{y_i})(h_i - mu_{y_i})^T`` (d, d). Batches are merged
with Chan's parallel rule (batch-centred scatter plus a rank-C correction), never through raw
second moments, so near-collapse features (tiny within-class spread around large means) keep full
accuracy even when the incoming features are float32. Memory is O(d^2 + C d).

The one O(N d^2) step, the scatter of the batch-centred residuals, runs as a single GEMM over the
residual rows plus C rows carrying Chan's correction. With ``precision="auto"`` (default) that GEMM
runs in float32 on the CPU when the features are float32 (or half): the residuals are formed in
float64 and only then rounded, so the error is relative to the within-class spread itself (about
1e-6 of S_W), far below what rounding the features to float32 already cost; the accumulators stay
float64. ``precision="float64"`` keeps every operation in float64 (about 2-4x slower on CPUs).

Prediction counters (train accuracy and the NC4 nearest-class-centre disagreement) are kept next
to the moments; NC4 needs class means that are known *before* a sample is scored, so it is counted
against ``reference_means`` (the means of a finished first pass, or of the previous analysis).
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import Any

import torch

__all__ = ["CollapseStats", "COUNTERS"]

_INT_DTYPES = (torch.int8, torch.int16, torch.int32, torch.int64, torch.uint8)

#: Names of the prediction counters kept in ``CollapseStats.counters``:
#: samples scored with logits, of which argmax(logits) == label; samples scored against the
#: reference means, of which the nearest reference mean == label; samples scored with both, of
#: which argmax(logits) != nearest reference mean (the NC4 numerator).
COUNTERS = ("n_scored", "n_correct", "n_ref", "n_ncc_correct", "n_both", "n_ncc_disagree")
_IDX = {name: i for i, name in enumerate(COUNTERS)}


class CollapseStats:
    """Float64 streaming class counts, class means and pooled within-class scatter.

    Args:
        num_classes: C >= 2.
        dim: feature dimension d >= 1.
        device: where the accumulators live (default CPU). float64 is used on every device.
        reference_means: optional (C, d) class means used to count NC4 (nearest-class-centre vs
            classifier disagreement) during :meth:`update` / :meth:`score`; typically the means of
            a first pass (see :meth:`set_reference_means`) or of the previous analysis.
        check_values: check every batch for labels out of range and NaN/inf features (default).
            Each check reads a scalar back from the device, i.e. one host sync per batch on CUDA;
            pass False to skip them in GPU training loops (shapes and dtypes are always checked).
        precision: ``"auto"`` (default): the scatter GEMM of the centred residuals runs in float32
            on the CPU for float32/half features (relative error ~1e-6 of S_W, see the module
            docstring) and in float64 otherwise (float64 features, or any GPU, where FP64 GEMMs are
            as fast and TF32 settings cannot leak in); ``"float64"``: always float64.

    Example::

        stats = CollapseStats(10, 512)
        for h, y in batches:          # h: (B, 512) features, y: (B,) int labels
            stats.update(h, y)
        stats.means, stats.counts, stats.within_cov()
    """

    def __init__(self, num_classes: int, dim: int, device: str | torch.device | None = None,
                 reference_means: torch.Tensor | None = None, check_values: bool = True,
                 precision: str = "auto") -> None:
        if isinstance(num_classes, bool) or not isinstance(num_classes, int) or num_classes < 2:
            raise ValueError(f"num_classes must be an int >= 2 (neural collapse needs at least two "
                             f"classes), got {num_classes!r}")
        if isinstance(dim, bool) or not isinstance(dim, int) or dim < 1:
            raise ValueError(f"dim must be a positive int, got {dim!r}")
        if precision not in ("auto", "float64"):
            raise ValueError(f"precision must be 'auto' or 'float64', got {precision!r}")
        self.num_classes = num_classes
        self.dim = dim
        self.precision = precision
        self.check_values = bool(check_values)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        f64 = dict(dtype=torch.float64, device=self.device)
        self.counts = torch.zeros(num_classes, **f64)
        self.means = torch.zeros(num_classes, dim, **f64)
        self.scatter = torch.zeros(dim, dim, **f64)
        # prediction counters, float64 so that all_reduce is one dtype; see COUNTERS
        self.counters = torch.zeros(len(COUNTERS), **f64)
        self.reference_means: torch.Tensor | None = None
        self.num_batches = 0
        if reference_means is not None:
            self.set_reference_means(reference_means)

    # ------------------------------------------------------------------ properties
    @property
    def num_samples(self) -> int:
        """N, the number of samples accumulated."""
        return int(self.counts.sum().item())

    @property
    def present(self) -> torch.Tensor:
        """(C,) bool mask of the classes with at least one sample."""
        return self.counts > 0

    def within_cov(self) -> torch.Tensor:
        """Sigma_W = S_W / N (d, d), the pooled within-class covariance (as the paper)."""
        n = self.counts.sum()
        if n <= 0:
            raise ValueError("CollapseStats is empty: call update() with some samples first")
        return self.scatter / n

    def is_balanced(self) -> bool:
        """True when every present class has the same count."""
        c = self.counts[self.present]
        return bool(c.numel() > 0 and (c == c[0]).all())

    # ------------------------------------------------------------------ validation
    def _check_batch(self, features: torch.Tensor, labels: torch.Tensor,
                     logits: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor]:
        b = self.num_batches
        if not isinstance(features, torch.Tensor) or not isinstance(labels, torch.Tensor):
            raise ValueError(f"features and labels must be tensors (batch {b})")
        if features.dim() == 1 and self.dim == features.numel() and labels.numel() == 1:
            features = features.unsqueeze(0)
        if features.dim() > 2:
            features = features.flatten(1)
        if features.dim() != 2:
            raise ValueError(f"features must have shape (B, d), got {tuple(features.shape)} (batch {b})")
        if features.shape[1] != self.dim:
            raise ValueError(f"features has dim {features.shape[1]} but this CollapseStats was built "
                             f"for dim={self.dim} (batch {b}); feature dims must not change")
        if not features.is_floating_point():
            raise ValueError(f"features must be a floating tensor, got {features.dtype} (batch {b})")
        if labels.dtype not in _INT_DTYPES:
            raise ValueError(f"labels must be an integer tensor of class indices, got {labels.dtype} "
                             f"(batch {b})")
        labels = labels.reshape(-1)
        if labels.numel() != features.shape[0]:
            raise ValueError(f"labels has {labels.numel()} entries but features has "
                             f"{features.shape[0]} rows (batch {b})")
        if self.check_values and labels.numel() and (
                int(labels.min()) < 0 or int(labels.max()) >= self.num_classes):
            raise ValueError(f"labels must lie in [0, {self.num_classes}), got range "
                             f"[{int(labels.min())}, {int(labels.max())}] (batch {b})")
        if logits is not None:
            if logits.dim() != 2 or logits.shape != (features.shape[0], self.num_classes):
                raise ValueError(f"logits must have shape ({features.shape[0]}, {self.num_classes}), "
                                 f"got {tuple(logits.shape)} (batch {b})")
        return features, labels

    # ------------------------------------------------------------------ accumulation
    @torch.no_grad()
    def update(self, features: torch.Tensor, labels: torch.Tensor,
               logits: torch.Tensor | None = None) -> CollapseStats:
        """Add a batch.

        Args:
            features: (B, d) (or (B, ...) flattened to d) floating features, e.g. the input of the
                final linear layer. Converted to float64 before any arithmetic (the residual scatter
                GEMM's precision: see ``precision``).
            labels: (B,) integer class indices in [0, C).
            logits: optional (B, C) network outputs for these samples; counts train accuracy and,
                when ``reference_means`` is set, the NC4 disagreement.
        Returns:
            self (for chaining).
        """
        features, labels = self._check_batch(features, labels, logits)
        if labels.numel():
            h = features.detach().to(self.device, torch.float64)
            y = labels.to(self.device, torch.int64)
            if self.device.type == "cpu":
                # sequential, deterministic float64 adds: ~10x cheaper than a one-hot GEMM at C=100
                nb = torch.bincount(y, minlength=self.num_classes).to(torch.float64)
                sums = torch.zeros_like(self.means).index_add_(0, y, h)
            else:
                # one-hot GEMM: deterministic on GPU (index_add_ uses atomics there)
                onehot = torch.nn.functional.one_hot(y, self.num_classes).to(torch.float64)
                nb = onehot.sum(0)
                sums = onehot.T @ h
            self._check_finite(sums, features)
            mb = sums / nb.clamp_min(1).unsqueeze(1)
            # Chan's rule as one GEMM: the batch-centred residuals h - mb[y] (formed in float64)
            # stacked with the C correction rows sqrt(na nb / n) (mb - mu_a)
            delta, w, n = self._chan_terms(nb, mb)
            rows = torch.cat([h - mb.index_select(0, y), delta * w.sqrt().unsqueeze(1)])
            if self._gemm_dtype(features.dtype) == torch.float64:
                self.scatter.addmm_(rows.T, rows)
            else:
                self._push_rows(rows)
            self._advance_means(delta, nb, n)
            if logits is not None or self.reference_means is not None:
                self._score(features, y, logits, h64=h)
        self.num_batches += 1
        return self

    def _push_rows(self, rows: torch.Tensor) -> None:
        # float32 rows wait in a fixed buffer of max(2048, 2 d) rows (as many bytes as S_W), so the
        # float32 GEMM and its (slow, type-promoting) add into the float64 scatter run once per
        # many batches
        k = rows.shape[0]
        cap = max(2048, 2 * self.dim)
        if self._pending_rows + k > cap:
            self._flush()
        if k >= cap:
            r = rows.to(torch.float32)
            self._scatter += torch.mm(r.T, r)
            return
        if self._buf is None:
            self._buf = torch.empty(cap, self.dim, dtype=torch.float32, device=self.device)
        self._buf[self._pending_rows:self._pending_rows + k] = rows
        self._pending_rows += k

    def _flush(self) -> None:
        if self._pending_rows:
            r = self._buf[:self._pending_rows]
            self._pending_rows = 0
            self._scatter += torch.mm(r.T, r)

    @property
    def scatter(self) -> torch.Tensor:
        """(d, d) float64 pooled within-class scatter S_W (buffered float32 rows folded in first)."""
        self._flush()
        return self._scatter

    @scatter.setter
    def scatter(self, value: torch.Tensor) -> None:
        self._pending_rows = 0
        self._scatter = value

    _buf: torch.Tensor | None = None
    _pending_rows = 0

    def _gemm_dtype(self, feature_dtype: torch.dtype) -> torch.dtype:
        if (self.precision == "auto" and self.device.type == "cpu"
                and feature_dtype in (torch.float32, torch.float16, torch.bfloat16)):
            return torch.float32
        return torch.float64

    @torch.no_grad()
    def score(self, features: torch.Tensor, labels: torch.Tensor, logits: torch.Tensor) -> CollapseStats:
        """Count accuracy and NC4 for a batch *without* changing the moments (a second pass).

        Requires ``reference_means`` (see :meth:`set_reference_means`).
        """
        if self.reference_means is None:
            raise ValueError("score() needs reference_means: call set_reference_means() first")
        if logits is None:
            raise ValueError("score() needs logits of shape (B, C)")
        features, labels = self._check_batch(features, labels, logits)
        if labels.numel():
            self._score(features, labels.to(self.device, torch.int64), logits, check=features)
        self.num_batches += 1
        return self

    def _check_finite(self, reduced: torch.Tensor, features: torch.Tensor) -> None:
        # NaN/inf propagate into any sum over the batch; confirm on the raw features before raising
        # (a float64 sum of float32 values cannot overflow).
        if (self.check_values and not bool(torch.isfinite(reduced).all())
                and not bool(torch.isfinite(features).all())):
            raise ValueError(f"features contain NaN or inf (batch {self.num_batches})")

    def _score(self, features: torch.Tensor, y: torch.Tensor, logits: torch.Tensor | None,
               h64: torch.Tensor | None = None, check: torch.Tensor | None = None) -> None:
        pred = None
        k = self.counters
        if logits is not None:
            pred = logits.detach().to(self.device).argmax(1)
            k[_IDX["n_scored"]] += y.numel()
            k[_IDX["n_correct"]] += (pred == y).sum()
        if self.reference_means is not None:
            # argmin_c ||h - mu_c||^2 = argmin_c ||mu_c||^2 - 2 h.mu_c (||h||^2 is constant per row)
            if self._gemm_dtype(features.dtype) == torch.float32:
                # float32 GEMM on features and means centred at the mean of the reference means,
                # so the common offset does not cost precision
                hc = features.detach().to(self.device, torch.float32) - self._ref32[0]
                dist = self._ref32[2] - 2.0 * (hc @ self._ref32[1].T)
            else:
                h = h64 if h64 is not None else features.detach().to(self.device, torch.float64)
                ref = self.reference_means
                dist = (ref * ref).sum(1) - 2.0 * (h @ ref.T)
            if check is not None:
                self._check_finite(dist, check)
            if self._ref_absent is not None:
                dist[:, self._ref_absent] = float("inf")
            ncc = dist.argmin(1)
            k[_IDX["n_ref"]] += y.numel()
            k[_IDX["n_ncc_correct"]] += (ncc == y).sum()
            if pred is not None:
                k[_IDX["n_both"]] += y.numel()
                k[_IDX["n_ncc_disagree"]] += (ncc != pred).sum()

    def _chan_terms(self, nb: torch.Tensor, mb: torch.Tensor
                    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Chan's rule for adding (counts nb, means mb): the mean shifts mb - mu (C, d), the weights
        na nb / n of their outer products in the scatter (0 for classes absent from the batch) and
        the new counts n."""
        n = self.counts + nb
        w = torch.where(nb > 0, self.counts * nb / n.clamp_min(1), torch.zeros_like(n))
        return mb - self.means, w, n

    def _advance_means(self, delta: torch.Tensor, nb: torch.Tensor, n: torch.Tensor) -> None:
        self.means += delta * torch.where(nb > 0, nb / n.clamp_min(1), torch.zeros_like(n)).unsqueeze(1)
        self.counts = n

    def _merge(self, nb: torch.Tensor, mb: torch.Tensor, sb: torch.Tensor) -> None:
        """Chan's rule: merge (counts nb, means mb, centred scatter sb) into self."""
        delta, w, n = self._chan_terms(nb, mb)
        self.scatter.add_(sb)
        self.scatter.addmm_((delta * w.unsqueeze(1)).T, delta)
        self._advance_means(delta, nb, n)

    def merge(self, other: CollapseStats) -> CollapseStats:
        """Merge another accumulator (same C and d) into this one, in place; returns self."""
        if not isinstance(other, CollapseStats):
            raise ValueError(f"other must be a CollapseStats, got {type(other).__name__}")
        if other.num_classes != self.num_classes or other.dim != self.dim:
            raise ValueError(f"other has (num_classes, dim)=({other.num_classes}, {other.dim}), "
                             f"expected ({self.num_classes}, {self.dim})")
        self._merge(other.counts.to(self.device), other.means.to(self.device),
                    other.scatter.to(self.device))
        self.counters += other.counters.to(self.device)
        self.num_batches += other.num_batches
        return self

    def set_reference_means(self, means: torch.Tensor | None) -> CollapseStats:
        """Use ``means`` (C, d) as the class centres for NC4 counting (None: stop counting).

        Classes whose reference mean is NaN (e.g. absent in the pass that produced it) are never
        predicted. Resets the NC4 counters.
        """
        if means is None:
            self.reference_means = None
            self._ref_absent = None
        else:
            if not isinstance(means, torch.Tensor) or means.shape != (self.num_classes, self.dim):
                shape = tuple(means.shape) if isinstance(means, torch.Tensor) else type(means).__name__
                raise ValueError(f"reference_means must have shape ({self.num_classes}, {self.dim}), "
                                 f"got {shape}")
            ref = means.detach().to(self.device, torch.float64).clone()
            absent = ~torch.isfinite(ref).all(1)
            ref[absent] = 0.0
            self.reference_means = ref
            self._ref_absent = absent if bool(absent.any()) else None
            centre = ref[~absent].mean(0) if bool((~absent).any()) else ref.mean(0)
            ref_c = (ref - centre).to(torch.float32)
            self._ref32 = (centre.to(torch.float32), ref_c, (ref_c * ref_c).sum(1))
        for name in ("n_ref", "n_ncc_correct", "n_both", "n_ncc_disagree"):
            self.counters[_IDX[name]] = 0.0
        return self

    _ref_absent: torch.Tensor | None = None
    _ref32: tuple[torch.Tensor, torch.Tensor, torch.Tensor] | None = None

    def class_means(self) -> torch.Tensor:
        """(C, d) float64 means with NaN rows for absent classes (safe to pass as reference)."""
        m = self.means.clone()
        m[~self.present] = float("nan")
        return m

    def reset_predictions(self) -> None:
        """Zero the accuracy and NC4 counters (the moments are kept)."""
        self.counters.zero_()

    # ------------------------------------------------------------------ distributed
    @torch.no_grad()
    def all_reduce(self, group: Any = None) -> CollapseStats:
        """Combine the statistics of every rank of ``torch.distributed`` in place (exactly).

        Uses the parallel-axis theorem around the *global* means: every rank adds
        ``n_rc (mu_rc - mu_c)(mu_rc - mu_c)^T`` to its centred scatter before a SUM all-reduce, so
        no raw second moments are formed. Three all-reduces of float64 tensors (counts + sums +
        counters, then the (d, d) scatter); works with gloo and NCCL. Returns self.
        """
        import torch.distributed as dist

        if not (dist.is_available() and dist.is_initialized()):
            raise ValueError("all_reduce() needs an initialised torch.distributed process group")
        c, d = self.num_classes, self.dim
        packed = torch.cat([self.counts, (self.means * self.counts.unsqueeze(1)).reshape(-1),
                            self.counters])
        dist.all_reduce(packed, op=dist.ReduceOp.SUM, group=group)
        counts = packed[:c]
        sums = packed[c:c + c * d].reshape(c, d)
        gmeans = sums / counts.clamp_min(1).unsqueeze(1)
        delta = torch.where(self.counts.unsqueeze(1) > 0, self.means - gmeans, torch.zeros_like(gmeans))
        scatter = self.scatter + (delta * self.counts.unsqueeze(1)).T @ delta
        dist.all_reduce(scatter, op=dist.ReduceOp.SUM, group=group)
        self.counts, self.means, self.scatter = counts.clone(), gmeans, scatter
        self.counters = packed[c + c * d:].clone()
        nb = torch.tensor([float(self.num_batches)], dtype=torch.float64, device=self.device)
        dist.all_reduce(nb, op=dist.ReduceOp.SUM, group=group)
        self.num_batches = int(nb.item())
        return self

    # ------------------------------------------------------------------ (de)serialisation
    def state_dict(self) -> dict[str, Any]:
        """A plain dict of tensors and ints (``torch.save``-able)."""
        return {
            "num_classes": self.num_classes, "dim": self.dim, "num_batches": self.num_batches,
            "counts": self.counts.clone(), "means": self.means.clone(), "scatter": self.scatter.clone(),
            "counters": self.counters.clone(),
            "reference_means": None if self.reference_means is None else self._ref_with_nan(),
        }

    def _ref_with_nan(self) -> torch.Tensor:
        ref = self.reference_means.clone()
        if self._ref_absent is not None:
            ref[self._ref_absent] = float("nan")
        return ref

    def load_state_dict(self, state: Mapping[str, Any]) -> CollapseStats:
        """Restore from :meth:`state_dict` (C and d must match); returns self."""
        if int(state["num_classes"]) != self.num_classes or int(state["dim"]) != self.dim:
            raise ValueError(f"state has (num_classes, dim)=({state['num_classes']}, {state['dim']}), "
                             f"expected ({self.num_classes}, {self.dim})")
        f64 = dict(dtype=torch.float64, device=self.device)
        self.counts = torch.as_tensor(state["counts"]).to(**f64).clone()
        self.means = torch.as_tensor(state["means"]).to(**f64).clone()
        self.scatter = torch.as_tensor(state["scatter"]).to(**f64).clone()
        counters = torch.as_tensor(state["counters"]).to(**f64).clone().reshape(len(COUNTERS))
        self.num_batches = int(state.get("num_batches", 0))
        self.set_reference_means(state.get("reference_means"))
        self.counters = counters
        return self

    def counter(self, name: str) -> int:
        """The value of one prediction counter (see ``COUNTERS``)."""
        if name not in _IDX:
            raise ValueError(f"name must be one of {COUNTERS}, got {name!r}")
        return int(round(float(self.counters[_IDX[name]])))

    def copy(self) -> CollapseStats:
        """An independent copy."""
        out = CollapseStats(self.num_classes, self.dim, self.device, check_values=self.check_values,
                            precision=self.precision)
        return out.load_state_dict(self.state_dict())

    def __repr__(self) -> str:
        return (f"CollapseStats(num_classes={self.num_classes}, dim={self.dim}, "
                f"num_samples={self.num_samples}, present={int(self.present.sum())})")


def _warn_absent(stats: CollapseStats) -> torch.Tensor:
    present = stats.present
    if not bool(present.all()):
        missing = (~present).nonzero().flatten().tolist()
        warnings.warn(f"classes {missing} have no samples; metrics are computed on the "
                      f"{int(present.sum())} present classes", RuntimeWarning, stacklevel=3)
    return present
