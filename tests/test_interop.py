"""fastmlp.interop: round trips with scikit-learn, and PyTorch and ONNX
(onnxruntime) computing what fastmlp computes, for every activation and loss."""

import subprocess
import sys
import textwrap

import numpy as np
import onnx
import onnxruntime
import pytest
import torch
from conftest import ACTIVATIONS, LOSSES
from sklearn import neural_network
from sklearn.exceptions import NotFittedError

import fastmlp
from fastmlp import interop, registry

pytestmark = pytest.mark.filterwarnings("ignore::sklearn.exceptions.ConvergenceWarning")

SKLEARN_ACTIVATIONS = [a for a in ACTIVATIONS if registry.ACTIVATIONS[a].sklearn_name]
X = np.random.default_rng(0).normal(size=(40, 4))
# Each task's estimator class name and targets for X.
TASKS = {
    "binary": ("MLPClassifier", np.array(["no", "yes"])[(X[:, 0] > 0).astype(int)]),
    "multiclass": ("MLPClassifier", np.digitize(X[:, 0], [-0.5, 0.5]) + 5),
    "multilabel": ("MLPClassifier", (X[:, :3] > 0).astype(int)),
    "regression": ("MLPRegressor", X[:, 0] - X[:, 1]),
    "multioutput": ("MLPRegressor", X[:, :2] * [1.0, -2.0]),
}
# Relative tolerance of another library's outputs (floor: that times the largest).
RTOL = {"float32": 1e-6, "float64": 1e-12}
# Losses and output widths of the MLPs converted: a softmax over two and three
# classes, a binary and a multilabel logistic output, two regression outputs.
LOSS_OUTPUTS = [("softmax_cross_entropy", 2), ("softmax_cross_entropy", 3),
                ("binary_cross_entropy", 1), ("binary_cross_entropy", 3), ("mse", 2)]
assert {loss for loss, _ in LOSS_OUTPUTS} == set(LOSSES)


@pytest.fixture(autouse=True, scope="module")
def one_thread():
    """Results do not depend on the thread count; on a busy machine each
    parallel region of these tiny nets waits for a core."""
    previous = fastmlp.get_num_threads()
    fastmlp.set_num_threads(1)
    yield
    fastmlp.set_num_threads(previous)


def assert_near(actual, expected, rtol):
    expected = np.asarray(expected, dtype=np.float64)
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol,
                               atol=rtol * np.abs(expected).max())


def assert_same_predictions(estimator, reference, Xd):
    """The same labels and probabilities near, or regression outputs near,
    both in X's dtype."""
    rtol = 4 * RTOL[Xd.dtype.name]
    if hasattr(reference, "predict_proba"):
        np.testing.assert_array_equal(estimator.predict(Xd), reference.predict(Xd))
        proba = estimator.predict_proba(Xd)
        assert proba.dtype == Xd.dtype
        assert_near(proba, reference.predict_proba(Xd), rtol)
    else:
        assert estimator.predict(Xd).dtype == Xd.dtype
        assert_near(estimator.predict(Xd), reference.predict(Xd), rtol)


def mlp(activation, loss, dtype, outputs):
    """A 4-5-3-outputs fastmlp.MLP with random weights and biases."""
    model = fastmlp.MLP((4, 5, 3, outputs), activation=activation, loss=loss, dtype=dtype,
                        seed=0)
    model.params[...] = np.random.default_rng(1).normal(size=model.params.size)
    return model


def fitted(task, dtype, activation="relu"):
    """A fastmlp estimator trained for three epochs on the task."""
    cls, y = TASKS[task]
    estimator = getattr(fastmlp, cls)(hidden_layer_sizes=(5,), activation=activation,
                                      max_iter=3, random_state=0, dtype=dtype)
    return estimator.fit(X, y)


def sklearn_fitted(task, dtype, solver="adam"):
    """A scikit-learn MLP trained for three iterations on X of ``dtype``."""
    cls, y = TASKS[task]
    estimator = getattr(neural_network, cls)(hidden_layer_sizes=(5,), activation="tanh",
                                             solver=solver, max_iter=3, random_state=0)
    return estimator.fit(X.astype(dtype), y)


# scikit-learn


