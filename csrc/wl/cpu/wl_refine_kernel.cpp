// CPU kernel of udl::wl_refine (exact canonical colour refinement) and udl::wl_histogram.
//
// Neighbour lists. The arcs are bucketed by destination with parallel stable counting sorts (no
// comparison sort). arc_mode 2 (auto) sorts them by (dst, src) and by (src, dst) with three counting
// passes, so every node's in-row and out-row come out sorted and a graph is symmetric exactly when
// all its nodes' in-rows equal their out-rows (decided per graph when graph_ptr is given).
//
// One round, with c the colours of the previous round (values < bound, C distinct):
//  * members of singleton classes keep a unique signature (their own colour is unique), so only
//    the nodes of classes with >= 2 members ("active") gather their items code * bound + c(src)
//    (in lexicographic (code, colour) order as integers; 32-bit when they fit), sort them and hash
//    the signature (own colour, degree, items);
//  * duplicates are merged with hash tables partitioned by hash over the threads; every hit is
//    verified by an exact comparison of the signatures, so the merging is exact; the first
//    (smallest) node of each distinct signature is its representative;
//  * the representatives are bucketed by their own colour (counting sort) and only the buckets
//    with >= 2 distinct signatures are sorted by (degree, items);
//  * new colour = (number of distinct signatures in the lower own-colour classes) + (rank inside
//    the class), i.e. the rank of the signature among all distinct signatures of the call in the
//    lexicographic order of (own colour, degree, sorted items): canonical, deterministic (no
//    dependence on the thread count) and identical to the CUDA kernel's ids.
// The loop stops after max_rounds rounds or when a round splits no class (that round is not
// recorded: its colouring would be a renaming of the previous one) or when all colours differ.
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <cstdint>
#include <limits>
#include <vector>

#include "common/checks.h"
#include "wl/arg_checks.h"
#include "wl/cpu/wl_rank.h"

namespace udl {
namespace {

using wl::mix64;

// ------------------------------------------------------------------------------------------------
// Parallel helpers.

int64_t chunk_count(int64_t n, int64_t min_per_chunk) {
  const int64_t t = std::max<int64_t>(1, at::get_num_threads());
  return std::max<int64_t>(1, std::min<int64_t>(t, n / std::max<int64_t>(min_per_chunk, 1)));
}

// Stable parallel counting sort of the records 0..n-1 (in this order) by key(i) in [0, K), or
// key(i) < 0 to drop the record. put(i, pos) stores record i at position pos. Returns the bucket
// offsets ptr[0..K] (a CSR row pointer). The input is cut into contiguous chunks, one per thread;
// per-chunk counts keep the scatter stable, so the result does not depend on the thread count.
template <typename Key, typename Put>
std::vector<int64_t> counting_sort(int64_t n, int64_t K, const Key& key, const Put& put) {
  int64_t chunks = chunk_count(n, 1 << 15);
  if (chunks > 1 && chunks * K > (int64_t(1) << 26)) chunks = 1;  // bound the count memory
  std::vector<int64_t> cnt(static_cast<size_t>(chunks * K), 0);
  auto lo = [&](int64_t t) { return n * t / chunks; };
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t* ct = cnt.data() + t * K;
      for (int64_t i = lo(t), hi = lo(t + 1); i < hi; ++i) {
        const int64_t k = key(i);
        if (k >= 0) ++ct[k];
      }
    }
  });
  std::vector<int64_t> ptr(static_cast<size_t>(K + 1));
  int64_t run = 0;
  if (chunks == 1) {
    for (int64_t k = 0; k < K; ++k) {
      ptr[k] = run;
      const int64_t c = cnt[k];
      cnt[k] = run;
      run += c;
    }
  } else {
    for (int64_t k = 0; k < K; ++k) {
      ptr[k] = run;
      for (int64_t t = 0; t < chunks; ++t) {
        const int64_t c = cnt[t * K + k];
        cnt[t * K + k] = run;
        run += c;
      }
    }
  }
  ptr[K] = run;
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t* ct = cnt.data() + t * K;
      for (int64_t i = lo(t), hi = lo(t + 1); i < hi; ++i) {
        const int64_t k = key(i);
        if (k >= 0) put(i, ct[k]++);
      }
    }
  });
  return ptr;
}

// Indices i in [0, n) with pred(i), ascending (parallel compaction).
template <typename Pred>
std::vector<int64_t> compact(int64_t n, const Pred& pred) {
  const int64_t chunks = chunk_count(n, 1 << 14);
  std::vector<int64_t> cnt(static_cast<size_t>(chunks + 1), 0);
  auto lo = [&](int64_t t) { return n * t / chunks; };
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t c = 0;
      for (int64_t i = lo(t), hi = lo(t + 1); i < hi; ++i) c += pred(i) ? 1 : 0;
      cnt[t + 1] = c;
    }
  });
  for (int64_t t = 0; t < chunks; ++t) cnt[t + 1] += cnt[t];
  std::vector<int64_t> out(static_cast<size_t>(cnt[chunks]));
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t w = cnt[t];
      for (int64_t i = lo(t), hi = lo(t + 1); i < hi; ++i)
        if (pred(i)) out[w++] = i;
    }
  });
  return out;
}

