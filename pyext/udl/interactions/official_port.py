"""A faithful port of the official per-pair measurement pipeline (benchmark baseline only).

Follows Nebularaid2000/bottleneck's ``m_order_interaction_logit_pixel_baseline.py`` +
``compute_interactions.py`` structure (re-written, not copied): contexts are pre-generated on the
host with one ``np.random.choice(N \\ {i, j}, m, replace=False)`` per (pair, order, context) and
saved as ``.npy`` index files; then, for every pair and order, the 4·K grid masks are built with
numpy, nearest-upsampled to the image size, multiplied into the normalised image (baseline 0),
forwarded as one batch, and the logits saved to disk; Δ, the context mean and |·| are computed
afterwards on the CPU. Orders 0 and n − 2 are evaluated K times like the original.
"""

from __future__ import annotations

import os
import tempfile

import numpy as np
import torch
import torch.nn.functional as F

__all__ = ["official_interactions"]


def official_interactions(model, image: torch.Tensor, label: int, pairs: np.ndarray,
                          orders: list[int], num_contexts: int, grid: int = 16,
                          seed: int = 0, workdir: str | None = None) -> np.ndarray:
    """Î^(m)(i, j) ``[P, M]`` for one normalised image ``[C, H, W]`` with the official pipeline."""
    n = grid * grid
    own = workdir is None
    tmp = tempfile.mkdtemp(prefix="udl_official_") if own else workdir
    try:
        # 1. pre-generate and save the context index lists (host side, one call per context)
        for oi, m in enumerate(orders):
            np.random.seed(1000 * 0 + m + 1 + seed)
            ctx = np.zeros((len(pairs), num_contexts, m), dtype=np.int64)
            for p, (i, j) in enumerate(pairs):
                others = np.array([q for q in range(n) if q != i and q != j])
                for k in range(num_contexts):
                    ctx[p, k] = np.random.choice(others, m, replace=False)
            np.save(os.path.join(tmp, f"ctx_order{oi}.npy"), ctx)
        # 2. per pair and order: masks -> upsample -> multiply -> forward -> save logits
        H, W = image.shape[-2:]
        with torch.no_grad():
            for oi in range(len(orders)):
                ctx = np.load(os.path.join(tmp, f"ctx_order{oi}.npy"))
                for p, (i, j) in enumerate(pairs):
                    masks = np.zeros((num_contexts, 4, n), dtype=np.float32)
                    rows = np.arange(num_contexts)[:, None]
                    for t in range(4):
                        masks[rows, t, ctx[p]] = 1.0
                    masks[:, 0, i] = 1.0
                    masks[:, 0, j] = 1.0
                    masks[:, 1, i] = 1.0
                    masks[:, 2, j] = 1.0
                    mt = torch.from_numpy(masks.reshape(-1, 1, grid, grid)).to(image.device)
                    mt = F.interpolate(mt, size=(H, W), mode="nearest")
                    batch = image[None] * mt
                    logits = model(batch).cpu().numpy()
                    np.save(os.path.join(tmp, f"logits_o{oi}_p{p}.npy"), logits)
        # 3. Δ from the saved logits (log-odds of the label), mean over contexts
        out = np.zeros((len(pairs), len(orders)))
        for oi in range(len(orders)):
            for p in range(len(pairs)):
                z = np.load(os.path.join(tmp, f"logits_o{oi}_p{p}.npy")).astype(np.float64)
                zy = z[:, label]
                rest = np.delete(z, label, axis=1)
                mx = rest.max(axis=1, keepdims=True)
                v = zy - (mx[:, 0] + np.log(np.exp(rest - mx).sum(axis=1)))
                v = v.reshape(num_contexts, 4)
                out[p, oi] = (v[:, 0] - v[:, 1] - v[:, 2] + v[:, 3]).mean()
        return out
    finally:
        if own:
            for name in os.listdir(tmp):
                os.remove(os.path.join(tmp, name))
            os.rmdir(tmp)
