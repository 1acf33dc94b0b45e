"""Theorem rates, step sizes and log-log slope fits (Yun, Rajput & Sra, ICLR 2022).

The bounds are the *shapes* of the theorems (constants and log factors dropped, as in the paper's
``O~``); use them to overlay a theory line on measured errors after matching one constant,
e.g. with :func:`fit_slope` at the theoretical slope. ``K`` may be a number or an array.

================================  ===========================================================
algorithm / scheme                upper bound (K >~ kappa)
================================  ===========================================================
minibatch / rr (Thm 1)            L^2/mu^3 * nu^2/(M N K^2)             (no tau, rho or B)
minibatch / wr                    nu^2/(mu M N K)                       (minibatch SGD)
minibatch / syncshuf (Thm 6)      L^2/mu^3 * (nu^2/(M^2 N K^2) + lam^2/(M K^2))
local / rr (Thm 2)                L^2/mu^3 * (nu^2/(M N K^2) + nu^2 B/(N^2 K^2) + tau^2 B^2/(N^2 K^2))
local / wr                        L nu^2/(mu^2 M N K) + L^2/mu^3 (nu^2 B + tau^2 B^2)/(N^2 K^2)
local / syncshuf (Thm 7)          L^2/mu^3 * (nu^2/(M^2 N K^2) + nu^2 B/(N^2 K^2)
                                  + lam^2 B^2/(N^2 K^2) + lam^2/(M K^2))
``same`` (every machine alike)    the single-machine rate (M = 1) on homogeneous data
================================  ===========================================================

Every upper bound also carries the initialisation term ``F0/(M N K^2)`` (``M^2`` with SyncShuf).
"""

from __future__ import annotations

import dataclasses
import math

import torch
from torch import Tensor

from udl.shuffling.orders import check_scheme

__all__ = ["step_size", "min_epochs", "upper_bound", "lower_bound", "expected_slope",
           "SlopeFit", "fit_slope"]


def _check_alg(algorithm: str) -> None:
    if algorithm not in ("minibatch", "local"):
        raise ValueError(f"algorithm must be 'minibatch' or 'local', got {algorithm!r}")


def _as_t(K) -> Tensor:
    return torch.as_tensor(K, dtype=torch.float64)


def _eff_M(scheme: str, M: int) -> int:
    return M * M if scheme == "syncshuf" else M


def step_size(algorithm: str, scheme: str, *, mu: float, N: int, K, M: int = 1, B: int = 1,
              c: float = 1.0):
    """The theorems' constant step size (times ``c``).

    Minibatch RR: ``eta = B log(M N K^2) / (mu N K)``; local RR: ``eta = log(M N K^2)/(mu N K)``.
    With SyncShuf ``M`` becomes ``M^2`` inside the log. The with-replacement and ``same`` schemes
    use the RR formula. Returns a float for scalar ``K`` else a tensor.
    """
    _check_alg(algorithm)
    check_scheme(scheme)
    if mu <= 0 or N < 1 or M < 1 or B < 1 or c <= 0:
        raise ValueError("need mu > 0, c > 0 and N, M, B >= 1")
    Kt = _as_t(K)
    if bool((Kt < 1).any()):
        raise ValueError("K must be >= 1")
    lg = torch.log(_eff_M(scheme, M) * N * Kt ** 2)
    eta = c * lg / (mu * N * Kt) * (B if algorithm == "minibatch" else 1)
    return float(eta) if eta.dim() == 0 else eta


def min_epochs(algorithm: str, scheme: str, *, L: float, mu: float, M: int, N: int,
               rho: float = 1.0) -> int:
    """Smallest ``K`` satisfying the theorems' large-epoch condition.

    Minibatch: ``K >= 6 kappa log(M N K^2)``; local: ``K >= 7 rho kappa log(M N K^2)`` (with
    SyncShuf ``M -> M^2`` and no ``rho``).
    """
    _check_alg(algorithm)
    check_scheme(scheme)
    kappa = L / mu
    c = 6.0 if algorithm == "minibatch" else 7.0 * (1.0 if scheme == "syncshuf" else rho)
    Me = _eff_M(scheme, M)
    K = 1
    while K < c * kappa * math.log(Me * N * K * K):
        K += 1
    return K


