"""The set of all optimal networks, the global-optimality certificate, and the Clarke link.

All functions take a network as a :class:`~udl.convex.TwoLayerReLU`, ``(W, α)`` or an
``nn.Sequential(Linear, ReLU, Linear)`` without biases (see :func:`~udl.convex.as_weights`).
"""

from __future__ import annotations

import dataclasses

import torch

from udl.convex._core import (
    _objective,
    as_weights,
    check_beta,
    check_data,
    check_loss,
    loss_conjugate_lower_bound,
    loss_grad,
    network_forward,
)
from udl.convex.model import ConvexReLU, ConvexResult
from udl.convex.patterns import enumerate_patterns, neuron_patterns, sample_patterns

__all__ = [
    "balance",
    "from_network",
    "canonicalize",
    "Certificate",
    "certify",
    "beta_max",
    "dual_norms",
    "is_optimal",
    "sample_optimal_network",
    "OptimalSet",
    "optimal_set",
    "SubsampledCertificate",
    "subsampled_certificate",
]


def _check_net(net, X) -> tuple[torch.Tensor, torch.Tensor]:
    W, a = as_weights(net)
    if W.shape[1] != X.shape[1]:
        raise ValueError(f"net has input dimension {W.shape[1]} but X has {X.shape[1]} columns")
    return W, a


def balance(net) -> tuple[torch.Tensor, torch.Tensor]:
    """Rescale each neuron to ``‖w_j‖ = |α_j|`` (output unchanged, penalty minimal); neurons with
    ``w_j = 0`` or ``α_j = 0`` become exactly zero. Returns ``(W [m, d], α [m])``."""
    W, a = as_weights(net)
    wn = W.norm(dim=1)
    prod = wn * a.abs()
    live = prod > 0
    s = torch.where(live, (a.abs() / wn.clamp_min(1e-300)).sqrt(), torch.zeros_like(wn))
    return W * s[:, None], torch.where(live, a / s.clamp_min(1e-300), torch.zeros_like(a))


def from_network(net, X, y=None, beta: float | None = None, loss: str = "squared") -> ConvexResult:
    """Network -> convex point: balance, then sum ``w_j |α_j|`` per (pattern, sign).

    The patterns are those of the neurons (``1[X w_j ≥ 0]``); the returned point is feasible and
    has convex value ``≤ F(W, α)`` (equality iff every group is positively collinear). ``y`` and
    ``beta`` are needed for :attr:`ConvexResult.value` (else it is NaN).
    """
    X = torch.as_tensor(X).to(torch.float64)
    W, a = _check_net(net, X)
    prods = W * a.abs()[:, None]  # balanced u_j = w_j |α_j|
    live = prods.norm(dim=1) > 0
    n, d = X.shape
    keys: dict[bytes, int] = {}
    cols = []
    U_rows: list[torch.Tensor] = []
    V_rows: list[torch.Tensor] = []
    for j in torch.nonzero(live).flatten().tolist():
        pat = (X @ W[j] >= 0)
        k = pat.numpy().tobytes()
        if k not in keys:
            keys[k] = len(cols)
            cols.append(pat.to(torch.float64))
            U_rows.append(torch.zeros(d, dtype=torch.float64))
            V_rows.append(torch.zeros(d, dtype=torch.float64))
        i = keys[k]
        if a[j] > 0:
            U_rows[i] = U_rows[i] + prods[j]
        else:
            V_rows[i] = V_rows[i] + prods[j]
    D = torch.stack(cols, dim=1) if cols else torch.zeros(n, 0, dtype=torch.float64)
    U = torch.stack(U_rows) if U_rows else torch.zeros(0, d, dtype=torch.float64)
    V = torch.stack(V_rows) if V_rows else torch.zeros(0, d, dtype=torch.float64)
    value = float("nan")
    yy = torch.zeros(n, dtype=torch.float64)
    if y is not None and beta is not None:
        X, yy = check_data(X, y, loss)
        from udl.convex.solvers import convex_objective

        value = convex_objective(U, V, D, X, yy, check_beta(beta), loss)
    return ConvexResult(value=value, U=U, V=V, patterns=D, X=X, y=yy,
                        beta=float(beta) if beta else float("nan"), loss=loss, exact=False,
                        status="from_network", solver="none", solve_time=0.0)


