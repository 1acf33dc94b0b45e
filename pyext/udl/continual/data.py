"""Task streams for continual learning: class-split any labelled dataset; built-in streams.

Images are float tensors (C, H, W) in [0, 1] ("ToTensor only"): augmentation and normalisation
happen batched on the device (:mod:`udl.continual.augment`).
"""

from __future__ import annotations

import dataclasses
import pickle
from collections.abc import Callable, Sequence
from pathlib import Path

import torch
from torch import Tensor
from torch.utils.data import Dataset, Subset, TensorDataset

from udl.continual.augment import BatchAugment, cifar_augment, digits_augment, glyph_augment

__all__ = ["LabelledTensors", "Task", "TaskStream", "split_tasks", "make_stream", "make_glyphs",
           "glyphs_stream", "digits_stream", "cifar10_folder", "cifar100_folder",
           "tiny_imagenet_folder", "folder_stream", "dataset_labels"]


class LabelledTensors(Dataset):
    """In-memory image dataset: ``x`` (N, C, H, W) uint8 (0–255) or float (0–1), ``y`` (N,)."""

    def __init__(self, x: Tensor, y: Tensor) -> None:
        if x.dim() != 4:
            raise ValueError(f"x must be (N, C, H, W); got shape {tuple(x.shape)}")
        y = torch.as_tensor(y).long()
        if y.shape != (x.shape[0],):
            raise ValueError(f"y must have shape ({x.shape[0]},); got {tuple(y.shape)}")
        self.x, self.targets = x, y

    def __len__(self) -> int:
        return self.x.shape[0]

    def images(self, idx: Tensor | slice | None = None) -> Tensor:
        """Float images in [0, 1] at ``idx`` (all by default)."""
        x = self.x if idx is None else self.x[idx]
        return x.float().div_(255) if x.dtype == torch.uint8 else x.float()

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        return self.images(slice(i, i + 1))[0], int(self.targets[i])


def dataset_labels(dataset: Dataset | tuple[Tensor, Tensor]) -> Tensor:
    """The (N,) long label vector of a labelled dataset (``targets``, ``TensorDataset``, a
    ``(x, y)`` tuple, a ``Subset`` of those, or by iterating)."""
    if isinstance(dataset, tuple):
        return torch.as_tensor(dataset[1]).long()
    if isinstance(dataset, Subset):
        return dataset_labels(dataset.dataset)[torch.as_tensor(dataset.indices, dtype=torch.long)]
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[1].long()
    targets = getattr(dataset, "targets", None)
    if targets is not None:
        return torch.as_tensor(targets).long()
    return torch.as_tensor([int(dataset[i][1]) for i in range(len(dataset))], dtype=torch.long)


@dataclasses.dataclass
class Task:
    """One task of a stream: the examples of ``classes`` (a subset of ``dataset``)."""

    index: int
    classes: tuple[int, ...]
    dataset: Dataset
    indices: Tensor

    def __len__(self) -> int:
        return int(self.indices.numel())

    def tensors(self) -> tuple[Tensor, Tensor] | None:
        """``(x float (n, C, H, W), y (n,))`` when the data are in memory, else ``None``."""
        ds = self.dataset
        if isinstance(ds, LabelledTensors):
            return ds.images(self.indices), ds.targets[self.indices]
        if isinstance(ds, TensorDataset):
            x = ds.tensors[0][self.indices]
            return (x.float().div(255) if x.dtype == torch.uint8 else x.float(),
                    ds.tensors[1][self.indices].long())
        return None

    def subset(self) -> Subset:
        return Subset(self.dataset, self.indices.tolist())


def _as_dataset(dataset: Dataset | tuple[Tensor, Tensor]) -> Dataset:
    if isinstance(dataset, tuple):
        return LabelledTensors(*dataset)
    return dataset