template <typename T>
inline void small_sort(T* a, int64_t n) {
  if (n <= 24) {
    for (int64_t i = 1; i < n; ++i) {
      const T x = a[i];
      int64_t j = i;
      for (; j > 0 && x < a[j - 1]; --j) a[j] = a[j - 1];
      a[j] = x;
    }
  } else {
    std::sort(a, a + n);
  }
}

// ------------------------------------------------------------------------------------------------
// Inputs.

// Smallest index in [0, n) with bad(i), or -1.
template <typename Bad>
int64_t first_bad(int64_t n, const Bad& bad) {
  const int64_t chunks = chunk_count(n, 1 << 15);
  std::vector<int64_t> first(static_cast<size_t>(chunks), -1);
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      for (int64_t i = n * t / chunks, hi = n * (t + 1) / chunks; i < hi; ++i) {
        if (bad(i)) {
          first[t] = i;
          break;
        }
      }
    }
  });
  for (int64_t f : first)
    if (f >= 0) return f;
  return -1;
}

// Neighbour lists: row v holds the items (code[p], colour of nbr[p]) of node v.
struct Adjacency {
  std::vector<int64_t> ptr;   // [N + 1]
  std::vector<int64_t> nbr;   // [M]
  std::vector<int64_t> code;  // [M], empty when every code is 0
};

// arc_mode 0: row dst[a] gets (code[a], src[a]).
Adjacency build_as_given(const int64_t* d, const int64_t* s, const int64_t* cd, int64_t A,
                         int64_t N) {
  Adjacency g;
  g.nbr.resize(A);
  if (cd) g.code.resize(A);
  g.ptr = counting_sort(
      A, N, [&](int64_t a) { return d[a]; },
      [&](int64_t a, int64_t pos) {
        g.nbr[pos] = s[a];
        if (cd) g.code[pos] = cd[a];
      });
  return g;
}

// arc_mode 1: each arc is one undirected edge: row dst[a] gets src[a] and, unless it is a loop,
// row src[a] gets dst[a].
Adjacency build_undirected(const int64_t* d, const int64_t* s, const int64_t* cd, int64_t A,
                           int64_t N) {
  Adjacency g;
  const int64_t loops = at::parallel_reduce(
      0, A, 1 << 15, int64_t(0),
      [&](int64_t b, int64_t e, int64_t acc) {
        for (int64_t a = b; a < e; ++a) acc += d[a] == s[a] ? 1 : 0;
        return acc;
      },
      [](int64_t x, int64_t y) { return x + y; });
  const int64_t M = 2 * A - loops;
  g.nbr.resize(M);
  if (cd) g.code.resize(M);
  g.ptr = counting_sort(
      2 * A, N,
      [&](int64_t i) -> int64_t {
        if (i < A) return d[i];
        const int64_t a = i - A;
        return d[a] == s[a] ? -1 : s[a];
      },
      [&](int64_t i, int64_t pos) {
        const int64_t a = i < A ? i : i - A;
        g.nbr[pos] = i < A ? s[a] : d[a];
        if (cd) g.code[pos] = cd[a];
      });
  return g;
}

