"""Bad input to the core API (MLP, fit, predict, predict_proba, evaluate,
loss_and_grad) is refused with an error naming the problem, leaving the
model's parameters and the caller's arrays as they were; the inputs a user
may reasonably pass (other dtypes, layouts, read-only and memory-mapped
arrays, batches larger than the data set, huge finite values) just work.

Decision: a single class present in y is legal for the core MLP. Its number
of outputs is fixed by ``sizes``, not by the labels seen, so labels 0..k-1
are valid whether or not all of them occur (a batch, a validation split or a
rare class often lacks some)."""

import copy
import tracemalloc

import numpy as np
import pytest
from conftest import ACTIVATIONS, LOSSES

import fastmlp
from fastmlp.registry import LOSSES as LOSS_ENTRIES

N, N_IN, K = 20, 4, 3

# Each public call that takes data, as f(net, X, y).
CALLS = {
    "fit": lambda net, X, y: net.fit(X, y, epochs=1, batch_size=8, verbose=0),
    "evaluate": lambda net, X, y: net.evaluate(X, y),
    "loss_and_grad": lambda net, X, y: net.loss_and_grad(X, y),
    "predict": lambda net, X, y: net.predict(X),
    "predict_proba": lambda net, X, y: net.predict_proba(X),
}
TARGET_CALLS = ["fit", "evaluate", "loss_and_grad"]


def data(seed=0, n=N):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, N_IN)), rng.integers(0, K, n)


def assert_refused(net, call, X, y, error, match):
    """``call`` raises ``error`` matching ``match``, and the model's parameters
    and the arrays passed are unchanged."""
    params, X_copy, y_copy = net.params.copy(), copy.deepcopy(X), copy.deepcopy(y)
    with pytest.raises(error, match=match):
        call(net, X, y)
    np.testing.assert_array_equal(net.params, params)
    for given, kept in [(X, X_copy), (y, y_copy)]:
        if isinstance(given, np.ndarray):
            np.testing.assert_array_equal(given, kept)
        else:
            assert given == kept


def with_value(a, row, value):
    a = np.array(a, dtype=np.float64)
    a[row] = value
    return a


X0, y0 = data()
BAD_X = {
    "1-D": (X0[:, 0], ValueError, r"X must be 2-D \(n_samples, n_features\), got shape \(20,\)"),
    "3-D": (X0[:, :, None], ValueError, r"X must be 2-D .* got shape \(20, 4, 1\)"),
    "scalar": (3.0, ValueError, r"X must be 2-D .* got shape \(\)"),
    "zero samples": (X0[:0], ValueError, "X has no samples"),
    "zero features": (X0[:, :0], ValueError, "X has 0 features, the model expects 4"),
    "fewer features": (X0[:, :3], ValueError, "X has 3 features, the model expects 4"),
    "more features": (np.c_[X0, X0], ValueError, "X has 8 features, the model expects 4"),
    "NaN": (with_value(X0, (3, 1), np.nan), ValueError, r"X contains NaN or inf \(first in row 3\)"),
    "inf": (with_value(X0, (5, 0), -np.inf), ValueError, r"X contains NaN or inf \(first in row 5\)"),
    "overflows float32": (with_value(X0, (2, 2), 1e39), ValueError,
                          r"X converted to float32 contains NaN or inf \(first in row 2\)"),
    "strings": (X0.astype(str), TypeError, "X must hold numbers, got dtype <U"),
    "objects": (X0.astype(object), TypeError, "X must hold numbers, got dtype object"),
    "None": (None, TypeError, "X must hold numbers, got dtype object"),
    "complex": (X0.astype(complex), TypeError, "X must hold numbers, got dtype complex128"),
    "ragged": ([[1.0, 2.0, 3.0, 4.0], [1.0, 2.0]], ValueError, "X is not a rectangular array"),
}


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("case", BAD_X)
def test_bad_X_is_refused(call, case):
    X, error, match = BAD_X[case]
    y = y0[:X.shape[0]] if isinstance(X, np.ndarray) and X.ndim > 0 else y0
    assert_refused(fastmlp.MLP((N_IN, 5, K), seed=0), CALLS[call], X, y, error, match)


