"""Continual-learning strategies for SSL (UCL) and supervised (SCL) training, and LUMP mixup.

All strategies share one interface::

    strategy.begin_task(t)
    for view1, view2, raw, labels in batches:      # two augmented views + the raw inputs
        loss = strategy.observe(view1, view2, raw, labels)
    strategy.end_task(t)
    feats = strategy.features(x)                    # backbone features for KNN evaluation

``observe`` performs one optimisation step and returns the (detached, on-device) loss; it never
synchronises with the host.
"""

from __future__ import annotations

import abc
from collections.abc import Callable, Iterable
from typing import Any

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from udl.continual.buffer import ReservoirBuffer

__all__ = ["lump_mix", "sample_lambda", "LUMPMixer", "Strategy", "Finetune", "LUMP", "DER", "SI",
           "Multitask", "SupervisedFinetune", "SupervisedDER"]


# ------------------------------------------------------------------------------------ mixup
def lump_mix(x: Tensor, buffer_x: Tensor, lam: float | Tensor) -> Tensor:
    """LUMP mixup ``λ·x + (1-λ)·buffer_x`` row by row.

    Args:
        x: (B, ...) current-task inputs.
        buffer_x: (n, ...) replayed inputs with n ≤ B; when n < B (buffer smaller than the
            batch) only the first n rows of ``x`` are mixed and the rest stay clean.
        lam: mixing weight in [0, 1] (a float or a 0-d tensor on ``x``'s device).
    Returns:
        (B, ...) mixed batch (a new tensor).
    """
    if buffer_x.shape[1:] != x.shape[1:]:
        raise ValueError(f"buffer_x rows {tuple(buffer_x.shape[1:])} must match x rows "
                         f"{tuple(x.shape[1:])}")
    n = buffer_x.shape[0]
    if n > x.shape[0]:
        raise ValueError(f"buffer_x has {n} rows but x only {x.shape[0]}")
    if not isinstance(lam, Tensor) and not 0.0 <= lam <= 1.0:
        raise ValueError(f"lam must be in [0, 1], got {lam}")
    if n == 0:
        return x.clone()
    b = buffer_x.to(x.dtype)
    if isinstance(lam, Tensor):
        mixed = torch.lerp(b, x[:n], lam.to(x.dtype))  # b + λ(x − b): one fused kernel
    else:
        mixed = torch.lerp(b, x[:n], float(lam))
    return torch.cat([mixed, x[n:]]) if n < x.shape[0] else mixed


def sample_lambda(alpha: float, device: str | torch.device = "cpu") -> Tensor:
    """One λ ~ Beta(α, α) as a 0-d tensor on ``device`` (global RNG of that device)."""
    if not alpha > 0:
        raise ValueError(f"alpha must be > 0, got {alpha}")
    a = torch.tensor(float(alpha), device=device)
    return torch.distributions.Beta(a, a, validate_args=False).sample()


class LUMPMixer:
    """Lifelong Unsupervised Mixup for your own loop: mix a pair of views with the buffer.

    One λ ~ Beta(α, α) per batch, the same λ for both views. The buffer half of view 1 is the
    stored raw input passed through ``buffer_transform`` (LUMP's weak transform); the buffer half
    of view 2 is the view stored when the example entered the buffer. Use::

        v1, v2, lam = mixer.mix(view1, view2)      # before the SSL loss
        ...; optimizer.step()
        mixer.update(raw, view2)                    # reservoir update after the step

    Args:
        buffer: a :class:`ReservoirBuffer` (or a capacity to create one).
        alpha: Beta concentration α > 0 (0.4 in UCL).
        buffer_transform: callable on a raw batch (default: identity).
    """

    def __init__(self, buffer: ReservoirBuffer | int = 256, alpha: float = 0.4,
                 buffer_transform: Callable[[Tensor], Tensor] | None = None) -> None:
        if not alpha > 0:
            raise ValueError(f"alpha must be > 0, got {alpha}")
        self.buffer = buffer if isinstance(buffer, ReservoirBuffer) else ReservoirBuffer(buffer)
        self.alpha = float(alpha)
        self.buffer_transform = buffer_transform

    def mix(self, view1: Tensor, view2: Tensor, generator: torch.Generator | None = None
            ) -> tuple[Tensor, Tensor, Tensor | None]:
        """Mixed (view1, view2) and λ (``None`` while the buffer is empty)."""
        if view1.shape != view2.shape:
            raise ValueError(f"view1 and view2 must have the same shape; got "
                             f"{tuple(view1.shape)} and {tuple(view2.shape)}")
        if len(self.buffer) == 0 or view1.shape[0] == 0:
            return view1, view2, None
        s = self.buffer.sample(view1.shape[0], generator)
        bx = s["x"].to(view1.device)
        if self.buffer_transform is not None:
            bx = self.buffer_transform(bx)
        lam = sample_lambda(self.alpha, view1.device)
        return lump_mix(view1, bx, lam), lump_mix(view2, s["view2"].to(view2.device), lam), lam

    def update(self, raw: Tensor, view2: Tensor, generator: torch.Generator | None = None) -> None:
        """Offer the clean batch (raw inputs and their view 2) to the reservoir."""
        self.buffer.add(raw, generator=generator, view2=view2)


