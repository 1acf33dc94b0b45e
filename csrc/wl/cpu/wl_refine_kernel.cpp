// CPU kernel of udl::wl_refine (exact canonical colour refinement) and udl::wl_histogram.
//
// Neighbour lists. A graph (or every graph of a batch whose arcs are grouped graph by graph) listed
// as L ++ reverse(L) is symmetric by construction and is built with one counting pass (per graph
// for a batch: each graph's rows fill exactly its arc range; before a degree round, each row is
// then listed by ascending neighbour degree). Otherwise arc_mode 2 (auto) buckets
// the arcs with parallel stable counting sorts by (dst, src) and by (src, dst), so every node's
// in-row and out-row come out sorted and a graph is symmetric exactly when all its nodes' in-rows
// equal their out-rows (decided per graph when graph_ptr is given).
//
// Colours are ranks of signatures (own colour, degree, sorted items) in lexicographic order among
// the distinct signatures of the call (item = code * bound + neighbour colour), so they are
// canonical, deterministic and identical to the CUDA kernel's ids. The classes are kept as
// segments of one order of the nodes by colour; since new id = (distinct signatures of the lower
// classes) + (rank inside the class), colour order only ever refines, and one round is
//  * from a uniform colouring without codes: the rank of the degree (no items gathered);
//  * right after that degree round, on a batch built graph by graph with every degree <= 15: the
//    rank of a 64-bit key (degree, neighbour degrees) packed by the build, ranked through hash
//    tables of the distinct keys (rank_signature_keys);
//  * on a batch of small simple graphs (SmallGraphs): the first three rounds graph by graph on
//    64-bit neighbour sets, without neighbour lists (built only if a later round needs them);
//  * otherwise, in node order (local accesses): the items of every node of a class with >= 2
//    members, its row kept sorted by item (an almost linear insertion sort after the first
//    round), and a 64- or 128-bit key packing (degree, first items) so that comparing keys
//    compares signatures; then every class sorted by key (an MSD radix sort on the bits in
//    which its keys differ, down to insertion sorts of short buckets), ties of truncated keys
//    broken on the remaining items, and the new ids are the running count of the class
//    boundaries.
// The loop stops after max_rounds rounds or when a round splits no class (that round is not
// recorded: its colouring would be a renaming of the previous one) or when all colours differ.
// The buffers of a call are kept for the next one (see Workspace).
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <torch/library.h>

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <mutex>
#include <vector>

#include "common/checks.h"
#include "wl/arg_checks.h"
#include "wl/cpu/wl_rank.h"

