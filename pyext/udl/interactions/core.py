"""Multi-order interactions I^(m)(i, j) of any PyTorch model, estimated with the fused kernels.

Definitions (Deng et al., ICLR 2022, "Discovering and Explaining the Representation Bottleneck of
DNNs"): players N = {0..n-1} are parts of the input (grid cells, tokens, features); v(S) is the
model score on the input where every player outside S is replaced by the baseline;

    Δ(i, j, S) = v(S ∪ {i, j}) − v(S ∪ {i}) − v(S ∪ {j}) + v(S),
    I^(m)(i, j) = E_{S ⊆ N \\ {i, j}, |S| = m} Δ(i, j, S),        m = 0 .. n − 2,
    J^(m) = E_{x, (i, j)} |I^(m)(i, j)| / mean over the evaluated orders of the same quantity.
"""

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Callable, Sequence

import torch

from udl.ops import interactions as _ops

__all__ = [
    "ORDER_RATIOS",
    "InteractionResult",
    "grid_players",
    "resolve_players",
    "resolve_baseline",
    "resolve_orders",
    "sample_pairs",
    "value_from_logits",
    "multi_order_interaction",
]

#: The 13 order ratios of the official protocol: m = floor((n − 2) · r).
ORDER_RATIOS: tuple[float, ...] = (0.0, 0.05, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95,
                                   1.0)

ValueFn = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Baseline = str | float | torch.Tensor


# ----------------------------------------------------------------------------------------------
# players, baselines, orders, pairs
# ----------------------------------------------------------------------------------------------
def grid_players(H: int, W: int, grid: int | tuple[int, int]) -> torch.Tensor:
    """Player map of a ``grid × grid`` (or ``(gh, gw)``) grid of cells over an ``H × W`` image.

    Returns:
        ``Tensor[H, W]`` int64; pixel ``(y, x)`` belongs to cell
        ``(y · gh // H) · gw + (x · gw // W)`` (row-major cells, nearest-neighbour upsampling of a
        ``gh × gw`` mask, as in the official code).
    """
    gh, gw = (grid, grid) if isinstance(grid, int) else tuple(grid)
    if H < 1 or W < 1:
        raise ValueError(f"H and W must be >= 1, got H={H}, W={W}")
    if not (1 <= gh <= H and 1 <= gw <= W):
        raise ValueError(f"grid must be in [1, H] x [1, W] = [1, {H}] x [1, {W}], got {(gh, gw)}")
    if gh * gw < 2:
        raise ValueError(f"grid {(gh, gw)} gives fewer than 2 players")
    rows = torch.arange(H) * gh // H
    cols = torch.arange(W) * gw // W
    return rows[:, None] * gw + cols[None, :]


def resolve_players(players: torch.Tensor | int | tuple[int, int],
                    sample_shape: Sequence[int]) -> tuple[torch.Tensor, int]:
    """Full player map ``Tensor[*F]`` for one sample of shape ``F`` and the number of players.

    ``players`` is an int tensor broadcastable to ``F`` (``-1`` = never masked), or an int /
    ``(gh, gw)`` grid over the last two dimensions of ``F`` (channel-shared, like the official code).
    """
    sample_shape = tuple(int(s) for s in sample_shape)
    if isinstance(players, (int, tuple)) and not isinstance(players, bool):
        if len(sample_shape) < 2:
            raise ValueError(f"players={players!r} (a grid) needs inputs with >= 2 dims per sample, "
                             f"got sample shape {sample_shape}")
        pmap = grid_players(sample_shape[-2], sample_shape[-1], players)
    elif isinstance(players, torch.Tensor):
        if players.dtype.is_floating_point or players.dtype == torch.bool:
            raise ValueError(f"players must be an integer tensor, got {players.dtype}")
        pmap = players.to(torch.long).cpu()
    else:
        raise ValueError(f"players must be an int tensor or a grid size, got {type(players)}")
    try:
        pmap = torch.broadcast_to(pmap, sample_shape).contiguous()
    except RuntimeError as exc:
        raise ValueError(f"players of shape {tuple(pmap.shape)} does not broadcast to the sample "
                         f"shape {sample_shape}") from exc
    if pmap.numel() == 0:
        raise ValueError("players: the input has no elements")
    if int(pmap.min()) < -1:
        raise ValueError(f"players ids must be >= -1 (-1 = never masked), got {int(pmap.min())}")
    n = int(pmap.max()) + 1
    if n < 2:
        raise ValueError(f"need at least n = 2 players, got n = {n}")
    return pmap, n