# ------------------------------------------------------------------------------ strategies
class Strategy(abc.ABC):
    """Base class. Subclasses implement :meth:`observe`.

    Args:
        model: an SSL model (``ssl_loss``, ``features``, ``backbone``) or, for supervised
            strategies, a :class:`~udl.continual.models.Classifier`.
        optimizer: default SGD(lr, momentum, weight_decay) over ``model.parameters()``.
        lr, momentum, weight_decay: for the default optimizer (UCL: 0.03, 0.9, 5e-4).
        buffer_transform: applied to raw replayed inputs before they enter the model (UCL: the
            weak augmentation); default identity.
    """

    name = "strategy"
    supervised = False
    joint = False

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                 lr: float = 0.03, momentum: float = 0.9, weight_decay: float = 5e-4,
                 buffer_transform: Callable[[Tensor], Tensor] | None = None) -> None:
        if not self.supervised and not hasattr(model, "ssl_loss"):
            raise ValueError(f"{type(self).__name__} needs an SSL model with ssl_loss() "
                             f"(SimSiam, BarlowTwins); got {type(model).__name__}")
        if self.supervised and not hasattr(model, "head"):
            raise ValueError(f"{type(self).__name__} needs a Classifier(backbone, num_classes); "
                             f"got {type(model).__name__}")
        self.model = model
        self.optimizer = optimizer or torch.optim.SGD(model.parameters(), lr=lr, momentum=momentum,
                                                      weight_decay=weight_decay)
        self.buffer_transform = buffer_transform
        self.task = -1
        self.steps = 0

    # hooks -----------------------------------------------------------------------------
    def begin_task(self, task: int) -> None:
        """Called before training task ``task``."""
        self.task = task
        self.model.train()

    def end_task(self, task: int) -> None:  # noqa: B027  (optional hook, no-op by default)
        """Called after training task ``task``."""

    @abc.abstractmethod
    def observe(self, view1: Tensor, view2: Tensor, raw: Tensor,
                labels: Tensor | None = None) -> Tensor:
        """One step on a batch: two views (B, C, H, W), the raw inputs (B, ...) and optional
        labels (B,). Returns the detached loss (0-d tensor)."""

    @torch.no_grad()
    def features(self, x: Tensor) -> Tensor:
        """Backbone features (N, D) in eval mode (for KNN)."""
        was = self.model.training
        self.model.eval()
        try:
            return self.model.features(x)
        finally:
            self.model.train(was)

    # helpers ---------------------------------------------------------------------------
    def _check(self, view1: Tensor, view2: Tensor, raw: Tensor, labels: Tensor | None) -> None:
        if view1.shape != view2.shape:
            raise ValueError(f"view1 and view2 must have the same shape; got "
                             f"{tuple(view1.shape)} and {tuple(view2.shape)}")
        if raw.shape[0] != view1.shape[0]:
            raise ValueError(f"raw must have the batch size of the views ({view1.shape[0]}); got "
                             f"{raw.shape[0]}")
        if self.supervised and labels is None:
            raise ValueError(f"{type(self).__name__} is supervised: labels are required")
        if labels is not None and labels.shape != (view1.shape[0],):
            raise ValueError(f"labels must have shape ({view1.shape[0]},); got "
                             f"{tuple(labels.shape)}")
        if view1.shape[0] < 2:
            raise ValueError("a batch needs at least 2 examples (BatchNorm / batch statistics)")

    def _replay_input(self, x: Tensor) -> Tensor:
        return self.buffer_transform(x) if self.buffer_transform is not None else x

    def _backward(self, loss: Tensor) -> None:
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        _all_reduce_grads(self.model.parameters())

    def _step(self, loss: Tensor) -> None:
        self._backward(loss)
        self.optimizer.step()
        self.steps += 1

    # state -----------------------------------------------------------------------------
    def extra_state(self) -> dict[str, Any]:
        """Strategy state beyond model and optimizer; by default the replay buffer, if any."""
        buffer = getattr(self, "buffer", None)
        return {} if buffer is None else {"buffer": buffer.state_dict()}

    def load_extra_state(self, state: dict[str, Any]) -> None:
        if "buffer" in state:
            self.buffer.load_state_dict(state["buffer"])

    def state_dict(self) -> dict[str, Any]:
        """Model, optimizer, counters and strategy state (buffers, SI importances)."""
        return {"model": self.model.state_dict(), "optimizer": self.optimizer.state_dict(),
                "task": self.task, "steps": self.steps, "extra": self.extra_state()}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.task, self.steps = state["task"], state["steps"]
        self.load_extra_state(state["extra"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}(model={type(self.model).__name__})"


def _all_reduce_grads(params: Iterable[nn.Parameter]) -> None:
    """Average gradients over the torch.distributed world (no-op when not initialised)."""
    import torch.distributed as dist

    if not (dist.is_available() and dist.is_initialized()) or dist.get_world_size() == 1:
        return
    world = dist.get_world_size()
    grads = [p.grad for p in params if p.grad is not None]
    if not grads:
        return
    flat = torch.cat([g.flatten() for g in grads])
    dist.all_reduce(flat)
    flat /= world
    off = 0
    for g in grads:
        g.copy_(flat[off:off + g.numel()].view_as(g))
        off += g.numel()


def _make_buffer(buffer: ReservoirBuffer | int) -> ReservoirBuffer:
    return buffer if isinstance(buffer, ReservoirBuffer) else ReservoirBuffer(buffer)


class Finetune(Strategy):
    """Plain SSL training on the current task (the lower bound)."""

    name = "finetune"

    def observe(self, view1, view2, raw, labels=None):
        self._check(view1, view2, raw, labels)
        loss, _ = self.model.ssl_loss(view1, view2)
        self._step(loss)
        return loss.detach()


class Multitask(Finetune):
    """Joint SSL training on the union of all tasks (the upper bound): the trainer feeds it
    the whole stream at once (``joint = True``)."""

    name = "multitask"
    joint = True


class LUMP(Strategy):
    """Lifelong Unsupervised Mixup (Madaan et al. 2022): the SSL loss on current-task views
    mixed with replayed examples, one λ ~ Beta(α, α) per batch for both views; the buffer is a
    per-step reservoir of raw inputs and their view 2.

    Args:
        model: SSL model.
        buffer: :class:`ReservoirBuffer` or its capacity (256 in UCL).
        alpha: α > 0 (0.4 in UCL).
        (other arguments as :class:`Strategy`)
    """

    name = "lump"

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                 buffer: ReservoirBuffer | int = 256, alpha: float = 0.4, **kw: Any) -> None:
        super().__init__(model, optimizer, **kw)
        self.mixer = LUMPMixer(_make_buffer(buffer), alpha, None)
        self.alpha = float(alpha)

    @property
    def buffer(self) -> ReservoirBuffer:
        return self.mixer.buffer

    def observe(self, view1, view2, raw, labels=None):
        self._check(view1, view2, raw, labels)
        self.mixer.buffer_transform = self.buffer_transform
        v1, v2, _ = self.mixer.mix(view1, view2)
        loss, _ = self.model.ssl_loss(v1, v2)
        self._step(loss)
        self.mixer.update(raw, view2)
        return loss.detach()


