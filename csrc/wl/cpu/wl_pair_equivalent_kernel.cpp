// CPU kernel of udl::wl_pair_equivalent: is a graph pair distinguished by folklore 2-WL?
//
// The answer is that of exact 2-FWL on the pair refined jointly (equal colour histograms at the
// stable colouring), computed faster than udl::wl_refine_tuples, which must name every colour
// canonically, by using that only the *partition* of the pair's tuples matters:
//
// 1. Initial colours: exact ids of the atomic types (node labels of v and w, v == w, A[v,v],
//    A[v,w], A[w,v], A[w,w]), shared by the two graphs.
// 2. Hashed rounds. New colour of (v, w) = exact id of (c(v,w), S1(v,w), S2(v,w)) with
//    S(v,w) = sum_u X[c(v,u)] * Y[c(u,w)] for random integer weights X, Y per colour: two
//    matrix products per graph (the multiset of pairs (c(v,u), c(u,w)) enters as a polynomial),
//    one batched BLAS GEMM in double precision with weights small enough that every sum is an
//    exact integer (so S is a function of the multiset, independent of summation order). Such a colouring is a function of
//    the exact round-r colouring, identical for both graphs, so *different histograms are a
//    correct "distinguished"* and can stop the test at once.
// 3. When a hashed round splits no class and the histograms are still equal, the partition is
//    verified exactly to be stable (every class: all members have the same multiset of pairs of
//    classes, checked item by item against the class's first member). A stable partition that
//    refines the atomic types and is no finer than the exact colouring is the exact stable 2-FWL
//    partition, so "not distinguished" is then exact.
// 4. If the verification finds a split (a hash collision merged two classes), exact sort-based
//    rounds (wl::rank_signatures, as in wl_refine_tuples) continue from there to stability.
// Pairs run in parallel (dynamic scheduling, largest first); a single pair parallelises inside.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <numeric>
#include <vector>

#include "common/checks.h"
#include "wl/arg_checks.h"
#include "wl/cpu/wl_rank.h"

namespace udl {
namespace {

// Exact map of fixed-width integer keys to dense ids in order of first insertion.
template <int W>
class IdMap {
 public:
  void reset(int64_t expected) {
    size_t cap = 64;
    while (cap < static_cast<size_t>(2 * expected)) cap <<= 1;
    slots_.assign(cap, -1);
    mask_ = cap - 1;
    keys_.clear();
    keys_.reserve(static_cast<size_t>(expected) * W);
  }
  int64_t insert(const uint64_t* key) {
    size_t s = slot_of(key);
    while (true) {
      const int64_t id = slots_[s];
      if (id < 0) {
        const int64_t fresh = size();
        slots_[s] = fresh;
        keys_.insert(keys_.end(), key, key + W);
        if (static_cast<size_t>(2 * (fresh + 1)) > slots_.size()) grow();  // load <= 1/2
        return fresh;
      }
      if (std::memcmp(&keys_[static_cast<size_t>(id) * W], key, sizeof(uint64_t) * W) == 0) return id;
      s = (s + 1) & mask_;
    }
  }
  int64_t size() const { return static_cast<int64_t>(keys_.size() / W); }

 private:
  size_t slot_of(const uint64_t* key) const {
    uint64_t h = 0x9e3779b97f4a7c15ULL;
    for (int j = 0; j < W; ++j) h = wl::mix64(h ^ key[j]);
    return static_cast<size_t>(h) & mask_;
  }
  void grow() {
    slots_.assign(slots_.size() * 2, -1);
    mask_ = slots_.size() - 1;
    for (int64_t id = 0, m = size(); id < m; ++id) {
      size_t s = slot_of(&keys_[static_cast<size_t>(id) * W]);
      while (slots_[s] >= 0) s = (s + 1) & mask_;
      slots_[s] = id;
    }
  }

