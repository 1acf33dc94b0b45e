// CPU kernel of udl::wl_refine_tuples: exact canonical k-WL on the k-tuples of a batch of graphs.
//
// Tuples of graph g (n = n_g nodes) are stored in row-major order starting at tuple_off[g]. With
// B = total number of tuples (an upper bound of every colour id), the sorted item list of a tuple t is
//   k-FWL (mode 0): for every u, the base-B number (c(t[1<-u]), ..., c(t[k<-u]))   (n items)
//   k-OWL (mode 1): for every position j and u, j * B + c(t[j<-u])                 (k * n items)
//   1-FWL (mode 2): for every u, pair_code(v, u) * B + c(u)                         (n items)
// i.e. the multiset(s) of the update rule, encoded so that the integer order equals the
// lexicographic order of the tuples of colours. The signatures (own colour, items) are ranked
// exactly by wl::rank_signatures; rounds stop as in wl_refine.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cmath>
#include <limits>
#include <vector>

#include "common/checks.h"
#include "wl/arg_checks.h"
#include "wl/cpu/wl_rank.h"

namespace udl {
namespace {

struct Layout {
  std::vector<int64_t> n;          // nodes per graph
  std::vector<int64_t> tuple_off;  // [B + 1]
  std::vector<int64_t> pair_off;   // [B + 1] offsets into pair_code (mode 2)
  std::vector<int64_t> len;        // items per tuple, per graph
  int64_t N = 0;
};

// Largest item value + 1 for colours < base (pair codes < 2^20 for 1-FWL).
inline long double item_top(int64_t k, int64_t mode, int64_t base) {
  const long double B = static_cast<long double>(base);
  if (mode == 0) return (k == 2) ? B * B : B * B * B;
  if (mode == 1) return k * B;
  return B * 1048576.0L;
}

// Sorts one tuple's items ascending. 32-bit items of at most 24 bits in long lists use an LSD radix
// sort (8-bit digits, `passes` of them) with scratch space tmp; anything else uses std::sort.
template <typename Item>
inline void sort_items(Item* out, int64_t len, std::vector<Item>& /*tmp*/, int /*passes*/) {
  std::sort(out, out + len);
}

inline void sort_items(uint32_t* out, int64_t len, std::vector<uint32_t>& tmp, int passes) {
  if (len < 48 || passes > 3) {
    std::sort(out, out + len);
    return;
  }
  if (static_cast<int64_t>(tmp.size()) < len) tmp.resize(static_cast<size_t>(len));
  uint32_t* a = out;
  uint32_t* b = tmp.data();
  for (int p = 0; p < passes; ++p) {
    const int shift = 8 * p;
    uint32_t cnt[256] = {0};
    for (int64_t j = 0; j < len; ++j) ++cnt[(a[j] >> shift) & 255u];
    uint32_t sum = 0;
    for (int d = 0; d < 256; ++d) {
      const uint32_t x = cnt[d];
      cnt[d] = sum;
      sum += x;
    }
    for (int64_t j = 0; j < len; ++j) b[cnt[(a[j] >> shift) & 255u]++] = a[j];
    std::swap(a, b);
  }
  if (a != out) std::copy(a, a + len, out);
}

// base: an upper bound of every colour id of this round (max colour + 1). Encoding the items in base
// `base` instead of base N gives the same order (every digit is < base), so the ranks, and hence the
// canonical ids, do not change; small bases let the items fit in 32 bits (half the memory traffic).
template <typename Item>
void fill_items(const Layout& L, int64_t k, int64_t mode, const int64_t* c, const int64_t* pc,
                const std::vector<int64_t>& ptr, std::vector<Item>& items, int64_t base) {
  const Item B = static_cast<Item>(base);
  const int64_t G = static_cast<int64_t>(L.n.size());
  const long double top = item_top(k, mode, base);
  int passes = 1;
  while (passes < 8 && top > std::ldexp(1.0L, 8 * passes)) ++passes;
  at::parallel_for(0, L.N, 256, [&](int64_t b, int64_t e) {
    std::vector<Item> tmp;
    int64_t g = std::upper_bound(L.tuple_off.begin(), L.tuple_off.end(), b) - L.tuple_off.begin() - 1;
    for (int64_t i = b; i < e; ++i) {
      while (g + 1 < G && i >= L.tuple_off[g + 1]) ++g;
      const int64_t n = L.n[g];
      const int64_t base = L.tuple_off[g];
      const int64_t t = i - base;
      const int64_t* cg = c + base;
      Item* out = items.data() + ptr[i];
      if (mode == 0 && k == 2) {
        const int64_t v = t / n, w = t % n;
        for (int64_t u = 0; u < n; ++u)
          out[u] = static_cast<Item>(cg[u * n + w]) * B + static_cast<Item>(cg[v * n + u]);
      } else if (mode == 0 && k == 3) {
        const int64_t x = t / (n * n), y = (t / n) % n, z = t % n;
        for (int64_t u = 0; u < n; ++u) {
          const Item a = static_cast<Item>(cg[(u * n + y) * n + z]);
          const Item bb = static_cast<Item>(cg[(x * n + u) * n + z]);
          const Item cc = static_cast<Item>(cg[(x * n + y) * n + u]);
          out[u] = (a * B + bb) * B + cc;
        }
      } else if (mode == 1 && k == 2) {
        const int64_t v = t / n, w = t % n;
        for (int64_t u = 0; u < n; ++u) {
          out[u] = static_cast<Item>(cg[u * n + w]);
          out[n + u] = B + static_cast<Item>(cg[v * n + u]);
        }
      } else if (mode == 1 && k == 3) {
        const int64_t x = t / (n * n), y = (t / n) % n, z = t % n;
        for (int64_t u = 0; u < n; ++u) {
          out[u] = static_cast<Item>(cg[(u * n + y) * n + z]);
          out[n + u] = B + static_cast<Item>(cg[(x * n + u) * n + z]);
          out[2 * n + u] = 2 * B + static_cast<Item>(cg[(x * n + y) * n + u]);
        }
      } else {  // mode 2, k == 1
        const int64_t* pg = pc + L.pair_off[g] + t * n;
        for (int64_t u = 0; u < n; ++u)
          out[u] = static_cast<Item>(pg[u]) * B + static_cast<Item>(cg[u]);
      }
      sort_items(out, ptr[i + 1] - ptr[i], tmp, passes);
    }
  });
}

template <typename Item>
std::tuple<at::Tensor, at::Tensor> run_rounds(const Layout& L, int64_t k, int64_t mode,
                                              const at::Tensor& colors0, const int64_t* pc,
                                              int64_t max_rounds, bool return_history) {
  const int64_t N = L.N;
  auto opts = colors0.options();
  std::vector<int64_t> ptr(N + 1, 0);
  for (size_t g = 0; g < L.n.size(); ++g)
    for (int64_t i = L.tuple_off[g]; i < L.tuple_off[g + 1]; ++i) ptr[i + 1] = ptr[i] + L.len[g];
  std::vector<Item> items;     // allocated on first use, reused across rounds
  std::vector<uint32_t> items32;  // used while every item of the round fits in 32 bits
  std::vector<at::Tensor> history;
  std::vector<int64_t> counts;
  at::Tensor cur = colors0.clone();
  int64_t C = wl::count_distinct(cur.data_ptr<int64_t>(), N, N);
  history.push_back(cur);
  counts.push_back(C);
  int64_t rounds = 0;
  while ((max_rounds < 0 || rounds < max_rounds) && C < N) {  // C == N: discrete, stable
    const int64_t* c = cur.data_ptr<int64_t>();
    const int64_t base = *std::max_element(c, c + N) + 1;
    at::Tensor next = at::empty({N}, opts);
    int64_t D;
    if (item_top(k, mode, base) <= 4294967296.0L) {
      if (items32.empty()) items32.resize(static_cast<size_t>(ptr[N]));
      fill_items<uint32_t>(L, k, mode, c, pc, ptr, items32, base);
      D = wl::rank_signatures<uint32_t>(c, ptr.data(), items32.data(), N, next.data_ptr<int64_t>());
    } else {
      if (items.empty()) items.resize(static_cast<size_t>(ptr[N]));
      fill_items<Item>(L, k, mode, c, pc, ptr, items, base);
      D = wl::rank_signatures<Item>(c, ptr.data(), items.data(), N, next.data_ptr<int64_t>());
    }
    if (D == C) break;
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
  at::Tensor out = return_history ? at::stack(history) : history[0].unsqueeze(0);
  return {out, at::tensor(counts, opts)};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> wl_refine_tuples_cpu(const at::Tensor& colors_,
                                                        const at::Tensor& num_nodes_,
                                                        const at::Tensor& pair_code_, int64_t k,
                                                        int64_t mode, int64_t max_rounds,
                                                        bool return_history) {
  wl::check_refine_tuples_args(colors_, num_nodes_, pair_code_, k, mode);
  UDL_CHECK_CPU(colors_, "colors");
  const at::Tensor colors0 = colors_.contiguous();
  const at::Tensor pair_code = pair_code_.contiguous();
  wl::GraphOffsets off = wl::graph_offsets(num_nodes_, k);
  Layout L;
  const int64_t G = static_cast<int64_t>(off.n.size());
  L.n = std::move(off.n);
  L.tuple_off = std::move(off.tuple_off);
  L.pair_off = std::move(off.pair_off);
  L.len.assign(G, 0);
  for (int64_t g = 0; g < G; ++g) L.len[g] = (mode == 1) ? k * L.n[g] : L.n[g];
  L.N = L.tuple_off[G];
  TORCH_CHECK(colors0.numel() == L.N, "colors must have sum(num_nodes^k) = ", L.N,
              " entries, got ", colors0.numel());
  if (mode == 2)
    TORCH_CHECK(pair_code.numel() == L.pair_off[G], "pair_code must have sum(num_nodes^2) = ",
                L.pair_off[G], " entries for 1-FWL, got ", pair_code.numel());
  auto opts = colors0.options();
  if (L.N == 0) return {at::empty({1, 0}, opts), at::zeros({1}, opts)};
  const int64_t N = L.N;
  const int64_t* c0 = colors0.data_ptr<int64_t>();
  for (int64_t i = 0; i < N; ++i)
    TORCH_CHECK(c0[i] >= 0 && c0[i] < N, "colors must lie in [0, N=", N, "), got ", c0[i]);
  const int64_t* pc = mode == 2 ? pair_code.data_ptr<int64_t>() : nullptr;
  if (mode == 2) {
    for (int64_t i = 0; i < pair_code.numel(); ++i)
      TORCH_CHECK(pc[i] >= 0 && pc[i] < (int64_t(1) << 20), "pair_code must lie in [0, 2^20), got ",
                  pc[i]);
  }
  // Pick the narrowest exact item type: items are < B^k (FWL), < k * B (OWL), < 2^20 * B (1-FWL).
  const long double B = static_cast<long double>(N);
  long double top = 0;
  if (mode == 0) top = (k == 2) ? B * B : B * B * B;
  if (mode == 1) top = k * B;
  if (mode == 2) top = B * 1048576.0L;
  if (top < 1.8e19L) return run_rounds<uint64_t>(L, k, mode, colors0, pc, max_rounds, return_history);
  TORCH_CHECK(top < 3.4e38L, "too many tuples for exact 128-bit items: ", N);
  return run_rounds<wl::u128>(L, k, mode, colors0, pc, max_rounds, return_history);
}

TORCH_LIBRARY_IMPL(udl, CPU, m) { m.impl("wl_refine_tuples", &wl_refine_tuples_cpu); }

}  // namespace udl
