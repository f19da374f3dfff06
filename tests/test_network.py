"""Whole-network kernels against the reference: gradients, predictions, training."""

import numpy as np
import pytest
from conftest import ACTIVATIONS, LOSSES, assert_close

import fastmlp
from fastmlp import reference

N_OUT = {"softmax_cross_entropy": 4, "binary_cross_entropy": 3, "mse": 2}


def problem(rng, loss, n, n_in, n_out):
    """Inputs (n, n_in) and targets of the kind the loss takes."""
    X = rng.normal(size=(n, n_in))
    if loss == "softmax_cross_entropy":
        return X, rng.integers(0, n_out, n)
    if loss == "binary_cross_entropy":
        return X, rng.integers(0, 2, (n, n_out))
    return X, rng.normal(size=(n, n_out))


def targets(loss, y, n_out):
    """The float targets T (n, n_out) the kernels see."""
    if loss == "softmax_cross_entropy":
        return np.eye(n_out)[y]
    return np.asarray(y, dtype=np.float64).reshape(len(y), n_out)


def kernel_output(net):
    """The last layer's activation as the kernels and the reference see it."""
    return "identity" if net.output in ("softmax", "sigmoid") and net.loss != "mse" else net.output


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("hidden", [(), (17,), (3, 255), (5, 4, 3)])
@pytest.mark.parametrize("n", [1, 7])
def test_loss_and_grad_equal_reference(dtype, rng, activation, loss, hidden, n):
    n_out = N_OUT[loss]
    output = "sigmoid" if loss == "mse" else None
    net = fastmlp.MLP((6, *hidden, n_out), activation, loss, output, dtype, seed=1)
    X, y = problem(rng, loss, n, 6, n_out)
    value, grad = net.loss_and_grad(X, y)
    want_value, want_grad = reference.loss_and_grad(
        net.params.astype(np.float64), net.sizes, activation, kernel_output(net), loss,
        X.astype(dtype).astype(np.float64), targets(loss, y, n_out))
    assert_close(value, want_value, dtype)
    assert_close(grad, want_grad, dtype)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
def test_predict_proba_equals_reference(dtype, rng, activation, loss):
    n_out = N_OUT[loss]
    net = fastmlp.MLP((6, 9, n_out), activation, loss, dtype=dtype, seed=2)
    X = rng.normal(size=(5000, 6)).astype(dtype)  # more than one block of rows
    out = reference.forward(net.params.astype(np.float64), net.sizes, activation,
                            net.output if net.output != "softmax" else "identity",
                            X.astype(np.float64))[-1]
    if net.output == "softmax":
        out = reference.softmax(out)
    assert_close(net.predict_proba(X), out, dtype)


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("hidden", [(16,), (8, 8), (6, 5, 4)])
def test_gradcheck(activation, loss, hidden, rng):
    n_out = N_OUT[loss]
    output = "tanh" if loss == "mse" else None
    net = fastmlp.MLP((4, *hidden, n_out), activation, loss, output, "float64", seed=3)
    X, y = problem(rng, loss, 10, 4, n_out)
    assert fastmlp.gradcheck(net, X, y) < 1e-6


def test_gradcheck_catches_a_gradient_off_by_the_batch_size(rng, monkeypatch):
    net = fastmlp.MLP((4, 5, 3), "tanh", dtype="float64", seed=0)
    X, y = problem(rng, "softmax_cross_entropy", 8, 4, 3)
    right = net.loss_and_grad
    monkeypatch.setattr(net, "loss_and_grad",
                        lambda X, y, dropout: (right(X, y)[0], right(X, y)[1] * 8))
    assert fastmlp.gradcheck(net, X, y) > 0.5