  std::vector<int64_t> slots_;
  std::vector<uint64_t> keys_;
  size_t mask_ = 0;
};

inline uint64_t splitmix64(uint64_t& state) {
  uint64_t z = (state += 0x9e3779b97f4a7c15ULL);
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// Colours c[0, 2M) of the pair (graph 0 at [0, M), graph 1 at [M, 2M)), ids in [0, D).
bool same_histogram(const std::vector<int64_t>& c, int64_t M, int64_t D) {
  std::vector<int64_t> cnt(static_cast<size_t>(D), 0);
  for (int64_t i = 0; i < M; ++i) ++cnt[c[i]];
  for (int64_t i = M; i < 2 * M; ++i) --cnt[c[i]];
  for (int64_t d = 0; d < D; ++d)
    if (cnt[d] != 0) return false;
  return true;
}

// Exact check that the partition c (ids in [0, D)) is stable under the 2-FWL update: within every
// class all tuples have the same multiset {(c(v,u), c(u,w)) : u}.
bool partition_is_stable(const std::vector<int64_t>& c, int64_t n, int64_t D) {
  const int64_t M = n * n, N = 2 * M;
  std::vector<int64_t> ct(static_cast<size_t>(N));  // per graph, transposed: ct[w*n+u] = c(u,w)
  for (int64_t g = 0; g < 2; ++g)
    for (int64_t u = 0; u < n; ++u)
      for (int64_t w = 0; w < n; ++w) ct[g * M + w * n + u] = c[g * M + u * n + w];
  std::vector<int64_t> start(static_cast<size_t>(D) + 1, 0), members(static_cast<size_t>(N));
  for (int64_t i = 0; i < N; ++i) ++start[c[i] + 1];
  for (int64_t d = 0; d < D; ++d) start[d + 1] += start[d];
  {
    std::vector<int64_t> fill(start.begin(), start.end() - 1);
    for (int64_t i = 0; i < N; ++i) members[fill[c[i]]++] = i;
  }
  const uint64_t UD = static_cast<uint64_t>(D);
  std::atomic<bool> ok{true};
  int64_t cap = 16;
  while (cap < 2 * n) cap <<= 1;
  const int shift = 64 - __builtin_ctzll(static_cast<uint64_t>(cap));
  const uint64_t mask = static_cast<uint64_t>(cap) - 1;
  constexpr uint64_t kEmpty = ~0ULL;
  at::parallel_for(0, D, 16, [&](int64_t b, int64_t e) {
    std::vector<uint64_t> key(static_cast<size_t>(cap), kEmpty);
    std::vector<int32_t> count(static_cast<size_t>(cap), 0), seen(static_cast<size_t>(cap), 0);
    std::vector<uint32_t> stamp(static_cast<size_t>(cap), 0);
    uint32_t now = 0;
    auto find = [&](uint64_t k) -> int64_t {
      uint64_t s = (k * 0x9e3779b97f4a7c15ULL) >> shift;
      while (true) {
        if (key[s] == k) return static_cast<int64_t>(s);
        if (key[s] == kEmpty) return -1 - static_cast<int64_t>(s);
        s = (s + 1) & mask;
      }
    };
    for (int64_t d = b; d < e && ok.load(std::memory_order_relaxed); ++d) {
      const int64_t lo = start[d], hi = start[d + 1];
      if (hi - lo < 2) continue;
      auto rows = [&](int64_t i, const int64_t*& r, const int64_t*& col) {
        const int64_t g = i / M, t = i % M, v = t / n, w = t % n;
        r = c.data() + g * M + v * n;
        col = ct.data() + g * M + w * n;
      };
      const int64_t* r;
      const int64_t* col;
      rows(members[lo], r, col);
      for (int64_t u = 0; u < n; ++u) {
        const uint64_t k = static_cast<uint64_t>(r[u]) * UD + static_cast<uint64_t>(col[u]);
        const int64_t s = find(k);
        if (s >= 0) {
          ++count[s];
        } else {
          key[-1 - s] = k;
          count[-1 - s] = 1;
        }
      }
      bool good = true;
      for (int64_t m = lo + 1; m < hi && good; ++m) {
        if (++now == 0) {  // stamp wrap-around: reset
          std::fill(stamp.begin(), stamp.end(), 0);
          now = 1;
        }
        rows(members[m], r, col);
        for (int64_t u = 0; u < n; ++u) {
          const uint64_t k = static_cast<uint64_t>(r[u]) * UD + static_cast<uint64_t>(col[u]);
          const int64_t s = find(k);
          if (s < 0) {
            good = false;
            break;
          }
          if (stamp[s] != now) {
            stamp[s] = now;
            seen[s] = 0;
          }
          if (++seen[s] > count[s]) {
            good = false;
            break;
          }
        }
      }
      if (!good) {
        ok.store(false, std::memory_order_relaxed);
        break;
      }
      std::fill(key.begin(), key.end(), kEmpty);
    }
  });
  return ok.load();
}

// Exact 2-FWL rounds (sorted item lists ranked by wl::rank_signatures) from colouring c until the
// partition is stable or the histograms differ. Returns whether the pair stays undistinguished.
bool exact_rounds(std::vector<int64_t>& c, int64_t n, int64_t D) {
  const int64_t M = n * n, N = 2 * M;
  std::vector<int64_t> ptr(static_cast<size_t>(N) + 1);
  for (int64_t i = 0; i <= N; ++i) ptr[i] = i * n;
  std::vector<uint64_t> items(static_cast<size_t>(N * n));
  std::vector<int64_t> next(static_cast<size_t>(N));
  while (true) {
    const uint64_t UD = static_cast<uint64_t>(D);
    at::parallel_for(0, N, 256, [&](int64_t b, int64_t e) {
      for (int64_t i = b; i < e; ++i) {
        const int64_t g = i / M, t = i % M, v = t / n, w = t % n;
        const int64_t* cg = c.data() + g * M;
        uint64_t* out = items.data() + i * n;
        for (int64_t u = 0; u < n; ++u)
          out[u] = static_cast<uint64_t>(cg[u * n + w]) * UD + static_cast<uint64_t>(cg[v * n + u]);
        std::sort(out, out + n);
      }
    });
    const int64_t Dn = wl::rank_signatures<uint64_t>(c.data(), ptr.data(), items.data(), N,
                                                     next.data());
    if (!same_histogram(next, M, Dn)) return false;
    if (Dn == D) return true;
    c.swap(next);
    D = Dn;
  }
}

// Largest weight bit width b such that n * (2^b - 1)^2 < 2^53 (exact double sums).
int exact_bits(int64_t n) {
  int L = 0;
  while ((int64_t(1) << L) < n) ++L;
  return std::max(1, std::min(26, (53 - L) / 2));
}

bool pair_equivalent(int64_t n, const int64_t* nc0, const int64_t* nc1, const int64_t* A0,
                     const int64_t* A1, int64_t hash_bits) {
  const int64_t M = n * n, N = 2 * M;
  if (n == 0) return true;
  std::vector<int64_t> c(static_cast<size_t>(N)), next(static_cast<size_t>(N));
  int64_t D;
  {  // 1. atomic types
    IdMap<7> ids;
    ids.reset(N);
    for (int64_t g = 0; g < 2; ++g) {
      const int64_t* nc = g ? nc1 : nc0;
      const int64_t* A = g ? A1 : A0;
      for (int64_t v = 0; v < n; ++v)
        for (int64_t w = 0; w < n; ++w) {
          const uint64_t key[7] = {static_cast<uint64_t>(nc[v]), static_cast<uint64_t>(nc[w]),
                                   static_cast<uint64_t>(v == w), static_cast<uint64_t>(A[v * n + v]),
                                   static_cast<uint64_t>(A[v * n + w]),
                                   static_cast<uint64_t>(A[w * n + v]),
                                   static_cast<uint64_t>(A[w * n + w])};
          c[g * M + v * n + w] = ids.insert(key);
        }
    }
    D = ids.size();
  }
  if (!same_histogram(c, M, D)) return false;
  // 2. hashed rounds
  int bits = exact_bits(n);
  if (hash_bits > 0) bits = std::min<int>(bits, static_cast<int>(hash_bits));
  std::vector<double> W[4];  // per colour: X1, X2 (left factors), Y1, Y2 (right factors)
  const auto dopt = at::TensorOptions().dtype(at::kDouble);
  at::Tensor X = at::empty({4, n, n}, dopt), Y = at::empty({4, n, n}, dopt);
  IdMap<3> ids;
  uint64_t seed = 0x5eed5eed12345678ULL;
  while (D < N) {  // D == N: discrete, stable
    for (auto& w : W) {
      w.resize(static_cast<size_t>(D));
      for (int64_t d = 0; d < D; ++d) w[d] = static_cast<double>(splitmix64(seed) >> (64 - bits));
    }
    // Batch b = 2 * graph + hash: S[b](v, w) = sum_u X_h[c(v,u)] * Y_h[c(u,w)], exact integers in
    // double precision (any summation order gives the same value), one batched GEMM (BLAS).
    double* xp = X.data_ptr<double>();
    double* yp = Y.data_ptr<double>();
    for (int64_t b = 0; b < 4; ++b) {
      const int64_t* cg = c.data() + (b / 2) * M;
      const double* wx = W[b % 2].data();
      const double* wy = W[2 + b % 2].data();
      for (int64_t i = 0; i < M; ++i) {
        xp[b * M + i] = wx[cg[i]];
        yp[b * M + i] = wy[cg[i]];
      }
    }
    const at::Tensor S = at::bmm(X, Y).contiguous();
    const double* sp = S.data_ptr<double>();
    ids.reset(std::min<int64_t>(N, 2 * D + 64));  // grows when more classes appear
    for (int64_t i = 0; i < N; ++i) {
      const int64_t g = i / M, t = i % M;
      const uint64_t key[3] = {static_cast<uint64_t>(c[i]),
                               static_cast<uint64_t>(sp[(2 * g) * M + t]),
                               static_cast<uint64_t>(sp[(2 * g + 1) * M + t])};
      next[i] = ids.insert(key);
    }
    const int64_t Dn = ids.size();
    if (Dn == D) break;  // no class split
    if (!same_histogram(next, M, Dn)) return false;
    c.swap(next);
    D = Dn;
  }
  // 3. exact verification of stability; 4. exact rounds if a collision hid a split
  if (partition_is_stable(c, n, D)) return true;
  return exact_rounds(c, n, D);
}

}  // namespace

at::Tensor wl_pair_equivalent_cpu(const at::Tensor& node_colors_, const at::Tensor& pair_type_,
                                  const at::Tensor& num_nodes_, int64_t hash_bits) {
  wl::check_pair_equivalent_args(node_colors_, pair_type_, num_nodes_, hash_bits);
  UDL_CHECK_CPU(node_colors_, "node_colors");
  const at::Tensor nc = node_colors_.contiguous();
  const at::Tensor pt = pair_type_.contiguous();
  const wl::GraphOffsets off = wl::pair_batch_offsets(num_nodes_, nc, pt);
  const int64_t P = static_cast<int64_t>(off.n.size()) / 2;
  const int64_t* n_h = off.n.data();
  const std::vector<int64_t>& node_off = off.node_off;
  const std::vector<int64_t>& pair_off = off.pair_off;
  at::Tensor equal = at::empty({P}, nc.options().dtype(at::kBool));
  if (P == 0) return equal;
  if (nc.numel() > 0)
    TORCH_CHECK(nc.min().item<int64_t>() >= 0, "node_colors must be >= 0");
  if (pt.numel() > 0)
    TORCH_CHECK(pt.min().item<int64_t>() >= 0, "pair_type must be >= 0");
  const int64_t* ncp = nc.data_ptr<int64_t>();
  const int64_t* ptp = pt.data_ptr<int64_t>();
  bool* out = equal.data_ptr<bool>();
  auto solve = [&](int64_t p) {
    const int64_t g0 = 2 * p, g1 = 2 * p + 1;
    if (n_h[g0] != n_h[g1]) {
      out[p] = false;  // different numbers of tuples: different histograms
      return;
    }
    out[p] = pair_equivalent(n_h[g0], ncp + node_off[g0], ncp + node_off[g1], ptp + pair_off[g0],
                             ptp + pair_off[g1], hash_bits);
  };
  const int64_t threads = at::get_num_threads();
  if (P >= 2 && threads > 1) {
    // Largest pairs first, handed out one at a time (costs differ by orders of magnitude).
    std::vector<int64_t> order(P);
    std::iota(order.begin(), order.end(), 0);
    std::stable_sort(order.begin(), order.end(),
                     [&](int64_t a, int64_t b) { return n_h[2 * a] > n_h[2 * b]; });
    std::atomic<int64_t> next{0};
    at::parallel_for(0, threads, 1, [&](int64_t b, int64_t e) {
      for (int64_t t = b; t < e; ++t) {
        for (int64_t q = next++; q < P; q = next++) solve(order[q]);
      }
    });
  } else {
    for (int64_t p = 0; p < P; ++p) solve(p);
  }
  return equal;
}

TORCH_LIBRARY_IMPL(udl, CPU, m) { m.impl("wl_pair_equivalent", &wl_pair_equivalent_cpu); }

}  // namespace udl
