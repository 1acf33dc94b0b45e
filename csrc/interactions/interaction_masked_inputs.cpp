// Schema and device-dispatching entry of udl::interaction_masked_inputs.
//
// For a batch of R context rows, each naming a pair (i, j) (by index into `pairs`), an order m and
// a context index k, the op draws the context S (an m-subset of N \ {i, j}, see sampling.h) and
// writes the four masked inputs S u {i, j}, S u {i}, S u {j}, S straight from x, the baseline
// and the player map, in one pass.
//
//   x           Tensor[*F]   floating, one input
//   baseline    Tensor[*F]   same dtype: values of absent players
//   player_map  Tensor[*F]   int64, player id of every element of x in [0, n), or -1 = never masked
//   pairs       Tensor[P, 2] int64, i != j, in [0, n)
//   rows        Tensor[R, 4] int64, (pair index, m, k, enumerate 0/1), 0 <= m <= n - 2
//   num_players n >= 2; seed: the context generator's key
// returns (masked Tensor[R, 4, *F] of x.dtype, contexts Tensor[R, ceil(n / 64)] int64 bitsets)
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "common/checks.h"

namespace udl {

std::tuple<at::Tensor, at::Tensor> interaction_masked_inputs(
    const at::Tensor& x, const at::Tensor& baseline, const at::Tensor& player_map,
    const at::Tensor& pairs, const at::Tensor& rows, int64_t num_players, int64_t seed) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("udl::interaction_masked_inputs", "")
                       .typed<decltype(interaction_masked_inputs)>();
  return op.call(x, baseline, player_map, pairs, rows, num_players, seed);
}

TORCH_LIBRARY_FRAGMENT(udl, m) {
  m.def(
      "interaction_masked_inputs(Tensor x, Tensor baseline, Tensor player_map, Tensor pairs, "
      "Tensor rows, int num_players, int seed) -> (Tensor, Tensor)");
}

}  // namespace udl
