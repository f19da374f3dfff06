"""Sparse input: scipy.sparse matrices and arrays train, predict and evaluate
as their dense twins do (within floating-point reassociation), through a
first layer whose cost follows the stored entries; X is never densified, the
caller's matrix never modified, bad matrices refused with errors naming the
problem."""

import tracemalloc

import numpy as np
import pytest
import scipy.sparse as sp
from conftest import assert_close

import fastmlp
from fastmlp import kernels, reference

N, N_IN, K = 60, 30, 3


def messy_csr(rng, n, m, density=0.2, index_dtype=np.int32):
    """A float64 CSR matrix (n, m) whose rows hold their entries in random
    column order, some columns twice (the kernels add repeats up, as toarray
    does), and one empty row."""
    data, indices, indptr = [], [], [0]
    for i in range(n):
        columns = np.flatnonzero(rng.random(m) < density) if i != 1 else np.array([], int)
        columns = rng.permutation(np.r_[columns, columns[:2]])
        indices.extend(columns)
        data.extend(rng.normal(size=len(columns)))
        indptr.append(len(indices))
    X = sp.csr_matrix((np.array(data), np.array(indices, index_dtype),
                       np.array(indptr, index_dtype)), shape=(n, m))
    assert not X.has_canonical_format
    return X


def problem(seed=0, n=N):
    rng = np.random.default_rng(seed)
    return messy_csr(rng, n, N_IN), rng.integers(0, K, n)


def sparse_rows(X, rows):
    return kernels.SparseRows(X.data, X.indices, X.indptr, np.asarray(rows, np.int64))


@pytest.mark.parametrize("index_dtype", [np.int32, np.int64])
def test_first_layer_kernels_equal_reference(dtype, rng, index_dtype):
    """Forward, and the gradient or the step written into W (beta = 1, where
    rows of W outside the batch's columns keep their bits), on shuffled rows."""
    X = messy_csr(rng, 40, 50, density=0.05, index_dtype=index_dtype)
    X.data = X.data.astype(dtype)
    rows = rng.permutation(40)[:25]
    rows[:2] = 1  # the empty row
    batch, X64 = sparse_rows(X, rows), X.astype(np.float64)[rows]
    W, b = rng.normal(size=(50, 7)).astype(dtype), rng.normal(size=7).astype(dtype)
    Z = np.empty((25, 7), dtype)
    kernels.sparse_forward(Z, batch, W, b)
    assert_close(Z, reference.dense_forward(X64, W.astype(np.float64), b), dtype)
    dZ = rng.normal(size=(25, 7)).astype(dtype)
    _, want_dW, want_db = reference.dense_backward(dZ.astype(np.float64), X64, W)
    for alpha, beta, bias_beta in [(1.0, 0.0, 0.0), (-0.1, 1.0, 1.0), (0.5, 0.7, 0.3)]:
        dW, db = W.copy(), b.copy()
        kernels.sparse_backward(dW, db, dZ, batch, alpha, beta, bias_beta)
        assert_close(dW, alpha * want_dW + beta * W.astype(np.float64), dtype)
        assert_close(db, alpha * want_db + bias_beta * b.astype(np.float64), dtype)
    untouched = np.setdiff1d(np.arange(50), X[rows].indices)
    assert len(untouched) > 0
    step = W.copy()
    kernels.sparse_backward(step, b.copy(), dZ, batch, -0.1, 1.0, 1.0)
    np.testing.assert_array_equal(step[untouched], W[untouched])


def test_predict_and_evaluate_equal_dense(dtype):
    """More rows than one block of predict (4096), in float32 and float64."""
    X, y = problem(1, n=4100)
    net = fastmlp.MLP((N_IN, 9, K), "tanh", dtype=dtype, seed=2)
    dense = X.toarray()
    assert_close(net.predict_proba(X), net.predict_proba(dense), dtype)
    np.testing.assert_array_equal(net.predict(X)[:50], net.predict(dense)[:50])
    assert_close(net.evaluate(X, y), net.evaluate(dense, y), dtype)


def test_loss_and_grad_equal_reference():
    X, y = problem(1)
    net = fastmlp.MLP((N_IN, 9, K), "tanh", dtype="float64", seed=2)
    value, grad = net.loss_and_grad(X, y)
    want_value, want_grad = reference.loss_and_grad(
        net.params, net.sizes, "tanh", "identity", "softmax_cross_entropy", X, np.eye(K)[y])
    assert_close(value, want_value, "float64")
    assert_close(grad, want_grad, "float64")


