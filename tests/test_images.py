"""IDX reader and image subsets (minstab.data.images): synthetic IDX files, corrupted files, real data."""

import gzip
import struct

import numpy as np
import pytest

from minstab.data.images import (
    FASHION_MNIST_DIR,
    downsample,
    load_digits_subset,
    load_mnist,
    pca_reduce,
    read_idx,
    standardize,
    two_class_subset,
)


def _idx_bytes(a: np.ndarray, code: int = 0x08) -> bytes:
    dt = {0x08: ">u1", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}[code]
    head = bytes([0, 0, code, a.ndim]) + struct.pack(">" + "I" * a.ndim, *a.shape)
    return head + a.astype(dt).tobytes()


def _write_mnist(tmp_path, n=12, gz=True, split="train"):
    rng = np.random.default_rng(0)
    images = rng.integers(0, 256, (n, 6, 6)).astype(np.uint8)
    labels = (np.arange(n) % 3).astype(np.uint8)
    prefix = "train" if split == "train" else "t10k"
    for stem, arr in (
        (f"{prefix}-images-idx3-ubyte", images),
        (f"{prefix}-labels-idx1-ubyte", labels),
    ):
        data = _idx_bytes(arr)
        if gz:
            (tmp_path / (stem + ".gz")).write_bytes(gzip.compress(data))
        else:
            (tmp_path / stem).write_bytes(data)
    return images, labels


@pytest.mark.parametrize("code", [0x08, 0x0C, 0x0D, 0x0E])
@pytest.mark.parametrize("gz", [False, True])
def test_read_idx_roundtrip(tmp_path, code, gz):
    a = np.arange(2 * 3 * 4).reshape(2, 3, 4)
    data = _idx_bytes(a, code)
    path = tmp_path / ("a.idx.gz" if gz else "a.idx")
    path.write_bytes(gzip.compress(data) if gz else data)
    out = read_idx(path)
    assert out.shape == (2, 3, 4)
    np.testing.assert_array_equal(out, a)
    assert out.dtype.isnative


@pytest.mark.parametrize("gz", [False, True])
@pytest.mark.parametrize("split", ["train", "test"])
def test_load_mnist_finds_files(tmp_path, gz, split):
    images, labels = _write_mnist(tmp_path, gz=gz, split=split)
    im, lab = load_mnist(tmp_path, split=split)
    np.testing.assert_array_equal(im, images)
    np.testing.assert_array_equal(lab, labels)


def test_corrupted_files(tmp_path):
    a = np.zeros((4, 3, 3), np.uint8)
    good = _idx_bytes(a)
    cases = {
        "truncated": good[:-5],
        "magic": b"\x01\x02" + good[2:],
        "typecode": good[:2] + b"\x42" + good[3:],
        "header": good[:6],
        "html": b"<html>not found</html>",
        "extra": good + b"\x00",
    }
    for name, data in cases.items():
        p = tmp_path / name
        p.write_bytes(data)
        with pytest.raises(ValueError, match="path"):
            read_idx(p)
    p = tmp_path / "badgz.gz"
    p.write_bytes(gzip.compress(good)[:-10])
    with pytest.raises(ValueError, match="gzip"):
        read_idx(p)
    with pytest.raises(FileNotFoundError, match="path"):
        read_idx(tmp_path / "missing")


def test_load_mnist_errors(tmp_path):
    with pytest.raises(FileNotFoundError, match="directory"):
        load_mnist(tmp_path)
    with pytest.raises(ValueError, match="split"):
        load_mnist(tmp_path, split="valid")
    images, _ = _write_mnist(tmp_path, gz=False)
    # labels with the wrong count
    (tmp_path / "train-labels-idx1-ubyte").write_bytes(_idx_bytes(np.zeros(3, np.uint8)))
    with pytest.raises(ValueError, match="labels"):
        load_mnist(tmp_path)


def test_two_class_subset_properties():
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (60, 8, 8)).astype(np.uint8)
    labels = np.arange(60) % 3
    s = two_class_subset(images, labels, classes=(2, 0), n_per_class=10, dim=5)
    assert s.x.shape == (20, 5) and s.y.shape == (20,)
    assert set(np.unique(s.labels)) == {0, 2}
    np.testing.assert_array_equal(s.y, np.where(s.labels == 0, 1.0, -1.0))
    np.testing.assert_allclose(s.x.mean(axis=0), 0, atol=1e-12)
    np.testing.assert_allclose(np.mean(np.linalg.norm(s.x, axis=1)), 1.0)
    d = two_class_subset(images, labels, n_per_class=10, dim=16, reduce="downsample")
    assert d.x.shape == (20, 16)
    with pytest.raises(ValueError, match="n_per_class"):
        two_class_subset(images, labels, n_per_class=100)
    with pytest.raises(ValueError, match="classes"):
        two_class_subset(images, labels, classes=(1, 1))


def test_pca_matches_sklearn_and_downsample():
    decomposition = pytest.importorskip("sklearn.decomposition")
    rng = np.random.default_rng(2)
    x = rng.standard_normal((30, 7)) @ rng.standard_normal((7, 7))
    ours = pca_reduce(x, 3)
    ref = decomposition.PCA(3, svd_solver="full").fit_transform(x)
    np.testing.assert_allclose(np.abs(ours), np.abs(ref), rtol=1e-8, atol=1e-10)
    im = rng.standard_normal((2, 4, 6))
    np.testing.assert_allclose(downsample(im, 2)[1, 1, 2], im[1, 2:4, 4:6].mean())
    st = standardize(x, scale="standard")
    np.testing.assert_allclose(st.std(axis=0), 1.0)
    with pytest.raises(ValueError, match="dim"):
        pca_reduce(x, 0)


def test_digits_subset():
    pytest.importorskip("sklearn")
    s = load_digits_subset(classes=(3, 8), n_per_class=20, dim=10)
    assert s.x.shape == (40, 10)
    assert np.all(np.isfinite(s.x))
    assert set(np.unique(s.y)) == {-1.0, 1.0}


@pytest.mark.skipif(not FASHION_MNIST_DIR.is_dir(), reason="dataset-fashion-mnist not installed")
def test_real_fashion_mnist():
    im, lab = load_mnist(FASHION_MNIST_DIR, split="test")
    assert im.shape == (10000, 28, 28) and im.dtype == np.uint8
    assert lab.shape == (10000,) and set(np.unique(lab)) == set(range(10))
    assert np.all(np.bincount(lab) == 1000)
    s = two_class_subset(im, lab, n_per_class=25, dim=12)
    assert s.x.shape == (50, 12)
