"""Finite-sum problems ``F(x) = (1/M) sum_m (1/N) sum_i f_i^m(x)`` for the simulator and trainer.

A :class:`Problem` holds per-machine component data ``[Md, N, ...]`` (``Md = 1`` for problems
that are homogeneous across machines and so run with any number of machines ``M``) and gives

* :meth:`Problem.grad` -- the vectorised mean gradient of a minibatch of components per machine,
  used by :func:`udl.shuffling.simulate` (analytic for the built-in problems, autograd otherwise);
* :meth:`Problem.objective` -- ``F(x)`` for a batch of iterates, and ``f_star = F*``;
* :meth:`Problem.shard`, :meth:`Problem.model`, :meth:`Problem.batch_loss` -- the same problem as
  a torch dataset / ``nn.Module`` / loss for :mod:`udl.shuffling.distributed`.

Built-ins: :func:`skewed_quadratic` (the 1-D lower-bound construction), :func:`heterogeneous`
(per-machine curvature and shift: the tau term), :func:`near_homogeneous` (component-wise
perturbation of size lambda), :func:`least_squares` and :func:`logistic_regression` (real
scikit-learn data), and :func:`custom` for any per-component torch loss.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor, nn

__all__ = [
    "Problem",
    "ParamModel",
    "skewed_quadratic",
    "heterogeneous",
    "near_homogeneous",
    "least_squares",
    "logistic_regression",
    "custom",
]

_F64 = torch.float64


class ParamModel(nn.Module):
    """The iterate ``x`` of a :class:`Problem` as an ``nn.Module`` with one parameter ``x [d]``."""

    def __init__(self, x0: Tensor):
        super().__init__()
        self.x = nn.Parameter(x0.detach().clone())

    def forward(self) -> Tensor:
        return self.x


def _take(t: Tensor, idx: Tensor) -> Tensor:
    """``t[m, idx[..., m, j]]`` for data ``t [Md, N, ...]`` and indices ``[..., M, b]``."""
    if t.shape[0] == 1:
        return t[0][idx]
    M = idx.shape[-2]
    if t.shape[0] != M:
        raise ValueError(f"world size mismatch: the problem has {t.shape[0]} machines, "
                         f"the indices {M}")
    return t[torch.arange(M).view(M, 1), idx]


class Problem:
    """A finite-sum problem with per-component losses ``loss_fn(x, *items) -> [...]``.

    Args:
        loss_fn: per-component loss. Called with ``x [..., d]`` and the data items gathered for
            the components (``[..., *item_shape]``, broadcastable against ``x[..., 0]``); returns
            the component losses ``[...]``. Must be a pure torch function (autograd is used).
        data: tuple of tensors ``[Md, N, ...]``: ``Md = 1`` (same components on every machine)
            or ``Md = M`` (machine ``m`` holds ``data[m]``).
        x0: default start ``[d]``.
        f_star: ``F* = min F`` (``None``: unknown; errors are then reported as ``F(x)``).
        name: a label.
    """

    def __init__(self, loss_fn: Callable[..., Tensor], data: Sequence[Tensor], x0: Tensor,
                 f_star: float | None = None, name: str = "custom"):
        data = tuple(torch.as_tensor(t) for t in data)
        if not data:
            raise ValueError("data must hold at least one tensor [Md, N, ...]")
        if any(t.dim() < 2 for t in data):
            raise ValueError("every data tensor must have shape [Md, N, ...]")
        Md, N = data[0].shape[:2]
        if any(t.shape[:2] != (Md, N) for t in data):
            raise ValueError(f"data tensors disagree on [Md, N]: {[tuple(t.shape) for t in data]}")
        if N < 1 or Md < 1:
            raise ValueError(f"data must hold at least one machine and one component, got "
                             f"Md={Md}, N={N}")
        x0 = torch.as_tensor(x0, dtype=_F64).reshape(-1)
        if x0.numel() < 1:
            raise ValueError("x0 must have at least one coordinate")
        self.loss_fn = loss_fn
        self.data = data
        self.x0 = x0
        self.f_star = None if f_star is None else float(f_star)
        self.name = name

    # -- shape information ------------------------------------------------------------------
    @property
    def N(self) -> int:
        """Components per machine."""
        return int(self.data[0].shape[1])

    @property
    def M(self) -> int | None:
        """Number of machines the data is split over (``None``: homogeneous, any ``M``)."""
        Md = int(self.data[0].shape[0])
        return None if Md == 1 else Md

    @property
    def dim(self) -> int:
        return int(self.x0.numel())

    def check_machines(self, M: int) -> None:
        """Raise ``ValueError`` when ``M`` machines cannot run this problem."""
        if self.M is not None and self.M != M:
            raise ValueError(f"world size mismatch: problem {self.name!r} is split over "
                             f"M={self.M} machines, got M={M}")

    def __repr__(self) -> str:
        m = "any" if self.M is None else self.M
        return f"{type(self).__name__}({self.name!r}, M={m}, N={self.N}, d={self.dim})"

    # -- simulator interface ----------------------------------------------------------------
    def grad(self, x: Tensor, idx: Tensor) -> Tensor:
        """Mean gradient of a minibatch of components on every machine.

        Args:
            x: iterates ``[..., M or 1, d]``.
            idx: component indices ``[..., M, b]`` (broadcastable leading dims).

        Returns:
            ``[..., M, d]``: ``(1/b) sum_j grad f^m_{idx[..., m, j]}(x[..., m, :])``.
        """
        items = [_take(t, idx) for t in self.data]  # [..., M, b, *item]
        shape = torch.broadcast_shapes(x.shape[:-1], idx.shape[:-1])
        with torch.enable_grad():
            xe = x.detach().expand(*shape, x.shape[-1]).clone().requires_grad_(True)
            losses = self.loss_fn(xe.unsqueeze(-2), *items)  # [..., M, b]
            (g,) = torch.autograd.grad(losses.mean(-1).sum(), xe)
        return g

    def additive_noise(self) -> tuple[Callable[[Tensor], Tensor], Tensor] | None:
        """``(drift, c)`` when ``grad f_i^m(x) = drift(x)[m] + c[m, i]`` (a fast simulator path).

        ``drift`` maps iterates ``[..., M or 1, d]`` to ``[..., M or 1, d]``; ``c`` is
        ``[Md, N, d]``. ``None`` (the default) means the general path is used.
        """
        return None

    def objective(self, x: Tensor) -> Tensor:
        """``F(x)`` for iterates ``x [..., d]`` -> ``[...]``."""
        lead = x.shape[:-1]
        xf = x.reshape(-1, 1, 1, x.shape[-1])
        vals = self.loss_fn(xf, *[t.unsqueeze(0) for t in self.data])  # [P, Md, N]
        return vals.mean(dim=(-2, -1)).reshape(lead)

    def error(self, x: Tensor) -> Tensor:
        """``F(x) - F*`` (``F(x)`` when ``F*`` is unknown)."""
        f = self.objective(x)
        return f if self.f_star is None else f - self.f_star

    # -- distributed interface --------------------------------------------------------------
    def shard(self, rank: int, world_size: int) -> tuple[Tensor, ...]:
        """Machine ``rank``'s components as a tuple of tensors with leading dimension ``N``."""
        self.check_machines(world_size)
        if not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank}")
        m = 0 if self.M is None else rank
        return tuple(t[m].clone() for t in self.data)

    def model(self, x0: Tensor | None = None) -> ParamModel:
        """An ``nn.Module`` holding the iterate (float64), initialised at ``x0``."""
        return ParamModel(self.x0 if x0 is None else torch.as_tensor(x0, dtype=_F64).reshape(-1))

    def batch_loss(self, model: nn.Module, batch: Sequence[Tensor]) -> Tensor:
        """Mean loss of a batch of this machine's components (``batch`` from :meth:`shard`)."""
        x = model()
        return self.loss_fn(x, *batch).mean()


