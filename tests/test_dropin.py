"""What code written for scikit-learn's MLPs meets when it switches to fastmlp's:
the lbfgs solver, feature names, assignable weights, partial_fit's presence,
the early-stopping split and divergence, and the callbacks."""

import warnings

import numpy as np
import pandas as pd
import pytest
from sklearn import neural_network
from sklearn.datasets import load_iris
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV

import fastmlp
from fastmlp.callbacks import EarlyStopping, ModelCheckpoint
from fastmlp.datasets import load_digits
from fastmlp.estimators import MLPClassifier, MLPRegressor


def _blobs(n=90, k=3, d=4, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.randn(k, d) * 3
    y = rng.randint(0, k, n)
    return centers[y] + rng.randn(n, d), y


def _quiet(estimator, *args, **kwargs):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        return estimator.fit(*args, **kwargs)


# lbfgs


@pytest.mark.parametrize("kind", ["multiclass", "binary", "regression"])
def test_lbfgs_follows_scikit_learns_iterations(kind):
    X, y = _blobs(k=2 if kind == "binary" else 3)
    if kind == "regression":
        ours, theirs = MLPRegressor, neural_network.MLPRegressor
        y = np.sin(X).sum(axis=1)
    else:
        ours, theirs = MLPClassifier, neural_network.MLPClassifier
    params = dict(solver="lbfgs", hidden_layer_sizes=(8,), alpha=1e-3, max_iter=50,
                  random_state=0)
    a = _quiet(ours(dtype="float64", **params), X, y)
    b = _quiet(theirs(**params), X, y)
    # Same initial weights (scikit-learn's draws), same objective, same SciPy solver.
    assert a.n_iter_ == b.n_iter_
    np.testing.assert_allclose(a.loss_, b.loss_, rtol=1e-6)
    np.testing.assert_allclose(a.predict(X), b.predict(X), rtol=1e-5, atol=1e-8)
    assert a.t_ == b.t_ == 0
    assert not hasattr(a, "loss_curve_") and not hasattr(b, "loss_curve_")
    # scikit-learn's MLPRegressor keeps partial_fit for lbfgs (its available_if
    # tests the method `_check_solver` instead of calling it: partial_fit then
    # runs a whole lbfgs fit); its classifier does not.
    assert not hasattr(a, "partial_fit")


def test_lbfgs_accuracy_on_the_digits_matches_scikit_learn():
    (X, y), (X_test, y_test) = load_digits()
    ours = MLPClassifier(solver="lbfgs", random_state=0).fit(X, y)
    theirs = neural_network.MLPClassifier(solver="lbfgs", random_state=0).fit(X, y)
    assert abs(ours.score(X_test, y_test) - theirs.score(X_test, y_test)) <= 0.01
    assert ours.score(X_test, y_test) > 0.9


def test_lbfgs_honours_max_iter_max_fun_and_tol():
    X, y = _blobs()
    with pytest.warns(ConvergenceWarning, match="max_iter=3"):
        est = MLPClassifier(solver="lbfgs", max_iter=3, random_state=0).fit(X, y)
    assert est.n_iter_ == 3
    calls = []
    est = MLPClassifier(solver="lbfgs", max_fun=4, random_state=0)
    with pytest.warns(ConvergenceWarning, match="max_fun=4"):
        est.fit(X, y, callbacks=lambda e, epoch, logs: calls.append(epoch))
    theirs = _quiet(neural_network.MLPClassifier(solver="lbfgs", max_fun=4, random_state=0),
                    X, y)
    assert est.n_iter_ == theirs.n_iter_ <= 4 and calls == list(range(1, est.n_iter_ + 1))
    with warnings.catch_warnings():
        warnings.simplefilter("error", ConvergenceWarning)
        loose = MLPClassifier(solver="lbfgs", tol=1.0, random_state=0).fit(X, y)
    assert loose.n_iter_ < 5


def test_lbfgs_sample_weight_two_is_a_repeated_row():
    X, y = _blobs(n=40)
    params = dict(solver="lbfgs", hidden_layer_sizes=(5,), max_iter=20, random_state=0,
                  dtype="float64")
    weighted = _quiet(MLPRegressor(**params), X, y, sample_weight=np.r_[2.0, np.ones(39)])
    repeated = _quiet(MLPRegressor(**params), np.vstack([X[:1], X]), np.r_[y[:1], y])
    np.testing.assert_allclose(weighted.coefs_[0], repeated.coefs_[0], rtol=1e-7, atol=1e-10)


def test_lbfgs_callbacks_see_each_iteration_and_can_stop_it():
    X, y = _blobs()
    seen = []

    def record(est, epoch, logs):
        seen.append((epoch, sorted(logs)))
        return epoch == 4

    est = MLPClassifier(solver="lbfgs", random_state=0).fit(X, y, validation_data=(X, y),
                                                            callbacks=[record])
    assert est.n_iter_ == 4
    assert seen == [(e, ["loss", "val_accuracy", "val_loss"]) for e in (1, 2, 3, 4)]
    assert len(est.validation_scores_) == 4


def test_lbfgs_warm_start_continues_from_the_fitted_weights():
    X, y = _blobs()
    est = _quiet(MLPClassifier(solver="lbfgs", max_iter=5, warm_start=True, random_state=0),
                 X, y)
    first = est.loss_
    _quiet(est, X, y)
    assert est.loss_ < first


# scikit-learn's conventions


def _frame(X, names):
    return pd.DataFrame(X, columns=names)


def test_feature_names_are_recorded_and_checked_as_scikit_learn_does(tmp_path):
    X, y = _blobs()
    names = ["a", "b", "c", "d"]
    est = MLPClassifier(hidden_layer_sizes=(4,), max_iter=5, random_state=0)
    _quiet(est, _frame(X, names), y)
    np.testing.assert_array_equal(est.feature_names_in_, names)
    assert est.feature_names_in_.dtype == object
    est.predict(_frame(X, names))
    with pytest.raises(ValueError, match="Feature names must be in the same order"):
        est.predict(_frame(X, ["b", "a", "c", "d"]))
    with pytest.raises(ValueError, match="unseen at fit time:\n- e"):
        est.predict(_frame(X, ["a", "b", "c", "e"]))
    with pytest.warns(UserWarning, match="X does not have valid feature names"):
        est.predict(X)
    est.save(tmp_path / "est.npz")
    np.testing.assert_array_equal(fastmlp.load(tmp_path / "est.npz").feature_names_in_, names)
    _quiet(est, X, y)
    assert not hasattr(est, "feature_names_in_")
    with pytest.warns(UserWarning, match="X has feature names, but MLPClassifier was fitted "
                                         "without"):
        est.predict(_frame(X, names))
    with pytest.raises(TypeError, match="all input features have string names"):
        est.fit(_frame(X, ["a", "b", 3, 4]), y)


def test_assigned_weights_are_the_networks_weights():
    X, y = _blobs()
    theirs = _quiet(neural_network.MLPClassifier(hidden_layer_sizes=(5,), max_iter=30,
                                                 random_state=1), X, y)
    ours = _quiet(MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0,
                                dtype="float64"), X, y)
    ours.coefs_ = theirs.coefs_
    ours.intercepts_ = theirs.intercepts_
    np.testing.assert_allclose(ours.predict_proba(X), theirs.predict_proba(X), rtol=1e-12)
    np.testing.assert_array_equal(ours.coefs_[1], theirs.coefs_[1])
    assert ours.coefs_[0].base is not None  # still views into the network's parameters


