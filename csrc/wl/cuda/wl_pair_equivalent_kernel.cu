// CUDA kernel of udl::wl_pair_equivalent: is a graph pair distinguished by folklore 2-WL?
// Same answers as the CPU kernel (both are exact), computed differently: all pairs of the batch are
// refined jointly with exact sort-based 2-FWL rounds (the item encoding of wl_refine_tuples, CUB
// segmented sort, wl_rank.cuh ranking) until no class splits, then every pair's two sorted colour
// lists are compared. Initial colours are the exact ids (at::unique_dim) of the atomic types
// (node labels of v and w, v == w, A[v,v], A[v,w], A[w,v], A[w,w]). The round loop reads one count
// per round back to the host (the stability test), like wl_refine_tuples.
#include <ATen/ATen.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <vector>

#include "common/checks.h"
#include "wl/arg_checks.h"
#include "wl/cuda/wl_rank.cuh"

namespace udl {
namespace {

__device__ inline int64_t graph_of(const int64_t* off, int64_t G, int64_t i) {
  int64_t lo = 0, hi = G;  // last g with off[g] <= i
  while (hi - lo > 1) {
    const int64_t mid = (lo + hi) / 2;
    if (off[mid] <= i) lo = mid; else hi = mid;
  }
  return lo;
}

// keys[i, :] = atomic type of tuple i = (v, w) of its graph.
__global__ void atomic_type_kernel(const int64_t* nc, const int64_t* A, const int64_t* node_off,
                                   const int64_t* tuple_off, const int64_t* nodes, int64_t G,
                                   int64_t N, int64_t* keys) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= N) return;
  const int64_t g = graph_of(tuple_off, G, i);
  const int64_t n = nodes[g], t = i - tuple_off[g], v = t / n, w = t % n;
  const int64_t* c = nc + node_off[g];
  const int64_t* a = A + tuple_off[g];
  int64_t* k = keys + i * 7;
  k[0] = c[v];
  k[1] = c[w];
  k[2] = v == w;
  k[3] = a[v * n + v];
  k[4] = a[v * n + w];
  k[5] = a[w * n + v];
  k[6] = a[w * n + w];
}

// Items of the 2-FWL update: for tuple (v, w) and every u, c(u,w) * B + c(v,u).
__global__ void fwl2_items_kernel(const int64_t* c, const int64_t* tuple_off, const int64_t* nodes,
                                  const int64_t* ptr, int64_t G, int64_t N, uint64_t B,
                                  uint64_t* items) {
  const int64_t i = blockIdx.y * static_cast<int64_t>(gridDim.x) + blockIdx.x;
  if (i >= N) return;
  const int64_t g = graph_of(tuple_off, G, i);
  const int64_t n = nodes[g], base = tuple_off[g], t = i - base, v = t / n, w = t % n;
  const int64_t* cg = c + base;
  uint64_t* out = items + ptr[i];
  for (int64_t u = threadIdx.x; u < n; u += blockDim.x)
    out[u] = static_cast<uint64_t>(cg[u * n + w]) * B + static_cast<uint64_t>(cg[v * n + u]);
}

// differ[p] = 1 when the sorted colour lists of graphs 2p and 2p+1 differ (equal sizes assumed
// where the element is compared; unequal sizes are flagged on the host).
__global__ void compare_kernel(const int64_t* sorted, const int64_t* tuple_off, int64_t G,
                               int64_t N, int32_t* differ) {
  const int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (i >= N) return;
  const int64_t g = graph_of(tuple_off, G, i);
  if (g % 2 != 0) return;
  const int64_t len0 = tuple_off[g + 1] - tuple_off[g], len1 = tuple_off[g + 2] - tuple_off[g + 1];
  if (len0 != len1) return;
  const int64_t t = i - tuple_off[g];
  if (sorted[i] != sorted[tuple_off[g + 1] + t]) differ[g / 2] = 1;  // same value from every writer
}

}  // namespace