def fit_both(X, y, dtype="float64", **fit):
    """Parameters after the same fit on sparse X and on X.toarray()."""
    params = []
    for inputs in (X, X.toarray()):
        net = fastmlp.MLP((N_IN, 8, 6, K), "relu", dtype=dtype, seed=4)
        net.fit(inputs, y, epochs=3, lr=0.05, seed=5, verbose=0, **fit)
        params.append(net.params)
    assert np.abs(params[0] - fastmlp.MLP((N_IN, 8, 6, K), "relu", dtype=dtype,
                                          seed=4).params).max() > 1e-3  # it trained
    return params


# Same fit on sparse and dense X: equal up to the rounding of sums taken in
# another order, a few units of the last place at most.
TOLERANCE = {"float32": 1e-5, "float64": 1e-12}


@pytest.mark.parametrize("optimizer", [
    fastmlp.SGD(), fastmlp.SGD(l2=0.05, weight_decay=0.02), fastmlp.SGD(momentum=0.9),
    fastmlp.SGD(momentum=0.8, nesterov=True, l2=0.01), fastmlp.Adam(weight_decay=0.01)],
    ids=["sgd", "sgd-l2", "momentum", "nesterov", "adam"])
@pytest.mark.parametrize("batch_size", [1, 7, None])
@pytest.mark.parametrize("shuffle", [True, False])
def test_fit_equals_dense_fit_float64(optimizer, batch_size, shuffle):
    X, y = problem()
    got, want = fit_both(X, y, batch_size=batch_size, shuffle=shuffle, optimizer=optimizer)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE["float64"])


@pytest.mark.parametrize("optimizer", ["sgd", "adam"])
@pytest.mark.parametrize("batch_size", [1, 7, None])
def test_fit_equals_dense_fit_float32(optimizer, batch_size):
    """On a canonical CSR matrix, whose rows sum their products in the dense
    order: an unsorted row's other order of rounding, amplified by Adam where
    a weight's gradients stay near zero, moved weights by up to 1.6e-5 here."""
    X, y = problem()
    X.sum_duplicates()  # sorts the rows' entries too
    got, want = fit_both(X, y, "float32", batch_size=batch_size, optimizer=optimizer)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE["float32"])


@pytest.mark.parametrize("batch_size", [1, 7, None])
def test_weighted_fit_equals_dense_fit(batch_size):
    """Weights 0, 1 and 2: rows dropped, kept and counted twice."""
    X, y = problem()
    weights = np.random.default_rng(3).integers(0, 3, N).astype(float)
    got, want = fit_both(X, y, batch_size=batch_size, optimizer="adam", sample_weight=weights)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE["float64"])


def test_fit_on_sparse_follows_reference():
    """Shuffled batches of 7 against the NumPy reference, itself fed sparse X."""
    X, y = problem()
    net = fastmlp.MLP((N_IN, 8, 6, K), "relu", dtype="float64", seed=4)
    start = net.params.copy()
    net.fit(X, y, epochs=3, batch_size=7, lr=0.05, seed=5, verbose=0)
    shuffles = np.random.default_rng(5)
    orders = [shuffles.permutation(N) for _ in range(3)]
    want, _ = reference.train(start, net.sizes, "relu", "identity", "softmax_cross_entropy",
                              X, np.eye(K)[y], orders, 7, 0.05)
    np.testing.assert_allclose(net.params, want, rtol=0, atol=1e-12)


def test_thread_counts_give_the_same_bits_and_shards_reassociate():
    X, y = problem()
    runs = {}
    for n_threads, shards in [(1, False), (2, False), (2, True)]:
        net = fastmlp.MLP((N_IN, 8, 6, K), "relu", dtype="float64", seed=4)
        net.fit(X, y, epochs=3, batch_size=16, lr=0.05, optimizer="adam", seed=5, verbose=0,
                n_threads=n_threads, shards=shards)
        runs[n_threads, shards] = net.params
    np.testing.assert_array_equal(runs[1, False], runs[2, False])
    np.testing.assert_allclose(runs[2, True], runs[1, False], rtol=0, atol=1e-12)


