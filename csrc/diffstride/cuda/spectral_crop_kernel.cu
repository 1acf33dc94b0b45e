// CUDA kernels of the DiffStride spectral crop. The masks are generated in-kernel from the device
// copy of the strides (no host read), one thread per spectral bin. The stride gradient is a
// deterministic two-stage reduction: a fixed grid (a function of the sizes only) writes one
// partial per block, and a single block sums the partials in order. No atomics.
#include <torch/library.h>
#include <ATen/ATen.h>
#include <ATen/Dispatch.h>
#include <c10/cuda/CUDAStream.h>
#include <c10/cuda/CUDAException.h>
#include <c10/cuda/CUDAGuard.h>
#include <c10/util/complex.h>

#include <algorithm>

#include "common/checks.h"
#include "diffstride/spectral_crop.h"

namespace udl {
namespace diffstride {

namespace {

constexpr int kThreads = 256;
constexpr int64_t kMaxReduceBlocks = 1024;

int64_t blocks_for(int64_t n) {
  return std::max<int64_t>(1, std::min<int64_t>((n + kThreads - 1) / kThreads, 65535 * 16));
}

template <typename scalar_t>
struct DeviceAxes {
  scalar_t Hf, Wf, sh, sw, thr_h, thr_w, dthr_h, dthr_w, r;
};

template <typename scalar_t>
__device__ inline DeviceAxes<scalar_t> load_axes(const scalar_t* __restrict__ S, int64_t H,
                                                 int64_t W, bool two_d, scalar_t r) {
  DeviceAxes<scalar_t> a;
  a.Hf = static_cast<scalar_t>(H);
  a.Wf = static_cast<scalar_t>(W);
  a.sh = two_d ? S[0] : scalar_t(1);
  a.sw = two_d ? S[1] : S[0];
  a.r = r;
  a.thr_h = half_band(a.Hf, a.sh);
  a.thr_w = half_band(a.Wf, a.sw);
  a.dthr_h = half_band_grad(a.Hf, a.sh);
  a.dthr_w = half_band_grad(a.Wf, a.sw);
  return a;
}

template <typename scalar_t>
__global__ void forward_kernel(const c10::complex<scalar_t>* __restrict__ X,
                               const scalar_t* __restrict__ S, c10::complex<scalar_t>* __restrict__ Y,
                               c10::complex<scalar_t>* __restrict__ kept, int64_t total, int64_t H,
                               int64_t W, int64_t Wr, int64_t Ho, int64_t Wor, bool two_d,
                               scalar_t r, scalar_t scale) {
  const DeviceAxes<scalar_t> ax = load_axes(S, H, W, two_d, r);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t l = i % Wor;
    const int64_t rest = i / Wor;
    const int64_t ko = rest % Ho;
    const int64_t p = rest / Ho;
    const int64_t k = source_row(ko, H, Ho);
    const scalar_t mh =
        two_d ? soft_mask(static_cast<scalar_t>(full_freq(k, H)), ax.thr_h, ax.r) : scalar_t(1);
    const scalar_t mw = soft_mask(static_cast<scalar_t>(l), ax.thr_w, ax.r);
    const c10::complex<scalar_t> v = X[(p * H + k) * Wr + l];
    kept[i] = v;
    Y[i] = v * (scale * mh * mw);
  }
}

// D on the input grid: m_h m_w G on the kept bins, 0 elsewhere (one write per element).
template <typename scalar_t>
__global__ void pad_kernel(const c10::complex<scalar_t>* __restrict__ G,
                           const scalar_t* __restrict__ S, c10::complex<scalar_t>* __restrict__ D,
                           int64_t total, int64_t H, int64_t W, int64_t Wr, int64_t Ho,
                           int64_t Wor, bool two_d, scalar_t r) {
  const DeviceAxes<scalar_t> ax = load_axes(S, H, W, two_d, r);
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t l = i % Wr;
    const int64_t rest = i / Wr;
    const int64_t k = rest % H;
    const int64_t p = rest / H;
    const int64_t ko = target_row(k, H, Ho);
    c10::complex<scalar_t> out(0, 0);
    if (ko >= 0 && l < Wor) {
      const scalar_t mh =
          two_d ? soft_mask(static_cast<scalar_t>(full_freq(k, H)), ax.thr_h, ax.r) : scalar_t(1);
      const scalar_t mw = soft_mask(static_cast<scalar_t>(l), ax.thr_w, ax.r);
      out = G[(p * Ho + ko) * Wor + l] * (mh * mw);
    }
    D[i] = out;
  }
}

// Stage 1 of the stride-gradient reduction: each block writes (sum_h, sum_w) for its fixed slice.
template <typename scalar_t>
__global__ void stride_grad_partial_kernel(const c10::complex<scalar_t>* __restrict__ G,
                                           const c10::complex<scalar_t>* __restrict__ K,
                                           const scalar_t* __restrict__ S,
                                           double* __restrict__ partial, int64_t total, int64_t H,
                                           int64_t W, int64_t Ho, int64_t Wo, int64_t Wor,
                                           bool two_d, scalar_t r) {
  __shared__ double sh_h[kThreads];
  __shared__ double sh_w[kThreads];
  const DeviceAxes<scalar_t> ax = load_axes(S, H, W, two_d, r);
  double acc_h = 0.0, acc_w = 0.0;
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < total;
       i += static_cast<int64_t>(blockDim.x) * gridDim.x) {
    const int64_t l = i % Wor;
    const int64_t ko = (i / Wor) % Ho;
    const scalar_t fh = two_d ? static_cast<scalar_t>(full_freq(source_row(ko, H, Ho), H)) : 0;
    const scalar_t fw = static_cast<scalar_t>(l);
    const scalar_t dmh = two_d ? soft_mask_grad(fh, ax.thr_h, ax.r, ax.dthr_h) : scalar_t(0);
    const scalar_t dmw = soft_mask_grad(fw, ax.thr_w, ax.r, ax.dthr_w);
    if (dmh == scalar_t(0) && dmw == scalar_t(0)) continue;  // no load outside the ramps
    const scalar_t mh = two_d ? soft_mask(fh, ax.thr_h, ax.r) : scalar_t(1);
    const scalar_t mw = soft_mask(fw, ax.thr_w, ax.r);
    const c10::complex<scalar_t> a = G[i], c = K[i];
    const double v = rfft_weight(l, Wo) * (static_cast<double>(a.real()) * c.real() +
                                           static_cast<double>(a.imag()) * c.imag());
    acc_h += v * static_cast<double>(mw) * static_cast<double>(dmh);
    acc_w += v * static_cast<double>(mh) * static_cast<double>(dmw);
  }
  sh_h[threadIdx.x] = acc_h;
  sh_w[threadIdx.x] = acc_w;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      sh_h[threadIdx.x] += sh_h[threadIdx.x + s];
      sh_w[threadIdx.x] += sh_w[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    partial[2 * blockIdx.x] = sh_h[0];
    partial[2 * blockIdx.x + 1] = sh_w[0];
  }
}

