// Schema of udl::wl_refine_tuples: exact canonical folklore / oblivious k-WL on k-tuples of a batch.
// CPU kernel: cpu/wl_refine_tuples_kernel.cpp; CUDA kernel: cuda/wl_refine_tuples_kernel.cu;
// Python wrapper and fake kernel: pyext/udl/ops/wl.py; public API: udl.wl.refine(method="2-fwl").
#include <torch/library.h>

TORCH_LIBRARY_FRAGMENT(udl, m) {
  // colors: Tensor[sum_g n_g^k] int64 initial colours (atomic types), graph by graph, tuples in
  //   row-major order; num_nodes: Tensor[B] int64 (CPU); pair_code: Tensor[sum_g n_g^2] int64 atomic
  //   types of vertex pairs (only used by mode 2, 1-FWL; may be empty otherwise).
  // mode: 0 = folklore k-FWL (k = 2, 3), 1 = oblivious k-OWL (k = 2, 3), 2 = 1-FWL (k = 1).
  // Returns (history Tensor[R+1, N] (only the last row unless return_history), num_colors Tensor[R+1]).
  m.def(
      "wl_refine_tuples(Tensor colors, Tensor num_nodes, Tensor pair_code, int k, int mode, "
      "int max_rounds, bool return_history) -> (Tensor, Tensor)");
}
