import functools
import gzip
import hashlib
import http.server
import os
import pickle
import pickletools
import random
import re
import struct
import threading
import tracemalloc

import numpy as np
import pytest

from fastmlp import datasets
from fastmlp.datasets import (IDX_FILES, load_digits, load_fashion_mnist, load_idx, load_mnist,
                              load_mnist_pkl, load_mnist_style, load_npy, load_npz, one_hot,
                              scale, train_val_split)


def test_load_digits():
    (X, y), (X_test, y_test) = load_digits()
    assert X.shape == (1438, 64) and X_test.shape == (359, 64)
    assert y.shape == (1438,) and y_test.shape == (359,)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(y)) == set(np.unique(y_test)) == set(range(10))


def test_load_digits_first_image_is_a_zero():
    # the first line of digits.csv.gz, a 0, lands at position 0 of this permutation
    (X, y), (X_test, y_test) = load_digits(test_fraction=0.2, seed=0)
    X_all, y_all = np.concatenate([X_test, X]), np.concatenate([y_test, y])
    first = np.random.default_rng(0).permutation(1797).tolist().index(0)
    assert y_all[first] == 0
    np.testing.assert_array_equal(X_all[first, :8] * 16, [0, 0, 5, 13, 9, 1, 0, 0])
    np.testing.assert_array_equal(X_all[first, -8:] * 16, [0, 0, 6, 13, 10, 0, 0, 0])


def test_load_digits_split_follows_seed_and_fraction():
    (X, y), (X_test, y_test) = load_digits(seed=0)
    (X2, y2), (X2_test, y2_test) = load_digits(seed=0)
    for a, b in [(X, X2), (y, y2), (X_test, X2_test), (y_test, y2_test)]:
        np.testing.assert_array_equal(a, b)
    (X3, _), _ = load_digits(seed=1)
    assert not np.array_equal(X, X3)
    (X4, _), (X4_test, _) = load_digits(test_fraction=0.5)
    assert len(X4) + len(X4_test) == 1797 and len(X4_test) == 898


def write_idx(path, array, code, compress):
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype, code", [(np.uint8, 0x08), (np.int8, 0x09), (np.int16, 0x0B),
                                         (np.int32, 0x0C), (np.float32, 0x0D),
                                         (np.float64, 0x0E)])
def test_load_idx(tmp_path, compress, dtype, code):
    array = (np.arange(24).reshape(2, 3, 4) * 5 - 40).astype(dtype)
    path = tmp_path / "a.idx"  # no .gz suffix: compression is told by the content
    write_idx(path, array, code, compress)
    got = load_idx(path)
    assert got.dtype == dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


@pytest.mark.parametrize("keep", [-3, 6])  # short of data, short of header
def test_load_idx_rejects_truncated_files(tmp_path, keep):
    path = tmp_path / "t.idx"
    write_idx(path, np.zeros((5, 4), np.uint8), 0x08, False)
    path.write_bytes(path.read_bytes()[:keep])
    with pytest.raises(ValueError, match="t.idx is truncated"):
        load_idx(path)


def test_load_idx_rejects_foreign_files(tmp_path):
    path = tmp_path / "f.idx"
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="f.idx is not an IDX file"):
        load_idx(path)


def test_load_fashion_mnist_from_debian_package():
    (X, y), (X_test, y_test) = load_fashion_mnist("/usr/share/datasets/fashion-mnist")
    assert X.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert X.dtype == X_test.dtype == np.uint8 and y.dtype == y_test.dtype == np.int64
    assert y.shape == (60000,) and y_test.shape == (10000,)
    assert set(np.unique(y)) == set(np.unique(y_test)) == set(range(10))
    assert X.max() == 255


@pytest.fixture
def no_data_roots(tmp_path, monkeypatch):
    """Point the default search folders at empty ones under tmp_path."""
    roots = [str(tmp_path / "cache"), str(tmp_path / "system")]
    monkeypatch.setattr(datasets, "DATA_ROOTS", roots)
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    return roots


def write_fake_set(folder, n_train=3, n_test=2):
    """The four IDX files of a tiny MNIST-style set of 2x2 images, labels gzipped
    and images not. Pixels and labels of sample i are i; test samples start at 100."""
    folder.mkdir(parents=True)
    for key, stem in IDX_FILES.items():
        labels = np.arange(n_test) + 100 if key.startswith("test") else np.arange(n_train)
        array = labels if "labels" in key else np.repeat(labels, 4).reshape(-1, 2, 2)
        compress = "labels" in key
        write_idx(folder / (stem + ".gz" * compress), array.astype(np.uint8), 0x08, compress)


