"""Checks at the edge of the public API: clear errors, inputs never modified."""

import numbers

import numpy as np
from scipy import sparse

from . import kernels


def check_choice(name, value, choices):
    if not isinstance(value, str) or value not in choices:
        raise ValueError(f"unknown {name} {value!r}; choose one of {sorted(choices)}")
    return value


def check_dtype(dtype, choices):
    """The name ("float32" or "float64") of a dtype given as a string or type."""
    try:
        name = np.dtype(dtype).name
    except TypeError:
        name = dtype
    return check_choice("dtype", name, choices)


def check_positive(name, value, integer=False, allow_zero=False):
    kind = numbers.Integral if integer else numbers.Real
    if isinstance(value, bool) or not isinstance(value, kind):
        raise TypeError(f"{name} must be {'an integer' if integer else 'a number'}, "
                        f"got {value!r}")
    if not np.isfinite(value) or value < 0 or (value == 0 and not allow_zero):
        bound = "non-negative" if allow_zero else "positive"
        raise ValueError(f"{name} must be finite and {bound}, got {value!r}")
    return value


def _numeric(name, a):
    try:
        a = np.asarray(a)
    except ValueError as error:  # ragged nested lists
        raise ValueError(f"{name} is not a rectangular array: {error}") from None
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must hold numbers, got dtype {a.dtype}")
    return a


def _check_finite(name, a, indptr=None):
    """Raise naming the first row with NaN or inf: of the array a, or, given
    ``indptr``, of the CSR matrix whose stored values a holds. A sum is NaN or
    inf when any element is, so one pass that allocates nothing clears a finite
    array; only a sum that is not finite (bad values, or finite ones that
    overflow it) pays for the element-wise search."""
    if a.dtype.kind != "f":
        return
    with np.errstate(over="ignore", invalid="ignore"):
        if np.isfinite(np.add.reduce(a, axis=None)):
            return
    bad = ~np.isfinite(a)
    if bad.any():
        row = np.argwhere(bad)[0][0]
        if indptr is not None:
            row = np.searchsorted(indptr, row, side="right") - 1
        raise ValueError(f"{name} contains NaN or inf (first in row {row})")


def _check_compressed(X):
    """Raise unless the CSR or CSC matrix X's index arrays describe its shape:
    scipy checks their contents only on request, and reads out of bounds
    through bad ones."""
    n_major, n_minor = X.shape if X.format == "csr" else X.shape[::-1]
    major, minor = ("row", "column") if X.format == "csr" else ("column", "row")
    indptr, indices = X.indptr, X.indices
    if (indptr.ndim != 1 or len(indptr) != n_major + 1 or indptr[0] != 0
            or np.any(indptr[1:] < indptr[:-1]) or indptr[-1] > min(len(indices), len(X.data))):
        raise ValueError(f"X's indptr does not describe {n_major} {major}s of stored entries: "
                         f"it must rise from 0 to at most the {len(indices)} stored indices")
    indices = indices[:indptr[-1]]
    if len(indices) and (indices.min() < 0 or indices.max() >= n_minor):
        k = np.argmax((indices < 0) | (indices >= n_minor))
        raise ValueError(f"X has a stored entry in {minor} {indices[k]} of {major} "
                         f"{np.searchsorted(indptr, k, side='right') - 1}: its {minor} indices "
                         f"must be 0..{n_minor - 1}")


def _sparse_converted(X, dtype):
    """A scipy sparse X as a CSR matrix of ``dtype``, whose entries may be
    unsorted within a row or repeated (repeats add up, as in X.toarray()).
    The result shares the caller's arrays when X is CSR already, with its
    values converted when they are of another dtype; another format is
    converted to CSR, the one copy made (COO's repeats are then summed)."""
    if X.format in ("csr", "csc"):
        _check_compressed(X)
    csr = X.tocsr()  # X itself when it is CSR
    _check_finite("X", csr.data[:csr.indptr[-1]], csr.indptr)
    with np.errstate(over="ignore"):
        converted = sparse.csr_array(csr, dtype=dtype)  # the caller's index arrays
    if _narrows(csr.dtype, dtype):
        _check_finite(f"X converted to {np.dtype(dtype).name}",
                      converted.data[:csr.indptr[-1]], csr.indptr)
    return converted


def kernel_inputs(X):
    """X as ``check_features`` returns it, as the kernels take it: the array,
    or the ``kernels.SparseRows`` of every row of a CSR matrix."""
    if sparse.issparse(X):
        return kernels.SparseRows(X.data, X.indices, X.indptr, np.arange(X.shape[0]))
    return X


def check_features(X, n_features, dtype):
    """X as a C-contiguous (n_samples, n_features) array of ``dtype``, or, for
    a scipy sparse X, a CSR matrix of ``dtype`` (see ``_sparse_converted``);
    copies only when the input is not already one."""
    if not sparse.issparse(X):
        X = _numeric("X", X)
    elif X.dtype.kind not in "biuf":
        raise TypeError(f"X must hold numbers, got dtype {X.dtype}")
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}")
    if X.shape[0] == 0:
        raise ValueError("X has no samples")
    if X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, the model expects {n_features}")
    if sparse.issparse(X):
        return _sparse_converted(X, dtype)
    _check_finite("X", X)
    return _converted("X", X, dtype)


