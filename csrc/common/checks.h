// Input-check helpers shared by every udl op: messages name the argument and what was expected.
#pragma once
#include <ATen/ATen.h>
#include <c10/util/Exception.h>

#define UDL_CHECK_DIM(t, name, d)                                                         \
  TORCH_CHECK((t).dim() == (d), name " must be a ", d, "-D tensor, got ", (t).dim(), \
              "-D with shape ", (t).sizes())

#define UDL_CHECK_FLOATING(t, name)                                                    \
  TORCH_CHECK(at::isFloatingType((t).scalar_type()), name                             \
              " must be a floating-point tensor, got ", (t).scalar_type())

#define UDL_CHECK_DTYPE(t, name, dtype)                                                 \
  TORCH_CHECK((t).scalar_type() == (dtype), name " must have dtype ", (dtype), ", got ", \
              (t).scalar_type())

#define UDL_CHECK_SAME_DEVICE(a, aname, b, bname)                                        \
  TORCH_CHECK((a).device() == (b).device(), aname " and " bname                         \
              " must be on the same device, got ", (a).device(), " and ", (b).device())

#define UDL_CHECK_CPU(t, name) \
  TORCH_CHECK((t).device().is_cpu(), name " must be a CPU tensor, got ", (t).device())

#define UDL_CHECK_CUDA(t, name) \
  TORCH_CHECK((t).device().is_cuda(), name " must be a CUDA tensor, got ", (t).device())
