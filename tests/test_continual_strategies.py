"""Strategies (SI accumulation, DER, supervised), streams, trainer: smoke, resume, DDP."""

from __future__ import annotations

import math

import pytest
import torch
from torch import nn

import udl.continual as C

pytestmark = pytest.mark.usefixtures("one_thread")


class _Quadratic(C.SSLModel):
    """Toy 'SSL' model: loss = Σ (w - target)², independent of the views."""

    def __init__(self, target: torch.Tensor) -> None:
        super().__init__()
        self.backbone = nn.Linear(target.numel(), 1, bias=False)
        self.feat_dim = 1
        self.target = target

    def ssl_loss(self, view1, view2):
        w = self.backbone.weight.view(-1)
        return ((w - self.target) ** 2).sum(), self.backbone(view1.flatten(1))


def test_si_importance_accumulation_on_toy_problem():
    torch.manual_seed(0)
    lr, c, xi = 0.1, 0.5, 0.01
    model = _Quadratic(torch.tensor([1.0, -2.0, 0.5]))
    w0 = model.backbone.weight.detach().view(-1).clone()
    opt = torch.optim.SGD(model.parameters(), lr=lr)
    si = C.SI(model, opt, c=c, xi=xi)
    v = torch.zeros(2, 3)
    # task 0: plain SGD on the quadratic; the path integral is Σ lr·g² per parameter
    si.begin_task(0)
    w = w0.clone()
    omega = torch.zeros(3)
    for _ in range(5):
        g = 2 * (w - model.target)
        omega += g * (lr * g)
        w = w - lr * g
        si.observe(v, v, v)
    torch.testing.assert_close(model.backbone.weight.detach().view(-1), w)
    torch.testing.assert_close(si.omega[0].view(-1), omega)
    si.end_task(0)
    big = omega / ((w - w0) ** 2 + xi)
    torch.testing.assert_close(si.importance[0].view(-1), big)
    assert all(o.abs().sum() == 0 for o in si.omega)  # reset
    # task 1: a new target; the step adds the penalty gradient 2cΩ(θ-θ*)
    model.target = torch.tensor([-1.0, 0.0, 2.0])
    si.begin_task(1)
    anchor = w.clone()
    omega1 = torch.zeros(3)
    for _ in range(3):
        g_task = 2 * (w - model.target)
        pen = c * (big * (w - anchor) ** 2).sum()
        total = si.observe(v, v, v)
        expected_total = ((w - model.target) ** 2).sum() + pen
        assert total.item() == pytest.approx(expected_total.item(), rel=1e-5)
        new_w = w - lr * (g_task + 2 * c * big * (w - anchor))
        omega1 += -g_task * (new_w - w)  # the path integral uses the task gradient only
        w = new_w
    torch.testing.assert_close(model.backbone.weight.detach().view(-1), w)
    torch.testing.assert_close(si.omega[0].view(-1), omega1)
    si.end_task(1)
    torch.testing.assert_close(si.importance[0].view(-1), big + omega1 / ((w - anchor) ** 2 + xi))
    with pytest.raises(ValueError, match="xi"):
        C.SI(model, c=1.0, xi=0.0)


def test_der_stores_features_and_distils():
    torch.manual_seed(0)
    model = C.SimSiam(C.SmallCNN(1, 4, 16), proj_dim=16, pred_dim=8)
    der = C.DER(model, buffer=16, alpha=0.5)
    der.begin_task(0)
    x = torch.rand(8, 1, 8, 8)
    der.observe(x, x.flip(-1), x)
    assert set(der.buffer.keys) == {"x", "feat"} and der.buffer["feat"].shape == (8, 16)
    loss = der.observe(x, x.flip(-1), x)
    assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="alpha"):
        C.DER(model, alpha=-1.0)