def test_fastmlp_data_is_searched(tmp_path, monkeypatch, no_data_roots):
    write_fake_set(tmp_path / "env" / "fashion-mnist")
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path / "env"))
    (X, y), (X_test, y_test) = load_fashion_mnist()
    assert X.shape == (3, 4) and X.dtype == np.uint8 and y.dtype == np.int64
    np.testing.assert_array_equal(X, np.repeat([[0], [1], [2]], 4, axis=1))
    np.testing.assert_array_equal(y, [0, 1, 2])
    np.testing.assert_array_equal(y_test, [100, 101])


def test_search_order(tmp_path, monkeypatch, no_data_roots):
    write_fake_set(tmp_path / "system" / "mnist", n_train=4)
    assert len(load_mnist()[0][1]) == 4
    write_fake_set(tmp_path / "cache" / "mnist", n_train=5)
    assert len(load_mnist()[0][1]) == 5
    write_fake_set(tmp_path / "env" / "mnist", n_train=6)
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path / "env"))
    assert len(load_mnist()[0][1]) == 6


def test_default_search_folders():
    assert [str(d) for d in datasets.data_dirs("mnist")][-1] == "/usr/share/datasets/mnist"
    assert datasets.data_dirs("mnist")[-2].parts[-3:] == (".cache", "fastmlp", "mnist")


def test_missing_data_names_files_and_folders(tmp_path, monkeypatch, no_data_roots):
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path / "env"))
    (tmp_path / "cache" / "mnist").mkdir(parents=True)
    (tmp_path / "cache" / "mnist" / "train-images-idx3-ubyte.gz").write_bytes(b"")
    with pytest.raises(FileNotFoundError) as error:
        load_mnist()
    message = str(error.value)
    for stem in IDX_FILES.values():
        assert stem in message
    for root in [tmp_path / "env", *no_data_roots]:
        assert str(root) + "/mnist" in message


def test_truncated_gzip_names_the_file(tmp_path):
    path = tmp_path / "train-labels-idx1-ubyte.gz"
    write_idx(path, np.arange(100, dtype=np.uint8), 0x08, True)
    path.write_bytes(path.read_bytes()[:-12])
    with pytest.raises(ValueError, match=r"train-labels-idx1-ubyte.gz: expected an IDX file, "
                                         r"but its gzip stream is truncated or corrupt"):
        load_idx(path)


def test_missing_file_names_what_was_expected(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"nothing.idx: no such file \(expected an IDX"):
        load_idx(tmp_path / "nothing.idx")


# --- mnist.pkl.gz ---------------------------------------------------------------------------

def py2_pickle(obj, module="numpy.core.multiarray"):
    """``obj`` (tuples of arrays) pickled as Python 2's cPickle wrote mnist.pkl.gz:
    protocol 2, arrays rebuilt by ``module``._reconstruct, strings and array data
    as Python 2 str (opcodes U and T), without the memo opcodes (q, h)."""
    def string(data):
        return b"U" + bytes([len(data)]) + data if len(data) < 256 else \
            b"T" + struct.pack("<i", len(data)) + data

    def dump(o):
        if isinstance(o, tuple):
            items = b"".join(dump(item) for item in o)
            return items + b"\x85\x86\x87"[len(o) - 1:len(o)] if 1 <= len(o) <= 3 \
                else b"(" + items + b"t"
        if o is None:
            return b"N"
        if isinstance(o, bool):
            return b"\x88" if o else b"\x89"
        if isinstance(o, int):
            return (b"K" + struct.pack("<B", o) if 0 <= o < 256 else
                    b"M" + struct.pack("<H", o) if 0 <= o < 65536 else b"J" + struct.pack("<i", o))
        if isinstance(o, bytes):
            return string(o)
        if isinstance(o, np.dtype):
            return (b"cnumpy\ndtype\n" + dump((o.str[1:].encode(), 0, 1)) + b"R"
                    + dump((3, o.str[:1].encode(), None, None, None, -1, -1, 0)) + b"b")
        assert isinstance(o, np.ndarray)
        return (f"c{module}\n_reconstruct\ncnumpy\nndarray\n".encode() + dump((0,))
                + string(b"b") + b"\x87R" + dump((1, o.shape, o.dtype, False, o.tobytes())) + b"b")
    return b"\x80\x02" + dump(obj) + b"."


