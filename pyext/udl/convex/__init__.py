"""udl.convex: regularized two-layer ReLU networks as convex programs (Wang, Lacotte & Pilanci,
ICLR 2022; Pilanci & Ergen, ICML 2020).

* :class:`ConvexReLU` solves training exactly (cvxpy + Clarabel/SCS/MOSEK, or ``solver="torch"``);
* :func:`enumerate_patterns` / :func:`sample_patterns` give the activation patterns;
* :func:`optimal_set`, :func:`is_optimal`, :func:`sample_optimal_network`, :func:`canonicalize`
  describe *all* optimal networks; :func:`certify` and :func:`beta_max` certify global optimality;
* :func:`subsampled_certificate` links stationary points to subsampled programs;
* :func:`path_to_global` builds a non-increasing path to a global minimum.

Conventions: ``F(W, α) = ℓ(Σ_j (X w_j)_+ α_j, y) + (β/2) Σ_j (‖w_j‖² + α_j²)`` with
``ℓ = ½‖f − y‖²`` by default, a bias is a ones column of ``X`` and ``D = diag(1[Xh ≥ 0])``.
cvxpy is imported only when a cvxpy solver is used.
"""

from udl.convex._core import (
    TwoLayerReLU,
    add_bias,
    as_weights,
    beta_from_scnn,
    network_objective,
    scnn_lambda,
    train_adam,
)
from udl.convex.model import ConvexReLU, ConvexResult
from udl.convex.optimality import (
    Certificate,
    OptimalSet,
    SubsampledCertificate,
    balance,
    beta_max,
    canonicalize,
    certify,
    dual_norms,
    from_network,
    is_optimal,
    optimal_set,
    sample_optimal_network,
    subsampled_certificate,
)
from udl.convex.path import PathResult, path_to_global, plot_path
from udl.convex.patterns import (
    cover_count,
    enumerate_patterns,
    neuron_patterns,
    sample_patterns,
)
from udl.convex.solvers import ConvexSolverError, ConvexSolverWarning

__all__ = [
    "Certificate",
    "ConvexReLU",
    "ConvexResult",
    "ConvexSolverError",
    "ConvexSolverWarning",
    "OptimalSet",
    "PathResult",
    "SubsampledCertificate",
    "TwoLayerReLU",
    "add_bias",
    "as_weights",
    "balance",
    "beta_from_scnn",
    "beta_max",
    "canonicalize",
    "certify",
    "cover_count",
    "dual_norms",
    "enumerate_patterns",
    "from_network",
    "is_optimal",
    "network_objective",
    "train_adam",
    "neuron_patterns",
    "optimal_set",
    "path_to_global",
    "plot_path",
    "sample_optimal_network",
    "sample_patterns",
    "scnn_lambda",
    "subsampled_certificate",
]
