"""udl.collapse: neural collapse under MSE (Han, Papyan & Donoho, ICLR 2022).

Streaming float64 sufficient statistics (:class:`CollapseStats`), NC1-NC4 through C x C algebra
(:func:`nc_metrics`), the exact MSE decomposition L_NC1 + L_NC23 + L_perp (:func:`mse_decomposition`),
proximity to the central path and the SNR singular values (:func:`central_path`), and a training-loop
callback (:class:`CollapseMonitor`). Only torch is imported here; matplotlib/sklearn/torchvision are
imported inside the functions that need them.
"""

from __future__ import annotations

from udl.collapse.metrics import (
    central_path,
    class_geometry,
    lam_from_weight_decay,
    mse_decomposition,
    nc_metrics,
    snr_singular_values,
)
from udl.collapse.monitor import CollapseMonitor, plot_history
from udl.collapse.stats import COUNTERS, CollapseStats

__all__ = [
    "COUNTERS",
    "CollapseMonitor",
    "CollapseStats",
    "central_path",
    "class_geometry",
    "lam_from_weight_decay",
    "mse_decomposition",
    "nc_metrics",
    "plot_history",
    "snr_singular_values",
]
