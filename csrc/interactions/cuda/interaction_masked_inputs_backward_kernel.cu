// CUDA kernel of udl::interaction_masked_inputs_backward: one thread per element of x, looping
// over rows in order (coalesced across threads; deterministic, no atomics), double accumulation.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/cuda/CUDAStream.h>
#include <torch/library.h>

#include <algorithm>

#include "common/checks.h"
#include "interactions/arg_checks.h"
#include "interactions/sampling.h"

namespace udl {
namespace {

template <typename scalar_t>
__global__ void masked_backward_kernel(const scalar_t* __restrict__ g,
                                       const uint64_t* __restrict__ ctx,
                                       const int64_t* __restrict__ pm,
                                       const int64_t* __restrict__ pairs,
                                       const int64_t* __restrict__ rows, int64_t R, int64_t P,
                                       int64_t D, int64_t W, int64_t n,
                                       scalar_t* __restrict__ gx, scalar_t* __restrict__ gb) {
  for (int64_t e = static_cast<int64_t>(blockIdx.x) * blockDim.x + threadIdx.x; e < D;
       e += static_cast<int64_t>(gridDim.x) * blockDim.x) {
    const int64_t p = pm[e];
    double sx = 0.0, sb = 0.0;
    for (int64_t r = 0; r < R; ++r) {
      const int64_t pidx = rows[4 * r];
      const bool valid = pidx >= 0 && pidx < P;
      const int64_t i = valid ? pairs[2 * pidx] : -2, j = valid ? pairs[2 * pidx + 1] : -2;
      const bool in_s = p < 0 || (p < n && interactions::test_bit(ctx + r * W, p));
      const bool is_i = p == i, is_j = p == j;
      interactions::split_term_grads(in_s, is_i, is_j, g + (4 * r) * D + e, D, sx, sb);
    }
    gx[e] = static_cast<scalar_t>(sx);
    gb[e] = static_cast<scalar_t>(sb);
  }
}

std::tuple<at::Tensor, at::Tensor> interaction_masked_inputs_backward_cuda(
    const at::Tensor& grad_in, const at::Tensor& contexts_in, const at::Tensor& player_map_in,
    const at::Tensor& pairs_in, const at::Tensor& rows_in, int64_t num_players) {
  interactions::check_masked_backward_args(grad_in, contexts_in, player_map_in, pairs_in, rows_in,
                                           num_players);
  UDL_CHECK_CUDA(grad_in, "grad");
  c10::cuda::CUDAGuard guard(grad_in.device());
  const at::Tensor grad = grad_in.contiguous();
  const at::Tensor contexts = contexts_in.contiguous();
  const at::Tensor player_map = player_map_in.contiguous();
  const at::Tensor pairs = pairs_in.contiguous();
  const at::Tensor rows = rows_in.contiguous();
  const int64_t R = rows.size(0), D = player_map.numel();
  at::Tensor grad_x = at::empty(player_map.sizes(), grad.options());
  at::Tensor grad_b = at::empty(player_map.sizes(), grad.options());
  if (D == 0) return {grad_x, grad_b};
  const int threads = 256;
  const int blocks = static_cast<int>(std::min<int64_t>((D + threads - 1) / threads, 65535));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad.scalar_type(), "interaction_masked_inputs_backward_cuda",
      [&] {
        masked_backward_kernel<scalar_t><<<blocks, threads, 0, stream>>>(
            grad.data_ptr<scalar_t>(),
            reinterpret_cast<const uint64_t*>(contexts.data_ptr<int64_t>()),
            player_map.data_ptr<int64_t>(), pairs.data_ptr<int64_t>(), rows.data_ptr<int64_t>(),
            R, pairs.size(0), D, contexts.size(1), num_players, grad_x.data_ptr<scalar_t>(),
            grad_b.data_ptr<scalar_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
  return {grad_x, grad_b};
}

}  // namespace

TORCH_LIBRARY_IMPL(udl, CUDA, m) {
  m.impl("interaction_masked_inputs_backward", &interaction_masked_inputs_backward_cuda);
}

}  // namespace udl
