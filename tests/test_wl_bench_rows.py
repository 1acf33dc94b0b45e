"""The >= 50M-edge GPU benchmark case, run at a small size so its code path is checked on every
machine (the full size only runs under ``udl bench --device cuda``)."""

from __future__ import annotations

import math

import pytest

from udl.wl.bench import huge_graph_rows


@pytest.mark.parametrize("device", ["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def test_huge_graph_rows_small(device):
    rows = huge_graph_rows(device, n=3_000, m=20_000)
    assert len(rows) == 2
    for row in rows:
        assert row.ours_s > 0 and math.isnan(row.peer_s)
        assert f"on {device}" in row.case
    assert rows[1].note.endswith("colours equal to refine's: True")
