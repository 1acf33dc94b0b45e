"""The package skeleton: native build info, lazy imports, the report/bench/CLI plug-in plumbing."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest
import torch

import udl
from udl import cli
from udl.bench import BenchRow, format_table, save_rows, time_fn
from udl.report import Context, SectionResult, run_report, section


def test_build_info_matches_running_torch():
    info = udl.BUILD_INFO
    assert set(info) >= {"version", "torch_version", "with_cuda", "cuda_version", "cuda_archs",
                         "with_openmp"}
    assert info["version"] == udl.__version__
    assert info["torch_version"] == torch.__version__.split("+")[0]
    if info["with_cuda"]:
        assert info["cuda_version"].split(".")[0] == str(torch.version.cuda).split(".")[0]
        assert "9.0" in info["cuda_archs"]


def test_extension_links_the_shared_libstdcxx():
    # A private copy of libstdc++ inside _C.so (a compiler that links libstdc++.a into shared
    # objects) broke c10's integer formatting in error messages; setup.py links the shared one
    # first. std::ostream::_M_insert<long> must come from libstdc++.so.6, not be defined here.
    import shutil

    from udl import _C

    if shutil.which("nm") is None:
        pytest.skip("needs binutils' nm")
    out = subprocess.run(["nm", "-D", "--defined-only", _C.__file__], capture_output=True,
                         text=True, check=True).stdout
    assert "_ZNSo9_M_insertIlEERSoT_" not in out


def test_native_ops_are_registered_under_udl_namespace():
    ops = udl.native_ops()
    assert ops == sorted(set(ops))
    for name in ops:
        assert hasattr(torch.ops.udl, name), name


def test_import_udl_does_not_import_heavy_optional_deps():
    code = ("import sys, udl; heavy = ['cvxpy', 'torch_geometric', 'torchaudio', 'matplotlib', "
            "'sklearn', 'shapiq']; print([m for m in heavy if m in sys.modules])")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_unknown_attribute_raises():
    with pytest.raises(AttributeError, match="no attribute 'nope'"):
        udl.nope  # noqa: B018


def test_cli_info_json(capsys):
    assert cli.main(["info", "--json"]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["build"]["version"] == udl.__version__
    assert info["native_ops"] == udl.native_ops()
    assert info["devices"][0] == "cpu"


def test_cli_without_command_prints_help(capsys):
    assert cli.main([]) == 2
    assert "usage: udl" in capsys.readouterr().out


def test_report_unknown_section_is_a_clear_error(tmp_path, capsys):
    assert cli.main(["report", "--only", "no-such-section", "--out", str(tmp_path)]) == 2
    assert "unknown section(s) ['no-such-section']" in capsys.readouterr().err


@pytest.fixture
def _temporary_sections():
    import udl.report as report

    before = dict(report._REGISTRY)
    yield
    report._REGISTRY.clear()
    report._REGISTRY.update(before)


@pytest.mark.usefixtures("_temporary_sections")
def test_report_writes_html_json_and_isolates_failures(tmp_path):
    @section("_test_ok", title="Test section", order=999)
    def _ok(ctx: Context) -> SectionResult:
        import matplotlib.pyplot as plt

        res = SectionResult(summary="a <summary> & more")
        fig, ax = plt.subplots()
        ax.plot([0, 1], [1, 0])
        res.add_figure(ctx.savefig(fig, "test_fig.png"), "a line")
        res.add_table("T", ["a", "b"], [[1, 2.5]])
        res.add_claim("x holds", paper="1", ours="1.0", holds=True)
        res.numbers["answer"] = torch.tensor(42.0)
        assert ctx.pick(quick="q", full="f") == "q"
        return res

    @section("_test_broken", title="Broken section", order=998)
    def _broken(ctx: Context) -> SectionResult:
        raise RuntimeError("boom")

    results = run_report(tmp_path, quick=True, only=["build", "_test_ok", "_test_broken"],
                         show_progress=False)
    secs = results["sections"]
    assert list(secs) == ["build", "_test_broken", "_test_ok"]  # sorted by order
    assert secs["_test_broken"]["status"] == "failed" and "boom" in secs["_test_broken"]["error"]
    assert secs["_test_ok"]["status"] == "ok"
    saved = json.loads((tmp_path / "results.json").read_text())
    assert saved["sections"]["_test_ok"]["numbers"]["answer"] == 42.0
    assert (tmp_path / "test_fig.png").stat().st_size > 1000
    page = (tmp_path / "index.html").read_text()
    assert "a &lt;summary&gt; &amp; more" in page  # escaped
    assert '<img src="test_fig.png"' in page
    assert "This section failed" in page
    assert secs["build"]["numbers"]["num_native_ops"] == len(udl.native_ops())


def test_bench_helpers(tmp_path):
    calls = []
    t = time_fn(lambda: calls.append(1), repeat=3, warmup=2)
    assert t >= 0 and len(calls) == 5
    row = BenchRow("m", "case", "udl", "peer", ours_s=0.5, peer_s=2.0, goal=">= 2x")
    assert row.ratio == pytest.approx(4.0)
    table = format_table([row])
    assert "4.00x" in table and "peer/udl" in table
    path = save_rows([row], tmp_path / "r.json")
    assert json.loads(path.read_text())["rows"][0]["ratio"] == pytest.approx(4.0)


def test_bench_unknown_method_is_a_clear_error(capsys):
    assert cli.main(["bench", "--only", "no-such-method"]) == 2
    assert "no benchmarks for ['no-such-method']" in capsys.readouterr().err


def test_brec_data_ships_with_the_package():
    from udl.data.brec import load_brec

    pairs = load_brec(["basic", "cfi"])
    assert len(pairs) == 160
    assert pairs[0].index == 0 and pairs[-1].index == 359
    assert all(p.g1.number_of_nodes() == p.g2.number_of_nodes() for p in pairs)
    with pytest.raises(ValueError, match="unknown"):
        load_brec(["nope"])
