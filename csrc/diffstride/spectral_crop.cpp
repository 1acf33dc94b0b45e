// Schemas of the DiffStride ops and their device-agnostic composites (FFT -> fused kernel -> iFFT).
//
//   udl::spectral_crop(x, strides, smoothness, out_size) -> (y, kept)
//     x: (B, C, H, W) with 2 strides, or (B, C, L) with 1 stride; float16/bfloat16/float32/float64.
//     y: (B, C, *out_size), dtype of x. kept: complex (B, C, H', W'//2+1) in the compute dtype, the
//     unmasked kept spectrum (all the backward needs for the stride gradient).
//   udl::spectral_crop_backward(grad_y, kept, strides, smoothness, in_size, need_strides_grad)
//     -> (grad_x, grad_strides)
//
// Output sizes are arguments (the Python wrapper derives them from the host copy of the strides),
// so the ops have static shape functions and no device->host sync of their own.
#include <torch/library.h>
#include <ATen/ATen.h>
#include <ATen/Parallel.h>

#include <cmath>
#include <vector>

#include "common/checks.h"
#include "diffstride/spectral_crop.h"

namespace udl {
namespace diffstride {

namespace {

at::ScalarType compute_dtype(at::ScalarType t) {
  return t == at::kDouble ? at::kDouble : at::kFloat;
}

int64_t check_layout(const at::Tensor& x, const at::Tensor& strides, double smoothness) {
  UDL_CHECK_FLOATING(x, "x");
  UDL_CHECK_FLOATING(strides, "strides");
  UDL_CHECK_SAME_DEVICE(x, "x", strides, "strides");
  TORCH_CHECK(strides.dim() == 1 && (strides.numel() == 1 || strides.numel() == 2),
              "strides must be a 1-D tensor with 1 (1-D op) or 2 (2-D op) elements, got shape ",
              strides.sizes());
  const int64_t nd = strides.numel();
  TORCH_CHECK(x.dim() == 2 + nd, "x must be a ", 2 + nd, "-D tensor ",
              nd == 2 ? "(batch, channels, H, W)" : "(batch, channels, L)", " for ", nd,
              " stride(s), got ", x.dim(), "-D with shape ", x.sizes());
  TORCH_CHECK(std::isfinite(smoothness) && smoothness > 0.0,
              "smoothness must be a finite number > 0, got ", smoothness);
  for (int64_t a = 0; a < nd; ++a) {
    TORCH_CHECK(x.size(2 + a) >= 2, "x: every spatial size must be >= 2, got shape ", x.sizes());
  }
  if (strides.device().is_cpu()) {  // free on the host; on CUDA the Python wrapper checks
    auto s = strides.to(at::kDouble);
    const double* sp = s.data_ptr<double>();
    for (int64_t a = 0; a < nd; ++a) {
      TORCH_CHECK(std::isfinite(sp[a]) && sp[a] >= 1.0,
                  "strides must be finite and >= 1, got ", strides);
    }
  }
  return nd;
}

void check_out_size(at::IntArrayRef sizes, at::IntArrayRef in, const char* name) {
  for (size_t a = 0; a < sizes.size(); ++a) {
    TORCH_CHECK(sizes[a] >= 1 && sizes[a] <= in[a] && (sizes[a] == in[a] || sizes[a] % 2 == 1),
                name, "[", a, "] must be odd and in [1, ", in[a], "] or equal to ", in[a],
                ", got ", sizes[a]);
  }
}

}  // namespace

std::tuple<at::Tensor, at::Tensor> spectral_crop_composite(const at::Tensor& x,
                                                           const at::Tensor& strides,
                                                           double smoothness,
                                                           at::IntArrayRef out_size,
                                                           ForwardKernel kernel) {
  const int64_t nd = check_layout(x, strides, smoothness);
  TORCH_CHECK(static_cast<int64_t>(out_size.size()) == nd, "out_size must have ", nd,
              " element(s), got ", out_size.size());
  std::vector<int64_t> in(x.sizes().begin() + 2, x.sizes().end());
  check_out_size(out_size, in, "out_size");

  const auto cdt = compute_dtype(x.scalar_type());
  const auto cplx = c10::toComplexType(cdt);
  Geometry g;
  g.two_d = nd == 2;
  g.planes = x.size(0) * x.size(1);
  g.H = g.two_d ? in[0] : 1;
  g.W = in[nd - 1];
  g.Wr = g.W / 2 + 1;
  g.Ho = g.two_d ? out_size[0] : 1;
  g.Wo = out_size[nd - 1];
  g.Wor = g.Wo / 2 + 1;
  g.smoothness = smoothness;
  g.scale = static_cast<double>(g.Ho * g.Wo) / static_cast<double>(g.H * g.W);

  std::vector<int64_t> y_shape{x.size(0), x.size(1)};
  std::vector<int64_t> k_shape{x.size(0), x.size(1)};
  for (auto o : out_size) y_shape.push_back(o);
  if (g.two_d) k_shape.push_back(g.Ho);
  k_shape.push_back(g.Wor);

  if (g.planes == 0) {
    return {at::empty(y_shape, x.options()), at::empty(k_shape, x.options().dtype(cplx))};
  }
  // channels_last / strided inputs become a contiguous NC(H)W copy here.
  at::Tensor xin = x.to(cdt).contiguous();
  // Pruned transform: rfft along W, keep the Wor columns that survive the crop, and run the
  // H-axis FFT on those columns only.
  at::Tensor X = at::fft_rfft(xin, c10::nullopt, -1, c10::nullopt).narrow(-1, 0, g.Wor).contiguous();
  if (g.two_d) X = at::fft_fft(X, c10::nullopt, -2, c10::nullopt).contiguous();
  at::Tensor S = strides.to(cdt).contiguous();
  at::Tensor Y = at::empty(k_shape, X.options());
  at::Tensor kept = at::empty(k_shape, X.options());
  Geometry gk = g;
  gk.Wr = g.Wor;  // row stride of the pruned spectrum
  kernel(X, S, gk, Y, kept);
  X.reset();
  // Separable inverse (ifft along H, then irfft along W): the same as irfft2, without its copy.
  if (g.two_d) Y = at::fft_ifft(Y, c10::nullopt, -2, c10::nullopt);
  at::Tensor y = at::fft_irfft(Y, g.Wo, -1, c10::nullopt);
  if (y.scalar_type() != x.scalar_type()) y = y.to(x.scalar_type());
  return {y, kept};
}

std::tuple<at::Tensor, at::Tensor> spectral_crop_backward_composite(
    const at::Tensor& grad_y, const at::Tensor& kept, const at::Tensor& strides,
    double smoothness, at::IntArrayRef in_size, bool need_strides_grad, BackwardKernel kernel) {
  const int64_t nd = check_layout(grad_y, strides, smoothness);
  TORCH_CHECK(static_cast<int64_t>(in_size.size()) == nd, "in_size must have ", nd,
              " element(s), got ", in_size.size());
  UDL_CHECK_SAME_DEVICE(grad_y, "grad_y", kept, "kept");
  TORCH_CHECK(kept.is_complex(), "kept must be a complex tensor, got ", kept.scalar_type());
  std::vector<int64_t> out(grad_y.sizes().begin() + 2, grad_y.sizes().end());
  for (int64_t a = 0; a < nd; ++a) {
    TORCH_CHECK(in_size[a] >= 2, "in_size[", a, "] must be >= 2, got ", in_size[a]);
  }
  check_out_size(out, in_size, "grad_y spatial size");

  const auto cdt = compute_dtype(grad_y.scalar_type());
  Geometry g;
  g.two_d = nd == 2;
  g.planes = grad_y.size(0) * grad_y.size(1);
  g.H = g.two_d ? in_size[0] : 1;
  g.W = in_size[nd - 1];
  g.Wr = g.W / 2 + 1;
  g.Ho = g.two_d ? out[0] : 1;
  g.Wo = out[nd - 1];
  g.Wor = g.Wo / 2 + 1;
  g.smoothness = smoothness;
  g.scale = static_cast<double>(g.Ho * g.Wo) / static_cast<double>(g.H * g.W);

  std::vector<int64_t> k_shape{grad_y.size(0), grad_y.size(1)};
  if (g.two_d) k_shape.push_back(g.Ho);
  k_shape.push_back(g.Wor);
  TORCH_CHECK(kept.sizes() == at::IntArrayRef(k_shape), "kept must have shape ",
              at::IntArrayRef(k_shape), ", got ", kept.sizes());
  std::vector<int64_t> x_shape{grad_y.size(0), grad_y.size(1)};
  for (auto s : in_size) x_shape.push_back(s);

  if (g.planes == 0) {
    return {at::zeros(x_shape, grad_y.options()), at::zeros_like(strides)};
  }
  std::vector<int64_t> dims;
  for (int64_t a = 0; a < nd; ++a) dims.push_back(2 + a);

  at::Tensor gin = grad_y.to(cdt).contiguous();
  at::Tensor G = at::fft_rfftn(gin, c10::nullopt, dims).contiguous();
  at::Tensor K = kept.to(c10::toComplexType(cdt)).contiguous();
  at::Tensor S = strides.to(cdt).contiguous();
  // D is zero-padded along H only (Wor columns): irfft pads the missing columns itself.
  std::vector<int64_t> d_shape{grad_y.size(0), grad_y.size(1)};
  if (g.two_d) d_shape.push_back(g.H);
  d_shape.push_back(g.Wor);
  at::Tensor D = at::empty(d_shape, G.options());
  at::Tensor dS = at::zeros({nd}, S.options());
  Geometry gk = g;
  gk.Wr = g.Wor;  // row stride of D
  kernel(G, K, S, gk, need_strides_grad, D, dS);
  G.reset();
  if (g.two_d) D = at::fft_ifft(D, c10::nullopt, -2, c10::nullopt);
  at::Tensor dx = at::fft_irfft(D, g.W, -1, c10::nullopt);
  if (dx.scalar_type() != grad_y.scalar_type()) dx = dx.to(grad_y.scalar_type());
  return {dx, dS.to(strides.scalar_type())};
}

}  // namespace diffstride
}  // namespace udl

TORCH_LIBRARY_FRAGMENT(udl, m) {
  m.def(
      "spectral_crop(Tensor x, Tensor strides, float smoothness, SymInt[] out_size) "
      "-> (Tensor, Tensor)");
  m.def(
      "spectral_crop_backward(Tensor grad_y, Tensor kept, Tensor strides, float smoothness, "
      "SymInt[] in_size, bool need_strides_grad) -> (Tensor, Tensor)");
}
