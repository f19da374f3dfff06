"""scikit-learn-compatible estimators on ``fastmlp.MLP``: ``MLPClassifier`` and
``MLPRegressor``, with scikit-learn's constructor parameters, methods and fitted
attributes, without importing scikit-learn.

Training drives a ``fastmlp.trainer.Trainer`` one epoch at a time, so that the
learning-rate schedules, the convergence test, early stopping, warm starts and
``partial_fit`` follow scikit-learn's ``sklearn.neural_network`` estimators
step for step.
"""

import functools
import inspect
import math
import numbers
import sys
import warnings

import numpy as np
from scipy import sparse

from . import kernels, saving, threads
from ._interrupt import DeferredInterrupt
from .callbacks import check_callbacks
from .distributed import ONE_PROCESS, ranks_of
from .model import MLP, dropout_rate, hidden_dropout
from .trainer import Trainer, r2_score
from .optimizers import SGD, Adam
from .registry import OPTIMIZERS, SKLEARN_ACTIVATIONS
from ._validation import check_choice, check_dtype, check_features, check_positive, \
    check_sample_weight, kernel_inputs

LEARNING_RATES = ("constant", "invscaling", "adaptive")
SOLVERS = ("lbfgs", *OPTIMIZERS)
DTYPES = ("float32", "float64")


# Without scikit-learn these classes are the warnings and the error the
# estimators issue; with it, scikit-learn's own classes of the same names.


class ConvergenceWarning(UserWarning):
    """``max_iter`` epochs ran out before the training loss (or the validation
    score) stopped improving by ``tol``."""


class DataConversionWarning(UserWarning):
    """fit converted y from a column (n_samples, 1) to (n_samples,)."""


class NotFittedError(ValueError, AttributeError):
    """An estimator used before fit."""


def _sklearn_class(own):
    """scikit-learn's class of the same name as ``own`` when the program has
    imported scikit-learn, else ``own``. Users of scikit-learn filter its
    warnings and catch its NotFittedError, and its estimator checks expect
    them; a program that has not imported scikit-learn cannot name them, and
    does not pay its import (1.3 s) for the first warning."""
    if "sklearn" not in sys.modules:
        return own
    import sklearn.exceptions
    return getattr(sklearn.exceptions, own.__name__)


def _not_fitted(estimator):
    return _sklearn_class(NotFittedError)(f"This {type(estimator).__name__} instance is "
                                          "not fitted yet; call fit first")


def _random_state(seed):
    """A numpy RandomState from None (numpy's global one), an int or a
    RandomState, as scikit-learn's ``check_random_state``."""
    if seed is None:
        return np.random.mtrand._rand
    if isinstance(seed, numbers.Integral) and not isinstance(seed, bool):
        return np.random.RandomState(seed)
    if isinstance(seed, np.random.RandomState):
        return seed
    raise ValueError(f"random_state must be None, an int or a numpy RandomState, got {seed!r}")


def _check_X(X, dtype, n_features=None, owner=None):
    """X (n_samples, n_features) as a C-contiguous array of ``dtype``, or a
    scipy sparse X as a CSR matrix of ``dtype`` (see ``check_features``; a copy
    only when needed: the caller's array is never modified). ``n_features``:
    the width fit saw, checked when given."""
    if not sparse.issparse(X):
        X = np.asarray(X)
    if X.dtype.kind == "c":
        raise ValueError("Complex data not supported")
    if X.dtype.kind == "O":
        X = X.astype(np.float64)    # numpy's TypeError names an entry that is no number
    if X.ndim != 2:
        raise ValueError(f"X must be 2-D (n_samples, n_features), got shape {X.shape}. "
                         "Reshape your data: X.reshape(-1, 1) for a single feature, "
                         "X.reshape(1, -1) for a single sample")
    for axis, what in enumerate(["sample", "feature"]):
        if X.shape[axis] == 0:
            raise ValueError(f"Found array with 0 {what}(s) (shape={X.shape}) while a "
                             "minimum of 1 is required.")
    if n_features is not None and X.shape[1] != n_features:
        raise ValueError(f"X has {X.shape[1]} features, but {owner} is expecting "
                         f"{n_features} features as input.")
    return check_features(X, X.shape[1], dtype)


def _check_y(y, n, owner, warn=False):
    """y as an array (n,) or (n, k); a column (n, 1) becomes (n,), with a
    DataConversionWarning when ``warn``."""
    if y is None:
        raise ValueError(f"{owner} requires y to be passed, but the target y is None")
    if sparse.issparse(y):
        raise TypeError("sparse y is not supported: pass a dense array")
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        if warn:
            warnings.warn("A column-vector y was passed when a 1d array was expected: "
                          "give y of shape (n_samples,), e.g. with y.ravel()",
                          _sklearn_class(DataConversionWarning))
        y = y[:, 0]
    if y.ndim not in (1, 2) or y.shape[0] != n:
        raise ValueError(f"y must have shape ({n},) or ({n}, n_outputs) to match X, "
                         f"got {y.shape}")
    if y.dtype.kind == "f" and not np.isfinite(y).all():
        raise ValueError("Input y contains NaN or inf.")
    return y


def _feature_names(X):
    """X's column names (a DataFrame's) as an object array when they are all
    strings, else None; a mix of strings and other names is refused, as
    scikit-learn does."""
    columns = getattr(X, "columns", None)
    if columns is None:
        return None
    names = np.asarray(columns, dtype=object)
    strings = np.array([isinstance(name, str) for name in names], dtype=bool)
    if strings.all() and names.size:
        return names
    if strings.any():
        types = sorted({type(name).__name__ for name in names})
        raise TypeError(f"Feature names are only supported if all input features have string "
                        f"names, but your input has {types} as feature name / column name "
                        "types. Convert them all to strings, e.g. X.columns = "
                        "X.columns.astype(str)")
    return None


def _product(*weights):
    """The product of the weight arrays that are not None; None if all are."""
    given = [w for w in weights if w is not None]
    return math.prod(given) if given else None


def _index(rows, *arrays):
    """Each array (or None) restricted to ``rows``."""
    return [None if a is None else a[rows] for a in arrays]


