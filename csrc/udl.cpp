// The pybind11 module `udl._C`: importing it loads this shared library, which runs the
// TORCH_LIBRARY_FRAGMENT(udl, ...) static initialisers of every op, and exposes build info.
#include <torch/extension.h>
#include <torch/version.h>

#ifdef WITH_CUDA
#include <cuda_runtime_api.h>
#endif

#ifndef UDL_VERSION
#define UDL_VERSION "unknown"
#endif

namespace udl {

pybind11::dict build_info() {
  pybind11::dict info;
  info["version"] = UDL_VERSION;
  info["torch_version"] = TORCH_VERSION;  // the libtorch this was compiled against
#ifdef WITH_CUDA
  info["with_cuda"] = true;
  info["cuda_version"] = std::to_string(CUDART_VERSION / 1000) + "." +
                         std::to_string((CUDART_VERSION % 1000) / 10);
#ifdef UDL_CUDA_ARCHS
  info["cuda_archs"] = UDL_CUDA_ARCHS;
#else
  info["cuda_archs"] = "";
#endif
#else
  info["with_cuda"] = false;
  info["cuda_version"] = pybind11::none();
  info["cuda_archs"] = "";
#endif
#ifdef _OPENMP
  info["with_openmp"] = true;
#else
  info["with_openmp"] = false;
#endif
#ifdef NDEBUG
  info["debug"] = false;
#else
  info["debug"] = true;
#endif
  return info;
}

}  // namespace udl

PYBIND11_MODULE(_C, m) {
  m.doc() = "udl native kernels (ops are registered as torch.ops.udl.*)";
  m.def("build_info", &udl::build_info, "How this extension was built.");
}