class DER(Strategy):
    """Dark Experience Replay adapted to SSL: ``L_ssl + α·MSE(f(buffer x), stored features)``,
    where the features of each example were recorded when it entered the buffer.

    Args:
        buffer: :class:`ReservoirBuffer` or capacity.
        alpha: distillation weight (≥ 0).
    """

    name = "der"

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                 buffer: ReservoirBuffer | int = 256, alpha: float = 0.4, **kw: Any) -> None:
        super().__init__(model, optimizer, **kw)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.buffer = _make_buffer(buffer)
        self.alpha = float(alpha)

    def observe(self, view1, view2, raw, labels=None):
        self._check(view1, view2, raw, labels)
        loss, f1 = self.model.ssl_loss(view1, view2)
        if len(self.buffer):
            s = self.buffer.sample(view1.shape[0])
            fb = self.model.features(self._replay_input(s["x"].to(view1.device)))
            loss = loss + self.alpha * F.mse_loss(fb, s["feat"].to(fb.device))
        self._step(loss)
        self.buffer.add(raw, feat=f1.detach())
        return loss.detach()


class SI(Strategy):
    """Synaptic Intelligence (Zenke et al. 2017) on the backbone weights with the SSL loss.

    During a task the path integral ``ω_k += −g_k·Δθ_k`` accumulates, with ``g`` the gradient
    of the unregularised SSL loss and ``Δθ`` the actual parameter change of the step (exact for
    any optimizer). At the end of a task ``Ω_k += ω_k / ((θ_k^end − θ_k^start)² + ξ)``, ``ω`` is
    reset and ``θ* = θ^end``. The loss is ``L_ssl + c·Σ_k Ω_k (θ_k − θ*_k)²``; its gradient is
    added analytically.

    Args:
        c: regularisation strength (≥ 0).
        xi: damping ξ > 0.
    """

    name = "si"

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                 c: float = 1.0, xi: float = 0.1, **kw: Any) -> None:
        super().__init__(model, optimizer, **kw)
        if c < 0 or not xi > 0:
            raise ValueError(f"need c >= 0 and xi > 0; got c={c}, xi={xi}")
        self.c, self.xi = float(c), float(xi)
        backbone = getattr(model, "backbone", model)
        self._names = [n for n, p in backbone.named_parameters() if p.requires_grad]
        self._params = [p for p in backbone.parameters() if p.requires_grad]
        zeros = [torch.zeros_like(p) for p in self._params]
        self.omega = [z.clone() for z in zeros]       # running path integral (this task)
        self.importance = [z.clone() for z in zeros]  # Ω
        self.anchor = [p.detach().clone() for p in self._params]  # θ*
        self.start = [p.detach().clone() for p in self._params]
        self.has_importance = False

    def begin_task(self, task):
        super().begin_task(task)
        self.start = [p.detach().clone() for p in self._params]
        for w in self.omega:
            w.zero_()

    def penalty(self) -> Tensor:
        """``c·Σ Ω (θ − θ*)²`` (0 before the first task ends)."""
        dev = self._params[0].device if self._params else "cpu"
        if not self.has_importance:
            return torch.zeros((), device=dev)
        return self.c * sum(((p - a).pow(2) * om).sum()
                            for p, a, om in zip(self._params, self.anchor, self.importance))

    def observe(self, view1, view2, raw, labels=None):
        self._check(view1, view2, raw, labels)
        loss, _ = self.model.ssl_loss(view1, view2)
        self._backward(loss)  # gradients of the unregularised loss
        before = [p.detach().clone() for p in self._params]
        grads = [p.grad.detach().clone() if p.grad is not None else torch.zeros_like(p)
                 for p in self._params]
        total = loss.detach()
        if self.has_importance:
            with torch.no_grad():
                total = total + self.penalty()
                for p, a, om in zip(self._params, self.anchor, self.importance):
                    pen = 2 * self.c * om * (p - a)
                    if p.grad is None:
                        p.grad = pen
                    else:
                        p.grad.add_(pen)
        self.optimizer.step()
        self.steps += 1
        with torch.no_grad():
            for w, g, p, b in zip(self.omega, grads, self._params, before):
                w.add_(-g * (p - b))
        return total

    def end_task(self, task):
        with torch.no_grad():
            for om, w, p, s in zip(self.importance, self.omega, self._params, self.start):
                om.add_(w / ((p - s).pow(2) + self.xi))
                w.zero_()
            self.anchor = [p.detach().clone() for p in self._params]
        self.has_importance = True

    def extra_state(self):
        return {"omega": self.omega, "importance": self.importance, "anchor": self.anchor,
                "start": self.start, "has_importance": self.has_importance}

    def load_extra_state(self, state):
        for name in ("omega", "importance", "anchor", "start"):
            setattr(self, name, [t.clone() for t in state[name]])
        self.has_importance = bool(state["has_importance"])


