"""Data sets and loaders: the digits shipped in the package, MNIST-style IDX
files (found on disk or downloaded), ``mnist.pkl.gz``, Keras' ``mnist.npz``,
pairs of ``.npy`` files; and the helpers ``one_hot``, ``scale`` and
``train_val_split``."""

import gzip
import hashlib
import http.client
import io
import os
import pickle
import re
import struct
import sys
import tempfile
import urllib.request
import zipfile
import zlib
from importlib import resources
from pathlib import Path

import numpy as np

from ._validation import one_hot  # noqa: F401  public here, defined with the checks it shares

# IDX type codes (the third byte of the magic number) and their big-endian dtypes.
IDX_DTYPES = {0x08: ">u1", 0x09: ">i1", 0x0B: ">i2", 0x0C: ">i4", 0x0D: ">f4", 0x0E: ">f8"}

IDX_FILES = {
    "train_images": "train-images-idx3-ubyte",
    "train_labels": "train-labels-idx1-ubyte",
    "test_images": "t10k-images-idx3-ubyte",
    "test_labels": "t10k-labels-idx1-ubyte",
}

# Folders searched after $FASTMLP_DATA, each holding one subfolder per data set:
# the user's cache (the first root, where downloads go), then where Debian's
# dataset-* packages install.
DATA_ROOTS = ["~/.cache/fastmlp", "/usr/share/datasets"]

# Base URLs the gzipped IDX files are downloaded from, tried in order: the
# mirrors torchvision uses (yann.lecun.com, the original site, has been
# refusing downloads, so PyTorch's copy comes first) and Zalando's own bucket.
MIRRORS = {
    "mnist": ["https://ossci-datasets.s3.amazonaws.com/mnist/",
              "http://yann.lecun.com/exdb/mnist/"],
    "fashion-mnist": ["http://fashion-mnist.s3-website.eu-central-1.amazonaws.com/"],
}

# MD5 of each gzipped file as published: MNIST's as in torchvision's
# datasets/mnist.py, Fashion-MNIST's as in its README (Debian ships that README,
# but recompressed the files themselves, so theirs hash differently).
CHECKSUMS = {
    "mnist": {"train_images": "f68b3c2dcbeaaa9fbdd348bbdeb94873",
              "train_labels": "d53e105ee54ea40749a09fcbcd1e9432",
              "test_images": "9fb629c4189551a2d022fa330f9573f3",
              "test_labels": "ec29112dd5afa0611ce80d1b7f02629c"},
    "fashion-mnist": {"train_images": "8d4fb7e6c68d591d4c3dfef9ec88bf0d",
                      "train_labels": "25c81989df183df01b3e8a0aad5dffbe",
                      "test_images": "bef4ecab320f06d8554ea6380940ec79",
                      "test_labels": "bb300cfdad3c16e7a12a480ee83cd310"},
}

DOWNLOAD_TIMEOUT = 60  # seconds a download may wait for the server at any one point


