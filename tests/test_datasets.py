import gzip

import numpy as np
import pytest

from fastmlp import datasets
from fastmlp.datasets import IDX_FILES, load_digits, load_fashion_mnist, load_idx


def test_load_digits():
    (X, y), (X_test, y_test) = load_digits()
    assert X.shape == (1438, 64) and X_test.shape == (359, 64)
    assert X.dtype == np.float32 and y.dtype == np.int64
    assert X.min() == 0.0 and X.max() == 1.0
    assert set(np.unique(np.concatenate([y, y_test]))) == set(range(10))
    (X2, y2), _ = load_digits(seed=0)
    np.testing.assert_array_equal(X, X2)
    (X3, _), _ = load_digits(seed=1)
    assert not np.array_equal(X, X3)


def write_idx(path, array, code, compress):
    header = bytes([0, 0, code, array.ndim]) + np.array(array.shape, ">u4").tobytes()
    data = header + array.astype(array.dtype.newbyteorder(">")).tobytes()
    (gzip.open if compress else open)(path, "wb").write(data)


@pytest.mark.parametrize("compress", [False, True])
@pytest.mark.parametrize("dtype, code", [(np.uint8, 0x08), (np.int32, 0x0C), (np.float32, 0x0D)])
def test_load_idx(tmp_path, compress, dtype, code):
    array = (np.arange(24).reshape(2, 3, 4) * 7).astype(dtype)
    path = tmp_path / ("a.idx.gz" if compress else "a.idx")
    write_idx(path, array, code, compress)
    got = load_idx(path)
    assert got.dtype == dtype and got.dtype.isnative
    np.testing.assert_array_equal(got, array)


def test_load_idx_rejects_truncated_and_foreign_files(tmp_path):
    path = tmp_path / "t.idx"
    write_idx(path, np.zeros((5, 4), np.uint8), 0x08, False)
    path.write_bytes(path.read_bytes()[:-3])
    with pytest.raises(ValueError, match="t.idx is truncated"):
        load_idx(path)
    path.write_bytes(b"PK\x03\x04 not an idx file")
    with pytest.raises(ValueError, match="t.idx is not an IDX file"):
        load_idx(path)


def test_load_fashion_mnist_from_debian_package():
    (X, y), (X_test, y_test) = load_fashion_mnist("/usr/share/datasets/fashion-mnist")
    assert X.shape == (60000, 784) and X_test.shape == (10000, 784)
    assert X.dtype == np.uint8 and y.dtype == np.int64
    assert set(np.unique(y)) == set(range(10)) and len(y_test) == 10000


def test_fastmlp_data_comes_first(tmp_path, monkeypatch):
    folder = tmp_path / "fashion-mnist"
    folder.mkdir()
    for key, stem in IDX_FILES.items():
        shape = (3, 2, 2) if "images" in key else (3,)
        write_idx(folder / (stem + ".gz"), np.full(shape, 7, np.uint8), 0x08, True)
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path))
    (X, y), (X_test, _) = load_fashion_mnist()
    assert X.shape == (3, 4) and np.all(X == 7) and np.all(y == 7)


def test_missing_data_names_files_and_folders(tmp_path, monkeypatch):
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path))
    monkeypatch.setattr(datasets.Path, "home", lambda: tmp_path / "home")
    with pytest.raises(FileNotFoundError) as error:
        datasets.load_mnist_style("no-such-set")
    message = str(error.value)
    assert "train-images-idx3-ubyte" in message and str(tmp_path / "no-such-set") in message
    assert "/usr/share/datasets/no-such-set" in message