@pytest.mark.parametrize("loss, outputs", LOSS_OUTPUTS)
@pytest.mark.parametrize("activation", SKLEARN_ACTIVATIONS)
def test_to_sklearn_predicts_as_the_mlp(activation, loss, outputs, dtype):
    model = mlp(activation, loss, dtype, outputs)
    sk = interop.to_sklearn(model)
    Xd = X.astype(dtype)
    P = model.predict_proba(Xd)
    if loss == "mse":
        assert isinstance(sk, neural_network.MLPRegressor)
        assert sk.predict(Xd).dtype == dtype
        assert_near(sk.predict(Xd), model.predict(Xd), 4 * RTOL[dtype])
        return
    assert isinstance(sk, neural_network.MLPClassifier)
    np.testing.assert_array_equal(sk.predict(Xd), model.predict(Xd))
    proba = sk.predict_proba(Xd)
    assert proba.dtype == dtype
    two_columns = loss == "binary_cross_entropy" and outputs == 1
    assert_near(proba[:, 1:] if two_columns else proba, P, 4 * RTOL[dtype])


@pytest.mark.parametrize("task", TASKS)
def test_to_sklearn_of_an_estimator_predicts_scores_and_trains_on(task, dtype):
    estimator = fitted(task, dtype)
    sk = interop.to_sklearn(estimator)
    assert type(sk).__name__ == TASKS[task][0]
    params = sk.get_params()
    assert {k: v for k, v in estimator.get_params().items() if k in params} == params
    Xd, y = X.astype(dtype), TASKS[task][1]
    assert_same_predictions(sk, estimator, Xd)
    assert sk.score(Xd, y) == pytest.approx(estimator.score(Xd, y), rel=1e-5)
    assert (sk.n_iter_, sk.t_, sk.loss_curve_) == (3, 3 * len(X), estimator.loss_curve_)
    for W, coef in zip(estimator.coefs_, sk.coefs_):
        assert coef.dtype == dtype and np.array_equal(W, coef)
        assert not np.shares_memory(W, coef)
    sk.partial_fit(Xd, y)  # scikit-learn goes on training
    assert sk.t_ == 4 * len(X) and not np.array_equal(sk.coefs_[0], estimator.coefs_[0])


def test_to_sklearn_refuses_what_scikit_learn_lacks(dtype):
    with pytest.raises(ValueError, match="no 'leaky_relu' activation"):
        interop.to_sklearn(mlp("leaky_relu", "mse", dtype, 1))
    with pytest.raises(ValueError, match="two classes or more, this softmax has one output"):
        interop.to_sklearn(mlp("relu", "softmax_cross_entropy", dtype, 1))
    model = fastmlp.MLP((4, 2), loss="mse", output="sigmoid", dtype=dtype)
    with pytest.raises(ValueError, match="identity output only, this model has 'sigmoid'"):
        interop.to_sklearn(model)
    model = mlp("relu", "binary_cross_entropy", dtype, 3)
    model.fit(X, np.where(X[:, :3] > 0, 1, -1), epochs=1, optimizer="adam", verbose=0)
    with pytest.raises(ValueError, match=r"predict 0 and 1, this model predicts \[-1, 1\]"):
        interop.to_sklearn(model)


def test_converters_refuse_other_objects():
    for convert in (interop.to_sklearn, interop.to_torch, interop.to_onnx):
        with pytest.raises(TypeError, match="expected a fastmlp.MLP"):
            convert(neural_network.MLPClassifier())
        with pytest.raises(NotFittedError):
            convert(fastmlp.MLPRegressor())
    with pytest.raises(TypeError, match="expected a scikit-learn MLPClassifier"):
        interop.from_sklearn(fastmlp.MLPClassifier())
    with pytest.raises(NotFittedError):
        interop.from_sklearn(neural_network.MLPClassifier())
    for solver in ("adam", "lbfgs"):
        poisson = neural_network.MLPRegressor(hidden_layer_sizes=(3,), loss="poisson",
                                              solver=solver, max_iter=2)
        with pytest.raises(ValueError, match="poisson"):
            interop.from_sklearn(poisson.fit(X, np.exp(X[:, 0])))