// Stage 2: one block sums the partials in a fixed order and writes dS.
template <typename scalar_t>
__global__ void stride_grad_final_kernel(const double* __restrict__ partial, int64_t nblocks,
                                         double inv_area, bool two_d, scalar_t* __restrict__ dS) {
  __shared__ double sh_h[kThreads];
  __shared__ double sh_w[kThreads];
  double acc_h = 0.0, acc_w = 0.0;
  for (int64_t b = threadIdx.x; b < nblocks; b += blockDim.x) {
    acc_h += partial[2 * b];
    acc_w += partial[2 * b + 1];
  }
  sh_h[threadIdx.x] = acc_h;
  sh_w[threadIdx.x] = acc_w;
  __syncthreads();
  for (int s = kThreads / 2; s > 0; s >>= 1) {
    if (threadIdx.x < s) {
      sh_h[threadIdx.x] += sh_h[threadIdx.x + s];
      sh_w[threadIdx.x] += sh_w[threadIdx.x + s];
    }
    __syncthreads();
  }
  if (threadIdx.x == 0) {
    if (two_d) {
      dS[0] = static_cast<scalar_t>(sh_h[0] * inv_area);
      dS[1] = static_cast<scalar_t>(sh_w[0] * inv_area);
    } else {
      dS[0] = static_cast<scalar_t>(sh_w[0] * inv_area);
    }
  }
}

