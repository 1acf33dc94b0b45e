"""Backbones, projector/predictor heads and the SSL / supervised models used by UCL.

Every model exposes ``backbone`` (input -> (N, feat_dim) features, what the KNN evaluation and
SI use) and ``feat_dim``. SSL models implement ``ssl_loss(view1, view2) -> (loss, feats1)`` so
the strategies can treat SimSiam and Barlow Twins alike.
"""

from __future__ import annotations

from torch import Tensor, nn

from udl.continual.losses import BarlowTwinsLoss, simsiam_loss

__all__ = ["SmallCNN", "resnet18_cifar", "projection_mlp", "prediction_mlp", "SSLModel",
           "SimSiam", "BarlowTwins", "Classifier"]


class SmallCNN(nn.Module):
    """A small conv encoder for CPU runs: 3 conv-BN-ReLU blocks (stride 1, 2, 2) + global pool.

    Input (N, in_channels, H, W) with H, W ≥ 4 -> output (N, feat_dim).
    """

    def __init__(self, in_channels: int = 1, width: int = 32, feat_dim: int = 128) -> None:
        super().__init__()
        if in_channels <= 0 or width <= 0 or feat_dim <= 0:
            raise ValueError("in_channels, width and feat_dim must be positive")
        self.feat_dim = feat_dim
        self.layer1 = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False),
                                    nn.BatchNorm2d(width), nn.ReLU(inplace=True))
        self.layer2 = nn.Sequential(nn.Conv2d(width, 2 * width, 3, 2, 1, bias=False),
                                    nn.BatchNorm2d(2 * width), nn.ReLU(inplace=True))
        self.layer3 = nn.Sequential(nn.Conv2d(2 * width, feat_dim, 3, 2, 1, bias=False),
                                    nn.BatchNorm2d(feat_dim), nn.ReLU(inplace=True))
        self.pool = nn.AdaptiveAvgPool2d(1)

    def forward(self, x: Tensor) -> Tensor:
        if x.dim() != 4:
            raise ValueError(f"x must be (N, C, H, W); got shape {tuple(x.shape)}")
        return self.pool(self.layer3(self.layer2(self.layer1(x)))).flatten(1)


def resnet18_cifar(in_channels: int = 3) -> nn.Module:
    """torchvision ResNet-18 with the CIFAR stem (3×3 stride-1 first conv, no max-pool), fc
    removed: (N, in_channels, H, W) -> (N, 512). ``.feat_dim`` is set to 512."""
    from torchvision.models import resnet18

    net = resnet18(weights=None)
    net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=3, stride=1, padding=1, bias=False)
    net.maxpool = nn.Identity()
    net.fc = nn.Identity()
    net.feat_dim = 512
    return net


def projection_mlp(in_dim: int, proj_dim: int = 2048, layers: int = 2) -> nn.Sequential:
    """UCL projector: ``layers-1`` × (Linear+BN+ReLU) then Linear+BN, all of width ``proj_dim``."""
    if layers < 1:
        raise ValueError(f"layers must be >= 1, got {layers}")
    mods: list[nn.Module] = []
    d = in_dim
    for _ in range(layers - 1):
        mods += [nn.Linear(d, proj_dim, bias=False), nn.BatchNorm1d(proj_dim), nn.ReLU(inplace=True)]
        d = proj_dim
    mods += [nn.Linear(d, proj_dim, bias=False), nn.BatchNorm1d(proj_dim)]
    return nn.Sequential(*mods)


def prediction_mlp(proj_dim: int = 2048, pred_dim: int = 512) -> nn.Sequential:
    """SimSiam predictor: Linear(proj→pred)+BN+ReLU, then Linear(pred→proj)."""
    return nn.Sequential(nn.Linear(proj_dim, pred_dim, bias=False), nn.BatchNorm1d(pred_dim),
                         nn.ReLU(inplace=True), nn.Linear(pred_dim, proj_dim))


def _feat_dim(backbone: nn.Module, feat_dim: int | None) -> int:
    d = feat_dim if feat_dim is not None else getattr(backbone, "feat_dim", None)
    if d is None:
        raise ValueError("backbone has no `feat_dim` attribute: pass feat_dim= explicitly")
    return int(d)


def _check_views(view1: Tensor, view2: Tensor) -> None:
    if view1.shape != view2.shape:
        raise ValueError(f"view1 and view2 must have the same shape; got {tuple(view1.shape)} "
                         f"and {tuple(view2.shape)}")


