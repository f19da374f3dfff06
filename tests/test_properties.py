"""Property-based tests of the core API over random architectures, shapes,
dtypes, activations, losses, optimizers, hyperparameters and inputs: every
call returns a finite, correctly shaped result or raises the documented
exception (ValueError or TypeError for bad input, FloatingPointError for
divergence or overflow), never crashes, hangs or answers NaN.

Sizes stay small (at most 40 samples, 3 epochs) so that the file runs in
well under 90 s once the kernels are compiled. Shards are left out: their
train_batches variants would double the cold compile; test_network and
test_concurrency cover them."""

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp
from conftest import ACTIVATIONS, LOSSES

import fastmlp
from fastmlp import registry

OPTIMIZERS = [*registry.OPTIMIZERS, fastmlp.SGD(momentum=0.9, nesterov=True)]
DOCUMENTED = (ValueError, TypeError, FloatingPointError)
# Examples each property tries; the README's Guarantees table quotes them.
EXAMPLES = {"training": 2000, "gradients": 2000, "arguments": 1500, "arrays": 2000}
SETTINGS = dict(deadline=None, suppress_health_check=[HealthCheck.too_slow])

# Finite values from everyday to extreme: huge, tiny, subnormal, zero.
VALUES = st.one_of(st.floats(-10, 10), st.sampled_from(
    [0.0, 1e30, -1e30, 1e38, -3e38, 1e300, -1e300, 1e-30, 5e-324, 65504.0]))


@st.composite
def models(draw):
    """An MLP of 1 to 3 hidden layers of widths 1 to 20, any activation,
    loss, output and dtype."""
    loss = draw(st.sampled_from(LOSSES))
    output = draw(st.sampled_from(ACTIVATIONS)) if loss == "mse" else None
    sizes = draw(st.lists(st.integers(1, 20), min_size=3, max_size=5))
    return fastmlp.MLP(sizes, draw(st.sampled_from(ACTIVATIONS)), loss, output,
                       draw(st.sampled_from(["float32", "float64"])), seed=draw(st.integers(0, 9)))


@st.composite
def problems(draw, extreme=True):
    """(model, X, y): inputs of the model's width, targets of its loss."""
    net = draw(models())
    n, k = draw(st.integers(1, 40)), net.sizes[-1]
    X = draw(hnp.arrays(np.float64, (n, net.sizes[0]), elements=VALUES if extreme
                        else st.floats(-10, 10)))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    if net.loss == "softmax_cross_entropy":
        y = rng.integers(0, k, n)
    elif net.loss == "binary_cross_entropy":
        y = rng.integers(0, 2, (n, k))
        y = 2 * y - 1 if draw(st.booleans()) else y  # -1/+1 or 0/1
    else:
        y = rng.normal(size=(n, k)) * draw(st.sampled_from([1.0, 1e3]))
    return net, X, y


def assert_finite_shapes(net, X, y):
    """predict, predict_proba and evaluate answer finite values of the right
    shapes, or FloatingPointError naming an overflow."""
    n, k = X.shape[0], net.sizes[-1]
    try:
        proba = net.predict_proba(X)
        labels = net.predict(X)
        loss, score = net.evaluate(X, y)
    except FloatingPointError as error:
        assert "overflowed" in str(error)
        return
    assert proba.shape == (n, k) and np.isfinite(proba).all()
    if net.loss == "softmax_cross_entropy":
        assert labels.shape == (n,) and ((0 <= labels) & (labels < k)).all()
    else:
        assert labels.shape == ((n,) if k == 1 else (n, k)) and np.isfinite(labels).all()
    assert np.isfinite(loss) and np.isfinite(score)


@settings(max_examples=EXAMPLES["training"], **SETTINGS)
@given(problem=problems(), batch_size=st.one_of(st.none(), st.integers(1, 60)),
       lr=st.floats(-6, 3).map(lambda e: 10.0 ** e), epochs=st.integers(0, 3),
       optimizer=st.sampled_from(OPTIMIZERS), shuffle=st.booleans())