def canonicalize(net, X=None, cos_tol: float = 1e-4, zero_tol: float = 1e-6
                 ) -> tuple[torch.Tensor, torch.Tensor]:
    """Minimal representative: balance, drop zero neurons, merge same-sign neurons of one
    pattern (exact, output unchanged, ``F`` non-increasing) and positively collinear same-sign
    neurons (``cos ≥ 1 − cos_tol``), then sort by decreasing ``|α|``.

    Args:
        net: the network. X: ``[n, d]`` data for the pattern grouping (optional).
        zero_tol: neurons with ``‖w_j‖ |α_j| ≤ zero_tol · max`` are dropped.
    Returns:
        ``(W [k, d], α [k])``, balanced.
    """
    W, a = as_weights(net)
    u = W * a.abs()[:, None]
    sgn = torch.sign(a)
    un = u.norm(dim=1)
    if un.numel() == 0 or float(un.max()) == 0:
        return W.new_zeros(0, W.shape[1]), W.new_zeros(0)
    keep = un > zero_tol * un.max()
    u, sgn = u[keep], sgn[keep]
    if X is not None:
        X = torch.as_tensor(X).to(torch.float64)
        pats = (X @ u.T >= 0).T  # [k, n]
    groups: list[tuple[torch.Tensor, float, torch.Tensor | None]] = []
    for j in range(u.shape[0]):
        placed = False
        for gi, (ug, sg, pg) in enumerate(groups):
            if sg != float(sgn[j]):
                continue
            same_pattern = X is not None and bool((pats[j] == pg).all())
            cos = float(ug @ u[j] / (ug.norm() * u[j].norm()).clamp_min(1e-300))
            if same_pattern or cos >= 1 - cos_tol:
                groups[gi] = (ug + u[j], sg, pg)
                placed = True
                break
        if not placed:
            groups.append((u[j].clone(), float(sgn[j]), pats[j] if X is not None else None))
    Uc = torch.stack([g[0] for g in groups])
    s = torch.tensor([g[1] for g in groups], dtype=W.dtype)
    nrm = Uc.norm(dim=1)
    Wc = Uc / nrm.sqrt()[:, None]
    ac = s * nrm.sqrt()
    order = torch.argsort(ac.abs(), descending=True)
    return Wc[order], ac[order]


# ------------------------------------------------------------------------------ certificate
def dual_norms(X: torch.Tensor, g: torch.Tensor, D: torch.Tensor) -> torch.Tensor:
    """``r[i, s] = max{−s gᵀ D_i X u : (2D_i − I) X u ≥ 0, ‖u‖ ≤ 1}`` for all patterns, both signs.

    Computed by conic duality as ``min_{λ ≥ 0} ‖Xᵀ((2D_i − I) λ − s D_i g)‖₂`` (one NNLS each,
    scipy). ``X [n, d]``, ``g [n]``, ``D [n, P]`` -> ``Tensor[P, 2]`` (column 0: s = +1).
    """
    import numpy as np
    from scipy.optimize import nnls

    Xn = X.detach().cpu().double().numpy()
    gn = g.detach().cpu().double().numpy()
    Dn = D.detach().cpu().double().numpy() > 0.5
    P = Dn.shape[1]
    out = np.zeros((P, 2))
    for i in range(P):
        Si = np.where(Dn[:, i], 1.0, -1.0)
        A = Xn.T * Si[None, :]  # [d, n]
        base = Xn.T @ (Dn[:, i] * gn)
        for col, s in enumerate((1.0, -1.0)):
            b = s * base
            if not np.any(b):
                continue
            try:
                _, res = nnls(A, b, maxiter=50 * max(A.shape))
            except RuntimeError:  # pragma: no cover - iteration limit: fall back to upper bound
                res = float(np.linalg.norm(b))
            out[i, col] = res
    return torch.from_numpy(out)