def load_digits(test_fraction=0.2, seed=0):
    """The UCI optical-recognition digits shipped with fastmlp: 1,797 8x8 images.

    Parameters
    ----------
    test_fraction : float
        Share of the samples put in the test set (rounded to whole samples).
    seed : int
        Seed of the permutation that splits the data (as in ``train_val_split``).

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
    return train_val_split(X, data[:, -1], test_fraction, seed)


def _read(path, expected):
    """The bytes of the file ``path``, gunzipped when they start with 1f 8b.
    Errors name the file and ``expected``, a description of what it should be."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file (expected {expected})") from None
    if data[:2] == b"\x1f\x8b":
        try:
            data = gzip.decompress(data)
        except (EOFError, OSError, zlib.error) as error:
            raise ValueError(f"{path}: expected {expected}, but its gzip stream is "
                             f"truncated or corrupt ({error})") from None
    return data


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
    FileNotFoundError
        Naming the file, when it does not exist.
    ValueError
        Naming the file, when its gzip stream is broken, its magic number is
        not an IDX one or its size does not match the shape in its header.
    """
    data = _read(path, "an IDX file")
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


def _pair(X, y, source):
    """Images X as (n, n_features), keeping their dtype, and integer labels y
    as int64 (n,); ValueError naming ``source`` when they do not fit that."""
    if not (isinstance(X, np.ndarray) and X.dtype.kind in "buif" and X.ndim >= 1):
        raise ValueError(f"{source}: expected numeric images, got {type(X).__name__} "
                         f"{getattr(X, 'dtype', '')}")
    if not (isinstance(y, np.ndarray) and y.dtype.kind in "iu" and y.ndim == 1):
        raise ValueError(f"{source}: expected integer labels of shape (n,), got "
                         f"{type(y).__name__} {getattr(y, 'dtype', '')} "
                         f"{getattr(y, 'shape', '')}")
    if len(X) != len(y):
        raise ValueError(f"{source}: {len(X)} images but {len(y)} labels")
    return X.reshape(len(X), -1), y.astype(np.int64)


class _PickledDtype:
    """Stands in for ``numpy.dtype`` while unpickling: a plain numeric type
    (bool, integer or float) and its byte order, nothing else."""

    def __init__(self, name, align=False, copy=False):
        if not (isinstance(name, str) and re.fullmatch(r"[biuf][1248]", name)):
            raise pickle.UnpicklingError(f"refused the dtype {name!r:.40}: only plain "
                                         f"numeric types (such as 'f4', 'i8') are allowed")
        self.dtype = np.dtype(name)

    def __setstate__(self, state):
        # (version, byte order, subarray, names, fields, itemsize, alignment, flags[, metadata])
        if not (isinstance(state, tuple) and len(state) in (8, 9) and state[1] in ("<", ">", "|", "=")
                and state[2:5] == (None, None, None)):
            raise pickle.UnpicklingError(f"unexpected dtype state {state!r:.80}")
        if state[1] in ("<", ">"):
            self.dtype = self.dtype.newbyteorder(state[1])


class _PickledArray:
    """Stands in for ``numpy.ndarray`` while unpickling: checks the state NumPy
    pickles an array with and builds the array from its bytes (NumPy's own
    ``__setstate__`` can crash the interpreter on malformed states)."""

    array = None

    def __setstate__(self, state):
        # (version, shape, dtype, Fortran order, data); version 0 had no version
        if not (isinstance(state, tuple) and len(state) in (4, 5)):
            raise pickle.UnpicklingError(f"unexpected array state {state!r:.80}")
        shape, dtype, fortran, data = state[-4:]
        if not (isinstance(shape, tuple) and all(type(d) is int and d >= 0 for d in shape)
                and isinstance(dtype, _PickledDtype) and isinstance(fortran, bool)
                and isinstance(data, (bytes, str))):
            raise pickle.UnpicklingError(f"unexpected array state {state!r:.80}")
        if isinstance(data, str):  # a Python 2 str, decoded as latin1 by the unpickler
            data = data.encode("latin1")
        flat = np.frombuffer(data, dtype.dtype)
        self.array = flat.reshape(shape, order="F" if fortran else "C").copy()


def _reconstruct(cls, shape, typecode):
    """Stands in for NumPy's ``_reconstruct``: an empty array awaiting its state."""
    if cls is not _PickledArray:
        raise pickle.UnpicklingError("_reconstruct may only build a numpy.ndarray")
    return _PickledArray()


# The globals a pickle of NumPy arrays names (``_reconstruct`` under its NumPy 1
# and NumPy 2 module names), each mapped to its checked stand-in.
PICKLE_GLOBALS = {
    ("numpy.core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy._core.multiarray", "_reconstruct"): _reconstruct,
    ("numpy", "ndarray"): _PickledArray,
    ("numpy", "dtype"): _PickledDtype,
}


class _ArrayUnpickler(pickle._Unpickler):
    """An unpickler that builds NumPy arrays and plain containers, and refuses
    every other global (a pickle can name any function and call it).

    It is Python's own unpickler in Python (``pickle._Unpickler``): the C one
    allocates whatever a damaged memo index asks for, gigabytes in a few bytes.
    Protocol 5's out-of-band buffers are left out for the same reason."""

    dispatch = {code: load for code, load in pickle._Unpickler.dispatch.items()
                if bytes([code]) not in (pickle.BYTEARRAY8, pickle.NEXT_BUFFER,
                                         pickle.READONLY_BUFFER)}

    def find_class(self, module, name):
        try:
            return PICKLE_GLOBALS[module, name]
        except KeyError:
            raise pickle.UnpicklingError(
                f"refused to load the global {module}.{name}: only NumPy arrays are "
                f"allowed ({', '.join('.'.join(key) for key in PICKLE_GLOBALS)})") from None


def _unpickled_arrays(obj):
    """``obj`` with each stand-in array replaced by its array, tuples walked."""
    if isinstance(obj, tuple):
        return tuple(_unpickled_arrays(item) for item in obj)
    return obj.array if isinstance(obj, _PickledArray) else obj


MNIST_PKL = "mnist.pkl.gz: a pickle of ((X_train, y_train), (X_valid, y_valid), (X_test, y_test))"