namespace udl {
namespace {

// ------------------------------------------------------------------------------------------------
// Parallel helpers.

int64_t chunk_count(int64_t n, int64_t min_per_chunk) {
  const int64_t t = std::max<int64_t>(1, at::get_num_threads());
  return std::max<int64_t>(1, std::min<int64_t>(t, n / std::max<int64_t>(min_per_chunk, 1)));
}

// Chunks of a stable counting sort of n records into K buckets: one per thread, or one when the
// per-chunk counts (chunks * K) would take too much memory.
int64_t counting_chunks(int64_t n, int64_t K) {
  const int64_t chunks = chunk_count(n, 1 << 15);
  return chunks > 1 && chunks * K > (int64_t(1) << 26) ? 1 : chunks;
}

// From per-chunk bucket counts cnt[t * K + k] (chunks of consecutive records): turns cnt into each
// chunk's first position in every bucket (stable: chunk t's records of a bucket follow chunk
// t - 1's) and returns the bucket offsets ptr[0..K].
std::vector<int64_t> stable_offsets(std::vector<int64_t>& cnt, int64_t chunks, int64_t K) {
  std::vector<int64_t> ptr(static_cast<size_t>(K + 1));
  int64_t run = 0;
  for (int64_t k = 0; k < K; ++k) {
    ptr[k] = run;
    for (int64_t t = 0; t < chunks; ++t) {
      const int64_t c = cnt[t * K + k];
      cnt[t * K + k] = run;
      run += c;
    }
  }
  ptr[K] = run;
  return ptr;
}

// Stable parallel counting sort of the records 0..n-1 (in this order) by key(i) in [0, K), or
// key(i) < 0 to drop the record. put(i, pos) stores record i at position pos. Returns the bucket
// offsets ptr[0..K] (a CSR row pointer). The input is cut into contiguous chunks, one per thread;
// per-chunk counts keep the scatter stable, so the result does not depend on the thread count.
template <typename Key, typename Put>
std::vector<int64_t> counting_sort(int64_t n, int64_t K, const Key& key, const Put& put) {
  const int64_t chunks = counting_chunks(n, K);
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
  std::vector<int64_t> ptr = stable_offsets(cnt, chunks, K);
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

// Insertion sort for short runs, std::sort otherwise; with a total order the result does not
// depend on the input order beyond ties.
template <typename T, typename Less = std::less<T>>
void insertion_sort(T* a, int64_t n, const Less& less = Less()) {
  for (int64_t i = 1; i < n; ++i) {
    const T x = a[i];
    int64_t j = i;
    for (; j > 0 && less(x, a[j - 1]); --j) a[j] = a[j - 1];
    a[j] = x;
  }
}

template <typename T, typename Less = std::less<T>>
void small_sort(T* a, int64_t n, const Less& less = Less()) {
  if (n <= 32)
    insertion_sort(a, n, less);
  else
    std::sort(a, a + n, less);
}

// ------------------------------------------------------------------------------------------------
// Inputs.

// Smallest index in [0, n) with bad(i), or -1. Blocks of 256 are tested without branches (vector
// code: bad inputs are the exception) and only a block with a bad index is scanned for it.
template <typename Bad>
int64_t first_bad(int64_t n, const Bad& bad) {
  const int64_t chunks = chunk_count(n, 1 << 15);
  std::vector<int64_t> first(static_cast<size_t>(chunks), -1);
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t hi = n * (t + 1) / chunks;
      for (int64_t lo = n * t / chunks; lo < hi && first[t] < 0; lo += 256) {
        const int64_t end = std::min(hi, lo + 256);
        bool any = false;
        for (int64_t i = lo; i < end; ++i) any |= bad(i);
        if (!any) continue;
        for (int64_t i = lo; i < end; ++i) {
          if (bad(i)) {
            first[t] = i;
            break;
          }
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

// arc_mode 0: row dst[a] gets (code[a], src[a]). Fills g (reusing its buffers).
void build_as_given(const int64_t* d, const int64_t* s, const int64_t* cd, int64_t A, int64_t N,
                    Adjacency& g) {
  g.nbr.resize(A);
  g.code.resize(cd ? A : 0);
  g.ptr = counting_sort(
      A, N, [&](int64_t a) { return d[a]; },
      [&](int64_t a, int64_t pos) {
        g.nbr[pos] = s[a];
        if (cd) g.code[pos] = cd[a];
      });
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

// Writes the rows of one symmetric graph (nodes n0..n0+n-1, row pointers already in g.ptr, rows
// given in `rows` = its part a0..a1 of g.nbr in any order) to g.nbr with each row listing its
// neighbours by ascending degree: the rows are refilled from the sources taken in degree order (by
// symmetry, u is in row w as often as w is in row u). After the degree round the colours are ranks
// of the degree, so the first gathered rows are already sorted; the sort this saves would otherwise
// run on unpredictable branches. With `sig2`, also writes every node's signature key for the round
// after the degree round, while its rows are in cache; returns false (keys unusable) when a degree
// is above kSig2MaxDegree (a key holds 16 fields of 4 bits: the degree and up to 15 neighbours).
constexpr int64_t kSig2MaxDegree = 15;
bool order_rows_by_degree(Adjacency& g, int64_t n0, int64_t n, int64_t a0, int64_t a1,
                          const std::vector<int64_t>& rows, std::vector<int64_t>& by_deg,
                          std::vector<int64_t>& fill, std::vector<int64_t>& deg, uint64_t* sig2) {
  const int64_t* ptr = g.ptr.data();
  int64_t* nbr = g.nbr.data();
  const int64_t end = n0 + n;
  deg.resize(static_cast<size_t>(n));
  int64_t maxdeg = 0;  // counting sort of the nodes by degree
  for (int64_t i = 0; i < n; ++i) {
    deg[i] = (i + 1 < n ? ptr[n0 + i + 1] : a1) - ptr[n0 + i];
    maxdeg = std::max(maxdeg, deg[i]);
  }
  fill.assign(static_cast<size_t>(maxdeg + 2), 0);
  for (int64_t i = 0; i < n; ++i) ++fill[deg[i] + 1];
  for (int64_t k = 0; k <= maxdeg; ++k) fill[k + 1] += fill[k];
  by_deg.resize(static_cast<size_t>(n));
  for (int64_t i = 0; i < n; ++i) by_deg[fill[deg[i]]++] = n0 + i;
  fill.resize(static_cast<size_t>(n));
  for (int64_t v = n0; v < end; ++v) fill[v - n0] = ptr[v];
  for (const int64_t u : by_deg)
    for (int64_t q = ptr[u] - a0, qe = q + deg[u - n0]; q < qe; ++q) nbr[fill[rows[q] - n0]++] = u;
  if (!sig2) return true;
  if (maxdeg > kSig2MaxDegree) return false;
  // (degree, neighbour degrees in ascending order) in 4-bit fields, most significant first: the
  // keys of one degree have equally many fields, so comparing keys compares the signatures of the
  // round after the degree round.
  for (int64_t i = 0; i < n; ++i) {
    const int64_t* row = nbr + ptr[n0 + i];
    uint64_t key = static_cast<uint64_t>(deg[i]) << 60;
    for (int64_t q = 0; q < deg[i]; ++q)
      key |= static_cast<uint64_t>(deg[row[q] - n0]) << (56 - 4 * q);
    sig2[n0 + i] = key;
  }
  return true;
}

// The arc blocks of a batch whose arcs are grouped graph by graph (graph order, as a PyG Batch
// stores them): graph k's arcs are taken to be [first_arc(k), first_arc(k+1)), first_arc(k) being
// the first arc whose dst is >= gptr[k]. It is found by binary search at the start of a chunk of
// graphs and by galloping from the previous boundary inside it (a few cache-resident probes per
// graph instead of a scan of dst). The searches assume the grouping; the callers check every
// block (all its dst in the graph's node range, the L ++ reverse(L) mirror, so its src too), which
// holds for all blocks exactly when the assumption does.
struct ArcBlocks {
  const int64_t* d;
  int64_t A;
  const int64_t* gptr;
  int64_t B;
  int64_t bisect(int64_t lo, int64_t hi, int64_t t) const {  // first a in [lo, hi) with d[a] >= t
    while (lo < hi) {
      const int64_t mid = lo + (hi - lo) / 2;
      if (d[mid] < t)
        lo = mid + 1;
      else
        hi = mid;
    }
    return lo;
  }
  int64_t gallop(int64_t lo, int64_t hi, int64_t t) const {  // the same, probing lo, lo+1, lo+3..
    for (int64_t step = 1;; step *= 2) {
      const int64_t probe = lo + step - 1;
      if (probe >= hi) break;
      if (d[probe] >= t) {
        hi = probe;
        break;
      }
      lo = probe + 1;
    }
    return bisect(lo, hi, t);
  }
  int64_t first_arc(int64_t k) const { return k == 0 ? 0 : k == B ? A : bisect(0, A, gptr[k]); }
  // Calls visit(k, a0, a1) for the graphs k in [b, e) in order, with their arc blocks, until it
  // returns false. The next graphs' dst/src (and, given `out`, the arcs' slots of out, for
  // writing) are prefetched while one is visited: a graph is ~1-2 KB, so two graphs ahead.
  // Measured: single-thread build of the 10,000-graph batch 16.4 -> 14.9 ms (best of 60 calls).
  template <typename Visit>
  void walk(int64_t b, int64_t e, const int64_t* s, const int64_t* out, const Visit& visit) const {
    const int64_t last = first_arc(e);
    int64_t a1 = first_arc(b);
    int64_t fetched = a1;  // the arcs from here on are not prefetched yet
    for (int64_t k = b; k < e; ++k) {
      const int64_t a0 = a1;
      a1 = k + 1 == e ? last : gallop(a0, last, gptr[k + 1]);
      for (const int64_t want = std::min(last, a1 + 2 * (a1 - a0)); fetched < want; fetched += 8) {
        __builtin_prefetch(d + fetched);
        __builtin_prefetch(s + fetched);
        if (out) __builtin_prefetch(out + fetched, 1);
      }
      if (!visit(k, a0, a1)) return;
    }
  }
};

// One graph's block [a0, a1) of a batch listed as L ++ reverse(L): tests the layout (arc i + h is
// arc i reversed, both ends in the node range n0..n0+n-1, equal codes; loops only if `loops`) and
// counts every node's degree into count[v - n0] (edge {x, y} adds to both rows), in one
// branch-free pass: ids outside the range count in the sink count[n]. count[0..n] must be zero.
template <typename Count>
bool mirrored_block(const int64_t* d, const int64_t* s, const int64_t* cd, int64_t a0, int64_t a1,
                    int64_t n0, int64_t n, bool loops, Count* count) {
  auto in_block = [n0, n](int64_t v) {  // n0 <= v < n0 + n
    return static_cast<uint64_t>(v) - static_cast<uint64_t>(n0) < static_cast<uint64_t>(n);
  };
  const int64_t h = (a1 - a0) / 2;
  bool same = a1 >= a0 && (a1 - a0) % 2 == 0;  // else h < 0 or odd: the loop reads nothing
  for (int64_t i = a0; i < a0 + h; ++i) {
    const int64_t x = d[i], y = s[i];
    const bool inx = in_block(x), iny = in_block(y);
    same &= inx & iny & (loops | (x != y)) & (d[i + h] == y) & (s[i + h] == x) &
            (!cd || cd[i + h] == cd[i]);
    ++count[inx ? x - n0 : n];
    ++count[iny ? y - n0 : n];
  }
  return same;
}

// One graph, or a batch whose arcs are grouped graph by graph (graph order, as a PyG Batch stores
// them), with each graph's arcs in the layout L ++ reverse(L) (per graph cat([e, e.flip(0)]), codes equal): every
// graph is symmetric by construction, so its arcs are taken as given. Builds the neighbour lists
// graph by graph (graph g's rows occupy exactly its arc range, so each graph is an independent,
// cache-resident counting sort) and returns true; returns false (nothing built) for any other
// layout, which then goes through the general per-graph symmetry test. Arcs joining two graphs
// are reported (they can only make this test fail).
bool build_halves(const int64_t* d, const int64_t* s, const int64_t* cd, int64_t A, int64_t N,
                  const int64_t* gptr, int64_t B, bool by_degree, Adjacency& g,
                  std::vector<uint64_t>& sig2, bool& have_sig2) {
  have_sig2 = false;
  if (A == 0 || B == 0) return false;
  if (B == 1) {  // one graph: one parallel check (ranges included), then one counting pass
    const int64_t h = A / 2;
    const int64_t bad = A % 2 ? 0 : first_bad(h, [&](int64_t a) {
      return d[a] < 0 || d[a] >= N || s[a] < 0 || s[a] >= N || d[a + h] != s[a] ||
             s[a + h] != d[a] || (cd && cd[a + h] != cd[a]);
    });
    if (bad >= 0) return false;
    build_as_given(d, s, cd, A, N, g);
    return true;
  }
  const ArcBlocks blocks{d, A, gptr, B};
  // Per graph (cache-resident): the block and L ++ reverse(L) tests, then its rows.
  g.ptr.resize(static_cast<size_t>(N + 1));
  g.nbr.resize(static_cast<size_t>(A));
  g.code.resize(static_cast<size_t>(cd ? A : 0));
  std::atomic<bool> halves{true};
  std::atomic<bool> sig2_fits{by_degree};
  if (by_degree) sig2.resize(static_cast<size_t>(N));
  at::parallel_for(0, B, 64, [&](int64_t b, int64_t e) {
    std::vector<int64_t> cur, rows, by_deg, deg;
    blocks.walk(b, e, s, g.nbr.data(), [&](int64_t k, int64_t a0, int64_t a1) {
      if (!halves.load(std::memory_order_relaxed)) return false;
      const int64_t n0 = gptr[k], n = gptr[k + 1] - n0;
      const int64_t h = (a1 - a0) / 2;
      // The layout test and the degrees (counted from cur[1], for the prefix sum below).
      cur.assign(static_cast<size_t>(n + 2), 0);
      if (!mirrored_block(d, s, cd, a0, a1, n0, n, /*loops=*/true, cur.data() + 1)) {
        halves.store(false, std::memory_order_relaxed);
        return false;
      }
      cur[0] = a0;
      for (int64_t i = 1; i <= n; ++i) cur[i] += cur[i - 1];
      std::copy(cur.begin(), cur.begin() + n, g.ptr.begin() + n0);
      // The rows are scattered into a local (L1-resident) buffer and then written to nbr in one
      // sequential pass: scattered stores to memory not in cache each stall on a line fill. Arc i
      // gives y to row x and (as arc i + h) x to row y: two counters in flight, so a run of one x
      // in L (sorted by source) does not serialise the increments.
      rows.resize(static_cast<size_t>(a1 - a0));
      int64_t* out = rows.data();  // arc a0 at out[0]
      for (int64_t i = a0; i < a0 + h; ++i) {
        const int64_t x = d[i], y = s[i];
        const int64_t px = cur[x - n0]++;
        out[px - a0] = y;
        const int64_t py = cur[y - n0]++;
        out[py - a0] = x;
        if (cd) g.code[px] = g.code[py] = cd[i];
      }
      if (!by_degree)
        std::copy(rows.begin(), rows.end(), g.nbr.begin() + a0);
      else if (!order_rows_by_degree(g, n0, n, a0, a1, rows, by_deg, cur, deg,
                                     sig2_fits.load(std::memory_order_relaxed) ? sig2.data()
                                                                               : nullptr))
        sig2_fits.store(false, std::memory_order_relaxed);
      return true;
    });
  });
  if (!halves.load()) return false;
  g.ptr[N] = A;
  have_sig2 = sig2_fits.load();
  return true;
}

// arc_mode 2: graph g (nodes graph_ptr[g]..graph_ptr[g+1]) takes its arcs as given when its arc
// multiset (with codes) equals its reverse (an undirected graph listed in both directions), and
// as in mode 1 otherwise.
Adjacency build_auto(const int64_t* d, const int64_t* s, const int64_t* cd, int64_t A, int64_t N,
                     const int64_t* gptr, int64_t B) {
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
//
// The classes are kept as contiguous segments of `order` (nodes sorted by colour). Since the new
// ids are class offset + rank inside the class, the order of colours only ever refines, so a row
// sorted by (code, neighbour colour) in one round is still sorted in the next except inside runs of
// formerly equal colours: the rows are re-sorted in place (neighbours and codes move with their
// items), which is an almost linear insertion sort after the first round.

using u128 = unsigned __int128;

// Signature prefix of a node: (degree, first items) packed big-endian into a 64- or 128-bit key,
// so comparing keys compares (degree, items) lexicographically; a key holding fewer items than the
// degree is "truncated" and ties between such keys are broken on the remaining items.
template <typename Key>
struct KeyRec {
  Key key;
  int64_t v;
};

template <typename Key>
struct KeyBuffers {
  std::vector<Key> key;            // [N] key of every active node
  std::vector<KeyRec<Key>> rec, tmp;  // [N] class-ordered records, sort scratch
  size_t bytes() const {
    return sizeof(Key) * key.capacity() + sizeof(KeyRec<Key>) * (rec.capacity() + tmp.capacity());
  }
};

struct RoundState {
  std::vector<int64_t> order;  // [N] nodes sorted by colour (classes are segments)
  std::vector<int64_t> seg;    // [C + 1] class starts in order
  std::vector<uint8_t> act;    // [N] 1 when the node's class has >= 2 members
  std::vector<uint8_t> flag;   // [N + 1] 1 at the first position of every new class
  std::vector<int64_t> deg_count;  // [maxdeg + 2] nodes of degree >= k, for the key width
  KeyBuffers<uint64_t> k64;
  KeyBuffers<u128> k128;
  int len_bits = 1;            // bits of the largest degree
  size_t bytes() const {
    return 8 * (order.capacity() + seg.capacity() + deg_count.capacity()) + act.capacity() +
           flag.capacity() + k64.bytes() + k128.bytes();
  }
  KeyBuffers<uint64_t>& keys(uint64_t*) { return k64; }
  KeyBuffers<u128>& keys(u128*) { return k128; }
};

inline int bit_width(uint64_t x) {
  int b = 0;
  while (b < 64 && (x >> b) != 0) ++b;
  return b;
}

// order/seg/act from colours c (values < bound): a stable counting sort.
void init_order(RoundState& st, const int64_t* c, int64_t N, int64_t bound) {
  st.order.resize(N);
  int64_t* order = st.order.data();
  const std::vector<int64_t> ptr = counting_sort(
      N, bound, [&](int64_t v) { return c[v]; }, [&](int64_t v, int64_t pos) { order[pos] = v; });
  st.seg.clear();
  for (int64_t k = 0; k < bound; ++k)
    if (ptr[k + 1] > ptr[k]) st.seg.push_back(ptr[k]);
  st.seg.push_back(N);
  st.act.resize(N);
  uint8_t* act = st.act.data();
  at::parallel_for(0, N, 1 << 14, [&](int64_t b, int64_t e) {  // in node order
    for (int64_t v = b; v < e; ++v) act[v] = ptr[c[v] + 1] - ptr[c[v]] > 1 ? 1 : 0;
  });
}

inline int highest_bit(uint64_t x) { return 63 - __builtin_clzll(x); }
inline int highest_bit(u128 x) {
  const uint64_t hi = static_cast<uint64_t>(x >> 64);
  return hi ? 64 + highest_bit(hi) : highest_bit(static_cast<uint64_t>(x));
}

// Sorts a[0..n) by (key, v) given the bits in which the keys differ (`varying`, nonzero): an MSD
// radix sort on the highest varying bits, about n / 4 buckets, then every bucket the same way on
// its own varying bits, down to insertion sorts of short buckets. The nodes of a class mostly
// differ in their first items already, so one or two levels leave short buckets, where an LSD sort
// would pass over every varying bit. Buckets of equal keys keep their order (the scatters are
// stable); tmp is scratch of n records.
template <typename Key>
void msd_sort(KeyRec<Key>* a, KeyRec<Key>* tmp, int64_t n, Key varying) {
  auto by_key = [](const KeyRec<Key>& x, const KeyRec<Key>& y) {
    return x.key < y.key || (x.key == y.key && x.v < y.v);
  };
  constexpr int64_t kShort = 24;
  if (n <= kShort) {
    small_sort(a, n, by_key);
    return;
  }
  const int bits = std::min(11, std::max(4, bit_width(static_cast<uint64_t>(n)) - 2));
  const int sh = std::max(0, highest_bit(varying) + 1 - bits);
  const int64_t nb = int64_t(1) << bits;
  const Key mask = static_cast<Key>(nb - 1);
  auto bucket = [&](const KeyRec<Key>& r) {
    return static_cast<int64_t>((r.key >> sh) & mask);
  };
  // pos[d]: the start of bucket d, then (after the scatter) its end. 2 KB on the stack per level;
  // wider digits (n >= 1024) on the heap.
  int64_t on_stack[257];
  std::vector<int64_t> on_heap;
  int64_t* pos = on_stack;
  if (nb > 256) {
    on_heap.resize(static_cast<size_t>(nb + 1));
    pos = on_heap.data();
  }
  std::fill(pos, pos + nb + 1, 0);
  for (int64_t i = 0; i < n; ++i) ++pos[bucket(a[i]) + 1];
  for (int64_t d = 0; d < nb; ++d) pos[d + 1] += pos[d];
  for (int64_t i = 0; i < n; ++i) tmp[pos[bucket(a[i])]++] = a[i];
  std::copy(tmp, tmp + n, a);
  for (int64_t d = 0, lo = 0; d < nb; lo = pos[d++]) {
    const int64_t m = pos[d] - lo;
    if (m <= 1) continue;
    KeyRec<Key>* b = a + lo;
    if (m <= kShort) {
      small_sort(b, m, by_key);
      continue;
    }
    Key any = 0, all = ~Key(0);
    for (int64_t i = 0; i < m; ++i) {
      any |= b[i].key;
      all &= b[i].key;
    }
    if (any != all) msd_sort(b, tmp + lo, m, any ^ all);
  }
}

// Item q of node v's (sorted) row, read from the row itself: the rounds keep no array of items (they
// are only needed again to break ties of truncated keys).
template <typename Item>
struct RowItems {
  const int64_t* ptr;
  const int64_t* nbr;
  const int64_t* code;  // nullptr: no codes
  const int64_t* c;     // colours
  uint64_t ub;          // colour bound
  Item operator()(int64_t v, int64_t q) const {
    const int64_t p = ptr[v] + q;
    return static_cast<Item>((code ? static_cast<uint64_t>(code[p]) * ub : 0) +
                             static_cast<uint64_t>(c[nbr[p]]));
  }
};

// Sorts class segment [b0, b1) of order by (degree, items) and flags the first node of every
// distinct signature. The records of the segment are gathered from the node-order keys, or are
// already in place (`prefilled`: the small-graph path's pass 3 writes them). item(v, q) is item q
// of v's sorted row.
template <typename Key, typename Items>
void split_class(RoundState& st, int64_t b0, int64_t b1, const Items& item, int kfit,
                 bool prefilled) {
  int64_t* order = st.order.data();
  uint8_t* flag = st.flag.data();
  const int64_t s = b1 - b0;
  using Item = decltype(item(int64_t(0), int64_t(0)));
  KeyBuffers<Key>& kb = st.keys(static_cast<Key*>(nullptr));
  KeyRec<Key>* rc = kb.rec.data() + b0;
  if (s == 1) {
    flag[b0] = 1;
    if (prefilled) order[b0] = rc[0].v;
    return;
  }
  const Key* key = kb.key.data();
  Key any = 0, all = ~Key(0);
  for (int64_t i = 0; i < s; ++i) {
    if (!prefilled) {
      if (i + 16 < s) __builtin_prefetch(key + order[b0 + i + 16]);
      const int64_t v = order[b0 + i];
      rc[i] = KeyRec<Key>{key[v], v};
    }
    any |= rc[i].key;
    all &= rc[i].key;
  }
  const Key varying = any ^ all;
  if (varying != 0) msd_sort(rc, kb.tmp.data() + b0, s, varying);
  flag[b0] = 1;
  for (int64_t i = 1; i < s; ++i) flag[b0 + i] = rc[i].key != rc[i - 1].key ? 1 : 0;
  // Runs of equal truncated keys: order them by the items beyond the key.
  const int shift = static_cast<int>(8 * sizeof(Key)) - st.len_bits;
  for (int64_t i = 0; i < s;) {
    int64_t j = i + 1;
    while (j < s && !flag[b0 + j]) ++j;
    const int64_t len = static_cast<int64_t>(rc[i].key >> shift);
    if (j - i > 1 && len > kfit) {
      auto rest_cmp = [&](const KeyRec<Key>& x, const KeyRec<Key>& y) {
        for (int64_t q = kfit; q < len; ++q) {
          const Item a = item(x.v, q), b = item(y.v, q);
          if (a != b) return a < b ? -1 : 1;
        }
        return 0;
      };
      small_sort(rc + i, j - i, [&](const KeyRec<Key>& x, const KeyRec<Key>& y) {
        const int r = rest_cmp(x, y);
        return r < 0 || (r == 0 && x.v < y.v);
      });
      for (int64_t q = i + 1; q < j; ++q) flag[b0 + q] = rest_cmp(rc[q - 1], rc[q]) != 0 ? 1 : 0;
    }
    i = j;
  }
  for (int64_t i = 0; i < s; ++i) order[b0 + i] = rc[i].v;
}

// Keys of the active nodes, their rows kept sorted by item (neighbours and codes move with their
// items, gathered into a per-thread scratch row); node order, so the accesses stay local.
template <typename Key, typename Item>
void node_keys(Adjacency& g, const int64_t* c, int64_t N, uint64_t ub, RoundState& st,
               int item_bits, int kfit) {
  const int64_t* ptr = g.ptr.data();
  int64_t* nbr = g.nbr.data();
  int64_t* ncode = g.code.empty() ? nullptr : g.code.data();
  KeyBuffers<Key>& kb = st.keys(static_cast<Key*>(nullptr));
  kb.key.resize(N);
  Key* key = kb.key.data();
  const uint8_t* act = st.act.data();
  const int width = static_cast<int>(8 * sizeof(Key));
  at::parallel_for(0, N, 2048, [&](int64_t b, int64_t e) {
    std::vector<Item> row;
    for (int64_t v = b; v < e; ++v) {
      if (!act[v]) continue;
      const int64_t lo = ptr[v], n = ptr[v + 1] - lo;
      if (static_cast<int64_t>(row.size()) < n) row.resize(static_cast<size_t>(n));
      Item* x = row.data();
      int64_t* nb = nbr + lo;
      if (ncode) {
        int64_t* cd = ncode + lo;
        for (int64_t p = 0; p < n; ++p)
          x[p] = static_cast<Item>(static_cast<uint64_t>(cd[p]) * ub +
                                   static_cast<uint64_t>(c[nb[p]]));
        for (int64_t i = 1; i < n; ++i) {
          const Item y = x[i];
          if (!(y < x[i - 1])) continue;
          const int64_t w = nb[i], wc = cd[i];
          int64_t j = i;
          for (; j > 0 && y < x[j - 1]; --j) {
            x[j] = x[j - 1];
            nb[j] = nb[j - 1];
            cd[j] = cd[j - 1];
          }
          x[j] = y;
          nb[j] = w;
          cd[j] = wc;
        }
      } else {
        for (int64_t p = 0; p < n; ++p) x[p] = static_cast<Item>(c[nb[p]]);
        for (int64_t i = 1; i < n; ++i) {
          const Item y = x[i];
          if (!(y < x[i - 1])) continue;
          const int64_t w = nb[i];
          int64_t j = i;
          for (; j > 0 && y < x[j - 1]; --j) {
            x[j] = x[j - 1];
            nb[j] = nb[j - 1];
          }
          x[j] = y;
          nb[j] = w;
        }
      }
      const int64_t m = std::min<int64_t>(n, kfit);
      Key acc = static_cast<Key>(n);
      for (int64_t p = 0; p < m; ++p) acc = (acc << item_bits) | static_cast<Key>(x[p]);
      key[v] = acc << (width - st.len_bits - m * item_bits);
    }
  });
}

// Every class sorted by (degree, items), in chunks of about N / (8T) members, in parallel.
template <typename Key, typename Items>
void split_classes(RoundState& st, int64_t N, const Items& item, int kfit, bool prefilled = false) {
  const int64_t T = std::max<int64_t>(1, at::get_num_threads());
  KeyBuffers<Key>& kb = st.keys(static_cast<Key*>(nullptr));
  kb.rec.resize(N);
  kb.tmp.resize(N);
  const int64_t nseg = static_cast<int64_t>(st.seg.size()) - 1;
  std::vector<int64_t> chunk{0};
  const int64_t target = std::max<int64_t>(4096, N / (8 * T));
  int64_t acc = 0;
  for (int64_t k = 0; k < nseg; ++k) {
    acc += st.seg[k + 1] - st.seg[k];
    if (acc >= target) {
      chunk.push_back(k + 1);
      acc = 0;
    }
  }
  if (chunk.back() != nseg) chunk.push_back(nseg);
  at::parallel_for(0, static_cast<int64_t>(chunk.size()) - 1, 1, [&](int64_t b, int64_t e) {
    for (int64_t q = b; q < e; ++q)
      for (int64_t k = chunk[q]; k < chunk[q + 1]; ++k)
        split_class<Key>(st, st.seg[k], st.seg[k + 1], item, kfit, prefilled);
  });
}

// After split_classes: the new ids are the running count of the first positions of the distinct
// signatures. Returns their number D; when D > C writes the ids to next and, unless `last`, the
// classes of the next round (seg, act).
int64_t number_classes(RoundState& st, int64_t N, int64_t C, bool last, int64_t* next) {
  uint8_t* flag = st.flag.data();
  flag[N] = 1;
  const int64_t chunks = chunk_count(N, 1 << 15);
  std::vector<int64_t> base(static_cast<size_t>(chunks + 1), 0);
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t cnt = 0;
      for (int64_t i = N * t / chunks, hi = N * (t + 1) / chunks; i < hi; ++i) cnt += flag[i];
      base[t + 1] = cnt;
    }
  });
  for (int64_t t = 0; t < chunks; ++t) base[t + 1] += base[t];
  const int64_t D = base[chunks];
  if (D == C) return D;
  const int64_t* order = st.order.data();
  // The last round writes only the colours: no further round needs the classes.
  if (!last) st.seg.resize(D + 1);
  int64_t* seg = last ? nullptr : st.seg.data();
  if (seg) seg[D] = N;
  uint8_t* act = st.act.data();
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t id = base[t] - 1;
      for (int64_t i = N * t / chunks, hi = N * (t + 1) / chunks; i < hi; ++i) {
        if (i + 16 < hi) __builtin_prefetch(next + order[i + 16], 1);  // scattered writes
        const int64_t v = order[i];
        id += flag[i];
        next[v] = id;
        if (seg) {
          if (flag[i]) seg[id] = i;
          act[v] = flag[i] && flag[i + 1] ? 0 : 1;
        }
      }
    }
  });
  return D;
}

// One round: returns the number of distinct signatures D (>= C); when D > C writes the new
// colours (rank of (own colour, degree, sorted items) among the distinct signatures of the call)
// to next and advances the state.
template <typename Item>
int64_t partition_round(Adjacency& g, const int64_t* c, int64_t N, int64_t bound, int64_t C,
                        int64_t num_codes, RoundState& st, bool last, int64_t* next) {
  const int64_t* ptr = g.ptr.data();
  const uint64_t ub = static_cast<uint64_t>(bound);
  const uint64_t K = g.code.empty() ? 1 : static_cast<uint64_t>(num_codes);
  const int item_bits = std::max(1, bit_width((K - 1) * ub + (ub - 1)));
  st.flag.resize(N + 1);
  // 64-bit keys unless they would truncate more than half of the nodes (truncated keys only cost
  // where they tie).
  const int kfit64 = (64 - st.len_bits) / item_bits;
  const int64_t maxdeg = static_cast<int64_t>(st.deg_count.size()) - 2;
  const bool narrow_keys =
      kfit64 >= 1 && st.deg_count[std::min<int64_t>(kfit64, maxdeg) + 1] * 2 <= N;
  const RowItems<Item> item{ptr, g.nbr.data(), g.code.empty() ? nullptr : g.code.data(), c, ub};
  if (narrow_keys) {
    node_keys<uint64_t, Item>(g, c, N, ub, st, item_bits, kfit64);
    split_classes<uint64_t>(st, N, item, kfit64);
  } else {
    const int kfit = (128 - st.len_bits) / item_bits;
    node_keys<u128, Item>(g, c, N, ub, st, item_bits, kfit);
    split_classes<u128>(st, N, item, kfit);
  }
  return number_classes(st, N, C, last, next);
}

// rank[k] = the number of degrees below k that occur (hist[j] > 0); returns the number of degrees
// that occur. The degree round's ids are these ranks.
int64_t present_ranks(const int64_t* hist, int64_t K, int64_t* rank) {
  int64_t D = 0;
  for (int64_t k = 0; k < K; ++k) {
    rank[k] = D;
    D += hist[k] > 0 ? 1 : 0;
  }
  return D;
}

// ------------------------------------------------------------------------------------------------
// Batches of small graphs.
//
// From a uniform colouring without codes, a batch (of at most 2^25 nodes, so that colours fit
// small_ranks' 32-bit keys) whose graphs all have at most 64 nodes and degrees at most 15, have no
// loops or multi-edges and are listed graph by graph as L ++ reverse(L) (a PyG Batch of simple
// graphs) runs its first three rounds graph by graph, without neighbour lists: a
// node's neighbours are a 64-bit set over the positions of its graph's nodes in a per-graph order.
// When that order is by colour, reading the set in ascending bit order lists the neighbours by
// colour, so the sorted rows of a round cost no sort.
//  * small_graphs_build (pass 1, per graph): the layout check, the degrees, the order by degree,
//    the sets, and the key (degree, neighbour degrees ascending) of the round after the degree
//    round, in the same 4-bit fields as order_rows_by_degree;
//  * round 1: the rank of the degree; round 2: the rank of those keys (rank_signature_keys);
//  * small_graphs_round3: per graph, the nodes re-ordered by round-2 colour and the sets moved to
//    that order, then every node's key (degree, first items) packed as node_keys packs it and
//    its class record written in place (offsets of a stable counting sort by round-2 colour,
//    counted per chunk of graphs first); split_classes / number_classes finish the round as
//    partition_round does (ties of truncated keys are broken on the items read from the sets).
// Same signatures, same lexicographic ranks: the ids are those of the general path. Later rounds
// continue on the general path from the round-3 colours.
constexpr int64_t kSmallGraphNodes = 64;
constexpr int64_t kSmallGraphDegree = 15;  // the round-2 key holds 16 fields of 4 bits

struct SmallGraphs {
  std::vector<uint64_t> nbrs;    // [N] neighbour set of v over the positions of its graph's order
  std::vector<uint8_t> at;       // [N] node n0 + at[n0 + p] is at position p of its graph
  std::vector<int32_t> colour;   // [N] colour[n0 + p]: round-2 colour at position p (pass 3 order)
  std::vector<uint64_t> key;     // [N] round-2 keys (pass 3 reads the degree from them)
  int64_t deg_hist[kSmallGraphDegree + 1] = {};
  int len_bits = 1;              // bits of the largest degree
  size_t bytes() const {
    return 8 * (nbrs.capacity() + key.capacity()) + 4 * colour.capacity() + at.capacity();
  }
};

// Pass 1. Returns false, with nothing usable written, when the batch does not qualify.
bool small_graphs_build(const int64_t* d, const int64_t* s, int64_t A, int64_t N,
                        const int64_t* gptr, int64_t B, SmallGraphs& sg) {
  if (A == 0 || B < 2 || N > (int64_t(1) << 25)) return false;  // colours below 2^25: small_ranks
  for (int64_t k = 0; k < B; ++k)
    if (gptr[k + 1] - gptr[k] > kSmallGraphNodes) return false;
  const ArcBlocks blocks{d, A, gptr, B};
  sg.nbrs.resize(N);
  sg.at.resize(N);
  sg.key.resize(N);
  std::atomic<bool> ok{true};
  std::atomic<int64_t> hist[kSmallGraphDegree + 1] = {};
  at::parallel_for(0, B, 64, [&](int64_t b, int64_t e) {
    int64_t local_hist[kSmallGraphDegree + 1] = {};
    blocks.walk(b, e, s, nullptr, [&](int64_t k, int64_t a0, int64_t a1) {
      if (!ok.load(std::memory_order_relaxed)) return false;
      const int64_t n0 = gptr[k], n = gptr[k + 1] - n0;
      const int64_t h = (a1 - a0) / 2;
      int32_t deg[kSmallGraphNodes + 1];
      std::fill(deg, deg + n + 1, 0);
      const bool same = mirrored_block(d, s, nullptr, a0, a1, n0, n, /*loops=*/false, deg);
      int32_t maxdeg = 0;
      for (int64_t u = 0; u < n; ++u) maxdeg = std::max(maxdeg, deg[u]);
      if (!same || maxdeg > kSmallGraphDegree) {
        ok.store(false, std::memory_order_relaxed);
        return false;
      }
      // Positions by degree (a stable counting sort), then the sets over those positions.
      int32_t off[kSmallGraphDegree + 2] = {};
      for (int64_t u = 0; u < n; ++u) ++off[deg[u] + 1];
      for (int64_t q = 1; q <= kSmallGraphDegree + 1; ++q) off[q] += off[q - 1];
      uint8_t pos[kSmallGraphNodes];
      int32_t deg_at[kSmallGraphNodes];
      uint8_t* at = sg.at.data() + n0;
      for (int64_t u = 0; u < n; ++u) {
        const int32_t p = off[deg[u]]++;
        pos[u] = static_cast<uint8_t>(p);
        at[p] = static_cast<uint8_t>(u);
        deg_at[p] = deg[u];
      }
      uint64_t m[kSmallGraphNodes];
      std::fill(m, m + n, 0);
      uint64_t repeated = 0;  // a repeated edge finds its bit already set
      for (int64_t i = a0; i < a0 + h; ++i) {
        const int64_t x = d[i] - n0, y = s[i] - n0;
        const uint64_t bit_y = uint64_t(1) << pos[y];
        repeated |= m[x] & bit_y;
        m[x] |= bit_y;
        m[y] |= uint64_t(1) << pos[x];
      }
      if (repeated) {
        ok.store(false, std::memory_order_relaxed);
        return false;
      }
      for (int64_t u = 0; u < n; ++u) {
        uint64_t key = static_cast<uint64_t>(deg[u]) << 60;
        int sh = 56;
        for (uint64_t bits = m[u]; bits; bits &= bits - 1, sh -= 4)
          key |= static_cast<uint64_t>(deg_at[__builtin_ctzll(bits)]) << sh;
        sg.key[n0 + u] = key;
        sg.nbrs[n0 + u] = m[u];
        ++local_hist[deg[u]];
      }
      return true;
    });
    for (int64_t q = 0; q <= kSmallGraphDegree; ++q)
      if (local_hist[q]) hist[q].fetch_add(local_hist[q], std::memory_order_relaxed);
  });
  if (!ok.load()) return false;
  int64_t maxdeg = 0;
  for (int64_t q = 0; q <= kSmallGraphDegree; ++q) {
    sg.deg_hist[q] = hist[q].load();
    if (sg.deg_hist[q]) maxdeg = q;
  }
  sg.len_bits = std::max(1, bit_width(static_cast<uint64_t>(maxdeg)));
  return true;
}

// Round 1 of the small-graph path: the rank of the degree among the distinct degrees. Round 2
// reads the keys, not these colours, so a caller that needs neither the history nor the round-1
// colouring as the result passes next = nullptr and gets only their number.
int64_t small_graphs_round1(const SmallGraphs& sg, int64_t N, int64_t* next) {
  int64_t rank[kSmallGraphDegree + 1];
  const int64_t D = present_ranks(sg.deg_hist, kSmallGraphDegree + 1, rank);
  if (!next) return D;
  const uint64_t* key = sg.key.data();
  at::parallel_for(0, N, 1 << 14, [&](int64_t b, int64_t e) {
    for (int64_t v = b; v < e; ++v) next[v] = rank[key[v] >> 60];
  });
  return D;
}

// Positions of x[0..n) (n <= 64, values < 2^25) in ascending order, ties in index order (a
// permutation), from all-pairs comparisons of the distinct 32-bit keys x * 64 + index over a padded
// copy: branch-free vector code.
__attribute__((target_clones("avx2", "default"))) void small_ranks(const int32_t* x, int64_t n,
                                                                     uint8_t* pos) {
  alignas(32) int32_t y[kSmallGraphNodes];
  const int64_t padded = (n + 7) & ~int64_t(7);
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] * 64 + static_cast<int32_t>(i);
  for (int64_t i = n; i < padded; ++i) y[i] = std::numeric_limits<int32_t>::max();
  for (int64_t i = 0; i < n; ++i) {
    const int32_t yi = y[i];
    int32_t below = 0;
    for (int64_t j = 0; j < padded; ++j) below += y[j] < yi ? 1 : 0;
    pos[i] = static_cast<uint8_t>(below);
  }
}

// Item q of v's row by colour, read from its set (pass 3 order): the tie-breaks of split_class
// (rare enough that v's graph is found by binary search).
struct SmallGraphItems {
  const uint64_t* nbrs;
  const int64_t* gptr;
  int64_t B;
  const int32_t* colour;
  int64_t operator()(int64_t v, int64_t q) const {
    const int64_t n0 = *(std::upper_bound(gptr, gptr + B + 1, v) - 1);
    uint64_t bits = nbrs[v];
    for (int64_t i = 0; i < q; ++i) bits &= bits - 1;
    return colour[n0 + __builtin_ctzll(bits)];
  }
};

// Round 3 of the small-graph path from the round-2 colours c (C of them): pass 3, then the classes
// of c split by key. Returns the number of distinct signatures; writes the ids to next when it
// is above C.
int64_t small_graphs_round3(SmallGraphs& sg, const int64_t* gptr, int64_t B, const int64_t* c,
                            int64_t N, int64_t C, RoundState& st, int64_t* next) {
  const int item_bits = std::max(1, bit_width(static_cast<uint64_t>(C - 1)));
  const int len_bits = sg.len_bits;
  const int kfit = (64 - len_bits) / item_bits;  // >= 1: C <= N <= 2^25
  uint64_t* nbrs = sg.nbrs.data();
  const uint64_t* key = sg.key.data();  // round-2 keys: their top field is the degree
  sg.colour.resize(N);
  st.order.resize(N);
  st.flag.resize(N + 1);
  st.len_bits = len_bits;
  KeyBuffers<uint64_t>& kb = st.k64;
  kb.rec.resize(N);
  KeyRec<uint64_t>* rec = kb.rec.data();
  // Chunks of whole graphs, about equal in nodes, and each chunk's nodes per colour of c: the
  // offsets of a stable counting sort by colour, so pass 3 writes every node's class record in
  // place (the records of a class in node order, whatever the number of chunks).
  const int64_t chunks = counting_chunks(N, C);
  std::vector<int64_t> first_graph(static_cast<size_t>(chunks + 1), B);
  for (int64_t t = 0; t < chunks; ++t)
    first_graph[t] = std::lower_bound(gptr, gptr + B + 1, N * t / chunks) - gptr;
  std::vector<int64_t> cnt(static_cast<size_t>(chunks * C), 0);
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      int64_t* ct = cnt.data() + t * C;
      for (int64_t v = gptr[first_graph[t]], hi = gptr[first_graph[t + 1]]; v < hi; ++v) ++ct[c[v]];
    }
  });
  st.seg = stable_offsets(cnt, chunks, C);  // every colour below C is used
  // Pass 3, per graph: positions by colour, the sets moved to them, and each node's record.
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    int32_t x[kSmallGraphNodes];
    uint8_t pos[kSmallGraphNodes], at2[kSmallGraphNodes];
    for (int64_t t = b; t < e; ++t) {
      int64_t* ct = cnt.data() + t * C;
      for (int64_t k = first_graph[t]; k < first_graph[t + 1]; ++k) {
        const int64_t n0 = gptr[k], n = gptr[k + 1] - n0;
        if (n == 0) continue;
        for (int64_t u = 0; u < n; ++u) __builtin_prefetch(rec + ct[c[n0 + u]], 1);
        uint8_t* at = sg.at.data() + n0;
        int32_t* colour = sg.colour.data() + n0;
        for (int64_t p = 0; p < n; ++p) x[p] = static_cast<int32_t>(c[n0 + at[p]]);
        small_ranks(x, n, pos);
        for (int64_t p = 0; p < n; ++p) {
          at2[pos[p]] = at[p];
          colour[pos[p]] = x[p];
        }
        for (int64_t u = 0; u < n; ++u) {
          uint64_t moved = 0;
          for (uint64_t bits = nbrs[n0 + u]; bits; bits &= bits - 1)
            moved |= uint64_t(1) << pos[__builtin_ctzll(bits)];
          nbrs[n0 + u] = moved;
          const int64_t degree = static_cast<int64_t>(key[n0 + u] >> 60);
          const int64_t fit = std::min<int64_t>(degree, kfit);
          uint64_t acc = static_cast<uint64_t>(degree);
          uint64_t bits = moved;
          for (int64_t q = 0; q < fit; ++q, bits &= bits - 1)
            acc = (acc << item_bits) | static_cast<uint64_t>(colour[__builtin_ctzll(bits)]);
          rec[ct[c[n0 + u]]++] = KeyRec<uint64_t>{acc << (64 - len_bits - fit * item_bits), n0 + u};
        }
        std::copy(at2, at2 + n, at);
      }
    }
  });
  const SmallGraphItems items{nbrs, gptr, B, sg.colour.data()};
  split_classes<uint64_t>(st, N, items, kfit, /*prefilled=*/true);
  return number_classes(st, N, C, /*last=*/true, next);
}

