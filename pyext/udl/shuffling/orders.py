"""Per-epoch index orders shared by the simulator, the samplers and the distributed trainer.

Every order is a pure function of ``(scheme, M, N, epoch, seed)`` computed with a small
counter-based hash (no stateful RNG), so that

* a rank can compute its own row without talking to anybody (no broadcast of permutations),
* the simulator can compute the orders of thousands of seeds in one vectorised call, and
* a resumed run draws exactly the orders it would have drawn without interruption.

A random permutation is obtained by sorting 32-bit keys ``h(seed, epoch, stream, machine, i)``
(int64 tensors holding 32-bit words, every product kept below 2**63);
for fixed ``(seed, epoch, stream, machine)`` the map ``i -> h`` is injective (a composition of
bijections of 32-bit words), so the keys of one row never tie.
"""

from __future__ import annotations

import torch

__all__ = ["SCHEMES", "orders", "orders_block", "check_scheme"]

SCHEMES = ("rr", "wr", "syncshuf", "same")

_M32 = 0xFFFFFFFF
# Domain separation of the independent streams.
_STREAM = {"rr": 1, "sigma": 2, "pi": 3, "wr": 4, "same": 5}


def check_scheme(scheme: str) -> str:
    if scheme not in SCHEMES:
        raise ValueError(f"scheme must be one of {SCHEMES}, got {scheme!r}")
    return scheme


def _fmix32(x: torch.Tensor) -> torch.Tensor:
    """A 32-bit integer finaliser (a bijection of 32-bit words; "lowbias32" constants from
    Wellons' hash-prospector). Both multipliers are below 2**31, so ``x * c < 2**63`` never
    overflows int64 and ``& 0xFFFFFFFF`` gives the product mod 2**32 exactly."""
    x = x ^ (x >> 16)
    x = (x * 0x21F0AAAD) & _M32
    x = x ^ (x >> 15)
    x = (x * 0x735A2D97) & _M32
    return x ^ (x >> 15)


def _absorb(h: torch.Tensor, word: torch.Tensor | int, salt: int) -> torch.Tensor:
    """Mix one 32-bit word into the running hash ``h`` (broadcasting)."""
    if not isinstance(word, torch.Tensor):
        word = torch.tensor(int(word) & _M32, dtype=torch.int64)
    w = _fmix32((word + salt) & _M32)
    return _fmix32(h ^ w)


def _prefix(seed: torch.Tensor, epochs: torch.Tensor, stream: str) -> torch.Tensor:
    """Hash state after absorbing (stream, epoch, seed): ``[E, S]``."""
    h = torch.full((epochs.numel(), 1), 0x9E3779B9, dtype=torch.int64)
    h = _absorb(h, _STREAM[stream], 0x7F4A7C15)
    h = _absorb(h, epochs.view(-1, 1), 0x2545F491)
    h = _absorb(h, (seed & _M32).view(1, -1), 0x1B873593)
    return _absorb(h, (seed >> 32).view(1, -1), 0x68E31DA4)


def _keys(seed: torch.Tensor, epochs: torch.Tensor, stream: str, rows: torch.Tensor | int,
          n: int) -> torch.Tensor:
    """Keys ``[E, S, R, n]`` for epochs ``[E]``, seeds ``[S]`` and rows ``[R]`` (or one row)."""
    h = _prefix(seed, epochs, stream)[..., None]  # [E, S, 1]
    rows_t = torch.as_tensor(rows, dtype=torch.int64).reshape(1, 1, -1)  # [1, 1, R]
    h = _absorb(h, rows_t, 0x3C6EF372)[..., None]  # [E, S, R, 1]
    i = torch.arange(n, dtype=torch.int64)
    return _absorb(h, i, 0x165667B1)  # [E, S, R, n]


def _perm(seed: torch.Tensor, epochs: torch.Tensor, stream: str, rows, n: int) -> torch.Tensor:
    return torch.argsort(_keys(seed, epochs, stream, rows, n), dim=-1)


