"""Other higher-order layers on dense k-tuple features: k-IGN (Maron et al. 2019) and k-GNN
(Morris et al. 2019, oblivious tuple version). Their TL forms are in ``udl.tl.architectures``."""

from __future__ import annotations

import string
from collections.abc import Iterator

import torch
from torch import nn

from udl.gnn.dense import tuple_mask
from udl.gnn.kmpnn import _check_int, mlp

__all__ = ["set_partitions", "IGNLayer", "KGNNLayer", "ign_basis"]


def set_partitions(n: int) -> Iterator[tuple[tuple[int, ...], ...]]:
    """All partitions of ``{0, ..., n-1}`` (Bell(n) of them) in a fixed canonical order."""
    def rec(i: int, blocks: list[list[int]]) -> Iterator[tuple[tuple[int, ...], ...]]:
        if i == n:
            yield tuple(tuple(b) for b in blocks)
            return
        for b in blocks:
            b.append(i)
            yield from rec(i + 1, blocks)
            b.pop()
        blocks.append([i])
        yield from rec(i + 1, blocks)
        blocks.pop()

    yield from rec(0, [])


def ign_basis(k: int) -> tuple[list, list]:
    """Basis of linear equivariant maps k-tensor → k-tensor: partitions of the 2k positions
    (outputs 0..k-1, inputs k..2k-1), and of the bias maps: partitions of the k output positions."""
    return list(set_partitions(2 * k)), list(set_partitions(k))


def _letters(n: int) -> str:
    return string.ascii_lowercase[:n]


class IGNLayer(nn.Module):
    """k-IGN layer: ``relu(Lin(cat[op_1(F), ..., op_m(F), bias_1, ..., bias_b]))`` where ``op_p``
    ranges over the Bell(2k) basis maps of linear permutation-equivariant k-tensor maps (15 for k=2,
    203 for k=3) and ``bias_β`` over the Bell(k) equivariant constants (2 for k=2, 5 for k=3).

    Basis map of a partition p of the 2k positions: positions in one block share a vertex; blocks
    with input positions only are summed over; output positions in one block are tied by equality.

    Shapes: ``h [B, N^k, C_in]``, ``mask [B, N]`` (optional) → ``[B, N^k, C_out]``.
    """

    def __init__(self, k: int, in_channels: int, out_channels: int, activation: bool = True) -> None:
        super().__init__()
        if k not in (1, 2, 3):
            raise ValueError(f"k: expected 1, 2 or 3, got {k!r}")
        _check_int("in_channels", in_channels)
        _check_int("out_channels", out_channels)
        self.k, self.in_channels, self.out_channels = k, in_channels, out_channels
        self.activation = activation
        self.ops, self.biases = ign_basis(k)
        self.mix = nn.Linear(len(self.ops) * in_channels + len(self.biases), out_channels)

    def extra_repr(self) -> str:
        return (f"k={self.k}, {self.in_channels}, {self.out_channels}, basis={len(self.ops)}+"
                f"{len(self.biases)}")

    def _op(self, h: torch.Tensor, part: tuple[tuple[int, ...], ...], eye: torch.Tensor,
            ones: torch.Tensor) -> torch.Tensor:
        k = self.k
        block_of = {p: bi for bi, b in enumerate(part) for p in b}
        letters = _letters(len(part) + k)
        extra = iter(letters[len(part):])
        in_sub = "".join(letters[block_of[k + i]] for i in range(k))
        operands, subs = [h], ["Z" + in_sub + "Y"]
        out_sub = []
        first_out: dict[int, str] = {}
        for o in range(k):
            bi = block_of[o]
            if bi not in first_out:
                first_out[bi] = letters[bi]
                out_sub.append(letters[bi])
                if letters[bi] not in in_sub:  # output-only block: broadcast
                    operands.append(ones)
                    subs.append(letters[bi])
            else:  # tied to an earlier output position of the same block
                c = next(extra)
                operands.append(eye)
                subs.append(first_out[bi] + c)
                out_sub.append(c)
        spec = ",".join(subs) + "->Z" + "".join(out_sub) + "Y"
        return torch.einsum(spec, *operands)

    def _bias(self, part: tuple[tuple[int, ...], ...], b: int, n: int, eye: torch.Tensor,
              ref: torch.Tensor) -> torch.Tensor:
        k = self.k
        out = torch.ones([b] + [n] * k + [1], dtype=ref.dtype, device=ref.device)
        for block in part:
            for o in block[1:]:
                shape = [1] * (k + 2)
                shape[1 + block[0]] = n
                shape[1 + o] = n
                out = out * eye.reshape(shape)
        return out

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        k = self.k
        if h.dim() != k + 2 or h.shape[-1] != self.in_channels:
            raise ValueError(f"h: expected [B, N^{k}, {self.in_channels}], got shape {tuple(h.shape)}")
        b, n = h.shape[0], h.shape[1]
        eye = torch.eye(n, dtype=h.dtype, device=h.device)
        ones = torch.ones(n, dtype=h.dtype, device=h.device)
        tm = None
        if mask is not None:
            tm = tuple_mask(mask, k)[..., None].to(h.dtype)
            h = h * tm
        parts = [self._op(h, p, eye, ones) for p in self.ops]
        parts += [self._bias(p, b, n, eye, h) for p in self.biases]
        out = self.mix(torch.cat(parts, dim=-1))
        if self.activation:
            out = torch.relu(out)
        return out * tm if tm is not None else out

    def tl_function(self):
        """The function ``mix`` of ``udl.tl.architectures.ign`` (linear mix + activation)."""
        return (lambda t: torch.relu(self.mix(t))) if self.activation else self.mix


class KGNNLayer(nn.Module):
    """Oblivious k-GNN layer (Morris et al. 2019 on tuples):
    ``F'(x) = mlp(cat[F(x), Σ_y F(x[y/1]), ..., Σ_y F(x[y/k])])`` — a neural k-OWL, in TL_k.

    Shapes: ``h [B, N^k, C_in]``, ``mask [B, N]`` (optional) → ``[B, N^k, C_out]``.
    """

    def __init__(self, k: int, in_channels: int, out_channels: int, hidden: int | None = None) -> None:
        super().__init__()
        if k not in (1, 2, 3):
            raise ValueError(f"k: expected 1, 2 or 3, got {k!r}")
        _check_int("in_channels", in_channels)
        _check_int("out_channels", out_channels)
        hidden = out_channels if hidden is None else _check_int("hidden", hidden)
        self.k = k
        self.mlp = mlp((k + 1) * in_channels, hidden, out_channels, final_relu=True)

    def forward(self, h: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
        k = self.k
        if h.dim() != k + 2:
            raise ValueError(f"h: expected [B, N^{k}, C] with {k + 2} dims, got shape {tuple(h.shape)}")
        tm = tuple_mask(mask, k)[..., None].to(h.dtype) if mask is not None else None
        if tm is not None:
            h = h * tm
        parts = [h] + [h.sum(1 + i, keepdim=True).expand_as(h) for i in range(k)]
        out = self.mlp(torch.cat(parts, dim=-1))
        return out * tm if tm is not None else out