// Buffers of one call, kept for the next call (up to kWorkspaceCacheBytes): on machines where first
// touching fresh memory is slow (page faults), repeated calls on batches of similar size then run
// without any. Concurrent calls each get their own workspace.
struct Workspace {
  Adjacency g;
  RoundState st;
  std::vector<int64_t> cur, next;
  std::vector<uint64_t> sig2;  // [N] signature keys of the round after the degree round
  SmallGraphs small;
  size_t bytes() const {
    return 8 * (g.ptr.capacity() + g.nbr.capacity() + g.code.capacity() + cur.capacity() +
                next.capacity() + sig2.capacity()) +
           st.bytes() + small.bytes();
  }
};
constexpr size_t kWorkspaceCacheBytes = size_t(128) << 20;
std::mutex workspace_mutex;
std::unique_ptr<Workspace> cached_workspace;

std::unique_ptr<Workspace> take_workspace() {
  std::lock_guard<std::mutex> lock(workspace_mutex);
  if (cached_workspace) return std::move(cached_workspace);
  return std::make_unique<Workspace>();
}

void return_workspace(std::unique_ptr<Workspace> ws) {
  if (ws->bytes() > kWorkspaceCacheBytes) return;  // freed here
  std::lock_guard<std::mutex> lock(workspace_mutex);
  if (!cached_workspace) cached_workspace = std::move(ws);
}

