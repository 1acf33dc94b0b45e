// CUDA kernel of udl::wl_refine_tuples: exact canonical k-WL on the k-tuples of a batch.
// One thread per (tuple, u) writes the item(s) of the update rule (same encoding as the CPU kernel,
// see cpu/wl_refine_tuples_kernel.cpp), then CUB sorts every tuple's items and wl_rank.cuh ranks
// the signatures exactly. Items are 64-bit here, so 3-FWL needs (number of tuples)^3 < 2^64
// (e.g. one graph with up to 128 nodes); larger 3-FWL runs are refused with a message (use CPU).
#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <vector>

#include "common/checks.h"
#include "wl/arg_checks.h"
#include "wl/cuda/wl_rank.cuh"

namespace udl {
namespace {

__global__ void tuple_items_kernel(const int64_t* c, const int64_t* pc, const int64_t* tuple_off,
                                   const int64_t* pair_off, const int64_t* nodes,
                                   const int64_t* ptr, int64_t G, int64_t N, int64_t k,
                                   int64_t mode, uint64_t B, uint64_t* items) {
  const int64_t i = blockIdx.y * static_cast<int64_t>(gridDim.x) + blockIdx.x;  // tuple
  if (i >= N) return;
  int64_t lo = 0, hi = G;  // graph of tuple i: last g with tuple_off[g] <= i
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (tuple_off[mid] <= i) lo = mid; else hi = mid;
  }
  const int64_t g = lo, n = nodes[g], base = tuple_off[g], t = i - base;
  const int64_t* cg = c + base;
  uint64_t* out = items + ptr[i];
  for (int64_t u = threadIdx.x; u < n; u += blockDim.x) {
    if (mode == 0 && k == 2) {
      const int64_t v = t / n, w = t % n;
      out[u] = static_cast<uint64_t>(cg[u * n + w]) * B + static_cast<uint64_t>(cg[v * n + u]);
    } else if (mode == 0 && k == 3) {
      const int64_t x = t / (n * n), y = (t / n) % n, z = t % n;
      out[u] = (static_cast<uint64_t>(cg[(u * n + y) * n + z]) * B +
                static_cast<uint64_t>(cg[(x * n + u) * n + z])) * B +
               static_cast<uint64_t>(cg[(x * n + y) * n + u]);
    } else if (mode == 1 && k == 2) {
      const int64_t v = t / n, w = t % n;
      out[u] = static_cast<uint64_t>(cg[u * n + w]);
      out[n + u] = B + static_cast<uint64_t>(cg[v * n + u]);
    } else if (mode == 1 && k == 3) {
      const int64_t x = t / (n * n), y = (t / n) % n, z = t % n;
      out[u] = static_cast<uint64_t>(cg[(u * n + y) * n + z]);
      out[n + u] = B + static_cast<uint64_t>(cg[(x * n + u) * n + z]);
      out[2 * n + u] = 2 * B + static_cast<uint64_t>(cg[(x * n + y) * n + u]);
    } else {
      const int64_t* pg = pc + pair_off[g] + t * n;
      out[u] = static_cast<uint64_t>(pg[u]) * B + static_cast<uint64_t>(cg[u]);
    }
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> wl_refine_tuples_cuda(const at::Tensor& colors_,
                                                         const at::Tensor& num_nodes_,
                                                         const at::Tensor& pair_code_, int64_t k,
                                                         int64_t mode, int64_t max_rounds,
                                                         bool return_history) {
  wl::check_refine_tuples_args(colors_, num_nodes_, pair_code_, k, mode);
  UDL_CHECK_CUDA(colors_, "colors");
  at::cuda::CUDAGuard guard(colors_.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor colors0 = colors_.contiguous();
  auto opts = colors0.options();
  wl::GraphOffsets off = wl::graph_offsets(num_nodes_, k);
  const int64_t G = static_cast<int64_t>(off.n.size());
  const std::vector<int64_t>& tuple_off = off.tuple_off;
  const std::vector<int64_t>& pair_off = off.pair_off;
  const int64_t* n_h = off.n.data();
  const int64_t max_n = off.max_n;
  const int64_t N = tuple_off[G];
  TORCH_CHECK(colors0.numel() == N, "colors must have sum(num_nodes^k) = ", N, " entries, got ",
              colors0.numel());
  if (mode == 2)
    TORCH_CHECK(pair_code_.numel() == pair_off[G], "pair_code must have sum(num_nodes^2) = ",
                pair_off[G], " entries for 1-FWL, got ", pair_code_.numel());
  if (N == 0) return {at::empty({1, 0}, opts), at::zeros({1}, opts)};
  const long double Bf = static_cast<long double>(N);
  const long double top = mode == 0 ? (k == 2 ? Bf * Bf : Bf * Bf * Bf)
                                    : (mode == 1 ? k * Bf : Bf * 1048576.0L);
  TORCH_CHECK(top < 1.8e19L, "wl_refine_tuples on CUDA needs 64-bit items: ", N,
              " tuples are too many for ", k, "-FWL on CUDA; run it on the CPU (128-bit items)");
  const at::Tensor pair_code = pair_code_.to(colors0.device()).contiguous();
  {
    at::Tensor bad = (colors0 < 0).any() | (colors0 >= N).any();
    if (mode == 2 && pair_code.numel() > 0)
      bad = bad | (pair_code < 0).any() | (pair_code >= (int64_t(1) << 20)).any();
    TORCH_CHECK(!bad.item<bool>(), "colors must lie in [0, N=", N, ") and pair_code in [0, 2^20)");
  }
  // Item offsets: tuple i of graph g owns len_g = (k-OWL ? k * n : n) consecutive items.
  std::vector<int64_t> ptr_h(N + 1, 0);
  for (int64_t g = 0; g < G; ++g) {
    const int64_t len = (mode == 1) ? k * n_h[g] : n_h[g];
    for (int64_t i = tuple_off[g]; i < tuple_off[g + 1]; ++i) ptr_h[i + 1] = ptr_h[i] + len;
  }
  auto cpu_long = at::TensorOptions().dtype(at::kLong);
  at::Tensor ptr = at::tensor(ptr_h, cpu_long).to(colors0.device());
  at::Tensor toff = at::tensor(tuple_off, cpu_long).to(colors0.device());
  at::Tensor poff = at::tensor(pair_off, cpu_long).to(colors0.device());
  at::Tensor nodes = at::tensor(off.n, cpu_long).to(colors0.device());
  const int64_t total = ptr_h[N];
  at::Tensor raw = at::empty({total}, opts), items = at::empty({total}, opts);

  at::Tensor cur = colors0.clone();
  int64_t C = std::get<0>(at::_unique(cur, /*sorted=*/false)).numel();
  std::vector<at::Tensor> history{cur};
  std::vector<int64_t> counts{C};
  const int threads = static_cast<int>(std::min<int64_t>(256, std::max<int64_t>(32, max_n)));
  const int64_t gx = std::min<int64_t>(N, 65535);
  const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>((N + gx - 1) / gx));
  int64_t rounds = 0;
  while ((max_rounds < 0 || rounds < max_rounds) && C < N) {  // C == N: discrete, stable
    tuple_items_kernel<<<grid, threads, 0, stream>>>(
        cur.data_ptr<int64_t>(), mode == 2 ? pair_code.data_ptr<int64_t>() : nullptr,
        toff.data_ptr<int64_t>(), poff.data_ptr<int64_t>(), nodes.data_ptr<int64_t>(),
        ptr.data_ptr<int64_t>(), G, N, k, mode, static_cast<uint64_t>(N),
        reinterpret_cast<uint64_t*>(raw.data_ptr<int64_t>()));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    wl::cuda::segmented_sort(raw, items, ptr, N, stream);
    at::Tensor next = at::empty({N}, opts);
    const int64_t D = wl::cuda::rank_signatures(cur, ptr, items, N, next, stream);
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
  at::Tensor num_colors = at::tensor(counts, cpu_long).to(colors0.device());
  at::Tensor out = return_history ? at::stack(history) : history[0].unsqueeze(0);
  return {out, num_colors};
}

TORCH_LIBRARY_IMPL(udl, CUDA, m) { m.impl("wl_refine_tuples", &wl_refine_tuples_cuda); }

}  // namespace udl
