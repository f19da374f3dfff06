"""MLPClassifier and MLPRegressor against scikit-learn: its estimator checks, its
MLP's results step for step, and the extras (validation data, class weights,
callbacks)."""

import inspect
import pickle
import warnings

import numpy as np
import pytest
from sklearn import neural_network
from sklearn.base import clone
from sklearn.exceptions import ConvergenceWarning, NotFittedError
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import MinMaxScaler, StandardScaler
from sklearn.utils.estimator_checks import estimator_checks_generator

import fastmlp
from fastmlp.datasets import load_digits
from fastmlp.estimators import MLPClassifier, MLPRegressor

PAIRS = [(MLPClassifier, neural_network.MLPClassifier),
         (MLPRegressor, neural_network.MLPRegressor)]
ATTRIBUTES = ["classes_", "coefs_", "intercepts_", "loss_", "loss_curve_", "best_loss_",
              "validation_scores_", "best_validation_score_", "n_iter_", "t_",
              "n_features_in_", "n_layers_", "n_outputs_", "out_activation_"]

# Checks whose tolerance is below float32 rounding run on float64 networks, the
# others on the default float32: rtol 1e-7 between two fits on equivalent data;
# atol 1e-7 between predictions of a batch and of single rows (BLAS rounds a
# 1-row product differently), where one float32 ulp of a value of 1.1 is 1.2e-7.
FLOAT64_CHECKS = {"check_sample_weight_equivalence_on_dense_data",
                  "check_sample_weight_equivalence_on_sparse_data",
                  "check_methods_subset_invariance"}


def _check_params():
    params = []
    for estimator in [MLPClassifier(max_iter=100), MLPRegressor(max_iter=100),
                      MLPClassifier(solver="lbfgs", max_iter=100),
                      MLPRegressor(solver="lbfgs", max_iter=100)]:
        with warnings.catch_warnings():
            # "does not inherit from BaseEstimator": by design, scikit-learn is optional.
            warnings.simplefilter("ignore", UserWarning)
            checks = list(estimator_checks_generator(estimator, legacy=True))
        for est, check in checks:
            name = getattr(check, "func", check).__name__
            if name in FLOAT64_CHECKS:
                est = clone(est).set_params(dtype="float64")
            label = "-".join([type(est).__name__, name] + [
                f"{k}={v}" for k, v in getattr(check, "keywords", {}).items()])
            params.append(pytest.param(est, check, id=label))
    return params


@pytest.mark.filterwarnings("ignore")
@pytest.mark.parametrize("estimator, check", _check_params())
def test_sklearn_estimator_checks(estimator, check):
    # max_iter=100 as scikit-learn's own common tests give its MLPs.
    check(estimator)


def _blobs(n=90, k=3, d=4, seed=0):
    rng = np.random.RandomState(seed)
    centers = rng.randn(k, d) * 3
    y = rng.randint(0, k, n)
    return centers[y] + rng.randn(n, d), y


def _both(ours, theirs, X, y, **params):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return ours(dtype="float64", **params).fit(X, y), theirs(**params).fit(X, y)


@pytest.mark.parametrize("solver, params", [
    ("sgd", dict(momentum=0.9, nesterovs_momentum=True, learning_rate="invscaling")),
    ("sgd", dict(momentum=0.5, nesterovs_momentum=False, learning_rate="adaptive", tol=0.5,
                 n_iter_no_change=2)),
    ("sgd", dict(momentum=0.0)),
    # scikit-learn adds epsilon to sqrt(v), fastmlp to sqrt(v / (1 - beta_2^t)):
    # the same rule when epsilon is negligible.
    ("adam", dict(epsilon=1e-30)),
])
@pytest.mark.parametrize("alpha", [0.0, 0.01])
@pytest.mark.parametrize("kind", ["binary", "multiclass", "regression-2-outputs"])
def test_full_batch_training_matches_sklearn_step_for_step(solver, params, alpha, kind):
    X, y = _blobs(k=2 if kind == "binary" else 3)
    ours, theirs = PAIRS[1] if kind.startswith("regression") else PAIRS[0]
    if kind.startswith("regression"):
        y = np.column_stack([np.sin(X[:, 0]), X[:, 1] * X[:, 2]])
    a, b = _both(ours, theirs, X, y, hidden_layer_sizes=(6, 5), activation="tanh",
                 solver=solver, alpha=alpha, batch_size=len(X), learning_rate_init=0.05,
                 max_iter=25, random_state=3, **params)
    assert a.n_iter_ == b.n_iter_ and a.t_ == b.t_
    np.testing.assert_allclose(a.loss_curve_, b.loss_curve_, rtol=1e-11)
    for p, q in zip(a.coefs_ + a.intercepts_, b.coefs_ + b.intercepts_):
        np.testing.assert_allclose(p, q, rtol=1e-9, atol=1e-12)
    method = "predict_proba" if hasattr(a, "predict_proba") else "predict"
    np.testing.assert_allclose(getattr(a, method)(X), getattr(b, method)(X), rtol=1e-9)