@dataclasses.dataclass
class Certificate:
    """Global-optimality certificate of a network (see :func:`certify`).

    Attributes:
        objective: ``F(W, α)``.
        beta: β.
        max_dual: ``max_{i,s} r_{i,s}`` at ``g = ∇ℓ(f)`` (globally optimal needs ``≤ β``).
        dual_norms: ``Tensor[P, 2]`` the ``r_{i,s}``; argmax_pattern: the worst ``(i, s)``.
        lower_bound: dual value ``−ℓ*(t g)``, ``t = min(1, β / max_dual)``: a lower bound of the
            global optimum when ``exact``.
        gap, rel_gap: ``objective − lower_bound`` and relative to ``|objective|``.
        balanced, collinear: conditions (a) and (b) of the characterization.
        kkt_residuals: per neuron ``‖s XᵀD g + β u/‖u‖ − X_Tᵀ c‖ / β`` (``c`` free on the neuron's
            tied rows ``T``): stationarity of its block; 0 for zero neurons.
        complementarity: per neuron ``(β‖u‖ + s gᵀ D X u) / (β‖u‖)`` (0 at an optimum).
        exact: whether all patterns of the arrangement were checked.
        is_global: True/False, or None when ``exact`` is False and nothing refuted optimality.
        verdict: a sentence.
    """

    objective: float
    beta: float
    max_dual: float
    dual_norms: torch.Tensor
    argmax_pattern: tuple[int, int]
    lower_bound: float
    gap: float
    rel_gap: float
    balanced: bool
    collinear: bool
    kkt_residuals: torch.Tensor
    complementarity: torch.Tensor
    exact: bool
    is_global: bool | None
    verdict: str
    patterns: torch.Tensor = dataclasses.field(repr=False, default=None)

    def __str__(self) -> str:
        return (f"{self.verdict}\n  F = {self.objective:.10g}, lower bound = {self.lower_bound:.10g}"
                f" (gap {self.gap:.3g}, rel {self.rel_gap:.3g})\n  max dual norm = "
                f"{self.max_dual:.6g} vs beta = {self.beta:.6g}; balanced={self.balanced}, "
                f"collinear={self.collinear}, max KKT residual = "
                f"{float(self.kkt_residuals.max()) if self.kkt_residuals.numel() else 0:.3g}")


def _resolve_patterns(X, patterns, generator=None, k: int = 2000) -> tuple[torch.Tensor, bool]:
    if isinstance(patterns, str):
        if patterns == "exact":
            return enumerate_patterns(X), True
        if patterns in ("sample", "vertex"):
            method = "gaussian" if patterns == "sample" else "vertex"
            return sample_patterns(X, k, method=method, generator=generator), False
        raise ValueError(f"patterns must be 'exact', 'sample', 'vertex' or a Tensor, got "
                         f"{patterns!r}")
    D = torch.as_tensor(patterns).to(torch.float64)
    if D.dim() != 2 or D.shape[0] != X.shape[0]:
        raise ValueError(f"patterns must be Tensor[n, P] with n={X.shape[0]}")
    return D, False


