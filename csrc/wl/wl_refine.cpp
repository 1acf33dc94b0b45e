// Schema of udl::wl_refine: exact canonical colour refinement (1-WL) over a list of arcs.
// CPU kernel: cpu/wl_refine_kernel.cpp; CUDA kernel: cuda/wl_refine_kernel.cu;
// Python wrapper and fake kernel: pyext/udl/ops/wl.py; public API: udl.wl.refine.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(udl, m) {
  // dst, src, code: Tensor[A] int64 arcs. Arc a puts the item (code[a], colour[src[a]]) into the
  //   neighbour multiset of node dst[a]; code in [0, num_codes) carries the edge label and, for
  //   directed graphs, the direction tag.
  //   code may be empty (all codes 0).
  // arc_mode: 0 = arcs as given; 1 = also add every reverse arc (src <- dst, same code; none for
  //   self-loops), i.e. each entry is one undirected edge; 2 = auto: as given when the arc multiset
  //   (with codes) equals its reverse (an undirected graph listed in both directions, the PyG
  //   convention), otherwise as mode 1.
  // colors: Tensor[N] int64 initial colours in [0, N).
  // max_rounds: -1 = until the partition stops splitting.
  // Returns (history Tensor[R+1, N] (only the last row unless return_history), num_colors Tensor[R+1]).
  m.def(
      "wl_refine(Tensor dst, Tensor src, Tensor code, Tensor colors, int num_codes, int arc_mode, "
      "int max_rounds, bool return_history) -> (Tensor, Tensor)");
}