def test_supervised_strategies_need_labels_and_classifier():
    torch.manual_seed(0)
    clf = C.Classifier(C.SmallCNN(1, 4, 16), num_classes=4)
    x = torch.rand(6, 1, 8, 8)
    for strat in (C.SupervisedFinetune(clf), C.SupervisedDER(clf, buffer=4)):
        with pytest.raises(ValueError, match="labels are required"):
            strat.observe(x, x, x)
        loss = strat.observe(x, x, x, torch.tensor([0, 1, 2, 3, 0, 1]))
        assert torch.isfinite(loss)
    with pytest.raises(ValueError, match="Classifier"):
        C.SupervisedFinetune(C.SimSiam(C.SmallCNN(1, 4, 16), 8, 4))
    with pytest.raises(ValueError, match="SSL model"):
        C.Finetune(clf)
    with pytest.raises(ValueError, match="labels must have shape"):
        C.SupervisedFinetune(clf).observe(x, x, x, torch.tensor([0, 1]))
    with pytest.raises(ValueError, match="at least 2"):
        C.SupervisedFinetune(clf).observe(x[:1], x[:1], x[:1], torch.tensor([0]))


def test_split_tasks_and_streams():
    x = torch.rand(40, 1, 4, 4)
    y = torch.arange(8).repeat(5)
    tasks = C.split_tasks((x, y), 4, seed=3)
    assert len(tasks) == 4 and all(len(t.classes) == 2 and len(t) == 10 for t in tasks)
    assert sorted(c for t in tasks for c in t.classes) == list(range(8))
    tx, ty = tasks[1].tensors()
    assert set(ty.tolist()) == set(tasks[1].classes) and tx.shape == (10, 1, 4, 4)
    fixed = C.split_tasks((x, y), 2, class_order=[7, 6, 5, 4, 3, 2, 1, 0])
    assert fixed[0].classes == (7, 6, 5, 4)
    with pytest.raises(ValueError, match="one class"):
        C.split_tasks((x, y), 8)
    with pytest.raises(ValueError, match="cannot be split"):
        C.split_tasks((x, y), 3)
    with pytest.raises(ValueError, match="permutation"):
        C.split_tasks((x, y), 2, class_order=[0, 1, 2])
    with pytest.raises(ValueError, match="num_tasks"):
        C.split_tasks((x, y), 0)
    # a generic torch Dataset goes through Subset
    ds = torch.utils.data.TensorDataset(x, y)
    assert len(C.split_tasks(ds, 2)[0]) == 20
    s = C.glyphs_stream(num_tasks=5, seed=1, size=16, train_per_class=6, test_per_class=3)
    assert s.num_tasks == 5 and s.in_channels == 1 and s.image_size == 16
    assert [t.classes for t in s.train] == [t.classes for t in s.test]
    d = C.digits_stream(num_tasks=5)
    assert d.num_classes == 10 and d.image_size == 8
    with pytest.raises(FileNotFoundError, match="never downloads"):
        C.folder_stream("cifar10", "/nonexistent/folder")


def _tiny_setup(method: str, seed: int = 0, init_seed: int | None = None):
    torch.manual_seed(seed if init_seed is None else init_seed)
    stream = C.glyphs_stream(num_tasks=2, seed=seed, size=12, glyph_size=4, upscale=2,
                             num_classes=4, train_per_class=16, test_per_class=8)
    strat = C.make_strategy(method, backbone=C.SmallCNN(1, 4, 16), num_classes=4, proj_dim=16,
                            pred_dim=8, buffer_size=16)
    return stream, strat


@pytest.mark.parametrize("method", ["finetune", "lump", "der", "si", "multitask", "sup_finetune",
                                    "sup_der"])
def test_two_task_smoke_run_trains_everything(method):
    stream, strat = _tiny_setup(method)
    before = {n: p.detach().clone() for n, p in strat.model.named_parameters()}
    res = C.train(strat, stream, epochs_per_task=1, batch_size=8, knn_k=5, progress=False)
    moved = [n for n, p in strat.model.named_parameters() if not torch.equal(before[n], p)]
    assert set(moved) == set(before), f"untrained: {set(before) - set(moved)}"
    til, cil = res.metrics["til"], res.metrics["cil"]
    assert all(math.isfinite(v) for v in res.losses)
    assert 0 <= til.average_accuracy() <= 100 and 0 <= cil.average_accuracy() <= 100
    if method == "multitask":
        assert len(res.losses) == 1 and torch.isnan(til.matrix[0]).all()
    else:
        assert not torch.isnan(til.matrix).any()
        assert torch.isnan(cil.matrix[0, 1])  # class-IL: task 1 not seen after task 0
        assert math.isfinite(til.forgetting())