def test_py2_pickle_writes_what_python_2_wrote():
    # numpy.array([15, 16, 17], numpy.uint32) pickled by Python 2 (protocol 2), as quoted in
    # PicklingTools' C++ sources
    python2 = (b"\x80\x02cnumpy.core.multiarray\n_reconstruct\nq\x01cnumpy\nndarray\nq\x02K\x00"
               b"\x85U\x01b\x87Rq\x03(K\x01K\x03\x85cnumpy\ndtype\nq\x04U\x02u4K\x00K\x01\x87Rq"
               b"\x05(K\x03U\x01<NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb\x89U\x0c\x0f\x00"
               b"\x00\x00\x10\x00\x00\x00\x11\x00\x00\x00tb.")
    assert py2_pickle(np.array([15, 16, 17], "<u4")) == pickletools.optimize(python2)


def mnist_sets(seed=0, sizes=(5, 3, 2), width=6):
    """Three (X float32 in [0, 1], y int64) pairs shaped like mnist.pkl.gz's."""
    rng = np.random.default_rng(seed)
    return tuple((rng.random((n, width), dtype=np.float32), rng.integers(0, 10, n))
                 for n in sizes)


def write_pkl(path, data, compress=True):
    with (gzip.open if compress else open)(path, "wb") as f:
        f.write(data)
    return path


@pytest.mark.parametrize("module", ["numpy.core.multiarray", "numpy._core.multiarray"])
@pytest.mark.parametrize("compress", [True, False])
def test_load_mnist_pkl_as_python_2_wrote_it(tmp_path, module, compress):
    sets = mnist_sets()
    path = write_pkl(tmp_path / "mnist.pkl.gz", py2_pickle(sets, module), compress)
    loaded = load_mnist_pkl(path)
    assert len(loaded) == 3
    for (X, y), (X_ref, y_ref) in zip(loaded, sets):
        assert X.dtype == np.float32 and y.dtype == np.int64 and X.flags.writeable
        np.testing.assert_array_equal(X, X_ref)
        np.testing.assert_array_equal(y, y_ref)


@pytest.mark.parametrize("protocol", [3, 4])
def test_load_mnist_pkl_python_3_pickles(tmp_path, protocol):
    sets = mnist_sets(seed=1)
    path = write_pkl(tmp_path / "m.pkl.gz", pickle.dumps(sets, protocol=protocol))
    for (X, y), (X_ref, y_ref) in zip(load_mnist_pkl(path), sets):
        np.testing.assert_array_equal(X, X_ref)
        np.testing.assert_array_equal(y, y_ref)


def test_load_mnist_pkl_keeps_byte_order_and_fortran_layout(tmp_path):
    X = np.asfortranarray(np.arange(12, dtype=">f8").reshape(4, 3))
    data = pickle.dumps(((X, np.arange(4)),) * 3, protocol=4)
    (X_got, _), _, _ = load_mnist_pkl(write_pkl(tmp_path / "f.pkl.gz", data))
    np.testing.assert_array_equal(X_got, np.arange(12).reshape(4, 3))


class Payload:
    """Unpickles as a call of ``function(*args)``."""

    def __init__(self, function, *args):
        self.call = function, args

    def __reduce__(self):
        return self.call


@pytest.mark.parametrize("make", [
    lambda marker: Payload(os.system, f"touch {marker}"),
    lambda marker: Payload(eval, f"open({str(marker)!r}, 'w')"),
    lambda marker: (mnist_sets()[0], Payload(exec, f"open({str(marker)!r}, 'w')")),
])
def test_malicious_pickle_is_refused_and_not_run(tmp_path, make):
    marker = tmp_path / "ran"
    data = pickle.dumps(make(marker), protocol=4)
    path = write_pkl(tmp_path / "mnist.pkl.gz", data)
    with pytest.raises(ValueError, match=r"mnist.pkl.gz: expected mnist.pkl.gz.*refused to load "
                                         r"the global (posix\.system|builtins\.(eval|exec))"):
        load_mnist_pkl(path)
    assert not marker.exists()
    pickle.loads(data)  # the payload works: it is the loader that stops it
    assert marker.exists()


