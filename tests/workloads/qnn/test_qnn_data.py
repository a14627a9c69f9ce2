"""Data selection from the bundled digits and from MNIST IDX files (local and S3), and its errors."""

from __future__ import annotations

import boto3
import numpy as np
import pytest
from qnn_idx_writer import write_idx, write_mnist_dir
from sklearn.datasets import load_digits

from workloads.common.storage import StorageError
from workloads.qnn.data import DataError, check_digits, load_digits_data, load_mnist_data
from workloads.qnn.idx import IdxError


@pytest.fixture(scope="module")
def digits():
    bunch = load_digits()
    return np.asarray(bunch.images), np.asarray(bunch.target)


def mnist_like(digits, root, *, gz=True, side_pad=10):
    """Write the bundled digits as uint8 28x28 IDX files (8x8 scaled to 0..255 and padded by 10)."""
    images, labels = digits
    big = np.pad(
        (images * 255 / 16).round().astype(np.uint8), ((0, 0), (side_pad, side_pad), (side_pad, side_pad))
    )
    split = 1200
    return write_mnist_dir(
        root,
        {"train": big[:split], "test": big[split:]},
        {"train": labels[:split].astype(np.uint8), "test": labels[split:].astype(np.uint8)},
        gz=gz,
    )


def test_digits_split_sizes_labels_and_disjointness(digits):
    data = load_digits_data(digits=[3, 8], train_per_class=60, test_per_class=40)
    assert data.digits == (3, 8)
    assert data.train.images.shape == (120, 1, 8, 8) and data.test.images.shape == (80, 1, 8, 8)
    assert data.train.labels.tolist() == [0] * 60 + [1] * 60
    assert float(data.train.images.max()) <= 1.0 and float(data.train.images.min()) >= 0.0
    # every selected image is a real image of the right digit, and none is in both splits
    images, labels = digits
    flat = {
        tuple((img * 16).round().astype(int).ravel()): int(lab)
        for img, lab in zip(images / 16, labels, strict=True)
    }
    train_keys = [tuple((x * 16).round().int().ravel().tolist()) for x in data.train.images]
    test_keys = [tuple((x * 16).round().int().ravel().tolist()) for x in data.test.images]
    assert [flat[k] for k in train_keys] == [3] * 60 + [8] * 60
    assert [flat[k] for k in test_keys] == [3] * 40 + [8] * 40
    assert not set(train_keys) & set(test_keys)


def test_digits_asking_for_too_many(digits):
    with pytest.raises(
        DataError, match=r"the digits data set has 178 images of digit 0; train_per_class \+ "
    ):
        load_digits_data(digits=[0, 1], train_per_class=400, test_per_class=200)


@pytest.mark.parametrize(
    ("given", "text"),
    [
        ([0, 12], r"unknown digit\(s\) \[12\]: digits are 0..9"),
        ([-1, 3], r"unknown digit\(s\) \[-1\]"),
        ([4, 4], r"give exactly two different digits, got \[4, 4\]"),
        ([1, 2, 3], r"give exactly two different digits, got \[1, 2, 3\]"),
    ],
)
def test_bad_digits(given, text):
    with pytest.raises(DataError, match=text):
        check_digits(given)


@pytest.mark.parametrize("gz", [True, False])
def test_mnist_from_idx_directory(tmp_path, digits, gz):
    root = mnist_like(digits, tmp_path / "mnist", gz=gz)
    data = load_mnist_data(uri=str(root), digits=[0, 1], train_per_class=50, test_per_class=30)
    assert data.train.images.shape == (100, 1, 28, 28) and data.image_side == 28
    images, labels = digits
    # the first 50 zeros of the training file, in file order, scaled back to 0..16
    zeros = images[:1200][labels[:1200] == 0][:50]
    np.testing.assert_allclose(data.train.images[:50, 0, 10:18, 10:18].numpy() * 16, zeros, atol=16 / 255)
    assert data.test.labels.tolist() == [0] * 30 + [1] * 30


