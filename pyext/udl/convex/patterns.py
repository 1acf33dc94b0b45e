"""Activation patterns ``D = diag(1[X h ≥ 0])`` of a data matrix: exact enumeration and sampling.

Patterns are returned as a 0/1 matrix ``Tensor[n, P]`` (one column per pattern, float64 unless
asked otherwise), deduplicated, in a deterministic order.
"""

from __future__ import annotations

import itertools
import math

import torch

from udl.convex._core import check_X

__all__ = [
    "cover_count",
    "enumerate_patterns",
    "sample_patterns",
    "neuron_patterns",
    "dedupe_patterns",
]


def cover_count(n: int, r: int) -> int:
    """Cover's count ``2 Σ_{k<r} C(n−1, k)`` of regions cut by ``n`` hyperplanes in general
    position through the origin of ``R^r`` (the number of patterns of rank-``r`` data)."""
    if n <= 0 or r <= 0:
        return 1 if n <= 0 else 0
    return 2 * sum(math.comb(n - 1, k) for k in range(min(r, n)))


def _numerical_rank(X: torch.Tensor, rtol: float = 1e-10) -> tuple[int, torch.Tensor]:
    """Rank and the projected data ``U_r S_r`` (``[n, r]``): same patterns as ``X``."""
    if X.numel() == 0:
        return 0, X
    Uf, S, _ = torch.linalg.svd(X, full_matrices=False)
    r = int((S > rtol * S[0]).sum()) if S.numel() and S[0] > 0 else 0
    return r, Uf[:, :r] * S[:r]