@pytest.mark.parametrize("array, refused", [
    (np.array([{}], dtype=object), "the dtype 'O8'"),
    (np.zeros(2, dtype=[("a", "f4")]), "the dtype 'V4'"),
])
def test_pickled_arrays_of_other_dtypes_are_refused(tmp_path, array, refused):
    path = write_pkl(tmp_path / "m.pkl.gz", pickle.dumps(((array, np.arange(2)),) * 3, 4))
    with pytest.raises(ValueError, match=re.escape(refused)):
        load_mnist_pkl(path)


@pytest.mark.parametrize("sets, message", [
    (mnist_sets()[:2], "got a tuple of another shape"),
    ([(np.zeros((2, 3)), np.arange(2))] * 3, "got a list of another shape"),
    (((np.zeros((2, 3)), np.arange(3)),) * 3, "training set: 2 images but 3 labels"),
    (((np.zeros((2, 3)), np.zeros(2)),) * 3, "training set: expected integer labels"),
])
def test_load_mnist_pkl_wrong_contents(tmp_path, sets, message):
    path = write_pkl(tmp_path / "m.pkl.gz", pickle.dumps(sets, protocol=4))
    with pytest.raises(ValueError, match=re.escape(message)):
        load_mnist_pkl(path)


def test_load_mnist_pkl_truncated_or_missing(tmp_path):
    data = py2_pickle(mnist_sets())
    gz = write_pkl(tmp_path / "a.pkl.gz", data)
    gz.write_bytes(gz.read_bytes()[:-20])
    with pytest.raises(ValueError, match=r"a.pkl.gz: expected mnist.pkl.gz.*gzip stream is "
                                         r"truncated"):
        load_mnist_pkl(gz)
    raw = write_pkl(tmp_path / "b.pkl", data[:-30], compress=False)
    with pytest.raises(ValueError, match=r"b.pkl: expected mnist.pkl.gz.*could not be unpickled"):
        load_mnist_pkl(raw)
    with pytest.raises(FileNotFoundError, match=r"c.pkl.gz: no such file \(expected mnist.pkl"):
        load_mnist_pkl(tmp_path / "c.pkl.gz")


@pytest.mark.parametrize("protocol", [2, 4])
def test_damaged_pickles_give_value_errors(tmp_path, protocol):
    """Truncated and byte-flipped pickles load or raise ValueError, nothing else
    (NumPy's own array and dtype __setstate__ crash the interpreter on some)."""
    data = py2_pickle(mnist_sets()) if protocol == 2 else pickle.dumps(mnist_sets(), 4)
    rng, path, outcomes = random.Random(0), tmp_path / "d.pkl", set()
    for i in range(600):
        damaged = bytearray(data[:rng.randrange(len(data))] if i % 4 == 0 else data)
        for _ in range(rng.randrange(1, 4) * (i % 4 != 0)):
            damaged[rng.randrange(len(damaged))] = rng.randrange(256)
        path.write_bytes(damaged)
        try:
            load_mnist_pkl(path)
            outcomes.add("loaded")
        except ValueError:
            outcomes.add("ValueError")
    assert outcomes == {"loaded", "ValueError"}


def test_huge_memo_index_costs_no_memory(tmp_path):
    # LONG_BINPUT 2**31 - 1: Python's C unpickler grows its memo table to that size
    data = py2_pickle(mnist_sets())
    path = write_pkl(tmp_path / "m.pkl.gz", data[:2] + b"N" + b"r\xff\xff\xff\x7f0" + data[2:])
    tracemalloc.start()
    try:
        (X, _), _, _ = load_mnist_pkl(path)
        assert tracemalloc.get_traced_memory()[1] < 10_000_000
    finally:
        tracemalloc.stop()
    np.testing.assert_array_equal(X, mnist_sets()[0][0])


# --- .npz and .npy --------------------------------------------------------------------------

def keras_arrays(n_train=4, n_test=3):
    """Arrays shaped like Keras' mnist.npz: uint8 images (n, 3, 3), uint8 labels."""
    rng = np.random.default_rng(2)
    return {"x_train": rng.integers(0, 256, (n_train, 3, 3), dtype=np.uint8),
            "y_train": rng.integers(0, 10, n_train, dtype=np.uint8),
            "x_test": rng.integers(0, 256, (n_test, 3, 3), dtype=np.uint8),
            "y_test": rng.integers(0, 10, n_test, dtype=np.uint8)}