// arc_mode 2: graph g (nodes graph_ptr[g]..graph_ptr[g+1]) takes its arcs as given when its arc
// multiset (with codes) equals its reverse (an undirected graph listed in both directions), and
// as in mode 1 otherwise.
Adjacency build_auto(const int64_t* d, const int64_t* s, const int64_t* cd, int64_t A, int64_t N,
                     const int64_t* gptr, int64_t B) {
  // 0. Fast exact path for one graph listed as L followed by the element-wise reverse of L (the
  //    cat([e, e.flip(0)]) layout): symmetric by construction, one counting pass.
  if (B == 1 && A % 2 == 0 && A > 0) {
    const int64_t h = A / 2;
    const int64_t bad = first_bad(h, [&](int64_t a) {
      return d[a + h] != s[a] || s[a + h] != d[a] || (cd && cd[a + h] != cd[a]);
    });
    if (bad < 0) return build_as_given(d, s, cd, A, N);
  }
  // 1. (dst, src, code)-sorted in-rows: counting sorts by src then (stably) by dst.
  std::vector<int64_t> t_d(A), t_s(A), t_c(cd ? A : 0);
  counting_sort(
      A, N, [&](int64_t a) { return s[a]; },
      [&](int64_t a, int64_t pos) {
        t_d[pos] = d[a];
        t_s[pos] = s[a];
        if (cd) t_c[pos] = cd[a];
      });
  Adjacency in;
  in.nbr.resize(A);
  if (cd) in.code.resize(A);
  std::vector<int64_t> in_row(A);
  in.ptr = counting_sort(
      A, N, [&](int64_t i) { return t_d[i]; },
      [&](int64_t i, int64_t pos) {
        in.nbr[pos] = t_s[i];
        in_row[pos] = t_d[i];
        if (cd) in.code[pos] = t_c[i];
      });
  if (cd) {
    // Rows are sorted by src; order the parallel arcs (equal src) by code as well.
    at::parallel_for(0, N, 2048, [&](int64_t b, int64_t e) {
      for (int64_t v = b; v < e; ++v) {
        for (int64_t p = in.ptr[v] + 1; p < in.ptr[v + 1]; ++p) {
          const int64_t x = in.nbr[p], c = in.code[p];
          int64_t q = p;
          for (; q > in.ptr[v] && in.nbr[q - 1] == x && in.code[q - 1] > c; --q)
            in.code[q] = in.code[q - 1];
          in.code[q] = c;
        }
      }
    });
  }
  // 2. (src, dst, code)-sorted out-rows: a stable counting sort of the in-rows by src.
  std::vector<int64_t>& out_nbr = t_d;  // reuse the buffers
  std::vector<int64_t>& out_code = t_c;
  const std::vector<int64_t> out_ptr = counting_sort(
      A, N, [&](int64_t q) { return in.nbr[q]; },
      [&](int64_t q, int64_t pos) {
        out_nbr[pos] = in_row[q];
        if (cd) out_code[pos] = in.code[q];
      });
  in_row = std::vector<int64_t>();
  t_s = std::vector<int64_t>();
  // 3. Per node: in-row == out-row; per graph: all its nodes.
  std::vector<uint8_t> node_sym(N);
  at::parallel_for(0, N, 2048, [&](int64_t b, int64_t e) {
    for (int64_t v = b; v < e; ++v) {
      const int64_t i0 = in.ptr[v], i1 = in.ptr[v + 1], o0 = out_ptr[v], o1 = out_ptr[v + 1];
      bool same = (i1 - i0) == (o1 - o0) &&
                  std::equal(in.nbr.begin() + i0, in.nbr.begin() + i1, out_nbr.begin() + o0);
      if (same && cd)
        same = std::equal(in.code.begin() + i0, in.code.begin() + i1, out_code.begin() + o0);
      node_sym[v] = same ? 1 : 0;
    }
  });
  std::vector<uint8_t> graph_sym(B);
  at::parallel_for(0, B, 256, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) {
      const auto first = node_sym.begin() + gptr[g], last = node_sym.begin() + gptr[g + 1];
      graph_sym[g] = std::find(first, last, uint8_t(0)) == last ? 1 : 0;
    }
  });
  if (std::find(graph_sym.begin(), graph_sym.end(), uint8_t(0)) == graph_sym.end()) return in;
  // 4. Asymmetric graphs: append each node's out-row without loops to its in-row.
  std::vector<uint8_t> add(N, 0);
  at::parallel_for(0, B, 256, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g)
      if (!graph_sym[g]) std::fill(add.begin() + gptr[g], add.begin() + gptr[g + 1], uint8_t(1));
  });
  Adjacency u;
  u.ptr.assign(N + 1, 0);
  at::parallel_for(0, N, 2048, [&](int64_t b, int64_t e) {
    for (int64_t v = b; v < e; ++v) {
      int64_t len = in.ptr[v + 1] - in.ptr[v];
      if (add[v])
        for (int64_t q = out_ptr[v]; q < out_ptr[v + 1]; ++q) len += out_nbr[q] != v ? 1 : 0;
      u.ptr[v + 1] = len;
    }
  });
  for (int64_t v = 0; v < N; ++v) u.ptr[v + 1] += u.ptr[v];
  u.nbr.resize(u.ptr[N]);
  if (cd) u.code.resize(u.ptr[N]);
  at::parallel_for(0, N, 2048, [&](int64_t b, int64_t e) {
    for (int64_t v = b; v < e; ++v) {
      int64_t p = u.ptr[v];
      for (int64_t q = in.ptr[v]; q < in.ptr[v + 1]; ++q, ++p) {
        u.nbr[p] = in.nbr[q];
        if (cd) u.code[p] = in.code[q];
      }
      if (!add[v]) continue;
      for (int64_t q = out_ptr[v]; q < out_ptr[v + 1]; ++q) {
        if (out_nbr[q] == v) continue;
        u.nbr[p] = out_nbr[q];
        if (cd) u.code[p] = out_code[q];
        ++p;
      }
    }
  });
  return u;
}

// ------------------------------------------------------------------------------------------------
// One refinement round.

