"""``ConvexReLU``: train a regularized two-layer ReLU network exactly, as a convex program."""

from __future__ import annotations

import dataclasses
import math

import torch

from udl.convex._core import (
    TwoLayerReLU,
    _objective,
    check_beta,
    check_data,
    check_loss,
    convex_blocks_to_network,
)
from udl.convex.patterns import enumerate_patterns, sample_patterns
from udl.convex.solvers import CVXPY_SOLVERS, convex_objective, solve_cvxpy, solve_torch

__all__ = ["ConvexReLU", "ConvexResult"]


@dataclasses.dataclass
class ConvexResult:
    """Solution of the convex program.

    Attributes:
        value: convex objective ``ℓ(Σ D_i X(u_i − v_i), y) + β Σ(‖u_i‖ + ‖v_i‖)`` at the solution.
        U, V: ``Tensor[P, d]`` positive- and negative-output blocks (row i belongs to pattern i).
        patterns: ``Tensor[n, P]`` the 0/1 patterns ``D_i`` of the program.
        exact: True when ``patterns`` is the full arrangement (then ``value`` is the global
            optimum of the non-convex problem for every width ``m ≥ m*``); False for sampled
            patterns (a subsampled, *local* model: ``value`` is an upper bound of the optimum).
        status, solver, solve_time, info: solver report.
    """

    value: float
    U: torch.Tensor
    V: torch.Tensor
    patterns: torch.Tensor
    X: torch.Tensor
    y: torch.Tensor
    beta: float
    loss: str
    exact: bool
    status: str
    solver: str
    solve_time: float
    info: dict = dataclasses.field(default_factory=dict, repr=False)

    @property
    def blocks(self) -> list[tuple[int, int, torch.Tensor]]:
        """Nonzero blocks as ``(pattern index, sign ±1, vector [d])`` (norm > 1e-6 · max; smaller
        blocks are interior-point noise)."""
        tol = self._zero_tol()
        out = []
        for sign, B in ((1, self.U), (-1, self.V)):
            for i in torch.nonzero(B.norm(dim=1) > tol).flatten().tolist():
                out.append((i, sign, B[i]))
        return out

    def _zero_tol(self) -> float:
        mx = max(float(self.U.norm(dim=1).max()) if self.U.numel() else 0.0,
                 float(self.V.norm(dim=1).max()) if self.V.numel() else 0.0)
        return 1e-6 * mx

    def to_network(self, as_module: bool = True, zero_tol: float | None = None):
        """The mapped network ``w = u/√‖u‖, α = ±√‖u‖`` (one neuron per nonzero block).

        Returns a :class:`TwoLayerReLU` (or ``(W [k, d], α [k])`` with ``as_module=False``) whose
        objective ``F`` equals :attr:`value` up to the solver's constraint accuracy.
        """
        W, a = convex_blocks_to_network(self.U, self.V,
                                        self._zero_tol() if zero_tol is None else zero_tol)
        return TwoLayerReLU(W, a) if as_module else (W, a)

    @property
    def network_value(self) -> float:
        """``F`` of :meth:`to_network` (a width-``k`` network actually attaining it)."""
        W, a = self.to_network(as_module=False)
        return _objective(W, a, self.X, self.y, self.beta, self.loss)

    @property
    def m_star(self) -> int:
        """Neurons left after balancing and merging positively collinear same-sign blocks."""
        from udl.convex.optimality import canonicalize

        W, _ = canonicalize(self.to_network(as_module=False), X=self.X)
        return int(W.shape[0])

    def predict(self, X: torch.Tensor) -> torch.Tensor:
        """Predictions of the mapped network on ``X [n', d]``."""
        W, a = self.to_network(as_module=False)
        X = torch.as_tensor(X).to(W.dtype)
        return torch.relu(X @ W.T) @ a if W.shape[0] else X.new_zeros(X.shape[0])


