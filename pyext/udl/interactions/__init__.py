"""udl.interactions — multi-order interactions and the representation bottleneck.

Deng, Ren, Zhang, Zhang, "Discovering and Explaining the Representation Bottleneck of DNNs"
(ICLR 2022). Measure which orders of interaction a model encodes and train models that favour or
penalise orders:

* :func:`multi_order_interaction` — Monte Carlo I^(m)(i, j) with standard errors and J^(m), on the
  fused native kernels (contexts drawn on the device, 4 masked inputs written in one pass).
* :func:`exact_interactions` — ground truth by enumerating the 2^n coalitions (n ≤ 20): I^(m),
  Harsanyi dividends, Shapley interaction index, Shapley–Taylor, Shapley values.
* :class:`OrderLoss` — the paper's L+ / L− on nested random masks.
* :func:`grid_players`, :func:`sample_pairs`, :func:`value_from_logits` — building blocks.

Only torch is imported here; training helpers (``udl.interactions.train``) import sklearn lazily.
"""

from __future__ import annotations

from udl.interactions.core import (
    ORDER_RATIOS,
    InteractionResult,
    grid_players,
    multi_order_interaction,
    resolve_baseline,
    resolve_orders,
    resolve_players,
    sample_pairs,
    value_from_logits,
)
from udl.interactions.exact import ExactInteractions, exact_interactions
from udl.interactions.loss import ORDER_LOSS_PRESETS, OrderLoss, nested_player_masks

__all__ = [
    "ORDER_RATIOS",
    "ORDER_LOSS_PRESETS",
    "ExactInteractions",
    "InteractionResult",
    "OrderLoss",
    "exact_interactions",
    "grid_players",
    "multi_order_interaction",
    "nested_player_masks",
    "resolve_baseline",
    "resolve_orders",
    "resolve_players",
    "sample_pairs",
    "value_from_logits",
]