// An active node (member of a class with >= 2 members) in its own-colour bucket.
struct Rec {
  uint64_t h;   // signature hash (groups candidates; every grouping is verified exactly)
  int64_t off;  // first item of the node's row in the bucket-ordered copy of the rows
  int64_t len;  // degree
  int64_t v;    // node
};

template <typename Item>
struct RepKey {
  int64_t len;
  Item i0, i1;
  int64_t off;
  int64_t j;  // record index
};

struct Slot {
  uint64_t h;
  int64_t j;  // record index of the representative, -1 = empty
};

struct Scratch {
  std::vector<int64_t> cnt;    // [bound] class sizes
  std::vector<int64_t> dist;   // [bound] distinct signatures per class, then class offsets
  std::vector<Rec> rec;        // active nodes bucketed by own colour
  std::vector<uint64_t> hnode; // [N] signature hash of every active node
  std::vector<int64_t> rep;    // [records] record index of the representative
  std::vector<int64_t> lrank;  // [records] rank of the signature inside its own-colour class
  std::vector<uint32_t> items32;
  std::vector<uint64_t> items64;
};

inline uint64_t hash_start(int64_t own, int64_t len) {
  return mix64(static_cast<uint64_t>(own) * 0x9e3779b97f4a7c15ULL + static_cast<uint64_t>(len) +
               0x632be59bd9b4e019ULL);
}

template <typename Item>
inline uint64_t hash_items(uint64_t h, const Item* x, int64_t len) {
  for (int64_t j = 0; j < len; ++j) {
    h = ((h << 26) | (h >> 38)) ^ static_cast<uint64_t>(x[j]);
    h *= 0x9e3779b97f4a7c15ULL;
  }
  return mix64(h);
}

// Open-addressing table of representatives (linear probing, grows at load 1/2).
class RepTable {
 public:
  void reset(int64_t expect) {
    size_t cap = 16;
    while (cap < 2 * static_cast<size_t>(std::max<int64_t>(expect, 1))) cap <<= 1;
    if (slots_.size() < cap || slots_.size() > 8 * cap) slots_.assign(cap, Slot{0, -1});
    else std::fill(slots_.begin(), slots_.begin() + cap, Slot{0, -1});
    cap_ = cap;
    size_ = 0;
  }
  // The representative of record j (hash h): an earlier record with an equal signature, or j
  // itself (then inserted).
  template <typename Same>
  int64_t find_or_insert(uint64_t h, int64_t j, const Same& same) {
    size_t mask = cap_ - 1, slot = h & mask;
    while (true) {
      Slot& sl = slots_[slot];
      if (sl.j < 0) {
        sl = Slot{h, j};
        if (++size_ * 2 > cap_) grow();
        return j;
      }
      if (sl.h == h && same(sl.j, j)) return sl.j;
      slot = (slot + 1) & mask;
    }
  }

 private:
  void grow() {
    std::vector<Slot> bigger(cap_ * 2, Slot{0, -1});
    const size_t m2 = cap_ * 2 - 1;
    for (size_t q = 0; q < cap_; ++q) {
      const Slot& x = slots_[q];
      if (x.j < 0) continue;
      size_t t = x.h & m2;
      while (bigger[t].j >= 0) t = (t + 1) & m2;
      bigger[t] = x;
    }
    slots_.swap(bigger);
    cap_ *= 2;
  }
  std::vector<Slot> slots_;
  size_t cap_ = 0, size_ = 0;
};