def split_tasks(dataset: Dataset | tuple[Tensor, Tensor], num_tasks: int,
                class_order: Sequence[int] | None = None, seed: int = 0) -> list[Task]:
    """Split a labelled dataset into ``num_tasks`` tasks of disjoint, equally many classes.

    Args:
        dataset: any dataset of ``(x, y)`` items (or an ``(x, y)`` tensor pair).
        num_tasks: number of tasks T ≥ 1; the number of classes must be divisible by T and
            every task needs at least 2 classes.
        class_order: the classes in task order (default: a permutation drawn from ``seed``).
        seed: seeds the default class order.
    Returns:
        T :class:`Task` objects; task t holds classes ``order[t*k:(t+1)*k]``.
    """
    if not isinstance(num_tasks, int) or num_tasks < 1:
        raise ValueError(f"num_tasks must be a positive int, got {num_tasks!r}")
    ds = _as_dataset(dataset)
    labels = dataset_labels(ds)
    if labels.numel() == 0:
        raise ValueError("dataset is empty")
    classes = torch.unique(labels).tolist()
    if class_order is None:
        perm = torch.randperm(len(classes), generator=torch.Generator().manual_seed(seed))
        order = [classes[i] for i in perm.tolist()]
    else:
        order = [int(c) for c in class_order]
        if sorted(order) != classes:
            raise ValueError(f"class_order must be a permutation of the dataset's classes "
                             f"{classes}; got {order}")
    if len(order) % num_tasks:
        raise ValueError(f"{len(order)} classes cannot be split into num_tasks={num_tasks} "
                         f"equal tasks")
    k = len(order) // num_tasks
    if k < 2:
        raise ValueError(f"num_tasks={num_tasks} leaves {k} class per task: a task with one class "
                         f"cannot be evaluated (KNN) or trained with a classifier; use fewer tasks")
    tasks = []
    for t in range(num_tasks):
        cls = tuple(order[t * k:(t + 1) * k])
        mask = torch.isin(labels, torch.tensor(cls))
        tasks.append(Task(t, cls, ds, torch.nonzero(mask).flatten()))
    return tasks


@dataclasses.dataclass
class TaskStream:
    """Train and test tasks with the same class split, plus the augmentation for SSL views."""

    name: str
    train: list[Task]
    test: list[Task]
    augment: BatchAugment
    in_channels: int
    image_size: int
    num_classes: int

    @property
    def num_tasks(self) -> int:
        return len(self.train)

    @property
    def class_order(self) -> list[int]:
        return [c for t in self.train for c in t.classes]


def make_stream(name: str, train: Dataset | tuple[Tensor, Tensor],
                test: Dataset | tuple[Tensor, Tensor], num_tasks: int, augment: BatchAugment,
                class_order: Sequence[int] | None = None, seed: int = 0) -> TaskStream:
    """Build a :class:`TaskStream` from a train and a test dataset with the same classes."""
    tr = split_tasks(train, num_tasks, class_order, seed)
    order = [c for t in tr for c in t.classes]
    te = split_tasks(test, num_tasks, order, seed)
    x0 = _as_dataset(train)[0][0]
    return TaskStream(name, tr, te, augment, int(x0.shape[0]), int(x0.shape[-1]), len(order))


# ---------------------------------------------------------------------------------- glyphs
def _glyph_patterns(num_classes: int, glyph_size: int, seed: int) -> Tensor:
    g = torch.Generator().manual_seed(seed)
    pats: list[Tensor] = []
    while len(pats) < num_classes:
        p = (torch.rand(glyph_size, glyph_size, generator=g) < 0.5).float()
        if p.sum() < glyph_size * glyph_size * 0.3:
            continue
        # distinct up to at least 4 differing pixels from every earlier glyph
        if all((p - q).abs().sum() >= 4 for q in pats):
            pats.append(p)
    return torch.stack(pats)