def load_mnist_pkl(path):
    """Read the classic ``mnist.pkl.gz`` (deeplearning.net, Nielsen's book),
    without running any code it might carry.

    Parameters
    ----------
    path : str or Path
        The file, gzipped or not: the Python 2 pickle (protocol 2, read with
        encoding "latin1") as distributed, or a Python 3 one of protocol 3 or
        4. Only NumPy arrays, tuples and numbers are unpickled.

    Returns
    -------
    (X_train, y_train), (X_valid, y_valid), (X_test, y_test)
        X as stored, flattened to (n, n_features) (the original: float32 in
        [0, 1], (50000, 784), (10000, 784), (10000, 784)); y int64 of shape (n,).

    Raises
    ------
    FileNotFoundError
        Naming the file, when it does not exist.
    ValueError
        Naming the file, when it is truncated or corrupt, names any global but
        NumPy's array machinery, or does not hold three (X, y) pairs.
    """
    data = _read(path, MNIST_PKL)
    try:
        sets = _unpickled_arrays(_ArrayUnpickler(io.BytesIO(data), encoding="latin1").load())
    except (pickle.UnpicklingError, EOFError, ValueError, TypeError, AttributeError,
            IndexError, KeyError, struct.error) as error:  # what damaged pickles raise
        raise ValueError(f"{path}: expected {MNIST_PKL}; it could not be unpickled "
                         f"({type(error).__name__}: {error})") from None
    if not (isinstance(sets, tuple) and len(sets) == 3
            and all(isinstance(pair, tuple) and len(pair) == 2 for pair in sets)):
        raise ValueError(f"{path}: expected {MNIST_PKL}, got a {type(sets).__name__} "
                         f"of another shape")
    return tuple(_pair(X, y, f"{path}, {part} set")
                 for (X, y), part in zip(sets, ("training", "validation", "test")))


def load_array(path, expected="a .npy file"):
    """``np.load(path, allow_pickle=False)``: an array from a .npy file (or the
    archive of a .npz); errors name the file and what was ``expected``."""
    try:
        return np.load(path, allow_pickle=False)
    except FileNotFoundError:
        raise FileNotFoundError(f"{path}: no such file (expected {expected})") from None
    except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: expected {expected}, but it could not be read "
                         f"({error})") from None


NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")


def load_npz(path):
    """Read Keras' ``mnist.npz`` (or any .npz with the same four arrays).

    Parameters
    ----------
    path : str or Path
        A .npz holding x_train, y_train, x_test and y_test (no pickled objects).

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        X as stored, flattened to (n, n_features) (Keras' file: uint8 pixels
        0..255, 28x28 images, so (n, 784)); y int64 of shape (n,).

    Raises
    ------
    FileNotFoundError or ValueError
        Naming the file and what was expected, when it is missing, not a .npz,
        lacks one of the four arrays or the lengths disagree.
    """
    expected = f"a .npz with the arrays {', '.join(NPZ_KEYS)}"
    archive = load_array(path, expected)
    if not isinstance(archive, np.lib.npyio.NpzFile):
        raise ValueError(f"{path}: expected {expected}, but it holds a single array")
    with archive:
        missing = [key for key in NPZ_KEYS if key not in archive.files]
        if missing:
            raise ValueError(f"{path}: expected {expected}; missing {', '.join(missing)} "
                             f"(it holds {', '.join(archive.files) or 'nothing'})")
        try:
            arrays = {key: archive[key] for key in NPZ_KEYS}
        except (ValueError, OSError, EOFError, zipfile.BadZipFile) as error:
            raise ValueError(f"{path}: expected {expected}, but an array could not be "
                             f"read ({error})") from None
    return (_pair(arrays["x_train"], arrays["y_train"], f"{path}, x_train/y_train"),
            _pair(arrays["x_test"], arrays["y_test"], f"{path}, x_test/y_test"))


def load_npy(images_path, labels_path):
    """Read images and labels from two .npy files (no pickled objects).

    Parameters
    ----------
    images_path, labels_path : str or Path
        The images, of shape (n, ...), and the integer labels, of shape (n,).

    Returns
    -------
    X, y
        X as stored, flattened to (n, n_features); y int64 of shape (n,).

    Raises
    ------
    FileNotFoundError or ValueError
        Naming the file and what was expected, when one is missing or not a
        .npy of that kind, or their lengths disagree.
    """
    X = load_array(images_path, "a .npy of images")
    y = load_array(labels_path, "a .npy of integer labels")
    return _pair(X, y, f"{images_path} and {labels_path}")


