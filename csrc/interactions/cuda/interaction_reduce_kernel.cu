// CUDA kernel of udl::interaction_reduce: one warp per group; lanes stride over the group's rows
// and combine with a fixed shuffle tree (deterministic for a given launch, no atomics).
// Two passes (mean, then squared deviations), accumulated in double.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include "common/checks.h"
#include "interactions/arg_checks.h"

namespace udl {
namespace {

constexpr int kWarpsPerBlock = 8;

__device__ __forceinline__ double warp_sum(double v) {
  for (int offset = 16; offset > 0; offset >>= 1) v += __shfl_xor_sync(0xffffffffu, v, offset);
  return v;
}

template <typename scalar_t>
__device__ __forceinline__ double delta_of(const scalar_t* q) {
  return static_cast<double>(q[0]) - static_cast<double>(q[1]) - static_cast<double>(q[2]) +
         static_cast<double>(q[3]);
}

template <typename scalar_t>
__global__ void reduce_kernel(const scalar_t* __restrict__ values,
                              const int64_t* __restrict__ offsets, int64_t G,
                              scalar_t* __restrict__ mean, scalar_t* __restrict__ var) {
  const int lane = threadIdx.x & 31;
  const int64_t warp = (static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x) >> 5;
  const int64_t num_warps = (static_cast<int64_t>(gridDim.x) * blockDim.x) >> 5;
  for (int64_t g = warp; g < G; g += num_warps) {
    const int64_t lo = offsets[g], hi = offsets[g + 1];
    const int64_t cnt = hi > lo ? hi - lo : 0;
    double s = 0.0;
    for (int64_t r = lo + lane; r < hi; r += 32) s += delta_of(values + 4 * r);
    s = warp_sum(s);
    const double mu = cnt > 0 ? s / static_cast<double>(cnt) : 0.0;
    double ss = 0.0;
    for (int64_t r = lo + lane; r < hi; r += 32) {
      const double d = delta_of(values + 4 * r) - mu;
      ss += d * d;
    }
    ss = warp_sum(ss);
    if (lane == 0) {
      mean[g] = static_cast<scalar_t>(mu);
      var[g] = static_cast<scalar_t>(cnt > 1 ? ss / static_cast<double>(cnt - 1) : 0.0);
    }
  }
}

std::tuple<at::Tensor, at::Tensor> interaction_reduce_cuda(const at::Tensor& values_in,
                                                           const at::Tensor& offsets_in) {
  interactions::check_reduce_args(values_in, offsets_in);
  UDL_CHECK_CUDA(values_in, "values");
  c10::cuda::CUDAGuard guard(values_in.device());
  const at::Tensor values = values_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous();
  const int64_t G = offsets.size(0) - 1;
  at::Tensor mean = at::empty({G}, values.options());
  at::Tensor var = at::empty({G}, values.options());
  if (G == 0) return {mean, var};
  const int threads = 32 * kWarpsPerBlock;
  const int blocks =
      static_cast<int>(std::min<int64_t>((G + kWarpsPerBlock - 1) / kWarpsPerBlock, 65535));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, values.scalar_type(), "interaction_reduce_cuda", [&] {
        reduce_kernel<scalar_t><<<blocks, threads, 0, stream>>>(
            values.data_ptr<scalar_t>(), offsets.data_ptr<int64_t>(), G,
            mean.data_ptr<scalar_t>(), var.data_ptr<scalar_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
  return {mean, var};
}

}  // namespace

TORCH_LIBRARY_IMPL(udl, CUDA, m) { m.impl("interaction_reduce", &interaction_reduce_cuda); }

}  // namespace udl
