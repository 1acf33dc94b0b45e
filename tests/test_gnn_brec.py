"""Empirical expressiveness on BREC: random-weight GIN / 2-MPNN / 3-MPNN separate no pair that
their WL bound (cr / 2-FWL / 3-FWL with as many rounds as layers, computed with udl.wl) cannot,
and reach the bound on the pairs it separates."""

from __future__ import annotations

import pytest

from udl.data.brec import load_brec
from udl.gnn.separation import brec_comparison, default_specs, separates

pytestmark = pytest.mark.usefixtures("one_thread")


def test_gin_separates_no_brec_pair():
    # every BREC pair is 1-WL-equivalent by construction (no udl.wl needed for this one)
    gin = default_specs(layers=3)[0].make(0)
    pairs = [p for p in load_brec() if p.g1.number_of_nodes() <= 40][::12]
    assert len(pairs) >= 20
    assert not any(separates(gin, p.g1, p.g2) for p in pairs)


def test_models_never_exceed_their_wl_bound():
    pytest.importorskip("udl.wl")
    specs = default_specs(layers=3, hidden=16, max_nodes_3=10)
    specs[1].max_nodes = 20
    rows = brec_comparison(specs, ["basic", "regular", "extension", "strongly_regular"], per_category=3)
    assert {r.model for r in rows} == {"GIN", "2-MPNN", "3-MPNN"}
    for r in rows:
        assert r.violations == 0, r
        assert r.model_separated <= r.wl_separated, r
    by = {(r.model, r.category): r for r in rows}
    assert by[("GIN", "basic")].wl_separated == 0
    # 2-FWL separates all basic/regular/extension pairs; random 2-MPNNs reach that with 3 layers
    for cat in ("basic", "regular", "extension"):
        r = by[("2-MPNN", cat)]
        assert r.pairs == 3 and r.wl_separated == 3 and r.model_separated >= 2, r
    assert by[("3-MPNN", "basic")].model_separated == by[("3-MPNN", "basic")].wl_separated == 3


@pytest.mark.slow
def test_2mpnn_on_all_small_brec_pairs():
    pytest.importorskip("udl.wl")
    spec = default_specs(layers=3)[1]
    spec.max_nodes = 40
    rows = brec_comparison([spec])
    total = sum(r.pairs for r in rows)
    assert total > 250
    assert sum(r.violations for r in rows) == 0
    sep, bound = sum(r.model_separated for r in rows), sum(r.wl_separated for r in rows)
    assert sep >= 0.9 * bound