def orders_block(scheme: str, M: int, N: int, epochs: torch.Tensor, seeds: torch.Tensor,
                 rows: torch.Tensor | None = None) -> torch.Tensor:
    """Orders of many epochs and seeds at once: LongTensor ``[E, S, R, N]``.

    ``epochs [E]`` and ``seeds [S]`` are LongTensors, ``rows [R]`` the machines (default all).
    No argument checking: see :func:`orders`, which this vectorises
    (``orders_block(...)[e, s, r] == orders(scheme, M, N, epochs[e], seeds[s], rows[r])``).
    """
    epochs = epochs.to(torch.int64).reshape(-1)
    seeds = seeds.to(torch.int64).reshape(-1)
    rows = torch.arange(M) if rows is None else rows.to(torch.int64).reshape(-1)
    R = rows.numel()
    if scheme == "rr":
        return _perm(seeds, epochs, "rr", rows, N)
    if scheme == "wr":
        h = _keys(seeds, epochs, "wr", rows, N)
        return (_fmix32(h ^ 0x5BD1E995) * N) >> 32  # uniform in [0, N) (bias <= N / 2**32)
    if scheme == "same":
        return _perm(seeds, epochs, "same", 0, N).expand(-1, -1, R, -1).clone()
    # syncshuf
    sigma = _perm(seeds, epochs, "sigma", 0, N)[:, :, 0]  # [E, S, N]
    pi = _perm(seeds, epochs, "pi", 0, M)[:, :, 0]  # [E, S, M]
    shift = (N // M) * pi[:, :, rows]  # [E, S, R]
    pos = (torch.arange(N) + shift[..., None]) % N  # [E, S, R, N]
    return torch.gather(sigma[:, :, None, :].expand(-1, -1, R, -1), 3, pos)


def orders(scheme: str, M: int, N: int, epoch: int, seed: int | torch.Tensor,
           machine: int | None = None) -> torch.Tensor:
    """The component order of every machine in one epoch.

    Args:
        scheme: ``"rr"`` (an independent uniform permutation per machine),
            ``"wr"`` (``N`` i.i.d. uniform indices per machine: the with-replacement baseline),
            ``"syncshuf"`` (one shared permutation ``sigma`` and machine permutation ``pi``;
            machine ``m`` walks ``sigma`` cyclically from offset ``(N/M)*pi(m)``; needs ``M | N``),
            ``"same"`` (every machine the same permutation: the classic seeding pitfall).
        M: number of machines (world size), ``>= 1``.
        N: number of components per machine, ``>= 1``.
        epoch: epoch index ``k >= 0``.
        seed: a non-negative int, or a LongTensor ``[S]`` of seeds (vectorised).
        machine: return only this machine's row.

    Returns:
        LongTensor ``[M, N]`` (``[N]`` with ``machine``); with a seed tensor ``[S, M, N]``
        (``[S, N]``). Deterministic in ``(scheme, M, N, epoch, seed, machine)``.
    """
    check_scheme(scheme)
    for name, v in (("M", M), ("N", N)):
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(f"{name} must be an integer >= 1, got {v!r}")
    if not isinstance(epoch, int) or not 0 <= epoch <= _M32:
        raise ValueError(f"epoch must be an integer in [0, 2**32), got {epoch!r}")
    if scheme == "syncshuf" and N % M != 0:
        raise ValueError(f"scheme 'syncshuf' needs M to divide N, got M={M}, N={N}")
    if machine is not None and not 0 <= machine < M:
        raise ValueError(f"machine must be in [0, M={M}), got {machine}")
    scalar = not isinstance(seed, torch.Tensor)
    if scalar:
        if not isinstance(seed, int) or seed < 0 or seed >= 2**63:
            raise ValueError(f"seed must be an integer in [0, 2**63), got {seed!r}")
        seeds = torch.tensor([seed], dtype=torch.int64)
    else:
        seeds = seed.to(torch.int64).reshape(-1)
        if seeds.numel() and int(seeds.min()) < 0:
            raise ValueError("seed must be non-negative")
    rows = None if machine is None else torch.tensor([machine])
    out = orders_block(scheme, M, N, torch.tensor([epoch]), seeds, rows)[0]  # [S, R, N]
    if machine is not None:
        out = out[:, 0]
    return out[0] if scalar else out
