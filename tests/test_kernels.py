"""Each Numba kernel equals its NumPy reference (fastmlp.reference)."""

import numba
import numpy as np
import pytest
from conftest import ACTIVATIONS, LOSSES, RTOL, assert_close

from fastmlp import kernels, reference
from fastmlp.registry import ACTIVATIONS as ENTRIES

ROWS = [1, 2, 7, 64]
WIDTHS = [1, 3, 17, 255]


def random(rng, shape, dtype, scale=3.0):
    """Normal values with a few large ones mixed in, to reach the tails."""
    a = rng.normal(0.0, scale, size=shape)
    a.flat[rng.integers(0, a.size, size=max(1, a.size // 10))] *= 100.0
    return a.astype(dtype)


@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("fan_in, fan_out", [(1, 1), (3, 17), (17, 3), (255, 17), (64, 255)])
def test_dense(dtype, rng, n, fan_in, fan_out):
    X, W, b = (random(rng, s, dtype, 1.0) for s in [(n, fan_in), (fan_in, fan_out), (fan_out,)])
    dZ = random(rng, (n, fan_out), dtype, 1.0)
    Z = np.empty((n, fan_out), dtype)
    kernels.dense_forward(Z, X, W, b)
    dX, dW, db = np.empty_like(X), np.full_like(W, np.nan), np.full_like(b, np.nan)
    scalar = np.dtype(dtype).type
    kernels.dense_backward(dW, db, dZ, X, scalar(1), scalar(0), scalar(0))
    kernels.dense_backward_input(dX, dZ, W)
    X64, W64, b64, dZ64 = (a.astype(np.float64) for a in (X, W, b, dZ))
    assert_close(Z, reference.dense_forward(X64, W64, b64), dtype)
    want_dX, want_dW, want_db = reference.dense_backward(dZ64, X64, W64)
    for got, want in zip((dX, dW, db), (want_dX, want_dW, want_db)):
        assert_close(got, want, dtype)
    # The same kernel as an SGD step straight into the layer.
    lr, shrink, bias_shrink = scalar(0.1), scalar(0.99), scalar(0.995)
    kernels.dense_backward(W, b, dZ, X, -lr, shrink, bias_shrink)
    assert_close(W, shrink * W64 - lr * want_dW, dtype)
    assert_close(b, bias_shrink * b64 - lr * want_db, dtype)


@pytest.mark.parametrize("a_transposed", [False, True])
@pytest.mark.parametrize("b_transposed", [False, True])
@pytest.mark.parametrize("m, k, n", [(1, 1, 1), (5, 3, 4), (64, 255, 17), (131, 97, 75),
                                     (37, 600, 50)])
@pytest.mark.parametrize("threads", [1, 2])
def test_gemm(dtype, rng, a_transposed, b_transposed, m, k, n, threads):
    # (131, 97, 75): several row and column blocks of both tiles, each with a
    # remainder, shared out over the threads; (37, 600, 50): sums longer than
    # blas.DEPTH, taken in parts
    def operand(shape, transposed):  # C order, or the transpose of a C array
        a = random(rng, shape[::-1] if transposed else shape, dtype, 1.0)
        return a.T if transposed else a
    A, B = operand((m, k), a_transposed), operand((k, n), b_transposed)
    C = random(rng, (m, n), dtype, 1.0)
    want = -0.5 * A.astype(np.float64) @ B.astype(np.float64) + 0.75 * C.astype(np.float64)
    previous = numba.get_num_threads()
    numba.set_num_threads(threads)
    try:
        kernels.gemm(C, A, B, -0.5, 0.75)
        assert_close(C, want, dtype)
        C[...] = np.nan  # beta = 0 writes C without reading it
        kernels.gemm(C, A, B, 1.0, 0.0)
    finally:
        numba.set_num_threads(previous)
    assert_close(C, A.astype(np.float64) @ B.astype(np.float64), dtype)


def test_gemm_rejects_misaligned_shapes():
    C, A = np.zeros((2, 3)), np.zeros((2, 4))
    with pytest.raises(ValueError, match="shapes do not align"):
        kernels.gemm(C, A, A.T, 1.0, 0.0)


@pytest.mark.parametrize("name", ACTIVATIONS)
@pytest.mark.parametrize("n, m", [(1, 1), (1, 255), (7, 3), (64, 17)])
def test_activation(dtype, rng, name, n, m):
    Z = random(rng, (n, m), dtype)
    A = np.empty_like(Z)
    kernels.activation_forward(A, Z, ENTRIES[name].code)
    assert_close(A, ENTRIES[name].forward(Z.astype(np.float64)), dtype)
    dA = random(rng, (n, m), dtype, 1.0)
    dZ = np.empty_like(dA)
    kernels.activation_backward(dZ, dA, A, ENTRIES[name].code)
    A64 = A.astype(np.float64)
    assert_close(dZ, dA * ENTRIES[name].derivative(A64), dtype)


def test_activation_in_place(dtype, rng):
    Z = random(rng, (5, 17), dtype)
    want = reference.sigmoid(Z.astype(np.float64))
    kernels.activation_forward(Z, Z, kernels.SIGMOID)
    assert_close(Z, want, dtype)


@pytest.mark.parametrize("z", [-1e30, -1e4, -750.0, -88.0, -30.0, 0.0, 30.0, 88.0, 750.0, 1e4, 1e30])
def test_sigmoid_is_finite_everywhere(dtype, z):
    Z = np.full((1, 3), z, dtype)
    A = np.empty_like(Z)
    kernels.activation_forward(A, Z, kernels.SIGMOID)
    assert np.all(np.isfinite(A)) and np.all((A >= 0) & (A <= 1))
    assert_close(A, reference.sigmoid(Z.astype(np.float64)), dtype)


def one_hot(rng, n, k, dtype):
    T = np.zeros((n, k), dtype)
    T[np.arange(n), rng.integers(0, k, n)] = 1
    return T


@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("k", WIDTHS)
@pytest.mark.parametrize("targets", ["one_hot", "probabilities"])
def test_softmax_cross_entropy(dtype, rng, n, k, targets):
    Z = random(rng, (n, k), dtype)
    if targets == "one_hot":
        T = one_hot(rng, n, k, dtype)
    else:
        T = rng.random((n, k)).astype(dtype)
        T /= T.sum(axis=1, keepdims=True)
    dZ = np.empty_like(Z)
    loss, correct = kernels.softmax_cross_entropy(dZ, Z, T, 1.0 / n)
    want_loss, want_dZ = reference.softmax_cross_entropy(Z.astype(np.float64),
                                                         T.astype(np.float64))
    assert_close(loss, want_loss, dtype)
    assert_close(dZ, want_dZ, dtype)
    assert correct == np.sum(Z.argmax(axis=1) == T.argmax(axis=1))
    P = np.empty_like(Z)
    kernels.softmax(P, Z)
    assert_close(P, reference.softmax(Z.astype(np.float64)), dtype)


@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("k", WIDTHS)
def test_binary_cross_entropy(dtype, rng, n, k):
    Z = random(rng, (n, k), dtype)
    T = rng.integers(0, 2, (n, k)).astype(dtype)
    dZ = np.empty_like(Z)
    loss, correct = kernels.binary_cross_entropy(dZ, Z, T, 1.0 / n)
    want_loss, want_dZ = reference.binary_cross_entropy(Z.astype(np.float64),
                                                        T.astype(np.float64))
    assert_close(loss, want_loss, dtype)
    assert_close(dZ, want_dZ, dtype)
    assert correct == np.sum(np.all((Z > 0) == (T > 0.5), axis=1))


def test_binary_cross_entropy_is_the_logistic_loss(rng):
    """With y = 2T - 1 the loss is mean log(1 + exp(-y z)), the logistic loss."""
    z = rng.normal(0, 5, (50, 1))
    y = rng.choice([-1.0, 1.0], (50, 1))
    loss, _ = kernels.binary_cross_entropy(np.empty_like(z), z, (y + 1) / 2, 1.0 / 50)
    assert abs(loss - np.mean(np.log1p(np.exp(-y * z)))) < 1e-12


@pytest.mark.parametrize("name", ["softmax_cross_entropy", "binary_cross_entropy"])
@pytest.mark.parametrize("z", [-1e30, -1e4, 1e4, 1e30])
def test_cross_entropies_are_finite_for_huge_logits(dtype, name, z):
    Z = np.array([[z, 0.0, -z]], dtype)
    T = np.array([[0.0, 0.0, 1.0]], dtype)
    dZ = np.empty_like(Z)
    loss, _ = getattr(kernels, name)(dZ, Z, T, 1.0)
    assert np.isfinite(loss) and np.all(np.isfinite(dZ))
    want_loss, want_dZ = getattr(reference, name)(Z.astype(np.float64), T.astype(np.float64))
    assert_close(loss, want_loss, dtype)
    assert_close(dZ, want_dZ, dtype)


def test_mean_squared_error_is_finite_for_huge_outputs(dtype):
    """(1e30)**2 overflows float32: the kernel squares in float64."""
    A = np.array([[1e30, -1e30]], dtype)
    T = np.zeros_like(A)
    dZ = np.empty_like(A)
    loss, _ = kernels.mean_squared_error(dZ, A, T, kernels.IDENTITY, 1.0)
    assert loss == pytest.approx(1e60, rel=1e-6)
    np.testing.assert_array_equal(dZ, A)


@pytest.mark.parametrize("n", ROWS)
@pytest.mark.parametrize("k", WIDTHS)
@pytest.mark.parametrize("output", ACTIVATIONS)
def test_mean_squared_error(dtype, rng, n, k, output):
    A = ENTRIES[output].forward(random(rng, (n, k), dtype, 1.0)).astype(dtype)
    T = rng.random((n, k)).astype(dtype)
    dZ = np.empty_like(A)
    loss, correct = kernels.mean_squared_error(dZ, A, T, ENTRIES[output].code, 1.0 / n)
    want_loss, want_dZ = reference.mean_squared_error(A.astype(np.float64),
                                                      T.astype(np.float64), output)
    assert_close(loss, want_loss, dtype)
    assert_close(dZ, want_dZ, dtype)
    assert correct == np.sum(A.argmax(axis=1) == T.argmax(axis=1))


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("n", [1, 9])
def test_losses_weigh_rows(dtype, rng, loss, n):
    """scale * weights[i] weighs row i, as reference's weighted mean does with
    scale = 1 / weights.sum(); zero weights included."""
    k = 3
    out = random(rng, (n, k), dtype, 1.0)
    T = one_hot(rng, n, k, dtype)
    weights = rng.integers(0, 4, n).astype(dtype)
    weights[0] = 2
    dZ = np.empty_like(out)
    scale = 1.0 / weights.sum(dtype=np.float64)
    if loss == "mse":
        value, _ = kernels.mean_squared_error(dZ, out, T, kernels.IDENTITY, scale, weights)
        want = reference.mean_squared_error(out.astype(np.float64), T.astype(np.float64),
                                            "identity", weights.astype(np.float64))
    else:
        value, _ = getattr(kernels, loss)(dZ, out, T, scale, weights)
        want = getattr(reference, loss)(out.astype(np.float64), T.astype(np.float64),
                                        weights.astype(np.float64))
    assert_close(value, want[0], dtype)
    assert_close(dZ, want[1], dtype)
    assert np.all(dZ[weights == 0] == 0)


RULES = {"sgd": kernels.SGD, "momentum": kernels.MOMENTUM, "nesterov": kernels.NESTEROV,
         "adam": kernels.ADAM}


@pytest.mark.parametrize("rule", list(RULES))
@pytest.mark.parametrize("size", [1, 3, 17, 255, 1000])
@pytest.mark.parametrize("n_shards", [1, 2, 3])
@pytest.mark.parametrize("l2, weight_decay", [(0.0, 0.0), (0.01, 0.0), (0.0, 0.1)])
def test_optimizer_update(dtype, rng, rule, size, n_shards, l2, weight_decay):
    """Three updates in a row (the state carries over), on the range start:size.
    Inputs without the large outliers of ``random``: g + l2 * p would cancel,
    and float32 arithmetic (which the kernel does) loses digits there."""
    hyper = dict(lr=0.05, momentum=0.9, beta_1=0.9, beta_2=0.999, epsilon=1e-8, l2=l2,
                 weight_decay=weight_decay)
    # The kernel gets them in its dtype; so does the reference, like every input.
    hyper = {k: float(np.dtype(dtype).type(v)) for k, v in hyper.items()}
    params, state = rng.normal(size=size).astype(dtype), np.zeros((2, size), dtype)
    before, start = params.copy(), size // 3
    want, want_state = params.astype(np.float64), state.astype(np.float64)
    for step in (1, 2, 3):
        grads = rng.normal(size=(n_shards, size)).astype(dtype)
        want, want_state = reference.optimizer_update(
            want, want_state, grads.astype(np.float64).sum(axis=0), rule, step=step, **hyper)
        kernels.optimizer_update(params, state, grads, RULES[rule],
                                 tuple(np.dtype(dtype).type(v) for v in hyper.values()),
                                 step, start, size)
    assert_close(params[start:], want[start:], dtype)
    assert_close(state[:, start:], want_state[:, start:], dtype)
    np.testing.assert_array_equal(params[:start], before[:start])


def test_layer_params_are_views_in_the_flat_layout():
    sizes = np.array([3, 4, 2], dtype=np.int64)
    params = np.arange(kernels.param_offset(sizes, 2), dtype=np.float64)
    assert params.size == (3 + 1) * 4 + (4 + 1) * 2
    for l, (want_W, want_b) in enumerate(reference.unpack(params, [3, 4, 2])):
        W, b = kernels.layer_params(params, sizes, l)
        np.testing.assert_array_equal(W, want_W)
        np.testing.assert_array_equal(b, want_b)
        W[0, 0] = -1.0
        assert want_W[0, 0] == -1.0


@pytest.mark.parametrize("sizes", [[3, 2], [784, 256, 128, 10], [5000, 1, 4097]])
def test_update_blocks_tile_the_buffer_weights_and_biases_apart(sizes):
    sizes = np.array(sizes, dtype=np.int64)
    n_blocks = kernels.update_block(sizes, -1)[0]
    is_weight = np.zeros(kernels.param_offset(sizes, len(sizes) - 1))
    for W, _ in reference.unpack(is_weight, sizes):
        W[...] = 1
    covered = np.zeros(is_weight.size, dtype=int)
    for k in range(n_blocks):
        start, stop, weights = kernels.update_block(sizes, k)
        assert 0 < stop - start <= kernels.network.UPDATE_BLOCK
        assert np.all(is_weight[start:stop] == weights)
        covered[start:stop] += 1
    np.testing.assert_array_equal(covered, 1)


@pytest.mark.parametrize("sizes", [[40, 37], [40, 70, 33, 5], [30, 200, 3]])
def test_per_sample_sgd(dtype, rng, sizes):
    """Per-sample SGD with each layer's columns shared out over threads in
    pieces (kernels/samples.py), its last layer whole on each when it has one
    piece: the same bits on 1 and 2 threads, and the reference's parameters.
    Half the inputs are zero, which the pass skips."""
    n = 40
    X = rng.normal(size=(n, sizes[0])).astype(dtype)
    X[rng.random(X.shape) < 0.5] = 0
    T = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], n)]
    start = rng.normal(0, 0.3, kernels.param_offset(np.array(sizes), len(sizes) - 1))
    start = start.astype(dtype)
    order, lr = rng.permutation(n), np.dtype(dtype).type(0.05)
    codes = (np.full(len(sizes) - 2, kernels.TANH), kernels.IDENTITY,
             kernels.SOFTMAX_CROSS_ENTROPY)
    runs = []
    for threads in (1, 2):
        params = start.copy()
        buffers = kernels.sample_buffers(np.array(sizes), dtype)
        total, correct, _ = kernels.run_samples(threads, params, buffers, np.array(sizes),
                                                *codes, X, T, order, 0, n, lr)
        runs.append(params)
    np.testing.assert_array_equal(runs[0], runs[1])
    want, losses = reference.train(start.astype(np.float64), sizes, "tanh", "identity",
                                   "softmax_cross_entropy", X.astype(np.float64),
                                   T.astype(np.float64), [order], 1, float(lr))
    assert_close(runs[1], want, dtype)
    assert total == pytest.approx(sum(losses), rel=RTOL[dtype])
