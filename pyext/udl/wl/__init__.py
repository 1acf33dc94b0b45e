"""udl.wl: exact, canonical, batched Weisfeiler-Leman refinement (colour refinement, k-FWL, k-OWL).

Public API: :func:`refine`, :func:`refine_batch`, :func:`equivalent`, :func:`equivalent_pairs`
(many pairs in one native call), :func:`equivalent_vertices`, :func:`partition`, :class:`WLResult`
and :class:`WLHistogram` (WL subtree kernel features). Native kernels: ``torch.ops.udl.wl_refine``
(colour refinement), ``torch.ops.udl.wl_refine_tuples`` (k-WL) and ``torch.ops.udl.wl_pair_equivalent``
(2-FWL equivalence of graph pairs), CPU and CUDA. Conventions are documented in :mod:`udl.wl.core`.
"""

from __future__ import annotations

from udl.wl.core import (
    DEFAULT_MEMORY_LIMIT,
    WLResult,
    equivalent,
    equivalent_pairs,
    equivalent_vertices,
    parse_method,
    partition,
    refine,
    refine_batch,
)
from udl.wl.kernel import WLHistogram

__all__ = ["DEFAULT_MEMORY_LIMIT", "WLHistogram", "WLResult", "equivalent", "equivalent_pairs",
           "equivalent_vertices",
           "parse_method", "partition", "refine", "refine_batch"]