@pytest.mark.parametrize("convert", [
    sp.csr_array, sp.csc_matrix, sp.csc_array, sp.coo_matrix, sp.lil_array,
    lambda X: sp.csr_matrix(X, dtype=np.float32), lambda X: sp.csr_matrix(X.astype(np.int8))],
    ids=["csr_array", "csc_matrix", "csc_array", "coo_matrix", "lil_array", "float32",
         "int8"])
def test_other_formats_and_dtypes_train_as_their_dense_values(convert):
    X, y = problem()
    X = convert(X.toarray() * 3)
    got, want = fit_both(X, y, batch_size=7)
    np.testing.assert_allclose(got, want, rtol=0, atol=TOLERANCE["float64"])


def test_validation_split_and_validation_data_equal_dense():
    X, y = problem()
    histories = []
    for inputs in (X, X.toarray()):
        net = fastmlp.MLP((N_IN, 8, K), "relu", dtype="float64", seed=4)
        split = net.fit(inputs, y, epochs=2, batch_size=7, validation_split=0.25, verbose=0)
        given = net.fit(inputs[:40], y[:40], epochs=2, batch_size=7, verbose=0,
                        validation_data=(inputs[40:], y[40:]))
        histories.append([split.history, given.history])
    for got, want in zip(*histories):
        assert got.keys() == want.keys()
        for key in got:
            np.testing.assert_allclose(got[key], want[key], rtol=1e-12)


@pytest.mark.parametrize("estimator, kwargs", [
    (fastmlp.MLPClassifier, {"solver": "adam"}),
    (fastmlp.MLPClassifier, {"solver": "sgd", "dtype": "float64"}),
    (fastmlp.MLPRegressor, {"solver": "adam", "early_stopping": True}),
])
def test_estimators_equal_dense(estimator, kwargs):
    X, y = problem()
    if estimator is fastmlp.MLPRegressor:
        y = np.random.default_rng(0).normal(size=N)
    fits = [estimator(hidden_layer_sizes=(8,), max_iter=5, random_state=0, batch_size=16,
                      **kwargs).fit(inputs, y) for inputs in (X, X.toarray())]
    tolerance = TOLERANCE[kwargs.get("dtype", "float32")]
    np.testing.assert_allclose(fits[0].model_.params, fits[1].model_.params, rtol=0,
                               atol=tolerance)
    np.testing.assert_allclose(fits[0].predict(X), fits[1].predict(X.toarray()), rtol=0,
                               atol=100 * tolerance)


def with_arrays(X, data=None, indices=None, indptr=None, shape=None):
    """A CSR matrix built from X's arrays with some replaced, unchecked."""
    return sp.csr_matrix((X.data if data is None else data,
                          X.indices if indices is None else indices,
                          X.indptr if indptr is None else indptr), shape=shape or X.shape)


def bad_value(X, k, value):
    data = X.data.copy()
    data[k] = value
    return with_arrays(X, data=data)


def bad_index(X, k, value):
    indices = X.indices.copy()
    indices[k] = value
    return with_arrays(X, indices=indices)


X0, y0 = problem()
ROW_OF_ENTRY_9 = np.searchsorted(X0.indptr, 9, side="right") - 1
BAD_X = {
    "NaN": (bad_value(X0, 9, np.nan), ValueError,
            rf"X contains NaN or inf \(first in row {ROW_OF_ENTRY_9}\)"),
    "inf": (bad_value(X0, 9, -np.inf), ValueError, "X contains NaN or inf"),
    "overflows float32": (bad_value(X0, 9, 1e39), ValueError,
                          r"X converted to float32 contains NaN or inf"),
    "fewer features": (X0[:, :20], ValueError, "X has 20 features, the model expects 30"),
    "column past the end": (bad_index(X0, 9, N_IN), ValueError,
                            (rf"X has a stored entry in column 30 of row {ROW_OF_ENTRY_9}: "
                             r"its column indices must be 0\.\.29")),
    "negative column": (bad_index(X0, 9, -1), ValueError, "stored entry in column -1"),
    "negative row in CSC": (sp.csc_matrix((np.ones(1), np.array([-2]), np.array([0] * 30 + [1])),
                                          shape=(N, N_IN)),
                            ValueError, "stored entry in row -2 of column 29"),
    "falling indptr": (with_arrays(X0, indptr=np.r_[X0.indptr[:5], X0.indptr[-1],
                                                    X0.indptr[6:]]),
                       ValueError, "X's indptr does not describe 60 rows"),
    "complex": (X0.astype(complex), TypeError, "X must hold numbers, got dtype complex128"),
    "1-D": (sp.coo_array(np.ones(N_IN)), ValueError, r"X must be 2-D .* got shape \(30,\)"),
    "no samples": (X0[:0], ValueError, "X has no samples"),
}


