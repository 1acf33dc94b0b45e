"""Shared fixtures: devices (CUDA only when present), dtype tolerances, seeds."""

from __future__ import annotations

import pytest
import torch

import udl  # noqa: F401  (fails loudly if the native extension is missing)
from udl._utils import torch_threads

CUDA = torch.cuda.is_available()

DEVICES = ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)]

# (rtol, atol) by dtype, for comparing a kernel with its float64 reference.
TOLERANCES = {
    torch.float16: (4e-3, 4e-3),
    torch.bfloat16: (2e-2, 2e-2),
    torch.float32: (1e-5, 1e-5),
    torch.float64: (1e-10, 1e-12),
}


def pytest_collection_modifyitems(config, items):
    if CUDA:
        return
    skip = pytest.mark.skip(reason="needs a CUDA GPU")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(params=DEVICES)
def device(request) -> str:
    return request.param


@pytest.fixture
def tol():
    """``tol(dtype) -> dict(rtol=..., atol=...)`` for torch.testing.assert_close."""

    def _tol(dtype: torch.dtype) -> dict[str, float]:
        rtol, atol = TOLERANCES[dtype]
        return {"rtol": rtol, "atol": atol}

    return _tol


@pytest.fixture(scope="module")
def one_thread():
    """One intra-op thread for a test module of tiny tensors: OpenMP/MKL threads only contend
    on a small shared CPU (use with ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    with torch_threads(1):
        yield


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
    yield
