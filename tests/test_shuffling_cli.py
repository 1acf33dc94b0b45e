"""``udl shuffle simulate`` / ``udl shuffle train`` (single process; spawning is tested elsewhere)."""

from __future__ import annotations

import json

from udl.cli import main


def test_cli_simulate(capsys):
    assert main(["shuffle", "simulate", "-K", "16", "32", "--seeds", "20", "-M", "2"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["K"] == [16, 32] and len(out["final_error"]) == 2
    assert out["slope_K"]["theory"] == -2.0


def test_cli_train_matches_simulator_and_resumes(tmp_path, capsys):
    args = ["shuffle", "train", "--problem", "skewed", "-N", "8", "-B", "2", "-K", "2",
            "--lr", "0.05", "--compare-sim", "--checkpoint", str(tmp_path / "ck"),
            "--out", str(tmp_path / "r.json")]
    assert main(args) == 0
    first = json.loads((tmp_path / "r.json").read_text())
    assert first["max_abs_diff_vs_simulator"] < 1e-12 and first["epochs_run"] == 2
    args[args.index("-K") + 1] = "3"  # continue the same run for one more epoch
    assert main(args) == 0
    second = json.loads((tmp_path / "r.json").read_text())
    assert second["resumed_from"] == 2 and second["epochs_run"] == 3
    assert second["max_abs_diff_vs_simulator"] < 1e-12
    capsys.readouterr()


def test_cli_bad_input(capsys):
    assert main(["shuffle", "train", "--problem", "skewed", "-N", "8", "-B", "3"]) == 2
    assert "B must divide N" in capsys.readouterr().err
    assert main(["shuffle", "train", "--problem", "hetero", "-N", "8"]) == 2  # M=1: needs even M
    assert "even" in capsys.readouterr().err


def test_cli_train_divergence_is_reported(capsys):
    args = ["shuffle", "train", "--problem", "skewed", "-N", "8", "-B", "1", "-K", "10",
            "--lr", "1e6", "--x0", "-1"]
    assert main(args) == 2
    assert "non-finite loss at epoch" in capsys.readouterr().err