def _validation_split(n, fraction, rs, strata):
    """(train rows, validation rows): ceil(fraction * n) random rows for
    validation, spread evenly over the values of ``strata`` (n,) when given."""
    n_val = math.ceil(fraction * n)
    if n_val < 2 or n_val >= n:
        raise ValueError(f"The validation set is too small or too large: "
                         f"validation_fraction={fraction} of {n} samples gives {n_val}; "
                         "it needs 2 samples or more, and leaves one for training")
    order = rs.permutation(n)
    if strata is not None:
        # Random within each stratum, strata side by side: evenly spaced picks
        # take each stratum in proportion.
        order = order[np.argsort(strata[order], kind="stable")]
    val = np.zeros(n, dtype=bool)
    val[order[np.arange(n_val) * n // n_val]] = True
    if strata is not None:
        classes, counts = np.unique(strata, return_counts=True)
        lost = np.setdiff1d(classes, strata[~val])
        if lost.size:
            raise ValueError(f"The early-stopping validation split leaves no training sample "
                             f"of class {lost.tolist()[0]!r} "
                             f"({counts[classes == lost[0]][0]} member(s) "
                             f"in y, validation_fraction={fraction}): every class needs at "
                             "least 2 members, one to train on")
    return np.flatnonzero(~val), np.flatnonzero(val)


class _stochastic_only:
    """A method present only when ``solver`` is "sgd" or "adam": for lbfgs
    ``hasattr(estimator, name)`` is False, as scikit-learn's ``available_if``
    makes it for ``partial_fit``."""

    def __init__(self, method):
        self.method = method
        functools.update_wrapper(self, method)

    def __get__(self, estimator, owner=None):
        if estimator is None:
            return self.method
        if estimator.solver == "lbfgs":
            raise AttributeError(f"{self.method.__name__} is only available for stochastic "
                                 f"optimizers. {estimator.solver} is not stochastic.")
        return self.method.__get__(estimator, owner)


class _BaseMLP:
    """Parameters, the epoch loop and the fitted attributes both estimators share;
    subclasses encode targets (``_targets``) and name the loss and the score."""

    def _store(self, params):
        """Keep the constructor's arguments as they are, as scikit-learn's
        convention asks (validation waits for fit)."""
        for name in self._param_defaults():
            setattr(self, name, params[name])

    # get_params / set_params / repr, as scikit-learn's BaseEstimator has them.

    @classmethod
    def _param_defaults(cls):
        return {p.name: p.default for p in inspect.signature(cls.__init__).parameters.values()
                if p.name != "self"}

    def get_params(self, deep=True):
        """The constructor's parameters by name (with ``name__sub`` entries for
        parameters that have get_params themselves, when ``deep``)."""
        params = {}
        for name in sorted(self._param_defaults()):
            value = getattr(self, name)
            if deep and hasattr(value, "get_params") and not isinstance(value, type):
                params.update((f"{name}__{k}", v) for k, v in value.get_params().items())
            params[name] = value
        return params

    def set_params(self, **params):
        """Set constructor parameters (``name`` or ``name__sub``); returns self."""
        names = self._param_defaults()
        nested = {}
        for key, value in params.items():
            name, _, sub = key.partition("__")
            if name not in names:
                raise ValueError(f"Invalid parameter {name!r} for estimator "
                                 f"{type(self).__name__}. Valid parameters are: "
                                 f"{sorted(names)!r}.")
            if sub:
                nested.setdefault(name, {})[sub] = value
            else:
                setattr(self, name, value)
        for name, sub_params in nested.items():
            getattr(self, name).set_params(**sub_params)
        return self

    def __repr__(self):
        defaults = self._param_defaults()
        changed = [f"{k}={v!r}" for k, v in self.get_params(deep=False).items()
                   if repr(v) != repr(defaults[k])]
        return f"{type(self).__name__}({', '.join(changed)})"

    def __sklearn_is_fitted__(self):
        return hasattr(self, "model_")

    # Saving, through fastmlp.saving: the constructor's parameters, the fitted
    # attributes and the network. The optimizer's state is not kept.

    _FITTED = ("n_features_in_", "n_layers_", "n_outputs_", "out_activation_", "n_iter_", "t_",
               "loss_", "loss_curve_", "best_loss_", "validation_scores_",
               "validation_loss_curve_", "best_validation_score_", "_multilabel",
               "feature_names_in_")

    def save(self, path):
        """Write the fitted estimator to ``path`` (one .npz, written atomically);
        ``fastmlp.load`` reads it back. See fastmlp.saving."""
        saving.save(self, path)

    def _save_state(self):
        if not hasattr(self, "model_"):
            raise _not_fitted(self)
        model, arrays = saving.mlp_save_state(self.model_)
        params = self.get_params(deep=False)
        if not isinstance(params["random_state"], (numbers.Integral, type(None))):
            params["random_state"] = None  # a RandomState: only its seed could be kept
        state = {"params": _to_json(params), "model": model,
                 "fitted": _to_json({name: getattr(self, name) for name in self._FITTED
                                     if hasattr(self, name)})}
        if hasattr(self, "classes_"):
            arrays = {**arrays, "classes_": np.asarray(self.classes_)}
        return state, arrays

    @classmethod
    def _load_state(cls, state, arrays):
        if set(state) != {"params", "model", "fitted"}:
            raise ValueError(f"{cls.__name__} state has fields {sorted(state)}, expected "
                             "fitted, model, params")
        params, fitted = _from_json(state["params"]), _from_json(state["fitted"])
        # hidden_layer_sizes is the one sequence among the parameters
        params = {k: tuple(v) if isinstance(v, list) else v for k, v in params.items()}
        if not set(params) <= set(cls._param_defaults()):
            raise ValueError(f"unknown {cls.__name__} parameters "
                             f"{sorted(set(params) - set(cls._param_defaults()))}")
        if not set(fitted) <= set(cls._FITTED):
            raise ValueError(f"unknown {cls.__name__} attributes "
                             f"{sorted(set(fitted) - set(cls._FITTED))}")
        estimator = cls(**params)
        estimator._check_params()
        estimator.model_ = saving.mlp_load_state(state["model"],
                                                 {"params": arrays.pop("params", None)})
        if "classes_" in arrays:
            estimator.classes_ = arrays.pop("classes_")
        if arrays:
            raise ValueError(f"unexpected arrays {sorted(arrays)} in a {cls.__name__} file")
        for name, value in fitted.items():
            setattr(estimator, name, value)
        if "feature_names_in_" in fitted:
            estimator.feature_names_in_ = np.asarray(fitted["feature_names_in_"], dtype=object)
        return estimator

    # Fitted attributes that live in the network.

    @property
    def coefs_(self):
        """Weights per layer: views of shape (fan_in, fan_out) into the network.
        Assigning a list of arrays of those shapes writes them into it."""
        return [W for W, _ in self.model_.weights]

    @coefs_.setter
    def coefs_(self, arrays):
        self._assign("coefs_", 0, arrays)

    @property
    def intercepts_(self):
        """Biases per layer: views of shape (fan_out,) into the network.
        Assigning a list of arrays of those shapes writes them into it."""
        return [b for _, b in self.model_.weights]

    @intercepts_.setter
    def intercepts_(self, arrays):
        self._assign("intercepts_", 1, arrays)

    def _assign(self, name, part, arrays):
        """Write ``arrays`` (one per layer) into part 0 (W) or 1 (b) of every
        layer, after checking them all, so that a refused list changes nothing."""
        if not hasattr(self, "model_"):
            raise _not_fitted(self)
        views = [layer[part] for layer in self.model_.weights]
        arrays = list(arrays)
        if len(arrays) != len(views):
            raise ValueError(f"{name} needs {len(views)} arrays, one per layer, got "
                             f"{len(arrays)}")
        for l, (view, array) in enumerate(zip(views, arrays)):
            array = np.asarray(array)
            if array.shape != view.shape:
                raise ValueError(f"{name}[{l}] has shape {array.shape}; layer {l} of the "
                                 f"network needs {view.shape}")
            if array.dtype.kind not in "biuf":
                raise TypeError(f"{name}[{l}] has dtype {array.dtype}; give real numbers")
            if not np.isfinite(array).all():
                raise ValueError(f"{name}[{l}] contains NaN or inf")
        for view, array in zip(views, arrays):
            view[...] = array

    # Validation of the parameters, in fit as scikit-learn does.

    def _check_input(self, X, dtype, reset):
        """X validated by ``_check_X`` (against ``n_features_in_`` unless
        ``reset``), its column names checked as scikit-learn does: ``reset``
        records them as ``feature_names_in_``; otherwise names that differ from
        fit's are refused, and names on one side only are warned about."""
        names = _feature_names(X)
        owner = type(self).__name__
        if reset:
            if names is None:
                self.__dict__.pop("feature_names_in_", None)
            else:
                self.feature_names_in_ = names
            return _check_X(X, dtype, None, owner)
        fitted = getattr(self, "feature_names_in_", None)
        if names is not None and fitted is None:
            warnings.warn(f"X has feature names, but {owner} was fitted without feature names")
        elif names is None and fitted is not None:
            warnings.warn(f"X does not have valid feature names, but {owner} was fitted with "
                          "feature names")
        elif names is not None and (len(names) != len(fitted) or np.any(names != fitted)):
            unseen = [n for n in names if n not in set(fitted)]
            missing = [n for n in fitted if n not in set(names)]
            differences = {"Feature names unseen at fit time": unseen,
                           "Feature names seen at fit time, yet now missing": missing}
            detail = "".join(f"\n{what}:\n" + "".join(f"- {n}\n" for n in found[:5])
                             for what, found in differences.items() if found)
            raise ValueError("The feature names should match those that were passed during "
                             "fit." + (detail or "\nFeature names must be in the same order "
                                       "as they were in fit.\n"))
        return _check_X(X, dtype, self.n_features_in_, owner)

    def _hidden_sizes(self):
        sizes = self.hidden_layer_sizes
        sizes = [sizes] if isinstance(sizes, numbers.Integral) else list(sizes)
        for s in sizes:
            check_positive("each of hidden_layer_sizes", s, integer=True)
        return sizes

    def _check_params(self):
        check_choice("activation", self.activation, SKLEARN_ACTIVATIONS)
        check_choice("solver", self.solver, SOLVERS)
        check_choice("learning_rate", self.learning_rate, LEARNING_RATES)
        check_dtype(self.dtype, DTYPES)
        for name in ["alpha", "power_t", "tol"]:
            check_positive(name, getattr(self, name), allow_zero=True)
        for name in ["learning_rate_init", "epsilon"]:
            check_positive(name, getattr(self, name))
        for name in ["max_iter", "max_fun"]:
            check_positive(name, getattr(self, name), integer=True)
        if self.n_iter_no_change != np.inf:
            check_positive("n_iter_no_change", self.n_iter_no_change, integer=True)
        if self.batch_size != "auto":
            check_positive("batch_size", self.batch_size, integer=True)
        for name in ["momentum", "validation_fraction", "beta_1", "beta_2"]:
            value = getattr(self, name)
            top = 1 if name == "momentum" else np.nextafter(1, 0)
            if isinstance(value, bool) or not isinstance(value, numbers.Real) \
                    or not 0 <= value <= top:
                interval = "[0, 1]" if name == "momentum" else "[0, 1)"
                raise ValueError(f"{name} must be a number in {interval}, got {value!r}")
        for name in ["shuffle", "warm_start", "nesterovs_momentum", "early_stopping"]:
            if not isinstance(getattr(self, name), (bool, np.bool_)):
                raise TypeError(f"{name} must be True or False, got {getattr(self, name)!r}")

    def _batch(self, n):
        if self.batch_size == "auto":
            return min(200, n)
        if self.batch_size > n:
            warnings.warn(f"batch_size={self.batch_size} is larger than the {n} training "
                          f"samples: clipped to {n}")
        return min(self.batch_size, n)

    def _new_optimizer(self, batch, mean_weight):
        """scikit-learn adds alpha * W / (sum of the batch's weights) to the
        gradient; fastmlp's ``l2`` adds l2 * W, hence l2 = alpha / (batch size *
        mean weight). Exact for every full batch under uniform weights (and for
        full-batch training under any); like scikit-learn's, it leaves the
        biases alone."""
        l2 = self.alpha / (batch * mean_weight)
        if self.solver == "sgd":
            return SGD(momentum=self.momentum, nesterov=self.nesterovs_momentum, l2=l2)
        return Adam(beta_1=self.beta_1, beta_2=self.beta_2, epsilon=self.epsilon, l2=l2)

    # Fitting.

    def fit(self, X, y, sample_weight=None, validation_data=None, callbacks=None, comm=None,
            sharded=False):
        """Train on X (n_samples, n_features) and y; returns self.

        sample_weight : (n_samples,) non-negative weights; each batch's loss is
            their weighted mean.
        validation_data : (X_val, y_val) or (X_val, y_val, sample_weight_val),
            scored after every epoch (``validation_scores_``,
            ``validation_loss_curve_``); with ``early_stopping`` it replaces
            the split of ``validation_fraction`` of the training set.
        callbacks : fastmlp.callbacks objects or callables, as ``MLP.fit``
            takes them: called as ``callback(estimator, epoch, logs)`` after
            every epoch (every iteration for lbfgs), logs a dict with "loss"
            and, given validation data, "val_loss" and "val_accuracy"
            (classifier) or "val_r2" (regressor); training stops after an
            epoch where one returns True.
        comm, sharded : train data-parallel over the ranks of an mpi4py
            communicator, as ``MLP.fit(comm=..., sharded=...)`` does, with the
            stochastic solvers: replicated (every rank passes the same X and
            y) or sharded (each rank its own rows; the classes are those of
            every rank, early stopping's split is taken from each rank's rows
            and its score pooled over the ranks, and batch_size is per rank).
            Every rank ends with the same fitted estimator; verbose output and
            callbacks run on rank 0 only.
        """
        return self._fit(X, y, sample_weight, incremental=False,
                         validation_data=validation_data, callbacks=callbacks,
                         ranks=ranks_of(comm, sharded))

    def _fit(self, X, y, sample_weight, incremental, validation_data=None, callbacks=None,
             classes=None, ranks=ONE_PROCESS):
        self._check_params()
        if incremental and self.early_stopping:
            raise ValueError("partial_fit does not support early_stopping=True")
        rates = (*hidden_dropout(self.dropout, len(self._hidden_sizes())),
                 dropout_rate("input_dropout", self.input_dropout))
        if self.solver == "lbfgs" and any(rates):
            raise ValueError("dropout trains with the stochastic solvers ('sgd', 'adam'); "
                             "lbfgs needs a fixed objective")
        if ranks is not ONE_PROCESS and self.solver == "lbfgs":
            raise ValueError("comm trains with the stochastic solvers ('sgd', 'adam'); "
                             "lbfgs runs in one process")
        if ranks.sharded and getattr(self, "class_weight", None) == "balanced":  # classifier
            raise ValueError("class_weight='balanced' is not supported with sharded=True "
                             "(each rank counts only its own classes): give a dict")
        callbacks = check_callbacks(callbacks)
        fitted = hasattr(self, "model_")
        first = not fitted or not (incremental or self.warm_start)
        dtype = self.dtype if first else self.model_.dtype
        owner = type(self).__name__
        data = {}

        def check_data():  # on every rank: an error on one raises on all
            data["X"] = X_checked = self._check_input(X, dtype, reset=first)
            data["y"] = labels = _check_y(y, X_checked.shape[0], owner, warn=True)
            # A sharded first fit learns the classes of every rank.
            data["labels"] = self._labels(labels) if first and ranks.sharded else None
            return (f"{X_checked.shape[1]} features and y of {labels.ndim} dimension(s)"
                    if ranks.sharded else f"X {X_checked.shape} and y {labels.shape}")
        ranks.start(check_data)
        X = data["X"]
        if data["labels"] is not None:
            classes = ranks.gathered(data["labels"])

        def targets():
            data["y"], data["T"], data["weights"] = self._targets(
                data["y"], first, classes, same_classes=not (first or incremental))
            if sample_weight is not None:
                data["weights"] = _product(data["weights"], check_sample_weight(
                    sample_weight, X.shape[0], np.float64))
        ranks.start(targets)
        y, T, weights = data["y"], data["T"], data["weights"]
        rs = _random_state(self.random_state)
        sizes = (X.shape[1], *self._hidden_sizes(), T.shape[1])
        if first:
            self._initialize(sizes, rs)
        elif self.model_.sizes != sizes:
            raise ValueError(f"warm_start needs the network of the previous fit, layer sizes "
                             f"{self.model_.sizes}; these data and parameters give {sizes}")

        def split():  # on every rank: an error on one raises on all
            X_val = T_val = y_val = w_val = None
            if validation_data is not None:
                X_val, y_val, *w_val = validation_data
                X_val = self._check_input(X_val, dtype, reset=False)
                y_val, T_val, w_class = self._targets(_check_y(y_val, X_val.shape[0], owner),
                                                      False)
                w_val = _product(w_class, *[check_sample_weight(w, X_val.shape[0], np.float64)
                                            for w in w_val])
            elif self.early_stopping and self.solver != "lbfgs":
                train, val = _validation_split(X.shape[0], self.validation_fraction, rs,
                                               self._strata(y))
                X_val, T_val, y_val, w_val = _index(val, X, T, y, weights)
                data["X"], data["T"], data["y"], data["weights"] = _index(train, X, T, y,
                                                                          weights)
            data["validation"] = (X_val, T_val, y_val, w_val)
        ranks.start(split)
        X, y, T, weights, validation = (data[key] for key in
                                        ("X", "y", "T", "weights", "validation"))
        if validation[0] is not None and getattr(self, "validation_scores_", None) is None:
            self.validation_scores_, self.validation_loss_curve_ = [], []
        ranks.on_root(lambda: [callback.on_train_begin(self) for callback in callbacks])
        if self.solver == "lbfgs":
            self._train_lbfgs(X, T, weights, validation, callbacks)
        else:
            batch = self._batch(X.shape[0])
            # As scikit-learn, fit starts a new optimizer, partial_fit keeps the first one.
            if not incremental or not hasattr(self, "_optimizer"):
                # A step's samples: the batch of each rank of a sharded fit.
                n, step, mass = ranks.pooled([X.shape[0], batch, X.shape[0] if weights is None
                                              else weights.sum()])
                self._optimizer = self._new_optimizer(int(step), mass / n)
                self._learning_rate = self.learning_rate_init
            self._train(X, T, weights, batch, validation, rs, incremental, callbacks, ranks)
        ranks.on_root(lambda: [callback.on_train_end(self) for callback in callbacks])
        ranks.broadcast(self.model_.params)
        return self

    def _initialize(self, sizes, rs):
        """A new network with scikit-learn's initialisation (W and b uniform in
        +-sqrt(6 / (fan_in + fan_out)), 2 for logistic units, drawn from ``rs``
        in its order), and fresh curves."""
        self.model_ = MLP(sizes, activation=self.activation, loss=self._loss(),
                          dtype=self.dtype, seed=0, dropout=self.dropout,
                          input_dropout=self.input_dropout)
        factor = SKLEARN_ACTIVATIONS[self.activation].sklearn_init_factor
        for W, b in self.model_.weights:
            bound = np.sqrt(factor / sum(W.shape))
            W[...] = rs.uniform(-bound, bound, W.shape)
            b[...] = rs.uniform(-bound, bound, b.shape)
        self.n_features_in_ = sizes[0]
        self.n_layers_ = len(sizes)
        self.n_outputs_ = sizes[-1]
        self.n_iter_ = self.t_ = 0
        if self.solver == "lbfgs":  # scikit-learn keeps no curves for lbfgs
            return
        self.loss_curve_ = []
        self._no_improvement_count = 0
        self._best_params = self.model_.params.copy()
        if self.early_stopping:
            self.validation_scores_, self.validation_loss_curve_ = [], []
            self.best_validation_score_, self.best_loss_ = -np.inf, None
        else:
            self.validation_scores_ = self.validation_loss_curve_ = None
            self.best_validation_score_, self.best_loss_ = None, np.inf

    def _train(self, X, T, weights, batch, validation, rs, incremental, callbacks, ranks):
        """The epochs, as scikit-learn's ``_fit_stochastic``, on one Trainer;
        loss_curve_ holds the training loss with the L2 penalty."""
        schedule = self.learning_rate if self.solver == "sgd" else "constant"
        # The optimizer's state carries over between the epochs of a fit and
        # from one partial_fit (or fit) to the next partial_fit.
        trainer = Trainer(self.model_, X, T, batch_size=batch, optimizer=self._optimizer,
                          shuffle=self.shuffle,
                          seed=rs.randint(np.iinfo(np.int32).max) if self.shuffle else None,
                          n_threads=self.n_threads, sample_weight=weights,
                          resume=incremental and self.t_ > 0, verbose=self.verbose, ranks=ranks)
        # scikit-learn's epoch loss adds 0.5 * alpha * ||W||^2 / (sum of the batch's
        # weights) per batch, weighted by batch length: with W as at the epoch's start.
        penalty = 0.5 * self.alpha * trainer.n_batches / trainer.mass
        verbose = self.verbose and ranks.root
        self.n_iter_ = 0
        try:
            with trainer.running():
                for epoch in range(1, self.max_iter + 1):
                    with np.errstate(over="ignore"):  # inf for weights that diverge
                        squares = sum(float(np.dot(W.ravel(), W.ravel())) for W in self.coefs_)
                    try:
                        result = trainer.epoch(self._learning_rate)
                        if result.interrupted:  # Ctrl-C: the trainer warned, the updates stay
                            break
                        self.n_iter_ += 1
                        self.t_ += trainer.n_total
                        self.loss_ = result.loss * self._loss_scale() + penalty * squares
                        self.loss_curve_.append(self.loss_)
                        logs = {"loss": self.loss_}
                        if validation[0] is not None:
                            logs.update(self._validate(*validation, ranks))
                    except FloatingPointError as error:
                        self._diverged(epoch, error)
                        break
                    if verbose:
                        print(f"Iteration {self.n_iter_}, loss = {self.loss_:.8f}")
                        if validation[0] is not None:
                            print(f"Validation score: {logs['val_' + self._METRIC]:f}")
                    self._update_no_improvement_count()
                    if schedule == "invscaling":
                        self._learning_rate = (self.learning_rate_init
                                               / (self.t_ + 1) ** self.power_t)
                    # a list, not a generator: every callback hears every epoch
                    stop = ranks.on_root(lambda epoch=epoch, logs=logs: any(
                        [callback(self, epoch, dict(logs)) for callback in callbacks]))
                    ranks.broadcast(self.model_.params)
                    if self._no_improvement_count > self.n_iter_no_change:
                        what = ("Validation score" if self.early_stopping else "Training loss")
                        message = (f"{what} did not improve more than tol={self.tol} for "
                                   f"{self.n_iter_no_change} consecutive epochs.")
                        if schedule == "adaptive" and self._learning_rate > 1e-6:
                            self._learning_rate /= 5.0
                            self._no_improvement_count = 0
                            if verbose:
                                print(f"{message} Setting learning rate to "
                                      f"{self._learning_rate}")
                        else:
                            if verbose:
                                print(f"{message} Stopping.")
                            break
                    if stop or incremental:
                        break
                    if epoch == self.max_iter:
                        warnings.warn(f"Stochastic Optimizer: Maximum iterations "
                                      f"({self.max_iter}) reached and the optimization hasn't "
                                      "converged yet.", _sklearn_class(ConvergenceWarning))
        finally:
            trainer.release()
        if self.early_stopping:
            self.model_.params[...] = self._best_params

    def _diverged(self, epoch, error):
        """Epoch ``epoch`` made the loss, the parameters or the validation
        outputs non-finite. Without early stopping that ends the fit with a
        ValueError. With it, as scikit-learn does since its issue 29504, the
        epoch is recorded with a NaN loss and score, and training stops: the
        best parameters are restored after, so a bad learning rate in a search
        gives a low score, not a failed fit."""
        cause = (f"training diverged in epoch {epoch} (the loss, the parameters or the "
                 f"network's outputs became NaN or infinite) at learning rate "
                 f"{self._learning_rate:g}: lower learning_rate_init, or scale X if its "
                 f"values are large")
        if not self.early_stopping:
            raise ValueError(f"Solver produced non-finite parameter weights: {cause}. The "
                             "network keeps its last finite parameters.") from error
        if self.n_iter_ < epoch:  # the training epoch itself diverged, not the validation
            self.n_iter_ = epoch
            self.loss_curve_.append(math.nan)
        self.loss_ = math.nan
        self.validation_scores_.append(math.nan)
        self.validation_loss_curve_.append(math.nan)
        warnings.warn(f"{cause}. Stopped, keeping the parameters of the best validation "
                      f"score, {self.best_validation_score_:g}.",
                      _sklearn_class(ConvergenceWarning))

    def _train_lbfgs(self, X, T, weights, validation, callbacks):
        """Full-batch L-BFGS, as scikit-learn's ``_fit_lbfgs``: SciPy's L-BFGS-B on
        the compiled loss and gradient of the whole training set, with
        scikit-learn's L2 term (0.5 * alpha * ||W||^2 / sum of the weights).
        Each iteration is an epoch for the callbacks."""
        model = self.model_
        n = X.shape[0]
        mass = float(n if weights is None else weights.sum())
        if weights is not None:
            weights = weights.astype(model.dtype)
        scale = self._loss_scale() / mass
        l2 = np.zeros(model.params.size)  # alpha / mass on the weights, 0 on the biases
        for l in range(len(model.sizes) - 1):
            kernels.layer_params(l2, model._sizes, l)[0][...] = self.alpha / mass
        work, grads = model._work(n), np.empty_like(model.params)
        inputs = kernel_inputs(X)  # SparseRows for a sparse X
        hidden, output, loss = model._codes
        one, zero = model.dtype.type(1), model.dtype.type(0)

        def loss_and_grad(theta):
            model.params[...] = theta
            value, _ = kernels.gradient(grads, work, n, model.params, model._sizes, hidden,
                                        output, loss, inputs, T, scale, one, zero, zero, weights)
            penalty = l2 * theta
            return value + 0.5 * float(penalty @ theta), grads + penalty

        def iteration_ends(intermediate_result):
            self.n_iter_ += 1
            logs = {"loss": float(intermediate_result.fun)}
            model.params[...] = intermediate_result.x
            if validation[0] is not None:
                logs.update(self._validate(*validation))
            if self.verbose:
                print(f"Iteration {self.n_iter_}, loss = {logs['loss']:.8f}")
                if validation[0] is not None:
                    print(f"Validation score: {logs['val_' + self._METRIC]:f}")
            stop = any([callback(self, self.n_iter_, dict(logs)) for callback in callbacks])
            if stop or interrupt.requested:
                raise StopIteration

        from scipy import optimize  # 0.3 s of import, paid by lbfgs users only

        self.n_iter_ = 0
        # SciPy's L-BFGS-B and the NumPy sums above call BLAS on vectors between
        # the compiled gradients: on BLAS's own threads, they and Numba's took
        # turns at the cores, 3-9x slower than with BLAS on one thread for the
        # length of the fit (benchmarks/estimators.py --solver lbfgs).
        with threads.using(threads.check_threads(self.n_threads)), \
                threads.blas_on_one_thread(), DeferredInterrupt() as interrupt:
            result = optimize.minimize(
                loss_and_grad, model.params.astype(np.float64), method="L-BFGS-B", jac=True,
                callback=iteration_ends,
                options={"maxfun": self.max_fun, "maxiter": self.max_iter, "gtol": self.tol})
        model.params[...] = result.x
        if interrupt.requested:
            warnings.warn("Training interrupted by user.", RuntimeWarning)
        self.n_iter_ = min(result.nit, self.max_iter)
        self.loss_ = float(result.fun)
        if not np.isfinite(model.params).all():
            raise ValueError("Solver produced non-finite parameter weights: the L-BFGS "
                             "iterations diverged; scale X if its values are large")
        if result.status == 1:  # the iteration or evaluation limit
            warnings.warn(f"lbfgs failed to converge after {self.n_iter_} iteration(s) "
                          f"(status=1):\n{result.message}\n\nIncrease the number of "
                          f"iterations (max_iter={self.max_iter}) or of function "
                          f"evaluations (max_fun={self.max_fun}), or scale the data.",
                          _sklearn_class(ConvergenceWarning))

    def _validate(self, X, T, y, weights, ranks=ONE_PROCESS):
        """Logs {"val_loss", "val_" + metric name} of a validation set (each
        rank's part, pooled when sharded); both values appended to their
        curves. FloatingPointError when the outputs overflow (on any rank)."""
        failure = None
        try:
            P = self.model_.predict_proba(X)
        except FloatingPointError as error:
            failure, P = error, np.zeros(T.shape, self.model_.dtype)
        if ranks.pooled([failure is not None])[0]:
            raise failure or FloatingPointError("the network's outputs on another rank's "
                                                "validation data are not finite")
        T, P, y = ranks.gathered(T), ranks.gathered(P), ranks.gathered(y)
        weights = None if weights is None else ranks.gathered(weights)
        with np.errstate(over="ignore"):  # a diverging fit: the loss becomes inf
            loss = self._data_loss(T, P, weights)
        score = self._metric(y, self._decode(P), weights)
        self.validation_loss_curve_.append(loss)
        self.validation_scores_.append(score)
        return {"val_loss": loss, "val_" + self._METRIC: score}

    def _update_no_improvement_count(self):
        """scikit-learn's convergence test: on the validation score with
        early_stopping (keeping the best parameters), else on the training loss."""
        if self.early_stopping:
            score = self.validation_scores_[-1]
            worse = score < self.best_validation_score_ + self.tol
            if score > self.best_validation_score_:
                self.best_validation_score_ = score
                self._best_params[...] = self.model_.params
        else:
            worse = self.loss_ > self.best_loss_ - self.tol
            self.best_loss_ = min(self.best_loss_, self.loss_)
        self._no_improvement_count = self._no_improvement_count + 1 if worse else 0

    # Prediction.

    def _outputs(self, X):
        """The network's outputs (n_samples, n_outputs_) for X (n_samples, n_features),
        float32 for float32 X, else float64 (as scikit-learn answers)."""
        if not hasattr(self, "model_"):
            raise _not_fitted(self)
        dtype = np.float32 if getattr(X, "dtype", None) == np.float32 else np.float64
        X = self._check_input(X, self.model_.dtype, reset=False)
        return self.model_.predict_proba(X, dtype=dtype)

    def predict(self, X):
        """Predictions for X (n_samples, n_features): labels (n_samples,) (or 0/1
        indicators (n_samples, n_classes) for multilabel targets) from the
        classifier, values (n_samples,) or (n_samples, n_outputs) from the regressor."""
        return self._decode(self._outputs(X))

    def score(self, X, y, sample_weight=None):
        """Accuracy (classifier: the share of samples, or of multilabel rows,
        predicted exactly) or R^2 (regressor) on X, y; weighted by sample_weight."""
        pred = self.predict(X)
        y = _check_y(y, pred.shape[0], type(self).__name__)
        if sample_weight is not None:
            sample_weight = check_sample_weight(sample_weight, pred.shape[0], np.float64)
        return self._metric(y, pred, sample_weight)


def _to_json(value):
    """value with tuples and arrays as lists, NumPy scalars as Python ones, non-finite
    floats as the strings "inf", "-inf", "nan", and dicts as lists of
    [key, value] pairs (their keys may be labels of any type)."""
    if isinstance(value, dict):
        return {"items": [[_to_json(k), _to_json(v)] for k, v in value.items()]}
    if isinstance(value, np.ndarray):
        value = value.tolist()
    if isinstance(value, (list, tuple)):
        return [_to_json(v) for v in value]
    if isinstance(value, np.generic):
        value = value.item()
    if isinstance(value, float) and not math.isfinite(value):
        return str(value)
    return value


def _from_json(value):
    """The inverse of _to_json (lists stay lists)."""
    if isinstance(value, dict):
        if set(value) != {"items"}:
            raise ValueError(f"unexpected object {value!r} in an estimator's state")
        return {_from_json(k): _from_json(v) for k, v in value["items"]}
    if isinstance(value, list):
        return [_from_json(v) for v in value]
    if value in ("inf", "-inf", "nan"):
        return float(value)
    return value


@saving.register("MLPClassifier")
class MLPClassifier(_BaseMLP):
    """Multilayer perceptron classifier, a drop-in for
    ``sklearn.neural_network.MLPClassifier`` (solvers "sgd" and "adam").

    Labels of any type map to 0..k-1 through ``classes_``. Two classes train one
    logistic output, more a softmax; a 2-D 0/1 y (n_samples, n_labels) is
    multilabel, one logistic output per label (binary cross-entropy).
    Beyond scikit-learn: ``class_weight`` (None, "balanced", or {label: weight},
    applied as sample weights), ``validation_data`` and ``callbacks`` in fit,
    ``validation_loss_curve_``, and fastmlp's ``dtype``, ``n_threads``,
    ``dropout`` and ``input_dropout`` (as ``fastmlp.MLP`` takes them; not with
    lbfgs).
    ``max_fun`` is accepted and unused, as scikit-learn does without lbfgs.
    """

    def __init__(self, hidden_layer_sizes=(100,), activation="relu", *, solver="adam",
                 alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 class_weight=None, dtype="float32", n_threads=None, dropout=0.0,
                 input_dropout=0.0):
        self._store(locals())

    def __sklearn_tags__(self):
        # Only scikit-learn calls this, so importing it here keeps it optional.
        from sklearn.utils import ClassifierTags, InputTags, Tags, TargetTags
        return Tags(estimator_type="classifier", target_tags=TargetTags(required=True),
                    classifier_tags=ClassifierTags(multi_label=True),
                    input_tags=InputTags(sparse=True))

    @_stochastic_only
    def partial_fit(self, X, y, classes=None, sample_weight=None):
        """One epoch over X (n_samples, n_features), y, continuing the previous
        training (optimizer state included); ``classes`` (every label that
        will ever appear) is required on the first call. Returns self."""
        first = not hasattr(self, "classes_")
        if first and classes is None:
            raise ValueError("classes must be passed on the first call to partial_fit.")
        if not first and classes is not None and not np.array_equal(np.unique(classes),
                                                                     self.classes_):
            raise ValueError(f"classes={np.unique(classes)!r} is not the same as on the first "
                             f"call to partial_fit, {self.classes_!r}")
        if self.class_weight == "balanced":
            raise ValueError("class_weight='balanced' is not supported by partial_fit: "
                             "give class weights as a dict")
        return self._fit(X, y, sample_weight, incremental=True, classes=classes)

    _METRIC = "accuracy"

    def _loss(self):
        return ("softmax_cross_entropy" if self.out_activation_ == "softmax"
                else "binary_cross_entropy")

    def _loss_scale(self):
        return 1.0

    def _targets(self, y, reset, classes=None, same_classes=False):
        """(labels, targets T (n, n_outputs) in the network's dtype, class
        weights per sample (n,) or None). ``reset`` sets classes_ (from
        ``classes`` when given) and out_activation_; ``same_classes`` (a warm
        start) requires y to hold every class of classes_."""
        if y.ndim == 2:
            if y.dtype.kind not in "biuf" or not np.isin(y, (0, 1)).all():
                raise ValueError("Unknown label type: a 2-D y must be a multilabel "
                                 "indicator of 0s and 1s (n_samples, n_labels)")
            found = np.arange(y.shape[1])
        else:
            found = self._labels(y)
        if reset:
            self.classes_ = found if classes is None or y.ndim == 2 else np.unique(classes)
            if len(self.classes_) < 2:
                raise ValueError(f"MLPClassifier needs at least 2 classes, got 1 class: "
                                 f"{self.classes_!r}")
            self._multilabel = y.ndim == 2
            self.out_activation_ = ("softmax" if y.ndim == 1 and len(self.classes_) > 2
                                    else "logistic")
        if same_classes and not np.array_equal(found, self.classes_):
            raise ValueError(f"warm_start needs y with the classes of the previous fit, "
                             f"{self.classes_!r}; y has {found!r}")
        if self._multilabel != (y.ndim == 2) or (y.ndim == 2
                                                 and y.shape[1] != len(self.classes_)):
            raise ValueError(f"y of shape {y.shape} does not match the classes the "
                             f"classifier was fitted on, {self.classes_!r}")
        dtype = self.model_.dtype if hasattr(self, "model_") and not reset else self.dtype
        if y.ndim == 2:
            if self.class_weight is not None:
                raise ValueError("class_weight is not supported for multilabel targets")
            return y, y.astype(dtype), None
        codes = np.searchsorted(self.classes_, y).clip(0, len(self.classes_) - 1)
        unknown = self.classes_[codes] != y
        if unknown.any():
            raise ValueError(f"y has labels not in classes_ {self.classes_!r}: "
                             f"{np.unique(y[unknown])[:5]!r}")
        if self.out_activation_ == "softmax":
            T = np.zeros((y.shape[0], len(self.classes_)), dtype=dtype)
            T[np.arange(y.shape[0]), codes] = 1
        else:
            T = codes.reshape(-1, 1).astype(dtype)
        return y, T, self._class_weights(codes)

    @staticmethod
    def _labels(y):
        """The sorted distinct labels of a 1-D y; None for a multilabel y."""
        if y.ndim == 2:
            return None
        if y.dtype.kind == "f" and np.any(y != np.round(y)):
            raise ValueError("Unknown label type: continuous. MLPClassifier needs class "
                             "labels; use MLPRegressor for real-valued targets")
        try:
            return np.unique(y)
        except TypeError:
            raise ValueError("Unknown label type: y mixes labels of different types "
                             "(such as strings and numbers)") from None

    def _class_weights(self, codes):
        """Per-sample weights (n,) from class_weight, or None."""
        if self.class_weight is None:
            return None
        k = len(self.classes_)
        if isinstance(self.class_weight, str) and self.class_weight == "balanced":
            per_class = codes.shape[0] / (k * np.bincount(codes, minlength=k))
        elif isinstance(self.class_weight, dict):
            per_class = np.ones(k)
            for label, weight in self.class_weight.items():
                at = np.flatnonzero(self.classes_ == label)
                if at.size == 0:
                    raise ValueError(f"class_weight has label {label!r}, which is not among "
                                     f"the classes {self.classes_!r}")
                per_class[at] = weight
        else:
            raise ValueError(f"class_weight must be None, 'balanced' or a dict "
                             f"{{label: weight}}, got {self.class_weight!r}")
        return per_class[codes]

    def _strata(self, y):
        """The labels to stratify the early-stopping split by (none for multilabel)."""
        return None if self._multilabel else y

    def _data_loss(self, T, P, weights):
        """scikit-learn's log loss (probabilities clipped to [eps, 1 - eps])."""
        eps = np.finfo(P.dtype).eps
        P = np.clip(P, eps, 1 - eps)
        if self.out_activation_ == "softmax":
            per_sample = -(T * np.log(P)).sum(axis=1)
        else:
            per_sample = -(T * np.log(P) + (1 - T) * np.log1p(-P)).sum(axis=1)
        return float(np.average(per_sample, weights=weights))

    def _decode(self, P):
        if self.out_activation_ == "softmax":
            return self.classes_[P.argmax(axis=1)]
        if self._multilabel:
            return (P > 0.5).astype(self.classes_.dtype)
        return self.classes_[(P[:, 0] > 0.5).astype(np.intp)]

    @staticmethod
    def _metric(y, pred, weights):
        correct = pred == y
        if correct.ndim == 2:
            correct = correct.all(axis=1)
        return float(np.average(correct, weights=weights))

    def predict_proba(self, X):
        """Probabilities (n_samples, n_classes) for X (n_samples, n_features), in
        the order of ``classes_`` (per label, independent, for multilabel)."""
        P = self._outputs(X)
        return P if P.shape[1] > 1 else np.hstack([1 - P, P])

    def predict_log_proba(self, X):
        """log of ``predict_proba(X)``, shape (n_samples, n_classes)."""
        P = self.predict_proba(X)
        return np.log(P, out=P)


@saving.register("MLPRegressor")
class MLPRegressor(_BaseMLP):
    """Multilayer perceptron regressor, a drop-in for
    ``sklearn.neural_network.MLPRegressor`` (solvers "sgd" and "adam", loss
    "squared_error": half the squared error, mean over the outputs).

    y of shape (n_samples,) or (n_samples, n_outputs). Beyond scikit-learn:
    ``validation_data`` and ``callbacks`` in fit, ``validation_loss_curve_``,
    and fastmlp's ``dtype``, ``n_threads``, ``dropout`` and ``input_dropout`` (as
    ``fastmlp.MLP`` takes them; not with lbfgs). ``max_fun`` is accepted and unused, as
    scikit-learn does without lbfgs.
    """

    def __init__(self, loss="squared_error", hidden_layer_sizes=(100,), activation="relu", *,
                 solver="adam", alpha=0.0001, batch_size="auto", learning_rate="constant",
                 learning_rate_init=0.001, power_t=0.5, max_iter=200, shuffle=True,
                 random_state=None, tol=1e-4, verbose=False, warm_start=False, momentum=0.9,
                 nesterovs_momentum=True, early_stopping=False, validation_fraction=0.1,
                 beta_1=0.9, beta_2=0.999, epsilon=1e-8, n_iter_no_change=10, max_fun=15000,
                 dtype="float32", n_threads=None, dropout=0.0, input_dropout=0.0):
        self._store(locals())

    def __sklearn_tags__(self):
        # Only scikit-learn calls this, so importing it here keeps it optional.
        from sklearn.utils import InputTags, RegressorTags, Tags, TargetTags
        return Tags(estimator_type="regressor",
                    target_tags=TargetTags(required=True, multi_output=True),
                    regressor_tags=RegressorTags(), input_tags=InputTags(sparse=True))

    @_stochastic_only
    def partial_fit(self, X, y, sample_weight=None):
        """One epoch over X (n_samples, n_features), y, continuing the previous
        training (optimizer state included). Returns self."""
        return self._fit(X, y, sample_weight, incremental=True)

    def _check_params(self):
        if self.loss == "poisson":
            raise ValueError("loss='poisson' is not supported by fastmlp: use 'squared_error'")
        check_choice("loss", self.loss, ["squared_error"])
        super()._check_params()

    _METRIC = "r2"

    def _loss(self):
        return "mse"

    def _loss_scale(self):
        # fastmlp's mse sums the outputs, scikit-learn's squared loss averages them.
        return 1.0 / self.n_outputs_

    def _targets(self, y, reset, classes=None, same_classes=False):
        """(y, targets T (n, n_outputs) in the network's dtype, None); ``reset``
        sets out_activation_."""
        if y.dtype.kind == "O":
            y = y.astype(np.float64)
        if y.dtype.kind not in "biuf":
            raise ValueError(f"MLPRegressor needs numeric targets, got dtype {y.dtype}")
        T = y.reshape(y.shape[0], -1)
        if reset:
            self.out_activation_ = "identity"
        elif T.shape[1] != self.n_outputs_:
            raise ValueError(f"y has {T.shape[1]} outputs, the regressor was fitted on "
                             f"{self.n_outputs_}")
        dtype = self.dtype if reset else self.model_.dtype
        return y, np.ascontiguousarray(T, dtype=dtype), None

    @staticmethod
    def _strata(y):
        return None

    @staticmethod
    def _labels(y):
        return None

    def _data_loss(self, T, P, weights):
        """scikit-learn's squared loss: half the squared error, weighted mean over
        the samples, mean over the outputs."""
        return float(0.5 * np.average((T - P) ** 2, axis=0, weights=weights).mean())

    @staticmethod
    def _decode(P):
        return P[:, 0] if P.shape[1] == 1 else P

    @staticmethod
    def _metric(y, pred, weights):
        return r2_score(y, pred, weights)