def resolve_baseline(baseline: Baseline, x: torch.Tensor) -> torch.Tensor:
    """Baseline values ``Tensor[N, *F]`` for a batch ``x`` of shape ``[N, *F]``.

    * ``"zero"``: zeros.
    * ``"mean"``: the mean over the batch and every dimension except dim 1 (per-channel mean of
      images ``[N, C, H, W]``, per-feature mean of tabular ``[N, d]``) — the official choice
      (absent players are 0 after mean/std normalisation, i.e. the dataset-mean colour).
    * a float: that constant.
    * a tensor broadcastable to ``[*F]`` (shared) or ``[N, *F]`` (per sample).
    """
    if isinstance(baseline, str):
        if baseline == "zero":
            return torch.zeros_like(x)
        if baseline == "mean":
            if x.dim() < 2:
                raise ValueError("baseline='mean' needs x of shape [N, *F] with at least 1 "
                                 "feature dim")
            dims = [0] + list(range(2, x.dim()))
            return x.mean(dim=dims, keepdim=True).expand_as(x).contiguous()
        raise ValueError(f"baseline must be 'zero', 'mean', a float or a tensor, got {baseline!r}")
    if isinstance(baseline, (int, float)) and not isinstance(baseline, bool):
        return torch.full_like(x, float(baseline))
    if isinstance(baseline, torch.Tensor):
        b = baseline.to(device=x.device, dtype=x.dtype)
        try:
            return torch.broadcast_to(b, x.shape).contiguous()
        except RuntimeError as exc:
            raise ValueError(f"baseline of shape {tuple(b.shape)} does not broadcast to x "
                             f"{tuple(x.shape)}") from exc
    raise ValueError(f"baseline must be 'zero', 'mean', a float or a tensor, got {type(baseline)}")


def resolve_orders(orders: Sequence[float] | Sequence[int] | torch.Tensor | None,
                   n: int) -> torch.Tensor:
    """Sorted unique orders ``Tensor[M]`` int64 in ``[0, n − 2]``.

    Floats are ratios ``r ∈ [0, 1]`` mapped to ``m = floor((n − 2) · r)`` (official convention);
    ints are orders. ``None`` means :data:`ORDER_RATIOS`.
    """
    if orders is None:
        orders = ORDER_RATIOS
    t = torch.as_tensor(orders)
    if t.dim() != 1 or t.numel() == 0:
        raise ValueError(f"orders must be a non-empty 1-D sequence, got {orders!r}")
    if t.dtype.is_floating_point:
        if bool(((t < 0) | (t > 1)).any()):
            raise ValueError(f"order ratios must be in [0, 1], got {t.tolist()}")
        m = torch.floor(t.double() * (n - 2) + 1e-9).long()
    else:
        m = t.long()
        bad = (m < 0) | (m > n - 2)
        if bool(bad.any()):
            raise ValueError(f"orders must be in [0, n-2] = [0, {n - 2}], got {m[bad].tolist()}")
    uniq = torch.unique(m)
    if uniq.numel() < m.numel():
        warnings.warn(f"orders: {m.numel() - uniq.numel()} duplicate order(s) after conversion "
                      f"were dropped; evaluating {uniq.tolist()}", stacklevel=3)
    return uniq