@pytest.mark.parametrize("call", ["fit", "predict", "evaluate", "loss_and_grad"])
@pytest.mark.parametrize("case", BAD_X)
def test_bad_sparse_X_is_refused(case, call):
    X, error, match = BAD_X[case]
    net = fastmlp.MLP((N_IN, 8, K), "relu", seed=0)
    params = net.params.copy()
    y = y0[:X.shape[0]] if X.ndim == 2 else y0
    calls = {"fit": lambda: net.fit(X, y, epochs=1, verbose=0),
             "predict": lambda: net.predict(X), "evaluate": lambda: net.evaluate(X, y),
             "loss_and_grad": lambda: net.loss_and_grad(X, y)}
    with pytest.raises(error, match=match):
        calls[call]()
    np.testing.assert_array_equal(net.params, params)


def test_estimators_refuse_bad_sparse_X_and_sparse_y():
    X, y = BAD_X["column past the end"][0], y0
    with pytest.raises(ValueError, match="stored entry in column 30"):
        fastmlp.MLPClassifier(max_iter=1).fit(X, y)
    with pytest.raises(TypeError, match="sparse y"):
        fastmlp.MLPRegressor(max_iter=1).fit(X0, sp.csr_matrix(y[:, None].astype(float)))


@pytest.mark.parametrize("convert", [lambda X: X, sp.csc_matrix, sp.coo_array,
                                     lambda X: X.astype(np.float32)],
                         ids=["messy csr", "csc", "coo", "float32"])
def test_the_callers_matrix_is_left_alone(convert):
    X, y = problem()
    X = convert(X)
    arrays = {name: getattr(X, name).copy() for name in ("data", "indices", "indptr", "row",
                                                         "col") if hasattr(X, name)}
    net = fastmlp.MLP((N_IN, 8, K), "relu", dtype="float64", seed=0)
    net.fit(X, y, epochs=1, batch_size=7, verbose=0)
    net.predict(X)
    fastmlp.MLPClassifier(hidden_layer_sizes=(8,), max_iter=1, early_stopping=True).fit(X, y)
    for name, before in arrays.items():
        np.testing.assert_array_equal(getattr(X, name), before)
        assert getattr(X, name).dtype == before.dtype


def test_a_csr_matrix_of_the_models_dtype_is_used_in_place():
    X, _ = problem()
    checked = fastmlp._validation.check_features(X, N_IN, np.float64)
    for name in ("data", "indices", "indptr"):
        assert np.shares_memory(getattr(checked, name), getattr(X, name))
    X32 = sp.csr_matrix(X, dtype=np.float32)
    X32.indices, X32.indptr = X32.indices.astype(np.int64), X32.indptr.astype(np.int64)
    checked = fastmlp._validation.check_features(X32, N_IN, np.float64)
    assert checked.data.dtype == np.float64 and checked.indices.dtype == np.int64
    assert np.shares_memory(checked.indices, X32.indices)


def test_fit_and_predict_never_densify_X():
    """20,000 x 20,000 at 0.05% density: dense it would take 1.6 GB in
    float32. fit converts the float64 values to float32 (4 bytes an entry)
    and holds a few arrays of n row numbers or outputs, besides the model's
    parameter-sized buffers (gradients, optimizer state, last finite values)."""
    n = m = 20000
    rng = np.random.default_rng(0)
    X = sp.csr_matrix((rng.random(10 * n), rng.integers(0, m, 10 * n),
                       np.arange(0, 10 * n + 1, 10)), shape=(n, m))
    y = rng.integers(0, K, n)
    net = fastmlp.MLP((m, 4, K), seed=0)
    net.fit(X[:100], y[:100], epochs=1, batch_size=50, verbose=0)  # compile first
    net.predict(X[:100])
    tracemalloc.start()
    net.fit(X, y, epochs=1, batch_size=50, verbose=0)
    net.predict(X)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= 4 * X.nnz + 5 * 8 * n + 5 * net.params.nbytes + (1 << 20)
    assert peak < n * m * 4 / 100