class SupervisedFinetune(Strategy):
    """Supervised (SCL) baseline: cross-entropy of a single-head classifier on view 1."""

    name = "sup_finetune"
    supervised = True

    def observe(self, view1, view2, raw, labels=None):
        self._check(view1, view2, raw, labels)
        loss = F.cross_entropy(self.model(view1), labels.to(view1.device))
        self._step(loss)
        return loss.detach()


class SupervisedDER(Strategy):
    """Supervised DER (Buzzega et al. 2020): ``CE + α·MSE(logits(buffer x), stored logits)``."""

    name = "sup_der"
    supervised = True

    def __init__(self, model: nn.Module, optimizer: torch.optim.Optimizer | None = None, *,
                 buffer: ReservoirBuffer | int = 256, alpha: float = 0.3, **kw: Any) -> None:
        super().__init__(model, optimizer, **kw)
        if alpha < 0:
            raise ValueError(f"alpha must be >= 0, got {alpha}")
        self.buffer = _make_buffer(buffer)
        self.alpha = float(alpha)

    def observe(self, view1, view2, raw, labels=None):
        self._check(view1, view2, raw, labels)
        logits = self.model(view1)
        loss = F.cross_entropy(logits, labels.to(view1.device))
        if len(self.buffer):
            s = self.buffer.sample(view1.shape[0])
            out = self.model(self._replay_input(s["x"].to(view1.device)))
            loss = loss + self.alpha * F.mse_loss(out, s["logits"].to(out.device))
        self._step(loss)
        self.buffer.add(raw, logits=logits.detach())
        return loss.detach()