def make_glyphs(num_classes: int = 10, train_per_class: int = 200, test_per_class: int = 100,
                size: int = 24, glyph_size: int = 5, upscale: int = 2, clutter: float = 0.15,
                background: float = 0.0, seed: int = 0, glyph_seed: int = 1234,
                ) -> tuple[LabelledTensors, LabelledTensors]:
    """Procedural glyph images: class c is a fixed random ``glyph_size``² binary glyph, upscaled
    ``upscale``× and pasted at a random offset on a ``size``² canvas with random clutter pixels
    (probability ``clutter``, intensity U(0.3, 1)); the glyph intensity is U(0.7, 1). With
    ``background > 0`` every image also gets a uniform background level U(0, background) (a
    nuisance that defeats raw-pixel cosine KNN; SSL with intensity jitter can learn to ignore it).

    The glyphs depend on ``glyph_seed`` only, the placements on ``seed``. Returns (train, test)
    datasets of 1-channel float images.
    """
    side = glyph_size * upscale
    if side > size:
        raise ValueError(f"glyph_size*upscale={side} does not fit on a canvas of size {size}")
    if num_classes < 2 or train_per_class < 1 or test_per_class < 0:
        raise ValueError("need num_classes >= 2, train_per_class >= 1, test_per_class >= 0")
    pats = _glyph_patterns(num_classes, glyph_size, glyph_seed)
    pats = pats.repeat_interleave(upscale, 1).repeat_interleave(upscale, 2)
    g = torch.Generator().manual_seed(seed)

    def render(per_class: int) -> LabelledTensors:
        n = num_classes * per_class
        y = torch.arange(num_classes).repeat_interleave(per_class)
        canvas = torch.zeros(n, size, size)
        mask = torch.rand(n, size, size, generator=g) < clutter
        canvas[mask] = torch.rand(int(mask.sum()), generator=g) * 0.7 + 0.3
        off = torch.randint(0, size - side + 1, (n, 2), generator=g)
        inten = torch.rand(n, generator=g) * 0.3 + 0.7
        rows = off[:, 0, None] + torch.arange(side)
        cols = off[:, 1, None] + torch.arange(side)
        patch = canvas[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]]
        glyph = pats[y] * inten[:, None, None]
        patch = torch.where(pats[y] > 0, glyph, patch)
        canvas[torch.arange(n)[:, None, None], rows[:, :, None], cols[:, None, :]] = patch
        if background > 0:
            level = torch.rand(n, 1, 1, generator=g) * background
            canvas = (canvas + level).clamp_(max=1.0)
        return LabelledTensors(canvas.unsqueeze(1), y)

    return render(train_per_class), render(test_per_class)


def glyphs_stream(num_tasks: int = 5, seed: int = 0, size: int = 24, train_per_class: int = 200,
                  test_per_class: int = 100, num_classes: int = 10,
                  class_order: Sequence[int] | None = None, **glyph_kw) -> TaskStream:
    """Split glyphs (default 5 tasks × 2 classes); ``seed`` sets placements and class order."""
    tr, te = make_glyphs(num_classes, train_per_class, test_per_class, size, seed=seed, **glyph_kw)
    return make_stream("glyphs", tr, te, num_tasks, glyph_augment(), class_order, seed)


def digits_stream(num_tasks: int = 5, seed: int = 0, test_fraction: float = 0.3,
                  class_order: Sequence[int] | None = None) -> TaskStream:
    """Split scikit-learn digits (8×8, 1 channel, 10 classes), stratified train/test split."""
    from sklearn.datasets import load_digits
    from sklearn.model_selection import train_test_split

    d = load_digits()
    x = torch.tensor(d.images, dtype=torch.float32).unsqueeze(1) / 16.0
    y = torch.tensor(d.target)
    itr, ite = train_test_split(range(len(y)), test_size=test_fraction, random_state=seed,
                                stratify=d.target)
    tr = LabelledTensors(x[itr], y[itr])
    te = LabelledTensors(x[ite], y[ite])
    return make_stream("digits", tr, te, num_tasks, digits_augment(), class_order, seed)


# ---------------------------------------------------------------------------------- folders
def _unpickle(path: Path) -> dict:
    with open(path, "rb") as f:
        return pickle.load(f, encoding="bytes")


def _find(root: Path, names: Sequence[str]) -> Path:
    for cand in [*[root / n for n in names], root]:
        if cand.is_dir() and any(cand.iterdir()):
            return cand
    raise FileNotFoundError(f"no dataset folder found at {root} (looked for {list(names)}); "
                            f"udl never downloads data: place the extracted archive there")


def cifar10_folder(root: str | Path) -> tuple[LabelledTensors, LabelledTensors]:
    """CIFAR-10 from the extracted python archive (``cifar-10-batches-py`` in or at ``root``)."""
    d = _find(Path(root), ["cifar-10-batches-py"])
    files = [d / f"data_batch_{i}" for i in range(1, 6)]
    for f in [*files, d / "test_batch"]:
        if not f.exists():
            raise FileNotFoundError(f"missing CIFAR-10 file {f}")

    def load(fs: list[Path]) -> LabelledTensors:
        parts = [_unpickle(f) for f in fs]
        x = torch.cat([torch.as_tensor(p[b"data"]).view(-1, 3, 32, 32) for p in parts])
        y = torch.cat([torch.as_tensor(p[b"labels"]) for p in parts])
        return LabelledTensors(x.to(torch.uint8), y)

    return load(files), load([d / "test_batch"])