def certify(net, X, y, beta: float, loss: str = "squared", patterns="exact", tol: float = 1e-4,
            tie_tol: float = 1e-6, generator: torch.Generator | None = None) -> Certificate:
    """Is the network a global minimum of ``F``? A dual certificate over all patterns.

    With ``g = ∇ℓ(f)`` the network is globally optimal iff (a) it is balanced, (b) same-pattern,
    same-sign neurons are positively collinear, (c) ``max_{i,s} r_{i,s} ≤ β`` and (d) every
    aggregated block has zero complementarity ``β‖u‖ + s gᵀ D X u = 0``; (c)+(d) are equivalent to a
    zero duality gap, reported as ``objective − lower_bound``.

    Args:
        patterns: ``"exact"`` (full arrangement: a proof), ``"sample"``/``"vertex"`` (can only
            refute), or a ``Tensor[n, P]``.
        tol: relative tolerance for (a)–(d). tie_tol: ties ``|x_k·w| ≤ tie_tol ‖x_k‖‖w‖``.
    """
    beta = check_beta(beta)
    check_loss(loss)
    X, y = check_data(X, y, loss)
    W, a = _check_net(net, X)
    F = _objective(W, a, X, y, beta, loss)
    f = network_forward(W, a, X)
    g = loss_grad(f, y, loss)
    D, exact = _resolve_patterns(X, patterns, generator)
    r = dual_norms(X, g, D)
    flat = int(torch.argmax(r)) if r.numel() else 0
    max_dual = float(r.max()) if r.numel() else 0.0
    t = min(1.0, beta / max_dual) if max_dual > 0 else 1.0
    lb = float(loss_conjugate_lower_bound(t * g, y, loss))
    gap = F - lb
    rel_gap = gap / max(abs(F), 1e-300)
    # (a) balance
    wn, an = W.norm(dim=1), a.abs()
    scale = torch.maximum(wn, an).clamp_min(1e-300)
    mx = float(scale.max()) if scale.numel() else 0.0
    un = wn * an
    nonzero = un > 1e-6 * float(un.max()) if un.numel() else un > 0
    balanced = bool((((wn - an).abs() <= tol * scale) | (scale <= tol * max(mx, 1e-300))).all())
    # (b) collinearity within (pattern, sign)
    collinear = True
    idx = torch.nonzero(nonzero).flatten().tolist()
    # (b) ignores interior-point noise neurons (< 1e-4 of the largest); they still enter the gap
    big = [j for j in idx if float(un[j]) >= 1e-4 * float(un.max())]
    pats = {j: (X @ W[j] >= 0) for j in big}
    for p_, j in enumerate(big):
        for k in big[p_ + 1:]:
            if torch.sign(a[j]) == torch.sign(a[k]) and bool((pats[j] == pats[k]).all()):
                cos = float(W[j] @ W[k] / (wn[j] * wn[k]))
                if cos < 1 - tol:
                    collinear = False
    # per-neuron stationarity and complementarity
    kkt = torch.zeros(W.shape[0], dtype=torch.float64)
    comp = torch.zeros(W.shape[0], dtype=torch.float64)
    xn = X.norm(dim=1)
    for j in idx:
        s = 1.0 if a[j] > 0 else -1.0
        u = W[j] * a[j].abs()
        z = X @ W[j]
        Dj = (z >= 0).to(X.dtype)
        vec = s * (X.T @ (Dj * g)) + beta * u / u.norm()
        tied = z.abs() <= tie_tol * xn * wn[j]
        if bool(tied.any()):
            XT = X[tied]
            coef = torch.linalg.lstsq(XT.T, vec[:, None]).solution
            vec = vec - (XT.T @ coef)[:, 0]
        kkt[j] = vec.norm() / beta
        comp[j] = (beta * u.norm() + s * (g * Dj) @ (X @ u)) / (beta * u.norm())
    ok_dual = max_dual <= beta * (1 + tol)
    ok_gap = rel_gap <= tol
    if not (balanced and collinear):
        is_global: bool | None = False
        verdict = ("NOT globally optimal: " + ("not balanced (rescaling lowers F)" if not balanced
                   else "same-pattern neurons are not collinear (merging lowers F)"))
    elif not ok_dual:
        is_global = False
        i, s = divmod(flat, 2)
        verdict = (f"NOT globally optimal: pattern {i} with sign {'+' if s == 0 else '-'} has dual "
                   f"norm {max_dual:.6g} > beta = {beta:.6g} (a new neuron there lowers F)")
    elif not ok_gap:
        is_global = False
        verdict = (f"NOT globally optimal: duality gap {gap:.3g} (relative {rel_gap:.2g}) > tol; "
                   "some neuron is not stationary")
    elif exact:
        is_global = True
        verdict = (f"GLOBALLY OPTIMAL (certified over all {D.shape[1]} patterns): max dual norm "
                   f"{max_dual:.6g} <= beta, relative gap {rel_gap:.2g}")
    else:
        is_global = None
        verdict = (f"not refuted on {D.shape[1]} sampled patterns (max dual norm {max_dual:.6g} <="
                   " beta); use patterns='exact' for a proof")
    return Certificate(objective=F, beta=beta, max_dual=max_dual, dual_norms=r,
                       argmax_pattern=divmod(flat, 2), lower_bound=lb, gap=gap, rel_gap=rel_gap,
                       balanced=balanced, collinear=collinear, kkt_residuals=kkt,
                       complementarity=comp, exact=exact, is_global=is_global, verdict=verdict,
                       patterns=D)


def beta_max(X, y, loss: str = "squared", patterns="exact") -> float:
    """Smallest β for which the zero network is globally optimal: ``max_{i,s} r_{i,s}`` at
    ``g = ∇ℓ(0)`` (``−y`` for the squared loss). With cone constraints this is *not* the
    unconstrained group-lasso ``max ‖Xᵀ D_i y‖``."""
    check_loss(loss)
    X, y = check_data(X, y, loss)
    g = loss_grad(torch.zeros_like(y), y, loss)
    D, _ = _resolve_patterns(X, patterns)
    r = dual_norms(X, g, D)
    return float(r.max()) if r.numel() else 0.0


def is_optimal(net, X, y, beta: float, loss: str = "squared", patterns="exact",
               tol: float = 1e-4) -> bool:
    """True iff the network is a global minimum of ``F`` (balanced, collinear within each
    (pattern, sign), dual norms ≤ β and zero duality gap, all to relative ``tol``); see
    :func:`certify` for the numbers."""
    return certify(net, X, y, beta, loss=loss, patterns=patterns, tol=tol).is_global is True