@pytest.mark.parametrize("kind", ["binary", "multiclass", "multilabel", "regression"])
def test_fitted_attributes_have_sklearns_names_and_shapes(kind):
    X, y = _blobs(k=2 if kind == "binary" else 3)
    if kind == "multilabel":
        y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X[:, 0] + X[:, 1] > 0]).astype(int)
    if kind == "regression":
        y = X[:, 0] * 2.0
    ours, theirs = PAIRS[1] if kind == "regression" else PAIRS[0]
    a, b = _both(ours, theirs, X, y, hidden_layer_sizes=(7, 5), max_iter=5, random_state=0)
    for name in ATTRIBUTES:
        if name == "classes_" and kind == "regression":
            assert not hasattr(a, name) and not hasattr(b, name)
            continue
        p, q = getattr(a, name), getattr(b, name)
        assert type(p) is type(q) or np.isscalar(p) and np.isscalar(q), name
        if isinstance(p, list):
            assert [np.shape(v) for v in p] == [np.shape(v) for v in q], name
        else:
            assert np.shape(p) == np.shape(q), name
    if kind != "regression":
        np.testing.assert_array_equal(a.classes_, b.classes_)
        assert a.out_activation_ == b.out_activation_
        assert a.predict_proba(X).shape == b.predict_proba(X).shape
    assert a.predict(X).shape == b.predict(X).shape


@pytest.mark.parametrize("ours, theirs", PAIRS)
def test_parameters_and_defaults_are_sklearns(ours, theirs):
    mine = inspect.signature(ours).parameters
    extra = {"dtype", "n_threads", "dropout", "input_dropout"} | ({"class_weight"} if ours is MLPClassifier else set())
    assert set(mine) == set(inspect.signature(theirs).parameters) | extra
    for name, default in theirs().get_params().items():
        assert mine[name].default == default, name
        assert mine[name].kind == inspect.signature(theirs).parameters[name].kind, name


def test_get_set_params_round_trip_and_repr():
    est = MLPClassifier(hidden_layer_sizes=(8,), alpha=0.5)
    params = est.get_params()
    assert params == est.get_params(deep=False) and params["alpha"] == 0.5
    assert est.set_params(**params).get_params() == params
    assert est.set_params(solver="sgd", max_iter=3) is est
    assert (est.solver, est.max_iter) == ("sgd", 3)
    assert repr(est) == "MLPClassifier(alpha=0.5, hidden_layer_sizes=(8,), max_iter=3, " \
                        "solver='sgd')"
    with pytest.raises(ValueError, match="Invalid parameter 'hidden'"):
        est.set_params(hidden=3)