def test_load_npz(tmp_path):
    arrays = keras_arrays()
    np.savez_compressed(tmp_path / "mnist.npz", **arrays)
    (X, y), (X_test, y_test) = load_npz(tmp_path / "mnist.npz")
    assert X.shape == (4, 9) and X_test.shape == (3, 9) and X.dtype == np.uint8
    assert y.dtype == y_test.dtype == np.int64
    np.testing.assert_array_equal(X, arrays["x_train"].reshape(4, 9))
    np.testing.assert_array_equal(y_test, arrays["y_test"])


def test_load_npz_errors(tmp_path):
    arrays = keras_arrays()
    np.savez(tmp_path / "keys.npz", x_train=arrays["x_train"], y_train=arrays["y_train"])
    with pytest.raises(ValueError, match=r"keys.npz: expected a .npz with the arrays x_train, "
                                         r"y_train, x_test, y_test; missing x_test, y_test "
                                         r"\(it holds x_train, y_train\)"):
        load_npz(tmp_path / "keys.npz")
    np.savez(tmp_path / "object.npz", **{**arrays, "y_test": np.array([{}] * 3)})
    with pytest.raises(ValueError, match=r"object.npz: .*an array could not be read"):
        load_npz(tmp_path / "object.npz")
    np.savez(tmp_path / "cut.npz", **arrays)
    (tmp_path / "cut.npz").write_bytes((tmp_path / "cut.npz").read_bytes()[:200])
    with pytest.raises(ValueError, match=r"cut.npz: expected a .npz .* could not be read"):
        load_npz(tmp_path / "cut.npz")
    np.save(tmp_path / "one.npy", arrays["x_train"])
    with pytest.raises(ValueError, match=r"one.npy: expected a .npz .* holds a single array"):
        load_npz(tmp_path / "one.npy")
    np.savez(tmp_path / "short.npz", **{**arrays, "y_test": arrays["y_test"][:2]})
    with pytest.raises(ValueError, match=r"short.npz, x_test/y_test: 3 images but 2 labels"):
        load_npz(tmp_path / "short.npz")
    with pytest.raises(FileNotFoundError, match=r"none.npz: no such file \(expected a .npz"):
        load_npz(tmp_path / "none.npz")


def test_load_npy(tmp_path):
    arrays = keras_arrays()
    np.save(tmp_path / "images.npy", arrays["x_train"])
    np.save(tmp_path / "labels.npy", arrays["y_train"])
    X, y = load_npy(tmp_path / "images.npy", tmp_path / "labels.npy")
    np.testing.assert_array_equal(X, arrays["x_train"].reshape(4, 9))
    np.testing.assert_array_equal(y, arrays["y_train"])
    assert y.dtype == np.int64


def test_load_npy_errors(tmp_path):
    arrays = keras_arrays()
    np.save(tmp_path / "images.npy", arrays["x_train"])
    np.save(tmp_path / "labels3.npy", arrays["y_train"][:3])
    with pytest.raises(ValueError, match=r"images.npy and .*labels3.npy: 4 images but 3 labels"):
        load_npy(tmp_path / "images.npy", tmp_path / "labels3.npy")
    np.save(tmp_path / "float.npy", arrays["y_train"].astype(float))
    with pytest.raises(ValueError, match=r"expected integer labels of shape \(n,\), got "
                                         r"ndarray float64"):
        load_npy(tmp_path / "images.npy", tmp_path / "float.npy")
    np.save(tmp_path / "objects.npy", np.array([{}] * 4))
    with pytest.raises(ValueError, match=r"objects.npy: expected a .npy of integer labels, but"):
        load_npy(tmp_path / "images.npy", tmp_path / "objects.npy")
    (tmp_path / "text.npy").write_text("1,2,3,4\n")
    with pytest.raises(ValueError, match=r"text.npy: expected a .npy of images, but it could"):
        load_npy(tmp_path / "text.npy", tmp_path / "labels3.npy")
    with pytest.raises(FileNotFoundError, match=r"gone.npy: no such file \(expected a .npy of"):
        load_npy(tmp_path / "images.npy", tmp_path / "gone.npy")


# --- one_hot, scale, train_val_split --------------------------------------------------------