at::Tensor wl_pair_equivalent_cuda(const at::Tensor& node_colors_, const at::Tensor& pair_type_,
                                   const at::Tensor& num_nodes_, int64_t hash_bits) {
  wl::check_pair_equivalent_args(node_colors_, pair_type_, num_nodes_, hash_bits);
  UDL_CHECK_CUDA(node_colors_, "node_colors");  // hash_bits is unused here: every round is exact
  at::cuda::CUDAGuard guard(node_colors_.device());
  cudaStream_t stream = c10::cuda::getCurrentCUDAStream();
  const at::Tensor nc = node_colors_.contiguous();
  const at::Tensor pt = pair_type_.contiguous();
  auto opts = nc.options();
  const wl::GraphOffsets off = wl::pair_batch_offsets(num_nodes_, nc, pt);
  const int64_t G = static_cast<int64_t>(off.n.size());
  const int64_t P = G / 2;
  const int64_t* n_h = off.n.data();
  const std::vector<int64_t>& node_off = off.node_off;
  const std::vector<int64_t>& tuple_off = off.pair_off;  // 2-tuples: n^2 per graph
  const int64_t max_n = off.max_n;
  if (P == 0) return at::empty({0}, opts.dtype(at::kBool));
  const int64_t N = tuple_off[G];
  TORCH_CHECK(static_cast<long double>(N) * N < 1.8e19L, "wl_pair_equivalent on CUDA needs ", N,
              "^2 < 2^64 (64-bit items); run it on the CPU");
  {
    at::Tensor bad = at::zeros({}, opts.dtype(at::kBool));
    if (nc.numel() > 0) bad = bad | (nc < 0).any();
    if (pt.numel() > 0) bad = bad | (pt < 0).any();
    TORCH_CHECK(!bad.item<bool>(), "node_colors and pair_type must be >= 0");
  }
  auto cpu_long = at::TensorOptions().dtype(at::kLong);
  at::Tensor noff = at::tensor(node_off, cpu_long).to(nc.device());
  at::Tensor toff = at::tensor(tuple_off, cpu_long).to(nc.device());
  at::Tensor nodes = at::tensor(off.n, cpu_long).to(nc.device());
  std::vector<int32_t> differ_h(P, 0);  // different sizes: different histograms
  for (int64_t p = 0; p < P; ++p) differ_h[p] = n_h[2 * p] != n_h[2 * p + 1];
  at::Tensor differ = at::tensor(differ_h, at::TensorOptions().dtype(at::kInt)).to(nc.device());
  if (N > 0) {
    const int threads = 256;
    at::Tensor keys = at::empty({N, 7}, opts);
    atomic_type_kernel<<<wl::cuda::blocks_for(N, threads), threads, 0, stream>>>(
        nc.data_ptr<int64_t>(), pt.data_ptr<int64_t>(), noff.data_ptr<int64_t>(),
        toff.data_ptr<int64_t>(), nodes.data_ptr<int64_t>(), G, N, keys.data_ptr<int64_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    at::Tensor cur = std::get<1>(at::unique_dim(keys, 0, /*sorted=*/true, /*return_inverse=*/true))
                         .to(at::kLong)
                         .contiguous();
    int64_t C = std::get<0>(at::_unique(cur, /*sorted=*/false)).numel();
    std::vector<int64_t> ptr_h(N + 1, 0);
    for (int64_t g = 0; g < G; ++g)
      for (int64_t i = tuple_off[g]; i < tuple_off[g + 1]; ++i) ptr_h[i + 1] = ptr_h[i] + n_h[g];
    at::Tensor ptr = at::tensor(ptr_h, cpu_long).to(nc.device());
    const int64_t total = ptr_h[N];
    at::Tensor raw = at::empty({total}, opts), items = at::empty({total}, opts);
    const int item_threads = static_cast<int>(std::min<int64_t>(256, std::max<int64_t>(32, max_n)));
    const int64_t gx = std::min<int64_t>(N, 65535);
    const dim3 grid(static_cast<unsigned>(gx), static_cast<unsigned>((N + gx - 1) / gx));
    while (C < N) {  // exact rounds until no class splits (C == N: discrete)
      fwl2_items_kernel<<<grid, item_threads, 0, stream>>>(
          cur.data_ptr<int64_t>(), toff.data_ptr<int64_t>(), nodes.data_ptr<int64_t>(),
          ptr.data_ptr<int64_t>(), G, N, static_cast<uint64_t>(N),
          reinterpret_cast<uint64_t*>(raw.data_ptr<int64_t>()));
      C10_CUDA_KERNEL_LAUNCH_CHECK();
      wl::cuda::segmented_sort(raw, items, ptr, N, stream);
      at::Tensor next = at::empty({N}, opts);
      const int64_t D = wl::cuda::rank_signatures(cur, ptr, items, N, next, stream);
      if (D == C) break;
      C = D;
      cur = next;
    }
    // Histograms: sort every graph's colours, compare the two lists of each pair.
    at::Tensor sorted = at::empty({N}, opts);
    wl::cuda::segmented_sort(cur, sorted, toff, G, stream);
    compare_kernel<<<wl::cuda::blocks_for(N, threads), threads, 0, stream>>>(
        sorted.data_ptr<int64_t>(), toff.data_ptr<int64_t>(), G, N, differ.data_ptr<int32_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  }
  return differ.eq(0);
}

TORCH_LIBRARY_IMPL(udl, CUDA, m) { m.impl("wl_pair_equivalent", &wl_pair_equivalent_cuda); }

}  // namespace udl