@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("batch_size", [1, 7])
def test_three_epochs_of_minibatch_sgd_equal_reference(rng, activation, loss, batch_size):
    """Shuffled batches of 7 (the last one short), or per-sample SGD, on inputs
    that are half zeros: same parameters after 3 epochs."""
    n_out, n, seed = N_OUT[loss], 52, 11
    net = fastmlp.MLP((5, 8, 6, n_out), activation, loss, dtype="float64", seed=4)
    X, y = problem(rng, loss, n, 5, n_out)
    X[rng.random(X.shape) < 0.5] = 0.0
    start = net.params.copy()
    net.fit(X, y, epochs=3, batch_size=batch_size, lr=0.1, seed=seed, verbose=0)
    shuffles = np.random.default_rng(seed)
    orders = [shuffles.permutation(n) for _ in range(3)]
    want, _ = reference.train(start, net.sizes, activation, kernel_output(net), loss,
                              X, targets(loss, y, n_out), orders, batch_size, 0.1)
    np.testing.assert_allclose(net.params, want, rtol=0, atol=1e-9 * np.abs(want).max())
    assert np.abs(net.params - start).max() > 1e-3  # it did train


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("hidden", [(), (70, 33)])
def test_per_sample_sgd_is_the_same_on_1_and_2_threads(rng, loss, hidden):
    """Batches of one share each layer's columns out over the threads in
    fixed pieces (fastmlp.kernels.samples): with layers wider than a piece,
    the same bits on 1 and 2 threads, and the reference's parameters."""
    n_out, n, seed = 37 if not hidden else N_OUT[loss], 60, 2
    X, y = problem(rng, loss, n, 40, n_out)
    X[rng.random(X.shape) < 0.5] = 0.0
    runs = []
    for n_threads in (1, 2):
        net = fastmlp.MLP((40, *hidden, n_out), "tanh", loss, dtype="float64", seed=4)
        start = net.params.copy()
        net.fit(X, y, epochs=2, batch_size=1, lr=0.05, seed=seed, verbose=0, n_threads=n_threads)
        runs.append(net.params)
    np.testing.assert_array_equal(runs[0], runs[1])
    shuffles = np.random.default_rng(seed)
    orders = [shuffles.permutation(n) for _ in range(2)]
    want, _ = reference.train(start, net.sizes, "tanh", kernel_output(net), loss, X,
                              targets(loss, y, n_out), orders, 1, 0.05)
    np.testing.assert_allclose(runs[1], want, rtol=0, atol=1e-9 * np.abs(want).max())
    assert np.abs(runs[1] - start).max() > 1e-3  # it did train


def test_training_float32_follows_reference(rng):
    net = fastmlp.MLP((5, 16, 3), "relu", dtype="float32", seed=5)
    X, y = problem(rng, "softmax_cross_entropy", 40, 5, 3)
    start = net.params.astype(np.float64)
    history = net.fit(X, y, epochs=2, batch_size=8, lr=0.05, seed=0, verbose=0)
    shuffles = np.random.default_rng(0)
    orders = [shuffles.permutation(40) for _ in range(2)]
    want, losses = reference.train(start, net.sizes, "relu", "identity",
                                   "softmax_cross_entropy", X.astype(np.float32).astype(np.float64),
                                   targets("softmax_cross_entropy", y, 3), orders, 8, 0.05)
    np.testing.assert_allclose(net.params, want, rtol=0, atol=1e-5 * np.abs(want).max())
    assert history["loss"][0] == pytest.approx(np.mean(losses[:5]), rel=1e-5)


@pytest.fixture(params=[True, False], ids=["shards", "threaded BLAS"])
def shards(request):
    """fit's way of using threads."""
    return request.param


@pytest.mark.parametrize("n_threads", [1, 2])
@pytest.mark.parametrize("shuffle", [True, False])
def test_threads_change_results_only_by_reassociation(rng, shards, n_threads, shuffle):
    n, seed = 61, 7
    X, y = problem(rng, "softmax_cross_entropy", n, 5, 4)
    runs = []
    for _ in range(2):
        net = fastmlp.MLP((5, 9, 4), "tanh", dtype="float64", seed=4)
        start = net.params.copy()
        net.fit(X, y, epochs=3, batch_size=7, lr=0.1, shuffle=shuffle, seed=seed, verbose=0,
                n_threads=n_threads, shards=shards)
        runs.append(net.params.copy())
    np.testing.assert_array_equal(runs[0], runs[1])  # bit-identical run after run
    shuffles = np.random.default_rng(seed)
    orders = [shuffles.permutation(n) if shuffle else np.arange(n) for _ in range(3)]
    want, _ = reference.train(start, net.sizes, "tanh", "identity", "softmax_cross_entropy",
                              X, targets("softmax_cross_entropy", y, 4), orders, 7, 0.1)
    np.testing.assert_allclose(runs[0], want, rtol=0, atol=1e-9 * np.abs(want).max())