// Number of nodes of every degree 0..maxdeg (parallel: one histogram per chunk, then summed).
std::vector<int64_t> degree_histogram(const int64_t* ptr, int64_t N) {
  const int64_t maxdeg = at::parallel_reduce(
      0, N, 1 << 14, int64_t(0),
      [&](int64_t b, int64_t e, int64_t acc) {
        for (int64_t v = b; v < e; ++v) acc = std::max(acc, ptr[v + 1] - ptr[v]);
        return acc;
      },
      [](int64_t x, int64_t y) { return std::max(x, y); });
  const int64_t chunks = chunk_count(N, 1 << 15);
  std::vector<std::vector<int64_t>> part(static_cast<size_t>(chunks));
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      part[t].assign(static_cast<size_t>(maxdeg + 1), 0);
      for (int64_t v = N * t / chunks, hi = N * (t + 1) / chunks; v < hi; ++v)
        ++part[t][ptr[v + 1] - ptr[v]];
    }
  });
  for (int64_t t = 1; t < chunks; ++t)
    for (int64_t k = 0; k <= maxdeg; ++k) part[0][k] += part[t][k];
  return std::move(part[0]);
}

// A round from a uniform colouring (C == 1) without arc codes: every item is the one colour, so the
// signature is (colour, degree) and the new colour is the rank of the degree among the distinct
// degrees (the same ids as refine_round, in O(N) without gathering any item).
int64_t degree_round(const Adjacency& g, const std::vector<int64_t>& deg_hist, int64_t N,
                     int64_t* next) {
  const int64_t* ptr = g.ptr.data();
  std::vector<int64_t> rank(deg_hist.size());
  const int64_t D = present_ranks(deg_hist.data(), static_cast<int64_t>(deg_hist.size()), rank.data());
  if (D > 1)
    at::parallel_for(0, N, 1 << 14, [&](int64_t b, int64_t e) {
      for (int64_t v = b; v < e; ++v) next[v] = rank[ptr[v + 1] - ptr[v]];
    });
  return D;
}

