"""udl.shuffling: minibatch RR, local RR and synchronized shuffling (Yun, Rajput & Sra, ICLR 2022).

* :func:`orders` -- the per-epoch index orders (``rr``, ``wr``, ``syncshuf``, ``same``), one
  deterministic function of ``(scheme, M, N, epoch, seed)`` used by everything else;
* :class:`ShuffleSampler` -- the same orders as a ``torch.utils.data.Sampler`` for a rank's shard;
* :func:`simulate` -- a vectorised float64 simulator (seeds x machines x epoch budgets);
* :mod:`udl.shuffling.problems` -- the lower-bound constructions and real-data problems;
* :mod:`udl.shuffling.rates` -- the theorem rates, step sizes and :func:`fit_slope`;
* :mod:`udl.shuffling.distributed` -- real ``torch.distributed`` training following the same streams.
"""

from __future__ import annotations

from udl.shuffling import problems, rates
from udl.shuffling.orders import SCHEMES, orders
from udl.shuffling.rates import fit_slope
from udl.shuffling.sampler import ShuffleSampler
from udl.shuffling.simulator import ALGORITHMS, SimResult, simulate

__all__ = ["ALGORITHMS", "SCHEMES", "ShuffleSampler", "SimResult", "fit_slope", "orders",
           "problems", "rates", "simulate"]
