// Schema and device-dispatching entry of udl::interaction_masked_inputs_backward.
//
// Gradient of udl::interaction_masked_inputs with respect to x and the baseline: every output
// element is either x[e] (player present in that term) or baseline[e], so
//   grad_x[e]        = sum over rows r, terms t with e present of grad[r, t, e]
//   grad_baseline[e] = sum over rows r, terms t with e absent  of grad[r, t, e]
// Each element is reduced by one thread in row order: deterministic, no atomics.
//
//   grad        Tensor[R, 4, *F]  floating
//   contexts    Tensor[R, W]      int64 bitsets returned by the forward
//   player_map  Tensor[*F], pairs Tensor[P, 2], rows Tensor[R, 4]: as in the forward
// returns (grad_x Tensor[*F], grad_baseline Tensor[*F]) in grad.dtype
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "common/checks.h"

namespace udl {

std::tuple<at::Tensor, at::Tensor> interaction_masked_inputs_backward(
    const at::Tensor& grad, const at::Tensor& contexts, const at::Tensor& player_map,
    const at::Tensor& pairs, const at::Tensor& rows, int64_t num_players) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("udl::interaction_masked_inputs_backward", "")
                       .typed<decltype(interaction_masked_inputs_backward)>();
  return op.call(grad, contexts, player_map, pairs, rows, num_players);
}

TORCH_LIBRARY_FRAGMENT(udl, m) {
  m.def(
      "interaction_masked_inputs_backward(Tensor grad, Tensor contexts, Tensor player_map, "
      "Tensor pairs, Tensor rows, int num_players) -> (Tensor, Tensor)");
}

}  // namespace udl
