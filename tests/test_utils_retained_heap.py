"""udl._utils.retained_heap: freed CPU memory stays mapped inside the block (glibc/Linux).

Each case runs in a fresh interpreter: a heap left behind by another test would hide the faults.
"""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

pytestmark = pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc only")

PAGES = 96 * 2**20 // 4096  # of the 96 MB tensor

SCRIPT = """
import json, resource, sys, torch
from udl._utils import retained_heap

def faults_of_reallocation(mb=96):
    t = torch.empty(mb * 2**20 // 8, dtype=torch.float64).fill_(1.0)
    del t
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    t = torch.empty(mb * 2**20 // 8, dtype=torch.float64).fill_(2.0)
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before

outside = [faults_of_reallocation() for _ in range(3)]
with retained_heap(active=sys.argv[1] == "1") as active:
    with retained_heap(active=sys.argv[1] == "1"):  # a nested block ends first ...
        pass
    inside = [faults_of_reallocation() for _ in range(8)]  # ... and the outer one still holds
print(json.dumps({"active": active, "outside": outside, "inside": inside}))
"""


def _run(active: bool) -> dict:
    out = subprocess.run([sys.executable, "-c", SCRIPT, "1" if active else "0"],
                         capture_output=True, text=True, timeout=120, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def test_reallocation_reuses_pages_inside_the_block():
    r = _run(active=True)
    assert r["active"]
    assert min(r["outside"]) > PAGES // 2, r  # plain glibc: a fresh mmap every time
    # the first rounds may still fault while small allocations settle around the big block
    assert r["inside"][-1] < PAGES // 10, r


def test_inactive_is_a_no_op():
    r = _run(active=False)
    assert not r["active"]
    assert min(r["inside"]) > PAGES // 2, r