def test_clone_copies_parameters_not_the_fit():
    X, y = _blobs()
    est = MLPClassifier(hidden_layer_sizes=(5,), max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    copy = clone(est)
    assert copy.get_params() == est.get_params()
    assert not hasattr(copy, "coefs_")
    with pytest.raises(NotFittedError, match="not fitted"):
        copy.predict(X)


def test_pipeline_and_grid_search_on_the_digits():
    (X, y), (X_test, y_test) = load_digits()
    pipe = make_pipeline(MinMaxScaler(), MLPClassifier(hidden_layer_sizes=(32,), max_iter=40,
                                                      random_state=0))
    search = GridSearchCV(pipe, {"mlpclassifier__hidden_layer_sizes": [(2,), (32,)]}, cv=3)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        search.fit(X, y)
    assert search.best_params_ == {"mlpclassifier__hidden_layer_sizes": (32,)}
    assert search.score(X_test, y_test) > 0.95


def test_partial_fit_continues_like_one_fit():
    X, y = _blobs()
    params = dict(hidden_layer_sizes=(6,), solver="sgd", learning_rate="invscaling",
                  momentum=0.9, shuffle=False, batch_size=30, tol=0, random_state=0,
                  learning_rate_init=0.1, dtype="float64")
    with pytest.warns(ConvergenceWarning):
        whole = MLPClassifier(max_iter=6, **params).fit(X, y)
    parts = MLPClassifier(**params)
    with pytest.raises(ValueError, match="classes must be passed"):
        parts.partial_fit(X, y)
    parts.partial_fit(X, y, classes=[2, 1, 0])
    for _ in range(5):
        parts.partial_fit(X, y)
    assert parts.t_ == whole.t_ == 6 * len(X) and parts.loss_curve_ == whole.loss_curve_
    for p, q in zip(parts.coefs_ + parts.intercepts_, whole.coefs_ + whole.intercepts_):
        np.testing.assert_array_equal(p, q)
    with pytest.raises(ValueError, match=r"labels not in classes_.*\[7\]"):
        parts.partial_fit(X[:2], [0, 7])


def test_partial_fit_takes_a_batch_that_lacks_classes():
    X, y = _blobs()
    est = MLPClassifier(hidden_layer_sizes=(6,), random_state=0)
    est.partial_fit(X[y == 0], y[y == 0], classes=[0, 1, 2])
    assert est.predict_proba(X).shape == (len(X), 3)


def test_warm_start_continues_where_the_last_fit_ended():
    X, y = _blobs()
    params = dict(hidden_layer_sizes=(6,), solver="sgd", momentum=0.0, batch_size=len(X),
                  tol=0, random_state=0, dtype="float64")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        once = MLPClassifier(max_iter=10, **params).fit(X, y)
        twice = MLPClassifier(max_iter=5, warm_start=True, **params).fit(X, y).fit(X, y)
        cold = MLPClassifier(max_iter=5, **params).fit(X, y).fit(X, y)
    assert twice.loss_curve_ == once.loss_curve_ and twice.t_ == 10 * len(X)
    np.testing.assert_array_equal(twice.coefs_[0], once.coefs_[0])
    assert len(cold.loss_curve_) == 5
    with pytest.raises(ValueError, match="warm_start"):
        twice.fit(X, np.where(y == 2, 1, y))


def test_early_stopping_restores_the_best_parameters():
    X, y = _blobs(n=200, seed=1)
    X_val, y_val = _blobs(n=100, seed=1)
    y_val = np.roll(y_val, 1)     # partly wrong labels: the validation score peaks early
    est = MLPClassifier(hidden_layer_sizes=(16,), early_stopping=True, n_iter_no_change=3,
                        learning_rate_init=0.05, max_iter=100, random_state=0)
    est.fit(X, y, validation_data=(X_val, y_val))
    assert est.n_iter_ < 100
    assert len(est.validation_scores_) == len(est.validation_loss_curve_) == est.n_iter_
    assert est.best_validation_score_ == max(est.validation_scores_)
    assert est.validation_scores_[-1] < est.best_validation_score_
    assert est.score(X_val, y_val) == est.best_validation_score_
    assert est.best_loss_ is None


def test_early_stopping_on_a_split_of_the_training_set():
    X, y = _blobs(n=200)
    noisy = X[:, 0] - X[:, 1] + np.random.RandomState(0).randn(len(X))
    est = MLPRegressor(hidden_layer_sizes=(8,), early_stopping=True, validation_fraction=0.2,
                       learning_rate_init=0.03, max_iter=300, random_state=0).fit(X, noisy)
    assert est.n_iter_ < 300 and est.t_ == est.n_iter_ * 160
    assert est.best_validation_score_ == max(est.validation_scores_) > 0.8
    with pytest.raises(ValueError, match="partial_fit does not support early_stopping"):
        est.partial_fit(X, X[:, 0])


def test_validation_data_without_early_stopping_is_recorded():
    X, y = _blobs()
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=4, tol=0, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y, validation_data=(X, y))
    assert len(est.validation_loss_curve_) == len(est.validation_scores_) == 4
    assert est.best_validation_score_ is None
    # The validation loss after the last epoch is the log loss of the final network.
    p = est.predict_proba(X)[np.arange(len(y)), y]
    assert est.validation_loss_curve_[-1] == pytest.approx(-np.log(p).mean(), rel=1e-6)