@pytest.mark.parametrize("task", TASKS)
def test_from_sklearn_predicts_the_same_and_trains_on(task, dtype):
    sk = sklearn_fitted(task, dtype)
    estimator = interop.from_sklearn(sk)
    assert type(estimator).__name__ == type(sk).__name__
    assert (estimator.dtype, estimator.activation, estimator.max_iter) == (dtype, "tanh", 3)
    Xd, y = X.astype(dtype), TASKS[task][1]
    assert_same_predictions(estimator, sk, Xd)
    assert (estimator.n_iter_, estimator.t_, estimator.loss_curve_) == (3, 3 * len(X),
                                                                        sk.loss_curve_)
    back = interop.to_sklearn(estimator)  # the weights come back bit for bit
    for coef, original in zip(back.coefs_ + back.intercepts_, sk.coefs_ + sk.intercepts_):
        assert np.array_equal(coef, original)
    estimator.partial_fit(Xd, y)
    assert estimator.t_ == 4 * len(X) and not np.array_equal(estimator.coefs_[0], sk.coefs_[0])
    coefs = [W.copy() for W in estimator.coefs_]
    estimator.set_params(warm_start=True, max_iter=2).fit(Xd, y)
    assert estimator.n_iter_ == 2 and not np.array_equal(estimator.coefs_[0], coefs[0])


def test_from_sklearn_keeps_the_best_network_for_early_stopping():
    """A warm-start fit with early stopping that never beats the best
    validation score so far ends on the network it started from."""
    sk = neural_network.MLPClassifier((5,), early_stopping=True, max_iter=3, random_state=0)
    y = TASKS["binary"][1]
    sk.fit(X, y).best_validation_score_ = 2.0  # a score no epoch beats
    estimator = interop.from_sklearn(sk)
    estimator.set_params(warm_start=True, max_iter=2).fit(X, y)
    assert len(estimator.validation_scores_) == len(sk.validation_scores_) + 2
    for W, coef in zip(estimator.coefs_, sk.coefs_):
        assert np.array_equal(W, coef)


def test_from_sklearn_of_lbfgs():
    """scikit-learn's lbfgs leaves float64 weights, even for float32 X."""
    sk = sklearn_fitted("multiclass", "float32", solver="lbfgs")
    estimator = interop.from_sklearn(sk)
    assert (estimator.solver, estimator.dtype) == ("lbfgs", "float64")
    assert_same_predictions(estimator, sk, X)
    estimator.set_params(warm_start=True, max_iter=2).fit(X, TASKS["multiclass"][1])
    assert estimator.n_iter_ == 2


def test_from_sklearn_goes_on_training_as_scikit_learn_does():
    """Full-batch SGD without momentum or L2, which fastmlp's estimators run
    as scikit-learn does: both continue from the converted network alike."""
    y = TASKS["multioutput"][1]
    sk = neural_network.MLPRegressor(hidden_layer_sizes=(5,), activation="tanh", solver="sgd",
                                     alpha=0.0, momentum=0.0, batch_size=len(X),
                                     learning_rate_init=0.05, max_iter=3,
                                     random_state=0).fit(X, y)
    estimator = interop.from_sklearn(sk)
    sk.partial_fit(X, y)
    estimator.partial_fit(X, y)
    sk.set_params(warm_start=True, max_iter=2).fit(X, y)
    estimator.set_params(warm_start=True, max_iter=2).fit(X, y)
    for W, coef in zip(estimator.coefs_, sk.coefs_):
        np.testing.assert_allclose(W, coef, rtol=1e-9, atol=1e-12)
    np.testing.assert_allclose(estimator.loss_curve_, sk.loss_curve_, rtol=1e-9)


# PyTorch


def torch_outputs(module, Xd):
    with torch.no_grad():
        return module(torch.from_numpy(Xd)).numpy()