# ---------------------------------------------------------------------------------------------
# The 1-D skewed quadratic of the lower bounds and its heterogeneous / near-homogeneous variants
# ---------------------------------------------------------------------------------------------
def _signs(N: int) -> Tensor:
    if N < 2 or N % 2:
        raise ValueError(f"N must be even and >= 2 for the +-nu components, got N={N}")
    z = torch.ones(N, dtype=_F64)
    z[N // 2:] = -1.0
    return z


def _skew_loss(x: Tensor, zlin: Tensor, L: float, mu: float) -> Tensor:
    x1 = x[..., 0]
    a = torch.where(x1 <= 0, torch.as_tensor(L, dtype=x.dtype), torch.as_tensor(mu, dtype=x.dtype))
    return 0.5 * a * x1 * x1 + zlin * x1


class _Skewed(Problem):
    """``f_i^m(x) = 1/2 (L 1[x<=0] + mu 1[x>0]) x^2 + c_i^m x`` with ``sum_{m,i} c_i^m = 0``."""

    def __init__(self, lin: Tensor, L: float, mu: float, x0: float, name: str, **info):
        self.L, self.mu = float(L), float(mu)
        self.info = info
        super().__init__(self._loss, (lin,), torch.tensor([float(x0)], dtype=_F64), f_star=0.0, name=name)

    def _loss(self, x: Tensor, lin: Tensor) -> Tensor:
        return _skew_loss(x, lin, self.L, self.mu)

    def grad(self, x: Tensor, idx: Tensor) -> Tensor:
        c = _take(self.data[0], idx).mean(-1, keepdim=True)  # [..., M, 1]
        return self._drift(x) + c

    def _drift(self, x: Tensor) -> Tensor:
        return torch.where(x <= 0, self.L * x, self.mu * x)

    def additive_noise(self):
        return self._drift, self.data[0].unsqueeze(-1)

    def objective(self, x: Tensor) -> Tensor:
        x1 = x[..., 0]
        return 0.5 * torch.where(x1 <= 0, x.new_tensor(self.L), x.new_tensor(self.mu)) * x1 * x1


def _check_pos(**kw: float) -> None:
    for k, v in kw.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v > 0):
            raise ValueError(f"{k} must be a finite number > 0, got {v!r}")


