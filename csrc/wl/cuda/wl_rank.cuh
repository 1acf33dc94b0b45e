// Exact canonical ranking of colour signatures on CUDA (the GPU twin of cpu/wl_rank.h).
//
// Signature of element i: (own[i], len_i, items[ptr[i]..ptr[i+1]) sorted ascending). The new
// colour is the rank of the signature among the distinct signatures in lexicographic order, which is
// exactly the CPU definition, so CPU and CUDA produce identical ids. Steps: segmented sort of the
// items (CUB), a merge sort of the element indices with a lexicographic comparator (thrust), class
// boundaries by comparing neighbours, and an inclusive scan that numbers the classes.
#pragma once

#include <ATen/ATen.h>
#include <c10/cuda/CUDAStream.h>
#include <ATen/cuda/ThrustAllocator.h>
#include <c10/cuda/CUDAException.h>
#include <cub/device/device_segmented_sort.cuh>
#include <thrust/execution_policy.h>
#include <thrust/scan.h>
#include <thrust/sequence.h>
#include <thrust/sort.h>

#include <cstdint>

namespace udl {
namespace wl {
namespace cuda {

struct LexLess {
  const int64_t* own;
  const int64_t* ptr;
  const uint64_t* items;
  __device__ bool operator()(int64_t a, int64_t b) const {
    if (own[a] != own[b]) return own[a] < own[b];
    const int64_t la = ptr[a + 1] - ptr[a], lb = ptr[b + 1] - ptr[b];
    if (la != lb) return la < lb;
    const uint64_t* x = items + ptr[a];
    const uint64_t* y = items + ptr[b];
    for (int64_t j = 0; j < la; ++j)
      if (x[j] != y[j]) return x[j] < y[j];
    return false;
  }
};

static __global__ void class_starts_kernel(const int64_t* order, LexLess less, int64_t N, int64_t* flag) {
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (p >= N) return;
  flag[p] = (p == 0) ? 1 : (less(order[p - 1], order[p]) ? 1 : 0);
}

static __global__ void scatter_ranks_kernel(const int64_t* order, const int64_t* scan, int64_t N,
                                     int64_t* out) {
  const int64_t p = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (p >= N) return;
  out[order[p]] = scan[p] - 1;
}

inline int blocks_for(int64_t n, int threads) {
  return static_cast<int>((n + threads - 1) / threads);
}

// Sorts every segment [ptr[i], ptr[i+1]) of `in` into `out` (both uint64 Tensor[total]).
inline void segmented_sort(const at::Tensor& in, at::Tensor& out, const at::Tensor& ptr,
                           int64_t N, cudaStream_t stream) {
  const int64_t total = in.numel();
  if (total == 0) return;
  const uint64_t* din = reinterpret_cast<const uint64_t*>(in.data_ptr<int64_t>());
  uint64_t* dout = reinterpret_cast<uint64_t*>(out.data_ptr<int64_t>());
  const int64_t* off = ptr.data_ptr<int64_t>();
  size_t bytes = 0;
  C10_CUDA_CHECK(cub::DeviceSegmentedSort::SortKeys(nullptr, bytes, din, dout, total, N, off,
                                                    off + 1, stream));
  at::Tensor tmp = at::empty({static_cast<int64_t>(bytes) + 1}, in.options().dtype(at::kByte));
  C10_CUDA_CHECK(cub::DeviceSegmentedSort::SortKeys(tmp.data_ptr(), bytes, din, dout, total, N,
                                                    off, off + 1, stream));
}

// Canonical ranks of the signatures (own, ptr, sorted items) into out; returns the number of
// distinct signatures (one device-to-host copy: the caller needs it for the stability test).
inline int64_t rank_signatures(const at::Tensor& own, const at::Tensor& ptr,
                               const at::Tensor& items_sorted, int64_t N, at::Tensor& out,
                               cudaStream_t stream) {
  if (N == 0) return 0;
  at::cuda::ThrustAllocator allocator;
  auto policy = thrust::cuda::par(allocator).on(stream);
  LexLess less{own.data_ptr<int64_t>(), ptr.data_ptr<int64_t>(),
               reinterpret_cast<const uint64_t*>(items_sorted.data_ptr<int64_t>())};
  at::Tensor order = at::empty({N}, own.options());
  int64_t* o = order.data_ptr<int64_t>();
  thrust::sequence(policy, o, o + N);
  thrust::sort(policy, o, o + N, less);
  at::Tensor flag = at::empty({N}, own.options());
  const int threads = 256;
  class_starts_kernel<<<blocks_for(N, threads), threads, 0, stream>>>(o, less, N,
                                                                      flag.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  int64_t* f = flag.data_ptr<int64_t>();
  thrust::inclusive_scan(policy, f, f + N, f);
  scatter_ranks_kernel<<<blocks_for(N, threads), threads, 0, stream>>>(o, f, N,
                                                                       out.data_ptr<int64_t>());
  C10_CUDA_KERNEL_LAUNCH_CHECK();
  int64_t D = 0;
  C10_CUDA_CHECK(cudaMemcpyAsync(&D, f + N - 1, sizeof(int64_t), cudaMemcpyDeviceToHost, stream));
  C10_CUDA_CHECK(cudaStreamSynchronize(stream));
  return D;
}

}  // namespace cuda
}  // namespace wl
}  // namespace udl