BAD_Y = {
    "too short": (y0[:-1], ValueError, r"y must have shape \(20,\) or \(20, 3\) to match X, got \(19,\)"),
    "too long": (np.r_[y0, 0], ValueError, r"y must have shape \(20,\) or \(20, 3\) .* got \(21,\)"),
    "3-D": (y0[:, None, None], ValueError, r"got \(20, 1, 1\)"),
    "wrong columns": (np.eye(2)[y0 % 2], ValueError, "y has 2 columns, the model has 3 outputs"),
    "NaN": (with_value(y0, 4, np.nan), ValueError, r"y contains NaN or inf \(first in row 4\)"),
    "inf": (with_value(y0, 6, np.inf), ValueError, r"y contains NaN or inf \(first in row 6\)"),
    "label too large": (with_value(y0, 0, 3).astype(int), ValueError,
                        "label 3 out of range: labels must be 0..2 for 3 classes"),
    "negative label": (with_value(y0, 0, -1).astype(int), ValueError, "label -1 out of range"),
    "huge float label": (with_value(y0, 0, 1e20), ValueError, r"label 1e\+20 out of range"),
    "fractional label": (with_value(y0, 0, 1.5), ValueError, "labels must be whole numbers"),
    "strings": (y0.astype(str), TypeError, "y must hold numbers, got dtype <U"),
    "objects": (y0.astype(object), TypeError, "y must hold numbers, got dtype object"),
    "negative one-hot": (-np.eye(K)[y0], ValueError, "one-hot targets must be non-negative"),
}


@pytest.mark.parametrize("call", TARGET_CALLS)
@pytest.mark.parametrize("case", BAD_Y)
def test_bad_y_is_refused(call, case):
    y, error, match = BAD_Y[case]
    assert_refused(fastmlp.MLP((N_IN, 5, K), seed=0), CALLS[call], X0, y, error, match)


BAD_Y_OTHER_LOSSES = {
    "binary value 2": ("binary_cross_entropy", 1, y0, r"binary targets must be 0/1 or -1/\+1"),
    "binary -1 with 0": ("binary_cross_entropy", 1, np.r_[-1, 0, np.ones(N - 2)],
                         r"binary targets must be 0/1 or -1/\+1"),
    "binary 1-D for 2 outputs": ("binary_cross_entropy", 2, y0 % 2, r"y must have shape \(20, 2\)"),
    "regression overflows float32": ("mse", 2, with_value(np.ones((N, 2)), (7, 1), 1e39),
                                     r"y converted to float32 contains NaN or inf \(first in row 7\)"),
    "float labels for 2 outputs": ("mse", 2, (y0 % 2).astype(float),
                                   r"y of shape \(20,\) for 2 outputs must hold integer labels"),
}


@pytest.mark.parametrize("call", TARGET_CALLS)
@pytest.mark.parametrize("case", BAD_Y_OTHER_LOSSES)
def test_bad_targets_of_other_losses_are_refused(call, case):
    loss, k, y, match = BAD_Y_OTHER_LOSSES[case]
    assert_refused(fastmlp.MLP((N_IN, 5, k), loss=loss, seed=0), CALLS[call], X0, y,
                   ValueError, match)


BAD_FIT_ARGUMENTS = {
    "batch_size 0": (dict(batch_size=0), ValueError, "batch_size must be finite and positive, got 0"),
    "batch_size -1": (dict(batch_size=-1), ValueError, "batch_size must be finite and positive"),
    "batch_size 1.5": (dict(batch_size=1.5), TypeError, "batch_size must be an integer, got 1.5"),
    "batch_size '8'": (dict(batch_size="8"), TypeError, "batch_size must be an integer"),
    "batch_size True": (dict(batch_size=True), TypeError, "batch_size must be an integer"),
    "lr NaN": (dict(lr=float("nan")), ValueError, "lr must be finite and positive, got nan"),
    "lr 0": (dict(lr=0.0), ValueError, "lr must be finite and positive, got 0.0"),
    "lr -0.1": (dict(lr=-0.1), ValueError, "lr must be finite and positive"),
    "lr inf": (dict(lr=float("inf")), ValueError, "lr must be finite and positive, got inf"),
    "lr '0.1'": (dict(lr="0.1"), TypeError, "lr must be a number"),
    "lr None": (dict(lr=None), TypeError, "lr must be a number"),
    "epochs -1": (dict(epochs=-1), ValueError, "epochs must be finite and non-negative, got -1"),
    "epochs 2.0": (dict(epochs=2.0), TypeError, "epochs must be an integer, got 2.0"),
    "optimizer": (dict(optimizer="rmsprop"), ValueError, "unknown optimizer 'rmsprop'"),
    "weights overflow float32": (dict(sample_weight=np.full(N, 1e39)), ValueError,
                                 "sample_weight converted to float32 contains NaN or inf"),
    "weights underflow float32": (dict(sample_weight=np.full(N, 1e-50)), ValueError,
                                  "sample_weight is zero for every sample in float32"),
}