def test_bad_thread_count_is_refused(rng):
    net = fastmlp.MLP((5, 3), seed=0)
    X, y = problem(rng, "softmax_cross_entropy", 10, 5, 3)
    for bad in [0, -1, 1000, 1.5, True]:
        with pytest.raises(ValueError, match="n_threads"):
            net.fit(X, y, n_threads=bad, verbose=0)


@pytest.mark.parametrize("optimizer, rule, hyper", [
    (fastmlp.SGD(momentum=0.9), "momentum", dict(momentum=0.9)),
    (fastmlp.SGD(momentum=0.8, nesterov=True, l2=0.01), "nesterov", dict(momentum=0.8, l2=0.01)),
    (fastmlp.SGD(weight_decay=0.1), "sgd", dict(weight_decay=0.1)),
    (fastmlp.SGD(l2=0.05, weight_decay=0.02), "sgd", dict(l2=0.05, weight_decay=0.02)),
    (fastmlp.Adam(), "adam", {}),
    (fastmlp.Adam(beta_1=0.8, weight_decay=0.05, l2=0.001), "adam",
     dict(beta_1=0.8, weight_decay=0.05, l2=0.001)),
])
@pytest.mark.parametrize("batch_size", [1, 7])
def test_optimizers_and_schedules_train_like_reference(rng, shards, optimizer, rule, hyper,
                                                       batch_size):
    n, seed = 40, 3
    lr = fastmlp.optimizers.cosine(0.05, epochs=3)
    net = fastmlp.MLP((5, 8, 3), "relu", dtype="float64", seed=4)
    X, y = problem(rng, "softmax_cross_entropy", n, 5, 3)
    start = net.params.copy()
    net.fit(X, y, epochs=3, batch_size=batch_size, lr=lr, optimizer=optimizer, seed=seed,
            verbose=0, shards=shards)
    shuffles = np.random.default_rng(seed)
    orders = [shuffles.permutation(n) for _ in range(3)]
    want, _ = reference.train(start, net.sizes, "relu", "identity", "softmax_cross_entropy",
                              X, targets("softmax_cross_entropy", y, 3), orders, batch_size,
                              [lr(e) for e in (1, 2, 3)], rule, **hyper)
    np.testing.assert_allclose(net.params, want, rtol=0, atol=1e-9 * np.abs(want).max())


def test_schedules():
    from fastmlp.optimizers import cosine, inverse_scaling, step_decay
    assert [inverse_scaling(1.0, 0.5)(e) for e in (1, 4)] == [1.0, 0.5]
    assert [step_decay(0.1, 0.5, 2)(e) for e in (1, 2, 3, 5)] == [0.1, 0.1, 0.05, 0.025]
    assert cosine(1.0, 4)(1) == 1.0 and cosine(1.0, 4)(3) == pytest.approx(0.5)


def test_bad_optimizers_are_refused(rng):
    net = fastmlp.MLP((5, 3), seed=0)
    X, y = problem(rng, "softmax_cross_entropy", 10, 5, 3)
    for bad in ["rmsprop", fastmlp.SGD(momentum=-1), fastmlp.Adam(beta_1=1.0), 3]:
        with pytest.raises(ValueError):
            net.fit(X, y, optimizer=bad, verbose=0)
    with pytest.raises(ValueError, match="lr of epoch 2"):
        net.fit(X, y, epochs=2, lr=lambda epoch: 0.1 if epoch == 1 else float("nan"), verbose=0)


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("shuffle", [True, False])
def test_sample_weights_train_like_reference(rng, shards, loss, shuffle):
    """Batches of 7 weighted by sample_weight, zero weights included; the
    epoch's loss is the weighted mean of the batch losses."""
    n_out, n, seed = N_OUT[loss], 40, 5
    X, y = problem(rng, loss, n, 5, n_out)
    w = rng.integers(0, 4, n).astype(np.float64)
    net = fastmlp.MLP((5, 8, n_out), "tanh", loss, dtype="float64", seed=4)
    start = net.params.copy()
    history = net.fit(X, y, epochs=2, batch_size=7, lr=0.1, seed=seed, shuffle=shuffle,
                      sample_weight=w, verbose=0, shards=shards)
    shuffles = np.random.default_rng(seed)
    orders = [shuffles.permutation(n) if shuffle else np.arange(n) for _ in range(2)]
    want, losses = reference.train(start, net.sizes, "tanh", kernel_output(net), loss, X,
                                   targets(loss, y, n_out), orders, 7, 0.1, weights=w)
    np.testing.assert_allclose(net.params, want, rtol=0, atol=1e-9 * np.abs(want).max())
    masses = [w[orders[0][s:s + 7]].sum() for s in range(0, n, 7)]
    assert history["loss"][0] == pytest.approx(np.dot(losses[:6], masses) / w.sum(), rel=1e-9)


