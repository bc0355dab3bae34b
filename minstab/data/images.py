"""Image data for the multivariate experiments of seed 000: MNIST-format IDX files and subsets.

Nothing is downloaded. :func:`read_idx` parses one IDX file (raw or ``.gz``);
:func:`load_mnist` finds the usual file names in a directory (a user's MNIST copy, or the
Fashion-MNIST files that ``apt-get install dataset-fashion-mnist`` puts in
:data:`FASHION_MNIST_DIR`). :func:`two_class_subset` builds the usual experiment problem: two
classes, n samples per class, flattened, scaled, optionally reduced to d dimensions, with
targets +-1 for the quadratic loss. :func:`load_digits_subset` does the same for scikit-learn's
bundled 8x8 digits (an optional dependency) as a no-extra-files fallback.
"""

from __future__ import annotations

import gzip
import os
from pathlib import Path
from typing import NamedTuple

import numpy as np

from .._validate import check_choice, check_int

__all__ = [
    "FASHION_MNIST_DIR",
    "ImageSubset",
    "read_idx",
    "load_mnist",
    "find_dataset",
    "two_class_subset",
    "load_digits_subset",
    "pca_reduce",
    "downsample",
    "standardize",
    "pm1_targets",
]

FASHION_MNIST_DIR = Path("/usr/share/datasets/fashion-mnist")

# IDX type codes (third magic byte) -> big-endian numpy dtype.
_IDX_TYPES = {
    0x08: np.dtype(">u1"),
    0x09: np.dtype(">i1"),
    0x0B: np.dtype(">i2"),
    0x0C: np.dtype(">i4"),
    0x0D: np.dtype(">f4"),
    0x0E: np.dtype(">f8"),
}

_SPLIT_PREFIX = {"train": "train", "test": "t10k"}