@pytest.mark.parametrize("solver", ["sgd", "adam"])
@pytest.mark.parametrize("alpha", [0.0, 0.3])
def test_zero_weights_drop_rows_and_integer_weights_repeat_them(solver, alpha):
    X, y = _blobs(n=40)
    w = np.random.RandomState(1).randint(0, 4, len(X))
    w_given = w.copy()

    def fit(X, y, weights=None):
        est = MLPClassifier(hidden_layer_sizes=(5,), solver=solver, alpha=alpha,
                            batch_size=len(X), max_iter=15, tol=0, random_state=0,
                            dtype="float64")
        with pytest.warns(ConvergenceWarning):
            return est.fit(X, y, sample_weight=weights)

    weighted = fit(X, y, w)
    for other in [fit(X[w > 0], y[w > 0], w[w > 0]), fit(np.repeat(X, w, axis=0),
                                                         np.repeat(y, w))]:
        np.testing.assert_allclose(weighted.loss_curve_, other.loss_curve_, rtol=1e-12)
        for p, q in zip(weighted.coefs_ + weighted.intercepts_,
                        other.coefs_ + other.intercepts_):
            np.testing.assert_allclose(p, q, rtol=1e-10, atol=1e-13)
    np.testing.assert_array_equal(w, w_given)


def test_class_weight_is_a_sample_weight_per_class():
    X, y = _blobs()
    labels = np.array(["cat", "dog", "eel"])[y]
    params = dict(hidden_layer_sizes=(5,), max_iter=5, random_state=0, dtype="float64")
    counts = np.bincount(y)
    cases = [({"dog": 3.0}, np.where(y == 1, 3.0, 1.0)),
             ("balanced", len(y) / (3 * counts[y]))]
    for class_weight, weights in cases:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", ConvergenceWarning)
            a = MLPClassifier(class_weight=class_weight, **params).fit(X, labels)
            b = MLPClassifier(**params).fit(X, labels, sample_weight=weights)
        np.testing.assert_array_equal(a.coefs_[0], b.coefs_[0])
    with pytest.raises(ValueError, match="'emu', which is not among the classes"):
        MLPClassifier(class_weight={"emu": 2}, **params).fit(X, labels)


def test_class_weight_raises_the_recall_of_a_rare_class():
    X, y = _blobs(n=300, k=2, seed=4)
    X = X + np.random.RandomState(0).randn(*X.shape) * 4    # overlapping classes
    rare = np.flatnonzero(y == 1)[20:]
    X, y = np.delete(X, rare, axis=0), np.delete(y, rare)
    recall = [np.mean(MLPClassifier(hidden_layer_sizes=(8,), class_weight=cw, max_iter=300,
                                    random_state=0).fit(X, y).predict(X[y == 1]) == 1)
              for cw in [None, "balanced"]]
    assert recall[1] > recall[0] + 0.2


def test_string_labels_map_through_classes():
    X, y = _blobs(k=2)
    labels = np.array(["no", "yes"])[y]
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=300, random_state=0).fit(X, labels)
    assert est.out_activation_ == "logistic" and est.n_outputs_ == 1
    assert list(est.classes_) == ["no", "yes"] and est.predict(X).dtype == labels.dtype
    assert est.score(X, labels) > 0.95
    np.testing.assert_allclose(est.predict_proba(X).sum(axis=1), 1.0, rtol=1e-6)
    np.testing.assert_allclose(est.predict_log_proba(X), np.log(est.predict_proba(X)))