def _check_nonneg(**kw: float) -> None:
    for k, v in kw.items():
        if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0):
            raise ValueError(f"{k} must be a finite number >= 0, got {v!r}")


def skewed_quadratic(N: int, L: float = 4.0, mu: float = 1.0, nu: float = 1.0,
                     x0: float = 0.0) -> Problem:
    """The homogeneous 1-D lower-bound construction (Thms 3-4; Rajput et al. 2020).

    ``f_i(x) = 1/2 (L 1[x<=0] + mu 1[x>0]) x^2 + z_i nu x`` with ``z_i = +1`` for ``i < N/2`` and
    ``-1`` otherwise, identical on every machine. ``F(x) = 1/2 (L or mu) x^2``, ``x* = F* = 0``,
    each ``f_i`` is ``L``-smooth, ``F`` is ``mu``-PL, and ``|grad f_i - grad F| = nu``.
    The default start is the minimiser, so the error is pure shuffling noise.
    """
    if not isinstance(N, int) or N < 2:
        raise ValueError(f"N must be an even integer >= 2, got {N!r}")
    _check_pos(L=L, mu=mu)
    _check_nonneg(nu=nu)
    if mu > L:
        raise ValueError(f"need mu <= L, got mu={mu}, L={L}")
    return _Skewed((nu * _signs(N)).view(1, N), L, mu, x0, f"skewed(N={N}, L={L}, mu={mu}, "
                   f"nu={nu})", nu=nu, tau=0.0, lam=0.0)