def test_mnist_from_s3(tmp_path, digits, monkeypatch):
    moto = pytest.importorskip("moto")
    for key in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"):
        monkeypatch.setenv(key, "testing")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    root = mnist_like(digits, tmp_path / "mnist", gz=True)
    with moto.mock_aws():
        s3 = boto3.client("s3")
        s3.create_bucket(Bucket="datasets")
        for path in root.iterdir():
            s3.upload_file(str(path), "datasets", f"mnist/{path.name}")
        data = load_mnist_data(
            uri="s3://datasets/mnist", digits=[0, 1], train_per_class=20, test_per_class=10
        )
        assert len(data.train) == 40 and len(data.test) == 20
        with pytest.raises(StorageError, match="nothing found under s3://datasets/other/"):
            load_mnist_data(uri="s3://datasets/other", digits=[0, 1], train_per_class=1, test_per_class=1)


def test_mnist_needs_a_uri():
    with pytest.raises(DataError, match="dataset=mnist needs --data-uri"):
        load_mnist_data(uri="", digits=[0, 1], train_per_class=1, test_per_class=1)


def test_mnist_missing_files(tmp_path, digits):
    root = mnist_like(digits, tmp_path / "m", gz=True)
    (root / "t10k-labels-idx1-ubyte.gz").unlink()
    with pytest.raises(DataError, match=r"MNIST IDX file\(s\) missing in .*: t10k-labels-idx1-ubyte\[.gz\]"):
        load_mnist_data(uri=str(root), digits=[0, 1], train_per_class=1, test_per_class=1)


def test_mnist_corrupt_file(tmp_path, digits):
    root = mnist_like(digits, tmp_path / "m", gz=False)
    path = root / "train-images-idx3-ubyte"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(IdxError, match="train-images-idx3-ubyte is corrupt"):
        load_mnist_data(uri=str(root), digits=[0, 1], train_per_class=1, test_per_class=1)


def test_empty_selection(tmp_path, digits):
    images, labels = digits
    keep = np.isin(labels, [0, 1])
    root = write_mnist_dir(
        tmp_path / "m",
        {"train": images[keep].astype(np.uint8), "test": images[keep].astype(np.uint8)},
        {"train": labels[keep].astype(np.uint8), "test": labels[keep].astype(np.uint8)},
        gz=False,
    )
    with pytest.raises(
        DataError, match=r"no images of digit 7 \(the labels hold \[0, 1\]\); the selection is empty"
    ):
        load_mnist_data(uri=str(root), digits=[0, 7], train_per_class=5, test_per_class=5)
    with pytest.raises(
        DataError, match=r"only 178 images of digit 0, 500 asked; ask for at most 178 per class"
    ):
        load_mnist_data(uri=str(root), digits=[0, 1], train_per_class=500, test_per_class=5)


@pytest.mark.parametrize(
    ("shape", "text"),
    [
        (
            (20, 28, 14),
            r"images must have shape \(N, side, side\) \(square, single channel\), got \(20, 28, 14\)",
        ),
        ((20, 784), r"images must have shape \(N, side, side\)"),
        ((20, 3, 3), r"images of 3x3 pixels are too small"),
    ],
)
def test_wrong_image_shape(tmp_path, shape, text):
    root = tmp_path / "m"
    labels = np.array([0, 1] * 10, dtype=np.uint8)
    write_mnist_dir(root, {"train": np.zeros(shape, np.uint8), "test": np.zeros((20, 28, 28), np.uint8)},
                    {"train": labels, "test": labels}, gz=False)  # fmt: skip
    with pytest.raises(DataError, match=text):
        load_mnist_data(uri=str(root), digits=[0, 1], train_per_class=2, test_per_class=2)


def test_label_count_mismatch(tmp_path):
    root = tmp_path / "m"
    images = {"train": np.zeros((20, 28, 28), np.uint8), "test": np.zeros((20, 28, 28), np.uint8)}
    write_mnist_dir(root, images, {"train": np.zeros(19, np.uint8), "test": np.zeros(20, np.uint8)}, gz=False)
    with pytest.raises(DataError, match=r"20 images but labels of shape \(19,\)"):
        load_mnist_data(uri=str(root), digits=[0, 1], train_per_class=2, test_per_class=2)


def test_uri_that_is_a_file(tmp_path):
    path = write_idx(tmp_path / "one", np.zeros(3, np.uint8))
    with pytest.raises(DataError, match="is a file; give the directory"):
        load_mnist_data(uri=str(path), digits=[0, 1], train_per_class=1, test_per_class=1)