def test_multilabel_targets_use_one_logistic_output_per_label():
    rng = np.random.RandomState(0)
    X = rng.randn(400, 2)
    Y = np.column_stack([X[:, 0] > 0, X[:, 1] > 0, X.sum(axis=1) > 0]).astype(int)
    est = MLPClassifier(hidden_layer_sizes=(16,), max_iter=300, random_state=0).fit(X, Y)
    assert est.out_activation_ == "logistic" and est.n_outputs_ == 3
    assert list(est.classes_) == [0, 1, 2]
    P = est.predict_proba(X)
    assert P.shape == (400, 3) and not np.allclose(P.sum(axis=1), 1)
    np.testing.assert_array_equal(est.predict(X), (P > 0.5).astype(int))
    assert est.score(X, Y) > 0.9


def test_regression_fits_a_smooth_function():
    rng = np.random.RandomState(0)
    X = rng.uniform(-2, 2, (600, 2))
    Y = np.column_stack([np.sin(X[:, 0]) + X[:, 1] ** 2 / 2, np.cos(X[:, 1])])
    est = make_pipeline(StandardScaler(), MLPRegressor(hidden_layer_sizes=(32, 32),
                                                       max_iter=300, random_state=0))
    est.fit(X[:400], Y[:400])
    assert est.predict(X[400:]).shape == (200, 2)
    assert est.score(X[400:], Y[400:]) > 0.97
    single = MLPRegressor(hidden_layer_sizes=(32,), max_iter=300, random_state=0)
    single.fit(X[:400], Y[:400, :1])
    assert single.predict(X[400:]).shape == (200,) and single.n_outputs_ == 1


def test_callbacks_see_every_epoch_and_can_stop_training():
    X, y = _blobs()
    seen = []

    def record(est, epoch, metrics):
        seen.append((epoch, sorted(metrics), metrics["loss"] == est.loss_curve_[-1]))
        return epoch == 3

    est = MLPClassifier(hidden_layer_sizes=(6,), random_state=0)
    est.fit(X, y, validation_data=(X, y), callbacks=[record])
    assert est.n_iter_ == 3
    assert seen == [(e, ["loss", "val_accuracy", "val_loss"], True) for e in (1, 2, 3)]


def test_pickled_estimator_predicts_and_trains_on():
    X, y = _blobs()
    est = MLPClassifier(hidden_layer_sizes=(6,), max_iter=3, random_state=0)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    copy = pickle.loads(pickle.dumps(est))
    np.testing.assert_array_equal(copy.predict_proba(X), est.predict_proba(X))
    for model in (est, copy):
        model.partial_fit(X, y)
    np.testing.assert_array_equal(copy.coefs_[0], est.coefs_[0])


def test_errors_name_the_problem():
    X, y = _blobs()
    with pytest.raises(ValueError, match="unknown solver .newton.; choose one of"):
        MLPClassifier(solver="newton").fit(X, y)
    with pytest.raises(ValueError, match="Unknown label type: continuous"):
        MLPClassifier().fit(X, y + 0.5)
    with pytest.raises(ValueError, match="at least 2 classes"):
        MLPClassifier().fit(X, np.zeros(len(X)))
    with pytest.raises(ValueError, match="X contains NaN or inf"):
        MLPRegressor().fit(np.where(X > 2, np.nan, X), y)
    with pytest.raises(ValueError, match="momentum must be a number in"):
        MLPClassifier(momentum=1.5).fit(X, y)
    est = MLPRegressor(hidden_layer_sizes=(3,), max_iter=2)
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y)
    with pytest.raises(ValueError, match="X has 3 features, but MLPRegressor is expecting 4"):
        est.predict(X[:, :3])
    with pytest.raises(ValueError, match=r"sample_weight must have shape \(90,\)"):
        est.fit(X, y, sample_weight=np.ones(3))