def sample_optimal_network(result: ConvexResult, width: int,
                           generator: torch.Generator | None = None, as_module: bool = False):
    """A random optimal network of the given width: the canonical neurons of ``result`` are split
    into positively collinear pieces (random Dirichlet weights ``c``: ``(√c w, √c α)``), padded
    with zero neurons and permuted. Needs ``width ≥ m*``."""
    from udl.convex._core import TwoLayerReLU

    W0, a0 = canonicalize(result.to_network(as_module=False), X=result.X)
    k = W0.shape[0]
    if width < k:
        raise ValueError(f"width={width} is below m*={k}: no optimal network of that width is "
                         "obtained by splitting")
    extra = width - k
    n_live = k + int(torch.randint(0, extra + 1, (1,), generator=generator)) if k else 0
    pieces = torch.ones(k, dtype=torch.long)
    for _ in range(n_live - k):
        pieces[int(torch.randint(0, k, (1,), generator=generator))] += 1
    Ws, As = [], []
    for j in range(k):
        e = -torch.log(torch.rand(int(pieces[j]), generator=generator, dtype=torch.float64)
                       .clamp_min(1e-12))
        c = e / e.sum()
        Ws.append(c.sqrt()[:, None] * W0[j][None, :])
        As.append(c.sqrt() * a0[j])
    d = result.X.shape[1]
    Ws.append(torch.zeros(width - n_live, d, dtype=torch.float64))
    As.append(torch.zeros(width - n_live, dtype=torch.float64))
    W, a = torch.cat(Ws), torch.cat(As)
    perm = torch.randperm(width, generator=generator)
    W, a = W[perm], a[perm]
    return TwoLayerReLU(W, a) if as_module else (W, a)


@dataclasses.dataclass
class OptimalSet:
    """All optimal networks, built from one convex optimum (Wang, Lacotte & Pilanci, 2022).

    For widths ``m ≥ m*`` a network is optimal iff it is balanced, positively collinear within
    each (pattern, sign), and its aggregate is optimal for the convex program; every optimal
    network is a split + zero-padded + permuted image of a convex optimum.
    """

    result: ConvexResult

    @property
    def value(self) -> float:
        return self.result.value

    @property
    def m_star(self) -> int:
        return self.result.m_star

    @property
    def prediction(self) -> torch.Tensor:
        """The optimal fit ``f* [n]`` (unique for the strictly convex squared loss)."""
        return self.result.predict(self.result.X)

    def canonical(self) -> tuple[torch.Tensor, torch.Tensor]:
        return canonicalize(self.result.to_network(as_module=False), X=self.result.X)

    def contains(self, net, tol: float = 1e-4) -> bool:
        r = self.result
        pats = "exact" if r.exact else r.patterns
        return is_optimal(net, r.X, r.y, r.beta, loss=r.loss, patterns=pats, tol=tol)

    def sample(self, width: int, generator: torch.Generator | None = None):
        return sample_optimal_network(self.result, width, generator)


def optimal_set(result: ConvexResult) -> OptimalSet:
    """The characterization of all optimal networks around a convex solution ``result``."""
    if not isinstance(result, ConvexResult):
        raise ValueError("optimal_set expects a ConvexResult from ConvexReLU.fit")
    return OptimalSet(result)


# ------------------------------------------------------------------------- Clarke / local link
@dataclasses.dataclass
class SubsampledCertificate:
    """The convex program restricted to the network's own (tie-aware) patterns.

    ``objective − subsampled_value ≥ 0`` always; it is 0 (up to solver accuracy) at Clarke
    stationary points without ties, including spurious local minima.
    """

    objective: float
    subsampled_value: float
    gap: float
    rel_gap: float
    n_patterns: int
    result: ConvexResult

    def __str__(self) -> str:
        return (f"F = {self.objective:.10g}, subsampled optimum = {self.subsampled_value:.10g} over "
                f"{self.n_patterns} patterns (gap {self.gap:.3g}, relative {self.rel_gap:.2g})")


def subsampled_certificate(net, X, y, beta: float, loss: str = "squared", solver: str | None = None,
                           tie_tol: float = 1e-6, **kw) -> SubsampledCertificate:
    """Solve the convex program on the patterns of the network's own neurons (both signs each;
    tied neurons contribute every adjacent pattern) and report ``F − value``."""
    beta = check_beta(beta)
    X, y = check_data(X, y, loss)
    W, a = _check_net(net, X)
    F = _objective(W, a, X, y, beta, loss)
    live = (W.norm(dim=1) * a.abs()) > 0
    D = neuron_patterns(X, W[live], tie_tol=tie_tol)
    if D.shape[1] == 0:
        D = torch.ones(X.shape[0], 1, dtype=torch.float64)
    if solver is None:
        import importlib.util

        solver = "clarabel" if importlib.util.find_spec("cvxpy") is not None else "torch"
    res = ConvexReLU(beta, loss=loss, patterns=D, solver=solver, **kw).fit(X, y)
    gap = F - res.value
    return SubsampledCertificate(objective=F, subsampled_value=res.value, gap=gap,
                                 rel_gap=gap / max(abs(F), 1e-300), n_patterns=D.shape[1],
                                 result=res)
