"""Python side of udl's WL kernels (``torch.ops.udl.wl_refine`` / ``wl_refine_tuples``).

Both ops are integer-valued (colour ids), so they have no autograd; their output sizes depend on the
number of rounds run, which the fake kernels declare as a dynamic size. The public API is
:mod:`udl.wl` (graphs in, canonical colourings out); these wrappers take pre-processed arcs.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__ = ["wl_refine", "wl_refine_histogram", "wl_refine_tuples", "wl_pair_equivalent",
           "wl_histogram"]


def wl_refine(dst: Tensor, src: Tensor, code: Tensor, colors: Tensor, num_codes: int,
              arc_mode: int = 0, max_rounds: int = -1, return_history: bool = False,
              graph_ptr: Tensor | None = None) -> tuple[Tensor, Tensor]:
    """Exact canonical colour refinement over arcs.

    Args:
        dst, src, code: ``LongTensor[A]``; arc ``a`` puts the item ``(code[a], colour[src[a]])`` into
            the neighbour multiset of node ``dst[a]``; ``0 <= code < num_codes``; ``code`` may be
            empty (all zero).
        colors: ``LongTensor[N]`` initial colours in ``[0, N)``.
        num_codes: number of distinct arc codes (edge labels x direction tags).
        arc_mode: 0 arcs as given; 1 also add every reverse arc (none for self-loops: each entry
            is one undirected edge); 2 auto, per graph: a graph's arcs are taken as given if their
            multiset (with codes) equals its reverse (PyG's both-directions convention), else as 1.
        max_rounds: rounds to run; ``-1`` runs until a round splits no colour class.
        return_history: return every round's colours instead of only the last.
        graph_ptr: ``LongTensor[B + 1]`` node offsets of the graphs of a batch (arcs stay inside
            their graph), for the per-graph decision of ``arc_mode=2``; ``None``: one graph.

    Returns:
        ``(history, num_colors)``: ``LongTensor[R+1, N]`` (one row unless ``return_history``) and
        ``LongTensor[R+1]`` (number of colours after each round), ``R`` = rounds that split a class.
        Colour ids are ranks of the signatures (own colour, degree, sorted items) in lexicographic
        order, so they are canonical across all nodes of the call and deterministic.
    """
    return torch.ops.udl.wl_refine.default(dst, src, code, colors, int(num_codes), int(arc_mode),
                                           int(max_rounds), bool(return_history), graph_ptr)


def wl_histogram(colors: Tensor, ptr: Tensor, num_colors: int) -> tuple[Tensor, Tensor]:
    """Colour histogram of every graph of a batch.

    Args:
        colors: ``LongTensor[N]`` colour ids in ``[0, num_colors)``, graph by graph.
        ptr: ``LongTensor[B + 1]`` offsets of the graphs' elements in ``colors``.
        num_colors: number of colour ids.

    Returns:
        ``(indices LongTensor[2, nnz], counts LongTensor[nnz])``: the distinct (graph, colour)
        pairs in sorted order and their multiplicities, i.e. the coalesced sparse
        ``[B, num_colors]`` histogram.
    """
    return torch.ops.udl.wl_histogram.default(colors, ptr, int(num_colors))


def wl_refine_histogram(dst: Tensor, src: Tensor, code: Tensor, colors: Tensor, num_codes: int,
                        arc_mode: int = 0, max_rounds: int = -1,
                        graph_ptr: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """:func:`wl_refine` (without history) and :func:`wl_histogram` of its final colouring over the
    graphs of ``graph_ptr`` (``None``: one graph), in one call. CPU tensors only.

    On a batch of small graphs the kernel reads each graph's colours in the order its last round
    already sorted them, instead of sorting every graph's colours again.

    Returns:
        ``(colors LongTensor[1, N], num_colors LongTensor[R+1], indices LongTensor[2, nnz],
        counts LongTensor[nnz])``: as :func:`wl_refine` and :func:`wl_histogram`.
    """
    return torch.ops.udl.wl_refine_histogram.default(dst, src, code, colors, int(num_codes),
                                                     int(arc_mode), int(max_rounds), graph_ptr)


def wl_refine_tuples(colors: Tensor, num_nodes: Tensor, pair_code: Tensor, k: int, mode: int,
                     max_rounds: int = -1, return_history: bool = False) -> tuple[Tensor, Tensor]:
    """Exact canonical k-WL on the k-tuples of a batch of graphs.

    Args:
        colors: ``LongTensor[sum_g n_g^k]`` initial colours (atomic types) in ``[0, N)``, graph by
            graph, tuples in row-major order.
        num_nodes: ``LongTensor[B]`` nodes per graph.
        pair_code: ``LongTensor[sum_g n_g^2]`` atomic type ids of vertex pairs (mode 2 only; else
            empty).
        k: tuple length (2 or 3 for modes 0/1, 1 for mode 2).
        mode: 0 folklore k-FWL, 1 oblivious k-OWL, 2 1-FWL (colour refinement + global multiset).
        max_rounds, return_history: as in :func:`wl_refine`.

    Returns:
        ``(history LongTensor[R+1, N], num_colors LongTensor[R+1])``.
    """
    return torch.ops.udl.wl_refine_tuples.default(colors, num_nodes, pair_code, int(k), int(mode),
                                                  int(max_rounds), bool(return_history))


def wl_pair_equivalent(node_colors: Tensor, pair_type: Tensor, num_nodes: Tensor,
                       hash_bits: int = 0) -> Tensor:
    """Exact 2-FWL equivalence test of graph pairs (graphs ``2p`` and ``2p+1`` form pair ``p``).

    Args:
        node_colors: ``LongTensor[sum_g n_g]`` vertex label ids (>= 0, shared by the batch).
        pair_type: ``LongTensor[sum_g n_g^2]`` per graph the row-major matrix ``A[v, w]`` (0: no
            arc v -> w, else an id of the multiset of edge labels on those arcs).
        num_nodes: ``LongTensor[2P]``.
        hash_bits: 0 (automatic) or the bit width of the grouping hash's random weights; small
            values force hash collisions (a test hook): the answers are exact for every value.

    Returns:
        ``BoolTensor[P]``: True where 2-FWL does not distinguish the pair (equal colour histograms
        at the stable colouring of the pair, refined jointly).
    """
    return torch.ops.udl.wl_pair_equivalent.default(node_colors, pair_type, num_nodes,
                                                    int(hash_bits))


@torch.library.register_fake("udl::wl_refine")
def _wl_refine_fake(dst, src, code, colors, num_codes, arc_mode, max_rounds, return_history,
                    graph_ptr=None):
    torch._check(dst.dim() == 1 and src.dim() == 1 and code.dim() == 1,
                 lambda: "dst, src and code must be 1-D")
    torch._check(colors.dim() == 1, lambda: "colors must be 1-D")
    torch._check(dst.dtype == torch.long and colors.dtype == torch.long,
                 lambda: "dst and colors must be int64")
    rounds = torch.library.get_ctx().new_dynamic_size()
    rows = rounds if return_history else 1
    return colors.new_empty((rows, colors.shape[0])), colors.new_empty((rounds,))


@torch.library.register_fake("udl::wl_refine_histogram")
def _wl_refine_histogram_fake(dst, src, code, colors, num_codes, arc_mode, max_rounds,
                              graph_ptr=None):
    out, counts = _wl_refine_fake(dst, src, code, colors, num_codes, arc_mode, max_rounds, False,
                                  graph_ptr)
    nnz = torch.library.get_ctx().new_dynamic_size()
    return out, counts, colors.new_empty((2, nnz)), colors.new_empty((nnz,))


@torch.library.register_fake("udl::wl_histogram")
def _wl_histogram_fake(colors, ptr, num_colors):
    torch._check(colors.dim() == 1 and ptr.dim() == 1, lambda: "colors and ptr must be 1-D")
    torch._check(colors.dtype == torch.long and ptr.dtype == torch.long,
                 lambda: "colors and ptr must be int64")
    nnz = torch.library.get_ctx().new_dynamic_size()
    return colors.new_empty((2, nnz)), colors.new_empty((nnz,))


@torch.library.register_fake("udl::wl_refine_tuples")
def _wl_refine_tuples_fake(colors, num_nodes, pair_code, k, mode, max_rounds, return_history):
    torch._check(colors.dim() == 1, lambda: "colors must be 1-D")
    torch._check(colors.dtype == torch.long, lambda: "colors must be int64")
    rounds = torch.library.get_ctx().new_dynamic_size()
    rows = rounds if return_history else 1
    return colors.new_empty((rows, colors.shape[0])), colors.new_empty((rounds,))


@torch.library.register_fake("udl::wl_pair_equivalent")
def _wl_pair_equivalent_fake(node_colors, pair_type, num_nodes, hash_bits):
    torch._check(node_colors.dim() == 1 and pair_type.dim() == 1 and num_nodes.dim() == 1,
                 lambda: "node_colors, pair_type and num_nodes must be 1-D")
    torch._check(node_colors.dtype == torch.long and pair_type.dtype == torch.long,
                 lambda: "node_colors and pair_type must be int64")
    return node_colors.new_empty((num_nodes.shape[0] // 2,), dtype=torch.bool)