def dedupe_patterns(D: torch.Tensor, gates: torch.Tensor | None = None, drop_zero: bool = False
                    ) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Unique columns of a 0/1 matrix ``D [n, P]`` (sorted lexicographically) and their gates."""
    if D.shape[1] == 0:
        return D, gates
    Db = D > 0.5
    if drop_zero:
        keep = Db.any(dim=0)
        Db = Db[:, keep]
        gates = gates[:, keep] if gates is not None else None
    if Db.shape[1] == 0:
        return D.new_zeros(D.shape[0], 0), gates
    # unique columns via their bytes (exact, no float hashing)
    keys = {}
    cols = Db.T.contiguous().to(torch.uint8).cpu().numpy()
    for j, row in enumerate(cols):
        keys.setdefault(row.tobytes(), j)
    order = sorted(keys.items(), key=lambda kv: kv[0])
    idx = torch.tensor([j for _, j in order], dtype=torch.long, device=D.device)
    out = Db[:, idx].to(D.dtype if D.dtype.is_floating_point else torch.float64)
    return out, (gates[:, idx] if gates is not None else None)


def enumerate_patterns(X, max_patterns: int = 200_000, return_gates: bool = False,
                       dtype: torch.dtype = torch.float64):
    """All activation patterns of ``X`` (the full hyperplane arrangement), exactly.

    Every region of the arrangement ``{x_k^T h = 0}`` (in the row space of ``X``, rank ``r``) has an
    extreme ray on the intersection of ``r − 1`` hyperplanes; perturbing each such "vertex ray"
    in all ``2^{r−1}`` sign directions of its defining rows visits every region. The cost is
    ``O(C(n, r−1) 2^r)`` evaluations, so this is for small rank. For data in general position the
    count equals :func:`cover_count` ``(n, r)``. Rows tied on a vertex ray beyond the ``r − 1``
    defining ones (degenerate data) get their sign combinations explored as well.

    Args:
        X: ``Tensor[n, d]`` data (append a ones column for a bias).
        max_patterns: refuse (``ValueError`` with the estimate) when Cover's count or the number
            of candidate rays would exceed this; use :func:`sample_patterns` instead.
        return_gates: also return gate vectors ``G [d, P]`` with ``1[X G ≥ 0] = D``.

    Returns:
        ``D: Tensor[n, P]`` with 0/1 entries (``(D, G)`` with ``return_gates``).
    """
    X = check_X(X)
    n, d = X.shape
    if n == 0:
        D = X.new_zeros(0, 1)
        return (D.to(dtype), X.new_zeros(d, 1).to(dtype)) if return_gates else D.to(dtype)
    r, Xr = _numerical_rank(X)
    if r == 0:
        D = X.new_ones(n, 1)
        return (D.to(dtype), X.new_zeros(d, 1).to(dtype)) if return_gates else D.to(dtype)
    count = cover_count(n, r)
    candidates = math.comb(n, r - 1) * (2 ** r)
    if count > max_patterns or candidates > 50 * max_patterns:
        raise ValueError(
            f"enumerate_patterns: exact enumeration of n={n} rows of rank {r} gives about {count:,} "
            f"patterns ({candidates:,} candidate rays), over max_patterns={max_patterns:,}; use "
            f"sample_patterns(X, k, method='vertex') instead (a subsampled, local program)")
    _, _, Vh = torch.linalg.svd(X, full_matrices=False)
    Vr = Vh[:r]  # h_full = Vr^T h  maps row-space directions to R^d
    if r == 1:
        H = torch.stack([X.new_ones(1), -X.new_ones(1)], dim=1)  # [1, 2]
    else:
        H = _vertex_rays(Xr, r)
    D = (Xr @ H >= 0).to(dtype)
    G = (Vr.T @ H).to(dtype)
    D, G = dedupe_patterns(D, G)
    return (D, G) if return_gates else D


def _vertex_rays(Xr: torch.Tensor, r: int, subsets=None) -> torch.Tensor:
    """Perturbed vertex rays ``[r, K]`` for every (or the given) ``(r−1)``-subsets of rows."""
    n = Xr.shape[0]
    scale = Xr.norm(dim=1).clamp_min(1e-300)
    Xn = Xr / scale[:, None]
    if subsets is None:
        subsets = list(itertools.combinations(range(n), r - 1))
    if not subsets:
        return Xr.new_zeros(r, 0)
    S = torch.tensor(subsets, dtype=torch.long, device=Xr.device)  # [K, r-1]
    A = Xn[S]  # [K, r-1, r]
    # null vector of each (r-1) x r system: last right-singular vector
    _, sv, Vh = torch.linalg.svd(A, full_matrices=True)
    h0 = Vh[:, -1, :]  # [K, r]
    # general-position subsets only (the (r-1) rows independent)
    ok = sv[:, -1] > 1e-9 if r > 1 else torch.ones(len(subsets), dtype=torch.bool)
    pinv = torch.linalg.pinv(A)  # [K, r, r-1]
    signs = torch.tensor(list(itertools.product((-1.0, 1.0), repeat=r - 1)), dtype=Xr.dtype,
                         device=Xr.device)  # [2^(r-1), r-1]
    dirs = torch.einsum("krs,qs->kqr", pinv, signs)  # [K, Q, r]
    # epsilon: small enough not to cross any other hyperplane
    margins = (Xn @ h0.T).abs()  # [n, K]
    margins[S.T, torch.arange(len(subsets))] = float("inf")
    tied = margins < 1e-9
    margins = torch.where(tied, torch.full_like(margins, float("inf")), margins)
    min_margin = margins.min(dim=0).values.clamp(max=1.0)  # [K]
    dnorm = (Xn @ dirs.reshape(-1, r).T).abs().reshape(n, len(subsets), -1).amax(dim=(0, 2))
    eps = 0.25 * min_margin / dnorm.clamp_min(1e-300)
    rays = []
    for sgn in (1.0, -1.0):
        h = sgn * h0[:, None, :] + eps[:, None, None] * dirs  # [K, Q, r]
        rays.append(h[ok].reshape(-1, r))
    # degenerate data: extra rows tied on a vertex ray -> explore their signs too
    extra = tied.any(dim=0) & ok
    for k in torch.nonzero(extra).flatten().tolist():
        T = torch.cat([S[k], torch.nonzero(tied[:, k]).flatten()])
        t = len(T)
        P_T = torch.linalg.pinv(Xn[T])  # [r, t]
        combos = (torch.tensor(list(itertools.product((-1.0, 1.0), repeat=t)), dtype=Xr.dtype)
                  if t <= 12 else torch.sign(torch.randn(4096, t, dtype=Xr.dtype)))
        dd = combos @ P_T.T  # [Q', r]
        dn = (Xn @ dd.T).abs().amax().clamp_min(1e-300)
        e = 0.25 * float(min_margin[k]) / float(dn)
        for sgn in (1.0, -1.0):
            rays.append(sgn * h0[k][None, :] + e * dd)
    return torch.cat(rays).T.contiguous()


def sample_patterns(X, k: int, method: str = "gaussian", generator: torch.Generator | None = None,
                    return_gates: bool = False, dtype: torch.dtype = torch.float64):
    """Sample up to ``k`` distinct activation patterns (a subset of the exact arrangement).

    * ``"gaussian"``: gates ``h ~ N(0, I_d)`` (what scnn and other public code do).
    * ``"vertex"``: rays through ``r − 1`` random data points (the null vector of those rows, in the
      row space) with a random sign and a small random perturbation: exactly the cones on whose
      boundary optimal neurons sit.

    Both are tie-aware (``≥`` convention; vertex rays are perturbed off their ties), deduplicated,
    and drop the all-zero pattern. Returns ``D [n, P]`` with ``P ≤ k`` (and gates ``G [d, P]``).
    """
    X = check_X(X)
    n, d = X.shape
    if k < 1:
        raise ValueError(f"k must be >= 1, got {k}")
    if method not in ("gaussian", "vertex"):
        raise ValueError(f"method must be 'gaussian' or 'vertex', got {method!r}")
    if n == 0:
        D = X.new_zeros(0, 0).to(dtype)
        return (D, X.new_zeros(d, 0).to(dtype)) if return_gates else D
    if method == "gaussian":
        G = torch.randn(d, k, generator=generator, dtype=torch.float64).to(X.device)
    else:
        r, Xr = _numerical_rank(X)
        if r <= 1:
            H = torch.tensor([[1.0, -1.0]], dtype=X.dtype)[:, : min(2, k)]
        else:
            subs = [tuple(sorted(torch.randperm(n, generator=generator)[: r - 1].tolist()))
                    for _ in range(k)]
            H_all = _vertex_rays(Xr, r, subsets=subs)  # [r, 2 * k * 2^(r-1)] grouped by sign
            # pick one random sign and perturbation per subset
            q = 2 ** (r - 1)
            H_all = H_all.T.reshape(2, len(subs), q, r) if H_all.shape[1] == 2 * len(subs) * q \
                else None
            if H_all is None:  # some subsets degenerate: fall back to all rays
                H = _vertex_rays(Xr, r, subsets=subs)
                H = H[:, torch.randperm(H.shape[1], generator=generator)[:k]]
            else:
                s_idx = torch.randint(0, 2, (len(subs),), generator=generator)
                q_idx = torch.randint(0, q, (len(subs),), generator=generator)
                H = H_all[s_idx, torch.arange(len(subs)), q_idx].T
        _, _, Vh = torch.linalg.svd(X, full_matrices=False)
        G = Vh[: H.shape[0]].T @ H.to(X.dtype)
    D = (X @ G.to(X.dtype) >= 0).to(dtype)
    D, G = dedupe_patterns(D, G.to(dtype), drop_zero=True)
    return (D, G) if return_gates else D


def neuron_patterns(X, W, tie_tol: float = 1e-6, max_combos: int = 64) -> torch.Tensor:
    """Tie-aware patterns of the neurons ``W [m, d]`` on ``X [n, d]``: ``D [n, P]``.

    Entry ``k`` of neuron ``j`` is ambiguous when ``|x_k·w_j| ≤ tie_tol ‖x_k‖ ‖w_j‖``; every
    combination of the ambiguous entries (or, beyond ``max_combos``, the all-on and all-off
    choices) is returned, so each neuron lies in the closed cone of every returned pattern of its
    own. Zero neurons are skipped. Deduplicated.
    """
    X = check_X(X)
    W = torch.as_tensor(W).to(X.dtype)
    cols = []
    xn = X.norm(dim=1)
    for w in W:
        wn = w.norm()
        if wn == 0:
            continue
        z = X @ w
        base = z >= 0
        tied = torch.nonzero(z.abs() <= tie_tol * xn * wn).flatten()
        t = len(tied)
        if t == 0:
            cols.append(base)
            continue
        if 2 ** t <= max_combos:
            for combo in itertools.product((False, True), repeat=t):
                c = base.clone()
                c[tied] = torch.tensor(combo)
                cols.append(c)
        else:
            for val in (False, True):
                c = base.clone()
                c[tied] = val
                cols.append(c)
    if not cols:
        return X.new_zeros(X.shape[0], 0)
    D, _ = dedupe_patterns(torch.stack(cols, dim=1).to(X.dtype), drop_zero=True)
    return D
