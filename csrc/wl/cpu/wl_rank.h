// Exact canonical ranking of variable-length colour signatures (CPU), shared by colour refinement
// (wl_refine) and the tuple refinements k-FWL / k-OWL (wl_refine_tuples).
//
// A signature of element i is the sequence (own[i], len_i, items[ptr[i]], ..., items[ptr[i+1]-1])
// whose items are already sorted ascending (so the item list encodes a multiset). The new colour of
// i is the rank of its signature among the *distinct* signatures of the call, in lexicographic
// order of (own, len, items...). Ranks are therefore canonical (equal signatures get equal ids in
// every graph of the call), deterministic (independent of thread count and element order) and
// exact: a 64-bit hash is used only to group candidates quickly, every grouping is verified by an
// element-wise comparison, and hash collisions are resolved by the exact order.
#pragma once

#include <ATen/Parallel.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <numeric>
#include <vector>

namespace udl {
namespace wl {

using u128 = unsigned __int128;

inline uint64_t mix64(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

inline uint64_t item_bits(uint32_t v) { return v; }
inline uint64_t item_bits(uint64_t v) { return v; }
inline uint64_t item_bits(u128 v) {
  return static_cast<uint64_t>(v) ^ mix64(static_cast<uint64_t>(v >> 64) + 0x632be59bd9b4e019ULL);
}

// Parallel sort: chunks sorted on the intra-op threads, then merged pairwise (each level's merges
// run in parallel). The result does not depend on the thread count for a strict weak order with
// no ties, and ties are only used where their order does not matter.
template <typename T, typename Comp>
void parallel_sort(std::vector<T>& v, Comp comp) {
  const int64_t n = static_cast<int64_t>(v.size());
  const int64_t threads = at::get_num_threads();
  const int64_t min_chunk = 1 << 15;
  int64_t chunks = std::min<int64_t>(threads * 2, n / min_chunk);
  if (chunks <= 1) {
    std::sort(v.begin(), v.end(), comp);
    return;
  }
  std::vector<int64_t> bounds(chunks + 1);
  for (int64_t c = 0; c <= chunks; ++c) bounds[c] = n * c / chunks;
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t c = b; c < e; ++c) std::sort(v.begin() + bounds[c], v.begin() + bounds[c + 1], comp);
  });
  std::vector<T> tmp(n);
  std::vector<T>* src = &v;
  std::vector<T>* dst = &tmp;
  while (bounds.size() > 2) {
    const int64_t pairs = static_cast<int64_t>(bounds.size() - 1) / 2;
    const bool odd = ((bounds.size() - 1) % 2) == 1;
    at::parallel_for(0, pairs, 1, [&](int64_t b, int64_t e) {
      for (int64_t p = b; p < e; ++p) {
        std::merge(src->begin() + bounds[2 * p], src->begin() + bounds[2 * p + 1],
                   src->begin() + bounds[2 * p + 1], src->begin() + bounds[2 * p + 2],
                   dst->begin() + bounds[2 * p], comp);
      }
    });
    std::vector<int64_t> nb;
    for (int64_t p = 0; p < pairs; ++p) nb.push_back(bounds[2 * p]);
    if (odd) {
      const int64_t lo = bounds[bounds.size() - 2], hi = bounds.back();
      std::copy(src->begin() + lo, src->begin() + hi, dst->begin() + lo);
      nb.push_back(lo);
    }
    nb.push_back(n);
    bounds.swap(nb);
    std::swap(src, dst);
  }
  if (src != &v) v.swap(*src);
}

template <typename Item>
struct Signatures {
  const int64_t* own;
  const int64_t* ptr;  // [N + 1] item offsets
  const Item* items;

  int64_t len(int64_t i) const { return ptr[i + 1] - ptr[i]; }

  bool equal(int64_t a, int64_t b) const {
    if (own[a] != own[b]) return false;
    const int64_t la = len(a);
    if (la != len(b)) return false;
    const Item* x = items + ptr[a];
    const Item* y = items + ptr[b];
    for (int64_t j = 0; j < la; ++j)
      if (x[j] != y[j]) return false;
    return true;
  }

  // Strict lexicographic order of (own, len, items...).
  bool less(int64_t a, int64_t b) const {
    if (own[a] != own[b]) return own[a] < own[b];
    const int64_t la = len(a), lb = len(b);
    if (la != lb) return la < lb;
    const Item* x = items + ptr[a];
    const Item* y = items + ptr[b];
    for (int64_t j = 0; j < la; ++j)
      if (x[j] != y[j]) return x[j] < y[j];
    return false;
  }

  uint64_t hash(int64_t i) const {
    uint64_t h = mix64(static_cast<uint64_t>(len(i)) + 0x9e3779b97f4a7c15ULL);
    const Item* x = items + ptr[i];
    // Multiply-rotate chain (short dependency per item), finalised by mix64. The hash only groups
    // candidates: every group is verified exactly, so its quality affects speed, never the result.
    for (int64_t j = 0, l = len(i); j < l; ++j) {
      h = ((h << 26) | (h >> 38)) ^ item_bits(x[j]);
      h *= 0x9e3779b97f4a7c15ULL;
    }
    return mix64(h);
  }
};