def test_refused_weights_leave_the_network_unchanged():
    X, y = _blobs()
    est = _quiet(MLPRegressor(hidden_layer_sizes=(5,), max_iter=3, random_state=0), X, y)
    before = est.model_.params.copy()
    with pytest.raises(ValueError, match=r"coefs_\[1\] has shape \(4, 1\); layer 1 of the "
                                         r"network needs \(5, 1\)"):
        est.coefs_ = [np.zeros((4, 5)), np.zeros((4, 1))]
    with pytest.raises(ValueError, match="intercepts_ needs 2 arrays"):
        est.intercepts_ = [np.zeros(5)]
    with pytest.raises(ValueError, match=r"intercepts_\[1\] contains NaN"):
        est.intercepts_ = [np.zeros(5), [np.nan]]
    np.testing.assert_array_equal(est.model_.params, before)
    with pytest.raises(AttributeError):  # not fitted: scikit-learn's NotFittedError
        MLPRegressor().coefs_ = [np.zeros((4, 5))]


def test_partial_fit_exists_only_for_stochastic_solvers():
    for cls in (MLPClassifier, MLPRegressor):
        assert hasattr(cls(solver="adam"), "partial_fit")
        assert hasattr(cls(solver="sgd"), "partial_fit")
        assert not hasattr(cls(solver="lbfgs"), "partial_fit")
        with pytest.raises(AttributeError, match="lbfgs is not stochastic"):
            _ = cls(solver="lbfgs").partial_fit


