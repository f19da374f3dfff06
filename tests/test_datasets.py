import gzip

import numpy as np
import pytest

from fastmlp import datasets
from fastmlp.datasets import IDX_FILES, load_digits, load_fashion_mnist, load_idx, load_mnist


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
