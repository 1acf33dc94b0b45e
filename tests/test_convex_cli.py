"""udl convex fit / certify (command line)."""

from __future__ import annotations

import pytest
import torch

from udl.cli import main


def test_fit_then_certify(tmp_path, capsys):
    pytest.importorskip("cvxpy")
    g = torch.Generator().manual_seed(0)
    X = torch.randn(10, 2, dtype=torch.float64, generator=g)
    y = X.abs().sum(1) - 1
    csv = tmp_path / "toy.csv"
    rows = ["x1,x2,y"] + [",".join(f"{v:.10f}" for v in (*X[i].tolist(), float(y[i])))
                          for i in range(10)]
    csv.write_text("\n".join(rows) + "\n")
    out = tmp_path / "net.pt"
    assert main(["convex", "fit", "--data", str(csv), "--beta", "0.1", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert '"exact": true' in text and out.exists()
    assert main(["convex", "certify", "--weights", str(out)]) == 0
    assert "GLOBALLY OPTIMAL" in capsys.readouterr().out
    blob = torch.load(out, weights_only=True)
    blob["W"] = blob["W"] * 1.1
    torch.save(blob, out)
    assert main(["convex", "certify", "--weights", str(out)]) == 1
    assert "NOT globally optimal" in capsys.readouterr().out


def test_cli_errors(capsys):
    assert main(["convex", "fit", "--data", "/nonexistent.csv", "--beta", "1"]) == 2
    assert main(["convex", "fit", "--data", "sklearn:nope", "--beta", "1"]) == 2
    assert main(["convex", "fit", "--data", "sklearn:diabetes", "--beta", "-1"]) == 2
    assert "beta" in capsys.readouterr().err
