// CUDA kernel of udl::interaction_masked_inputs: one block per context row. Thread 0 draws the
// context bitset into shared memory (sampling.h: the same integer arithmetic as on the CPU, so
// both devices draw identical contexts), then the whole block writes the row's 4 masked inputs
// in one pass over x (each element read once, written 4 times).
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAGuard.h>
#include <torch/library.h>

#include <algorithm>

#include "common/checks.h"
#include "interactions/arg_checks.h"
#include "interactions/sampling.h"

namespace udl {
namespace {

constexpr int kThreads = 256;

template <typename scalar_t>
__global__ void masked_inputs_kernel(const scalar_t* __restrict__ x,
                                     const scalar_t* __restrict__ baseline,
                                     const int64_t* __restrict__ player_map,
                                     const int64_t* __restrict__ pairs,
                                     const int64_t* __restrict__ rows, int64_t num_rows,
                                     int64_t num_pairs, int64_t n, int64_t num_words, int64_t D,
                                     uint64_t seed, scalar_t* __restrict__ out,
                                     int64_t* __restrict__ contexts) {
  extern __shared__ uint64_t bits[];
  for (int64_t r = blockIdx.x; r < num_rows; r += gridDim.x) {
    const int64_t* row = rows + 4 * r;
    // Invalid rows (the Python wrapper validates; no host sync here) get an empty context.
    const int64_t pidx = row[0];
    const bool valid = pidx >= 0 && pidx < num_pairs && row[1] >= 0 && row[1] <= n - 2;
    const int64_t i = valid ? pairs[2 * pidx] : -2;
    const int64_t j = valid ? pairs[2 * pidx + 1] : -2;
    if (threadIdx.x == 0) {
      if (valid) {
        interactions::make_context(bits, num_words, n, i, j, row[1], row[2], row[3] != 0, seed);
      } else {
        for (int64_t w = 0; w < num_words; ++w) bits[w] = 0ULL;
      }
    }
    __syncthreads();
    for (int64_t w = threadIdx.x; w < num_words; w += blockDim.x) {
      contexts[r * num_words + w] = static_cast<int64_t>(bits[w]);
    }
    scalar_t* o0 = out + (4 * r) * D;
    for (int64_t e = threadIdx.x; e < D; e += blockDim.x) {
      const int64_t p = player_map[e];
      const scalar_t xv = x[e];
      const scalar_t bv = baseline[e];
      const bool in_s = p < 0 || (p < n && interactions::test_bit(bits, p));
      const bool is_i = p == i;
      const bool is_j = p == j;
      o0[e] = (in_s || is_i || is_j) ? xv : bv;
      o0[D + e] = (in_s || is_i) ? xv : bv;
      o0[2 * D + e] = (in_s || is_j) ? xv : bv;
      o0[3 * D + e] = in_s ? xv : bv;
    }
    __syncthreads();  // bits is reused by the next row of this block
  }
}

std::tuple<at::Tensor, at::Tensor> interaction_masked_inputs_cuda(
    const at::Tensor& x_in, const at::Tensor& baseline_in, const at::Tensor& player_map_in,
    const at::Tensor& pairs_in, const at::Tensor& rows_in, int64_t num_players, int64_t seed) {
  interactions::check_masked_inputs_args(x_in, baseline_in, player_map_in, pairs_in, rows_in,
                                         num_players);
  UDL_CHECK_CUDA(x_in, "x");
  c10::cuda::CUDAGuard guard(x_in.device());
  const at::Tensor x = x_in.contiguous();
  const at::Tensor baseline = baseline_in.contiguous();
  const at::Tensor player_map = player_map_in.contiguous();
  const at::Tensor pairs = pairs_in.contiguous();
  const at::Tensor rows = rows_in.contiguous();
  const int64_t n = num_players;
  const int64_t num_rows = rows.size(0);
  const int64_t num_words = (n + 63) / 64;
  const int64_t D = x.numel();
  at::Tensor masked = at::empty(interactions::masked_shape(num_rows, x), x.options());
  at::Tensor contexts = at::empty({num_rows, num_words}, x.options().dtype(at::kLong));
  if (num_rows == 0) return {masked, contexts};
  const size_t smem = static_cast<size_t>(num_words) * sizeof(uint64_t);
  TORCH_CHECK(smem <= 48 * 1024, "num_players=", n, " needs ", smem,
              " bytes of shared memory per block; at most 393216 players are supported");
  const int blocks = static_cast<int>(std::min<int64_t>(num_rows, 1 << 20));
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "interaction_masked_inputs_cuda", [&] {
        masked_inputs_kernel<scalar_t><<<blocks, kThreads, smem, stream>>>(
            x.data_ptr<scalar_t>(), baseline.data_ptr<scalar_t>(),
            player_map.data_ptr<int64_t>(), pairs.data_ptr<int64_t>(), rows.data_ptr<int64_t>(),
            num_rows, pairs.size(0), n, num_words, D, static_cast<uint64_t>(seed),
            masked.data_ptr<scalar_t>(), contexts.data_ptr<int64_t>());
        C10_CUDA_KERNEL_LAUNCH_CHECK();
      });
  return {masked, contexts};
}

}  // namespace

TORCH_LIBRARY_IMPL(udl, CUDA, m) {
  m.impl("interaction_masked_inputs", &interaction_masked_inputs_cuda);
}

}  // namespace udl
