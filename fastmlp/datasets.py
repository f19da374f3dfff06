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

# Folders searched after $FASTMLP_DATA, each holding one subfolder per data set:
# the user's cache, then where Debian's dataset-* packages install.
DATA_ROOTS = ["~/.cache/fastmlp", "/usr/share/datasets"]


def load_digits(test_fraction=0.2, seed=0):
    """The UCI optical-recognition digits shipped with fastmlp: 1,797 8x8 images.

    Parameters
    ----------
    test_fraction : float
        Share of the samples put in the test set (rounded to whole samples).
    seed : int
        Seed of ``numpy.random.default_rng`` whose permutation splits the data.

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        X float32 of shape (n, 64): pixel counts 0..16 divided by 16, so in
        [0, 1]; y int64 of shape (n,), labels 0..9. With the defaults n is
        1438 and 359.
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
    """Read one IDX file, the format MNIST is distributed in.

    Parameters
    ----------
    path : str or Path
        The file, raw or gzipped (recognised by its first bytes, 1f 8b).

    Returns
    -------
    ndarray
        Of the shape and type the header gives (uint8, int8, int16, int32,
        float32 or float64), in native byte order.

    Raises
    ------
    ValueError
        Naming the file, when its magic number is not an IDX one or its size
        does not match the shape in its header.
    """
    path = Path(path)
    data = path.read_bytes()
    if data[:2] == b"\x1f\x8b":
        data = gzip.decompress(data)
    if len(data) < 4 or data[:2] != b"\0\0" or data[2] not in IDX_DTYPES:
        raise ValueError(f"{path} is not an IDX file (bad magic number {data[:4].hex()})")
    dtype, ndim = np.dtype(IDX_DTYPES[data[2]]), data[3]
    header = 4 + 4 * ndim
    if len(data) < header:
        raise ValueError(f"{path} is truncated: its header of {ndim} dimensions needs "
                         f"{header} bytes, but it holds {len(data)}")
    shape = tuple(int(d) for d in np.frombuffer(data[4:header], ">u4"))
    expected = header + int(np.prod(shape)) * dtype.itemsize
    if len(data) != expected:
        raise ValueError(f"{path} is truncated or corrupt: its header says shape {shape}, "
                         f"{expected} bytes, but it holds {len(data)}")
    return np.frombuffer(data, dtype, offset=header).reshape(shape).astype(dtype.newbyteorder("="))


def data_dirs(name):
    """Folders searched for the data set ``name``, in order: ``$FASTMLP_DATA/name``
    when that variable is set, then ``root/name`` for each of DATA_ROOTS."""
    roots = [os.environ["FASTMLP_DATA"]] if os.environ.get("FASTMLP_DATA") else []
    return [Path(root).expanduser() / name for root in roots + DATA_ROOTS]


def _find(folder, stem):
    """``folder/stem.gz`` or ``folder/stem``, whichever exists first, else None."""
    for candidate in (folder / (stem + ".gz"), folder / stem):
        if candidate.is_file():
            return candidate
    return None


def load_mnist_style(name, path=None):
    """The four IDX files of an MNIST-style data set, from the first folder
    that holds all of them.

    Parameters
    ----------
    name : str
        The data set's folder name, e.g. "mnist".
    path : str or Path, optional
        The one folder to look in; by default each of ``data_dirs(name)``.
        File names are those of IDX_FILES, each with or without ``.gz``.

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        X uint8 of shape (n, rows * cols), raw pixels 0..255 (scale them
        yourself); y int64 of shape (n,).

    Raises
    ------
    FileNotFoundError
        Naming the files expected and every folder looked in.
    """
    folders = [Path(path)] if path is not None else data_dirs(name)
    for folder in folders:
        found = {key: _find(folder, stem) for key, stem in IDX_FILES.items()}
        if all(found.values()):
            arrays = {key: load_idx(file) for key, file in found.items()}
            X, X_test = (arrays[key].reshape(len(arrays[key]), -1)
                         for key in ("train_images", "test_images"))
            return ((X, arrays["train_labels"].astype(np.int64)),
                    (X_test, arrays["test_labels"].astype(np.int64)))
    raise FileNotFoundError(
        f"{name}: expected the files {', '.join(s + '[.gz]' for s in IDX_FILES.values())} "
        f"in one of: {', '.join(str(f) for f in folders)}")


def load_fashion_mnist(path=None):
    """Fashion-MNIST: 60,000 training and 10,000 test 28x28 images of clothes,
    10 classes. Debian's package dataset-fashion-mnist installs it in
    /usr/share/datasets/fashion-mnist. Parameters and returns (X of shape
    (n, 784)) as for ``load_mnist_style``."""
    return load_mnist_style("fashion-mnist", path)


def load_mnist(path=None):
    """MNIST: 60,000 training and 10,000 test 28x28 handwritten digits, in a
    folder named "mnist". Parameters and returns (X of shape (n, 784)) as for
    ``load_mnist_style``."""
    return load_mnist_style("mnist", path)