struct Key {
  int64_t own;
  uint64_t h;
  int64_t idx;
};

// Writes the canonical rank of every element's signature into out[0..N) and returns the number of
// distinct signatures.
template <typename Item>
int64_t rank_signatures(const int64_t* own, const int64_t* ptr, const Item* items, int64_t N,
                        int64_t* out) {
  if (N == 0) return 0;
  const Signatures<Item> sig{own, ptr, items};
  std::vector<Key> keys(N);
  at::parallel_for(0, N, 2048, [&](int64_t b, int64_t e) {
    for (int64_t i = b; i < e; ++i) keys[i] = Key{own[i], sig.hash(i), i};
  });
  parallel_sort(keys, [](const Key& a, const Key& b) {
    return a.own != b.own ? a.own < b.own : (a.h != b.h ? a.h < b.h : a.idx < b.idx);
  });
  // start[p] = 1 where sorted position p opens a new class; clash[p] = 1 where p has the same
  // (own, hash) key as p-1 but a different signature (a 64-bit collision: resolved exactly below).
  std::vector<uint8_t> start(N, 0), clash(N, 0);
  start[0] = 1;
  at::parallel_for(1, N, 4096, [&](int64_t b, int64_t e) {
    for (int64_t p = b; p < e; ++p) {
      const Key& x = keys[p - 1];
      const Key& y = keys[p];
      if (x.own != y.own || x.h != y.h) {
        start[p] = 1;
      } else if (!sig.equal(x.idx, y.idx)) {
        start[p] = 1;
        clash[p] = 1;
      }
    }
  });
  // Runs of equal (own, hash) containing a collision: order them exactly and recompute the starts.
  for (int64_t p = 1; p < N; ++p) {
    if (!clash[p]) continue;
    int64_t lo = p - 1;
    while (lo > 0 && keys[lo - 1].own == keys[p].own && keys[lo - 1].h == keys[p].h) --lo;
    int64_t hi = p + 1;
    while (hi < N && keys[hi].own == keys[p].own && keys[hi].h == keys[p].h) ++hi;
    std::sort(keys.begin() + lo, keys.begin() + hi,
              [&](const Key& a, const Key& b) { return sig.less(a.idx, b.idx); });
    for (int64_t q = lo + 1; q < hi; ++q) {
      start[q] = sig.equal(keys[q - 1].idx, keys[q].idx) ? 0 : 1;
      clash[q] = 0;
    }
    p = hi - 1;
  }
  // One representative per class, ordered exactly (lexicographically) to give canonical ranks.
  // A prefix key (own, len, first two items) decides most comparisons without touching the items.
  std::vector<int64_t> first;  // sorted position of each class's first member
  first.reserve(1024);
  for (int64_t p = 0; p < N; ++p)
    if (start[p]) first.push_back(p);
  const int64_t D = static_cast<int64_t>(first.size());
  struct Rep {
    int64_t own;
    int64_t len;
    Item i0, i1;
    int64_t idx;
    int64_t cls;
  };
  std::vector<Rep> reps(D);
  at::parallel_for(0, D, 4096, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) {
      const int64_t i = keys[first[g]].idx;
      const int64_t l = sig.len(i);
      const Item* x = items + ptr[i];
      reps[g] = Rep{own[i], l, l > 0 ? x[0] : Item(0), l > 1 ? x[1] : Item(0), i, g};
    }
  });
  parallel_sort(reps, [&](const Rep& a, const Rep& b) {
    if (a.own != b.own) return a.own < b.own;
    if (a.len != b.len) return a.len < b.len;
    if (a.i0 != b.i0) return a.i0 < b.i0;
    if (a.i1 != b.i1) return a.i1 < b.i1;
    return sig.less(a.idx, b.idx);
  });
  std::vector<int64_t> order(D);
  for (int64_t r = 0; r < D; ++r) order[r] = reps[r].cls;
  std::vector<int64_t> rank(D);
  for (int64_t r = 0; r < D; ++r) rank[order[r]] = r;
  at::parallel_for(0, D, 256, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) {
      const int64_t hi = (g + 1 < D) ? first[g + 1] : N;
      for (int64_t p = first[g]; p < hi; ++p) out[keys[p].idx] = rank[g];
    }
  });
  return D;
}

// Number of distinct values in colours[0..N), each in [0, bound).
inline int64_t count_distinct(const int64_t* colors, int64_t N, int64_t bound) {
  std::vector<uint8_t> seen(static_cast<size_t>(std::max<int64_t>(bound, 1)), 0);
  int64_t d = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (!seen[colors[i]]) {
      seen[colors[i]] = 1;
      ++d;
    }
  }
  return d;
}

}  // namespace wl
}  // namespace udl