def test_fit_then_predict(problem, batch_size, lr, epochs, optimizer, shuffle):
    """fit returns a History of finite metrics with finite parameters, or
    refuses input its dtype cannot hold, or stops on divergence with the last
    finite parameters; the model then predicts finite values."""
    net, X, y = problem
    try:
        history = net.fit(X, y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                          shuffle=shuffle, verbose=0)
    except ValueError as error:
        assert "converted to float32" in str(error)  # 1e300 does not fit in float32
        return
    except FloatingPointError as error:
        assert "diverged" in str(error)
    else:
        assert history.epoch == list(range(1, epochs + 1))
        assert all(np.isfinite(values).all() for values in history.history.values())
    assert np.isfinite(net.params).all()
    assert_finite_shapes(net, X, y)


@settings(max_examples=EXAMPLES["gradients"], **SETTINGS)
@given(problem=problems())
def test_loss_and_grad(problem):
    net, X, y = problem
    try:
        value, grad = net.loss_and_grad(X, y)
    except ValueError as error:
        assert "converted to float32" in str(error)
        return
    except FloatingPointError as error:
        assert "overflowed" in str(error)
        return
    assert np.isfinite(value) and value >= 0
    assert grad.shape == net.params.shape and np.isfinite(grad).all()


ANYTHING = st.one_of(st.none(), st.booleans(), st.text(max_size=3),
                     st.floats(allow_nan=True, allow_infinity=True), st.integers(-5, 5))


@settings(max_examples=EXAMPLES["arguments"], **SETTINGS)
@given(problem=problems(extreme=False),
       batch_size=st.one_of(st.integers(-2, 60), ANYTHING),
       lr=st.one_of(st.floats(-8, 4).map(lambda e: 10.0 ** e), ANYTHING),
       epochs=st.one_of(st.integers(-2, 2), ANYTHING),
       optimizer=st.one_of(st.sampled_from(OPTIMIZERS + ["rmsprop"]), ANYTHING))
def test_any_hyperparameters(problem, batch_size, lr, epochs, optimizer):
    """Any value for batch_size, lr, epochs and optimizer trains or is refused
    with ValueError or TypeError (parameters untouched), or diverges."""
    net, X, y = problem
    before = net.params.copy()
    try:
        net.fit(X, y, epochs=epochs, batch_size=batch_size, lr=lr, optimizer=optimizer,
                verbose=0)
    except (ValueError, TypeError):
        np.testing.assert_array_equal(net.params, before)
        return
    except FloatingPointError as error:
        assert "diverged" in str(error)
    assert np.isfinite(net.params).all()


@settings(max_examples=EXAMPLES["arrays"], **SETTINGS)
@given(net=models(), data=st.data())
def test_any_array_to_predict_and_evaluate(net, data):
    """Arrays of any numeric dtype and any shape up to 3-D, NaN and inf
    included: a finite answer of the right shape or a documented error."""
    dtype = data.draw(st.sampled_from([np.float64, np.float32, np.float16, np.int64, np.uint8,
                                       np.bool_]))
    shape = data.draw(st.one_of(
        st.tuples(st.integers(0, 30), st.sampled_from([net.sizes[0], net.sizes[0] + 1])),
        hnp.array_shapes(min_dims=1, max_dims=3, max_side=6)))
    X = data.draw(hnp.arrays(dtype, shape))
    y = data.draw(hnp.arrays(data.draw(st.sampled_from([np.int64, np.float64])),
                             (shape[0], net.sizes[-1]) if data.draw(st.booleans()) else shape[:1]))
    X_copy, y_copy = X.copy(), y.copy()
    for call in [lambda: net.predict_proba(X), lambda: net.predict(X),
                 lambda: net.evaluate(X, y)]:
        try:
            result = call()
        except DOCUMENTED:
            continue
        assert np.isfinite(np.asarray(result, dtype=np.float64)).all()
        if not isinstance(result, tuple):
            assert result.shape[0] == X.shape[0]
    np.testing.assert_array_equal(X, X_copy)
    np.testing.assert_array_equal(y, y_copy)

