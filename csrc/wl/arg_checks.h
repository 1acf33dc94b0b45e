// Input checks and per-graph offsets shared by the CPU and CUDA WL kernels (shapes, dtypes and
// devices; value checks that would need a device sync stay in each kernel). Each kernel adds its
// own device-type check (UDL_CHECK_CPU / UDL_CHECK_CUDA).
#pragma once
#include <ATen/ATen.h>
#include <c10/util/Optional.h>

#include <algorithm>
#include <vector>

#include "common/checks.h"

namespace udl {
namespace wl {

// A 1-D int64 tensor argument (a macro: the checks paste the name literal into their messages).
#define UDL_CHECK_LONG_VECTOR(t, name) \
  do {                                 \
    UDL_CHECK_DIM(t, name, 1);         \
    UDL_CHECK_DTYPE(t, name, at::kLong); \
  } while (0)

// udl::wl_refine (colour refinement over arcs dst <- src with arc codes).
inline void check_refine_args(const at::Tensor& dst, const at::Tensor& src, const at::Tensor& code,
                              const at::Tensor& colors, int64_t num_codes, int64_t arc_mode,
                              const c10::optional<at::Tensor>& graph_ptr) {
  UDL_CHECK_LONG_VECTOR(dst, "dst");
  UDL_CHECK_LONG_VECTOR(src, "src");
  UDL_CHECK_LONG_VECTOR(code, "code");
  UDL_CHECK_LONG_VECTOR(colors, "colors");
  UDL_CHECK_SAME_DEVICE(dst, "dst", colors, "colors");
  UDL_CHECK_SAME_DEVICE(src, "src", colors, "colors");
  UDL_CHECK_SAME_DEVICE(code, "code", colors, "colors");
  TORCH_CHECK(dst.numel() == src.numel() && (code.numel() == dst.numel() || code.numel() == 0),
              "dst, src and code must have the same length (code may be empty), got ", dst.numel(),
              ", ", src.numel(), " and ", code.numel());
  TORCH_CHECK(num_codes >= 1, "num_codes must be >= 1, got ", num_codes);
  TORCH_CHECK(arc_mode >= 0 && arc_mode <= 2,
              "arc_mode must be 0 (as given), 1 (add reverse arcs) or 2 (auto), got ", arc_mode);
  if (graph_ptr.has_value()) {
    UDL_CHECK_LONG_VECTOR(*graph_ptr, "graph_ptr");
    UDL_CHECK_SAME_DEVICE(*graph_ptr, "graph_ptr", colors, "colors");
    TORCH_CHECK(graph_ptr->numel() >= 1, "graph_ptr must have B + 1 >= 1 entries, got ",
                graph_ptr->numel());
  }
}

// udl::wl_refine_tuples (k-FWL / k-OWL / 1-FWL over the tuples of a batch of graphs).
inline void check_refine_tuples_args(const at::Tensor& colors, const at::Tensor& num_nodes,
                                     const at::Tensor& pair_code, int64_t k, int64_t mode) {
  UDL_CHECK_LONG_VECTOR(colors, "colors");
  UDL_CHECK_LONG_VECTOR(num_nodes, "num_nodes");
  UDL_CHECK_LONG_VECTOR(pair_code, "pair_code");
  UDL_CHECK_SAME_DEVICE(pair_code, "pair_code", colors, "colors");
  TORCH_CHECK(mode >= 0 && mode <= 2, "mode must be 0 (k-FWL), 1 (k-OWL) or 2 (1-FWL), got ", mode);
  TORCH_CHECK((mode == 2 && k == 1) || (mode != 2 && (k == 2 || k == 3)),
              "k must be 2 or 3 for k-FWL / k-OWL and 1 for 1-FWL, got k=", k, " with mode=", mode);
}

// udl::wl_pair_equivalent (2-FWL equivalence of graph pairs).
inline void check_pair_equivalent_args(const at::Tensor& node_colors, const at::Tensor& pair_type,
                                       const at::Tensor& num_nodes, int64_t hash_bits) {
  UDL_CHECK_LONG_VECTOR(node_colors, "node_colors");
  UDL_CHECK_LONG_VECTOR(pair_type, "pair_type");
  UDL_CHECK_LONG_VECTOR(num_nodes, "num_nodes");
  UDL_CHECK_SAME_DEVICE(node_colors, "node_colors", pair_type, "pair_type");
  TORCH_CHECK(hash_bits >= 0 && hash_bits <= 26, "hash_bits must lie in [0, 26] (0: automatic), got ",
              hash_bits);
}

// Host-side offsets of a batch of graphs with n_g = num_nodes[g] nodes: nodes, n_g^2 pairs and
// n_g^k tuples per graph (num_nodes is read on the host; each n_g must be >= 0).
struct GraphOffsets {
  std::vector<int64_t> n;          // [G] nodes per graph
  std::vector<int64_t> node_off;   // [G + 1]
  std::vector<int64_t> pair_off;   // [G + 1]
  std::vector<int64_t> tuple_off;  // [G + 1]
  int64_t max_n = 0;
};

inline GraphOffsets graph_offsets(const at::Tensor& num_nodes, int64_t k) {
  const at::Tensor nn = num_nodes.to(at::kCPU).contiguous();
  const int64_t G = nn.numel();
  GraphOffsets o;
  o.n.assign(nn.data_ptr<int64_t>(), nn.data_ptr<int64_t>() + G);
  o.node_off.assign(G + 1, 0);
  o.pair_off.assign(G + 1, 0);
  o.tuple_off.assign(G + 1, 0);
  for (int64_t g = 0; g < G; ++g) {
    const int64_t n = o.n[g];
    TORCH_CHECK(n >= 0, "num_nodes must be >= 0, got ", n, " for graph ", g);
    int64_t tuples = 1;
    for (int64_t j = 0; j < k; ++j) tuples *= n;
    o.node_off[g + 1] = o.node_off[g] + n;
    o.pair_off[g + 1] = o.pair_off[g] + n * n;
    o.tuple_off[g + 1] = o.tuple_off[g] + tuples;
    o.max_n = std::max(o.max_n, n);
  }
  return o;
}

// graph_offsets of a wl_pair_equivalent batch (graphs 2p and 2p + 1 form pair p), checked against
// the lengths of node_colors (sum n_g) and pair_type (sum n_g^2).
inline GraphOffsets pair_batch_offsets(const at::Tensor& num_nodes, const at::Tensor& node_colors,
                                       const at::Tensor& pair_type) {
  GraphOffsets off = graph_offsets(num_nodes, 2);
  const int64_t G = static_cast<int64_t>(off.n.size());
  TORCH_CHECK(G % 2 == 0, "num_nodes must list an even number of graphs (pairs), got ", G);
  TORCH_CHECK(node_colors.numel() == off.node_off[G], "node_colors must have sum(num_nodes) = ",
              off.node_off[G], " entries, got ", node_colors.numel());
  TORCH_CHECK(pair_type.numel() == off.pair_off[G], "pair_type must have sum(num_nodes^2) = ",
              off.pair_off[G], " entries, got ", pair_type.numel());
  return off;
}

}  // namespace wl
}  // namespace udl
