"""Unsupervised continual learning (Madaan et al., ICLR 2022, "Representational Continuity for
Unsupervised Continual Learning"): SimSiam / Barlow Twins trained over a task sequence with
LUMP (Lifelong Unsupervised Mixup) and the UCL baselines (Finetune, SI, DER, Multitask) plus
supervised counterparts, evaluated by weighted KNN with the full accuracy matrix and forgetting.

Everything is plain PyTorch: losses, models, :class:`ReservoirBuffer`, :func:`lump_mix` and the
strategies can be used in your own loop; :func:`train` is the ready-made loop.
"""

from __future__ import annotations

from udl.continual.augment import BatchAugment, cifar_augment, digits_augment, glyph_augment
from udl.continual.buffer import ReservoirBuffer
from udl.continual.data import (
    LabelledTensors,
    Task,
    TaskStream,
    cifar10_folder,
    cifar100_folder,
    digits_stream,
    folder_stream,
    glyphs_stream,
    make_glyphs,
    make_stream,
    split_tasks,
    tiny_imagenet_folder,
)
from udl.continual.evaluation import (
    ContinualMetrics,
    extract_features,
    knn_accuracy,
    knn_predict,
    layerwise_cka,
    linear_cka,
)
from udl.continual.losses import (
    BarlowTwinsLoss,
    SimSiamLoss,
    barlow_twins_loss,
    negative_cosine,
    simsiam_loss,
)
from udl.continual.models import (
    BarlowTwins,
    Classifier,
    SimSiam,
    SmallCNN,
    SSLModel,
    prediction_mlp,
    projection_mlp,
    resnet18_cifar,
)
from udl.continual.strategies import (
    DER,
    LUMP,
    SI,
    Finetune,
    LUMPMixer,
    Multitask,
    Strategy,
    SupervisedDER,
    SupervisedFinetune,
    lump_mix,
    sample_lambda,
)
from udl.continual.trainer import TrainResult, evaluate, evaluate_frozen, task_tensors, train

__all__ = [
    "BatchAugment", "cifar_augment", "digits_augment", "glyph_augment",
    "ReservoirBuffer",
    "LabelledTensors", "Task", "TaskStream", "cifar10_folder", "cifar100_folder", "digits_stream",
    "folder_stream", "glyphs_stream", "make_glyphs", "make_stream", "split_tasks",
    "tiny_imagenet_folder",
    "ContinualMetrics", "extract_features", "knn_accuracy", "knn_predict", "layerwise_cka",
    "linear_cka",
    "BarlowTwinsLoss", "SimSiamLoss", "barlow_twins_loss", "negative_cosine", "simsiam_loss",
    "BarlowTwins", "Classifier", "SimSiam", "SmallCNN", "SSLModel", "prediction_mlp",
    "projection_mlp", "resnet18_cifar",
    "DER", "LUMP", "SI", "Finetune", "LUMPMixer", "Multitask", "Strategy", "SupervisedDER",
    "SupervisedFinetune", "lump_mix", "sample_lambda",
    "TrainResult", "evaluate", "evaluate_frozen", "task_tensors", "train",
    "make_strategy",
]


def make_strategy(method: str, ssl: str = "simsiam", backbone=None, *, num_classes: int = 10,
                  in_channels: int = 1, proj_dim: int = 2048, pred_dim: int = 512,
                  buffer_size: int = 256, alpha: float = 0.4, si_c: float = 1.0,
                  si_xi: float = 0.1, lr: float = 0.03, device: str = "cpu",
                  **kw) -> Strategy:
    """Build a strategy by name: ``finetune``, ``lump``, ``der``, ``si``, ``multitask``
    (SSL ``simsiam`` or ``barlowtwins``), ``sup_finetune``, ``sup_der`` (supervised).

    ``backbone`` defaults to ``SmallCNN(in_channels)``; the model is moved to ``device``.
    """
    import torch

    bb = backbone if backbone is not None else SmallCNN(in_channels)
    method = method.lower()
    if method in ("sup_finetune", "sup_der"):
        model = Classifier(bb, num_classes).to(device)
        if method == "sup_finetune":
            return SupervisedFinetune(model, lr=lr, **kw)
        return SupervisedDER(model, buffer=buffer_size, lr=lr, **kw)
    ssl = ssl.lower()
    if ssl == "simsiam":
        model = SimSiam(bb, proj_dim=proj_dim, pred_dim=pred_dim)
    elif ssl in ("barlowtwins", "barlow"):
        model = BarlowTwins(bb, proj_dim=proj_dim)
    else:
        raise ValueError(f"ssl must be 'simsiam' or 'barlowtwins', got {ssl!r}")
    model = model.to(torch.device(device))
    if method == "finetune":
        return Finetune(model, lr=lr, **kw)
    if method == "multitask":
        return Multitask(model, lr=lr, **kw)
    if method == "lump":
        return LUMP(model, buffer=buffer_size, alpha=alpha, lr=lr, **kw)
    if method == "der":
        return DER(model, buffer=buffer_size, alpha=alpha, lr=lr, **kw)
    if method == "si":
        return SI(model, c=si_c, xi=si_xi, lr=lr, **kw)
    raise ValueError(f"unknown method {method!r}; choose from finetune, lump, der, si, "
                     f"multitask, sup_finetune, sup_der")
