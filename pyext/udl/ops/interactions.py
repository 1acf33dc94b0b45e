"""Native ops of ``udl.interactions``: the fused context-sampling / masked-input writer and the
per-(pair, order) mean/variance reduction.

* :func:`masked_inputs` wraps ``torch.ops.udl.interaction_masked_inputs``.
* :func:`reduce_deltas` wraps ``torch.ops.udl.interaction_reduce``.

Both have fake kernels for ``torch.compile``. ``masked_inputs`` is differentiable with respect to
``x`` and ``baseline`` (its backward is the registered op
``udl::interaction_masked_inputs_backward``: each element's gradient goes to ``x`` where the
player is present in that term and to ``baseline`` where it is absent). ``reduce_deltas`` is a
measurement reduction without an autograd formula.
"""

from __future__ import annotations

import torch

__all__ = ["masked_inputs", "reduce_deltas", "num_context_words"]


def num_context_words(num_players: int) -> int:
    """Number of int64 words of one context bitset for ``num_players`` players."""
    return (int(num_players) + 63) // 64


def masked_inputs(
    x: torch.Tensor,
    baseline: torch.Tensor,
    player_map: torch.Tensor,
    pairs: torch.Tensor,
    rows: torch.Tensor,
    num_players: int,
    seed: int,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Draw contexts and write the 4 masked inputs of every row, in one pass.

    Args:
        x: ``Tensor[*F]`` floating, one input.
        baseline: ``Tensor[*F]`` same dtype, values that replace absent players.
        player_map: ``Tensor[*F]`` int64, the player of each element in ``[0, n)`` (``-1``: never
            masked).
        pairs: ``Tensor[P, 2]`` int64, pairs ``(i, j)`` with ``i != j``.
        rows: ``Tensor[R, 4]`` int64, one context per row: ``(pair index, m, k, enumerate)``.
            ``enumerate = 0`` draws a uniform random ``m``-subset of ``N \\ {i, j}`` keyed by
            ``(seed, i, j, m, k)``; ``enumerate = 1`` takes the ``k``-th subset in lexicographic
            order (``k < C(n - 2, m)``).
        num_players: ``n >= 2``.
        seed: key of the counter-based generator (same contexts on CPU and CUDA).

    Returns:
        ``masked``: ``Tensor[R, 4, *F]`` with the inputs for ``S ∪ {i, j}``, ``S ∪ {i}``,
        ``S ∪ {j}``, ``S``; ``contexts``: ``Tensor[R, ceil(n / 64)]`` int64 bitsets of ``S``.
    """
    return torch.ops.udl.interaction_masked_inputs(
        x, baseline, player_map, pairs, rows, int(num_players), int(seed)
    )


def reduce_deltas(values: torch.Tensor, offsets: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean and unbiased variance of ``Δ = v0 - v1 - v2 + v3`` per contiguous group of rows.

    Args:
        values: ``Tensor[R, 4]`` model values of the 4 masked inputs of each row.
        offsets: ``Tensor[G + 1]`` int64 CSR offsets (group ``g`` = rows
            ``offsets[g]:offsets[g + 1]``).

    Returns:
        ``(mean, var)``, each ``Tensor[G]`` (``var = 0`` for groups of fewer than 2 rows).
    """
    return torch.ops.udl.interaction_reduce(values, offsets)


@torch.library.register_fake("udl::interaction_masked_inputs")
def _masked_inputs_fake(x, baseline, player_map, pairs, rows, num_players, seed):
    torch._check(x.dtype.is_floating_point, lambda: f"x must be floating, got {x.dtype}")
    torch._check(baseline.shape == x.shape, lambda: "baseline must have the shape of x")
    torch._check(player_map.shape == x.shape, lambda: "player_map must have the shape of x")
    torch._check(rows.dim() == 2 and rows.shape[1] == 4, lambda: "rows must have shape [R, 4]")
    torch._check(num_players >= 2, lambda: "num_players must be >= 2")
    r = rows.shape[0]
    masked = x.new_empty((r, 4, *x.shape))
    contexts = x.new_empty((r, num_context_words(num_players)), dtype=torch.long)
    return masked, contexts


@torch.library.register_fake("udl::interaction_reduce")
def _reduce_fake(values, offsets):
    torch._check(values.dim() == 2 and values.shape[1] == 4, lambda: "values must be [R, 4]")
    torch._check(offsets.dim() == 1 and offsets.shape[0] >= 1, lambda: "offsets must be 1-D")
    g = offsets.shape[0] - 1
    return values.new_empty((g,)), values.new_empty((g,))


@torch.library.register_fake("udl::interaction_masked_inputs_backward")
def _masked_inputs_backward_fake(grad, contexts, player_map, pairs, rows, num_players):
    torch._check(grad.dim() >= 2 and grad.shape[1] == 4, lambda: "grad must be [R, 4, *F]")
    return grad.new_empty(player_map.shape), grad.new_empty(player_map.shape)


def _masked_setup_context(ctx, inputs, output):
    _, _, player_map, pairs, rows, num_players, _ = inputs
    ctx.save_for_backward(output[1], player_map, pairs, rows)
    ctx.num_players = num_players


def _masked_backward(ctx, grad_masked, grad_contexts):
    contexts, player_map, pairs, rows = ctx.saved_tensors
    if grad_masked is None:
        return None, None, None, None, None, None, None
    grad_x, grad_b = torch.ops.udl.interaction_masked_inputs_backward(
        grad_masked, contexts, player_map, pairs, rows, ctx.num_players)
    return (grad_x if ctx.needs_input_grad[0] else None,
            grad_b if ctx.needs_input_grad[1] else None, None, None, None, None, None)


torch.library.register_autograd("udl::interaction_masked_inputs", _masked_backward,
                                setup_context=_masked_setup_context)
