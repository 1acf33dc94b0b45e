"""An explicit continuous path from any network to a global minimum along which ``F`` never
increases: balance → merge → prune → interpolate in convex space."""

from __future__ import annotations

import dataclasses

import torch

from udl.convex._core import _objective, as_weights, check_beta, check_data, check_loss

__all__ = ["PathResult", "path_to_global", "plot_path"]


@dataclasses.dataclass
class PathResult:
    """Networks along the path (all of width ``width``), their objectives and leg labels."""

    networks: list[tuple[torch.Tensor, torch.Tensor]]
    values: list[float]
    legs: list[str]
    width: int
    optimum: float

    @property
    def is_non_increasing(self) -> bool:
        v = torch.tensor(self.values)
        return bool((v[1:] <= v[:-1] + 1e-9 * v.abs().max()).all())

    def max_step(self) -> float:
        """Largest parameter jump between consecutive networks (shrinks as ``steps`` grows)."""
        out = 0.0
        for (W0, a0), (W1, a1) in zip(self.networks[:-1], self.networks[1:]):
            out = max(out, float(torch.sqrt(((W1 - W0) ** 2).sum() + ((a1 - a0) ** 2).sum())))
        return out


def _to_neurons(u: torch.Tensor, s: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Balanced neurons of blocks ``u [k, d]`` with signs ``s [k]`` (continuous, 0 at u = 0)."""
    nrm = u.norm(dim=1)
    root = nrm.sqrt()
    W = torch.where(nrm[:, None] > 0, u / root.clamp_min(1e-300)[:, None], torch.zeros_like(u))
    return W, s * root


def path_to_global(net, X, y, beta: float, steps: int = 20, loss: str = "squared", result=None,
                   solver: str | None = None) -> PathResult:
    """A continuous, non-increasing path of networks from ``net`` to a global minimum.

    Legs (each sampled at ``steps`` points): (1) **balance** every neuron geometrically
    (``c(t) = c*^t``), shrinking wasted neurons (``α = 0``, ``w = 0`` or dead) to zero;
    (2) **merge** each (pattern, sign) group into one neuron (``u_a + t Σ u_b``, ``(1 − t) u_b``:
    the fit is constant, the penalty convex in ``t`` and lower at the end); (3) **prune** linearly
    dependent fits (``u_j ← (1 − τ c_j) u_j`` with ``Σ c_j s_j D_j X u_j = 0``: the penalty falls
    linearly); (4) **interpolate** ``(1 − t) u_cur + t u*`` towards the convex optimum carried by
    extra neurons (``F`` is convex in ``t`` and minimal at ``t = 1``). The network is padded with
    ``m*`` zero neurons from the start (``F`` unchanged), so the width is ``m + m*``.

    Args:
        net: the start network. X, y, beta, loss: the problem.
        steps: points per leg (``≥ 2``).
        result: a :class:`~udl.convex.ConvexResult` with the global optimum (default: solve
            with exact patterns).
    """
    from udl.convex.model import ConvexReLU
    from udl.convex.optimality import canonicalize

    beta = check_beta(beta)
    check_loss(loss)
    if steps < 2:
        raise ValueError(f"steps must be >= 2, got {steps}")
    X, y = check_data(X, y, loss)
    W0, a0 = as_weights(net)
    if W0.shape[1] != X.shape[1]:
        raise ValueError(f"net has input dimension {W0.shape[1]} but X has {X.shape[1]} columns")
    if result is None:
        import importlib.util

        if solver is None:
            solver = "clarabel" if importlib.util.find_spec("cvxpy") is not None else "torch"
        result = ConvexReLU(beta, loss=loss, patterns="exact", solver=solver).fit(X, y)
    Ws, As = canonicalize(result.to_network(as_module=False), X=X)
    k_star = Ws.shape[0]
    m, d = W0.shape
    M = m + k_star
    pad_W = torch.zeros(k_star, d, dtype=torch.float64)
    pad_a = torch.zeros(k_star, dtype=torch.float64)
    ts = torch.linspace(0, 1, steps, dtype=torch.float64)
    nets: list[tuple[torch.Tensor, torch.Tensor]] = []
    legs: list[str] = []

    def add(W, a, leg):
        nets.append((torch.cat([W, pad_W if leg != "interpolate" else W.new_zeros(0, d)]),
                     torch.cat([a, pad_a if leg != "interpolate" else a.new_zeros(0)])))
        legs.append(leg)

    # ---- leg 1: balance (and shrink wasted neurons)
    wn, an = W0.norm(dim=1), a0.abs()
    dead = (torch.relu(X @ W0.T).abs().sum(dim=0) == 0) | (wn == 0) | (an == 0)
    cstar = torch.where(dead, torch.ones_like(wn), (an / wn.clamp_min(1e-300)).sqrt())
    for t in ts:
        c = cstar ** t
        shrink = torch.where(dead, 1 - t, torch.ones_like(t))
        add(W0 * (c * shrink)[:, None], a0 / c * shrink, "balance")
    live = ~dead
    s = torch.sign(a0)
    u = torch.where(live[:, None], W0 * an[:, None], torch.zeros_like(W0))
    # ---- leg 2: merge each (pattern, sign) group into its first member
    groups: dict[tuple[bytes, float], list[int]] = {}
    for j in torch.nonzero(live).flatten().tolist():
        key = ((X @ u[j] >= 0).numpy().tobytes(), float(s[j]))
        groups.setdefault(key, []).append(j)
    lead_of = {g[0]: g[1:] for g in groups.values()}
    for t in ts:
        ut = u.clone()
        for lead, rest in lead_of.items():
            if rest:
                ut[lead] = u[lead] + t * u[rest].sum(dim=0)
                ut[rest] = (1 - t) * u[rest]
        add(*_to_neurons(ut, s), "merge")
    for lead, rest in lead_of.items():
        if rest:
            u[lead] = u[lead] + u[rest].sum(dim=0)
            u[rest] = 0
    # ---- leg 3: prune linearly dependent fits
    for _ in range(m):
        act = torch.nonzero(u.norm(dim=1) > 0).flatten()
        if len(act) <= 1:
            break
        fits = torch.stack([s[j] * torch.relu(X @ u[j]) for j in act.tolist()], dim=1)  # [n, k]
        _, sv, Vh = torch.linalg.svd(fits, full_matrices=True)
        if len(act) <= X.shape[0] and float(sv[-1]) > 1e-10 * float(sv[0]):
            break
        c = Vh[-1]
        norms = u[act].norm(dim=1)
        if float(c @ norms) < 0:
            c = -c
        if not bool((c > 0).any()):
            break
        tau_star = 1.0 / float(c[c > 0].max())
        base = u.clone()
        for t in ts:
            ut = base.clone()
            ut[act] = base[act] * (1 - t * tau_star * c)[:, None]
            add(*_to_neurons(ut, s), "prune")
        u[act] = base[act] * (1 - tau_star * c).clamp_min(0)[:, None]
        u[act[torch.argmax(c)]] = 0
    # ---- leg 4: interpolate in convex space towards the optimum on the padded neurons
    u_star = Ws * As.abs()[:, None]
    s_star = torch.sign(As)
    for t in ts:
        Wc, ac = _to_neurons((1 - t) * u, s)
        Wn, an_ = _to_neurons(t * u_star, s_star)
        add(torch.cat([Wc, Wn]), torch.cat([ac, an_]), "interpolate")
    values = [_objective(Wt, at, X, y, beta, loss) for Wt, at in nets]
    return PathResult(networks=nets, values=values, legs=legs, width=M,
                      optimum=_objective(Ws, As, X, y, beta, loss))


def plot_path(path: PathResult, ax=None):
    """Plot ``F`` along the path, coloured by leg, with the global optimum as a dashed line."""
    import matplotlib.pyplot as plt

    if ax is None:
        _, ax = plt.subplots(figsize=(6, 3.5))
    colors = {"balance": "C0", "merge": "C1", "prune": "C2", "interpolate": "C3"}
    idx = list(range(len(path.values)))
    for leg, col in colors.items():
        xs = [i for i in idx if path.legs[i] == leg]
        if xs:
            ax.plot(xs, [path.values[i] for i in xs], ".-", color=col, label=leg, ms=3)
    ax.axhline(path.optimum, ls="--", color="k", lw=0.8, label="global optimum")
    ax.set_xlabel("step along the path")
    ax.set_ylabel("F(W, α)")
    ax.legend(fontsize=8)
    return ax