void forward_cuda_kernel(const at::Tensor& X, const at::Tensor& S, const Geometry& g,
                         at::Tensor& Y, at::Tensor& kept) {
  const int64_t total = g.planes * g.Ho * g.Wor;
  auto stream = c10::cuda::getCurrentCUDAStream();
  AT_DISPATCH_FLOATING_TYPES(S.scalar_type(), "spectral_crop_cuda", [&] {
    using cplx = c10::complex<scalar_t>;
    forward_kernel<scalar_t><<<blocks_for(total), kThreads, 0, stream>>>(
        X.data_ptr<cplx>(), S.data_ptr<scalar_t>(), Y.data_ptr<cplx>(), kept.data_ptr<cplx>(),
        total, g.H, g.W, g.Wr, g.Ho, g.Wor, g.two_d, static_cast<scalar_t>(g.smoothness),
        static_cast<scalar_t>(g.scale));
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

void backward_cuda_kernel(const at::Tensor& G, const at::Tensor& kept, const at::Tensor& S,
                          const Geometry& g, bool need_strides_grad, at::Tensor& D,
                          at::Tensor& dS) {
  auto stream = c10::cuda::getCurrentCUDAStream();
  const int64_t total_in = g.planes * g.H * g.Wr;
  const int64_t total_out = g.planes * g.Ho * g.Wor;
  AT_DISPATCH_FLOATING_TYPES(S.scalar_type(), "spectral_crop_backward_cuda", [&] {
    using cplx = c10::complex<scalar_t>;
    const scalar_t r = static_cast<scalar_t>(g.smoothness);
    pad_kernel<scalar_t><<<blocks_for(total_in), kThreads, 0, stream>>>(
        G.data_ptr<cplx>(), S.data_ptr<scalar_t>(), D.data_ptr<cplx>(), total_in, g.H, g.W, g.Wr,
        g.Ho, g.Wor, g.two_d, r);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    if (!need_strides_grad) return;
    const int64_t nblocks =
        std::min<int64_t>(kMaxReduceBlocks, (total_out + kThreads - 1) / kThreads);
    at::Tensor partial = at::empty({2 * nblocks}, G.options().dtype(at::kDouble));
    stride_grad_partial_kernel<scalar_t><<<nblocks, kThreads, 0, stream>>>(
        G.data_ptr<cplx>(), kept.data_ptr<cplx>(), S.data_ptr<scalar_t>(),
        partial.data_ptr<double>(), total_out, g.H, g.W, g.Ho, g.Wo, g.Wor, g.two_d, r);
    C10_CUDA_KERNEL_LAUNCH_CHECK();
    stride_grad_final_kernel<scalar_t><<<1, kThreads, 0, stream>>>(
        partial.data_ptr<double>(), nblocks, 1.0 / static_cast<double>(g.H * g.W), g.two_d,
        dS.data_ptr<scalar_t>());
    C10_CUDA_KERNEL_LAUNCH_CHECK();
  });
}

std::tuple<at::Tensor, at::Tensor> spectral_crop_cuda(const at::Tensor& x,
                                                      const at::Tensor& strides,
                                                      double smoothness,
                                                      at::IntArrayRef out_size) {
  UDL_CHECK_CUDA(x, "x");
  const c10::cuda::CUDAGuard guard(x.device());
  return spectral_crop_composite(x, strides, smoothness, out_size, &forward_cuda_kernel);
}

std::tuple<at::Tensor, at::Tensor> spectral_crop_backward_cuda(const at::Tensor& grad_y,
                                                               const at::Tensor& kept,
                                                               const at::Tensor& strides,
                                                               double smoothness,
                                                               at::IntArrayRef in_size,
                                                               bool need_strides_grad) {
  UDL_CHECK_CUDA(grad_y, "grad_y");
  const c10::cuda::CUDAGuard guard(grad_y.device());
  return spectral_crop_backward_composite(grad_y, kept, strides, smoothness, in_size,
                                          need_strides_grad, &backward_cuda_kernel);
}

}  // namespace

}  // namespace diffstride
}  // namespace udl

TORCH_LIBRARY_IMPL(udl, CUDA, m) {
  m.impl("spectral_crop", &udl::diffstride::spectral_crop_cuda);
  m.impl("spectral_crop_backward", &udl::diffstride::spectral_crop_backward_cuda);
}