@pytest.mark.parametrize("loss", LOSSES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_to_torch_computes_predict_proba(activation, loss, dtype):
    model = mlp(activation, loss, dtype, 3)
    generator = torch.random.get_rng_state()
    module = interop.to_torch(model)
    assert torch.equal(torch.random.get_rng_state(), generator)  # no initialisation drawn
    Xd = X.astype(dtype)
    out = torch_outputs(module, Xd)
    assert out.dtype == dtype
    assert_near(out, model.predict_proba(Xd), RTOL[dtype])


@pytest.mark.parametrize("task", TASKS)
def test_to_torch_of_an_estimator(task, dtype):
    estimator = fitted(task, dtype, activation="logistic")
    Xd = X.astype(dtype)
    out = torch_outputs(interop.to_torch(estimator), Xd)
    if TASKS[task][0] == "MLPClassifier":
        expected = estimator.predict_proba(Xd)[:, 1:] if task == "binary" \
            else estimator.predict_proba(Xd)
    else:
        expected = estimator.predict(Xd).reshape(len(X), -1)
    assert_near(out, expected, RTOL[dtype])


# ONNX


def run_onnx(proto, Xd):
    onnx.checker.check_model(proto, full_check=True)
    session = onnxruntime.InferenceSession(proto.SerializeToString(),
                                           providers=["CPUExecutionProvider"])
    names = [output.name for output in session.get_outputs()]
    return dict(zip(names, session.run(None, {"X": Xd})))


@pytest.mark.parametrize("loss, outputs", LOSS_OUTPUTS)
@pytest.mark.parametrize("activation", ACTIVATIONS)
def test_to_onnx_computes_the_mlp(activation, loss, outputs, dtype):
    model = mlp(activation, loss, dtype, outputs)
    Xd = X.astype(dtype)
    result = run_onnx(interop.to_onnx(model), Xd)
    if loss == "mse":
        assert set(result) == {"variable"}
        assert_near(result["variable"], model.predict_proba(Xd), 1e-5)
        return
    assert set(result) == {"label", "probabilities"}
    assert result["label"].dtype == np.int64
    np.testing.assert_array_equal(result["label"], model.predict(Xd))
    assert result["probabilities"].dtype == dtype
    assert_near(result["probabilities"], model.predict_proba(Xd), 1e-5)


@pytest.mark.parametrize("task", TASKS)
def test_to_onnx_of_an_estimator(task, dtype, tmp_path):
    estimator = fitted(task, dtype)
    Xd = X.astype(dtype)
    proto = interop.to_onnx(estimator, tmp_path / "model.onnx")
    assert onnx.load(tmp_path / "model.onnx") == proto
    assert proto.opset_import[0].version == min(onnx.defs.onnx_opset_version(),
                                                interop.MAX_OPSET)
    result = run_onnx(proto, Xd)
    if TASKS[task][0] == "MLPRegressor":
        assert_near(result["variable"], estimator.predict(Xd).reshape(len(X), -1), 1e-5)
        return
    np.testing.assert_array_equal(result["label"], estimator.predict(Xd))
    assert_near(result["probabilities"], estimator.predict_proba(Xd), 1e-5)


def test_to_onnx_takes_an_older_opset():
    proto = interop.to_onnx(mlp("tanh", "softmax_cross_entropy", "float32", 3), opset=17)
    assert proto.opset_import[0].version == 17 and proto.ir_version == 8
    run_onnx(proto, X.astype(np.float32))


# Optional dependencies and the lazy submodules


@pytest.mark.parametrize("convert, module, extra", [
    (interop.to_onnx, "onnx", "onnx"), (interop.to_torch, "torch", "torch"),
    (interop.to_sklearn, "sklearn.neural_network", "sklearn"),
    (interop.from_sklearn, "sklearn.neural_network", "sklearn")])
def test_a_missing_extra_is_named(convert, module, extra, monkeypatch):
    monkeypatch.setitem(sys.modules, module, None)  # its import fails
    message = f"{convert.__name__} needs the {extra} extra: pip install 'fastmlp[{extra}]'"
    with pytest.raises(ImportError, match=message.replace("[", r"\[").replace("]", r"\]")):
        convert(mlp("relu", "mse", "float32", 1))


def test_submodules_load_on_first_use():
    program = textwrap.dedent("""
        import sys
        import fastmlp
        heavy = ("fastmlp.interop", "fastmlp.datasets", "fastmlp.plots", "torch", "onnx",
                 "sklearn", "matplotlib")
        assert not [name for name in heavy if name in sys.modules], sys.modules.keys()
        assert {"interop", "datasets", "plots", "MLP"} <= set(dir(fastmlp))
        assert fastmlp.interop.to_onnx and fastmlp.datasets.load_digits and fastmlp.plots
        assert not [name for name in heavy[3:] if name in sys.modules]
        try:
            fastmlp.no_such_name
        except AttributeError as error:
            assert "no_such_name" in str(error)
        else:
            raise AssertionError("fastmlp.no_such_name")
    """)
    subprocess.run([sys.executable, "-c", program], check=True)