def load_idx_pair(images_path, labels_path):
    """Images and labels from two IDX files (gzipped or not), as MNIST ships them:
    X as stored, flattened to (n, n_features); y int64 of shape (n,)."""
    return _pair(load_idx(images_path), load_idx(labels_path),
                 f"{images_path} and {labels_path}")


def scale(X):
    """Pixels to float32 in [0, 1].

    Integer arrays (uint8 pixels, or any integer type) with values 0..255 are
    divided by 255; float arrays already within [0, 1] are returned as float32
    (no copy when they are float32 already). Anything else, floats beyond
    [0, 1] (say 0..255 after a cast) included, is refused rather than guessed.

    Parameters
    ----------
    X : array-like of any shape

    Returns
    -------
    ndarray of the same shape, float32.
    """
    X = np.asarray(X)
    if X.dtype.kind in "iu":
        if X.size and (X.min() < 0 or X.max() > 255):
            raise ValueError(f"scale expects integer pixels 0..255, got values "
                             f"{X.min()}..{X.max()}")
        return np.divide(X, np.float32(255), dtype=np.float32)
    if X.dtype.kind == "f":
        if X.size and not (X.min() >= 0 and X.max() <= 1):  # NaN fails both
            raise ValueError(f"scale expects floats in [0, 1] (or integer pixels 0..255), "
                             f"got values {X.min()}..{X.max()}; divide by their range first")
        return X.astype(np.float32, copy=False)
    raise ValueError(f"scale expects integer pixels or floats, got {X.dtype}")


def train_val_split(X, y, val_fraction=0.1, seed=0):
    """Split samples at random into a training and a validation part.

    Parameters
    ----------
    X : ndarray of shape (n, ...)
    y : ndarray of shape (n, ...)
    val_fraction : float
        Share of the samples for validation, rounded to whole samples.
    seed : int
        Seed of ``numpy.random.default_rng``; its ``permutation(n)`` puts the
        first round(val_fraction * n) samples in validation.

    Returns
    -------
    (X_train, y_train), (X_val, y_val)
        Rows of X and y, in the permuted order.
    """
    if len(X) != len(y):
        raise ValueError(f"X has {len(X)} samples but y has {len(y)}")
    n_val = int(round(val_fraction * len(y)))
    if not 0 < n_val < len(y):
        raise ValueError(f"val_fraction={val_fraction} of {len(y)} samples leaves "
                         f"{n_val} for validation and {len(y) - n_val} for training; "
                         f"each needs at least one")
    order = np.random.default_rng(seed).permutation(len(y))
    val, train = order[:n_val], order[n_val:]
    return (X[train], y[train]), (X[val], y[val])


def _env_root():
    """[$FASTMLP_DATA] when that variable is set, else []."""
    value = os.environ.get("FASTMLP_DATA")
    return [value] if value else []


def data_dirs(name):
    """Folders searched for the data set ``name``, in order: ``$FASTMLP_DATA/name``
    when that variable is set, then ``root/name`` for each of DATA_ROOTS."""
    return [Path(root).expanduser() / name for root in _env_root() + DATA_ROOTS]


def download_dirs(name):
    """Folders a download of ``name`` may go to, the first writable one taken:
    ``$FASTMLP_DATA/name`` when that variable is set, then the cache
    (``DATA_ROOTS[0]/name``)."""
    return [Path(root).expanduser() / name for root in _env_root() + DATA_ROOTS[:1]]


def _find(folder, stem):
    """``folder/stem.gz`` or ``folder/stem``, whichever exists first, else None."""
    for candidate in (folder / (stem + ".gz"), folder / stem):
        if candidate.is_file():
            return candidate
    return None


def _download(url, target, md5):
    """Fetch ``url`` into a temporary file beside ``target`` (a Path), renamed
    to ``target`` only when its MD5 is ``md5``; ValueError on a mismatch."""
    part = tempfile.NamedTemporaryFile(dir=target.parent, prefix=f".{target.name}.",
                                       suffix=".part", delete=False)
    try:
        digest = hashlib.md5(usedforsecurity=False)
        with part, urllib.request.urlopen(url, timeout=DOWNLOAD_TIMEOUT) as response:
            for block in iter(lambda: response.read(1 << 20), b""):
                digest.update(block)
                part.write(block)
            if getattr(response, "length", None):  # HTTP's bytes still due
                raise ConnectionError(f"the transfer stopped {response.length} bytes short")
        if digest.hexdigest() != md5:
            raise ValueError(f"checksum mismatch: {target.name} downloaded from {url} has "
                             f"MD5 {digest.hexdigest()}, expected {md5}; it was not kept")
        os.replace(part.name, target)
    finally:
        Path(part.name).unlink(missing_ok=True)