// The round after the degree round from the signature keys of the build (order_rows_by_degree or
// small_graphs_build): the new colour is the rank of the node's key among the distinct keys. Graphs
// of bounded degree have few distinct keys, so instead of sorting the nodes each chunk of nodes is
// deduplicated in a small (cache-resident) hash table, only the distinct keys of each chunk are
// sorted and merged, and every node then reads its rank through its chunk's table. Returns the
// number of distinct keys.
int64_t rank_signature_keys(const uint64_t* key, int64_t N, int64_t* next) {
  const int64_t chunks = chunk_count(N, 1 << 14);
  struct Slot {
    uint64_t key;
    int64_t id;  // -1: empty
  };
  struct Table {
    std::vector<Slot> slot;  // a power of two, at most half full
    std::vector<uint64_t> distinct;  // id -> key
    uint64_t mask = 0;
    void grow() {
      size_t cap = 1 << 12;
      while (cap < 2 * distinct.size() + 2) cap *= 2;
      slot.assign(cap, Slot{0, -1});
      mask = cap - 1;
      for (size_t i = 0; i < distinct.size(); ++i) place(distinct[i], static_cast<int64_t>(i));
    }
    int64_t place(uint64_t k, int64_t id) {  // the id of k, inserting it as `id` if new
      for (uint64_t h = wl::mix64(k) & mask;; h = (h + 1) & mask) {
        if (slot[h].id < 0) {
          slot[h] = Slot{k, id};
          return id;
        }
        if (slot[h].key == k) return slot[h].id;
      }
    }
    int64_t id_of(uint64_t k) {
      const int64_t id = place(k, static_cast<int64_t>(distinct.size()));
      if (id == static_cast<int64_t>(distinct.size())) {
        distinct.push_back(k);
        if (2 * distinct.size() > slot.size()) grow();
      }
      return id;
    }
  };
  std::vector<Table> tables(static_cast<size_t>(chunks));
  // Per chunk: local ids, then the distinct keys as (key, local id) in key order.
  std::vector<std::vector<std::pair<uint64_t, int64_t>>> sorted(static_cast<size_t>(chunks));
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      Table& tab = tables[t];
      tab.grow();
      for (int64_t v = N * t / chunks, hi = N * (t + 1) / chunks; v < hi; ++v)
        next[v] = tab.id_of(key[v]);
      auto& srt = sorted[t];
      srt.resize(tab.distinct.size());
      for (size_t i = 0; i < srt.size(); ++i) srt[i] = {tab.distinct[i], static_cast<int64_t>(i)};
      std::sort(srt.begin(), srt.end());
    }
  });
  // Merge the chunks' sorted keys (one chunk per thread: the smallest head is found by a scan of
  // the chunks' heads): the rank of a key is the number of distinct smaller keys.
  std::vector<std::vector<int64_t>> rank(static_cast<size_t>(chunks));
  std::vector<size_t> at(static_cast<size_t>(chunks), 0);
  for (int64_t t = 0; t < chunks; ++t) rank[t].resize(sorted[t].size());
  int64_t D = 0;  // distinct keys merged so far
  for (;;) {
    int64_t best = -1;
    uint64_t k = 0;
    for (int64_t t = 0; t < chunks; ++t) {
      if (at[t] == sorted[t].size()) continue;
      const uint64_t head = sorted[t][at[t]].first;
      if (best < 0 || head < k) {
        best = t;
        k = head;
      }
    }
    if (best < 0) break;
    // Every chunk whose head is k takes the same rank.
    for (int64_t t = best; t < chunks; ++t) {
      if (at[t] < sorted[t].size() && sorted[t][at[t]].first == k)
        rank[t][sorted[t][at[t]++].second] = D;
    }
    ++D;
  }
  at::parallel_for(0, chunks, 1, [&](int64_t b, int64_t e) {
    for (int64_t t = b; t < e; ++t) {
      const int64_t* r = rank[t].data();
      for (int64_t v = N * t / chunks, hi = N * (t + 1) / chunks; v < hi; ++v) next[v] = r[next[v]];
    }
  });
  return D;
}

