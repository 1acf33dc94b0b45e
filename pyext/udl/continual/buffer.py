"""Reservoir replay buffer updated per step over the whole stream (as in LUMP / DER)."""

from __future__ import annotations

from typing import Any

import torch
from torch import Tensor

__all__ = ["ReservoirBuffer"]


class ReservoirBuffer:
    """Fixed-capacity reservoir sample of every example seen so far, kept on one device.

    Each example of the stream is offered once (``add`` after every step); after ``n`` offers
    every example is in the buffer with probability ``min(1, capacity / n)``. Besides the raw
    input ``x`` the buffer can store any number of extra per-example tensors (a stored
    augmented view, features, logits, labels) given as keyword arguments to :meth:`add`.

    The update is vectorised on the device (no host synchronisation): the slot of the k-th
    example overall is ``j = floor(u · (k+1))`` with ``u ~ U[0, 1)``; it is stored when
    ``j < capacity``, and when several examples of one batch draw the same slot the last one
    wins, exactly as the sequential algorithm.

    Args:
        capacity: number of slots (> 0).
        device: where the storage lives (default: the device of the first ``add``).
    """

    def __init__(self, capacity: int, device: str | torch.device | None = None) -> None:
        if not isinstance(capacity, int) or isinstance(capacity, bool) or capacity <= 0:
            raise ValueError(f"capacity must be a positive int, got {capacity!r}")
        self.capacity = capacity
        self.device = torch.device(device) if device is not None else None
        self.seen = 0
        self._data: dict[str, Tensor] = {}
        #: write path: None = automatic (copy only accepted rows on CPU; on accelerators write
        #: every row, rejected ones into a scratch slot, so no host synchronisation happens)
        self.sync_free: bool | None = None

    # ----------------------------------------------------------------------------- basics
    def __len__(self) -> int:
        return min(self.seen, self.capacity)

    @property
    def keys(self) -> list[str]:
        """Names of the stored tensors (``"x"`` first)."""
        return list(self._data)

    def __getitem__(self, key: str) -> Tensor:
        """The filled part of one stored tensor, shape (len(self), ...)."""
        return self._data[key][: len(self)]

    def __repr__(self) -> str:
        return (f"ReservoirBuffer(capacity={self.capacity}, filled={len(self)}, seen={self.seen}, "
                f"keys={self.keys})")

    # ----------------------------------------------------------------------------- update
    def _allocate(self, tensors: dict[str, Tensor]) -> None:
        if self.device is None:
            self.device = tensors["x"].device
        for k, t in tensors.items():
            # one extra scratch row receives the writes of rejected examples
            self._data[k] = torch.zeros((self.capacity + 1, *t.shape[1:]), dtype=t.dtype,
                                        device=self.device)

    def add(self, x: Tensor, generator: torch.Generator | None = None, **extras: Tensor) -> None:
        """Offer a batch ``x`` (B, ...) and optional extras (B, ...) to the reservoir.

        ``generator`` (on the buffer's device) makes the slot draws reproducible.
        """
        tensors = {"x": x, **extras}
        b = x.shape[0] if x.dim() > 0 else -1
        for k, t in tensors.items():
            if not isinstance(t, Tensor):
                raise ValueError(f"{k} must be a tensor, got {type(t).__name__}")
            if t.dim() == 0 or t.shape[0] != b:
                raise ValueError(f"{k} must have the same leading (batch) size as x "
                                 f"({b}); got shape {tuple(t.shape)}")
        if b == 0:
            return
        if not self._data:
            self._allocate(tensors)
        elif set(tensors) != set(self._data):
            raise ValueError(f"add() got tensors {sorted(tensors)} but the buffer stores "
                             f"{sorted(self._data)}")
        for k, t in tensors.items():
            if t.shape[1:] != self._data[k].shape[1:]:
                raise ValueError(f"{k}: per-example shape {tuple(t.shape[1:])} does not match the "
                                 f"stored {tuple(self._data[k].shape[1:])}")
        tensors = {k: t.detach().to(self.device, self._data[k].dtype) for k, t in tensors.items()}

        # 1) fill phase: the first `capacity` examples of the stream go to slots seen, seen+1, ...
        n_fill = max(0, min(b, self.capacity - self.seen))
        if n_fill:
            for k, t in tensors.items():
                self._data[k][self.seen:self.seen + n_fill] = t[:n_fill]
        # 2) reservoir phase for the rest of the batch
        rest = b - n_fill
        if rest:
            first = self.seen + n_fill  # 0-based stream index of the first remaining example
            idx = torch.arange(first + 1, first + rest + 1, device=self.device,
                               dtype=torch.float64)
            u = torch.rand(rest, generator=generator, device=self.device, dtype=torch.float64)
            slot = torch.floor(u * idx).long()  # uniform in 0..(stream index)
            keep = slot < self.capacity
            sync_free = self.sync_free if self.sync_free is not None else self.device.type != "cpu"
            if not sync_free:
                # on the CPU a sync is free: resolve the few accepted examples on the host
                rows = torch.nonzero(keep).flatten()
                if rows.numel():
                    last = dict(zip(slot[rows].tolist(), rows.tolist()))  # last writer wins
                    tgt = torch.tensor(list(last.keys()), dtype=torch.long)
                    src = torch.tensor(list(last.values()), dtype=torch.long)
                    for k, t in tensors.items():
                        self._data[k].index_copy_(0, tgt, t[n_fill:][src])
            else:
                pos = torch.arange(rest, device=self.device)
                safe_slot = torch.where(keep, slot, 0)
                # several examples of this batch may draw the same slot: the last one wins
                winner = torch.full((self.capacity,), -1, dtype=torch.long, device=self.device)
                winner.scatter_reduce_(0, safe_slot, torch.where(keep, pos, -1), reduce="amax")
                won = keep & (winner[safe_slot] == pos)
                # losers write into the scratch row `capacity` (never read): no host sync
                tgt = torch.where(won, slot, self.capacity)
                for k, t in tensors.items():
                    self._data[k].index_copy_(0, tgt, t[n_fill:])
        self.seen += b

    # ----------------------------------------------------------------------------- sampling
    def sample_indices(self, n: int, generator: torch.Generator | None = None) -> Tensor:
        """``min(n, len(self))`` distinct slot indices drawn uniformly (long tensor on device)."""
        if n < 0:
            raise ValueError(f"n must be >= 0, got {n}")
        size = len(self)
        dev = self.device or torch.device("cpu")
        if size == 0 or n == 0:
            return torch.empty(0, dtype=torch.long, device=dev)
        return torch.randperm(size, generator=generator, device=dev)[: min(n, size)]

    def get(self, indices: Tensor) -> dict[str, Tensor]:
        """Stored tensors at ``indices``: ``{"x": (n, ...), <extra>: (n, ...)}``."""
        return {k: v[: len(self)][indices] for k, v in self._data.items()}

    def sample(self, n: int, generator: torch.Generator | None = None) -> dict[str, Tensor]:
        """``min(n, len(self))`` examples without replacement: ``{"x": ..., <extras>...}``."""
        if not self._data:
            if n < 0:
                raise ValueError(f"n must be >= 0, got {n}")
            return {}
        return self.get(self.sample_indices(n, generator))

    # ----------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        return {"capacity": self.capacity, "seen": self.seen,
                "data": {k: v[: len(self)].clone() for k, v in self._data.items()},
                "shapes": {k: (tuple(v.shape[1:]), v.dtype) for k, v in self._data.items()}}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state["capacity"] != self.capacity:
            raise ValueError(f"state has capacity {state['capacity']}, buffer has {self.capacity}")
        self.seen = int(state["seen"])
        self._data = {}
        dev = self.device
        for k, (shape, dtype) in state["shapes"].items():
            saved = state["data"][k]
            if dev is None:
                dev = self.device = saved.device
            buf = torch.zeros((self.capacity + 1, *shape), dtype=dtype, device=dev)
            buf[: saved.shape[0]] = saved.to(dev)
            self._data[k] = buf

    def to(self, device: str | torch.device) -> ReservoirBuffer:
        """Move the storage to ``device`` (in place; returns self)."""
        self.device = torch.device(device)
        self._data = {k: v.to(self.device) for k, v in self._data.items()}
        return self
