// Schemas of udl::wl_refine (exact canonical colour refinement, 1-WL, over a list of arcs),
// udl::wl_histogram (colour histogram per graph) and udl::wl_refine_histogram (both in one call).
// CPU kernels: cpu/wl_refine_kernel.cpp; CUDA kernels: cuda/wl_refine_kernel.cu;
// Python wrappers and fake kernels: pyext/udl/ops/wl.py; public API: udl.wl.refine.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(udl, m) {
  // dst, src, code: Tensor[A] int64 arcs. Arc a puts the item (code[a], colour[src[a]]) into the
  //   neighbour multiset of node dst[a]; code in [0, num_codes) carries the edge label and, for
  //   directed graphs, the direction tag.
  //   code may be empty (all codes 0).
  // arc_mode: 0 = arcs as given; 1 = also add every reverse arc (src <- dst, same code; none for
  //   self-loops), i.e. each entry is one undirected edge; 2 = auto, decided per graph: a graph's
  //   arcs are taken as given when their multiset (with codes) equals its reverse (an undirected
  //   graph listed in both directions, the PyG convention), otherwise as in mode 1.
  // colors: Tensor[N] int64 initial colours in [0, N).
  // max_rounds: -1 = until the partition stops splitting.
  // graph_ptr: optional Tensor[B + 1] int64 node offsets of the graphs of a batch (0 = first,
  //   N = last, non-decreasing; arcs must stay inside their graph); only arc_mode 2 uses it (the
  //   per-graph symmetry decision). None = one graph.
  // Returns (history Tensor[R+1, N] (only the last row unless return_history), num_colors Tensor[R+1]).
  // Colour ids: ranks of the signatures (own colour, degree, sorted (code, colour) items) in
  // lexicographic order among the distinct signatures of the call (canonical, deterministic, equal
  // on CPU and CUDA).
  m.def(
      "wl_refine(Tensor dst, Tensor src, Tensor code, Tensor colors, int num_codes, int arc_mode, "
      "int max_rounds, bool return_history, Tensor? graph_ptr=None) -> (Tensor, Tensor)");
  // colors: Tensor[N] int64 in [0, num_colors); ptr: Tensor[B + 1] int64 element offsets of the
  // graphs. Returns (indices Tensor[2, nnz], counts Tensor[nnz]): the distinct (graph, colour)
  // pairs in sorted order and how often each occurs (a coalesced sparse [B, num_colors] histogram).
  m.def("wl_histogram(Tensor colors, Tensor ptr, int num_colors) -> (Tensor, Tensor)");
  // wl_refine without history, plus wl_histogram of the final colouring over graph_ptr's graphs
  // (None: one graph), computed in the same call: (colors Tensor[1, N], num_colors Tensor[R+1],
  // indices Tensor[2, nnz], counts Tensor[nnz]). CPU only (a batch of small graphs gets its
  // histograms from the refinement's own per-graph order).
  m.def(
      "wl_refine_histogram(Tensor dst, Tensor src, Tensor code, Tensor colors, int num_codes, "
      "int arc_mode, int max_rounds, Tensor? graph_ptr=None) -> (Tensor, Tensor, Tensor, Tensor)");
}
