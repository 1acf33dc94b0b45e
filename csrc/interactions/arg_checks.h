// Input checks shared by the CPU and CUDA interaction kernels (shapes and dtypes only: value
// checks that would need a device sync are done by the CPU kernel and the Python wrapper).
#pragma once
#include <ATen/ATen.h>

#include "common/checks.h"

namespace udl {
namespace interactions {

inline void check_masked_inputs_args(const at::Tensor& x, const at::Tensor& baseline,
                                     const at::Tensor& player_map, const at::Tensor& pairs,
                                     const at::Tensor& rows, int64_t num_players) {
  UDL_CHECK_FLOATING(x, "x");
  TORCH_CHECK(baseline.scalar_type() == x.scalar_type(), "baseline must have the dtype of x (",
              x.scalar_type(), "), got ", baseline.scalar_type());
  TORCH_CHECK(baseline.sizes() == x.sizes(), "baseline must have the shape of x ", x.sizes(),
              ", got ", baseline.sizes());
  UDL_CHECK_DTYPE(player_map, "player_map", at::kLong);
  TORCH_CHECK(player_map.sizes() == x.sizes(), "player_map must have the shape of x ", x.sizes(),
              ", got ", player_map.sizes());
  UDL_CHECK_DTYPE(pairs, "pairs", at::kLong);
  TORCH_CHECK(pairs.dim() == 2 && pairs.size(1) == 2, "pairs must have shape [P, 2], got ",
              pairs.sizes());
  UDL_CHECK_DTYPE(rows, "rows", at::kLong);
  TORCH_CHECK(rows.dim() == 2 && rows.size(1) == 4,
              "rows must have shape [R, 4] (pair index, m, k, enumerate), got ", rows.sizes());
  TORCH_CHECK(num_players >= 2, "num_players must be >= 2, got ", num_players);
  UDL_CHECK_SAME_DEVICE(x, "x", baseline, "baseline");
  UDL_CHECK_SAME_DEVICE(x, "x", player_map, "player_map");
  UDL_CHECK_SAME_DEVICE(x, "x", pairs, "pairs");
  UDL_CHECK_SAME_DEVICE(x, "x", rows, "rows");
}

inline void check_reduce_args(const at::Tensor& values, const at::Tensor& offsets) {
  UDL_CHECK_FLOATING(values, "values");
  TORCH_CHECK(values.dim() == 2 && values.size(1) == 4, "values must have shape [R, 4], got ",
              values.sizes());
  UDL_CHECK_DTYPE(offsets, "offsets", at::kLong);
  TORCH_CHECK(offsets.dim() == 1 && offsets.size(0) >= 1,
              "offsets must be a 1-D tensor of G + 1 >= 1 row offsets, got shape ",
              offsets.sizes());
  UDL_CHECK_SAME_DEVICE(values, "values", offsets, "offsets");
}

inline std::vector<int64_t> masked_shape(int64_t num_rows, const at::Tensor& x) {
  std::vector<int64_t> shape{num_rows, 4};
  for (auto s : x.sizes()) shape.push_back(s);
  return shape;
}

}  // namespace interactions
}  // namespace udl

namespace udl {
namespace interactions {

inline void check_masked_backward_args(const at::Tensor& grad, const at::Tensor& contexts,
                                       const at::Tensor& player_map, const at::Tensor& pairs,
                                       const at::Tensor& rows, int64_t num_players) {
  UDL_CHECK_FLOATING(grad, "grad");
  TORCH_CHECK(num_players >= 2, "num_players must be >= 2, got ", num_players);
  UDL_CHECK_DTYPE(rows, "rows", at::kLong);
  TORCH_CHECK(rows.dim() == 2 && rows.size(1) == 4, "rows must have shape [R, 4], got ",
              rows.sizes());
  const int64_t R = rows.size(0);
  TORCH_CHECK(grad.dim() >= 2 && grad.size(0) == R && grad.size(1) == 4,
              "grad must have shape [R, 4, *F] with R = ", R, ", got ", grad.sizes());
  TORCH_CHECK(grad.sizes().slice(2) == player_map.sizes(),
              "grad must have shape [R, 4, *F] with F = player_map's shape ", player_map.sizes(),
              ", got ", grad.sizes());
  UDL_CHECK_DTYPE(player_map, "player_map", at::kLong);
  UDL_CHECK_DTYPE(contexts, "contexts", at::kLong);
  TORCH_CHECK(contexts.dim() == 2 && contexts.size(0) == R &&
                  contexts.size(1) == (num_players + 63) / 64,
              "contexts must have shape [R, ceil(n / 64)] = [", R, ", ", (num_players + 63) / 64,
              "], got ", contexts.sizes());
  UDL_CHECK_DTYPE(pairs, "pairs", at::kLong);
  TORCH_CHECK(pairs.dim() == 2 && pairs.size(1) == 2, "pairs must have shape [P, 2], got ",
              pairs.sizes());
  UDL_CHECK_SAME_DEVICE(grad, "grad", contexts, "contexts");
  UDL_CHECK_SAME_DEVICE(grad, "grad", player_map, "player_map");
  UDL_CHECK_SAME_DEVICE(grad, "grad", pairs, "pairs");
  UDL_CHECK_SAME_DEVICE(grad, "grad", rows, "rows");
}

}  // namespace interactions
}  // namespace udl