@pytest.mark.parametrize("case", BAD_FIT_ARGUMENTS)
def test_bad_fit_arguments_are_refused(case):
    kwargs, error, match = BAD_FIT_ARGUMENTS[case]
    net = fastmlp.MLP((N_IN, 5, K), seed=0)
    arrays = {k: v.copy() for k, v in kwargs.items() if isinstance(v, np.ndarray)}

    def fit(net, X, y):
        return net.fit(X, y, **{"epochs": 1, "verbose": 0, **kwargs})
    assert_refused(net, fit, X0, y0, error, match)
    for name, before in arrays.items():
        np.testing.assert_array_equal(kwargs[name], before)


BAD_MODELS = {
    "layer size 0": (dict(sizes=(4, 0, 3)), ValueError, "layer size must be finite and positive, got 0"),
    "input size 0": (dict(sizes=(0, 3)), ValueError, "layer size must be finite and positive, got 0"),
    "negative size": (dict(sizes=(4, -2, 3)), ValueError, "layer size must be finite and positive"),
    "fractional size": (dict(sizes=(4, 2.5, 3)), TypeError, "layer size must be an integer, got 2.5"),
    "one size": (dict(sizes=(4,)), ValueError, "sizes needs at least an input and an output width"),
    "activation": (dict(activation="gelu"), ValueError, "unknown activation 'gelu'; choose one of"),
    "loss": (dict(loss="hinge"), ValueError, "unknown loss 'hinge'; choose one of"),
    "dtype float16": (dict(dtype="float16"), ValueError, "unknown dtype 'float16'"),
    "dtype int": (dict(dtype=int), ValueError, "unknown dtype 'int64'"),
    "dtype nonsense": (dict(dtype="nonsense"), ValueError, "unknown dtype 'nonsense'"),
    "output": (dict(loss="mse", output="softplus"), ValueError, "unknown output 'softplus'"),
    "output against loss": (dict(output="tanh"), ValueError,
                            "loss 'softmax_cross_entropy' implies output 'softmax', got 'tanh'"),
}


@pytest.mark.parametrize("case", BAD_MODELS)
def test_bad_model_arguments_are_refused(case):
    kwargs, error, match = BAD_MODELS[case]
    with pytest.raises(error, match=match):
        fastmlp.MLP(**{"sizes": (4, 5, 3), **kwargs})


LOSS_TARGETS = {"softmax_cross_entropy": 3, "binary_cross_entropy": 2, "mse": 2}


def targets(loss, k, rng, n=N):
    """Targets of the kind ``loss`` takes, float64 and C-contiguous (n, k) where
    it allows: the model's own dtype and layout, so no copy shields them."""
    if loss == "softmax_cross_entropy":
        return np.eye(k)[rng.integers(0, k, n)]
    if loss == "binary_cross_entropy":
        return rng.integers(0, 2, (n, k)).astype(np.float64)
    return rng.normal(size=(n, k))


@pytest.mark.parametrize("loss", LOSS_TARGETS)
@pytest.mark.parametrize("fit_kwargs", [dict(batch_size=None, shuffle=False), dict(batch_size=1),
                                        dict(batch_size=7, optimizer="adam")])