def test_zero_weights_drop_rows_and_integer_weights_repeat_them(rng):
    X, y = problem(rng, "softmax_cross_entropy", 12, 5, 4)
    w = np.array([0, 1, 2, 3] * 3)
    fits = {}
    for name, (Xf, yf, wf) in {"weighted": (X, y, w),
                               "repeated": (np.repeat(X, w, axis=0), np.repeat(y, w), None)}.items():
        net = fastmlp.MLP((5, 6, 4), "relu", dtype="float64", seed=1)
        history = net.fit(Xf, yf, epochs=4, batch_size=None, lr=0.2, sample_weight=wf, verbose=0)
        fits[name] = net.params, history["loss"]
    np.testing.assert_allclose(fits["weighted"][0], fits["repeated"][0], rtol=1e-12, atol=1e-14)
    np.testing.assert_allclose(fits["weighted"][1], fits["repeated"][1], rtol=1e-12)


def test_bad_sample_weights_are_refused(rng):
    X, y = problem(rng, "softmax_cross_entropy", 10, 5, 3)
    net = fastmlp.MLP((5, 3), seed=0)
    before = net.params.copy()
    for bad, message in [(np.ones(9), "shape"), (np.ones((10, 1)), "shape"),
                         (np.r_[np.nan, np.ones(9)], "NaN"), (np.r_[-1.0, np.ones(9)], "negative"),
                         (np.zeros(10), "zero for every"), (np.array(["a"] * 10), "numbers")]:
        with pytest.raises((ValueError, TypeError), match=message):
            net.fit(X, y, sample_weight=bad, verbose=0)
    np.testing.assert_array_equal(net.params, before)


@pytest.mark.parametrize("optimizer", [fastmlp.SGD(momentum=0.9), fastmlp.Adam()])
def test_resume_continues_the_optimizer(rng, shards, optimizer):
    """Two resumed one-epoch fits equal one fit of two epochs, bit for bit."""
    X, y = problem(rng, "softmax_cross_entropy", 30, 5, 3)
    runs = {}
    for way in ["one call", "resumed", "restarted"]:
        net = fastmlp.MLP((5, 6, 3), "relu", dtype="float64", seed=2)
        if way == "one call":
            net.fit(X, y, epochs=2, batch_size=8, lr=0.05, optimizer=optimizer, verbose=0,
                    shards=shards)
        else:
            for _ in range(2):
                net.fit(X, y, epochs=1, batch_size=8, lr=0.05, optimizer=optimizer, verbose=0,
                        shards=shards, resume=way == "resumed")
        runs[way] = net.params
    np.testing.assert_array_equal(runs["resumed"], runs["one call"])
    assert np.abs(runs["restarted"] - runs["one call"]).max() > 1e-6


def test_resume_refuses_another_optimizer(rng):
    X, y = problem(rng, "softmax_cross_entropy", 10, 5, 3)
    net = fastmlp.MLP((5, 3), seed=0)
    net.fit(X, y, epochs=1, optimizer="adam", verbose=0)
    with pytest.raises(ValueError, match="resume needs the optimizer"):
        net.fit(X, y, epochs=1, optimizer=fastmlp.SGD(momentum=0.9), resume=True, verbose=0)


def test_a_pickled_model_keeps_its_weights_views_of_params(rng):
    import pickle
    X, y = problem(rng, "softmax_cross_entropy", 20, 5, 3)
    net = fastmlp.MLP((5, 4, 3), seed=0)
    net.fit(X, y, epochs=1, verbose=0)
    copy = pickle.loads(pickle.dumps(net))
    np.testing.assert_array_equal(copy.predict_proba(X), net.predict_proba(X))
    copy.fit(X, y, epochs=1, verbose=0, resume=True)
    for (W, b), (W_params, b_params) in zip(copy.weights, fastmlp.reference.unpack(copy.params, copy.sizes)):
        assert np.shares_memory(W, copy.params)
        np.testing.assert_array_equal(W, W_params)
        np.testing.assert_array_equal(b, b_params)


