"""``ShuffleSampler``: a rank's per-epoch order over its own fixed shard, as a torch ``Sampler``."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import torch
from torch.utils.data import Sampler

from udl.shuffling.orders import check_scheme, orders

__all__ = ["ShuffleSampler"]


class ShuffleSampler(Sampler[int]):
    """Indices into this rank's **own fixed shard** of ``dataset_size`` items, one epoch at a time.

    This is the paper's setting: machine ``m`` keeps its ``N`` components for the whole run and
    only the order changes. Per epoch ``k`` it yields ``orders(scheme, world_size, N, k, seed)[rank]``:

    * ``"rr"``: an independent permutation per rank (local/minibatch RR);
    * ``"wr"``: ``N`` i.i.d. draws (with-replacement SGD baseline);
    * ``"syncshuf"``: one shared permutation, rank ``m`` starting at offset ``(N/M) pi(m)``;
    * ``"same"``: the same permutation on every rank (what a shared ``torch.manual_seed`` with
      ``DataLoader(shuffle=True)`` gives: effectively one machine on homogeneous data).

    Unlike ``torch.utils.data.DistributedSampler`` -- which draws one permutation of the *pooled*
    dataset per epoch and deals it out strided (``indices[rank::world_size]``), i.e. single-machine
    minibatch RR on the pooled ``M*N`` items, with padding when the size does not divide -- every
    index yielded here refers to the rank's local dataset, shards never move, the ranks' orders are
    independent (or coupled by SyncShuf), and nothing is padded or dropped. The same ``seed`` must
    be passed on every rank (the per-rank streams are derived from it). Call :meth:`set_epoch`
    before each epoch, as with ``DistributedSampler``.

    Args:
        dataset_size: ``N``, the number of items in this rank's shard.
        scheme: ``"rr"``, ``"wr"``, ``"syncshuf"`` or ``"same"``.
        rank, world_size: default to the initialised process group (else 0 and 1).
        seed: shared non-negative seed.
    """

    def __init__(self, dataset_size: int, scheme: str = "rr", rank: int | None = None,
                 world_size: int | None = None, seed: int = 0):
        check_scheme(scheme)
        if rank is None or world_size is None:
            import torch.distributed as dist

            initialised = dist.is_available() and dist.is_initialized()
            if world_size is None:
                world_size = dist.get_world_size() if initialised else 1
            if rank is None:
                rank = dist.get_rank() if initialised else 0
        if not isinstance(dataset_size, int) or dataset_size < 1:
            raise ValueError(f"dataset_size must be an integer >= 1, got {dataset_size!r}")
        if not isinstance(world_size, int) or world_size < 1:
            raise ValueError(f"world_size must be an integer >= 1, got {world_size!r}")
        if not isinstance(rank, int) or not 0 <= rank < world_size:
            raise ValueError(f"rank must be in [0, world_size={world_size}), got {rank!r}")
        if scheme == "syncshuf" and dataset_size % world_size:
            raise ValueError(f"scheme 'syncshuf' needs world_size to divide dataset_size, got "
                             f"world_size={world_size}, dataset_size={dataset_size}")
        if not isinstance(seed, int) or seed < 0:
            raise ValueError(f"seed must be a non-negative integer, got {seed!r}")
        self.dataset_size = dataset_size
        self.scheme = scheme
        self.rank = rank
        self.world_size = world_size
        self.seed = seed
        self.epoch = 0

    def set_epoch(self, epoch: int) -> None:
        if not isinstance(epoch, int) or epoch < 0:
            raise ValueError(f"epoch must be a non-negative integer, got {epoch!r}")
        self.epoch = epoch

    def indices(self, epoch: int | None = None) -> torch.Tensor:
        """This rank's order for ``epoch`` (default: the current one) as a LongTensor ``[N]``."""
        return orders(self.scheme, self.world_size, self.dataset_size,
                      self.epoch if epoch is None else epoch, self.seed, machine=self.rank)

    def __iter__(self) -> Iterator[int]:
        return iter(self.indices().tolist())

    def __len__(self) -> int:
        return self.dataset_size

    def state_dict(self) -> dict[str, Any]:
        return {"epoch": self.epoch, "seed": self.seed, "scheme": self.scheme,
                "rank": self.rank, "world_size": self.world_size,
                "dataset_size": self.dataset_size}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for key in ("seed", "scheme", "world_size", "dataset_size"):
            if state[key] != getattr(self, key):
                raise ValueError(f"sampler state mismatch on {key!r}: checkpoint has "
                                 f"{state[key]!r}, this run {getattr(self, key)!r}")
        self.set_epoch(int(state["epoch"]))

    def __repr__(self) -> str:
        return (f"ShuffleSampler(N={self.dataset_size}, scheme={self.scheme!r}, rank={self.rank}, "
                f"world_size={self.world_size}, seed={self.seed}, epoch={self.epoch})")