def read_idx(path) -> np.ndarray:
    """Read one IDX file (the MNIST format), raw or gzip-compressed.

    The header is two zero bytes, a type code, the number of dimensions r and r big-endian
    uint32 sizes; the data follow. Raises ``ValueError`` naming the file when the magic number,
    the type code or the length is wrong (a truncated download, an HTML error page, ...).

    Returns
    -------
    np.ndarray with the stored dtype (uint8 for MNIST) in native byte order.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"path: no IDX file at {path}")
    raw = path.read_bytes()
    if raw[:2] == b"\x1f\x8b":
        try:
            raw = gzip.decompress(raw)
        except (OSError, EOFError) as e:
            raise ValueError(f"path: {path} is a corrupted or truncated gzip file ({e})") from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0:
        raise ValueError(f"path: {path} is not an IDX file (bad magic number)")
    code, ndim = raw[2], raw[3]
    if code not in _IDX_TYPES:
        raise ValueError(f"path: {path} has unknown IDX type code 0x{code:02x}")
    if ndim < 1 or len(raw) < 4 + 4 * ndim:
        raise ValueError(f"path: {path} has a truncated IDX header ({ndim} dimensions)")
    shape = tuple(int(s) for s in np.frombuffer(raw, ">u4", count=ndim, offset=4))
    dtype = _IDX_TYPES[code]
    expected = int(np.prod(shape)) * dtype.itemsize
    body = len(raw) - 4 - 4 * ndim
    if body != expected:
        raise ValueError(
            f"path: {path} has {body} data bytes but its header {shape} needs {expected}"
            " (truncated or corrupted file)"
        )
    data = np.frombuffer(raw, dtype, offset=4 + 4 * ndim).reshape(shape)
    return data.astype(dtype.newbyteorder("="))


def find_idx_file(directory: Path, stem: str) -> Path:
    """The IDX file ``stem`` in ``directory``: plain or gzipped, ``-idx`` or ``.idx`` spelling."""
    names = [stem, stem + ".gz", stem.replace("-idx", ".idx"), stem.replace("-idx", ".idx") + ".gz"]
    for name in names:
        if (directory / name).is_file():
            return directory / name
    raise FileNotFoundError(
        f"directory: none of {', '.join(names)} in {directory}"
        " (expected MNIST-format IDX files; nothing is downloaded)"
    )


def load_mnist(directory, split: str = "train") -> tuple[np.ndarray, np.ndarray]:
    """Images (n, 28, 28) uint8 and labels (n,) from an MNIST-format directory.

    Finds ``train-images-idx3-ubyte[.gz]`` / ``train-labels-idx1-ubyte[.gz]`` (``split="train"``)
    or the ``t10k-`` files (``split="test"``). Works for MNIST and Fashion-MNIST (same format).
    """
    if split not in _SPLIT_PREFIX:
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    directory = Path(directory)
    if not directory.is_dir():
        raise FileNotFoundError(f"directory: {directory} does not exist")
    prefix = _SPLIT_PREFIX[split]
    images = read_idx(find_idx_file(directory, f"{prefix}-images-idx3-ubyte"))
    labels = read_idx(find_idx_file(directory, f"{prefix}-labels-idx1-ubyte"))
    if images.ndim != 3 or labels.ndim != 1:
        raise ValueError(
            f"directory: images must be 3-d and labels 1-d, got {images.shape} and {labels.shape}"
        )
    if images.shape[0] != labels.shape[0]:
        raise ValueError(
            f"directory: {images.shape[0]} images but {labels.shape[0]} labels in {directory}"
        )
    return images, labels


def find_dataset(name) -> Path:
    """Directory of a named dataset: ``"fashion-mnist"``, ``"mnist"`` (env ``MINSTAB_MNIST_DIR``) or a path."""
    if name == "fashion-mnist":
        d = Path(os.environ.get("MINSTAB_FASHION_MNIST_DIR", FASHION_MNIST_DIR))
        if not d.is_dir():
            raise FileNotFoundError(
                f"dataset: {d} not found; install it with `apt-get install dataset-fashion-mnist`"
                " or pass a directory"
            )
        return d
    if name == "mnist":
        env = os.environ.get("MINSTAB_MNIST_DIR")
        for d in [env, "~/.minstab/mnist", "/usr/share/datasets/mnist"]:
            if d and Path(d).expanduser().is_dir():
                return Path(d).expanduser()
        raise FileNotFoundError(
            "dataset: no MNIST directory found; set MINSTAB_MNIST_DIR or pass --dataset PATH"
        )
    d = Path(name).expanduser()
    if not d.is_dir():
        raise FileNotFoundError(f"dataset: {d} is not a directory")
    return d


class ImageSubset(NamedTuple):
    """A two-class regression problem: inputs (n, d) float64, targets (n,) in {-1, +1}."""

    x: np.ndarray
    y: np.ndarray
    labels: np.ndarray  # original class labels (n,)
    classes: tuple[int, int]  # class -> -1, class -> +1


def downsample(images: np.ndarray, factor: int) -> np.ndarray:
    """Average-pool (n, h, w) images by ``factor`` (h and w cropped to multiples of it)."""
    factor = check_int(factor, "factor", minimum=1)
    n, h, w = images.shape
    h2, w2 = h // factor, w // factor
    im = np.asarray(images, np.float64)[:, : h2 * factor, : w2 * factor]
    return im.reshape(n, h2, factor, w2, factor).mean(axis=(2, 4))


def pca_reduce(x: np.ndarray, dim: int) -> np.ndarray:
    """Project centred rows of ``x`` (n, D) on their top ``dim`` principal directions (SVD)."""
    x = np.asarray(x, np.float64)
    dim = check_int(dim, "dim", minimum=1)
    if not 1 <= dim <= min(x.shape):
        raise ValueError(f"dim must be in [1, {min(x.shape)}], got {dim}")
    xc = x - x.mean(axis=0, keepdims=True)
    _, _, vt = np.linalg.svd(xc, full_matrices=False)
    return xc @ vt[:dim].T


def standardize(x: np.ndarray, *, scale: str = "unit-norm") -> np.ndarray:
    """Scale inputs for the experiments.

    ``"unit-norm"``: centre, then divide by the mean row norm (so E||x|| = 1); ``"standard"``:
    each coordinate mean 0, std 1; ``"none"``: unchanged.
    """
    x = np.asarray(x, np.float64)
    if scale == "none":
        return x
    xc = x - x.mean(axis=0, keepdims=True)
    if scale == "unit-norm":
        return xc / np.mean(np.linalg.norm(xc, axis=1))
    if scale == "standard":
        sd = xc.std(axis=0, keepdims=True)
        return xc / np.where(sd > 0, sd, 1.0)
    raise ValueError(f"scale must be 'unit-norm', 'standard' or 'none', got {scale!r}")


def pm1_targets(labels: np.ndarray, classes: tuple[int, int]) -> np.ndarray:
    """-1 for ``classes[0]``, +1 for ``classes[1]`` (targets for the quadratic loss)."""
    return np.where(np.asarray(labels) == classes[1], 1.0, -1.0)


def two_class_subset(
    images: np.ndarray,
    labels: np.ndarray,
    *,
    classes: tuple[int, int] = (0, 1),
    n_per_class: int = 50,
    dim: int | None = None,
    reduce: str = "pca",
    scale: str = "unit-norm",
    seed: int = 0,
) -> ImageSubset:
    """The usual experiment subset: two classes, ``n_per_class`` random images of each.

    Images are flattened (after average-pooling when ``reduce="downsample"``, with the pooling
    factor chosen so the flattened size is closest to ``dim``), reduced to ``dim`` principal
    components when ``reduce="pca"``, scaled by :func:`standardize` and given targets +-1.
    """
    labels = np.asarray(labels)
    images_dims = np.ndim(images)
    if images_dims not in (2, 3) or np.shape(images)[0] != labels.shape[0] or labels.ndim != 1:
        raise ValueError(
            f"images must be (n, h, w) or (n, D) with labels (n,), got {np.shape(images)} and "
            f"{labels.shape}"
        )
    try:
        c0, c1 = classes
    except (TypeError, ValueError):
        raise ValueError(f"classes must be two distinct labels, got {classes!r}") from None
    classes = (check_int(c0, "classes[0]"), check_int(c1, "classes[1]"))
    if classes[0] == classes[1]:
        raise ValueError(f"classes must be two distinct labels, got {classes}")
    n_per_class = check_int(n_per_class, "n_per_class", minimum=1)
    dim = check_int(dim, "dim", minimum=1, none=True)
    seed = check_int(seed, "seed", minimum=0)
    check_choice(reduce, "reduce", ("pca", "downsample", "none"))
    check_choice(scale, "scale", ("unit-norm", "standard", "none"))
    rng = np.random.default_rng(seed)
    idx = []
    for c in classes:
        where = np.flatnonzero(labels == c)
        if where.size < n_per_class:
            raise ValueError(f"n_per_class: class {c} has only {where.size} samples")
        idx.append(rng.choice(where, n_per_class, replace=False))
    idx = np.concatenate(idx)
    im = np.asarray(images, np.float64)[idx] / (255.0 if images.dtype == np.uint8 else 1.0)
    if im.ndim == 2:
        im = im[:, None, :]
    if reduce == "downsample" and dim is not None:
        side = im.shape[1]
        factor = min(range(1, side + 1), key=lambda f: abs((side // f) * (im.shape[2] // f) - dim))
        im = downsample(im, factor)
    x = im.reshape(im.shape[0], -1)
    if reduce == "pca" and dim is not None:
        x = pca_reduce(x, dim)
    x = standardize(x, scale=scale)
    return ImageSubset(x, pm1_targets(labels[idx], classes), labels[idx], tuple(classes))


def load_digits_subset(
    *,
    classes: tuple[int, int] = (0, 1),
    n_per_class: int = 50,
    dim: int | None = None,
    reduce: str = "pca",
    scale: str = "unit-norm",
    seed: int = 0,
) -> ImageSubset:
    """:func:`two_class_subset` of scikit-learn's bundled 8x8 digits (no files needed).

    Needs the optional dependency scikit-learn (``pip install minstab[data]``).
    """
    try:
        from sklearn.datasets import load_digits
    except ImportError:  # pragma: no cover - depends on the environment
        raise ImportError(
            "load_digits_subset needs scikit-learn: pip install scikit-learn (or minstab[data])"
        ) from None
    d = load_digits()
    images = d.images / 16.0  # pixel values 0..16
    return two_class_subset(
        images,
        d.target,
        classes=classes,
        n_per_class=n_per_class,
        dim=dim,
        reduce=reduce,
        scale=scale,
        seed=seed,
    )