def _download_set(folders, mirrors, checksums, looked):
    """Download the IDX files missing from the first writable of ``folders``,
    each from the first of ``mirrors`` that serves it; returns that folder.
    FileNotFoundError (starting with ``looked``) lists every folder and URL
    that failed and why."""
    failures = []
    for folder in folders:
        try:
            folder.mkdir(parents=True, exist_ok=True)
            if not os.access(folder, os.W_OK | os.X_OK):
                raise PermissionError("not writable")
        except OSError as error:
            failures.append(f"{folder}: {error}")
            continue
        for key, stem in IDX_FILES.items():
            if _find(folder, stem):
                continue
            for mirror in mirrors:
                url = f"{mirror.rstrip('/')}/{stem}.gz"
                print(f"fastmlp: downloading {url} to {folder}", file=sys.stderr)
                try:
                    _download(url, folder / (stem + ".gz"), checksums[key])
                    break
                except (OSError, http.client.HTTPException) as error:
                    failures.append(f"{url}: {error}")
            else:
                raise FileNotFoundError(f"{looked}; downloading {stem}.gz into {folder} "
                                        f"failed: {'; '.join(failures) or 'no mirrors'}")
        return folder
    raise FileNotFoundError(f"{looked}; no folder to download into: {'; '.join(failures)}")


def load_mnist_style(name, path=None, download=True, mirrors=None, checksums=None):
    """The four IDX files of an MNIST-style data set, from the first folder
    that holds all of them, downloaded there first if asked.

    Parameters
    ----------
    name : str
        The data set's folder name, e.g. "mnist".
    path : str or Path, optional
        The one folder to look in (and download into); by default each of
        ``data_dirs(name)``. File names are those of IDX_FILES, each with or
        without ``.gz``.
    download : bool
        When no folder holds all four files, fetch the missing ``.gz`` files
        (the default, as Keras does; False raises FileNotFoundError instead)
        into the first writable of ``download_dirs(name)`` (or into ``path``),
        each through a temporary file renamed into place only when its MD5
        matches.
    mirrors : list of str, optional
        Base URLs to download from, tried in order; by default MIRRORS[name].
    checksums : dict, optional
        MD5 of each gzipped file, by IDX_FILES key; by default CHECKSUMS[name].

    Returns
    -------
    (X_train, y_train), (X_test, y_test)
        X uint8 of shape (n, rows * cols), raw pixels 0..255 (``scale`` them);
        y int64 of shape (n,).

    Raises
    ------
    FileNotFoundError
        Naming the files expected, every folder looked in and, after a failed
        download, every URL tried and why it failed.
    ValueError
        When a downloaded file's checksum does not match (naming the file, URL
        and both checksums), or a file found is corrupt.
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
    mirrors = MIRRORS.get(name, []) if mirrors is None else mirrors
    looked = (f"{name}: expected the files "
              f"{', '.join(s + '[.gz]' for s in IDX_FILES.values())} "
              f"in one of: {', '.join(str(f) for f in folders)}")
    if not download:
        raise FileNotFoundError(f"{looked}; download=True fetches them from "
                                f"{', '.join(mirrors) or 'the mirrors you pass'}")
    checksums = CHECKSUMS.get(name, {}) if checksums is None else checksums
    if set(checksums) != set(IDX_FILES):
        raise ValueError(f"{name}: downloading needs the MD5 of each of "
                         f"{', '.join(IDX_FILES)} (checksums=), got {sorted(checksums)}")
    targets = [Path(path)] if path is not None else download_dirs(name)
    return load_mnist_style(name, _download_set(targets, mirrors, checksums, looked))


def load_fashion_mnist(path=None, download=True, mirrors=None):
    """Fashion-MNIST: 60,000 training and 10,000 test 28x28 images of clothes,
    10 classes. Debian's package dataset-fashion-mnist installs it in
    /usr/share/datasets/fashion-mnist. Parameters and returns (X of shape
    (n, 784)) as for ``load_mnist_style``."""
    return load_mnist_style("fashion-mnist", path, download, mirrors)


def load_mnist(path=None, download=True, mirrors=None):
    """MNIST: 60,000 training and 10,000 test 28x28 handwritten digits, in a
    folder named "mnist". Parameters and returns (X of shape (n, 784)) as for
    ``load_mnist_style``."""
    return load_mnist_style("mnist", path, download, mirrors)