def test_a_class_the_validation_split_would_take_whole_is_refused():
    X = np.random.RandomState(0).randn(40, 2)
    with pytest.raises(ValueError, match="leaves no training sample of class 0"):
        MLPClassifier(early_stopping=True, max_iter=5).fit(X, [0] + [1] * 39)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_divergence_under_early_stopping_keeps_the_best_weights(dtype):
    X, y = load_iris(return_X_y=True)
    est = MLPRegressor(activation="identity", solver="sgd", learning_rate_init=1, max_iter=20,
                       early_stopping=True, random_state=0, dtype=dtype)
    with pytest.warns(ConvergenceWarning, match="diverged .* at learning rate 1"):
        est.fit(X, y)
    assert np.isnan(est.validation_scores_[-1]) and np.isnan(est.loss_)
    assert len(est.validation_scores_) == len(est.loss_curve_) == est.n_iter_
    assert est.best_validation_score_ == np.nanmax(est.validation_scores_)
    assert np.isfinite(est.predict(X)).all()


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_divergence_without_early_stopping_names_the_learning_rate(dtype):
    X, y = load_iris(return_X_y=True)
    est = MLPRegressor(activation="identity", solver="sgd", learning_rate_init=1, max_iter=20,
                       random_state=0, dtype=dtype)
    with pytest.raises(ValueError, match="at learning rate 1: lower learning_rate_init"):
        est.fit(X, y, validation_data=(X, y))


def test_a_search_over_a_diverging_learning_rate_scores_it_low():
    X, y = load_iris(return_X_y=True)
    search = GridSearchCV(MLPRegressor(activation="identity", solver="sgd", max_iter=20,
                                       early_stopping=True, random_state=0),
                          {"learning_rate_init": [1.0, 0.001]}, cv=2, error_score="raise")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    assert search.best_params_ == {"learning_rate_init": 0.001}


# One callback protocol


def test_fastmlps_callbacks_work_in_the_estimators(tmp_path):
    X, y = _blobs()
    stopper = EarlyStopping(monitor="val_accuracy", patience=2)
    checkpoint = ModelCheckpoint(tmp_path / "best.npz", monitor="val_loss", save_best_only=True)
    est = MLPClassifier(hidden_layer_sizes=(4,), learning_rate_init=0.05, max_iter=200,
                        random_state=0)
    _quiet(est, X, y, validation_data=(X[:30], y[:30]), callbacks=[stopper, checkpoint])
    assert stopper.stopped_epoch == est.n_iter_ < 200
    best = stopper.best_epoch
    assert est.validation_scores_[best - 1] == stopper.best == max(est.validation_scores_)
    assert est.score(X[:30], y[:30]) == stopper.best  # restored to the best epoch
    saved = fastmlp.load(tmp_path / "best.npz")
    assert type(saved) is MLPClassifier and saved.n_iter_ == checkpoint.best_epoch


def test_r2_means_what_scikit_learn_means_everywhere():
    from sklearn.metrics import r2_score

    rng = np.random.RandomState(0)
    X = rng.randn(300, 3)
    Y = np.column_stack([X[:, 0] * 10, np.tanh(X[:, 1])])  # outputs of unlike variance
    est = _quiet(MLPRegressor(hidden_layer_sizes=(8,), max_iter=30, random_state=0,
                              dtype="float64"), X, Y)
    expected = r2_score(Y, est.predict(X))
    assert est.score(X, Y) == pytest.approx(expected, rel=1e-12)
    assert est.model_.evaluate(X, Y)[1] == pytest.approx(expected, rel=1e-12)
    net = fastmlp.MLP((3, 8, 2), loss="mse", dtype="float64", seed=0)
    history = net.fit(X[:200], Y[:200], epochs=2, validation_data=(X[200:], Y[200:]),
                      verbose=0)
    assert "r2" not in history.history  # the running sums cannot give a mean over outputs
    assert history["val_r2"][-1] == pytest.approx(r2_score(Y[200:], net.predict(X[200:])),
                                                  rel=1e-12)


def test_lbfgs_on_sparse_X_equals_dense():
    from scipy import sparse

    X, y = _blobs()
    X[X < 0] = 0  # half the entries stored
    params = {"solver": "lbfgs", "hidden_layer_sizes": (6,), "max_iter": 15,
              "random_state": 0, "dtype": "float64"}
    dense = _quiet(MLPClassifier(**params), X, y)
    held = _quiet(MLPClassifier(**params), sparse.csr_matrix(X), y)
    assert held.n_iter_ == dense.n_iter_
    np.testing.assert_allclose(held.coefs_[0], dense.coefs_[0], rtol=1e-9, atol=1e-12)
