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

#include <atomic>
#include <limits>
#include <vector>

#include "common/checks.h"
#include "wl/cpu/wl_rank.h"

namespace udl {
namespace {

void check_inputs(const at::Tensor& dst, const at::Tensor& src, const at::Tensor& code,
                  const at::Tensor& colors, int64_t num_codes, int64_t arc_mode) {
  UDL_CHECK_DIM(dst, "dst", 1);
  UDL_CHECK_DIM(src, "src", 1);
  UDL_CHECK_DIM(code, "code", 1);
  UDL_CHECK_DIM(colors, "colors", 1);
  UDL_CHECK_DTYPE(dst, "dst", at::kLong);
  UDL_CHECK_DTYPE(src, "src", at::kLong);
  UDL_CHECK_DTYPE(code, "code", at::kLong);
  UDL_CHECK_DTYPE(colors, "colors", at::kLong);
  TORCH_CHECK(dst.numel() == src.numel() && (code.numel() == dst.numel() || code.numel() == 0),
              "dst, src and code must have the same length (code may be empty), got ", dst.numel(),
              ", ", src.numel(), " and ", code.numel());
  TORCH_CHECK(num_codes >= 1, "num_codes must be >= 1, got ", num_codes);
  TORCH_CHECK(arc_mode >= 0 && arc_mode <= 2,
              "arc_mode must be 0 (as given), 1 (add reverse arcs) or 2 (auto), got ", arc_mode);
}

// Rows of a CSR: row r holds packed[p] = code * N + other endpoint, sorted ascending.
struct Csr {
  std::vector<int64_t> ptr;
  std::vector<uint64_t> packed;
};

Csr build_csr(const int64_t* row, const int64_t* other, const int64_t* cd, int64_t A, int64_t N,
              bool skip_loops) {
  Csr c;
  c.ptr.assign(N + 1, 0);
  for (int64_t a = 0; a < A; ++a)
    if (!(skip_loops && row[a] == other[a])) ++c.ptr[row[a] + 1];
  for (int64_t v = 0; v < N; ++v) c.ptr[v + 1] += c.ptr[v];
  c.packed.resize(c.ptr[N]);
  std::vector<int64_t> fill(c.ptr.begin(), c.ptr.end() - 1);
  const uint64_t n = static_cast<uint64_t>(N);
  for (int64_t a = 0; a < A; ++a) {
    if (skip_loops && row[a] == other[a]) continue;
    const uint64_t code = cd ? static_cast<uint64_t>(cd[a]) : 0;
    c.packed[fill[row[a]]++] = code * n + static_cast<uint64_t>(other[a]);
  }
  at::parallel_for(0, N, 2048, [&](int64_t b, int64_t e) {
    for (int64_t v = b; v < e; ++v)
      std::sort(c.packed.begin() + c.ptr[v], c.packed.begin() + c.ptr[v + 1]);
  });
  return c;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> wl_refine_cpu(const at::Tensor& dst_, const at::Tensor& src_,
                                                 const at::Tensor& code_, const at::Tensor& colors_,
                                                 int64_t num_codes, int64_t arc_mode,
                                                 int64_t max_rounds, bool return_history) {
  check_inputs(dst_, src_, code_, colors_, num_codes, arc_mode);
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
  const int64_t* cd = code.numel() ? code.data_ptr<int64_t>() : nullptr;
  const int64_t* c0 = colors0.data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i)
    TORCH_CHECK(c0[i] >= 0 && c0[i] < N, "colors must lie in [0, N=", N, "), got ", c0[i],
                " at node ", i);
  for (int64_t a = 0; a < A; ++a) {
    TORCH_CHECK(d[a] >= 0 && d[a] < N, "dst must lie in [0, N=", N, "), got ", d[a], " at arc ", a);
    TORCH_CHECK(s[a] >= 0 && s[a] < N, "src must lie in [0, N=", N, "), got ", s[a], " at arc ", a);
    if (cd)
      TORCH_CHECK(cd[a] >= 0 && cd[a] < num_codes, "code must lie in [0, num_codes=", num_codes,
                  "), got ", cd[a], " at arc ", a);
  }
  TORCH_CHECK(num_codes <= std::numeric_limits<int64_t>::max() / N,
              "num_codes * num_nodes overflows int64 (num_codes=", num_codes, ", N=", N, ")");

  // Neighbour lists: row v holds the packed (code, neighbour) of every item of v.
  Csr in = build_csr(d, s, cd, A, N, /*skip_loops=*/false);
  bool add_reverse = arc_mode == 1;
  Csr out;
  if (arc_mode >= 1) out = build_csr(s, d, cd, A, N, /*skip_loops=*/arc_mode == 1);
  if (arc_mode == 2) {
    // Symmetric iff every row of the in-CSR equals the same row of the out-CSR (loops included).
    std::atomic<bool> symmetric{true};
    at::parallel_for(0, N, 2048, [&](int64_t b, int64_t e) {
      for (int64_t v = b; v < e && symmetric.load(std::memory_order_relaxed); ++v) {
        if (in.ptr[v + 1] - in.ptr[v] != out.ptr[v + 1] - out.ptr[v] ||
            !std::equal(in.packed.begin() + in.ptr[v], in.packed.begin() + in.ptr[v + 1],
                        out.packed.begin() + out.ptr[v]))
          symmetric.store(false, std::memory_order_relaxed);
      }
    });
    if (!symmetric.load()) {
      add_reverse = true;
      out = build_csr(s, d, cd, A, N, /*skip_loops=*/true);
    }
  }
  std::vector<int64_t> rowptr;
  std::vector<int64_t> nbr, ncode;
  if (add_reverse) {
    rowptr.assign(N + 1, 0);
    for (int64_t v = 0; v < N; ++v)
      rowptr[v + 1] = rowptr[v] + (in.ptr[v + 1] - in.ptr[v]) + (out.ptr[v + 1] - out.ptr[v]);
  } else {
    rowptr = in.ptr;
  }
  const int64_t M = rowptr[N];
  nbr.resize(M);
  ncode.resize(M);
  const uint64_t n64 = static_cast<uint64_t>(N);
  at::parallel_for(0, N, 2048, [&](int64_t b, int64_t e) {
    for (int64_t v = b; v < e; ++v) {
      int64_t p = rowptr[v];
      for (int64_t q = in.ptr[v]; q < in.ptr[v + 1]; ++q, ++p) {
        nbr[p] = static_cast<int64_t>(in.packed[q] % n64);
        ncode[p] = static_cast<int64_t>(in.packed[q] / n64);
      }
      if (add_reverse) {
        for (int64_t q = out.ptr[v]; q < out.ptr[v + 1]; ++q, ++p) {
          nbr[p] = static_cast<int64_t>(out.packed[q] % n64);
          ncode[p] = static_cast<int64_t>(out.packed[q] / n64);
        }
      }
    }
  });
  in = Csr();
  out = Csr();

  std::vector<at::Tensor> history;
  std::vector<int64_t> counts;
  at::Tensor cur = colors0.clone();
  int64_t C = wl::count_distinct(cur.data_ptr<int64_t>(), N, N);
  history.push_back(cur);
  counts.push_back(C);
  std::vector<uint64_t> items(M);
  int64_t rounds = 0;
  while ((max_rounds < 0 || rounds < max_rounds) && C < N) {  // C == N: discrete, stable
    const int64_t* c = cur.data_ptr<int64_t>();
    // Items are code * N + colour: their order is the lexicographic order of (code, colour).
    at::parallel_for(0, N, 1024, [&](int64_t b, int64_t e) {
      for (int64_t v = b; v < e; ++v) {
        const int64_t lo = rowptr[v], hi = rowptr[v + 1];
        for (int64_t p = lo; p < hi; ++p)
          items[p] = static_cast<uint64_t>(ncode[p]) * n64 + static_cast<uint64_t>(c[nbr[p]]);
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
  at::Tensor result = return_history ? at::stack(history) : history[0].unsqueeze(0);
  return {result, num_colors};
}

TORCH_LIBRARY_IMPL(udl, CPU, m) { m.impl("wl_refine", &wl_refine_cpu); }

}  // namespace udl