def test_checkpoint_resume_equals_uninterrupted(tmp_path):
    stream, strat = _tiny_setup("lump", seed=1)
    full = C.train(strat, stream, epochs_per_task=2, batch_size=8, knn_k=5, progress=False,
                   seed=4)
    stream, strat1 = _tiny_setup("lump", seed=1)
    C.train(strat1, stream, epochs_per_task=2, batch_size=8, knn_k=5, progress=False, seed=4,
            checkpoint_dir=tmp_path, max_tasks=1)
    assert sorted(p.name for p in tmp_path.glob("task_*.pt")) == ["task_000.pt"]
    stream, strat2 = _tiny_setup("lump", seed=1, init_seed=99)  # different init: everything must be restored
    resumed = C.train(strat2, stream, epochs_per_task=2, batch_size=8, knn_k=5, progress=False,
                      seed=4, checkpoint_dir=tmp_path)
    for (n, a), b in zip(strat.model.state_dict().items(), strat2.model.state_dict().values()):
        torch.testing.assert_close(a, b, rtol=0, atol=0, msg=n)
    assert torch.equal(strat.buffer["x"], strat2.buffer["x"])
    torch.testing.assert_close(full.metrics["til"].matrix, resumed.metrics["til"].matrix,
                               equal_nan=True)
    # a checkpoint from another configuration is refused
    stream, other = _tiny_setup("der", seed=1)
    with pytest.raises(ValueError, match="checkpoint"):
        C.train(other, stream, epochs_per_task=1, batch_size=8, progress=False,
                checkpoint_dir=tmp_path)


def test_trainer_bad_input_and_controls():
    stream, strat = _tiny_setup("finetune")
    with pytest.raises(ValueError, match="batch_size"):
        C.train(strat, stream, batch_size=1)
    with pytest.raises(ValueError, match="distributed"):
        C.train(strat, stream, distributed=True)
    with pytest.raises(ValueError, match="mode"):
        C.evaluate(strat.features, stream, 0, modes=("xyz",))
    ctrl = C.evaluate_frozen(lambda x: x.flatten(1), stream, k=5)
    assert not torch.isnan(ctrl["til"].matrix).any()
    assert ctrl["til"].forgetting() == pytest.approx(0.0)  # a frozen encoder forgets nothing in TIL


def test_distributed_single_process_group(tmp_path):
    import torch.distributed as dist

    if not dist.is_available():
        pytest.skip("torch.distributed unavailable")
    dist.init_process_group("gloo", init_method=f"file://{tmp_path}/pg", rank=0, world_size=1)
    try:
        stream, strat = _tiny_setup("lump")
        res = C.train(strat, stream, epochs_per_task=1, batch_size=8, knn_k=5, progress=False,
                      distributed=True)
        assert math.isfinite(res.metrics["til"].average_accuracy())
    finally:
        dist.destroy_process_group()


def test_cifar_folder_loaders_read_the_python_archives(tmp_path):
    import pickle

    import numpy as np

    d10 = tmp_path / "cifar-10-batches-py"
    d10.mkdir()
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(d10 / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (20, 3072), dtype=np.uint8),
                         b"labels": [i % 10 for i in range(20)]}, f)
    s = C.folder_stream("cifar10", tmp_path, seed=0)
    assert s.num_tasks == 5 and s.in_channels == 3 and s.image_size == 32
    x, y = s.train[0].tensors()
    assert x.shape == (20, 3, 32, 32) and 0 <= x.min() and x.max() <= 1
    assert s.augment.mean is not None  # CIFAR views are normalised
    d100 = tmp_path / "c100" / "cifar-100-python"
    d100.mkdir(parents=True)
    for name in ("train", "test"):
        with open(d100 / name, "wb") as f:
            pickle.dump({b"data": rng.integers(0, 256, (40, 3072), dtype=np.uint8),
                         b"fine_labels": [i % 20 for i in range(40)]}, f)
    s = C.folder_stream("cifar100", tmp_path / "c100", num_tasks=4)
    assert [len(t.classes) for t in s.train] == [5, 5, 5, 5]
