"""Callbacks for ``MLP.fit`` and the estimators' ``fit``: called after each
epoch, they can stop training.

One protocol everywhere. A callback is any callable
``callback(trained, epoch, logs)``: ``trained`` is the MLP or the estimator
being fitted, ``epoch`` counts from 1 (for the estimators' lbfgs, each
iteration is an epoch), and ``logs`` is the epoch's metrics by name: "loss",
and "val_loss" with "val_accuracy" or "val_r2" given validation data
(``MLP.fit`` also logs the training "accuracy" or "r2"). Returning True stops
training after that epoch. Subclasses of ``Callback`` also hear when
training begins and ends, with the same ``trained``.
"""

import math

import numpy as np


def parameters(trained):
    """The flat parameter buffer (n_params,) of an MLP or of a fitted
    estimator's network, for callbacks that keep or restore parameters."""
    return getattr(trained, "model_", trained).params


class Callback:
    """Base class: override any of the three hooks."""

    def on_train_begin(self, trained):
        pass

    def on_epoch_end(self, trained, epoch, logs):
        """Return True to stop training."""
        return False

    def on_train_end(self, trained):
        pass

    def __call__(self, trained, epoch, logs):
        return self.on_epoch_end(trained, epoch, logs)


def _as_callback(callback):
    if isinstance(callback, Callback):
        return callback
    if not callable(callback):
        raise TypeError(f"a callback must be callable, got {callback!r}")
    wrapper = Callback()
    wrapper.on_epoch_end = callback
    return wrapper


def check_callbacks(callbacks):
    """A list of Callback objects from None, one callable or a sequence of them."""
    if callbacks is None:
        return []
    if callable(callbacks):
        callbacks = [callbacks]
    return [_as_callback(c) for c in callbacks]


class _Monitor(Callback):
    """Tracks the best value of one metric: lower is better for losses,
    higher for everything else (accuracy, r2)."""

    def __init__(self, monitor, min_delta=0.0):
        self.monitor = monitor
        self.min_delta = min_delta
        self.lower_is_better = monitor.endswith("loss")

    def on_train_begin(self, trained):
        self.best = math.inf if self.lower_is_better else -math.inf
        self.best_epoch = None

    def _improved(self, logs):
        """Record logs[monitor] if it beats the best by more than min_delta."""
        if self.monitor not in logs:
            raise KeyError(f"{type(self).__name__} monitors {self.monitor!r}, but the epoch "
                           f"logs only have {sorted(logs)}; pass validation data for val_*")
        value = logs[self.monitor]
        gain = self.best - value if self.lower_is_better else value - self.best
        if self.best_epoch is None or gain > self.min_delta:
            self.best = value
            return True
        return False


class EarlyStopping(_Monitor):
    """Stop when ``monitor`` has not improved by more than ``min_delta`` for
    ``patience`` epochs; with ``restore_best_weights``, the model ends with
    the parameters of its best epoch."""

    def __init__(self, monitor="val_loss", patience=5, min_delta=0.0,
                 restore_best_weights=True):
        super().__init__(monitor, min_delta)
        self.patience = patience
        self.restore_best_weights = restore_best_weights

    def on_train_begin(self, trained):
        super().on_train_begin(trained)
        self.best_params = None
        self.stopped_epoch = None

    def on_epoch_end(self, trained, epoch, logs):
        if self._improved(logs):
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_params = parameters(trained).copy()
            return False
        if epoch - self.best_epoch >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, trained):
        if self.best_params is not None:
            np.copyto(parameters(trained), self.best_params)


class ModelCheckpoint(_Monitor):
    """Save the MLP or the estimator with its ``save(path)`` ("{epoch}" in the
    path is replaced by the epoch number) after every epoch, or with
    ``save_best_only`` after each epoch that improves ``monitor``."""

    def __init__(self, path, monitor="val_loss", save_best_only=False, min_delta=0.0):
        super().__init__(monitor, min_delta)
        self.path = str(path)
        self.save_best_only = save_best_only

    def on_epoch_end(self, trained, epoch, logs):
        if self.save_best_only:
            if not self._improved(logs):
                return False
            self.best_epoch = epoch
        trained.save(self.path.format(epoch=epoch))
        return False
