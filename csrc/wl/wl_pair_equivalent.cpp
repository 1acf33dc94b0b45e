// Schema of udl::wl_pair_equivalent: exact 2-FWL equivalence test of graph pairs (is the pair
// distinguished by folklore 2-WL at its stable colouring?).
// CPU kernel: cpu/wl_pair_equivalent_kernel.cpp; CUDA kernel: cuda/wl_pair_equivalent_kernel.cu;
// Python wrapper and fake kernel: pyext/udl/ops/wl.py; public API: udl.wl.equivalent(method="2-fwl")
// and udl.wl.core.equivalent_pairs.
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(udl, m) {
  // node_colors: Tensor[sum_g n_g] int64 >= 0 vertex label ids (shared by the batch).
  // pair_type: Tensor[sum_g n_g^2] int64 >= 0, per graph the row-major matrix A[v, w] (0: no arc
  //   v -> w, else an id of the multiset of edge labels on those arcs; see udl.wl._graphs).
  // num_nodes: Tensor[2P] int64; graphs 2p and 2p+1 form pair p.
  // hash_bits: 0 = automatic; otherwise the bit width of the random weights of the grouping hash
  //   (small values force hash collisions: a test hook; answers are exact for every value).
  // Returns equal: Tensor[P] bool, true when 2-FWL does not distinguish the pair (equal colour
  //   histograms at the stable colouring of the pair, refined jointly).
  m.def("wl_pair_equivalent(Tensor node_colors, Tensor pair_type, Tensor num_nodes, int hash_bits) "
        "-> Tensor");
}