@pytest.mark.parametrize("kind", ["binary-strings", "multiclass", "multilabel", "regression"])
def test_saved_estimators_load_and_predict_bit_identically(kind, tmp_path):
    X, y = _blobs(k=2 if kind == "binary-strings" else 3)
    if kind == "binary-strings":
        y = np.array(["no", "yes"])[y]
    elif kind == "multilabel":
        y = np.column_stack([y == 0, y == 1]).astype(int)
    elif kind == "regression":
        y = X @ np.arange(X.shape[1])
    cls = MLPRegressor if kind == "regression" else MLPClassifier
    est = cls(hidden_layer_sizes=(6, 5), max_iter=20, random_state=0, n_iter_no_change=np.inf,
              dtype="float64")
    with pytest.warns(ConvergenceWarning):
        est.fit(X, y, validation_data=(X, y))
    est.save(tmp_path / "est.npz")
    loaded = fastmlp.load(tmp_path / "est.npz")
    assert type(loaded) is cls and repr(loaded) == repr(est)
    assert loaded.get_params() == est.get_params()
    np.testing.assert_array_equal(loaded.predict(X), est.predict(X))
    if cls is MLPClassifier:
        np.testing.assert_array_equal(loaded.predict_proba(X), est.predict_proba(X))
        np.testing.assert_array_equal(loaded.classes_, est.classes_)
    for name in ["n_iter_", "t_", "loss_", "loss_curve_", "best_loss_", "validation_scores_",
                 "validation_loss_curve_", "n_features_in_", "n_outputs_", "out_activation_"]:
        assert getattr(loaded, name) == getattr(est, name), name
    loaded.partial_fit(X, y)  # and trains on


def test_an_unfitted_estimator_cannot_be_saved(tmp_path):
    with pytest.raises(NotFittedError):
        MLPClassifier().save(tmp_path / "est.npz")
    assert list(tmp_path.iterdir()) == []


def test_dropout_trains_through_the_estimators():
    from fastmlp.datasets import load_digits
    (X, y), (X_test, y_test) = load_digits()
    clf = fastmlp.MLPClassifier((64,), dropout=0.2, max_iter=30, random_state=0).fit(X, y)
    assert clf.model_.dropout == (0.2,)
    assert clf.score(X_test, y_test) > 0.9
    same = fastmlp.MLPClassifier((64,), dropout=0.2, max_iter=30, random_state=0).fit(X, y)
    assert np.array_equal(clf.model_.params, same.model_.params)
    with pytest.raises(ValueError, match="dropout trains with the stochastic solvers"):
        fastmlp.MLPClassifier(solver="lbfgs", dropout=0.2).fit(X, y)


def test_input_dropout_trains_through_the_estimators():
    from fastmlp.datasets import load_digits
    (X, y), (X_test, y_test) = load_digits()
    kept = X.copy()
    reg = fastmlp.MLPRegressor(hidden_layer_sizes=(32,), input_dropout=0.2, max_iter=5, random_state=0).fit(X, y)
    assert reg.model_.input_dropout == 0.2 and np.array_equal(X, kept)
    same = fastmlp.MLPRegressor(hidden_layer_sizes=(32,), max_iter=5, random_state=0).fit(X, y)
    assert not np.array_equal(reg.model_.params, same.model_.params)  # the inputs were dropped
    clf = fastmlp.MLPClassifier((64,), input_dropout=0.2, max_iter=30, random_state=0).fit(X, y)
    assert clf.score(X_test, y_test) > 0.9
    again = fastmlp.MLPClassifier((64,), input_dropout=0.2, max_iter=30, random_state=0).fit(X, y)
    assert np.array_equal(clf.model_.params, again.model_.params)
    with pytest.raises(ValueError, match="dropout trains with the stochastic solvers"):
        fastmlp.MLPClassifier(solver="lbfgs", input_dropout=0.2).fit(X, y)
    with pytest.raises(ValueError, match=r"input_dropout must be a number in \[0, 1\)"):
        fastmlp.MLPClassifier(input_dropout=1.0).fit(X, y)