def upper_bound(algorithm: str, scheme: str, *, L: float, mu: float, nu: float, M: int, N: int,
                B: int, K, tau: float = 0.0, lam: float = 0.0, F0: float = 0.0):
    """The upper-bound shape (see the module table) as a function of ``K``."""
    _check_alg(algorithm)
    check_scheme(scheme)
    Kt = _as_t(K)
    c = L * L / mu ** 3
    if scheme == "same":  # homogeneous data: the M machines move as one
        M = 1
        scheme = "rr"
    Me = _eff_M(scheme, M)
    init = F0 / (Me * N * Kt ** 2)
    if algorithm == "minibatch":
        if scheme == "wr":
            out = nu ** 2 / (mu * M * N * Kt)
        elif scheme == "syncshuf":
            out = c * (nu ** 2 / (M * M * N * Kt ** 2) + lam ** 2 / (M * Kt ** 2))
        else:
            out = c * nu ** 2 / (M * N * Kt ** 2)
    else:
        het = (nu ** 2 * B + tau ** 2 * B ** 2) / (N ** 2 * Kt ** 2)
        if scheme == "wr":
            out = L * nu ** 2 / (mu ** 2 * M * N * Kt) + c * het
        elif scheme == "syncshuf":
            out = c * (nu ** 2 / (M * M * N * Kt ** 2) + nu ** 2 * B / (N ** 2 * Kt ** 2)
                       + lam ** 2 * B ** 2 / (N ** 2 * Kt ** 2) + lam ** 2 / (M * Kt ** 2))
        else:
            out = c * (nu ** 2 / (M * N * Kt ** 2) + het)
    out = out + init
    return float(out) if out.dim() == 0 else out


def lower_bound(algorithm: str, *, L: float, mu: float, nu: float, M: int, N: int, B: int, K,
                tau: float = 0.0):
    """Lower-bound shapes for RR (Thm 3 minibatch; Thm 4 + Prop. 5 local), large-``K`` regime."""
    _check_alg(algorithm)
    Kt = _as_t(K)
    if algorithm == "minibatch":
        out = nu ** 2 / (mu * M * N * Kt ** 2)
    else:
        out = (nu ** 2 / (M * N * Kt ** 2) + nu ** 2 * B / (N ** 2 * Kt ** 2)
               + tau ** 2 * B ** 2 / (N ** 2 * Kt ** 2)) / mu
    return float(out) if out.dim() == 0 else out


_SLOPES = {
    ("K", "minibatch", "rr"): -2.0, ("K", "local", "rr"): -2.0,
    ("K", "minibatch", "syncshuf"): -2.0, ("K", "local", "syncshuf"): -2.0,
    ("K", "minibatch", "wr"): -1.0, ("K", "local", "wr"): -1.0,
    ("K", "minibatch", "same"): -2.0, ("K", "local", "same"): -2.0,
    ("M", "minibatch", "rr"): -1.0, ("M", "minibatch", "syncshuf"): -2.0,
    ("M", "minibatch", "wr"): -1.0, ("M", "minibatch", "same"): 0.0,
    ("M", "local", "rr"): -1.0, ("M", "local", "syncshuf"): -2.0,
    ("B", "minibatch", "rr"): 0.0, ("B", "local", "rr"): 1.0,
    ("tau", "local", "rr"): 2.0, ("tau", "minibatch", "rr"): 0.0,
}


def expected_slope(variable: str, algorithm: str, scheme: str) -> float:
    """The log-log slope the theory predicts for the error against ``K``, ``M``, ``B`` or ``tau``.

    ``M`` for local RR: -1 until the ``nu^2 B/(N^2 K^2)`` floor (``M >~ N/B``); ``B`` for local
    RR: +1 once ``B >~ N/M`` (flat before); ``tau``: the ``tau^2 B^2`` term.
    """
    try:
        return _SLOPES[(variable, algorithm, scheme)]
    except KeyError:
        raise ValueError(f"no slope prediction for {variable!r} / {algorithm!r} / {scheme!r}; "
                         f"known: {sorted(_SLOPES)}") from None