def near_homogeneous(M: int, N: int, lam: float, L: float = 4.0, mu: float = 1.0,
                     nu: float = 1.0, seed: int = 0, x0: float = 0.0) -> Problem:
    """The skewed quadratic with a component-wise perturbation of size ``lam`` (Assumption 4).

    ``f_i^m(x) = f_i(x) + lam * d_i^m x`` where, for every component ``i``, the signs
    ``d_i^m in {-1, 0, +1}`` are a random balanced assignment over machines (half ``+1``, half
    ``-1``, one ``0`` if ``M`` is odd), so ``mean_m f_i^m = f_i`` and ``F``, ``x*``, ``F*`` are
    unchanged while ``|grad f_i^m - grad fbar_i| <= lam``. ``lam = 0`` is the homogeneous case.
    """
    if not isinstance(M, int) or M < 1:
        raise ValueError(f"M must be an integer >= 1, got {M!r}")
    if not isinstance(N, int) or N < 2:
        raise ValueError(f"N must be an even integer >= 2, got {N!r}")
    _check_pos(L=L, mu=mu)
    _check_nonneg(nu=nu, lam=lam)
    z = nu * _signs(N)
    base = torch.zeros(M, dtype=_F64)
    base[: M // 2] = 1.0
    base[M // 2: 2 * (M // 2)] = -1.0
    g = torch.Generator().manual_seed(seed)
    d = torch.stack([base[torch.randperm(M, generator=g)] for _ in range(N)], dim=1)  # [M, N]
    lin = z.view(1, N) + lam * d
    return _Skewed(lin, L, mu, x0, f"near_homogeneous(M={M}, N={N}, lam={lam})",
                   nu=nu, tau=lam, lam=lam)


class _Hetero(Problem):
    """``f_i^m(x) = 1/2 a_m x^2 + (b_m + nu z_i) x``."""

    def __init__(self, a: Tensor, lin: Tensor, x0: float, name: str, **info):
        self.info = info
        self.a = a  # [M]
        abar = float(a.mean())
        bbar = float(lin.mean())
        super().__init__(self._loss, (a.view(-1, 1).expand_as(lin).clone(), lin),
                         torch.tensor([float(x0)], dtype=_F64), f_star=-0.5 * bbar * bbar / abar, name=name)
        self.x_star = -bbar / abar

    @staticmethod
    def _loss(x: Tensor, a: Tensor, lin: Tensor) -> Tensor:
        x1 = x[..., 0]
        return 0.5 * a * x1 * x1 + lin * x1

    def grad(self, x: Tensor, idx: Tensor) -> Tensor:
        c = _take(self.data[1], idx).mean(-1, keepdim=True)
        return self._drift(x) + c

    def _drift(self, x: Tensor) -> Tensor:
        return self.a.view(-1, 1) * x

    def additive_noise(self):
        return self._drift, self.data[1].unsqueeze(-1)


def heterogeneous(M: int, N: int, tau: float, a: Sequence[float] = (4.0, 1.0),
                  nu: float = 0.0, x0: float = 0.0) -> Problem:
    """Objective-wise heterogeneous quadratics (the tau^2 B^2 term of local RR, Prop. 5).

    ``F^m(x) = 1/2 a_m x^2 + b_m x`` with curvatures ``a_m`` cycling through ``a`` and shifts
    ``b_m = +-tau`` (alternating, ``M`` even so that they cancel), plus intra-machine noise
    ``nu z_i x``. Different curvatures are essential: with equal curvature the local drifts cancel
    exactly when averaged. ``x* = F* = 0`` when the shifts cancel.
    """
    if not isinstance(M, int) or M < 2 or M % 2:
        raise ValueError(f"M must be an even integer >= 2, got {M!r}")
    if not isinstance(N, int) or N < 2:
        raise ValueError(f"N must be an even integer >= 2, got {N!r}")
    _check_nonneg(tau=tau, nu=nu)
    if len(a) == 0:
        raise ValueError("a must list at least one curvature")
    _check_pos(**{f"a[{i}]": float(v) for i, v in enumerate(a)})
    curv = torch.tensor([float(a[m % len(a)]) for m in range(M)], dtype=_F64)
    b = torch.tensor([tau if m % 2 == 0 else -tau for m in range(M)], dtype=_F64)
    lin = b.view(M, 1) + nu * _signs(N).view(1, N)
    return _Hetero(curv, lin, x0, f"heterogeneous(M={M}, N={N}, tau={tau})",
                   nu=nu, tau=tau, lam=0.0)


# ---------------------------------------------------------------------------------------------
# Real data
# ---------------------------------------------------------------------------------------------
def _split(X: Tensor, y: Tensor, M: int, N: int | None, split: str, seed: int):
    n = X.shape[0]
    if not isinstance(M, int) or M < 1:
        raise ValueError(f"M must be an integer >= 1, got {M!r}")
    if N is None:
        N = n // M
    if not isinstance(N, int) or N < 1:
        raise ValueError(f"N must be an integer >= 1, got {N!r}")
    if M * N > n:
        raise ValueError(f"M*N = {M * N} exceeds the {n} available samples")
    if split == "iid":
        perm = torch.randperm(n, generator=torch.Generator().manual_seed(seed))
    elif split == "sorted":
        perm = torch.argsort(y, stable=True)
    else:
        raise ValueError(f"split must be 'iid' or 'sorted', got {split!r}")
    if split == "sorted":  # contiguous label-sorted shards: heterogeneous machines
        sel = perm[torch.linspace(0, n - 1, M * N).round().long()]
    else:
        sel = perm[: M * N]
    return X[sel].reshape(M, N, -1), y[sel].reshape(M, N)


def _load(dataset: str):
    import sklearn.datasets as skd

    loaders = {"diabetes": skd.load_diabetes, "breast_cancer": skd.load_breast_cancer,
               "digits": skd.load_digits, "wine": skd.load_wine}
    if dataset not in loaders:
        raise ValueError(f"dataset must be one of {sorted(loaders)}, got {dataset!r}")
    X, y = loaders[dataset](return_X_y=True)
    return torch.as_tensor(X, dtype=_F64), torch.as_tensor(y, dtype=_F64)


def _data(dataset: str, X, y) -> tuple[Tensor, Tensor]:
    """The user's ``(X [n, d], y [n])`` as float64, or the named scikit-learn dataset."""
    if X is None:
        X, y = _load(dataset)
    elif y is None:
        raise ValueError("y must be given together with X")
    X, y = torch.as_tensor(X, dtype=_F64), torch.as_tensor(y, dtype=_F64).reshape(-1)
    if X.dim() != 2 or X.shape[0] != y.shape[0]:
        raise ValueError(f"X must be [n, d] and y [n], got {tuple(X.shape)} and {tuple(y.shape)}")
    return X, y


def _standardize(X: Tensor) -> Tensor:
    return (X - X.mean(0)) / X.std(0).clamp_min(1e-12)


class _LeastSquares(Problem):
    """``f_i^m(w) = 1/2 (a_i^m . w - y_i^m)^2``."""

    def __init__(self, A: Tensor, y: Tensor, name: str):
        n = A.shape[0] * A.shape[1]
        Af, yf = A.reshape(n, -1), y.reshape(n)
        w_star = torch.linalg.lstsq(Af, yf.unsqueeze(-1)).solution.squeeze(-1)
        f_star = 0.5 * float(((Af @ w_star - yf) ** 2).mean())
        H = Af.T @ Af / n
        ev = torch.linalg.eigvalsh(H)
        self.mu = float(ev[0])
        self.L = float((A ** 2).sum(-1).max())  # component smoothness
        self.w_star = w_star
        super().__init__(self._loss, (A, y), torch.zeros(A.shape[-1], dtype=_F64), f_star, name)

    @staticmethod
    def _loss(w: Tensor, a: Tensor, y: Tensor) -> Tensor:
        r = (a * w).sum(-1) - y
        return 0.5 * r * r

    def grad(self, x: Tensor, idx: Tensor) -> Tensor:
        a = _take(self.data[0], idx)  # [..., M, b, d]
        y = _take(self.data[1], idx)  # [..., M, b]
        r = (a @ x.unsqueeze(-1)).squeeze(-1) - y  # [..., M, b]
        return (a * r.unsqueeze(-1)).mean(-2)

    def objective(self, x: Tensor) -> Tensor:
        A = self.data[0].reshape(-1, self.dim)
        y = self.data[1].reshape(-1)
        r = x @ A.T - y
        return 0.5 * (r * r).mean(-1)


def least_squares(M: int, N: int | None = None, dataset: str = "diabetes",
                  X: Tensor | None = None, y: Tensor | None = None, split: str = "iid",
                  seed: int = 0, standardize: bool = True) -> Problem:
    """Least squares on real data split into ``M`` fixed shards of ``N`` rows.

    Args:
        M: machines. N: rows per machine (default: as many as fit).
        dataset: a scikit-learn toy dataset (``diabetes``, ``breast_cancer``, ``digits``,
            ``wine``), used when ``X``/``y`` are not given.
        X, y: your own data ``[n, d]``, ``[n]`` instead.
        split: ``"iid"`` (random shards) or ``"sorted"`` (shards sorted by target:
            heterogeneous machines).
        standardize: centre and scale features and target.

    ``F*`` and ``w*`` are exact (``torch.linalg.lstsq`` in float64); ``problem.L``/``problem.mu``
    hold the component smoothness and the strong-convexity constant.
    """
    label = dataset if X is None else "data"
    X, y = _data(dataset, X, y)
    if standardize:
        X = _standardize(X)
        y = (y - y.mean()) / y.std().clamp_min(1e-12)
    A, yy = _split(X, y, M, N, split, seed)
    return _LeastSquares(A, yy, f"least_squares({label}, M={M}, "
                         f"N={A.shape[1]})")


class _Logistic(Problem):
    """``f_i^m(w) = log(1 + exp(-y_i^m a_i^m . w)) + l2/2 |w|^2`` with labels ``y in {-1, +1}``."""

    def __init__(self, A: Tensor, y: Tensor, l2: float, name: str):
        self.l2 = float(l2)
        n, d = A.shape[0] * A.shape[1], A.shape[-1]
        Af, yf = A.reshape(n, d), y.reshape(n)
        w = torch.zeros(d, dtype=_F64)
        for _ in range(100):  # Newton's method in float64 (the problem is strongly convex)
            s = torch.sigmoid(-yf * (Af @ w))
            g = -(Af * (yf * s).unsqueeze(-1)).mean(0) + self.l2 * w
            Hm = (Af * (s * (1 - s)).unsqueeze(-1)).T @ Af / n + self.l2 * torch.eye(d, dtype=_F64)
            step = torch.linalg.solve(Hm, g)
            w = w - step
            if float(step.norm()) < 1e-14:
                break
        self.w_star = w
        super().__init__(self._loss, (A, y), torch.zeros(d, dtype=_F64), None, name)
        self.f_star = float(self.objective(w))
        self.L = 0.25 * float((A ** 2).sum(-1).max()) + self.l2
        self.mu = self.l2

    def _loss(self, w: Tensor, a: Tensor, y: Tensor) -> Tensor:
        return nn.functional.softplus(-y * (a * w).sum(-1)) + 0.5 * self.l2 * (w * w).sum(-1)

    def grad(self, x: Tensor, idx: Tensor) -> Tensor:
        a = _take(self.data[0], idx)
        y = _take(self.data[1], idx)
        s = torch.sigmoid(-y * (a @ x.unsqueeze(-1)).squeeze(-1))
        return -(a * (y * s).unsqueeze(-1)).mean(-2) + self.l2 * x

    def objective(self, x: Tensor) -> Tensor:
        A = self.data[0].reshape(-1, self.dim)
        y = self.data[1].reshape(-1)
        z = nn.functional.softplus(-y * (x @ A.T))
        return z.mean(-1) + 0.5 * self.l2 * (x * x).sum(-1)


def logistic_regression(M: int, N: int | None = None, dataset: str = "breast_cancer",
                        X: Tensor | None = None, y: Tensor | None = None, l2: float = 1e-2,
                        split: str = "iid", seed: int = 0) -> Problem:
    """L2-regularised logistic regression on real data split into ``M`` fixed shards.

    Labels are mapped to ``{-1, +1}`` (``y > median`` for multi-class/real targets), features
    are standardised. ``F*`` comes from Newton's method in float64.
    """
    _check_pos(l2=l2)
    X, y = _data(dataset, X, y)
    labels = torch.unique(y)
    if labels.numel() == 2:
        y = torch.where(y == labels[1], 1.0, -1.0).to(_F64)
    else:
        y = torch.where(y > y.median(), 1.0, -1.0).to(_F64)
    X = _standardize(X)
    A, yy = _split(X, y, M, N, split, seed)
    return _Logistic(A, yy, l2, f"logistic({dataset}, M={M}, N={A.shape[1]})")


def custom(loss_fn: Callable[..., Tensor], data: Tensor | Sequence[Tensor], x0: Tensor,
           f_star: float | None = None, name: str = "custom") -> Problem:
    """A problem from any per-component torch function.

    Args:
        loss_fn: ``loss_fn(x [..., d], *items) -> [...]``, vectorised over leading dims.
        data: tensor or tuple of tensors ``[Md, N, ...]`` (``Md = 1``: every machine the same).
        x0: start ``[d]``. f_star: ``min F`` if known.

    Example::

        data = torch.randn(4, 16, 3, dtype=torch.float64)       # 4 machines x 16 points in R^3
        p = custom(lambda x, a: ((x - a) ** 2).sum(-1) / 2, data, torch.zeros(3))
    """
    if isinstance(data, Tensor):
        data = (data,)
    return Problem(loss_fn, data, x0, f_star, name)