// Returns the number of distinct signatures D (>= C). When D > C, writes the new colours.
template <typename Item>
int64_t refine_round(const Adjacency& g, const int64_t* c, int64_t N, int64_t bound, int64_t C,
                     std::vector<Item>& items, Scratch& S, int64_t* next) {
  const int64_t* ptr = g.ptr.data();
  const int64_t* nbr = g.nbr.data();
  const int64_t* ncode = g.code.empty() ? nullptr : g.code.data();
  const int64_t T = std::max<int64_t>(1, at::get_num_threads());

  // Class sizes.
  S.cnt.assign(bound, 0);
  {
    const int64_t chunks = chunk_count(N, 1 << 16);
    if (chunks == 1 || chunks * bound > (int64_t(1) << 26)) {
      for (int64_t v = 0; v < N; ++v) ++S.cnt[c[v]];
    } else {
      std::vector<int64_t> part(static_cast<size_t>(chunks * bound), 0);
      at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
        for (int64_t t = b; t < e; ++t) {
          int64_t* pt = part.data() + t * bound;
          for (int64_t v = N * t / chunks, hi = N * (t + 1) / chunks; v < hi; ++v) ++pt[c[v]];
        }
      });
      at::parallel_for(0, bound, 1 << 14, [&](int64_t b, int64_t e) {
        for (int64_t k = b; k < e; ++k) {
          int64_t sum = 0;
          for (int64_t t = 0; t < chunks; ++t) sum += part[t * bound + k];
          S.cnt[k] = sum;
        }
      });
    }
  }
  const int64_t* cnt = S.cnt.data();

  // Items of the active nodes (node order, for locality), sorted per node, and their hashes.
  if (static_cast<int64_t>(items.size()) < 2 * ptr[N]) items.resize(2 * ptr[N]);
  Item* row_items = items.data();
  S.hnode.resize(N);
  uint64_t* hv = S.hnode.data();
  const uint64_t ub = static_cast<uint64_t>(bound);
  at::parallel_for(0, N, 1024, [&](int64_t b, int64_t e) {
    for (int64_t v = b; v < e; ++v) {
      if (cnt[c[v]] < 2) continue;
      const int64_t lo = ptr[v], hi = ptr[v + 1];
      Item* x = row_items + lo;
      if (ncode) {
        for (int64_t p = lo; p < hi; ++p)
          x[p - lo] = static_cast<Item>(static_cast<uint64_t>(ncode[p]) * ub +
                                        static_cast<uint64_t>(c[nbr[p]]));
      } else {
        for (int64_t p = lo; p < hi; ++p) x[p - lo] = static_cast<Item>(c[nbr[p]]);
      }
      small_sort(x, hi - lo);
      hv[v] = hash_items(hash_start(c[v], hi - lo), x, hi - lo);
    }
  });

  // Active nodes bucketed by own colour (stable: ascending node ids inside a bucket), with their
  // rows copied in bucket order so that each bucket's signatures are contiguous in memory.
  int64_t nrec = 0;
  for (int64_t k = 0; k < bound; ++k) nrec += cnt[k] > 1 ? cnt[k] : 0;
  S.rec.resize(nrec);
  Rec* rec = S.rec.data();
  const std::vector<int64_t> bptr = counting_sort(
      N, bound, [&](int64_t v) { return cnt[c[v]] > 1 ? c[v] : int64_t(-1); },
      [&](int64_t v, int64_t pos) { rec[pos] = Rec{hv[v], 0, ptr[v + 1] - ptr[v], v}; });
  {
    int64_t o = 0;
    for (int64_t j = 0; j < nrec; ++j) {
      rec[j].off = o;
      o += rec[j].len;
    }
  }
  Item* it = row_items + ptr[N];
  at::parallel_for(0, nrec, 2048, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) {
      const Rec& r = rec[j];
      std::copy(row_items + ptr[r.v], row_items + ptr[r.v] + r.len, it + r.off);
    }
  });

  // Within one bucket the own colour is equal: signatures compare by (len, items).
  auto same = [&](int64_t a, int64_t b) {
    const Rec& x = rec[a];
    const Rec& y = rec[b];
    return x.len == y.len && std::equal(it + x.off, it + x.off + x.len, it + y.off);
  };
  auto less = [&](const RepKey<Item>& a, const RepKey<Item>& b) {
    if (a.len != b.len) return a.len < b.len;
    if (a.i0 != b.i0) return a.i0 < b.i0;
    if (a.i1 != b.i1) return a.i1 < b.i1;
    const Item* x = it + a.off;
    const Item* y = it + b.off;
    for (int64_t q = 2; q < a.len; ++q)
      if (x[q] != y[q]) return x[q] < y[q];
    return false;
  };
  auto key_of = [&](int64_t j) {
    const Rec& r = rec[j];
    const Item* x = it + r.off;
    return RepKey<Item>{r.len, r.len > 0 ? x[0] : Item(0), r.len > 1 ? x[1] : Item(0), r.off, j};
  };
  S.rep.resize(nrec);
  S.lrank.resize(nrec);
  int64_t* rep = S.rep.data();
  int64_t* lrank = S.lrank.data();
  S.dist.assign(bound, 0);
  int64_t* dist = S.dist.data();

  // One bucket on one thread: exact merging (pairwise for tiny buckets, else a hash table), then
  // the distinct signatures sorted.
  auto do_bucket = [&](int64_t k, RepTable& table, std::vector<RepKey<Item>>& keys) {
    const int64_t b0 = bptr[k], b1 = bptr[k + 1], s = b1 - b0;
    keys.clear();
    if (s <= 12) {
      for (int64_t j = b0; j < b1; ++j) {
        int64_t r = j;
        for (const auto& kk : keys)
          if (rec[kk.j].h == rec[j].h && same(kk.j, j)) {
            r = kk.j;
            break;
          }
        rep[j] = r;
        if (r == j) keys.push_back(key_of(j));
      }
    } else {
      table.reset(std::min<int64_t>(s, 1024));
      for (int64_t j = b0; j < b1; ++j) {
        const int64_t r = table.find_or_insert(rec[j].h, j, same);
        rep[j] = r;
        if (r == j) keys.push_back(key_of(j));
      }
    }
    const int64_t d = static_cast<int64_t>(keys.size());
    dist[k] = d;
    if (d == 1) {
      for (int64_t j = b0; j < b1; ++j) lrank[j] = 0;
      return;
    }
    std::sort(keys.begin(), keys.end(), less);
    for (int64_t q = 0; q < d; ++q) lrank[keys[q].j] = q;
    for (int64_t j = b0; j < b1; ++j) lrank[j] = lrank[rep[j]];
  };

  // A giant bucket (e.g. round 1 without labels): the merging is split over the threads by
  // hash partition, the sort is a parallel merge sort.
  auto do_giant = [&](int64_t k) {
    const int64_t b0 = bptr[k], b1 = bptr[k + 1], s = b1 - b0;
    const int64_t P = T;
    std::vector<std::vector<int64_t>> part_reps(P);
    at::parallel_for(0, P, 1, [&](int64_t pb, int64_t pe) {
      RepTable table;
      for (int64_t p = pb; p < pe; ++p) {
        table.reset(std::min<int64_t>(s / P + 1, 1024));
        for (int64_t j = b0; j < b1; ++j) {
          const uint64_t hh = rec[j].h;
          if (static_cast<int64_t>(((hh >> 32) * static_cast<uint64_t>(P)) >> 32) != p) continue;
          const int64_t r = table.find_or_insert(hh, j, same);
          rep[j] = r;
          if (r == j) part_reps[p].push_back(j);
        }
      }
    });
    std::vector<RepKey<Item>> keys;
    for (const auto& pr : part_reps)
      for (int64_t j : pr) keys.push_back(key_of(j));
    const int64_t d = static_cast<int64_t>(keys.size());
    dist[k] = d;
    wl::parallel_sort(keys, less);
    for (int64_t q = 0; q < d; ++q) lrank[keys[q].j] = q;
    at::parallel_for(b0, b1, 4096, [&](int64_t b, int64_t e) {
      for (int64_t j = b; j < e; ++j) lrank[j] = lrank[rep[j]];
    });
  };

  // Buckets: giant ones one by one, the others in parallel in chunks of similar record counts.
  const int64_t giant = std::max<int64_t>(1 << 14, nrec / (2 * T));
  std::vector<int64_t> giants, chunk_start{0};
  std::vector<int64_t> normal;
  const int64_t target = std::max<int64_t>(1024, nrec / (8 * T));
  int64_t acc = 0;
  for (int64_t k = 0; k < bound; ++k) {
    const int64_t s = bptr[k + 1] - bptr[k];
    if (s == 0) continue;
    if (T > 1 && s >= giant) {
      giants.push_back(k);
      continue;
    }
    normal.push_back(k);
    acc += s;
    if (acc >= target) {
      chunk_start.push_back(static_cast<int64_t>(normal.size()));
      acc = 0;
    }
  }
  if (chunk_start.back() != static_cast<int64_t>(normal.size()))
    chunk_start.push_back(static_cast<int64_t>(normal.size()));
  for (int64_t k : giants) do_giant(k);
  at::parallel_for(0, static_cast<int64_t>(chunk_start.size()) - 1, 1, [&](int64_t b, int64_t e) {
    RepTable table;
    std::vector<RepKey<Item>> keys;
    for (int64_t q = b; q < e; ++q)
      for (int64_t x = chunk_start[q]; x < chunk_start[q + 1]; ++x) do_bucket(normal[x], table, keys);
  });

  // Offsets: distinct signatures of the lower classes (singletons count one, unused values 0).
  int64_t run = 0;
  for (int64_t k = 0; k < bound; ++k) {
    const int64_t m = cnt[k] > 1 ? dist[k] : cnt[k];
    dist[k] = run;
    run += m;
  }
  const int64_t D = run;
  if (D == C) return D;
  at::parallel_for(0, N, 4096, [&](int64_t b, int64_t e) {
    for (int64_t v = b; v < e; ++v) next[v] = dist[c[v]];
  });
  at::parallel_for(0, nrec, 4096, [&](int64_t b, int64_t e) {
    for (int64_t j = b; j < e; ++j) next[rec[j].v] += lrank[j];
  });
  return D;
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> wl_refine_cpu(const at::Tensor& dst_, const at::Tensor& src_,
                                                 const at::Tensor& code_, const at::Tensor& colors_,
                                                 int64_t num_codes, int64_t arc_mode,
                                                 int64_t max_rounds, bool return_history,
                                                 const c10::optional<at::Tensor>& graph_ptr_) {
  wl::check_refine_args(dst_, src_, code_, colors_, num_codes, arc_mode, graph_ptr_);
  UDL_CHECK_CPU(dst_, "dst");
  UDL_CHECK_CPU(src_, "src");
  UDL_CHECK_CPU(code_, "code");
  UDL_CHECK_CPU(colors_, "colors");
  if (graph_ptr_.has_value()) UDL_CHECK_CPU(*graph_ptr_, "graph_ptr");
  const at::Tensor dst = dst_.contiguous(), src = src_.contiguous(), code = code_.contiguous();
  const at::Tensor colors0 = colors_.contiguous();
  const int64_t N = colors0.numel();
  const int64_t A = dst.numel();
  auto opts = colors0.options();
  const int64_t* d = dst.data_ptr<int64_t>();
  const int64_t* s = src.data_ptr<int64_t>();
  const int64_t* c0 = colors0.data_ptr<int64_t>();
  at::Tensor gptr_t;
  int64_t B = 1;
  std::vector<int64_t> whole{0, N};
  const int64_t* gptr = whole.data();
  if (graph_ptr_.has_value()) {
    gptr_t = graph_ptr_->contiguous();
    gptr = gptr_t.data_ptr<int64_t>();
    B = gptr_t.numel() - 1;
    TORCH_CHECK(gptr[0] == 0 && gptr[B] == N, "graph_ptr must start at 0 and end at N=", N,
                ", got ", gptr[0], " and ", gptr[B]);
    for (int64_t g = 0; g < B; ++g)
      TORCH_CHECK(gptr[g] <= gptr[g + 1], "graph_ptr must be non-decreasing, got ", gptr[g],
                  " > ", gptr[g + 1], " at graph ", g);
  }
  if (N == 0) {
    TORCH_CHECK(A == 0, "dst: arcs given for a graph with no nodes");
    return {at::empty({1, 0}, opts), at::zeros({1}, opts)};
  }
  const int64_t* cd = code.numel() ? code.data_ptr<int64_t>() : nullptr;
  const int64_t bad_color = first_bad(N, [&](int64_t i) { return c0[i] < 0 || c0[i] >= N; });
  TORCH_CHECK(bad_color < 0, "colors must lie in [0, N=", N, "), got ",
              bad_color >= 0 ? c0[bad_color] : 0, " at node ", bad_color);
  const int64_t bad_arc = first_bad(A, [&](int64_t a) {
    return d[a] < 0 || d[a] >= N || s[a] < 0 || s[a] >= N ||
           (cd && (cd[a] < 0 || cd[a] >= num_codes));
  });
  if (bad_arc >= 0) {
    const int64_t a = bad_arc;
    TORCH_CHECK(d[a] >= 0 && d[a] < N, "dst must lie in [0, N=", N, "), got ", d[a], " at arc ", a);
    TORCH_CHECK(s[a] >= 0 && s[a] < N, "src must lie in [0, N=", N, "), got ", s[a], " at arc ", a);
    TORCH_CHECK(false, "code must lie in [0, num_codes=", num_codes, "), got ", cd[a], " at arc ",
                a);
  }
  TORCH_CHECK(num_codes <= std::numeric_limits<int64_t>::max() / N,
              "num_codes * num_nodes overflows int64 (num_codes=", num_codes, ", N=", N, ")");
  // Codes that are all zero carry no information: drop them.
  if (cd && num_codes == 1) cd = nullptr;

  Adjacency g;
  if (arc_mode == 0) {
    g = build_as_given(d, s, cd, A, N);
  } else if (arc_mode == 1) {
    g = build_undirected(d, s, cd, A, N);
  } else {
    if (B > 1) {
      std::vector<int64_t> graph_of(N);
      at::parallel_for(0, B, 256, [&](int64_t b, int64_t e) {
        for (int64_t k = b; k < e; ++k)
          std::fill(graph_of.begin() + gptr[k], graph_of.begin() + gptr[k + 1], k);
      });
      const int64_t cross = first_bad(A, [&](int64_t a) { return graph_of[d[a]] != graph_of[s[a]]; });
      TORCH_CHECK(cross < 0, "dst/src: arc ", cross, " (", s[cross < 0 ? 0 : cross], " -> ",
                  d[cross < 0 ? 0 : cross], ") joins nodes of different graphs of graph_ptr");
    }
    g = build_auto(d, s, cd, A, N, gptr, B);
  }

  std::vector<at::Tensor> history;
  std::vector<int64_t> counts;
  at::Tensor cur = colors0.clone();
  int64_t C = wl::count_distinct(cur.data_ptr<int64_t>(), N, N);
  int64_t bound = *std::max_element(c0, c0 + N) + 1;
  history.push_back(cur);
  counts.push_back(C);
  Scratch S;
  int64_t rounds = 0;
  const uint64_t K = cd ? static_cast<uint64_t>(num_codes) : 1;
  while ((max_rounds < 0 || rounds < max_rounds) && C < N) {  // C == N: discrete, stable
    at::Tensor next = at::empty({N}, opts);
    const int64_t* c = cur.data_ptr<int64_t>();
    const bool narrow = K * static_cast<uint64_t>(bound) <= (uint64_t(1) << 32);
    const int64_t D =
        narrow ? refine_round<uint32_t>(g, c, N, bound, C, S.items32, S, next.data_ptr<int64_t>())
               : refine_round<uint64_t>(g, c, N, bound, C, S.items64, S, next.data_ptr<int64_t>());
    if (D == C) break;  // no class split: stable
    ++rounds;
    C = D;
    bound = D;
    cur = next;
    if (return_history) {
      history.push_back(cur);
    } else {
      history[0] = cur;
    }
    counts.push_back(C);
  }
  at::Tensor num_colors
 = at::tensor(counts, opts);
  at::Tensor result = return_history ? at::stack(history) : history[0].unsqueeze(0);
  return {result, num_colors};
}

