// CPU kernel of udl::interaction_masked_inputs_backward: parallel over elements of x; each
// element sums its gradient over rows and terms in row order (deterministic), in double.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "common/checks.h"
#include "interactions/arg_checks.h"
#include "interactions/sampling.h"

namespace udl {
namespace {

std::tuple<at::Tensor, at::Tensor> interaction_masked_inputs_backward_cpu(
    const at::Tensor& grad_in, const at::Tensor& contexts_in, const at::Tensor& player_map_in,
    const at::Tensor& pairs_in, const at::Tensor& rows_in, int64_t num_players) {
  interactions::check_masked_backward_args(grad_in, contexts_in, player_map_in, pairs_in, rows_in,
                                           num_players);
  UDL_CHECK_CPU(grad_in, "grad");
  const at::Tensor grad = grad_in.contiguous();
  const at::Tensor contexts = contexts_in.contiguous();
  const at::Tensor player_map = player_map_in.contiguous();
  const at::Tensor pairs = pairs_in.contiguous();
  const at::Tensor rows = rows_in.contiguous();
  const int64_t R = rows.size(0), D = player_map.numel(), P = pairs.size(0);
  const int64_t W = contexts.size(1), n = num_players;
  const int64_t* rw = rows.data_ptr<int64_t>();
  for (int64_t r = 0; r < R; ++r) {
    TORCH_CHECK(rw[4 * r] >= 0 && rw[4 * r] < P, "rows[", r, ", 0] (pair index) must be in [0, ",
                P, "), got ", rw[4 * r]);
  }
  at::Tensor grad_x = at::empty(player_map.sizes(), grad.options());
  at::Tensor grad_b = at::empty(player_map.sizes(), grad.options());
  if (D == 0) return {grad_x, grad_b};
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, grad.scalar_type(), "interaction_masked_inputs_backward_cpu", [&] {
        const scalar_t* g = grad.data_ptr<scalar_t>();
        const auto* ctx = reinterpret_cast<const uint64_t*>(contexts.data_ptr<int64_t>());
        const int64_t* pm = player_map.data_ptr<int64_t>();
        const int64_t* pr = pairs.data_ptr<int64_t>();
        scalar_t* gx = grad_x.data_ptr<scalar_t>();
        scalar_t* gb = grad_b.data_ptr<scalar_t>();
        at::parallel_for(0, D, 256, [&](int64_t begin, int64_t end) {
          for (int64_t e = begin; e < end; ++e) {
            const int64_t p = pm[e];
            double sx = 0.0, sb = 0.0;
            for (int64_t r = 0; r < R; ++r) {
              const int64_t i = pr[2 * rw[4 * r]], j = pr[2 * rw[4 * r] + 1];
              const bool in_s = p < 0 || (p < n && interactions::test_bit(ctx + r * W, p));
              const bool is_i = p == i, is_j = p == j;
              interactions::split_term_grads(in_s, is_i, is_j, g + (4 * r) * D + e, D, sx, sb);
            }
            gx[e] = static_cast<scalar_t>(sx);
            gb[e] = static_cast<scalar_t>(sb);
          }
        });
      });
  return {grad_x, grad_b};
}

}  // namespace

TORCH_LIBRARY_IMPL(udl, CPU, m) {
  m.impl("interaction_masked_inputs_backward", &interaction_masked_inputs_backward_cpu);
}

}  // namespace udl