def _player_coords(pmap: torch.Tensor, n: int) -> torch.Tensor:
    """Rank coordinates ``[n, d]`` of each player's centroid (d = 2 for images, 1 otherwise)."""
    grid = pmap
    while grid.dim() > 2:  # players are shared over leading (channel) dims: use one slice
        grid = grid[0]
    if grid.dim() == 2 and min(grid.shape) == 1:
        grid = grid.reshape(-1)
    coords = torch.stack(torch.meshgrid(*[torch.arange(s) for s in grid.shape], indexing="ij"),
                         dim=-1).reshape(-1, grid.dim()).double()
    ids = grid.reshape(-1)
    keep = ids >= 0
    sums = torch.zeros(n, grid.dim(), dtype=torch.float64).index_add_(0, ids[keep], coords[keep])
    counts = torch.zeros(n, dtype=torch.float64).index_add_(
        0, ids[keep], torch.ones(int(keep.sum()), dtype=torch.float64))
    cent = sums / counts.clamp_min(1)[:, None]
    ranks = []
    for d in range(cent.shape[1]):
        uniq = torch.unique(torch.round(cent[:, d] * 1e6) / 1e6)
        ranks.append(torch.searchsorted(uniq, torch.round(cent[:, d] * 1e6) / 1e6))
    return torch.stack(ranks, dim=1)


