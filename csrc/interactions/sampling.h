// Context sampling shared by the CPU and CUDA interaction kernels.
//
// A context S is an m-subset of N \ {i, j}, stored as a bitset over the n players (word w holds
// players 64w .. 64w+63). Every context is a pure function of (seed, i, j, m, k): a counter-based
// generator (splitmix64) keyed by those values, so the result does not depend on how rows are
// batched, on the device, or on the thread that draws it.
//
// Two modes per row:
//   * sample:    a uniform random m-subset (Floyd's algorithm, O(min(m, N-m)) draws, N = n-2);
//   * enumerate: the k-th m-subset of N \ {i, j} in lexicographic order (0 <= k < C(N, m)),
//                used when the number of requested contexts reaches C(N, m) so that the
//                average over contexts is exact.
#pragma once
#include <cstdint>

#if defined(__CUDACC__)
#define UDL_HD __host__ __device__ __forceinline__
#else
#define UDL_HD inline
#endif

namespace udl {
namespace interactions {

// Backward of the masked-input writer for one element of player p in one context row: the four
// terms (S u {i, j}, S u {i}, S u {j}, S) hold the input x where p is present and the baseline
// elsewhere, so each term's gradient gr[t * D] goes to grad_x (sx) or grad_baseline (sb).
template <typename scalar_t>
UDL_HD void split_term_grads(bool in_s, bool is_i, bool is_j, const scalar_t* gr, int64_t D,
                             double& sx, double& sb) {
  const double g0 = static_cast<double>(gr[0]), g1 = static_cast<double>(gr[D]);
  const double g2 = static_cast<double>(gr[2 * D]), g3 = static_cast<double>(gr[3 * D]);
  ((in_s || is_i || is_j) ? sx : sb) += g0;
  ((in_s || is_i) ? sx : sb) += g1;
  ((in_s || is_j) ? sx : sb) += g2;
  (in_s ? sx : sb) += g3;
}

UDL_HD uint64_t mix64(uint64_t z) {
  z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ULL;
  z = (z ^ (z >> 27)) * 0x94d049bb133111ebULL;
  return z ^ (z >> 31);
}

// splitmix64 stream keyed by (seed, i, j, m, k).
struct CounterRng {
  uint64_t state;
  UDL_HD CounterRng(uint64_t seed, int64_t i, int64_t j, int64_t m, int64_t k) {
    uint64_t h = mix64(seed ^ 0x6a09e667f3bcc909ULL);
    h = mix64(h ^ (static_cast<uint64_t>(i) * 0x9e3779b97f4a7c15ULL));
    h = mix64(h ^ (static_cast<uint64_t>(j) * 0xc2b2ae3d27d4eb4fULL));
    h = mix64(h ^ (static_cast<uint64_t>(m) * 0x165667b19e3779f9ULL));
    h = mix64(h ^ (static_cast<uint64_t>(k) * 0xd6e8feb86659fd93ULL));
    state = h;
  }
  UDL_HD uint64_t next() {
    state += 0x9e3779b97f4a7c15ULL;
    return mix64(state);
  }
  // Uniform integer in [0, bound) (bound >= 1), by the 64x64 -> high-64 multiply.
  UDL_HD uint64_t below(uint64_t bound) {
    const uint64_t r = next();
#if defined(__CUDA_ARCH__)
    return __umul64hi(r, bound);
#else
    return static_cast<uint64_t>((static_cast<unsigned __int128>(r) * bound) >> 64);
#endif
  }
};

UDL_HD bool test_bit(const uint64_t* bits, int64_t p) { return (bits[p >> 6] >> (p & 63)) & 1ULL; }
UDL_HD void set_bit(uint64_t* bits, int64_t p) { bits[p >> 6] |= (1ULL << (p & 63)); }
UDL_HD void clear_bit(uint64_t* bits, int64_t p) { bits[p >> 6] &= ~(1ULL << (p & 63)); }

// Index q in [0, n-2) of N \ {a, b} (a < b) -> player id.
UDL_HD int64_t skip_pair(int64_t q, int64_t a, int64_t b) {
  if (q >= a) ++q;
  if (q >= b) ++q;
  return q;
}

// Writes the context of one row into `bits` (num_words words, zeroed here).
//   n: players; (i, j): the pair; m: context size; k: context index; enumerate: see above.
UDL_HD void make_context(uint64_t* bits, int64_t num_words, int64_t n, int64_t i, int64_t j,
                         int64_t m, int64_t k, bool enumerate, uint64_t seed) {
  const int64_t a = i < j ? i : j;
  const int64_t b = i < j ? j : i;
  const int64_t N = n - 2;
  for (int64_t w = 0; w < num_words; ++w) bits[w] = 0ULL;
  if (m <= 0) return;
  if (enumerate) {
    // Unrank k in the combinatorial number system, lexicographic order over q = 0..N-1.
    // c = C(N-1-q, r-1): the number of remaining subsets that include q. All values stay
    // <= C(N, m), which the caller keeps small (enumeration only when C(N, m) <= contexts).
    int64_t r = m;
    uint64_t rank = static_cast<uint64_t>(k);
    // c = C(N-1, m-1) computed incrementally as prod_{t=1}^{m-1} (N-m+t)/t.
    uint64_t c = 1;
    for (int64_t t = 1; t <= m - 1; ++t) c = c * static_cast<uint64_t>(N - m + t) / t;
    for (int64_t q = 0; q < N && r > 0; ++q) {
      const int64_t rest = N - 1 - q;  // candidates after q
      if (rank < c) {
        set_bit(bits, skip_pair(q, a, b));
        // next c = C(rest - 1, r - 2) = C(rest, r - 1) * (r - 1) / rest
        if (r - 1 > 0 && rest > 0) c = c * static_cast<uint64_t>(r - 1) / rest;
        --r;
      } else {
        rank -= c;
        // next c = C(rest - 1, r - 1) = C(rest, r - 1) * (rest - r + 1) / rest
        if (rest > 0) c = c * static_cast<uint64_t>(rest - r + 1) / rest;
      }
    }
    return;
  }
  CounterRng rng(seed, i, j, m, k);
  const bool complement = 2 * m > N;
  const int64_t draw = complement ? N - m : m;
  if (complement) {
    for (int64_t q = 0; q < N; ++q) set_bit(bits, skip_pair(q, a, b));
  }
  // Floyd: for t = N-draw .. N-1 pick u in [0, t]; take u, or t if u is already taken.
  for (int64_t t = N - draw; t < N; ++t) {
    const int64_t u = static_cast<int64_t>(rng.below(static_cast<uint64_t>(t + 1)));
    const int64_t pu = skip_pair(u, a, b);
    const bool taken = complement ? !test_bit(bits, pu) : test_bit(bits, pu);
    const int64_t p = taken ? skip_pair(t, a, b) : pu;
    if (complement) {
      clear_bit(bits, p);
    } else {
      set_bit(bits, p);
    }
  }
}

}  // namespace interactions
}  // namespace udl