def test_one_hot():
    T = one_hot(np.array([2, 0, 1, 2]))
    assert T.dtype == np.float32
    np.testing.assert_array_equal(T, [[0, 0, 1], [1, 0, 0], [0, 1, 0], [0, 0, 1]])
    T = one_hot([1, 1], k=4, dtype=np.float64)
    assert T.dtype == np.float64 and T.shape == (2, 4)
    np.testing.assert_array_equal(T.argmax(axis=1), [1, 1])
    np.testing.assert_array_equal(one_hot(np.array([1.0, 0.0])), [[0, 1], [1, 0]])
    assert one_hot(np.array([], dtype=np.int64), k=3).shape == (0, 3)


@pytest.mark.parametrize("y, k, message", [
    ([0, 3], 3, "label 3 out of range: labels must be 0..2 for 3 classes"),
    ([0, -1], None, "label -1 out of range"),
    ([0.5, 1.0], None, "labels must be whole numbers, got 0.5"),
    ([0.0, np.nan], None, "labels must be whole numbers, got nan"),
    (["a", "b"], None, "one_hot expects integer labels of shape (n,), got <U1 of shape (2,)"),
    ([[0, 1]], None, "one_hot expects integer labels of shape (n,), got int64 of shape (1, 2)"),
    (np.array([], dtype=np.int64), None, "one_hot needs k"),
])
def test_one_hot_refuses(y, k, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        one_hot(y, k)


def test_scale():
    X = np.array([[0, 51, 255]], dtype=np.uint8)
    scaled = scale(X)
    assert scaled.dtype == np.float32
    np.testing.assert_array_equal(scaled, np.array([[0, 51, 255]], np.float32) / np.float32(255))
    assert scale(np.array([3, 0], dtype=np.int64)).dtype == np.float32
    floats = np.array([0.0, 0.5, 1.0], dtype=np.float32)
    assert scale(floats) is floats
    halves = scale(np.array([0.0, 0.5]))
    assert halves.dtype == np.float32 and halves.tolist() == [0.0, 0.5]


@pytest.mark.parametrize("X, message", [
    (np.array([0.0, 255.0]), "scale expects floats in [0, 1] (or integer pixels 0..255), got "
                             "values 0.0..255.0"),
    (np.array([0.5, np.nan]), "scale expects floats in [0, 1]"),
    (np.array([0, 256]), "scale expects integer pixels 0..255, got values 0..256"),
    (np.array([-1, 5]), "got values -1..5"),
    (np.array(["a"]), "scale expects integer pixels or floats, got <U1"),
])
def test_scale_refuses(X, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        scale(X)


def test_train_val_split():
    X, y = np.arange(40).reshape(20, 2), np.arange(20)
    (X_train, y_train), (X_val, y_val) = train_val_split(X, y, val_fraction=0.25, seed=3)
    assert len(y_val) == 5 and len(y_train) == 15
    assert sorted(np.concatenate([y_train, y_val]).tolist()) == list(range(20))
    np.testing.assert_array_equal(X_val[:, 0], 2 * y_val)  # rows stay paired
    order = np.random.default_rng(3).permutation(20)
    np.testing.assert_array_equal(y_val, order[:5])
    (_, y_same), _ = train_val_split(X, y, val_fraction=0.25, seed=3)
    (_, y_other), _ = train_val_split(X, y, val_fraction=0.25, seed=4)
    np.testing.assert_array_equal(y_same, y_train)
    assert not np.array_equal(y_other, y_train)


@pytest.mark.parametrize("fraction, message", [
    (0.01, "val_fraction=0.01 of 20 samples leaves 0 for validation and 20 for training"),
    (0.99, "leaves 20 for validation and 0 for training"),
])
def test_train_val_split_refuses_an_empty_side(fraction, message):
    with pytest.raises(ValueError, match=re.escape(message)):
        train_val_split(np.zeros((20, 2)), np.zeros(20), fraction)
    with pytest.raises(ValueError, match="X has 20 samples but y has 19"):
        train_val_split(np.zeros((20, 2)), np.zeros(19))


# --- downloads, from a server on 127.0.0.1 --------------------------------------------------

@pytest.fixture
def server(tmp_path):
    """An HTTP server on 127.0.0.1 serving tmp_path/"www", in a thread; yields
    (base URL, list of the paths requested)."""
    root, requested = tmp_path / "www", []
    root.mkdir()

    class Handler(http.server.SimpleHTTPRequestHandler):
        def do_GET(self):
            requested.append(self.path)
            if self.path.startswith("/cut/"):  # promises 1000 bytes, sends 10, hangs up
                self.send_response(200)
                self.send_header("Content-Length", "1000")
                self.end_headers()
                self.wfile.write(b"\x1f\x8b" + bytes(8))
                self.close_connection = True
                return
            super().do_GET()

        def log_message(self, *args):
            pass

    httpd = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(Handler, directory=str(root)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", requested
    httpd.shutdown()
    httpd.server_close()


def serve_fake_set(www, n_train=3):
    """write_fake_set's files, all gzipped, under www; returns their MD5s by key."""
    write_fake_set(www / "plain", n_train=n_train)
    for stem in IDX_FILES.values():
        for plain in (www / "plain").glob(stem + "*"):
            data = plain.read_bytes()
            (www / (stem + ".gz")).write_bytes(data if plain.suffix == ".gz" else gzip.compress(data))
    return {key: hashlib.md5((www / (stem + ".gz")).read_bytes()).hexdigest()
            for key, stem in IDX_FILES.items()}


def test_download_when_missing(tmp_path, monkeypatch, no_data_roots, server):
    url, requested = server
    checksums = serve_fake_set(tmp_path / "www")
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path / "env"))
    (X, y), (X_test, y_test) = load_mnist_style("digits", mirrors=[url + "/"],  # by default
                                                checksums=checksums)
    np.testing.assert_array_equal(y, [0, 1, 2])
    np.testing.assert_array_equal(X_test, np.repeat([[100], [101]], 4, axis=1))
    assert sorted(requested) == sorted(f"/{stem}.gz" for stem in IDX_FILES.values())
    folder = tmp_path / "env" / "digits"
    assert sorted(os.listdir(folder)) == sorted(stem + ".gz" for stem in IDX_FILES.values())
    load_mnist_style("digits", download=True, mirrors=[url], checksums=checksums)
    assert len(requested) == 4  # found this time


def test_download_goes_to_the_cache_when_fastmlp_data_is_not_writable(
        tmp_path, monkeypatch, no_data_roots, server):
    url, _ = server
    checksums = serve_fake_set(tmp_path / "www")
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path / "file"))
    load_mnist_style("digits", download=True, mirrors=[url], checksums=checksums)
    assert len(os.listdir(tmp_path / "cache" / "digits")) == 4