PER_LAYER = ("tanh", "relu", "sigmoid")


@pytest.mark.parametrize("loss", LOSSES)
def test_per_layer_activations_equal_reference(dtype, rng, loss):
    """One activation per hidden layer: gradient, predictions and three epochs
    of training against the reference."""
    n_out = N_OUT[loss]
    net = fastmlp.MLP((6, 7, 5, 4, n_out), PER_LAYER, loss, dtype=dtype, seed=1)
    assert net.activations == PER_LAYER
    X, y = problem(rng, loss, 9, 6, n_out)
    value, grad = net.loss_and_grad(X, y)
    X64, T = X.astype(dtype).astype(np.float64), targets(loss, y, n_out)
    want_value, want_grad = reference.loss_and_grad(
        net.params.astype(np.float64), net.sizes, PER_LAYER, kernel_output(net), loss, X64, T)
    assert_close(value, want_value, dtype)
    assert_close(grad, want_grad, dtype)
    start = net.params.astype(np.float64)
    for batch_size in (1, 4):
        net.params[...] = start
        net.fit(X, y, epochs=3, batch_size=batch_size, lr=0.1, seed=2, verbose=0)
        shuffles = np.random.default_rng(2)
        orders = [shuffles.permutation(len(X)) for _ in range(3)]
        want, _ = reference.train(start, net.sizes, PER_LAYER, kernel_output(net), loss, X64, T,
                                  orders, batch_size, 0.1)
        assert_close(net.params, want, dtype)


def test_per_layer_gradcheck(rng):
    net = fastmlp.MLP((4, 6, 5, 3), ("sigmoid", "leaky_relu"), dtype="float64", seed=3)
    X, y = problem(rng, "softmax_cross_entropy", 10, 4, 3)
    assert fastmlp.gradcheck(net, X, y) < 1e-6


def test_initialisation_follows_each_layers_activation():
    """He bounds for the layer into relu units, Glorot for tanh, and the output
    layer as the last hidden layer's."""
    net = fastmlp.MLP((400, 300, 200, 100), ("relu", "tanh"), seed=0)
    bounds = [np.sqrt(6 / 400), np.sqrt(6 / (300 + 200)), np.sqrt(6 / (200 + 100))]
    for (W, _), bound in zip(net.weights, bounds):
        assert 0.99 * bound < np.abs(W).max() <= bound


def test_an_activation_per_hidden_layer_or_one_for_all():
    with pytest.raises(ValueError, match="activation has 3 entries for 2 hidden layers"):
        fastmlp.MLP((4, 5, 5, 2), ("relu", "tanh", "relu"))
    with pytest.raises(ValueError, match="activation"):
        fastmlp.MLP((4, 5, 5, 2), ("relu", "swish"))
    one = fastmlp.MLP((4, 5, 5, 2), "tanh", seed=0)
    each = fastmlp.MLP((4, 5, 5, 2), ["tanh", "tanh"], seed=0)
    assert one.activations == each.activations == ("tanh", "tanh")
    assert np.array_equal(one.params, each.params)


@pytest.mark.parametrize("optimizer, rule, hyper", [
    ("sgd", "sgd", {}), (fastmlp.SGD(momentum=0.9, l2=0.01), "momentum", {"momentum": 0.9,
                                                                          "l2": 0.01}),
    ("adam", "adam", {}),
])
@pytest.mark.parametrize("batch_size, shards", [(1, False), (6, False), (6, True)])
def test_clipping_trains_like_reference(rng, optimizer, rule, hyper, batch_size, shards):
    """clip_norm 0.5 clips most batches here (their gradients' norms are 1 to
    3): the same parameters as the reference's clip_by_norm before each update."""
    net = fastmlp.MLP((5, 8, 6, 3), "tanh", dtype="float64", seed=4)
    X, y = problem(rng, "softmax_cross_entropy", 40, 5, 3)
    X *= 3
    start = net.params.copy()
    net.fit(X, y, epochs=2, batch_size=batch_size, lr=0.1, optimizer=optimizer, seed=1,
            verbose=0, clip_norm=0.5, shards=shards, n_threads=2)
    shuffles = np.random.default_rng(1)
    orders = [shuffles.permutation(40) for _ in range(2)]
    T = targets("softmax_cross_entropy", y, 3)
    want, _ = reference.train(start, net.sizes, "tanh", "identity", "softmax_cross_entropy",
                              X, T, orders, batch_size, 0.1, rule, clip_norm=0.5, **hyper)
    np.testing.assert_allclose(net.params, want, rtol=0, atol=1e-9 * np.abs(want).max())
    unclipped, _ = reference.train(start, net.sizes, "tanh", "identity",
                                   "softmax_cross_entropy", X, T, orders, batch_size, 0.1, rule,
                                   **hyper)
    assert np.abs(unclipped - want).max() > 1e-3  # clipping changed the training


