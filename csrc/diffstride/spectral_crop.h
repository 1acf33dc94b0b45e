// DiffStride spectral crop: shared geometry, mask maths and kernel-launcher declarations.
//
// Convention (one axis of length N, stride S >= 1, smoothness R > 0):
//   T      = max(N / S, 2) / 2                        half-bandwidth
//   |f|(k) = min(k, N - k) on a full FFT axis, k on the rfft (last) axis
//   m(k)   = clip((T + R - |f|(k)) / R, 0, 1)         symmetric in +-f (Hermitian-preserving)
//   the caller chooses the output length N' (odd, or N' == N); bins with |f| <= (N'-1)/2 are kept.
// 2-D forward:  y = (H'W' / HW) * irfft2(crop(m_h (x) m_w * rfft2(x)), s = (H', W'))
// Backward:     dx = irfft2(pad(m_h (x) m_w * rfft2(g)), s = (H, W))             (exact adjoint)
//               dS = (1 / HW) * sum nu_l Re(conj(rfft2(g)) * X_kept) * dm/dS     (ramp bins only)
// with nu_l = 1 for l = 0 and the Nyquist column of an even W', 2 otherwise.
#pragma once

#include <ATen/ATen.h>
#include <c10/macros/Macros.h>

#include <cstdint>
#include <tuple>

namespace udl {
namespace diffstride {

// Sizes of one call. 1-D calls use H = Ho = 1 and have no vertical mask.
struct Geometry {
  int64_t planes = 0;      // product of the leading (batch, channel) dims
  int64_t H = 1, W = 1;    // input spatial size
  int64_t Wr = 1;          // columns of the input-grid spectra the kernels see (W/2+1, or Wor
                           // for the pruned buffers the composites pass)
  int64_t Ho = 1, Wo = 1;  // output spatial size
  int64_t Wor = 1;         // Wo / 2 + 1 (rfft bins kept)
  bool two_d = true;
  double smoothness = 4.0;
  double scale = 1.0;      // Ho * Wo / (H * W)
};

// Half-bandwidth T = max(N / S, 2) / 2.
template <typename T>
C10_HOST_DEVICE inline T half_band(T n, T s) {
  const T t = n / s;
  return (t > T(2) ? t : T(2)) / T(2);
}

// dT/dS: -N / (2 S^2) while N / S > 2, else 0 (the floor at 2 carries no gradient).
template <typename T>
C10_HOST_DEVICE inline T half_band_grad(T n, T s) {
  return (n / s > T(2)) ? -n / (T(2) * s * s) : T(0);
}

// Soft mask value at frequency magnitude f.
template <typename T>
C10_HOST_DEVICE inline T soft_mask(T f, T thr, T r) {
  T u = (thr + r - f) / r;
  u = u < T(0) ? T(0) : u;
  return u > T(1) ? T(1) : u;
}

// dm/dS at frequency magnitude f: nonzero inside the ramp 0 < m <= 1. At the kinks (m == 1 at an
// integer T, and N/S == 2 in half_band_grad) this is the one-sided derivative toward larger S.
template <typename T>
C10_HOST_DEVICE inline T soft_mask_grad(T f, T thr, T r, T dthr) {
  const T u = (thr + r - f) / r;
  return (u > T(0) && u <= T(1)) ? dthr / r : T(0);
}

// Row k' of the cropped full axis -> row k of the input full axis (the kept rows are the first
// ceil(Ho/2) and the last floor(Ho/2) rows; identity when Ho == H).
C10_HOST_DEVICE inline int64_t source_row(int64_t kout, int64_t H, int64_t Ho) {
  const int64_t half = (Ho + 1) / 2;
  return kout < half ? kout : kout + (H - Ho);
}

// Input row k -> output row, or -1 when the row is cropped away.
C10_HOST_DEVICE inline int64_t target_row(int64_t k, int64_t H, int64_t Ho) {
  const int64_t half = (Ho + 1) / 2;
  if (k < half) return k;
  if (k >= H - (Ho - half)) return k - (H - Ho);
  return -1;
}

// Frequency magnitude of bin k on a full axis of length N.
C10_HOST_DEVICE inline int64_t full_freq(int64_t k, int64_t n) { return k < n - k ? k : n - k; }

// Weight of rfft column l in the real inner product of an irfft of length Wo.
C10_HOST_DEVICE inline int rfft_weight(int64_t l, int64_t Wo) {
  return (l == 0 || (Wo % 2 == 0 && 2 * l == Wo)) ? 1 : 2;
}

// Device kernels. X, G, kept, Y, D: complex contiguous (planes, rows, cols). S: (2,) or (1,)
// in the real compute dtype, on the same device.
//   forward:  Y[p, k', l] = scale * m_h m_w X[p, k, l];  kept[p, k', l] = X[p, k, l]
//   backward: D = pad(m_h m_w G) on the input grid; dS (real, numel = #axes) as above.
using ForwardKernel = void (*)(const at::Tensor& X, const at::Tensor& S, const Geometry& g,
                               at::Tensor& Y, at::Tensor& kept);
using BackwardKernel = void (*)(const at::Tensor& G, const at::Tensor& kept, const at::Tensor& S,
                                const Geometry& g, bool need_strides_grad, at::Tensor& D,
                                at::Tensor& dS);

// Device-agnostic composites (FFTs through ATen: pocketfft/MKL on CPU, cuFFT on CUDA) that call
// the given kernel between the transforms. Defined in spectral_crop.cpp.
std::tuple<at::Tensor, at::Tensor> spectral_crop_composite(const at::Tensor& x,
                                                           const at::Tensor& strides,
                                                           double smoothness,
                                                           at::IntArrayRef out_size,
                                                           ForwardKernel kernel);

std::tuple<at::Tensor, at::Tensor> spectral_crop_backward_composite(
    const at::Tensor& grad_y, const at::Tensor& kept, const at::Tensor& strides,
    double smoothness, at::IntArrayRef in_size, bool need_strides_grad, BackwardKernel kernel);

}  // namespace diffstride
}  // namespace udl
