"""A port of the reference notebook's *computation* (neuralcollapse/neuralcollapse), for benchmarks
and comparison tests only.

It reproduces the way the notebook computes its quantities, not its training loop: float32
tensors, a means pass and a covariance pass over the batches, per-class b_c x d x d outer-product
tensors summed into Sigma_W, scipy ``svds(Sigma_B, k=C-1)`` for Sigma_B^+ (rank forced to C-1),
a per-sample Python loop for the nearest-class-centre prediction, and ``torch.inverse`` for the
least-squares classifier. Use :mod:`udl.collapse` for real work; this module exists to measure it
against.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch

__all__ = ["notebook_metrics"]


def notebook_metrics(batches: Sequence[tuple[torch.Tensor, torch.Tensor]], weight: torch.Tensor,
                     bias: torch.Tensor, num_classes: int, lam: float) -> dict[str, float]:
    """NC1 (no /C, as the notebook), NC2 equinorm/max-angle, NC3, NC4, accuracy and the MSE terms.

    Args:
        batches: list of ``(features (B, d) float32, labels (B,))``, iterated twice.
        weight: (C, d) classifier weight; bias: (C,).
        num_classes: C; lam: the decomposition's lambda.
    """
    from scipy.sparse.linalg import svds

    c_num = num_classes
    w = weight.detach().float()
    b = bias.detach().float()
    d = w.shape[1]
    dev = w.device
    counts = [0] * c_num
    sums = [torch.zeros(d, device=dev) for _ in range(c_num)]
    for h, y in batches:                                   # pass "Mean"
        for c in range(c_num):
            idx = (y == c).nonzero(as_tuple=True)[0]
            if len(idx) == 0:
                continue
            sums[c] += h[idx].float().sum(0)
            counts[c] += len(idx)
    means = [sums[c] / counts[c] for c in range(c_num)]
    m = torch.stack(means).T                               # d x C
    mu_g = m.mean(1, keepdim=True)

    sigma_w = torch.zeros(d, d, device=dev)
    correct = ncc_match = 0
    for h, y in batches:                                   # pass "Cov"
        for c in range(c_num):
            idx = (y == c).nonzero(as_tuple=True)[0]
            if len(idx) == 0:
                continue
            hc = h[idx].float()
            z = hc - means[c].unsqueeze(0)
            outer = torch.matmul(z.unsqueeze(-1), z.unsqueeze(1))     # b_c x d x d
            sigma_w += outer.sum(0)
            net_pred = (hc @ w.T + b).argmax(1)
            correct += int((net_pred == c).sum())
            scores = torch.stack([torch.norm(hc[i, :] - m.T, dim=1) for i in range(hc.shape[0])])
            ncc_pred = scores.argmin(1)
            ncc_match += int((ncc_pred == net_pred).sum())
    n = sum(counts)
    sigma_w /= n

    mbar = m - mu_g
    sigma_b = mbar @ mbar.T / c_num
    eigvec, eigval, _ = svds(sigma_b.cpu().numpy(), k=c_num - 1)
    inv_sb = eigvec @ (eigvec.T / eigval[:, None])
    nc1_raw = float(torch.trace(sigma_w @ torch.from_numpy(inv_sb).float().to(dev)))

    mnorms = mbar.norm(dim=0)
    wnorms = w.norm(dim=1)
    out = {"nc1_raw": nc1_raw,
           "nc2_equinorm_means": float(mnorms.std() / mnorms.mean()),
           "nc2_equinorm_weights": float(wnorms.std() / wnorms.mean())}

    def coherence(v):
        g = v.T @ v
        g += 1.0 / (c_num - 1)
        g -= torch.diag(torch.diag(g))
        return float(g.abs().sum() / (c_num * (c_num - 1)))

    out["nc2_maxangle_means"] = coherence(mbar / mnorms)
    out["nc2_maxangle_weights"] = coherence(w.T / wnorms)
    out["nc3"] = float(((w.T / w.norm() - mbar / mbar.norm()) ** 2).sum())
    out["nc4"] = 1.0 - ncc_match / n
    out["accuracy"] = correct / n

    # least-squares classifier with the bias eliminated, torch.inverse in float32
    sigma_t = sigma_w + sigma_b
    mu = mu_g[:, 0]
    eye_d = torch.eye(d, device=dev)
    ones = torch.ones(c_num, device=dev)
    a = sigma_t + (lam / (1 + lam)) * torch.outer(mu, mu) + lam * eye_d
    w_ls = (m.T - torch.outer(ones, mu) / (1 + lam)) @ torch.inverse(a) / c_num
    b_ls = (ones / c_num - w_ls @ mu) / (1 + lam)
    l_nc1 = 0.5 * (torch.trace(w_ls @ (sigma_w + lam * eye_d) @ w_ls.T) + lam * b_ls.norm() ** 2)
    l_nc23 = 0.5 / c_num * ((w_ls @ m + b_ls[:, None] - torch.eye(c_num, device=dev)) ** 2).sum()
    second = sigma_t + torch.outer(mu, mu)
    aa = torch.zeros(d + 1, d + 1, device=dev)
    aa[:d, :d] = second
    aa[:d, d] = mu
    aa[d, :d] = mu
    aa[d, d] = 1.0
    aa += lam * torch.eye(d + 1, device=dev)
    dlt = torch.cat([w - w_ls, (b - b_ls)[:, None]], 1)
    out["L_NC1"] = float(l_nc1)
    out["L_NC23"] = float(l_nc23)
    out["L_perp"] = float(0.5 * torch.trace(dlt @ aa @ dlt.T))
    return out
