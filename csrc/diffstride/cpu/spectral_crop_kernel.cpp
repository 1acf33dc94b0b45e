// CPU kernels of the DiffStride spectral crop: one pass over the kept spectrum (forward) and over
// the input-size spectrum (backward), parallel over (batch, channel) planes with at::parallel_for.
// The stride gradient is reduced per fixed block of planes into a partials buffer and the blocks
// are summed in order, so the result does not depend on the number of threads.
#include <torch/library.h>
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <ATen/Parallel.h>
#include <c10/util/complex.h>

#include <algorithm>
#include <vector>

#include "common/checks.h"
#include "diffstride/spectral_crop.h"

namespace udl {
namespace diffstride {

namespace {

constexpr int64_t kPlanesPerBlock = 8;  // fixed: the reduction order must not depend on threads

// Per-axis mask values (and stride derivatives) of the kept bins.
template <typename scalar_t>
struct AxisMasks {
  std::vector<scalar_t> m, dm;
};

template <typename scalar_t>
AxisMasks<scalar_t> full_axis_masks(int64_t n, int64_t nout, double s, double r) {
  AxisMasks<scalar_t> a;
  a.m.resize(nout);
  a.dm.resize(nout);
  const double thr = half_band<double>(n, s), dthr = half_band_grad<double>(n, s);
  for (int64_t k = 0; k < nout; ++k) {
    const double f = static_cast<double>(full_freq(source_row(k, n, nout), n));
    a.m[k] = static_cast<scalar_t>(soft_mask<double>(f, thr, r));
    a.dm[k] = static_cast<scalar_t>(soft_mask_grad<double>(f, thr, r, dthr));
  }
  return a;
}

template <typename scalar_t>
AxisMasks<scalar_t> rfft_axis_masks(int64_t n, int64_t nbins, double s, double r) {
  AxisMasks<scalar_t> a;
  a.m.resize(nbins);
  a.dm.resize(nbins);
  const double thr = half_band<double>(n, s), dthr = half_band_grad<double>(n, s);
  for (int64_t l = 0; l < nbins; ++l) {
    a.m[l] = static_cast<scalar_t>(soft_mask<double>(static_cast<double>(l), thr, r));
    a.dm[l] = static_cast<scalar_t>(soft_mask_grad<double>(static_cast<double>(l), thr, r, dthr));
  }
  return a;
}

template <typename scalar_t>
void masks_for(const at::Tensor& S, const Geometry& g, AxisMasks<scalar_t>& mh,
               AxisMasks<scalar_t>& mw) {
  const scalar_t* sp = S.data_ptr<scalar_t>();
  const double sw = static_cast<double>(g.two_d ? sp[1] : sp[0]);
  if (g.two_d) {
    mh = full_axis_masks<scalar_t>(g.H, g.Ho, static_cast<double>(sp[0]), g.smoothness);
  } else {
    mh.m.assign(1, scalar_t(1));
    mh.dm.assign(1, scalar_t(0));
  }
  mw = rfft_axis_masks<scalar_t>(g.W, g.Wor, sw, g.smoothness);
}

void forward_cpu_kernel(const at::Tensor& X, const at::Tensor& S, const Geometry& g,
                        at::Tensor& Y, at::Tensor& kept) {
  AT_DISPATCH_FLOATING_TYPES(S.scalar_type(), "spectral_crop_cpu", [&] {
    using cplx = c10::complex<scalar_t>;
    AxisMasks<scalar_t> mh, mw;
    masks_for<scalar_t>(S, g, mh, mw);
    const cplx* xp = X.data_ptr<cplx>();
    cplx* yp = Y.data_ptr<cplx>();
    cplx* kp = kept.data_ptr<cplx>();
    const scalar_t scale = static_cast<scalar_t>(g.scale);
    std::vector<scalar_t> wrow(g.Wor);
    for (int64_t l = 0; l < g.Wor; ++l) wrow[l] = scale * mw.m[l];
    const int64_t out_plane = g.Ho * g.Wor, in_plane = g.H * g.Wr;
    const int64_t grain = std::max<int64_t>(1, 32768 / std::max<int64_t>(1, out_plane));
    at::parallel_for(0, g.planes, grain, [&](int64_t p0, int64_t p1) {
      for (int64_t p = p0; p < p1; ++p) {
        for (int64_t ko = 0; ko < g.Ho; ++ko) {
          const cplx* src = xp + p * in_plane + source_row(ko, g.H, g.Ho) * g.Wr;
          cplx* dst = yp + p * out_plane + ko * g.Wor;
          cplx* kdst = kp + p * out_plane + ko * g.Wor;
          const scalar_t mk = mh.m[ko];
          for (int64_t l = 0; l < g.Wor; ++l) {
            const cplx v = src[l];
            kdst[l] = v;
            dst[l] = v * (mk * wrow[l]);
          }
        }
      }
    });
  });
}

void backward_cpu_kernel(const at::Tensor& G, const at::Tensor& kept, const at::Tensor& S,
                         const Geometry& g, bool need_strides_grad, at::Tensor& D,
                         at::Tensor& dS) {
  AT_DISPATCH_FLOATING_TYPES(S.scalar_type(), "spectral_crop_backward_cpu", [&] {
    using cplx = c10::complex<scalar_t>;
    AxisMasks<scalar_t> mh, mw;
    masks_for<scalar_t>(S, g, mh, mw);
    const cplx* gp = G.data_ptr<cplx>();
    const cplx* kp = kept.data_ptr<cplx>();
    cplx* dp = D.data_ptr<cplx>();
    const int64_t out_plane = g.Ho * g.Wor, in_plane = g.H * g.Wr;
    // Columns with a stride gradient form one trailing range [lw0, Wor) of the kept bins.
    int64_t lw0 = g.Wor;
    for (int64_t l = 0; l < g.Wor; ++l) {
      if (mw.dm[l] != scalar_t(0)) {
        lw0 = l;
        break;
      }
    }
    std::vector<double> nu(g.Wor);
    for (int64_t l = 0; l < g.Wor; ++l) nu[l] = rfft_weight(l, g.Wo);
    const int64_t nblocks = (g.planes + kPlanesPerBlock - 1) / kPlanesPerBlock;
    std::vector<double> partial(need_strides_grad ? 2 * nblocks : 0, 0.0);
    // Small problems run inline (no parallel region); the partials keep the order fixed anyway.
    const int64_t grain =
        std::max<int64_t>(1, 65536 / std::max<int64_t>(1, kPlanesPerBlock * in_plane));
    at::parallel_for(0, nblocks, grain, [&](int64_t b0, int64_t b1) {
      for (int64_t b = b0; b < b1; ++b) {
        double acc_h = 0.0, acc_w = 0.0;
        const int64_t pend = std::min(g.planes, (b + 1) * kPlanesPerBlock);
        for (int64_t p = b * kPlanesPerBlock; p < pend; ++p) {
          for (int64_t k = 0; k < g.H; ++k) {
            cplx* dst = dp + p * in_plane + k * g.Wr;
            const int64_t ko = target_row(k, g.H, g.Ho);
            if (ko < 0) {
              std::fill(dst, dst + g.Wr, cplx(0, 0));
              continue;
            }
            const cplx* gsrc = gp + p * out_plane + ko * g.Wor;
            const scalar_t mk = mh.m[ko];
            for (int64_t l = 0; l < g.Wor; ++l) dst[l] = gsrc[l] * (mk * mw.m[l]);
            std::fill(dst + g.Wor, dst + g.Wr, cplx(0, 0));
            if (!need_strides_grad) continue;
            const cplx* ksrc = kp + p * out_plane + ko * g.Wor;
            const double dmk = static_cast<double>(mh.dm[ko]);
            // Rows in the vertical ramp need every column; other rows only the ramp columns.
            const int64_t lstart = dmk != 0.0 ? 0 : lw0;
            for (int64_t l = lstart; l < g.Wor; ++l) {
              const cplx a = gsrc[l], c = ksrc[l];
              const double v = nu[l] * (static_cast<double>(a.real()) * c.real() +
                                        static_cast<double>(a.imag()) * c.imag());
              acc_h += v * static_cast<double>(mw.m[l]) * dmk;
              acc_w += v * static_cast<double>(mk) * static_cast<double>(mw.dm[l]);
            }
          }
        }
        if (need_strides_grad) {
          partial[2 * b] = acc_h;
          partial[2 * b + 1] = acc_w;
        }
      }
    });
    if (need_strides_grad) {
      double sh = 0.0, sw = 0.0;
      for (int64_t b = 0; b < nblocks; ++b) {
        sh += partial[2 * b];
        sw += partial[2 * b + 1];
      }
      const double inv = 1.0 / static_cast<double>(g.H * g.W);
      scalar_t* out = dS.data_ptr<scalar_t>();
      if (g.two_d) {
        out[0] = static_cast<scalar_t>(sh * inv);
        out[1] = static_cast<scalar_t>(sw * inv);
      } else {
        out[0] = static_cast<scalar_t>(sw * inv);
      }
    }
  });
}

std::tuple<at::Tensor, at::Tensor> spectral_crop_cpu(const at::Tensor& x, const at::Tensor& strides,
                                                     double smoothness, at::IntArrayRef out_size) {
  UDL_CHECK_CPU(x, "x");
  return spectral_crop_composite(x, strides, smoothness, out_size, &forward_cpu_kernel);
}

std::tuple<at::Tensor, at::Tensor> spectral_crop_backward_cpu(const at::Tensor& grad_y,
                                                              const at::Tensor& kept,
                                                              const at::Tensor& strides,
                                                              double smoothness,
                                                              at::IntArrayRef in_size,
                                                              bool need_strides_grad) {
  UDL_CHECK_CPU(grad_y, "grad_y");
  return spectral_crop_backward_composite(grad_y, kept, strides, smoothness, in_size,
                                          need_strides_grad, &backward_cpu_kernel);
}

}  // namespace

}  // namespace diffstride
}  // namespace udl

TORCH_LIBRARY_IMPL(udl, CPU, m) {
  m.impl("spectral_crop", &udl::diffstride::spectral_crop_cpu);
  m.impl("spectral_crop_backward", &udl::diffstride::spectral_crop_backward_cpu);
}