def test_download_fetches_only_missing_files_and_tries_mirrors_in_order(
        tmp_path, no_data_roots, server):
    url, requested = server
    checksums = serve_fake_set(tmp_path / "www" / "good")
    write_fake_set(tmp_path / "cache" / "digits")
    (tmp_path / "cache" / "digits" / "t10k-images-idx3-ubyte").unlink()
    dead = "http://127.0.0.1:9"  # the discard port: nothing listens there
    (X, y), (X_test, _) = load_mnist_style("digits", download=True, checksums=checksums,
                                           mirrors=[dead, url + "/empty", url + "/good"])
    assert requested == ["/empty/t10k-images-idx3-ubyte.gz", "/good/t10k-images-idx3-ubyte.gz"]
    assert X_test.shape == (2, 4)


def test_cut_transfer_leaves_nothing_and_next_mirror_serves(tmp_path, no_data_roots, server):
    url, requested = server
    checksums = serve_fake_set(tmp_path / "www")
    with pytest.raises(FileNotFoundError, match=r"cut/train-images-idx3-ubyte.gz: the transfer "
                                                r"stopped 990 bytes short"):
        load_mnist_style("digits", download=True, mirrors=[url + "/cut"], checksums=checksums)
    assert os.listdir(tmp_path / "cache" / "digits") == []
    load_mnist_style("digits", download=True, mirrors=[url + "/cut", url], checksums=checksums)
    assert len(requested) == 9 and sum(path.startswith("/cut/") for path in requested) == 5
    assert sorted(os.listdir(tmp_path / "cache" / "digits")) == \
        sorted(stem + ".gz" for stem in IDX_FILES.values())


def test_load_mnist_and_fashion_mnist_download(tmp_path, monkeypatch, no_data_roots, server):
    url, _ = server
    checksums = serve_fake_set(tmp_path / "www", n_train=5)
    for name, load in [("mnist", load_mnist), ("fashion-mnist", load_fashion_mnist)]:
        monkeypatch.setitem(datasets.CHECKSUMS, name, checksums)
        (X, y), _ = load(download=True, mirrors=[url])
        assert len(y) == 5 and (tmp_path / "cache" / name).is_dir()
        monkeypatch.setitem(datasets.MIRRORS, name, [url + "/nowhere"])
        with pytest.raises(FileNotFoundError, match="nowhere"):
            load(tmp_path / "elsewhere", download=True)