def test_a_divergence_that_clipping_prevents_says_so(rng):
    X, y = problem(rng, "softmax_cross_entropy", 64, 5, 3)
    net = fastmlp.MLP((5, 32, 3), "relu", dtype="float32", seed=0)
    with pytest.raises(FloatingPointError, match="Clipping would have prevented it"):
        net.fit(X * 1e3, y, epochs=5, batch_size=8, lr=1.0, verbose=0)
    with pytest.raises(FloatingPointError) as raised:
        net.fit(X * 1e30, y, epochs=5, batch_size=8, lr=1.0, verbose=0, clip_norm=1.0)
    assert "Clipping would have" not in str(raised.value)


def test_bad_clip_norm_is_refused(rng):
    X, y = problem(rng, "softmax_cross_entropy", 8, 5, 3)
    with pytest.raises(ValueError, match="clip_norm"):
        fastmlp.MLP((5, 3)).fit(X, y, clip_norm=0, verbose=0)


DROPOUT = (0.3, 0.5)


@pytest.mark.parametrize("loss", LOSSES)
def test_dropout_gradient_equals_reference_with_the_same_masks(dtype, rng, loss):
    n_out = N_OUT[loss]
    net = fastmlp.MLP((6, 40, 30, n_out), ("tanh", "relu"), loss, dtype=dtype, seed=1,
                      dropout=DROPOUT)
    X, y = problem(rng, loss, 9, 6, n_out)
    value, grad = net.loss_and_grad(X, y, dropout=(12345, 7))
    want_value, want_grad = reference.loss_and_grad(
        net.params.astype(np.float64), net.sizes, ("tanh", "relu"), kernel_output(net), loss,
        X.astype(dtype).astype(np.float64), targets(loss, y, n_out),
        dropout=((0.0, *DROPOUT), 12345, 7, 0))
    assert_close(value, want_value, dtype)
    assert_close(grad, want_grad, dtype)
    plain_value, _ = net.loss_and_grad(X, y)
    assert abs(plain_value - value) > 1e-3  # the masks did drop units


def test_dropout_masks_drop_the_rate_of_units():
    for rate in (0.1, 0.5):
        M = reference.dropout_mask(rate, 3, 1, 1, np.arange(200), 500)
        assert set(np.unique(M)) == {0.0, 1 / (1 - rate)}
        assert abs((M == 0).mean() - rate) < 0.01
        other = reference.dropout_mask(rate, 3, 2, 1, np.arange(200), 500)
        assert abs(((M == 0) == (other == 0)).mean() - (rate**2 + (1 - rate) ** 2)) < 0.01


@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_gradcheck_with_dropout_masks_held_fixed(activation, rng):
    net = fastmlp.MLP((4, 12, 10, 3), activation, dtype="float64", seed=3, dropout=DROPOUT)
    X, y = problem(rng, "softmax_cross_entropy", 10, 4, 3)
    assert fastmlp.gradcheck(net, X, y, dropout=(99, 4)) < 1e-6


@pytest.mark.parametrize("optimizer, rule", [("sgd", "sgd"), ("adam", "adam")])
@pytest.mark.parametrize("batch_size, shards", [(1, False), (7, False), (7, True)])
def test_dropout_trains_like_reference(rng, optimizer, rule, batch_size, shards):
    """The masks of each update, for each row of its batch, whatever the shards."""
    net = fastmlp.MLP((5, 16, 12, 3), ("relu", "tanh"), dtype="float64", seed=4,
                      dropout=DROPOUT)
    X, y = problem(rng, "softmax_cross_entropy", 40, 5, 3)
    start = net.params.copy()
    net.fit(X, y, epochs=2, batch_size=batch_size, lr=0.05, optimizer=optimizer, seed=11,
            verbose=0, shards=shards, n_threads=2)
    shuffles = np.random.default_rng(11)
    orders = [shuffles.permutation(40) for _ in range(2)]
    want, _ = reference.train(start, net.sizes, ("relu", "tanh"), "identity",
                              "softmax_cross_entropy", X, targets("softmax_cross_entropy", y, 3),
                              orders, batch_size, 0.05, rule, dropout=((0.0, *DROPOUT), 11))
    np.testing.assert_allclose(net.params, want, rtol=0, atol=1e-9 * np.abs(want).max())