class SSLModel(nn.Module):
    """Base class: a backbone plus heads, trained with ``ssl_loss(view1, view2)``."""

    backbone: nn.Module
    feat_dim: int

    def ssl_loss(self, view1: Tensor, view2: Tensor) -> tuple[Tensor, Tensor]:
        """Loss on a pair of views (N, C, H, W) and the backbone features (N, feat_dim) of view1."""
        raise NotImplementedError

    def features(self, x: Tensor) -> Tensor:
        """Backbone features (N, feat_dim) — the representation evaluated by KNN."""
        return self.backbone(x)


class SimSiam(SSLModel):
    """SimSiam (Chen & He 2021) with the UCL heads.

    Args:
        backbone: module mapping (N, C, H, W) -> (N, feat_dim).
        proj_dim: projector width (2048 in the paper).
        pred_dim: predictor bottleneck (512 in the paper).
        proj_layers: number of projector layers (2 in UCL).
        feat_dim: backbone output size if the backbone has no ``feat_dim`` attribute.
    """

    def __init__(self, backbone: nn.Module, proj_dim: int = 2048, pred_dim: int = 512,
                 proj_layers: int = 2, feat_dim: int | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.feat_dim = _feat_dim(backbone, feat_dim)
        self.projector = projection_mlp(self.feat_dim, proj_dim, proj_layers)
        self.predictor = prediction_mlp(proj_dim, pred_dim)

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        """Returns dict with ``f1, f2`` (N, feat_dim), ``z1, z2`` (N, proj), ``p1, p2`` (N, proj)."""
        _check_views(view1, view2)
        # Separate passes, as in SimSiam: each view gets its own BatchNorm statistics.
        f1, f2 = self.backbone(view1), self.backbone(view2)
        z1, z2 = self.projector(f1), self.projector(f2)
        return {"f1": f1, "f2": f2, "z1": z1, "z2": z2,
                "p1": self.predictor(z1), "p2": self.predictor(z2)}

    def ssl_loss(self, view1: Tensor, view2: Tensor) -> tuple[Tensor, Tensor]:
        out = self(view1, view2)
        return simsiam_loss(out["p1"], out["p2"], out["z1"], out["z2"]), out["f1"]


class BarlowTwins(SSLModel):
    """Barlow Twins (Zbontar et al. 2021) with the UCL projector (same as SimSiam's).

    Args:
        backbone: module mapping (N, C, H, W) -> (N, feat_dim).
        proj_dim: projector width.
        lambda_: off-diagonal weight (5e-3).
        proj_layers: projector depth (2 in UCL).
        scale: loss scale (1 in UCL).
    """

    def __init__(self, backbone: nn.Module, proj_dim: int = 2048, lambda_: float = 5e-3,
                 proj_layers: int = 2, scale: float = 1.0, feat_dim: int | None = None) -> None:
        super().__init__()
        self.backbone = backbone
        self.feat_dim = _feat_dim(backbone, feat_dim)
        self.projector = projection_mlp(self.feat_dim, proj_dim, proj_layers)
        self.criterion = BarlowTwinsLoss(lambda_, scale=scale)

    def forward(self, view1: Tensor, view2: Tensor) -> dict[str, Tensor]:
        """Returns dict with ``f1, f2`` (N, feat_dim) and ``z1, z2`` (N, proj_dim)."""
        _check_views(view1, view2)
        f1, f2 = self.backbone(view1), self.backbone(view2)  # separate BN statistics per view
        return {"f1": f1, "f2": f2, "z1": self.projector(f1), "z2": self.projector(f2)}

    def ssl_loss(self, view1: Tensor, view2: Tensor) -> tuple[Tensor, Tensor]:
        out = self(view1, view2)
        return self.criterion(out["z1"], out["z2"]), out["f1"]


class Classifier(nn.Module):
    """Backbone + linear head for the supervised (SCL) baselines: (N, C, H, W) -> (N, classes)."""

    def __init__(self, backbone: nn.Module, num_classes: int, feat_dim: int | None = None) -> None:
        super().__init__()
        if num_classes < 2:
            raise ValueError(f"num_classes must be >= 2, got {num_classes}")
        self.backbone = backbone
        self.feat_dim = _feat_dim(backbone, feat_dim)
        self.num_classes = num_classes
        self.head = nn.Linear(self.feat_dim, num_classes)

    def forward(self, x: Tensor) -> Tensor:
        return self.head(self.backbone(x))

    def features(self, x: Tensor) -> Tensor:
        return self.backbone(x)