def cifar100_folder(root: str | Path) -> tuple[LabelledTensors, LabelledTensors]:
    """CIFAR-100 (fine labels) from the extracted python archive (``cifar-100-python``)."""
    d = _find(Path(root), ["cifar-100-python"])

    def load(name: str) -> LabelledTensors:
        f = d / name
        if not f.exists():
            raise FileNotFoundError(f"missing CIFAR-100 file {f}")
        p = _unpickle(f)
        x = torch.as_tensor(p[b"data"]).view(-1, 3, 32, 32).to(torch.uint8)
        return LabelledTensors(x, torch.as_tensor(p[b"fine_labels"]))

    return load("train"), load("test")


class _ImageFiles(Dataset):
    """Lazily decoded image files with integer labels (used for Tiny-ImageNet)."""

    def __init__(self, files: list[Path], labels: list[int]) -> None:
        self.files, self.targets = files, torch.tensor(labels, dtype=torch.long)

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> tuple[Tensor, int]:
        from torchvision.io import ImageReadMode, decode_image

        img = decode_image(str(self.files[i]), mode=ImageReadMode.RGB)
        return img.float().div_(255), int(self.targets[i])


def tiny_imagenet_folder(root: str | Path, num_classes: int = 100) -> tuple[Dataset, Dataset]:
    """Tiny-ImageNet-200 from the extracted archive (``tiny-imagenet-200``); the first
    ``num_classes`` wnids in sorted order (the UCL setting uses 100). Test = the val split."""
    d = _find(Path(root), ["tiny-imagenet-200"])
    wnids = sorted(p.name for p in (d / "train").iterdir() if p.is_dir())[:num_classes]
    if len(wnids) < 2:
        raise FileNotFoundError(f"no class folders under {d / 'train'}")
    cls = {w: i for i, w in enumerate(wnids)}
    tr_files, tr_y = [], []
    for w in wnids:
        for f in sorted((d / "train" / w / "images").glob("*.JPEG")):
            tr_files.append(f)
            tr_y.append(cls[w])
    te_files, te_y = [], []
    ann = d / "val" / "val_annotations.txt"
    if not ann.exists():
        raise FileNotFoundError(f"missing {ann}")
    for line in ann.read_text().splitlines():
        parts = line.split("\t")
        if len(parts) >= 2 and parts[1] in cls:
            te_files.append(d / "val" / "images" / parts[0])
            te_y.append(cls[parts[1]])
    return _ImageFiles(tr_files, tr_y), _ImageFiles(te_files, te_y)


_FOLDERS: dict[str, tuple[Callable[..., tuple[Dataset, Dataset]], int, Callable[[], BatchAugment]]] = {
    "cifar10": (cifar10_folder, 5, cifar_augment),
    "cifar100": (cifar100_folder, 20, lambda: cifar_augment((0.5071, 0.4865, 0.4409),
                                                            (0.2673, 0.2564, 0.2762))),
    "tinyimagenet": (tiny_imagenet_folder, 20, lambda: cifar_augment((0.4802, 0.4481, 0.3975),
                                                                     (0.2302, 0.2265, 0.2262))),
}


def folder_stream(name: str, root: str | Path, num_tasks: int | None = None, seed: int = 0,
                  class_order: Sequence[int] | None = None) -> TaskStream:
    """Split CIFAR-10 (5×2), CIFAR-100 (20×5) or Tiny-ImageNet (20×5 of 100 classes) from a
    local folder. ``name`` ∈ {"cifar10", "cifar100", "tinyimagenet"}."""
    if name not in _FOLDERS:
        raise ValueError(f"unknown dataset {name!r}; choose from {sorted(_FOLDERS)}")
    loader, default_tasks, aug = _FOLDERS[name]
    tr, te = loader(root)
    return make_stream(name, tr, te, num_tasks or default_tasks, aug(), class_order, seed)