def test_checksum_mismatch_keeps_nothing(tmp_path, no_data_roots, server):
    url, _ = server
    checksums = serve_fake_set(tmp_path / "www")
    wrong = {**checksums, "test_images": "0" * 32}
    with pytest.raises(ValueError) as error:
        load_mnist_style("digits", download=True, mirrors=[url], checksums=wrong)
    message = str(error.value)
    assert f"t10k-images-idx3-ubyte.gz downloaded from {url}/t10k-images-idx3-ubyte.gz" in message
    assert f"has MD5 {checksums['test_images']}, expected {'0' * 32}" in message
    assert "t10k-images" not in " ".join(os.listdir(tmp_path / "cache" / "digits"))


def test_download_path_argument(tmp_path, no_data_roots, server):
    url, _ = server
    checksums = serve_fake_set(tmp_path / "www")
    load_mnist_style("digits", tmp_path / "here", download=True, mirrors=[url],
                     checksums=checksums)
    assert len(os.listdir(tmp_path / "here")) == 4
    assert not (tmp_path / "cache").exists()


def test_download_false_makes_no_request(tmp_path, monkeypatch, no_data_roots, server):
    url, requested = server
    serve_fake_set(tmp_path / "www")
    monkeypatch.setitem(datasets.MIRRORS, "mnist", [url])
    with pytest.raises(FileNotFoundError, match=rf"download=True fetches them from {url}$"):
        load_mnist(download=False)
    assert requested == [] and not (tmp_path / "cache").exists()


def test_failed_download_names_files_folders_and_urls(tmp_path, monkeypatch, no_data_roots,
                                                      server):
    url, _ = server
    checksums = serve_fake_set(tmp_path / "www")
    (tmp_path / "file").write_text("not a folder")
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path / "file"))
    mirrors = [url + "/a/", url + "/b"]
    with pytest.raises(FileNotFoundError) as error:
        load_mnist_style("digits", download=True, mirrors=mirrors, checksums=checksums)
    message = str(error.value)
    for stem in IDX_FILES.values():
        assert stem in message
    for folder in [tmp_path / "file", *no_data_roots]:
        assert str(folder) + "/digits" in message
    assert f"{url}/a/train-images-idx3-ubyte.gz: HTTP Error 404" in message
    assert f"{url}/b/train-images-idx3-ubyte.gz: HTTP Error 404" in message


def test_download_needs_every_checksum(tmp_path, no_data_roots):
    with pytest.raises(ValueError, match="downloading needs the MD5 of each of train_images"):
        load_mnist_style("digits", download=True, mirrors=["http://127.0.0.1:9"])


def test_fashion_mnist_checksums_are_those_debian_documents():
    # Debian ships upstream's README (with the MD5 of each file) but recompressed the files
    with gzip.open("/usr/share/doc/dataset-fashion-mnist/README.md.gz", "rt") as readme:
        table = dict(re.findall(r"`([\w-]+)\.gz`.*`([0-9a-f]{32})`", readme.read()))
    assert table == {stem: datasets.CHECKSUMS["fashion-mnist"][key]
                     for key, stem in IDX_FILES.items()}


def test_load_idx_pair_reads_images_and_labels(tmp_path):
    images = np.arange(24, dtype=np.uint8).reshape(3, 2, 4)
    labels = np.array([2, 0, 1], dtype=np.uint8)
    for name, a in [("images", images), ("labels", labels)]:
        header = struct.pack(">HBB", 0, 0x08, a.ndim) + struct.pack(f">{a.ndim}I", *a.shape)
        (tmp_path / name).write_bytes(header + a.tobytes())
    X, y = datasets.load_idx_pair(tmp_path / "images", tmp_path / "labels")
    np.testing.assert_array_equal(X, images.reshape(3, 8))
    np.testing.assert_array_equal(y, labels)
    assert y.dtype == np.int64
    with pytest.raises(ValueError, match="3 images but 2 labels"):
        (tmp_path / "short").write_bytes(struct.pack(">HBBI", 0, 0x08, 1, 2) + b"\x00\x01")
        datasets.load_idx_pair(tmp_path / "images", tmp_path / "short")