def _converted(name, a, dtype):
    """a as a C-contiguous array of ``dtype`` (no copy when it is one), refusing
    finite values that overflow it."""
    narrowing = _narrows(a.dtype, dtype)
    with np.errstate(over="ignore"):
        a = np.ascontiguousarray(a, dtype=dtype)
    if narrowing:
        _check_finite(f"{name} converted to {np.dtype(dtype).name}", a)
    return a


def _narrows(source, dtype):
    """Whether finite values of dtype ``source`` may overflow ``dtype``."""
    return source.kind == "f" and np.finfo(source).max > np.finfo(dtype).max


def one_hot(y, k=None, dtype=np.float32):
    """Rows of a k x k identity matrix picked by integer labels.

    Parameters
    ----------
    y : array-like of shape (n,)
        Labels 0..k-1: integers, or floats holding whole numbers.
    k : int, optional
        Number of classes; by default the largest label plus one.
    dtype : dtype
        Type of the result.

    Returns
    -------
    ndarray of shape (n, k) and type ``dtype``: T[i, y[i]] = 1, zero elsewhere.
    """
    y = np.asarray(y)
    if y.ndim != 1 or y.dtype.kind not in "biuf":
        raise ValueError(f"one_hot expects integer labels of shape (n,), got "
                         f"{y.dtype} of shape {y.shape}")
    if y.dtype.kind == "f":
        fractional = ~np.isfinite(y) | (y != np.round(y))
        if fractional.any():
            raise ValueError(f"labels must be whole numbers, got {y[fractional][0]}")
    if k is None:
        if len(y) == 0:
            raise ValueError("one_hot needs k when there are no labels to infer it from")
        k = int(y.max()) + 1
    outside = (y < 0) | (y >= k)
    if outside.any():
        raise ValueError(f"label {y[outside][0]} out of range: labels must be 0..{k - 1} "
                         f"for {k} classes")
    T = np.zeros((len(y), k), dtype=dtype)
    T[np.arange(len(y)), y.astype(np.intp)] = 1
    return T


def check_targets(y, n, k, loss, dtype):
    """Targets T (n, k) of ``dtype`` for the loss code ``loss``, and the metric
    they allow: "accuracy" for class targets, "r2" for regression targets."""
    y = _numeric("y", y)
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) or ({n}, {k}) to match X, got {y.shape}")
    if y.ndim == 2 and y.shape[1] != k:
        raise ValueError(f"y has {y.shape[1]} columns, the model has {k} outputs")
    _check_finite("y", y)
    if loss == kernels.SOFTMAX_CROSS_ENTROPY:
        if y.ndim == 1:
            return one_hot(y, k, dtype), "accuracy"
        if np.any(y < 0):
            raise ValueError("one-hot targets must be non-negative")
        return _converted("y", y, dtype), "accuracy"
    if loss == kernels.BINARY_CROSS_ENTROPY:
        if y.ndim == 1 and k != 1:
            raise ValueError(f"y must have shape ({n}, {k}) for {k} binary outputs")
        values = np.unique(y)
        if not np.isin(values, (-1, 0, 1)).all() or (-1 in values and 0 in values):
            raise ValueError(f"binary targets must be 0/1 or -1/+1, got values {values[:5]}")
        return (y == 1).reshape(n, k).astype(dtype), "accuracy"
    if y.ndim == 1 and k > 1:
        if y.dtype.kind not in "biu":
            raise ValueError(f"y of shape ({n},) for {k} outputs must hold integer labels; "
                             f"give regression targets as ({n}, {k})")
        return one_hot(y, k, dtype), "accuracy"
    return _converted("y", y.reshape(n, k), dtype), "r2"


def check_sample_weight(sample_weight, n, dtype):
    """Sample weights as a C-contiguous (n,) array of ``dtype``: finite,
    non-negative, not all zero."""
    w = _numeric("sample_weight", sample_weight)
    if w.shape != (n,):
        raise ValueError(f"sample_weight must have shape ({n},) to match X, got {w.shape}")
    _check_finite("sample_weight", w)
    if np.any(w < 0):
        raise ValueError(f"sample_weight must be non-negative, got {w[w < 0][0]}")
    w = _converted("sample_weight", w, dtype)
    if not np.any(w > 0):
        raise ValueError(f"sample_weight is zero for every sample in {w.dtype}")
    return w


def check_finite_result(what, dtype, *arrays):
    """Raise FloatingPointError when a computed result is NaN or inf: inputs
    large enough (finite, but huge) to overflow ``dtype`` inside the network."""
    for a in arrays:
        if not np.isfinite(a).all():
            raise FloatingPointError(
                f"{what} overflowed {np.dtype(dtype).name}: the inputs are too large for "
                "this network; scale them (e.g. standardise X) or use dtype float64")
