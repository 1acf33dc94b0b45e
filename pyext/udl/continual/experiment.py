"""One-call experiments on a stream (used by the report and the CLI): train a named method with
a given seed and return its accuracy matrices, plus the controls (random encoder, raw pixels)."""

from __future__ import annotations

import dataclasses
from typing import Any

import torch

from udl.continual.data import TaskStream, digits_stream, folder_stream, glyphs_stream
from udl.continual.models import SmallCNN, resnet18_cifar
from udl.continual.trainer import evaluate_frozen, train

__all__ = ["ExperimentConfig", "METHODS", "CONTROLS", "make_stream_by_name", "run_method",
           "run_control", "run_job", "run_jobs"]

#: name -> (strategy method, ssl); "random" and "pixels" are the controls.
METHODS: dict[str, tuple[str, str]] = {
    "finetune": ("finetune", "simsiam"),
    "si": ("si", "simsiam"),
    "der": ("der", "simsiam"),
    "lump": ("lump", "simsiam"),
    "multitask": ("multitask", "simsiam"),
    "finetune_barlow": ("finetune", "barlowtwins"),
    "lump_barlow": ("lump", "barlowtwins"),
    "sup_finetune": ("sup_finetune", ""),
    "sup_der": ("sup_der", ""),
}
CONTROLS = ("random", "pixels")


@dataclasses.dataclass
class ExperimentConfig:
    """Sizes of a run. The defaults are the CPU-scale glyph setting of the report."""

    dataset: str = "glyphs"
    root: str | None = None
    num_tasks: int = 5
    image_size: int = 20
    train_per_class: int = 100
    test_per_class: int = 50
    backbone: str = "small"  # "small" (SmallCNN) or "resnet18"
    width: int = 8
    feat_dim: int = 32
    proj_dim: int = 64
    pred_dim: int = 32
    epochs_per_task: int = 5
    batch_size: int = 50
    lr: float = 0.1
    sup_lr: float = 0.01  # supervised baselines (CE with a lower step size, as SCL uses its own)
    buffer_size: int = 128
    alpha: float = 0.4
    si_c: float = 1.0
    si_xi: float = 0.1
    knn_k: int = 20
    temperature: float = 0.1
    device: str = "cpu"
    glyph_kw: dict[str, Any] = dataclasses.field(default_factory=dict)


def make_stream_by_name(cfg: ExperimentConfig, seed: int) -> TaskStream:
    """The task stream of ``cfg.dataset`` (``glyphs``, ``digits``, ``cifar10``, ``cifar100``,
    ``tinyimagenet``; the last three from ``cfg.root``); ``seed`` sets the class order."""
    if cfg.dataset == "glyphs":
        return glyphs_stream(cfg.num_tasks, seed, cfg.image_size, cfg.train_per_class,
                             cfg.test_per_class, **cfg.glyph_kw)
    if cfg.dataset == "digits":
        return digits_stream(cfg.num_tasks, seed)
    name = cfg.dataset.removesuffix("-folder")
    if cfg.root is None:
        raise ValueError(f"dataset {cfg.dataset!r} needs a local folder (root=...)")
    return folder_stream(name, cfg.root, cfg.num_tasks, seed)


def _backbone(cfg: ExperimentConfig, in_channels: int) -> torch.nn.Module:
    if cfg.backbone == "resnet18":
        return resnet18_cifar(in_channels)
    if cfg.backbone == "small":
        return SmallCNN(in_channels, cfg.width, cfg.feat_dim)
    raise ValueError(f"backbone must be 'small' or 'resnet18', got {cfg.backbone!r}")