def sample_pairs(player_map: torch.Tensor, num_pairs: int, mode: str = "local", radius: int = 2,
                 generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw distinct unordered pairs of players ``Tensor[P, 2]`` (``i < j``) without replacement.

    * ``"local"``: uniform over the pairs whose cells are within Chebyshev distance ``radius`` on
      the player grid (grid positions are the ranks of the cells' centroids; 1-D maps use the
      index distance) — the official code's neighbouring pairs.
    * ``"uniform"``: uniform over all ``C(n, 2)`` pairs.

    Asking for more pairs than exist returns all of them, with a warning.
    """
    pmap = player_map.cpu()
    n = int(pmap.max()) + 1
    if num_pairs < 1:
        raise ValueError(f"num_pairs must be >= 1, got {num_pairs}")
    if mode == "local":
        if radius < 1:
            raise ValueError(f"radius must be >= 1, got {radius}")
        c = _player_coords(pmap, n)
        a, b = torch.triu_indices(n, n, offset=1)
        cheb = (c[a] - c[b]).abs().amax(dim=1)
        ok = cheb <= radius
        cand = torch.stack([a[ok], b[ok]], dim=1)
    elif mode == "uniform":
        total = n * (n - 1) // 2
        if total > 8_000_000:
            return _sample_uniform_pairs_large(n, num_pairs, generator)
        a, b = torch.triu_indices(n, n, offset=1)
        cand = torch.stack([a, b], dim=1)
    else:
        raise ValueError(f"pairs must be 'local', 'uniform' or a tensor, got {mode!r}")
    if cand.shape[0] == 0:
        raise ValueError(f"no pair of players satisfies pairs={mode!r} with radius={radius}")
    if num_pairs > cand.shape[0]:
        warnings.warn(f"num_pairs={num_pairs} exceeds the {cand.shape[0]} available {mode} pairs; "
                      "using all of them", stacklevel=3)
        num_pairs = cand.shape[0]
    pick = torch.randperm(cand.shape[0], generator=generator)[:num_pairs]
    return cand[pick].contiguous()


def _sample_uniform_pairs_large(n: int, num_pairs: int,
                                generator: torch.Generator | None) -> torch.Tensor:
    seen: set[tuple[int, int]] = set()
    out: list[tuple[int, int]] = []
    while len(out) < num_pairs:
        ij = torch.randint(0, n, (2 * num_pairs, 2), generator=generator).tolist()
        for i, j in ij:
            key = (min(i, j), max(i, j))
            if i != j and key not in seen:
                seen.add(key)
                out.append(key)
                if len(out) == num_pairs:
                    break
    return torch.tensor(out, dtype=torch.long)


def _check_pairs(pairs: torch.Tensor, n: int) -> torch.Tensor:
    if pairs.dtype.is_floating_point or pairs.dim() != 2 or pairs.shape[1] != 2:
        raise ValueError(f"pairs must be an int tensor of shape [P, 2], got {pairs.dtype} "
                         f"{tuple(pairs.shape)}")
    if pairs.shape[0] == 0:
        raise ValueError("pairs is empty: need at least one pair")
    pairs = pairs.long().cpu()
    if bool(((pairs < 0) | (pairs >= n)).any()):
        raise ValueError(f"pairs must name players in [0, n) = [0, {n}), got "
                         f"{pairs[((pairs < 0) | (pairs >= n)).any(1)][:3].tolist()}")
    if bool((pairs[:, 0] == pairs[:, 1]).any()):
        raise ValueError(f"pairs must have i != j, got {pairs[pairs[:, 0] == pairs[:, 1]][:3].tolist()}")
    return pairs.contiguous()


# ----------------------------------------------------------------------------------------------
# value functions
# ----------------------------------------------------------------------------------------------
def value_from_logits(outputs: torch.Tensor, target: torch.Tensor,
                      kind: str = "log-odds") -> torch.Tensor:
    """Scalar value per row from model outputs ``[B, C]`` and targets ``[B]``.

    * ``"log-odds"``: ``z_y − logsumexp_{c ≠ y} z_c`` = log(p_y / (1 − p_y)) (official default).
      A single-logit binary model (``C = 1``) gives ``±z``.
    * ``"logit"``: ``z_y``.  * ``"log-prob"``: ``log softmax(z)_y``.
    * ``"output"``: a scalar model output ``[B]`` or ``[B, 1]`` as is.
    """
    if kind == "output":
        if outputs.dim() == 2 and outputs.shape[1] == 1:
            return outputs[:, 0]
        if outputs.dim() != 1:
            raise ValueError(f"value='output' needs model outputs [B] or [B, 1], got "
                             f"{tuple(outputs.shape)}")
        return outputs
    if outputs.dim() != 2:
        raise ValueError(f"value={kind!r} needs model outputs of shape [B, C], got "
                         f"{tuple(outputs.shape)}")
    if outputs.shape[1] == 1:
        z = outputs[:, 0]
        sign = target.to(z.dtype) * 2 - 1
        if kind == "log-odds":
            return sign * z
        if kind == "logit":
            return sign * z
        if kind == "log-prob":
            return torch.nn.functional.logsigmoid(sign * z)
        raise ValueError(f"unknown value {kind!r}")
    t = target.long().view(-1, 1)
    zy = outputs.gather(1, t)[:, 0]
    if kind == "log-odds":
        others = outputs.scatter(1, t, float("-inf"))
        return zy - torch.logsumexp(others, dim=1)
    if kind == "logit":
        return zy
    if kind == "log-prob":
        return zy - torch.logsumexp(outputs, dim=1)
    raise ValueError(f"value must be 'log-odds', 'logit', 'log-prob', 'output' or a callable, "
                     f"got {kind!r}")


# ----------------------------------------------------------------------------------------------
# result
# ----------------------------------------------------------------------------------------------
@dataclasses.dataclass
class InteractionResult:
    """Estimated multi-order interactions of ``N`` inputs, ``P`` pairs each, ``M`` orders.

    Attributes:
        I: ``Tensor[N, P, M]`` float64, Î^(m)(i, j): mean of Δ over the sampled contexts.
        stderr: ``Tensor[N, P, M]``, σ̂/√K (0 where every context was enumerated: exact).
        pairs: ``Tensor[N, P, 2]`` the pairs (i < j for sampled pairs).
        orders: ``Tensor[M]`` the orders m.
        num_contexts: ``Tensor[M]`` contexts K_m used per (pair, order) (capped at C(n−2, m)).
        exact: ``Tensor[M]`` bool, True where all C(n−2, m) contexts were enumerated.
        num_players: n.
        num_forwards: model inputs evaluated in total.
    """

    I: torch.Tensor
    stderr: torch.Tensor
    pairs: torch.Tensor
    orders: torch.Tensor
    num_contexts: torch.Tensor
    exact: torch.Tensor
    num_players: int
    num_forwards: int

    @property
    def strength(self) -> torch.Tensor:
        """``Tensor[M]``: mean over inputs and pairs of |Î^(m)| (abs after the context mean)."""
        return self.I.abs().mean(dim=(0, 1))

    @property
    def J(self) -> torch.Tensor:
        """``Tensor[M]``: relative strength J^(m), normalised to mean 1 over the evaluated orders."""
        s = self.strength
        return s / s.mean().clamp_min(torch.finfo(s.dtype).tiny)

    @property
    def noise_floor(self) -> torch.Tensor:
        """``Tensor[M]``: mean σ̂/√K per order, in the units of :attr:`strength`."""
        return self.stderr.mean(dim=(0, 1))

    @property
    def J_noise_floor(self) -> torch.Tensor:
        """``Tensor[M]``: :attr:`noise_floor` on the scale of :attr:`J`."""
        return self.noise_floor / self.strength.mean().clamp_min(torch.finfo(self.I.dtype).tiny)

    @property
    def debiased_strength(self) -> torch.Tensor:
        """``Tensor[M]``: mean of sqrt(max(Î² − σ̂²/K, 0)), removing the upward bias of |Î|."""
        return (self.I.square() - self.stderr.square()).clamp_min(0).sqrt().mean(dim=(0, 1))

    @property
    def J_debiased(self) -> torch.Tensor:
        s = self.debiased_strength
        return s / s.mean().clamp_min(torch.finfo(s.dtype).tiny)

    def mean_interaction(self) -> torch.Tensor:
        """``Tensor[N, P]``: uniform average of Î over the evaluated orders (the Shapley
        interaction index when every order 0..n−2 was evaluated)."""
        return self.I.mean(dim=-1)


# ----------------------------------------------------------------------------------------------
# the estimator
# ----------------------------------------------------------------------------------------------
def _contexts_per_order(orders: torch.Tensor, n: int, num_contexts: int) -> tuple[list[int], list[bool]]:
    ks, exact = [], []
    for m in orders.tolist():
        total = math.comb(n - 2, m)
        if total <= num_contexts:
            ks.append(total)
            exact.append(True)
        else:
            ks.append(num_contexts)
            exact.append(False)
    return ks, exact


def _build_rows(num_pairs: int, orders: torch.Tensor, ks: list[int],
                exact: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    """Rows ``[P · ΣK, 4]`` (pair, m, k, enumerate), grouped by (pair, order), and CSR offsets."""
    k_t = torch.tensor(ks, dtype=torch.long)
    per_pair = int(k_t.sum())
    m_col = torch.repeat_interleave(orders, k_t)
    k_col = torch.cat([torch.arange(k) for k in ks])
    e_col = torch.repeat_interleave(torch.tensor(exact, dtype=torch.long), k_t)
    block = torch.stack([torch.zeros_like(m_col), m_col, k_col, e_col], dim=1)   # [ΣK, 4]
    rows = block.repeat(num_pairs, 1)
    rows[:, 0] = torch.arange(num_pairs).repeat_interleave(per_pair)
    counts = k_t.repeat(num_pairs)
    offsets = torch.zeros(counts.numel() + 1, dtype=torch.long)
    offsets[1:] = torch.cumsum(counts, 0)
    return rows, offsets


def multi_order_interaction(
    model: Callable[[torch.Tensor], torch.Tensor],
    x: torch.Tensor,
    target: torch.Tensor | int | Sequence[int] | None,
    players: torch.Tensor | int | tuple[int, int],
    pairs: str | torch.Tensor = "local",
    num_pairs: int = 200,
    orders: Sequence[float] | Sequence[int] | torch.Tensor | None = None,
    num_contexts: int = 100,
    baseline: Baseline = "zero",
    batch_size: int = 400,
    generator: torch.Generator | None = None,
    value: str | ValueFn = "log-odds",
    radius: int = 2,
    progress: bool = False,
) -> InteractionResult:
    """Estimate I^(m)(i, j) for a batch of inputs, with standard errors and J^(m).

    For every input, pair and order, ``K = num_contexts`` contexts S (uniform m-subsets of
    N \\ {i, j}, drawn by the native kernel from a seed taken from ``generator``) are evaluated on
    the 4 masked inputs; when C(n − 2, m) ≤ K every context is enumerated once instead (exact;
    orders 0 and n − 2 always are). Masked inputs are written by ``udl::interaction_masked_inputs``
    and reduced by ``udl::interaction_reduce``; the model runs on batches of ``batch_size`` inputs.

    Args:
        model: callable ``[B, *F] -> [B, C]`` (or ``[B]`` with ``value="output"``); call
            ``model.eval()`` first if it has dropout/batch-norm. Run under ``torch.no_grad``.
        x: ``Tensor[N, *F]`` inputs (on the model's device).
        target: ``Tensor[N]`` / int / None (None: the model's predicted class on ``x``).
        players: int tensor broadcastable to ``F`` (player ids, ``-1`` never masked), or a grid
            size (int or ``(gh, gw)``) over the last two dims of ``F``; see :func:`grid_players`.
        pairs: ``"local"``, ``"uniform"`` (drawn per input), or ``Tensor[P, 2]`` / ``[N, P, 2]``.
        num_pairs: pairs per input for ``"local"`` / ``"uniform"``.
        orders: ratios (floats in [0, 1], m = floor((n−2) r)) or int orders; default the official
            13 ratios :data:`ORDER_RATIOS`.
        num_contexts: K, contexts per (pair, order), capped at C(n − 2, m) (with a warning for
            orders other than 0 and n − 2).
        baseline: ``"zero"``, ``"mean"``, a float or a tensor; see :func:`resolve_baseline`.
        batch_size: model inputs per forward (4 per context).
        generator: ``torch.Generator`` for pairs and context seeds (default: torch's global RNG).
        value: ``"log-odds"`` (default), ``"logit"``, ``"log-prob"``, ``"output"`` or a callable
            ``(outputs [B, ...], target [B]) -> [B]``.
        radius: Chebyshev radius of ``"local"`` pairs on the player grid.
        progress: show a tqdm progress bar over inputs.

    Returns:
        :class:`InteractionResult` (``.I``, ``.stderr``, ``.J``, ...).
    """
    if not isinstance(x, torch.Tensor) or x.dim() < 2:
        raise ValueError(f"x must be a tensor [N, *F] with a batch dim, got "
                         f"{getattr(x, 'shape', type(x))}")
    if not x.dtype.is_floating_point:
        raise ValueError(f"x must be floating point, got {x.dtype}")
    if num_contexts < 1:
        raise ValueError(f"num_contexts must be >= 1, got {num_contexts}")
    if batch_size < 4:
        raise ValueError(f"batch_size must be >= 4 (4 masked inputs per context), got {batch_size}")
    N = x.shape[0]
    device = x.device
    pmap, n = resolve_players(players, x.shape[1:])
    pmap_dev = pmap.to(device)
    base_all = resolve_baseline(baseline, x)
    m_t = resolve_orders(orders, n)
    ks, exact = _contexts_per_order(m_t, n, num_contexts)
    capped = [int(m) for m, k, e in zip(m_t.tolist(), ks, exact) if e and 0 < m < n - 2
              and k < num_contexts]
    if capped:
        warnings.warn(f"num_contexts={num_contexts} exceeds C(n-2, m) for orders {capped}: "
                      "using all contexts of these orders (exact)", stacklevel=2)

    if target is None:
        with torch.no_grad():
            out0 = _call(model, x)
        # scalar-output models (value="output") ignore the target
        target_t = (out0.argmax(dim=-1) if out0.dim() == 2 else
                    torch.zeros(N, dtype=torch.long)).to(device).long()
    else:
        target_t = torch.as_tensor(target, device=device).long()
        if target_t.dim() == 0:
            target_t = target_t.expand(N)
        if target_t.shape != (N,):
            raise ValueError(f"target must be an int or a tensor of shape [N] = [{N}], got "
                             f"{tuple(target_t.shape)}")

    if isinstance(pairs, str):
        pair_sets = None
    elif isinstance(pairs, torch.Tensor):
        if pairs.dim() == 2:
            pair_sets = [_check_pairs(pairs, n)] * N
        elif pairs.dim() == 3 and pairs.shape[0] == N:
            pair_sets = [_check_pairs(p, n) for p in pairs]
        else:
            raise ValueError(f"pairs tensor must be [P, 2] or [N, P, 2], got {tuple(pairs.shape)}")
    else:
        raise ValueError(f"pairs must be 'local', 'uniform' or a tensor, got {type(pairs)}")

    value_fn: ValueFn
    if callable(value):
        value_fn = value
    else:
        kind = str(value)
        value_fn = lambda out, t: value_from_logits(out, t, kind)  # noqa: E731

    rows_per_batch = max(1, batch_size // 4)
    I_all, se_all, pairs_all = [], [], []
    forwards = 0
    iterator = range(N)
    if progress:
        from tqdm.auto import tqdm

        iterator = tqdm(iterator, desc="interactions", leave=False)
    for idx in iterator:
        if pair_sets is None:
            P_ij = sample_pairs(pmap, num_pairs, mode=pairs, radius=radius, generator=generator)
        else:
            P_ij = pair_sets[idx]
        seed = int(torch.randint(0, 2**62, (1,), generator=generator))
        rows, offsets = _build_rows(P_ij.shape[0], m_t, ks, exact)
        rows_d, pairs_d = rows.to(device), P_ij.to(device)
        xi, bi = x[idx].contiguous(), base_all[idx].contiguous()
        R = rows.shape[0]
        values = torch.empty(R, 4, dtype=torch.float64, device=device)
        with torch.no_grad():
            for start in range(0, R, rows_per_batch):
                chunk = rows_d[start:start + rows_per_batch]
                masked, _ = _ops.masked_inputs(xi, bi, pmap_dev, pairs_d, chunk, n, seed)
                B = chunk.shape[0] * 4
                out = _call(model, masked.view(B, *x.shape[1:]))
                v = value_fn(out, target_t[idx].expand(B))
                if not isinstance(v, torch.Tensor) or v.shape != (B,):
                    raise ValueError(f"the value function must return a tensor of shape [B] = "
                                     f"[{B}], got {getattr(v, 'shape', type(v))}")
                values[start:start + chunk.shape[0]].copy_(v.view(-1, 4))  # one cast-copy
                forwards += B
        if not bool(torch.isfinite(values).all()):
            bad = int((~torch.isfinite(values)).sum())
            raise ValueError(f"the model/value function returned {bad} non-finite values on "
                             f"masked inputs of sample {idx}")
        mean, var = _ops.reduce_deltas(values, offsets.to(device))
        P = P_ij.shape[0]
        M = m_t.numel()
        k_f = torch.tensor(ks, dtype=torch.float64, device=device)
        se = (var.view(P, M) / k_f).sqrt()
        se[:, torch.tensor(exact, device=device)] = 0.0
        I_all.append(mean.view(P, M).cpu())
        se_all.append(se.cpu())
        pairs_all.append(P_ij)
    P_max = max(p.shape[0] for p in pairs_all)
    if any(p.shape[0] != P_max for p in pairs_all):
        raise ValueError("inputs got different numbers of pairs; pass num_pairs <= available "
                         "pairs or an explicit pairs tensor")
    return InteractionResult(
        I=torch.stack(I_all), stderr=torch.stack(se_all), pairs=torch.stack(pairs_all),
        orders=m_t, num_contexts=torch.tensor(ks), exact=torch.tensor(exact), num_players=n,
        num_forwards=forwards)


def _call(model: Callable[[torch.Tensor], torch.Tensor], inp: torch.Tensor) -> torch.Tensor:
    out = model(inp)
    if not isinstance(out, torch.Tensor):
        raise ValueError(f"the model must return a tensor, got {type(out)}")
    return out