def test_dropout_gives_the_same_bits_at_1_and_2_threads(rng):
    X, y = problem(rng, "softmax_cross_entropy", 500, 20, 3)
    results = []
    for n_threads in (1, 2):
        net = fastmlp.MLP((20, 64, 64, 3), seed=0, dropout=0.4)
        net.fit(X, y, epochs=2, batch_size=100, optimizer="adam", seed=3, verbose=0,
                n_threads=n_threads)
        results.append(net.params)
    assert np.array_equal(*results)


def test_dropout_changes_nothing_at_predict_time(rng):
    X, y = problem(rng, "softmax_cross_entropy", 50, 5, 3)
    net = fastmlp.MLP((5, 16, 3), seed=0, dropout=0.5)
    net.fit(X, y, epochs=2, batch_size=10, verbose=0)
    plain = fastmlp.MLP((5, 16, 3), seed=0)
    plain.params[...] = net.params
    assert np.array_equal(net.predict_proba(X), plain.predict_proba(X))
    assert net.evaluate(X, y) == plain.evaluate(X, y)
    assert np.array_equal(net.loss_and_grad(X, y)[1], plain.loss_and_grad(X, y)[1])


def test_bad_dropout_is_refused():
    with pytest.raises(ValueError, match=r"dropout rate must be a number in \[0, 1\)"):
        fastmlp.MLP((4, 5, 2), dropout=1.0)
    with pytest.raises(ValueError, match="dropout has 1 rates for 2 hidden layers"):
        fastmlp.MLP((4, 5, 5, 2), dropout=[0.1])
    for rate in [1.0, -0.1, [0.1], None, True]:
        with pytest.raises(ValueError, match=r"input_dropout must be a number in \[0, 1\)"):
            fastmlp.MLP((4, 5, 2), input_dropout=rate)


@pytest.mark.parametrize("shuffle", [True, False])
def test_input_dropout_trains_like_reference(rng, shuffle):
    """Input dropout drops features in the trainer's copy of each batch (also
    unshuffled), with the masks of layer 0; the caller's X is left alone."""
    net = fastmlp.MLP((5, 16, 3), "tanh", dtype="float64", seed=4, dropout=0.3,
                      input_dropout=0.2)
    X, y = problem(rng, "softmax_cross_entropy", 40, 5, 3)
    given, start = X.copy(), net.params.copy()
    net.fit(X, y, epochs=2, batch_size=8, lr=0.05, seed=11, verbose=0, shuffle=shuffle)
    assert np.array_equal(X, given)
    shuffles = np.random.default_rng(11)
    orders = [shuffles.permutation(40) if shuffle else np.arange(40) for _ in range(2)]
    want, _ = reference.train(start, net.sizes, "tanh", "identity", "softmax_cross_entropy", X,
                              targets("softmax_cross_entropy", y, 3), orders, 8, 0.05,
                              dropout=((0.2, 0.3), 11))
    np.testing.assert_allclose(net.params, want, rtol=0, atol=1e-9 * np.abs(want).max())
    value, grad = net.loss_and_grad(X, y, dropout=(5, 2))
    want_value, want_grad = reference.loss_and_grad(
        net.params, net.sizes, "tanh", "identity", "softmax_cross_entropy", X,
        targets("softmax_cross_entropy", y, 3), dropout=((0.2, 0.3), 5, 2, 0))
    assert_close(value, want_value, "float64")
    assert_close(grad, want_grad, "float64")
    assert np.array_equal(X, given)


def test_input_dropout_needs_dense_inputs(rng):
    from scipy import sparse
    X, y = problem(rng, "softmax_cross_entropy", 8, 5, 3)
    with pytest.raises(ValueError, match="input_dropout needs dense X"):
        fastmlp.MLP((5, 3), input_dropout=0.1).fit(sparse.csr_matrix(X), y, verbose=0)