def run_method(name: str, cfg: ExperimentConfig, seed: int, stream: TaskStream | None = None,
               progress: bool = False, checkpoint_dir: str | None = None,
               ssl: str | None = None) -> dict[str, Any]:
    """Train method ``name`` (a key of :data:`METHODS`) with ``seed`` (init, data order and,
    for a fresh stream, class order); ``ssl`` overrides the SSL objective (``simsiam`` or
    ``barlowtwins``). Returns ``TrainResult.to_dict()`` plus ``name``/``seed``."""
    from udl.continual import make_strategy

    if name not in METHODS:
        raise ValueError(f"unknown method {name!r}; choose from {sorted(METHODS)}")
    stream = stream if stream is not None else make_stream_by_name(cfg, seed)
    method, default_ssl = METHODS[name]
    torch.manual_seed(seed)
    strat = make_strategy(method, ssl or default_ssl or "simsiam", _backbone(cfg, stream.in_channels),
                          num_classes=stream.num_classes, proj_dim=cfg.proj_dim,
                          pred_dim=cfg.pred_dim, buffer_size=cfg.buffer_size, alpha=cfg.alpha,
                          si_c=cfg.si_c, si_xi=cfg.si_xi, device=cfg.device,
                          lr=cfg.sup_lr if method.startswith("sup_") else cfg.lr)
    res = train(strat, stream, cfg.epochs_per_task, cfg.batch_size, knn_k=cfg.knn_k,
                temperature=cfg.temperature, seed=seed, progress=progress,
                checkpoint_dir=checkpoint_dir)
    return {"name": name, "seed": seed, **res.to_dict()}


def run_control(name: str, cfg: ExperimentConfig, seed: int,
                stream: TaskStream | None = None) -> dict[str, Any]:
    """Controls without training: ``random`` (randomly initialised backbone, eval mode) or
    ``pixels`` (raw pixels as features)."""
    stream = stream if stream is not None else make_stream_by_name(cfg, seed)
    if name == "pixels":
        def fn(x):
            return stream.augment.normalize(x).flatten(1)
    elif name == "random":
        torch.manual_seed(seed)
        bb = _backbone(cfg, stream.in_channels).to(cfg.device).eval()

        def fn(x):
            return bb(stream.augment.normalize(x))
    else:
        raise ValueError(f"unknown control {name!r}; choose from {CONTROLS}")
    metrics = evaluate_frozen(fn, stream, k=cfg.knn_k, temperature=cfg.temperature,
                              device=cfg.device)
    summary: dict[str, float] = {}
    for mode, m in metrics.items():
        summary[f"{mode}_acc"] = m.average_accuracy()
        summary[f"{mode}_fgt"] = m.forgetting()
        summary[f"{mode}_fgt_first"] = m.forgetting(reference="first")
    return {"name": name, "seed": seed, "metrics": {k: m.to_dict() for k, m in metrics.items()},
            "losses": [], "seconds": 0.0, "summary": summary}


def run_job(job: tuple[str, dict[str, Any], int]) -> dict[str, Any]:
    """``(name, config as dict, seed)`` -> result dict; one thread (for process pools)."""
    name, cfg_dict, seed = job
    torch.set_num_threads(1)
    cfg = ExperimentConfig(**cfg_dict)
    if name in CONTROLS:
        return run_control(name, cfg, seed)
    return run_method(name, cfg, seed)


def run_jobs(jobs: list[tuple[str, dict[str, Any], int]], workers: int = 1,
             progress=None) -> list[dict[str, Any]]:
    """Run jobs in this process (``workers=1``) or a spawn process pool; results in job order.
    ``progress`` wraps an iterable (e.g. tqdm) to show completion."""
    wrap = progress or (lambda it, **kw: it)
    if workers <= 1:
        n = torch.get_num_threads()
        try:
            return [run_job(j) for j in wrap(jobs, total=len(jobs), desc="continual runs")]
        finally:
            torch.set_num_threads(n)
    import concurrent.futures as cf
    import multiprocessing as mp

    with cf.ProcessPoolExecutor(workers, mp_context=mp.get_context("spawn")) as pool:
        futures = [pool.submit(run_job, j) for j in jobs]
        for _ in wrap(cf.as_completed(futures), total=len(futures), desc="continual runs"):
            pass
        return [f.result() for f in futures]
