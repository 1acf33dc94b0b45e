// CPU kernel of udl::wl_refine: exact canonical colour refinement.
//
// The arcs are bucketed by destination once (counting sort: a CSR of the neighbour lists). Each
// round, in parallel over nodes, the items code * C + colour(src) of a node are gathered and sorted
// (C = number of colours of the previous round, so the item order is the lexicographic order of the
// pairs (code, colour)); the signatures (own colour, degree, sorted items) are then ranked exactly by
// wl::rank_signatures. The loop stops after max_rounds rounds or when a round does not split any
// class (that round is not recorded: its colouring is a renaming of the previous one).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <limits>
#include <vector>

#include "common/checks.h"
#include "wl/cpu/wl_rank.h"

namespace udl {
namespace {

void check_inputs(const at::Tensor& dst, const at::Tensor& src, const at::Tensor& code,
                  const at::Tensor& colors, int64_t num_codes) {
  UDL_CHECK_DIM(dst, "dst", 1);
  UDL_CHECK_DIM(src, "src", 1);
  UDL_CHECK_DIM(code, "code", 1);
  UDL_CHECK_DIM(colors, "colors", 1);
  UDL_CHECK_DTYPE(dst, "dst", at::kLong);
  UDL_CHECK_DTYPE(src, "src", at::kLong);
  UDL_CHECK_DTYPE(code, "code", at::kLong);
  UDL_CHECK_DTYPE(colors, "colors", at::kLong);
  TORCH_CHECK(dst.numel() == src.numel() && dst.numel() == code.numel(),
              "dst, src and code must have the same length, got ", dst.numel(), ", ", src.numel(),
              " and ", code.numel());
  TORCH_CHECK(num_codes >= 1, "num_codes must be >= 1, got ", num_codes);
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> wl_refine_cpu(const at::Tensor& dst_, const at::Tensor& src_,
                                                 const at::Tensor& code_, const at::Tensor& colors_,
                                                 int64_t num_codes, int64_t max_rounds,
                                                 bool return_history) {
  check_inputs(dst_, src_, code_, colors_, num_codes);
  UDL_CHECK_CPU(dst_, "dst");
  UDL_CHECK_CPU(src_, "src");
  UDL_CHECK_CPU(code_, "code");
  UDL_CHECK_CPU(colors_, "colors");
  const at::Tensor dst = dst_.contiguous(), src = src_.contiguous(), code = code_.contiguous();
  const at::Tensor colors0 = colors_.contiguous();
  const int64_t N = colors0.numel();
  const int64_t A = dst.numel();
  auto opts = colors0.options();
  if (N == 0) {
    TORCH_CHECK(A == 0, "dst: arcs given for a graph with no nodes");
    return {at::empty({1, 0}, opts), at::zeros({1}, opts)};
  }
  const int64_t* d = dst.data_ptr<int64_t>();
  const int64_t* s = src.data_ptr<int64_t>();
  const int64_t* cd = code.data_ptr<int64_t>();
  const int64_t* c0 = colors0.data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i)
    TORCH_CHECK(c0[i] >= 0 && c0[i] < N, "colors must lie in [0, N=", N, "), got ", c0[i],
                " at node ", i);

  // CSR by destination (stable counting sort, so the arc order inside a row is the input order).
  std::vector<int64_t> rowptr(N + 1, 0);
  for (int64_t a = 0; a < A; ++a) {
    TORCH_CHECK(d[a] >= 0 && d[a] < N, "dst must lie in [0, N=", N, "), got ", d[a], " at arc ", a);
    TORCH_CHECK(s[a] >= 0 && s[a] < N, "src must lie in [0, N=", N, "), got ", s[a], " at arc ", a);
    TORCH_CHECK(cd[a] >= 0 && cd[a] < num_codes, "code must lie in [0, num_codes=", num_codes,
                "), got ", cd[a], " at arc ", a);
    ++rowptr[d[a] + 1];
  }
  for (int64_t v = 0; v < N; ++v) rowptr[v + 1] += rowptr[v];
  std::vector<int64_t> nbr(A), ncode(A);
  {
    std::vector<int64_t> fill(rowptr.begin(), rowptr.end() - 1);
    for (int64_t a = 0; a < A; ++a) {
      const int64_t p = fill[d[a]]++;
      nbr[p] = s[a];
      ncode[p] = cd[a];
    }
  }
  TORCH_CHECK(num_codes <= std::numeric_limits<int64_t>::max() / N,
              "num_codes * num_nodes overflows int64 (num_codes=", num_codes, ", N=", N, ")");

  std::vector<at::Tensor> history;
  std::vector<int64_t> counts;
  at::Tensor cur = colors0.clone();
  int64_t C = wl::count_distinct(cur.data_ptr<int64_t>(), N, N);
  history.push_back(cur);
  counts.push_back(C);
  std::vector<uint64_t> items(A);
  int64_t rounds = 0;
  while (max_rounds < 0 || rounds < max_rounds) {
    const int64_t* c = cur.data_ptr<int64_t>();
    // Items are code * bound + colour; bound = max colour + 1 keeps the order of (code, colour).
    const uint64_t bound = static_cast<uint64_t>(N);
    at::parallel_for(0, N, 1024, [&](int64_t b, int64_t e) {
      for (int64_t v = b; v < e; ++v) {
        const int64_t lo = rowptr[v], hi = rowptr[v + 1];
        for (int64_t p = lo; p < hi; ++p)
          items[p] = static_cast<uint64_t>(ncode[p]) * bound + static_cast<uint64_t>(c[nbr[p]]);
        std::sort(items.begin() + lo, items.begin() + hi);
      }
    });
    at::Tensor next = at::empty({N}, opts);
    const int64_t D =
        wl::rank_signatures<uint64_t>(c, rowptr.data(), items.data(), N, next.data_ptr<int64_t>());
    if (D == C) break;  // no class split: stable
    ++rounds;
    C = D;
    cur = next;
    if (return_history) {
      history.push_back(cur);
    } else {
      history[0] = cur;
    }
    counts.push_back(C);
  }
  at::Tensor num_colors = at::tensor(counts, opts);
  at::Tensor out = return_history ? at::stack(history) : history[0].unsqueeze(0);
  return {out, num_colors};
}

TORCH_LIBRARY_IMPL(udl, CPU, m) { m.impl("wl_refine", &wl_refine_cpu); }

}  // namespace udl
