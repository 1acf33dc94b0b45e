"""Models with DiffStride: CIFAR-style pre-activation ResNet-18, an audio classifier, conversion of
torchvision-style models, and the differentiable complexity estimate."""

from __future__ import annotations

import math
from collections.abc import Sequence

import torch
from torch import nn

from udl.diffstride.functional import spectral_operator
from udl.diffstride.layers import DiffStride1d, DiffStride2d, FixedSpectralPool2d, _DiffStrideNd

__all__ = ["resnet18", "PreActResNet", "convert", "AudioNet", "complexity", "learned_strides"]

_POOLINGS = ("diffstride", "strided", "spectral")


def _check_pooling(pooling: str) -> None:
    if pooling not in _POOLINGS:
        raise ValueError(f"pooling must be one of {_POOLINGS}, got {pooling!r}")


def _make_pool(pooling: str, stride: float, smoothness: float) -> nn.Module | None:
    if pooling == "diffstride":
        return DiffStride2d(strides=(stride, stride), smoothness=smoothness)
    if pooling == "spectral" and stride != 1:
        return FixedSpectralPool2d(strides=(stride, stride))
    return None


class _PreActBlock(nn.Module):
    """BN-ReLU-conv3x3-[pool]-BN-ReLU-conv3x3; a projection block shares its pool between the
    main branch and the conv1x1 shortcut so both sides keep equal shapes."""

    def __init__(self, cin: int, cout: int, stride: float, pooling: str, smoothness: float,
                 projection: bool) -> None:
        super().__init__()
        conv_stride = int(stride) if pooling == "strided" else 1
        if pooling == "strided" and conv_stride != stride:
            raise ValueError(f"pooling='strided' needs integer strides, got {stride}")
        self.bn1 = nn.BatchNorm2d(cin)
        self.conv1 = nn.Conv2d(cin, cout, 3, conv_stride, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(cout)
        self.conv2 = nn.Conv2d(cout, cout, 3, 1, 1, bias=False)
        self.pool = _make_pool(pooling, stride, smoothness) if projection else None
        self.shortcut = nn.Conv2d(cin, cout, 1, conv_stride, bias=False) if projection else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = torch.relu(self.bn1(x))
        sc = x if self.shortcut is None else self.shortcut(out)
        out = self.conv1(out)
        if self.pool is not None:
            out, sc = self.pool(out), self.pool(sc)
        out = self.conv2(torch.relu(self.bn2(out)))
        return out + sc


class PreActResNet(nn.Module):
    """CIFAR-style pre-activation ResNet-18 (see :func:`resnet18`)."""

    def __init__(self, num_classes: int, in_channels: int = 3, pooling: str = "diffstride",
                 strides: Sequence[float] = (1, 1, 2, 2, 2), width: int = 64,
                 smoothness: float = 4.0) -> None:
        super().__init__()
        _check_pooling(pooling)
        strides = tuple(float(s) for s in strides)
        if len(strides) != 5 or any(not (math.isfinite(s) and s >= 1) for s in strides):
            raise ValueError(f"strides must be 5 numbers >= 1 (stem, 4 groups), got {strides}")
        if num_classes < 1 or in_channels < 1 or width < 1:
            raise ValueError("num_classes, in_channels and width must be >= 1")
        self.pooling = pooling
        stem_stride = int(strides[0]) if pooling == "strided" else 1
        if pooling == "strided" and stem_stride != strides[0]:
            raise ValueError(f"pooling='strided' needs integer strides, got {strides}")
        self.stem = nn.Conv2d(in_channels, width, 3, stem_stride, 1, bias=False)
        # DiffStride after the stem even at stride 1: the stem can learn to downsample.
        self.stem_pool = _make_pool(pooling, strides[0], smoothness)
        chans = [width, 2 * width, 4 * width, 8 * width]
        layers, cin = [], width
        for g, (cout, s) in enumerate(zip(chans, strides[1:])):
            projection = g > 0 or s != 1 or cin != cout
            layers.append(nn.Sequential(
                _PreActBlock(cin, cout, s, pooling, smoothness, projection),
                _PreActBlock(cout, cout, 1, pooling, smoothness, False)))
            cin = cout
        self.layers = nn.Sequential(*layers)
        self.bn = nn.BatchNorm2d(cin)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """``Tensor[B, in_channels, H, W]`` -> logits ``Tensor[B, num_classes]``."""
        x = self.stem(x)
        if self.stem_pool is not None:
            x = self.stem_pool(x)
        x = torch.relu(self.bn(self.layers(x)))
        return self.fc(x.mean(dim=(2, 3)))


def resnet18(num_classes: int, in_channels: int = 3, pooling: str = "diffstride",
             strides: Sequence[float] = (1, 1, 2, 2, 2), width: int = 64,
             smoothness: float = 4.0) -> PreActResNet:
    """CIFAR-style pre-activation ResNet-18 with a choice of down-sampling.

    ``strides`` = (stem, group1, group2, group3, group4). ``pooling``:

    * ``"diffstride"``: 3x3 stem conv -> DiffStride2d(strides[0]); each projection block runs its
      convs at stride 1 and one DiffStride2d (initialised at the group's stride) shared by the main
      branch and the 1x1 shortcut (4 layers, 8 learnable strides with the default strides);
    * ``"strided"``: the same strides in the convolutions (integers only);
    * ``"spectral"``: :class:`FixedSpectralPool2d` in place of DiffStride (fixed strides).

    ``width`` is the stem width (64 in the paper; a narrow width is fine for small experiments).
    """
    return PreActResNet(num_classes, in_channels, pooling, strides, width, smoothness)


def convert(model: nn.Module, smoothness: float = 4.0, pools: bool = True) -> nn.Module:
    """Replace, in place, the strided convolutions (and, with ``pools``, the strided max/avg pools)
    of a torchvision-style model by stride-1 versions followed by DiffStride2d initialised at
    their stride. Inside a module with a ``downsample`` child (torchvision ResNet blocks), one
    DiffStride2d instance is shared by the main branch and the shortcut so shapes stay equal.
    Returns ``model``. Convolutions should use "same" padding (``2*padding+1 == kernel``) so that
    removing the stride keeps the map size before DiffStride.
    """

    def strided_conv(m: nn.Module) -> bool:
        return isinstance(m, nn.Conv2d) and tuple(m.stride) != (1, 1)

    def strided_pool(m: nn.Module) -> bool:
        if not pools or not isinstance(m, (nn.MaxPool2d, nn.AvgPool2d)):
            return False
        s = m.stride if isinstance(m.stride, tuple) else (m.stride, m.stride)
        return tuple(s) != (1, 1)

    def make(stride) -> DiffStride2d:
        s = stride if isinstance(stride, tuple) else (stride, stride)
        return DiffStride2d(strides=(float(s[0]), float(s[1])), smoothness=smoothness)

    def replace(parent: nn.Module, shared: DiffStride2d | None) -> None:
        local_shared = shared
        if shared is None and hasattr(parent, "downsample") and isinstance(parent.downsample, nn.Module):
            convs = [m for m in parent.modules() if strided_conv(m)]
            if convs:
                local_shared = make(convs[0].stride)
        for name, child in list(parent.named_children()):
            if strided_conv(child):
                stride = tuple(child.stride)
                child.stride = (1, 1)
                pool = local_shared if local_shared is not None else make(stride)
                setattr(parent, name, nn.Sequential(child, pool))
            elif strided_pool(child):
                s = child.stride if isinstance(child.stride, tuple) else (child.stride, child.stride)
                setattr(parent, name, make(s))
            else:
                replace(child, local_shared)

    replace(model, None)
    return model


class _FixedSpectralPool1d(nn.Module):
    def __init__(self, stride: float) -> None:
        super().__init__()
        self.stride = float(stride)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        n = x.shape[-1]
        n_out = min(n, max(int(n // self.stride), 2))
        w = torch.ones(n_out // 2 + 1, dtype=x.dtype, device=x.device)
        return x @ spectral_operator(n, n_out, w).T


class AudioNet(nn.Module):
    """Audio classifier with DiffStride down-sampling.

    * ``frontend="mel"``: ``torchaudio.transforms.MelSpectrogram`` -> log -> a 2-D CNN of ``blocks``
      [conv3x3-BN-ReLU-pool] stages on the (mel, time) image;
    * ``frontend="waveform"``: a 1-D CNN on the raw waveform with :class:`DiffStride1d`.

    ``pooling``: ``"diffstride"`` (learnable), ``"strided"`` (conv stride) or ``"spectral"`` (fixed
    spectral crop). Input ``Tensor[B, T]`` or ``Tensor[B, 1, T]`` waveforms; output logits.
    """

    def __init__(self, num_classes: int, sample_rate: int = 16000, frontend: str = "mel",
                 pooling: str = "diffstride", n_mels: int = 64, n_fft: int = 512,
                 hop_length: int = 160, width: int = 32, blocks: int = 4, stride: float = 2.0,
                 smoothness: float = 4.0) -> None:
        super().__init__()
        _check_pooling(pooling)
        if frontend not in ("mel", "waveform"):
            raise ValueError(f"frontend must be 'mel' or 'waveform', got {frontend!r}")
        self.frontend_kind = frontend
        two_d = frontend == "mel"
        if two_d:
            import torchaudio

            self.frontend = torchaudio.transforms.MelSpectrogram(
                sample_rate=sample_rate, n_fft=n_fft, hop_length=hop_length, n_mels=n_mels)
        else:
            self.frontend = nn.Identity()
        conv = nn.Conv2d if two_d else nn.Conv1d
        bn = nn.BatchNorm2d if two_d else nn.BatchNorm1d
        stages, cin = [], 1
        for b in range(blocks):
            cout = width * 2 ** min(b, 3)
            cs = int(stride) if pooling == "strided" else 1
            kernel = 3 if two_d else 9
            stage = [conv(cin, cout, kernel, cs, kernel // 2, bias=False), bn(cout), nn.ReLU()]
            if pooling == "diffstride":
                stage.append(DiffStride2d((stride, stride), smoothness) if two_d
                             else DiffStride1d(stride, smoothness))
            elif pooling == "spectral":
                stage.append(FixedSpectralPool2d((stride, stride)) if two_d
                             else _FixedSpectralPool1d(stride))
            stages.append(nn.Sequential(*stage))
            cin = cout
        self.features = nn.Sequential(*stages)
        self.fc = nn.Linear(cin, num_classes)

    def forward(self, wave: torch.Tensor) -> torch.Tensor:
        if wave.dim() == 3 and wave.shape[1] == 1:
            wave = wave[:, 0]
        if wave.dim() != 2:
            raise ValueError(f"wave must be Tensor[B, T] or Tensor[B, 1, T], got {tuple(wave.shape)}")
        if self.frontend_kind == "mel":
            x = torch.log(self.frontend(wave) + 1e-6).unsqueeze(1)  # (B, 1, n_mels, frames)
        else:
            x = wave.unsqueeze(1)
        x = self.features(x)
        return self.fc(x.flatten(2).mean(-1))


def learned_strides(model: nn.Module) -> dict[str, list[float]]:
    """Current strides of every DiffStride layer of ``model``, by module name."""
    out = {}
    seen = set()
    for name, m in model.named_modules():
        if isinstance(m, _DiffStrideNd) and id(m) not in seen:
            seen.add(id(m))
            out[name] = [float(v) for v in m._strides_full().detach().cpu()]
    return out


def complexity(model: nn.Module, input_shape: Sequence[int]) -> torch.Tensor:
    """Differentiable estimate of the multiply-adds of one forward pass of ``model`` on one input
    of shape ``input_shape`` (without the batch dimension), as a function of the learned strides.

    Runs the model once (eval mode, no grad) on zeros to record every convolution / linear layer
    and the map sizes. Each DiffStride layer maps an axis of (relaxed) length ``n`` to the
    continuous ``min(n, max(n/S, 2) + 2R)`` (a smooth version of the integer ``2F+1``), and a
    convolution costs ``MACs x (relaxed area / actual area)`` of its input map. Add
    ``lam * complexity(model, shape) / complexity_at_init`` to the loss to trade accuracy for
    compute (the paper's regularisation).
    """
    params = list(model.parameters())
    device = params[0].device if params else torch.device("cpu")
    relaxed: dict[tuple[int, int, int], torch.Tensor] = {}
    total: list[torch.Tensor] = []

    def rel(nd: int, axis: int, n: int) -> torch.Tensor:
        return relaxed.get((nd, axis, n), torch.tensor(float(n), device=device))

    def hook(mod, inputs, output):
        x = inputs[0] if inputs else None
        if not isinstance(x, torch.Tensor) or not isinstance(output, torch.Tensor):
            return
        with torch.enable_grad():
            if isinstance(mod, _DiffStrideNd):
                nd = mod._nd
                s = mod._strides_full()
                for a in range(nd):
                    n_in, n_out = x.shape[2 + a], output.shape[2 + a]
                    nc = rel(nd, a, n_in)
                    relaxed[(nd, a, n_out)] = torch.minimum(
                        nc, torch.clamp(nc / s[a].to(nc.dtype), min=2.0) + 2 * mod.smoothness)
                return
            if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
                nd = x.dim() - 2
                per_out = (mod.in_channels // mod.groups) * math.prod(mod.kernel_size)
                macs = output[0].numel() * per_out
                factor = torch.ones((), device=device)
                for a in range(nd):
                    n = x.shape[2 + a]
                    factor = factor * rel(nd, a, n) / n
                total.append(macs * factor)
                for a in range(nd):
                    n_in, n_out = x.shape[2 + a], output.shape[2 + a]
                    if n_out != n_in and (nd, a, n_out) not in relaxed:
                        relaxed[(nd, a, n_out)] = rel(nd, a, n_in) * (n_out / n_in)
                return
            if isinstance(mod, nn.Linear):
                total.append(torch.tensor(float(output[0].numel() * mod.in_features), device=device))
                return
            if x.dim() == output.dim() and x.dim() in (3, 4):  # pools and other resamplers
                nd = x.dim() - 2
                for a in range(nd):
                    n_in, n_out = x.shape[2 + a], output.shape[2 + a]
                    if n_out != n_in and (nd, a, n_out) not in relaxed:
                        relaxed[(nd, a, n_out)] = rel(nd, a, n_in) * (n_out / n_in)

    handles = []
    for m in model.modules():
        if isinstance(m, _DiffStrideNd) or not list(m.children()):
            handles.append(m.register_forward_hook(hook))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros((1, *input_shape), device=device))
    finally:
        for h in handles:
            h.remove()
        model.train(was_training)
    if not total:
        return torch.zeros((), device=device)
    return torch.stack([t.to(torch.float32) for t in total]).sum()
