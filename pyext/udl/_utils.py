"""Small helpers shared across udl's method packages."""

from __future__ import annotations

import contextlib
import functools
import threading
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


# glibc mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4
_GLIBC_MMAP_MAX_DEFAULT = 65536
_INT_MAX = 2**31 - 1
_retained_depth = 0
_retained_lock = threading.Lock()


@functools.lru_cache(maxsize=1)
def _glibc():  # find_library runs ldconfig: once per process
    import ctypes
    import ctypes.util
    import sys

    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        return libc if hasattr(libc, "mallopt") and hasattr(libc, "malloc_trim") else None
    except OSError:
        return None


@contextlib.contextmanager
def retained_heap(active: bool = True) -> Iterator[bool]:
    """Keep freed CPU memory mapped for the block (glibc only), then give it back.

    PyTorch's CPU tensors come straight from ``malloc``, and glibc serves every block over 32 MB
    with a fresh ``mmap`` that ``free`` unmaps. A loop that allocates the same 100 MB temporaries
    on every step therefore page-faults them in again on every step, and the faults can cost 5×
    the arithmetic. Inside this block large allocations come from the heap, which is not trimmed,
    so freed blocks are reused. On exit the default ``mmap`` use comes back and ``malloc_trim(0)``
    returns the free memory to the system. The settings are process-wide while the block runs.
    Elsewhere than glibc/Linux, or with ``active=False``, this does nothing. Yields whether it is
    active.
    """
    global _retained_depth
    libc = _glibc() if active else None
    if libc is None:
        yield False
        return
    with _retained_lock:  # nested or concurrent blocks: the outermost one sets and restores
        if _retained_depth == 0:
            libc.mallopt(_M_MMAP_MAX, 0)
            libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX)
        _retained_depth += 1
    try:
        yield True
    finally:
        with _retained_lock:
            _retained_depth -= 1
            if _retained_depth == 0:
                libc.mallopt(_M_MMAP_MAX, _GLIBC_MMAP_MAX_DEFAULT)
                libc.mallopt(_M_TRIM_THRESHOLD, 128 * 1024)
                libc.malloc_trim(0)
