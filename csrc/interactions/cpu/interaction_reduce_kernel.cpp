// CPU kernel of udl::interaction_reduce: per group, a two-pass mean and unbiased variance of
// Delta = v0 - v1 - v2 + v3 over the group's rows, accumulated in double, in row order.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include "common/checks.h"
#include "interactions/arg_checks.h"

namespace udl {
namespace {

std::tuple<at::Tensor, at::Tensor> interaction_reduce_cpu(const at::Tensor& values_in,
                                                          const at::Tensor& offsets_in) {
  interactions::check_reduce_args(values_in, offsets_in);
  UDL_CHECK_CPU(values_in, "values");
  const at::Tensor values = values_in.contiguous();
  const at::Tensor offsets = offsets_in.contiguous();
  const int64_t G = offsets.size(0) - 1;
  const int64_t R = values.size(0);
  const int64_t* off = offsets.data_ptr<int64_t>();
  TORCH_CHECK(off[0] == 0, "offsets[0] must be 0, got ", off[0]);
  TORCH_CHECK(off[G] == R, "offsets[-1] must equal the number of rows of values (", R, "), got ",
              off[G]);
  for (int64_t g = 0; g < G; ++g) {
    TORCH_CHECK(off[g + 1] >= off[g], "offsets must be non-decreasing, got offsets[", g, "] = ",
                off[g], " > offsets[", g + 1, "] = ", off[g + 1]);
  }
  at::Tensor mean = at::empty({G}, values.options());
  at::Tensor var = at::empty({G}, values.options());
  if (G == 0) return {mean, var};
  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, values.scalar_type(), "interaction_reduce_cpu", [&] {
        const scalar_t* v = values.data_ptr<scalar_t>();
        scalar_t* mp = mean.data_ptr<scalar_t>();
        scalar_t* vp = var.data_ptr<scalar_t>();
        at::parallel_for(0, G, 64, [&](int64_t begin, int64_t end) {
          for (int64_t g = begin; g < end; ++g) {
            const int64_t lo = off[g], hi = off[g + 1], cnt = hi - lo;
            double s = 0.0;
            for (int64_t r = lo; r < hi; ++r) {
              const scalar_t* q = v + 4 * r;
              s += static_cast<double>(q[0]) - static_cast<double>(q[1]) -
                   static_cast<double>(q[2]) + static_cast<double>(q[3]);
            }
            const double mu = cnt > 0 ? s / static_cast<double>(cnt) : 0.0;
            double ss = 0.0;
            for (int64_t r = lo; r < hi; ++r) {
              const scalar_t* q = v + 4 * r;
              const double d = static_cast<double>(q[0]) - static_cast<double>(q[1]) -
                               static_cast<double>(q[2]) + static_cast<double>(q[3]) - mu;
              ss += d * d;
            }
            mp[g] = static_cast<scalar_t>(mu);
            vp[g] = static_cast<scalar_t>(cnt > 1 ? ss / static_cast<double>(cnt - 1) : 0.0);
          }
        });
      });
  return {mean, var};
}

}  // namespace

TORCH_LIBRARY_IMPL(udl, CPU, m) { m.impl("interaction_reduce", &interaction_reduce_cpu); }

}  // namespace udl