class ConvexReLU:
    """Regularized two-layer ReLU training as a convex program (Pilanci & Ergen; Wang et al.).

    ``min_{W, α} ℓ(Σ_j (X w_j)_+ α_j, y) + (β/2) Σ_j (‖w_j‖² + α_j²)`` equals
    ``min ℓ(Σ_i D_i X(u_i − v_i), y) + β Σ_i(‖u_i‖ + ‖v_i‖)`` s.t. ``(2D_i − I) X u_i ≥ 0``,
    ``(2D_i − I) X v_i ≥ 0`` over *all* patterns ``D_i`` (for widths ``m ≥ m*``).

    Args:
        beta: β > 0.
        loss: ``"squared"`` (½‖f − y‖²), ``"logistic"`` or ``"hinge"`` (labels ±1).
        patterns: ``"exact"`` (full arrangement, small rank only), ``"sample"`` (Gaussian gates),
            ``"vertex"`` (vertex rays), or a ``Tensor[n, P]`` of 0/1 patterns.
        n_patterns: number of sampled patterns (``"sample"``/``"vertex"``).
        solver: ``"clarabel"`` (default), ``"scs"``, ``"mosek"``, ``"gurobi"`` (via cvxpy), or
            ``"torch"`` (ADMM; CPU or CUDA; no cvxpy needed).
        tol, max_iter: for ``solver="torch"``. device, dtype: where the torch solver runs.
        generator: for pattern sampling.
        solver_options: extra keyword arguments for cvxpy's ``solve``, or for
            :func:`udl.convex.solvers.solve_torch` with ``solver="torch"`` (``method="ipm"|"admm"``,
            ``time_limit``, ...).
    """

    def __init__(self, beta: float, loss: str = "squared", patterns="exact", n_patterns: int = 100,
                 solver: str = "clarabel", tol: float = 1e-6, max_iter: int = 20000,
                 device: str | torch.device | None = None, dtype: torch.dtype = torch.float64,
                 generator: torch.Generator | None = None, verbose: bool = False,
                 **solver_options) -> None:
        self.beta = check_beta(beta)
        self.loss = check_loss(loss)
        if isinstance(patterns, str) and patterns not in ("exact", "sample", "vertex"):
            raise ValueError(f"patterns must be 'exact', 'sample', 'vertex' or a Tensor[n, P], "
                             f"got {patterns!r}")
        self.patterns = patterns
        self.n_patterns = int(n_patterns)
        solver = solver.lower()
        if solver != "torch" and solver not in CVXPY_SOLVERS:
            raise ValueError(f"solver must be 'torch' or one of {CVXPY_SOLVERS}, got {solver!r}")
        if solver == "torch" and self.loss == "hinge":
            raise ValueError("solver='torch' needs a differentiable loss; use loss='squared' or "
                             "'logistic', or a cvxpy solver for the hinge loss")
        self.solver = solver
        self.tol = float(tol)
        self.max_iter = int(max_iter)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        self.dtype = dtype
        self.generator = generator
        self.verbose = verbose
        self.solver_options = solver_options
        self.result_: ConvexResult | None = None

    def _patterns(self, X: torch.Tensor) -> tuple[torch.Tensor, bool]:
        if isinstance(self.patterns, str):
            if self.patterns == "exact":
                return enumerate_patterns(X), True
            method = "gaussian" if self.patterns == "sample" else "vertex"
            return sample_patterns(X, self.n_patterns, method=method,
                                   generator=self.generator), False
        D = torch.as_tensor(self.patterns).to(torch.float64)
        if D.dim() != 2 or D.shape[0] != X.shape[0]:
            raise ValueError(f"patterns must be a Tensor[n, P] with n={X.shape[0]} rows, got "
                             f"shape {tuple(D.shape)}")
        if not bool(((D == 0) | (D == 1)).all()):
            raise ValueError("patterns must contain only 0 and 1")
        return D, False

    def fit(self, X, y, init: tuple[torch.Tensor, torch.Tensor] | None = None) -> ConvexResult:
        """Solve the program on ``X [n, d]``, ``y [n]``; returns (and stores) a :class:`ConvexResult`."""
        X, y = check_data(X, y, self.loss, dtype=torch.float64, device="cpu")
        r = int(torch.linalg.matrix_rank(X))
        if r < X.shape[1]:
            import warnings

            warnings.warn(f"X has rank {r} < d={X.shape[1]}: the blocks are not unique (any "
                          "component in the null space of X is set to zero by the penalty)",
                          stacklevel=2)
        D, exact = self._patterns(X)
        if D.shape[1] == 0:
            raise ValueError("no activation patterns (every sampled pattern was all-zero)")
        if self.solver == "torch":
            Xd = X.to(self.device, self.dtype)
            yd = y.to(self.device, self.dtype)
            Dd = D.to(self.device, self.dtype)
            U, V, info = solve_torch(Xd, yd, Dd, self.beta, self.loss, tol=self.tol,
                                     max_iter=self.max_iter, init=init, verbose=self.verbose,
                                     **self.solver_options)
            U, V = U.to("cpu", torch.float64), V.to("cpu", torch.float64)
        else:
            U, V, info = solve_cvxpy(X, y, D, self.beta, self.loss, solver=self.solver,
                                     verbose=self.verbose, **self.solver_options)
        value = convex_objective(U, V, D, X, y, self.beta, self.loss)
        if not math.isfinite(value):
            from udl.convex.solvers import ConvexSolverError

            raise ConvexSolverError(f"solver {self.solver} returned a non-finite value")
        self.result_ = ConvexResult(value=value, U=U, V=V, patterns=D, X=X, y=y, beta=self.beta,
                                    loss=self.loss, exact=exact, status=info["status"],
                                    solver=info["solver"], solve_time=info["solve_time"],
                                    info=info)
        return self.result_
