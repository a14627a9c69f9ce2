"""The two-class data sets: MNIST from IDX files (real use) or scikit-learn's bundled 8x8 digits.

Both give :class:`Split` objects: images as float32 (N, 1, H, W) scaled to [0, 1] and
labels 0 for the first chosen digit, 1 for the second. Like the published model, each
class takes the first ``per_class`` images of its digit in file order.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from workloads.common import storage
from workloads.qnn.idx import read_idx

# Accepted names of the four MNIST files; '.gz' may follow any of them.
MNIST_FILES: dict[str, tuple[str, ...]] = {
    "train_images": ("train-images-idx3-ubyte", "train-images.idx3-ubyte"),
    "train_labels": ("train-labels-idx1-ubyte", "train-labels.idx1-ubyte"),
    "test_images": ("t10k-images-idx3-ubyte", "t10k-images.idx3-ubyte"),
    "test_labels": ("t10k-labels-idx1-ubyte", "t10k-labels.idx1-ubyte"),
}


DIGITS_SPLIT_SEED = 20_240_601


class DataError(ValueError):
    """Input data that does not fit the request (digits, counts, shapes, files)."""


@dataclass(frozen=True)
class Split:
    """Images (N, 1, H, W) float32 in [0, 1] and class labels (N,) int64 in {0, 1}."""

    images: torch.Tensor
    labels: torch.Tensor

    def __len__(self) -> int:
        return int(self.labels.shape[0])


@dataclass(frozen=True)
class TwoClassData:
    """A training and a test split for two digits."""

    train: Split
    test: Split
    digits: tuple[int, int]
    source: str

    @property
    def image_side(self) -> int:
        """Return the side length of the (square) images."""
        return int(self.train.images.shape[-1])


def check_digits(digits: Sequence[int]) -> tuple[int, int]:
    """Return the two digits to tell apart, or raise DataError naming the problem."""
    unknown = [d for d in digits if not 0 <= int(d) <= 9]
    if unknown:
        raise DataError(f"unknown digit(s) {unknown}: digits are 0..9, e.g. --digits 0,1")
    if len(digits) != 2 or digits[0] == digits[1]:
        raise DataError(f"give exactly two different digits, got {list(digits)}; e.g. --digits 0,1")
    return int(digits[0]), int(digits[1])


def check_images(images: np.ndarray, labels: np.ndarray, *, where: str) -> None:
    """Raise DataError unless images are (N, H, H) with H >= 4 and labels are (N,)."""
    if images.ndim != 3 or images.shape[1] != images.shape[2]:
        raise DataError(
            f"{where}: images must have shape (N, side, side) (square, single channel), got {images.shape}"
        )
    if images.shape[1] < 4:
        raise DataError(
            f"{where}: images of {images.shape[1]}x{images.shape[2]} pixels are too small (>= 4x4)"
        )
    if labels.ndim != 1 or labels.shape[0] != images.shape[0]:
        raise DataError(f"{where}: {images.shape[0]} images but labels of shape {labels.shape}")


def select(
    images: np.ndarray,
    labels: np.ndarray,
    digits: tuple[int, int],
    per_class: int,
    *,
    scale: float,
    where: str,
) -> Split:
    """Take the first `per_class` images of each digit; label them 0 and 1."""
    check_images(images, labels, where=where)
    chosen, classes = [], []
    for cls, digit in enumerate(digits):
        index = np.flatnonzero(labels == digit)
        if index.size == 0:
            present = sorted({int(v) for v in np.unique(labels)})
            raise DataError(
                f"{where}: no images of digit {digit} (the labels hold {present}); the selection is empty"
            )
        if index.size < per_class:
            raise DataError(
                f"{where}: only {index.size} images of digit {digit}, {per_class} asked; "
                f"ask for at most {index.size} per class"
            )
        chosen.append(index[:per_class])
        classes.append(np.full(per_class, cls))
    order = np.concatenate(chosen)
    x = torch.from_numpy(images[order].astype(np.float32) / scale).unsqueeze(1)
    y = torch.from_numpy(np.concatenate(classes).astype(np.int64))
    return Split(images=x, labels=y)


def load_digits_data(*, digits: Sequence[int], train_per_class: int, test_per_class: int) -> TwoClassData:
    """Load scikit-learn's bundled 8x8 handwritten digits (no download) and split them per class.

    After a fixed shuffle, the first ``train_per_class`` images of each digit train and the
    next ``test_per_class`` test; the two never overlap.
    """
    pair = check_digits(digits)
    try:
        # scikit-learn is needed only for this demo data set, so it is imported on use.
        from sklearn.datasets import load_digits
    except ImportError as err:
        raise DataError("the digits data set needs scikit-learn (pip install scikit-learn)") from err
    bunch = load_digits()
    images = np.asarray(bunch.images)
    labels = np.asarray(bunch.target)
    for digit in pair:
        have = int((labels == digit).sum())
        if train_per_class + test_per_class > have:
            raise DataError(
                f"the digits data set has {have} images of digit {digit}; train_per_class + test_per_class = "
                f"{train_per_class} + {test_per_class} exceeds it (e.g. --train-per-class {have * 2 // 3} "
                f"--test-per-class {have - have * 2 // 3})"
            )
    # The bundled set is ordered by writer; a fixed shuffle (the same for every run, whatever
    # --seed says) mixes writers into both splits, then each class's first images train and
    # the ones after them test, so the two never overlap.
    order = np.random.default_rng(DIGITS_SPLIT_SEED).permutation(len(labels))
    images, labels = images[order], labels[order]
    train = select(images, labels, pair, train_per_class, scale=16.0, where="digits training images")
    rest = np.ones(len(labels), dtype=bool)
    for digit in pair:
        rest[np.flatnonzero(labels == digit)[:train_per_class]] = False
    test = select(images[rest], labels[rest], pair, test_per_class, scale=16.0, where="digits test images")
    return TwoClassData(train=train, test=test, digits=pair, source="sklearn digits (8x8)")


def find_mnist_files(directory: Path) -> dict[str, Path]:
    """Return the paths of the four MNIST IDX files in a directory (plain or .gz), or raise DataError."""
    found: dict[str, Path] = {}
    missing = []
    for role, names in MNIST_FILES.items():
        candidates = [directory / f"{n}{ext}" for n in names for ext in ("", ".gz")]
        hit = next((c for c in candidates if c.is_file()), None)
        if hit is None:
            missing.append(f"{names[0]}[.gz]")
        else:
            found[role] = hit
    if missing:
        raise DataError(
            f"MNIST IDX file(s) missing in {directory}: {', '.join(missing)}; "
            "the directory must hold the four files of the standard MNIST distribution"
        )
    return found


def load_mnist_data(
    *, uri: str, digits: Sequence[int], train_per_class: int, test_per_class: int
) -> TwoClassData:
    """Load MNIST IDX files from a local directory or an s3:// prefix and select two digits."""
    pair = check_digits(digits)
    if not uri:
        raise DataError(
            "dataset=mnist needs --data-uri: a directory or s3:// prefix holding the MNIST IDX files "
            "(train-images-idx3-ubyte[.gz] and the other three); or use --dataset digits"
        )
    if storage.is_s3(uri) and not uri.endswith("/"):
        uri += "/"  # a prefix, not one object
    directory = storage.fetch(uri)
    if not directory.is_dir():
        raise DataError(f"--data-uri {uri} is a file; give the directory that holds the four MNIST IDX files")
    files = find_mnist_files(directory)
    arrays = {role: read_idx(path) for role, path in files.items()}
    train = select(
        arrays["train_images"],
        arrays["train_labels"],
        pair,
        train_per_class,
        scale=255.0,
        where=f"MNIST training set ({files['train_images'].name})",
    )
    test = select(
        arrays["test_images"],
        arrays["test_labels"],
        pair,
        test_per_class,
        scale=255.0,
        where=f"MNIST test set ({files['test_images'].name})",
    )
    return TwoClassData(train=train, test=test, digits=pair, source=f"MNIST IDX ({uri})")