// The distinct values of sorted[0..n) and their counts, written to val/cnt (val may be sorted
// itself: entry w <= p is written after sorted[p] is read); returns their number. One pass without
// branches: a run's entry is rewritten until the run ends.
template <typename T>
int64_t count_runs(const T* sorted, int64_t n, int64_t* val, int64_t* cnt) {
  int64_t w = -1, start = 0;
  for (int64_t p = 0; p < n; ++p) {
    const T x = sorted[p];
    const bool starts = p == 0 || x != sorted[p - 1];
    w += starts ? 1 : 0;
    start = starts ? p : start;
    val[w] = x;
    cnt[w] = p + 1 - start;
  }
  return w + 1;
}

// Distinct values of a short segment a[0..n) (n <= 64, values below 2^25) in ascending order with
// their counts, written to val/cnt; returns their number. No sort: the positions in sorted order
// come from small_ranks' all-pairs comparisons (branch-free vector code; a sort of a few dozen
// values is dominated by mispredicted branches), then the sorted runs are counted.
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"  // x[n..64) is never read (not zeroed: time)
int64_t ranked_histogram(const int64_t* a, int64_t n, int64_t* val, int64_t* cnt) {
  if (n <= 0 || n > kSmallGraphNodes) return 0;
  int32_t x[kSmallGraphNodes], sorted[kSmallGraphNodes];
  uint8_t pos[kSmallGraphNodes];
  for (int64_t i = 0; i < n; ++i) x[i] = static_cast<int32_t>(a[i]);
  small_ranks(x, n, pos);
  for (int64_t i = 0; i < n; ++i) sorted[pos[i]] = x[i];
  return count_runs(sorted, n, val, cnt);
}
#pragma GCC diagnostic pop

