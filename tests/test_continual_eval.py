"""KNN evaluation, accuracy-matrix metrics and CKA."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import udl.continual as C

pytestmark = pytest.mark.usefixtures("one_thread")


def _knn_brute(bank, bank_y, query, k, t):
    bank = bank / np.linalg.norm(bank, axis=1, keepdims=True)
    query = query / np.linalg.norm(query, axis=1, keepdims=True)
    classes = sorted(set(bank_y.tolist()))
    preds = []
    for q in query:
        sims = bank @ q
        order = np.argsort(-sims, kind="stable")[:k]
        score = {c: 0.0 for c in classes}
        for i in order:
            score[bank_y[i]] += math.exp(sims[i] / t)
        preds.append(max(classes, key=lambda c: (score[c], -c)))
    return np.array(preds)


@pytest.mark.parametrize("k", [1, 5, 50])
def test_knn_matches_brute_force(k):
    g = torch.Generator().manual_seed(k)
    centers = torch.randn(4, 8, generator=g)
    bank_y = torch.randint(0, 4, (60,), generator=g) * 3 + 7  # arbitrary label values
    bank = centers[(bank_y - 7) // 3] + 0.8 * torch.randn(60, 8, generator=g)
    qy = torch.randint(0, 4, (40,), generator=g) * 3 + 7
    query = centers[(qy - 7) // 3] + 0.8 * torch.randn(40, 8, generator=g)
    pred = C.knn_predict(bank, bank_y, query, k=k, temperature=0.1)
    ref = _knn_brute(bank.double().numpy(), bank_y.numpy(), query.double().numpy(), k, 0.1)
    assert (pred.numpy() == ref).mean() >= 0.975  # float32 near-ties may differ
    acc = C.knn_accuracy(bank, bank_y, query, qy, k=k)
    assert acc == pytest.approx(100 * (ref == qy.numpy()).mean(), abs=2.6)


def test_knn_caps_k_and_handles_empty():
    bank = torch.tensor([[1.0, 0.0], [0.0, 1.0], [0.9, 0.1]])
    y = torch.tensor([0, 1, 0])
    q = torch.tensor([[1.0, 0.05]])
    assert C.knn_predict(bank, y, q, k=200).tolist() == [0]  # k capped at |bank| = 3
    assert C.knn_predict(bank, y, torch.empty(0, 2)).numel() == 0
    assert math.isnan(C.knn_accuracy(bank, y, torch.empty(0, 2), torch.empty(0, dtype=torch.long)))
    with pytest.raises(ValueError, match="empty"):
        C.knn_predict(torch.empty(0, 2), torch.empty(0, dtype=torch.long), q)
    with pytest.raises(ValueError, match="temperature"):
        C.knn_predict(bank, y, q, temperature=0.0)
    with pytest.raises(ValueError, match="k must"):
        C.knn_predict(bank, y, q, k=0)
    with pytest.raises(ValueError, match="feature sizes"):
        C.knn_predict(bank, y, torch.ones(1, 3))


def test_metrics_on_hand_made_matrix():
    a = [[90.0, 40.0, 30.0],
         [70.0, 95.0, 35.0],
         [80.0, 85.0, 92.0]]
    m = C.ContinualMetrics.from_matrix(a)
    assert m.average_accuracy() == pytest.approx((80 + 85 + 92) / 3)
    assert m.average_accuracy(after=1) == pytest.approx((70 + 95) / 2)
    # paper: max over all rows (incl. pre-learning) minus final, over tasks 0..T-2
    assert m.forgetting() == pytest.approx(((90 - 80) + (95 - 85)) / 2)
    # first-reference: a[i,i] - a[T,i]
    assert m.forgetting(reference="first") == pytest.approx(((90 - 80) + (95 - 85)) / 2)
    b = [[60.0, 99.0, 0.0],
         [50.0, 70.0, 0.0],
         [55.0, 65.0, 80.0]]
    m = C.ContinualMetrics.from_matrix(b)
    assert m.forgetting() == pytest.approx(((60 - 55) + (99 - 65)) / 2)  # 99 is pre-learning
    assert m.forgetting(include_pre_learning=False) == pytest.approx(((60 - 55) + (70 - 65)) / 2)
    assert m.forgetting(reference="first") == pytest.approx(((60 - 55) + (70 - 65)) / 2)
    assert m.forgetting(after=1) == pytest.approx(60 - 50)
    assert math.isnan(m.forgetting(after=0))
    d = m.to_dict()
    assert C.ContinualMetrics.from_dict(d).matrix.equal(m.matrix)
    with pytest.raises(ValueError, match="reference"):
        m.forgetting(reference="last")
    with pytest.raises(ValueError, match="square"):
        C.ContinualMetrics.from_matrix([[1.0, 2.0]])


def test_metrics_update_and_only_final_row():
    m = C.ContinualMetrics(3)
    m.update(2, [90.0, 80.0, 70.0])
    assert m.average_accuracy() == pytest.approx(80.0)
    assert math.isnan(m.forgetting())  # nothing measured before the end (e.g. Multitask)
    with pytest.raises(ValueError, match="trained"):
        m.update(3, [1.0])


def test_metrics_plot():
    import matplotlib

    matplotlib.use("Agg")
    m = C.ContinualMetrics.from_matrix(torch.rand(4, 4) * 100)
    ax = m.plot(title="x")
    assert ax.get_title() == "x"


def test_linear_cka_properties():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(50, 10, generator=g)
    q, _ = torch.linalg.qr(torch.randn(10, 10, generator=g))
    assert C.linear_cka(x, x) == pytest.approx(1.0)
    assert C.linear_cka(x, 3 * x @ q + 2) == pytest.approx(1.0)  # orthogonal + scale + shift
    y = torch.randn(50, 7, generator=g)
    xc, yc = (x - x.mean(0)).double(), (y - y.mean(0)).double()
    ref = (yc.T @ xc).norm() ** 2 / ((xc.T @ xc).norm() * (yc.T @ yc).norm())
    assert C.linear_cka(x, y) == pytest.approx(ref.item())
    assert 0 <= C.linear_cka(x, y) < 0.6
    with pytest.raises(ValueError, match="same N"):
        C.linear_cka(x, y[:10])


def test_layerwise_cka_same_and_different_models():
    torch.manual_seed(0)
    a = C.SmallCNN(1, 4, 8)
    b = C.SmallCNN(1, 4, 8)
    b.load_state_dict(a.state_dict())
    x = torch.rand(32, 1, 8, 8)
    same = C.layerwise_cka(a, b, x)
    assert list(same) == ["layer1", "layer2", "layer3"]
    assert all(v == pytest.approx(1.0) for v in same.values())
    c = C.SmallCNN(1, 4, 8)
    diff = C.layerwise_cka(a, c, x)
    assert all(0 <= v <= 1 + 1e-9 for v in diff.values())
    assert min(diff.values()) < 0.999
    with pytest.raises(ValueError, match="not a module"):
        C.layerwise_cka(a, c, x, layers=["nope"])
