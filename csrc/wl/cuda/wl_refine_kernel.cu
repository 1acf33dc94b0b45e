// CUDA kernel of udl::wl_refine: exact canonical colour refinement, one pass per round for the
// whole batch (the disjoint union). Arcs are completed on the device (arc_mode) and bucketed by destination with ATen. Per round:
// gather items code * N + colour(src) over the CSR,
// CUB segmented sort, exact lexicographic ranking (wl_rank.cuh). Ids equal the CPU kernel's.
// Host syncs: one validation check at entry (two with graph_ptr in arc_mode 2: arcs must stay
// inside their graph), the size of the completed arc list, and one colour count per round (the
// stability test). arc_mode 2 decides per graph (graph_ptr) whether the arcs hold both directions.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include "common/checks.h"
#include "wl/arg_checks.h"
#include "wl/cuda/wl_rank.cuh"

namespace udl {
namespace {

__global__ void gather_items_kernel(const int64_t* nbr, const int64_t* ncode, const int64_t* color,
                                    uint64_t bound, int64_t A, uint64_t* items) {
  const int64_t e = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (e >= A) return;
  items[e] = static_cast<uint64_t>(ncode[e]) * bound + static_cast<uint64_t>(color[nbr[e]]);
}

// Permutation that sorts the triples (k1, k2, k3) lexicographically (stable argsorts, last key
// first), so no packed key can overflow.
at::Tensor lexsort3(const at::Tensor& k1, const at::Tensor& k2, const at::Tensor& k3) {
  at::Tensor perm = at::argsort(k3, /*stable=*/true, 0, false);
  perm = perm.index_select(0, at::argsort(k2.index_select(0, perm), true, 0, false));
  perm = perm.index_select(0, at::argsort(k1.index_select(0, perm), true, 0, false));
  return perm;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> wl_refine_cuda(const at::Tensor& dst_, const at::Tensor& src_,
                                                  const at::Tensor& code_,
                                                  const at::Tensor& colors_, int64_t num_codes,
                                                  int64_t arc_mode, int64_t max_rounds,
                                                  bool return_history,
                                                  const c10::optional<at::Tensor>& graph_ptr) {
  wl::check_refine_args(dst_, src_, code_, colors_, num_codes, arc_mode, graph_ptr);
  UDL_CHECK_CUDA(colors_, "colors");
  at::cuda::CUDAGuard guard(colors_.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  at::Tensor dst = dst_.contiguous(), src = src_.contiguous();
  at::Tensor code = code_.numel() ? code_.contiguous() : at::zeros_like(dst);
  const at::Tensor colors0 = colors_.contiguous();
  const int64_t N = colors0.numel();
  auto opts = colors0.options();
  if (N == 0) {
    TORCH_CHECK(dst.numel() == 0, "dst: arcs given for a graph with no nodes");
    return {at::empty({1, 0}, opts), at::zeros({1}, opts)};
  }
  TORCH_CHECK(num_codes <= std::numeric_limits<int64_t>::max() / N,
              "num_codes * num_nodes overflows int64 (num_codes=", num_codes, ", N=", N, ")");
  // Graph of every node (arc_mode 2 decides per graph); one graph without graph_ptr.
  const bool per_graph = arc_mode == 2 && graph_ptr.has_value() && graph_ptr->numel() > 2;
  at::Tensor gptr, graph_of;
  if (per_graph) {
    gptr = graph_ptr->contiguous();
    graph_of = at::searchsorted(gptr, at::arange(N, opts), /*out_int32=*/false, /*right=*/true)
                   .sub_(1)
                   .clamp_(0, gptr.numel() - 2);
  }
  {
    // One explicit validation sync (out-of-range ids would otherwise read out of bounds).
    at::Tensor bad = (colors0 < 0).any() | (colors0 >= N).any();
    if (dst.numel() > 0)
      bad = bad | (dst < 0).any() | (dst >= N).any() | (src < 0).any() | (src >= N).any() |
            (code < 0).any() | (code >= num_codes).any();
    at::Tensor bad_ptr = at::zeros({}, opts.dtype(at::kBool));
    if (graph_ptr.has_value()) {
      const at::Tensor gp = graph_ptr->contiguous();
      bad_ptr = gp[0].ne(0) | gp[-1].ne(N);
      if (gp.numel() > 1) bad_ptr = bad_ptr | (gp.slice(0, 1) < gp.slice(0, 0, -1)).any();
    }
    at::Tensor flags = at::stack({bad, bad_ptr}).cpu();
    const bool* f = flags.data_ptr<bool>();
    TORCH_CHECK(!f[0], "dst, src and colors must lie in [0, N=", N,
                ") and code in [0, num_codes=", num_codes, ")");
    TORCH_CHECK(!f[1], "graph_ptr must start at 0, end at N=", N, " and be non-decreasing");
    if (per_graph && dst.numel() > 0)
      TORCH_CHECK(!graph_of.index_select(0, dst).ne(graph_of.index_select(0, src)).any().item<bool>(),
                  "dst/src: an arc joins nodes of different graphs of graph_ptr");
  }
  // add[a]: arc a also gives its reverse (not for loops).
  at::Tensor add;
  if (arc_mode == 1) {
    add = dst.ne(src);
  } else if (arc_mode == 2 && dst.numel() > 0) {
    // A graph is symmetric iff its sorted (dst, src, code) triples equal its sorted (src, dst,
    // code) ones. Sorted by node first, each graph's arcs are one contiguous range of both lists,
    // so a mismatch at position p marks the graph of the p-th (dst, src, code) triple.
    at::Tensor pf = lexsort3(dst, src, code), pr = lexsort3(src, dst, code);
    at::Tensor fd = dst.index_select(0, pf);
    at::Tensor mismatch = fd.ne(src.index_select(0, pr)) |
                          src.index_select(0, pf).ne(dst.index_select(0, pr)) |
                          code.index_select(0, pf).ne(code.index_select(0, pr));
    if (per_graph) {
      // Mismatches per graph (an integer sum: deterministic).
      at::Tensor asym = at::zeros({gptr.numel() - 1}, opts)
                            .index_add_(0, graph_of.index_select(0, fd), mismatch.to(at::kLong))
                            .gt(0);
      add = asym.index_select(0, graph_of.index_select(0, dst)) & dst.ne(src);
    } else {
      add = mismatch.any() & dst.ne(src);
    }
  }
  if (add.defined()) {
    at::Tensor keep = add;
    at::Tensor rd = src.masked_select(keep), rs = dst.masked_select(keep);
    at::Tensor rc = code.masked_select(keep);
    dst = at::cat({dst, rd});
    src = at::cat({src, rs});
    code = at::cat({code, rc});
  }
  const int64_t A = dst.numel();
  // CSR by destination with ATen primitives.
  at::Tensor perm = at::argsort(dst, /*stable=*/true, /*dim=*/0, /*descending=*/false);
  at::Tensor nbr = src.index_select(0, perm).contiguous();
  at::Tensor ncode = code.index_select(0, perm).contiguous();
  at::Tensor rowptr = at::zeros({N + 1}, opts);
  if (A > 0) rowptr.slice(0, 1).copy_(at::bincount(dst, {}, N).cumsum(0));

  at::Tensor cur = colors0.clone();
  int64_t C = std::get<0>(at::_unique(cur, /*sorted=*/false)).numel();
  std::vector<at::Tensor> history{cur};
  std::vector<int64_t> counts{C};
  at::Tensor raw = at::empty({A}, opts), items = at::empty({A}, opts);
  const int threads = 256;
  int64_t rounds = 0;
  while ((max_rounds < 0 || rounds < max_rounds) && C < N) {  // C == N: discrete, stable
    if (A > 0) {
      gather_items_kernel<<<wl::cuda::blocks_for(A, threads), threads, 0, stream>>>(
          nbr.data_ptr<int64_t>(), ncode.data_ptr<int64_t>(), cur.data_ptr<int64_t>(),
          static_cast<uint64_t>(N), A, reinterpret_cast<uint64_t*>(raw.data_ptr<int64_t>()));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      wl::cuda::segmented_sort(raw, items, rowptr, N, stream);
    }
    at::Tensor next = at::empty({N}, opts);
    const int64_t D = wl::cuda::rank_signatures(cur, rowptr, items, N, next, stream);
    if (D == C) break;
    ++rounds;
    C = D;
    cur = next;
    if (return_history) {
      history.push_back(cur);
    } else {
      history[0] = cur;
    }
    counts.push_back(C);
  }
  at::Tensor num_colors = at::tensor(counts, opts.device(at::kCPU)).to(colors0.device());
  at::Tensor out = return_history ? at::stack(history) : history[0].unsqueeze(0);
  return {out, num_colors};
}

TORCH_LIBRARY_IMPL(udl, CUDA, m) { m.impl("wl_refine", &wl_refine_cuda); }

}  // namespace udl