// The histogram of every graph g of a batch (elements ptr[g]..ptr[g+1]): fill(g, val, cnt) writes
// g's distinct colours in ascending order and their counts (at most ptr[g+1] - ptr[g] of them) and
// returns their number; the parts are then packed into (indices [2, nnz], counts [nnz]).
template <typename Fill>
std::tuple<at::Tensor, at::Tensor> pack_histograms(int64_t N, const int64_t* ptr, int64_t B,
                                                   at::TensorOptions opts, const Fill& fill) {
  // Not zero-filled (a tenth of the time on a batch of small graphs): each graph's part is
  // written before it is read.
  std::unique_ptr<int64_t[]> vals(new int64_t[static_cast<size_t>(std::max<int64_t>(N, 1))]);
  std::unique_ptr<int64_t[]> cnts(new int64_t[static_cast<size_t>(std::max<int64_t>(N, 1))]);
  std::vector<int64_t> nnz(B + 1, 0);
  at::parallel_for(0, B, 64, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) nnz[g + 1] = fill(g, vals.get() + ptr[g], cnts.get() + ptr[g]);
  });
  for (int64_t g = 0; g < B; ++g) nnz[g + 1] += nnz[g];
  at::Tensor indices = at::empty({2, nnz[B]}, opts);
  at::Tensor counts = at::empty({nnz[B]}, opts);
  int64_t* gi = indices.data_ptr<int64_t>();
  int64_t* ci = gi + nnz[B];
  int64_t* cn = counts.data_ptr<int64_t>();
  at::parallel_for(0, B, 64, [&](int64_t b, int64_t e) {
    for (int64_t g = b; g < e; ++g) {
      const int64_t m = nnz[g + 1] - nnz[g], o = nnz[g];
      std::fill(gi + o, gi + o + m, g);
      std::copy(vals.get() + ptr[g], vals.get() + ptr[g] + m, ci + o);
      std::copy(cnts.get() + ptr[g], cnts.get() + ptr[g] + m, cn + o);
    }
  });
  return {indices, counts};
}

// Histograms of any colouring c (values below num_colors): per graph, short segments through
// ranked_histogram, long ones by a counting sort or a comparison sort.
std::tuple<at::Tensor, at::Tensor> histograms(const int64_t* c, int64_t N, const int64_t* ptr,
                                              int64_t B, int64_t num_colors,
                                              at::TensorOptions opts) {
  const bool ranked_values = num_colors <= (int64_t(1) << 25);
  return pack_histograms(N, ptr, B, opts, [&](int64_t g, int64_t* val, int64_t* cnt) -> int64_t {
    const int64_t* a = c + ptr[g];
    const int64_t n = ptr[g + 1] - ptr[g];
    if (n <= kSmallGraphNodes && ranked_values) return ranked_histogram(a, n, val, cnt);
    std::copy(a, a + n, val);
    if (n >= 4096 && num_colors <= 8 * n) {  // counting sort
      std::vector<int64_t> count(static_cast<size_t>(num_colors), 0);
      for (int64_t i = 0; i < n; ++i) ++count[a[i]];
      int64_t w = 0;
      for (int64_t k = 0; k < num_colors; ++k)
        for (int64_t r = 0; r < count[k]; ++r) val[w++] = k;
    } else {
      small_sort(val, n);
    }
    return count_runs(val, n, val, cnt);
  });
}

// Histograms of the round-3 colours c3 of the small-graph path, from pass 3's order of every
// graph's nodes by round-2 colour (sg.at): round-3 ids refine round-2 ids in order (class offset +
// rank inside the class), so that order lists c3 sorted except inside runs of equal round-2
// colour, which an insertion sort finishes in about one pass. (No n^2 ranking per graph.)
std::tuple<at::Tensor, at::Tensor> small_graph_histograms(const SmallGraphs& sg, const int64_t* c3,
                                                          int64_t N, const int64_t* gptr, int64_t B,
                                                          at::TensorOptions opts) {
  return pack_histograms(N, gptr, B, opts, [&](int64_t g, int64_t* val, int64_t* cnt) -> int64_t {
    const int64_t n0 = gptr[g], n = gptr[g + 1] - n0;
    const uint8_t* at = sg.at.data() + n0;
    int64_t x[kSmallGraphNodes];
    for (int64_t p = 0; p < n; ++p) x[p] = c3[n0 + at[p]];
    insertion_sort(x, n);  // nearly sorted: about one comparison per element
    return count_runs(x, n, val, cnt);
  });
}

