// CPU kernel of udl::interaction_masked_inputs: one parallel task per context row draws the
// context bitset, writes the S term (a copy of x or the baseline, patched on the minority players),
// then copies it and patches players i, j for the other three terms.
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <vector>

#include "common/checks.h"
#include "interactions/arg_checks.h"
#include "interactions/sampling.h"

namespace udl {
namespace {

std::tuple<at::Tensor, at::Tensor> interaction_masked_inputs_cpu(
    const at::Tensor& x_in, const at::Tensor& baseline_in, const at::Tensor& player_map_in,
    const at::Tensor& pairs_in, const at::Tensor& rows_in, int64_t num_players, int64_t seed) {
  interactions::check_masked_inputs_args(x_in, baseline_in, player_map_in, pairs_in, rows_in,
                                         num_players);
  UDL_CHECK_CPU(x_in, "x");
  const at::Tensor x = x_in.contiguous();
  const at::Tensor baseline = baseline_in.contiguous();
  const at::Tensor player_map = player_map_in.contiguous();
  const at::Tensor pairs = pairs_in.contiguous();
  const at::Tensor rows = rows_in.contiguous();

  const int64_t n = num_players;
  const int64_t num_rows = rows.size(0);
  const int64_t num_pairs = pairs.size(0);
  const int64_t num_words = (n + 63) / 64;
  const int64_t D = x.numel();

  // Value checks (cheap on the host; the CUDA path relies on the Python wrapper for these).
  const int64_t* pm = player_map.data_ptr<int64_t>();
  for (int64_t e = 0; e < D; ++e) {
    TORCH_CHECK(pm[e] >= -1 && pm[e] < n, "player_map values must be in [-1, num_players=", n,
                "), got ", pm[e], " at flat index ", e);
  }
  const int64_t* pr = pairs.data_ptr<int64_t>();
  for (int64_t p = 0; p < num_pairs; ++p) {
    const int64_t i = pr[2 * p], j = pr[2 * p + 1];
    TORCH_CHECK(i >= 0 && i < n && j >= 0 && j < n, "pairs[", p, "] = (", i, ", ", j,
                ") is out of range [0, num_players=", n, ")");
    TORCH_CHECK(i != j, "pairs[", p, "] = (", i, ", ", j, ") must name two different players");
  }
  const int64_t* rw = rows.data_ptr<int64_t>();
  for (int64_t r = 0; r < num_rows; ++r) {
    const int64_t* row = rw + 4 * r;
    TORCH_CHECK(row[0] >= 0 && row[0] < num_pairs, "rows[", r, ", 0] (pair index) must be in [0, ",
                num_pairs, "), got ", row[0]);
    TORCH_CHECK(row[1] >= 0 && row[1] <= n - 2, "rows[", r, ", 1] (order m) must be in [0, n-2=",
                n - 2, "], got ", row[1]);
    TORCH_CHECK(row[2] >= 0, "rows[", r, ", 2] (context index k) must be >= 0, got ", row[2]);
  }

  at::Tensor masked = at::empty(interactions::masked_shape(num_rows, x), x.options());
  at::Tensor contexts = at::zeros({num_rows, num_words}, x.options().dtype(at::kLong));
  if (num_rows == 0) return {masked, contexts};

  // Elements of each player (CSR), so the three terms that differ from S only on players i and j
  // can be copied from the S term and patched, instead of re-selecting every element four times.
  std::vector<int64_t> elem_ptr(static_cast<size_t>(n + 2), 0);
  for (int64_t e = 0; e < D; ++e) ++elem_ptr[pm[e] + 2];
  for (int64_t p = 0; p <= n; ++p) elem_ptr[p + 1] += elem_ptr[p];
  std::vector<int64_t> elem_idx(static_cast<size_t>(D));
  {
    std::vector<int64_t> fill(elem_ptr.begin(), elem_ptr.end() - 1);
    for (int64_t e = 0; e < D; ++e) elem_idx[fill[pm[e] + 1]++] = e;
  }
  // elements of player p: elem_idx[elem_ptr[p + 1] .. elem_ptr[p + 2])

  AT_DISPATCH_FLOATING_TYPES_AND2(
      at::kHalf, at::kBFloat16, x.scalar_type(), "interaction_masked_inputs_cpu", [&] {
        const scalar_t* xp = x.data_ptr<scalar_t>();
        const scalar_t* bp = baseline.data_ptr<scalar_t>();
        scalar_t* out = masked.data_ptr<scalar_t>();
        auto* ctx = reinterpret_cast<uint64_t*>(contexts.data_ptr<int64_t>());
        const int64_t grain = std::max<int64_t>(1, 16384 / std::max<int64_t>(D, 1));
        at::parallel_for(0, num_rows, grain, [&](int64_t begin, int64_t end) {
          for (int64_t r = begin; r < end; ++r) {
            const int64_t* row = rw + 4 * r;
            const int64_t i = pr[2 * row[0]], j = pr[2 * row[0] + 1];
            uint64_t* bits = ctx + r * num_words;
            interactions::make_context(bits, num_words, n, i, j, row[1], row[2], row[3] != 0,
                                       static_cast<uint64_t>(seed));
            scalar_t* o0 = out + (4 * r) * D;  // S u {i, j}
            scalar_t* o1 = o0 + D;             // S u {i}
            scalar_t* o2 = o1 + D;             // S u {j}
            scalar_t* o3 = o2 + D;             // S
            // The S term: copy whichever of x / baseline covers more players, then scatter the
            // minority's elements (|S| = m of n players; min(m, n - m) players are patched).
            const bool base_x = 2 * row[1] >= n;
            std::copy(base_x ? xp : bp, (base_x ? xp : bp) + D, o3);
            const scalar_t* patch = base_x ? bp : xp;
            if (!base_x) {  // elements of no player (-1) are always the input
              for (int64_t q = elem_ptr[0]; q < elem_ptr[1]; ++q) o3[elem_idx[q]] = xp[elem_idx[q]];
            }
            for (int64_t p = 0; p < n; ++p) {
              if (interactions::test_bit(bits, p) != base_x) {
                for (int64_t q = elem_ptr[p + 1]; q < elem_ptr[p + 2]; ++q) {
                  const int64_t e = elem_idx[q];
                  o3[e] = patch[e];
                }
              }
            }
            std::copy(o3, o3 + D, o0);
            std::copy(o3, o3 + D, o1);
            std::copy(o3, o3 + D, o2);
            for (int64_t q = elem_ptr[i + 1]; q < elem_ptr[i + 2]; ++q) {
              const int64_t e = elem_idx[q];
              o0[e] = xp[e];
              o1[e] = xp[e];
            }
            for (int64_t q = elem_ptr[j + 1]; q < elem_ptr[j + 2]; ++q) {
              const int64_t e = elem_idx[q];
              o0[e] = xp[e];
              o2[e] = xp[e];
            }
          }
        });
      });
  return {masked, contexts};
}

}  // namespace

TORCH_LIBRARY_IMPL(udl, CPU, m) {
  m.impl("interaction_masked_inputs", &interaction_masked_inputs_cpu);
}

}  // namespace udl
