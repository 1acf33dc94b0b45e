"""Small helpers shared across udl's method packages."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

import torch


@contextlib.contextmanager
def torch_threads(num_threads: int | None) -> Iterator[None]:
    """Run a block with ``torch.set_num_threads(num_threads)`` and restore the old count after.

    ``None`` leaves the thread count alone. Tiny models and simulations run faster on one intra-op
    thread (no fork/join per small op, no OpenMP spin-waiting on a busy CPU).
    """
    old = torch.get_num_threads()
    if num_threads is not None:
        torch.set_num_threads(num_threads)
    try:
        yield
    finally:
        torch.set_num_threads(old)
