"""``udl continual run`` end to end on a tiny glyph stream."""

from __future__ import annotations

import json

import pytest

from udl.cli import main

pytestmark = pytest.mark.usefixtures("one_thread")


def test_cli_run_writes_outputs(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["continual", "run", "--method", "lump", "--ssl", "barlowtwins", "--dataset",
               "glyphs", "--tasks", "2", "--epochs", "1", "--batch-size", "16", "--image-size",
               "12", "--train-per-class", "8", "--knn-k", "5", "--out", str(out),
               "--no-progress", "--checkpoint-dir", str(tmp_path / "ckpt")])
    assert rc == 0
    assert "TIL acc" in capsys.readouterr().out
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["config"]["ssl"] == "barlowtwins" and len(metrics["losses"]) == 2
    assert len(metrics["metrics"]["til"]["matrix"]) == 2
    csv = (out / "accuracy_matrix_til.csv").read_text().strip().splitlines()
    assert len(csv) == 2 and all(len(r.split(",")) == 2 for r in csv)
    assert (out / "accuracy_matrix.png").stat().st_size > 0
    assert sorted(p.name for p in (tmp_path / "ckpt").glob("task_*.pt")) == ["task_000.pt",
                                                                             "task_001.pt"]


def test_cli_folder_dataset_needs_root(tmp_path, capsys):
    rc = main(["continual", "run", "--dataset", "cifar10-folder", "--out", str(tmp_path)])
    assert rc == 2
    assert "--root" in capsys.readouterr().err
    rc = main(["continual", "run", "--dataset", "cifar10-folder", "--root",
               str(tmp_path / "missing"), "--out", str(tmp_path)])
    assert rc == 2
    assert "never downloads" in capsys.readouterr().err
