"""The report's first section: how udl was built and which native ops it provides."""

from __future__ import annotations

import platform

import torch

import udl
from udl.report import Context, SectionResult, section


@section("build", title="Build and native ops", order=0)
def run(ctx: Context) -> SectionResult:
    info = dict(udl.BUILD_INFO)
    ops = udl.native_ops()
    res = SectionResult(
        summary=(
            f"udl {udl.__version__} on Python {platform.python_version()}, torch {torch.__version__}; "
            f"native extension built with CUDA={info['with_cuda']} (archs {info['cuda_archs'] or '-'}), "
            f"OpenMP={info['with_openmp']}; {len(ops)} native ops registered under torch.ops.udl."
        )
    )
    res.add_table("Build info", ["key", "value"], [[k, v] for k, v in info.items()])
    rows = []
    for name in ops:
        schema = [s for s in torch._C._jit_get_all_schemas() if s.name == f"udl::{name}"]
        rows.append([name, str(schema[0]) if schema else ""])
    res.add_table("Native ops (torch.ops.udl)", ["op", "schema"], rows)
    res.numbers.update(num_native_ops=len(ops), cuda_available=torch.cuda.is_available(),
                       threads=torch.get_num_threads())
    return res