def test_successful_calls_leave_the_callers_arrays_alone(loss, fit_kwargs):
    """float64 C-contiguous X and y into a float64 model reach the kernels
    without a copy; neither is written to."""
    rng = np.random.default_rng(1)
    k = LOSS_TARGETS[loss]
    X, y, w = rng.normal(size=(N, N_IN)), targets(loss, k, rng), rng.random(N)
    val = (rng.normal(size=(5, N_IN)), targets(loss, k, rng, 5))
    arrays = [X, y, w, *val]
    before = [a.copy() for a in arrays]
    net = fastmlp.MLP((N_IN, 6, k), "tanh", loss, dtype="float64", seed=0)
    net.fit(X, y, epochs=2, verbose=0, sample_weight=w, validation_data=val, **fit_kwargs)
    net.predict(X), net.predict_proba(X), net.evaluate(X, y), net.loss_and_grad(X, y)
    for a, b in zip(arrays, before):
        np.testing.assert_array_equal(a, b)


def fitted(X, y, dtype="float32", **kwargs):
    """Parameters after two epochs on (X, y), and the predictions on X."""
    net = fastmlp.MLP((X.shape[1], 6, K), "relu", dtype=dtype, seed=0)
    net.fit(X, y, epochs=2, batch_size=kwargs.pop("batch_size", 8), lr=0.1, seed=1, verbose=0,
            **kwargs)
    return net.params, net.predict_proba(X)


def assert_same_fit(X, y, reference_X, dtype="float32"):
    """Training on X gives bit for bit what training on reference_X gives."""
    X_copy = np.array(X)
    for got, want in zip(fitted(X, y, dtype), fitted(reference_X, y, dtype)):
        np.testing.assert_array_equal(got, want)
    np.testing.assert_array_equal(X, X_copy)


@pytest.mark.parametrize("input_dtype", [np.int64, np.int8, np.uint8, np.bool_, np.float16])
def test_integer_boolean_and_float16_X_train_like_their_float_values(input_dtype):
    rng = np.random.default_rng(2)
    X = (rng.normal(size=(N, N_IN)) * 3).astype(input_dtype)
    assert_same_fit(X, y0, X.astype(np.float32))


