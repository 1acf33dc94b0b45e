// Schema and device-dispatching entry of udl::interaction_reduce.
//
// Turns the model values of the 4 masked inputs of every context row into the mean and the
// unbiased variance of Delta = v(S u {i,j}) - v(S u {i}) - v(S u {j}) + v(S) per group of rows
// (one group = one (pair, order)). Groups are contiguous row segments given by CSR offsets, so
// the reduction is a fixed-order loop: deterministic, no atomics.
//
//   values   Tensor[R, 4] floating
//   offsets  Tensor[G + 1] int64, offsets[0] = 0, non-decreasing, offsets[G] = R
// returns (mean Tensor[G], var Tensor[G]) in values.dtype; var = 0 for groups of < 2 rows and
// mean = 0 for empty groups. Accumulation in double.
#include <ATen/ATen.h>
#include <ATen/core/dispatch/Dispatcher.h>
#include <torch/library.h>

#include "common/checks.h"

namespace udl {

std::tuple<at::Tensor, at::Tensor> interaction_reduce(const at::Tensor& values,
                                                      const at::Tensor& offsets) {
  static auto op = c10::Dispatcher::singleton()
                       .findSchemaOrThrow("udl::interaction_reduce", "")
                       .typed<decltype(interaction_reduce)>();
  return op.call(values, offsets);
}

TORCH_LIBRARY_FRAGMENT(udl, m) {
  m.def("interaction_reduce(Tensor values, Tensor offsets) -> (Tensor, Tensor)");
}

}  // namespace udl