// Colour histogram per graph: the sorted distinct (graph, colour) pairs and their counts.
std::tuple<at::Tensor, at::Tensor> wl_histogram_cpu(const at::Tensor& colors_,
                                                    const at::Tensor& ptr_, int64_t num_colors) {
  UDL_CHECK_DIM(colors_, "colors", 1);
  UDL_CHECK_DIM(ptr_, "ptr", 1);
  UDL_CHECK_DTYPE(colors_, "colors", at::kLong);
  UDL_CHECK_DTYPE(ptr_, "ptr", at::kLong);
  UDL_CHECK_CPU(colors_, "colors");
  UDL_CHECK_CPU(ptr_, "ptr");
  TORCH_CHECK(ptr_.numel() >= 1, "ptr must have B + 1 >= 1 entries, got ", ptr_.numel());
  TORCH_CHECK(num_colors >= 0, "num_colors must be >= 0, got ", num_colors);
  const at::Tensor colors = colors_.contiguous(), ptr_t = ptr_.contiguous();
  const int64_t N = colors.numel(), B = ptr_t.numel() - 1;
  const int64_t* c = colors.data_ptr<int64_t>();
  const int64_t* ptr = ptr_t.data_ptr<int64_t>();
  TORCH_CHECK(ptr[0] == 0 && ptr[B] == N, "ptr must start at 0 and end at len(colors)=", N,
              ", got ", ptr[0], " and ", ptr[B]);
  for (int64_t g = 0; g < B; ++g)
    TORCH_CHECK(ptr[g] <= ptr[g + 1], "ptr must be non-decreasing, got ", ptr[g], " > ",
                ptr[g + 1], " at graph ", g);
  const int64_t bad = first_bad(N, [&](int64_t i) { return c[i] < 0 || c[i] >= num_colors; });
  TORCH_CHECK(bad < 0, "colors must lie in [0, num_colors=", num_colors, "), got ",
              bad >= 0 ? c[bad] : 0, " at element ", bad);
  // Sort each graph's colours (small graphs: insertion/std::sort; big ones: counting), count runs.
  std::vector<int64_t> sorted(c, c + N);
  std::vector<int64_t> nnz(B + 1, 0);
  auto sort_segment = [&](int64_t g) {
    int64_t* a = sorted.data() + ptr[g];
    const int64_t n = ptr[g + 1] - ptr[g];
    if (n >= 4096 && num_colors <= 8 * n) {
      std::vector<int64_t> count(num_colors, 0);
      for (int64_t i = 0; i < n; ++i) ++count[a[i]];
      int64_t w = 0;
      for (int64_t k = 0; k < num_colors; ++k)
        for (int64_t r = 0; r < count[k]; ++r) a[w++] = k;
    } else {
      small_sort(a, n);
    }
    int64_t runs = 0;
    for (int64_t i = 0; i < n; ++i) runs += (i == 0 || a[i] != a[i - 1]) ? 1 : 0;
    nnz[g + 1] = runs;
  };
  at::parallel_for(0, B, 64, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) sort_segment(g);
  });
  for (int64_t g = 0; g < B; ++g) nnz[g + 1] += nnz[g];
  auto lopts = colors.options();
  at::Tensor indices = at::empty({2, nnz[B]}, lopts);
  at::Tensor counts = at::empty({nnz[B]}, lopts);
  int64_t* gi = indices.data_ptr<int64_t>();
  int64_t* ci = gi + nnz[B];
  int64_t* cn = counts.data_ptr<int64_t>();
  at::parallel_for(0, B, 64, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) {
      const int64_t* a = sorted.data() + ptr[g];
      const int64_t n = ptr[g + 1] - ptr[g];
      int64_t w = nnz[g] - 1;
      for (int64_t i = 0; i < n; ++i) {
        if (i == 0 || a[i] != a[i - 1]) {
          ++w;
          gi[w] = g;
          ci[w] = a[i];
          cn[w] = 0;
        }
        ++cn[w];
      }
    }
  });
  return {indices, counts};
}

TORCH_LIBRARY_IMPL(udl, CPU, m) {
  m.impl("wl_refine", &wl_refine_cpu);
  m.impl("wl_histogram", &wl_histogram_cpu);
}

}  // namespace udl
