"""Data sets: the digits shipped in the package, and MNIST-style IDX files."""

import gzip
import os
from importlib import resources
from pathlib import Path

import numpy as np

# IDX type codes (the third byte of the magic number) and their big-endian dtypes.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}


def load_digits(test_fraction=0.2, seed=0):
    """The UCI optical-recognition digits shipped with fastmlp (1,797 8x8 images).

    Returns ``(X_train, y_train), (X_test, y_test)``: X float32 of shape
    (n, 64) scaled to [0, 1], y int64 of shape (n,) with labels 0..9. The
    split is a permutation drawn from ``numpy.random.default_rng(seed)``.
    """
    source = resources.files("fastmlp") / "data" / "digits.csv.gz"
    with source.open("rb") as raw, gzip.open(raw, "rt") as text:
        data = np.loadtxt(text, delimiter=",", dtype=np.int64)
    X = (data[:, :-1] / 16.0).astype(np.float32)
    y = data[:, -1]
    order = np.random.default_rng(seed).permutation(len(y))
    n_test = int(round(test_fraction * len(y)))
    test, train = order[:n_test], order[n_test:]
    return (X[train], y[train]), (X[test], y[test])


def load_idx(path):
    """Read an IDX file (as MNIST is distributed), gzipped or raw, into an array
    of the shape its header gives."""
    path = Path(path)
    with open(path, "rb") as f:
        data = f.read()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    dtype, ndim = np.dtype(IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], ">u4"))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(shape) != ndim or len(data) != expected:
        raise ValueError(f"{path} is truncated or corrupt: header says shape {shape}, "
                         f"expected {expected} bytes, found {len(data)}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def data_dirs(name):
    """Folders searched for the data set ``name``, in order."""
    dirs = []
    if os.environ.get("FASTMLP_DATA"):
        dirs.append(Path(os.environ["FASTMLP_DATA"]) / name)
    dirs += [Path.home() / ".cache" / "fastmlp" / name, Path("/usr/share/datasets") / name]
    return dirs


def _find(folder, stem):
    for candidate in (folder / (stem + ".gz"), folder / stem):
        if candidate.is_file():
            return candidate
    return None


def load_mnist_style(name, path=None):
    """``(X_train, y_train), (X_test, y_test)`` from the four IDX files of an
    MNIST-style set: X uint8 (n, rows * cols) raw pixels, y int64 (n,).

    Looks in ``path`` if given, else in each of ``data_dirs(name)``.
    """
    folders = [Path(path)] if path is not None else data_dirs(name)
    for folder in folders:
        found = {key: _find(folder, stem) for key, stem in IDX_FILES.items()}
        if all(found.values()):
            arrays = {key: load_idx(p) for key, p in found.items()}
            flat = {key: a.reshape(len(a), -1) for key, a in arrays.items() if "images" in key}
            return ((flat["train_images"], arrays["train_labels"].astype(np.int64)),
                    (flat["test_images"], arrays["test_labels"].astype(np.int64)))
    raise FileNotFoundError(
        f"{name}: expected the files {', '.join(s + '[.gz]' for s in IDX_FILES.values())} "
        f"in one of: {', '.join(str(f) for f in folders)}")


def load_fashion_mnist(path=None):
    """Fashion-MNIST (60,000 + 10,000 28x28 images, 10 classes): see ``load_mnist_style``.
    Debian's package dataset-fashion-mnist installs it in /usr/share/datasets."""
    return load_mnist_style("fashion-mnist", path)


def load_mnist(path=None):
    """MNIST (60,000 + 10,000 28x28 digits): see ``load_mnist_style``."""
    return load_mnist_style("mnist", path)