@pytest.mark.parametrize("input_dtype", [np.uint8, np.bool_, np.float16, np.int32])
def test_other_dtypes_are_converted_once(input_dtype):
    """fit's peak memory is one float32 copy of X plus a byte per value (the
    finiteness mask) plus batch buffers: no second copy."""
    rng = np.random.default_rng(3)
    X = (rng.random((20000, 200)) * 2).astype(input_dtype)
    y = rng.integers(0, 10, len(X))
    net = fastmlp.MLP((200, 16, 10), seed=0)
    net.fit(X[:100], y[:100], epochs=1, verbose=0)  # compile first
    tracemalloc.start()
    net.fit(X, y, epochs=1, batch_size=128, verbose=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert peak <= X.size * 4 + X.size + (1 << 20)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_fortran_strided_read_only_and_memory_mapped_X(tmp_path, dtype):
    rng = np.random.default_rng(4)
    X = rng.normal(size=(N, N_IN))
    wide = np.zeros((N, 2 * N_IN))
    wide[:, ::2] = X
    read_only = X.copy()
    read_only.setflags(write=False)
    np.save(tmp_path / "X.npy", X)
    mapped = np.memmap(tmp_path / "X.raw", dtype=np.float64, mode="w+", shape=X.shape)
    mapped[:] = X
    mapped.flush()
    layouts = {"fortran": np.asfortranarray(X), "strided columns": wide[:, ::2],
               "reversed rows": X[::-1][::-1], "read-only": read_only,
               "np.memmap": np.memmap(tmp_path / "X.raw", dtype=np.float64, mode="r", shape=X.shape),
               "np.load mmap": np.load(tmp_path / "X.npy", mmap_mode="r")}
    for name, layout in layouts.items():
        assert_same_fit(layout, y0, X, dtype)


def test_read_only_targets_and_weights():
    rng = np.random.default_rng(5)
    X, y, w = rng.normal(size=(N, N_IN)), rng.normal(size=(N, 2)), rng.random(N)
    for a in (X, y, w):
        a.setflags(write=False)
    net = fastmlp.MLP((N_IN, 5, 2), loss="mse", dtype="float64", seed=0)
    for batch_size in [None, 1, 6]:
        history = net.fit(X, y, epochs=1, batch_size=batch_size, shuffle=batch_size == 6,
                          sample_weight=w, verbose=0)
        assert np.isfinite(history["loss"]).all()


def test_batch_larger_than_the_data_set_is_full_batch():
    X, y = data(6)
    for got, want in zip(fitted(X, y, batch_size=1000), fitted(X, y, batch_size=None)):
        np.testing.assert_array_equal(got, want)


def test_single_class_present_trains_and_evaluates():
    """Only label 0 of three occurs: legal, see the module docstring."""
    X, _ = data(7)
    y = np.zeros(N, dtype=int)
    net = fastmlp.MLP((N_IN, 5, K), seed=0)
    history = net.fit(X, y, epochs=30, lr=0.5, verbose=0)
    assert history["accuracy"][-1] == 1.0 and (net.predict(X) == 0).all()
    loss, accuracy = net.evaluate(X, y)
    assert np.isfinite(loss) and accuracy == 1.0
    binary = fastmlp.MLP((N_IN, 1), loss="binary_cross_entropy", seed=0)
    binary.fit(X, np.ones(N), epochs=30, lr=0.5, verbose=0)
    assert (binary.predict(X) == 1).all()


UNBOUNDED = ["identity", "relu", "leaky_relu"]
# Each loss with the output it implies, or with every output when it implies none.
MODELS = [(loss, output) for loss in LOSSES
          for output in ([None] if LOSS_ENTRIES[loss].output else ACTIVATIONS)]


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss, output", MODELS)
def test_huge_finite_inputs_give_finite_outputs_and_losses(dtype, activation, loss, output):
    """X of size 1e30 through two hidden layers: predictions and the loss stay
    finite. The gradient too, except in float32 under squared error with
    unbounded hidden and output activations, where dW of the last layer really
    is near 1e60: a FloatingPointError."""
    rng = np.random.default_rng(8)
    k = LOSS_TARGETS[loss]
    X = rng.normal(size=(N, N_IN)) * 1e30
    y = targets(loss, k, rng)
    net = fastmlp.MLP((N_IN, 6, 5, k), activation, loss, output, dtype, seed=0)
    assert np.isfinite(net.predict_proba(X)).all()
    assert np.isfinite(net.predict(X)).all()
    assert np.isfinite(net.evaluate(X, y)).all()
    if dtype == "float32" and output in UNBOUNDED and activation in UNBOUNDED:
        with pytest.raises(FloatingPointError, match="gradient overflowed float32"):
            net.loss_and_grad(X, y)
    else:
        value, grad = net.loss_and_grad(X, y)
        assert np.isfinite(value) and np.isfinite(grad).all()


@pytest.mark.parametrize("call", CALLS)
def test_inputs_that_overflow_the_network_raise_instead_of_returning_nan(call):
    """1e38 fits in float32, but not once multiplied by a weight above one:
    every call says so instead of answering NaN or inf."""
    X = np.full((N, N_IN), 1e38)
    net = fastmlp.MLP((N_IN, 6, K), "leaky_relu", seed=0)
    match = "diverged" if call == "fit" else "overflowed float32.*scale them"
    assert_refused(net, CALLS[call], X, y0, FloatingPointError, match)


@pytest.mark.parametrize("sizes", [5, "784", None])
def test_sizes_must_be_a_sequence(sizes):
    with pytest.raises(TypeError, match="sizes must be a sequence of layer widths"):
        fastmlp.MLP(sizes)


@pytest.mark.parametrize("bad", [np.zeros((4, 3)), (np.zeros((4, 3)),), [1, 2, 3]])
def test_validation_data_must_be_a_pair(bad):
    X, y = np.zeros((8, 3)), np.arange(8) % 2
    with pytest.raises(ValueError, match=r"validation_data must be a pair \(X_val, y_val\)"):
        fastmlp.MLP((3, 2)).fit(X, y, validation_data=bad, verbose=0)