// wl_refine, and with `hist` also the histogram of the final colouring per graph of graph_ptr
// (wl_refine_histogram; no history then).
std::tuple<at::Tensor, at::Tensor> refine(const at::Tensor& dst_, const at::Tensor& src_,
                                          const at::Tensor& code_, const at::Tensor& colors_,
                                          int64_t num_codes, int64_t arc_mode, int64_t max_rounds,
                                          bool return_history,
                                          const c10::optional<at::Tensor>& graph_ptr_,
                                          std::tuple<at::Tensor, at::Tensor>* hist) {
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
    if (hist) *hist = {at::empty({2, 0}, opts), at::empty({0}, opts)};
    return {at::empty({1, 0}, opts), at::zeros({1}, opts)};
  }
  const int64_t* cd = code.numel() ? code.data_ptr<int64_t>() : nullptr;
  // One pass finds the first colour that differs from c0[0]: none means a uniform colouring (only
  // c0[0] to range-check); otherwise every colour is range-checked.
  const bool uniform = first_bad(N, [&](int64_t i) { return c0[i] != c0[0]; }) < 0;
  const int64_t bad_color =
      uniform ? (c0[0] < 0 || c0[0] >= N ? 0 : -1)
              : first_bad(N, [&](int64_t i) { return c0[i] < 0 || c0[i] >= N; });
  TORCH_CHECK(bad_color < 0, "colors must lie in [0, N=", N, "), got ",
              bad_color >= 0 ? c0[bad_color] : 0, " at node ", bad_color);
  if (cd) {
    const int64_t bad_code = first_bad(A, [&](int64_t a) { return cd[a] < 0 || cd[a] >= num_codes; });
    TORCH_CHECK(bad_code < 0, "code must lie in [0, num_codes=", num_codes, "), got ",
                bad_code >= 0 ? cd[bad_code] : 0, " at arc ", bad_code);
  }
  TORCH_CHECK(num_codes <= std::numeric_limits<int64_t>::max() / N,
              "num_codes * num_nodes overflows int64 (num_codes=", num_codes, ", N=", N, ")");
  // Codes that are all zero carry no information: drop them.
  if (cd && num_codes == 1) cd = nullptr;

  std::unique_ptr<Workspace> ws = take_workspace();
  Adjacency& g = ws->g;
  int64_t C = uniform ? 1 : wl::count_distinct(c0, N, N);
  // From a uniform colouring without codes, the first round is the degree round.
  const bool degree_first = C == 1 && !cd && max_rounds != 0;
  // A batch of small simple graphs runs its first three rounds graph by graph, without neighbour
  // lists (see SmallGraphs); the lists are built only if a later round needs them.
  const bool small = degree_first && arc_mode == 2 &&
                     small_graphs_build(d, s, A, N, gptr, B, ws->small);
  bool have_sig2 = false;  // the build wrote the keys of the round after the degree round
  std::vector<int64_t> deg_hist;
  RoundState& st = ws->st;
  // The L ++ reverse(L) layouts check the arc ranges themselves; everything else is checked here.
  auto build = [&]() {
    if (arc_mode != 2 || !build_halves(d, s, cd, A, N, gptr, B, degree_first && !small, g,
                                       ws->sig2, have_sig2)) {
      const int64_t bad_arc = first_bad(
          A, [&](int64_t a) { return d[a] < 0 || d[a] >= N || s[a] < 0 || s[a] >= N; });
      if (bad_arc >= 0) {
        const int64_t a = bad_arc;
        TORCH_CHECK(d[a] >= 0 && d[a] < N, "dst must lie in [0, N=", N, "), got ", d[a],
                    " at arc ", a);
        TORCH_CHECK(false, "src must lie in [0, N=", N, "), got ", s[a], " at arc ", a);
      }
      if (arc_mode == 0) {
        build_as_given(d, s, cd, A, N, g);
      } else if (arc_mode == 1) {
        g = build_undirected(d, s, cd, A, N);
      } else {
        if (B > 1) {
          std::vector<int64_t> graph_of(N);
          at::parallel_for(0, B, 256, [&](int64_t b, int64_t e) {
            for (int64_t k = b; k < e; ++k)
              std::fill(graph_of.begin() + gptr[k], graph_of.begin() + gptr[k + 1], k);
          });
          const int64_t cross =
              first_bad(A, [&](int64_t a) { return graph_of[d[a]] != graph_of[s[a]]; });
          TORCH_CHECK(cross < 0, "dst/src: arc ", cross, " (", s[cross < 0 ? 0 : cross], " -> ",
                      d[cross < 0 ? 0 : cross], ") joins nodes of different graphs of graph_ptr");
        }
        g = build_auto(d, s, cd, A, N, gptr, B);
      }
    }
    deg_hist = degree_histogram(g.ptr.data(), N);
    const int64_t maxdeg = static_cast<int64_t>(deg_hist.size()) - 1;
    st.len_bits = std::max(1, bit_width(static_cast<uint64_t>(maxdeg)));
    // deg_count[k] = number of nodes of degree >= k (so deg_count[k + 1]: degree > k)
    st.deg_count.assign(static_cast<size_t>(maxdeg + 2), 0);
    for (int64_t k = maxdeg; k >= 0; --k) st.deg_count[k] = st.deg_count[k + 1] + deg_hist[k];
  };
  bool built = !small;
  if (built) build();

  std::vector<at::Tensor> history;
  std::vector<int64_t> counts;
  // Round colours alternate between two buffers (the first round reads the input; the last of a
  // fixed number of rounds writes straight into the result).
  ws->cur.resize(N);
  ws->next.resize(N);
  at::Tensor out = return_history ? at::Tensor() : at::empty({1, N}, opts);
  const int64_t* c = c0;
  int64_t bound = (uniform ? c0[0] : *std::max_element(c0, c0 + N)) + 1;
  if (return_history) history.push_back(colors0.clone());
  counts.push_back(C);
  bool ordered = false;  // st holds the classes of cur
  bool round1_deferred = false;  // c holds round 1's colours only once they are written
  int64_t rounds = 0;
  const uint64_t K = cd ? static_cast<uint64_t>(num_codes) : 1;
  while ((max_rounds < 0 || rounds < max_rounds) && C < N) {  // C == N: discrete, stable
    const bool last = rounds + 1 == max_rounds;
    int64_t* next = last && !return_history ? out.data_ptr<int64_t>()
                    : c == ws->cur.data()   ? ws->next.data()
                                            : ws->cur.data();
    int64_t D;
    if (small && rounds < 3) {
      // Round 1's colours are written only when they may be returned: as the history, as the last
      // of max_rounds, or when round 2 splits nothing (written then, below).
      if (rounds == 0) round1_deferred = !return_history && !last;
      D = rounds == 0   ? small_graphs_round1(ws->small, N, round1_deferred ? nullptr : next)
          : rounds == 1 ? rank_signature_keys(ws->small.key.data(), N, next)
                        : small_graphs_round3(ws->small, gptr, B, c, N, C, st, next);
      ordered = false;
    } else if (!built) {  // after the small-graph rounds
      build();
      built = true;
      continue;
    } else if (C == 1 && g.code.empty()) {
      D = degree_round(g, deg_hist, N, next);
      ordered = false;
    } else if (have_sig2 && rounds == 1) {
      D = rank_signature_keys(ws->sig2.data(), N, next);
      ordered = false;
    } else {
      if (!ordered) init_order(st, c, N, bound);
      ordered = true;
      const bool narrow = K * static_cast<uint64_t>(bound) <= (uint64_t(1) << 32);
      D = narrow ? partition_round<uint32_t>(g, c, N, bound, C, num_codes, st, last, next)
                 : partition_round<uint64_t>(g, c, N, bound, C, num_codes, st, last, next);
    }
    if (D == C) break;  // no class split: stable
    ++rounds;
    C = D;
    bound = D;
    c = next;
    if (return_history)
      history.push_back(at::from_blob(const_cast<int64_t*>(c), {N}, opts).clone());
    counts.push_back(C);
  }
  // The colouring returned is round 1's: write it (c is the buffer round 1 would have written).
  if (round1_deferred && rounds == 1) small_graphs_round1(ws->small, N, const_cast<int64_t*>(c));
  at::Tensor result;
  if (return_history) {
    result = at::stack(history);
  } else {
    if (c != out.data_ptr<int64_t>()) std::copy(c, c + N, out.data_ptr<int64_t>());
    result = out;
  }
  if (hist) {
    // Three rounds of the small-graph path: pass 3's per-graph order by round-2 colour is still
    // in the workspace (later rounds, if any, split nothing).
    const int64_t* fin = out.data_ptr<int64_t>();
    *hist = small && rounds == 3 ? small_graph_histograms(ws->small, fin, N, gptr, B, opts)
                                 : histograms(fin, N, gptr, B, C, opts);
  }
  return_workspace(std::move(ws));
  at::Tensor num_colors = at::tensor(counts, opts);
  return {result, num_colors};
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> wl_refine_cpu(const at::Tensor& dst, const at::Tensor& src,
                                                 const at::Tensor& code, const at::Tensor& colors,
                                                 int64_t num_codes, int64_t arc_mode,
                                                 int64_t max_rounds, bool return_history,
                                                 const c10::optional<at::Tensor>& graph_ptr) {
  return refine(dst, src, code, colors, num_codes, arc_mode, max_rounds, return_history, graph_ptr,
                nullptr);
}

std::tuple<at::Tensor, at::Tensor, at::Tensor, at::Tensor> wl_refine_histogram_cpu(
    const at::Tensor& dst, const at::Tensor& src, const at::Tensor& code, const at::Tensor& colors,
    int64_t num_codes, int64_t arc_mode, int64_t max_rounds,
    const c10::optional<at::Tensor>& graph_ptr) {
  std::tuple<at::Tensor, at::Tensor> hist;
  auto [result, num_colors] = refine(dst, src, code, colors, num_codes, arc_mode, max_rounds,
                                     /*return_history=*/false, graph_ptr, &hist);
  return {result, num_colors, std::get<0>(hist), std::get<1>(hist)};
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
  return histograms(c, N, ptr, B, num_colors, colors.options());
}

TORCH_LIBRARY_IMPL(udl, CPU, m) {
  m.impl("wl_refine", &wl_refine_cpu);
  m.impl("wl_histogram", &wl_histogram_cpu);
  m.impl("wl_refine_histogram", &wl_refine_histogram_cpu);
}

}  // namespace udl