@dataclasses.dataclass
class SlopeFit:
    """``log y = slope * log x + intercept`` with a confidence interval ``[lo, hi]``."""

    slope: float
    intercept: float
    lo: float
    hi: float
    method: str

    def predict(self, x) -> Tensor:
        return torch.exp(self.intercept + self.slope * torch.log(_as_t(x)))

    def __str__(self) -> str:
        return f"{self.slope:+.2f} [{self.lo:+.2f}, {self.hi:+.2f}]"


def _ols(lx: Tensor, ly: Tensor) -> tuple[float, float, float]:
    xm, ym = lx.mean(), ly.mean()
    sxx = ((lx - xm) ** 2).sum()
    slope = ((lx - xm) * (ly - ym)).sum() / sxx
    icpt = ym - slope * xm
    n = lx.numel()
    if n > 2:
        resid = ly - (icpt + slope * lx)
        se = torch.sqrt((resid ** 2).sum() / (n - 2) / sxx)
    else:
        se = torch.tensor(float("nan"))
    return float(slope), float(icpt), float(se)


def fit_slope(x, y=None, errors: Tensor | None = None, conf: float = 0.95, n_boot: int = 2000,
              seed: int = 0) -> SlopeFit:
    """Least-squares slope of ``log y`` against ``log x`` with a confidence interval.

    Args:
        x: ``[n]`` positive abscissae (``K``, ``M``, ``B`` ...).
        y: ``[n]`` positive values (e.g. mean errors); default ``errors.mean(-1)``.
        errors: optional per-seed values ``[n, S]``: the interval is then a bootstrap over seeds
            (seeds resampled jointly across ``x``, since the runs share random numbers).
            Without it, the t-interval of ordinary least squares.
        conf: confidence level.
    """
    xt = _as_t(x).reshape(-1)
    if errors is not None:
        errors = torch.as_tensor(errors, dtype=torch.float64)
        if errors.dim() != 2 or errors.shape[0] != xt.numel():
            raise ValueError(f"errors must be [n={xt.numel()}, S], got {tuple(errors.shape)}")
        if y is None:
            y = errors.mean(-1)
    if y is None:
        raise ValueError("give y or errors")
    yt = _as_t(y).reshape(-1)
    if xt.numel() != yt.numel() or xt.numel() < 2:
        raise ValueError(f"x and y need the same length >= 2, got {xt.numel()} and {yt.numel()}")
    if bool((xt <= 0).any()) or bool((yt <= 0).any()) or not bool(torch.isfinite(yt).all()):
        raise ValueError("x and y must be positive and finite for a log-log fit")
    if not 0 < conf < 1:
        raise ValueError(f"conf must be in (0, 1), got {conf}")
    lx, ly = xt.log(), yt.log()
    slope, icpt, se = _ols(lx, ly)
    alpha = 1 - conf
    if errors is not None and errors.shape[1] > 1:
        g = torch.Generator().manual_seed(seed)
        S = errors.shape[1]
        pick = torch.randint(0, S, (n_boot, S), generator=g)
        means = errors[:, pick].mean(-1).T  # [n_boot, n]
        ok = (means > 0).all(-1)
        lm = means[ok].log()
        xm = lx.mean()
        sxx = ((lx - xm) ** 2).sum()
        slopes = ((lx - xm) * (lm - lm.mean(-1, keepdim=True))).sum(-1) / sxx
        lo, hi = torch.quantile(slopes, torch.tensor([alpha / 2, 1 - alpha / 2],
                                                     dtype=torch.float64)).tolist()
        return SlopeFit(slope, icpt, lo, hi, f"bootstrap over {S} seeds")
    n = xt.numel()
    if n <= 2 or not math.isfinite(se):
        return SlopeFit(slope, icpt, float("nan"), float("nan"), "ols (2 points: no interval)")
    try:
        from scipy.stats import t as student_t

        q = float(student_t.ppf(1 - alpha / 2, n - 2))
    except ImportError:  # pragma: no cover - scipy ships with scikit-learn
        q = 1.959964 * (1 + 2.5 / (n - 2))
    return SlopeFit(slope, icpt, slope - q * se, slope + q * se, "ols t-interval")
