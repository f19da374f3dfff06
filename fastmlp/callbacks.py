"""Callbacks for ``MLP.fit``: called after each epoch, they can stop training.

A callback is any callable ``callback(model, epoch, logs)``, where ``logs``
is the epoch's metrics (loss, accuracy or r2, and val_* with validation data);
returning True stops training after that epoch. Subclasses of ``Callback``
also hear when training begins and ends.
"""

import math

import numpy as np


class Callback:
    """Base class: override any of the three hooks."""

    def on_train_begin(self, model):
        pass

    def on_epoch_end(self, model, epoch, logs):
        """Return True to stop training."""
        return False

    def on_train_end(self, model):
        pass

    def __call__(self, model, epoch, logs):
        return self.on_epoch_end(model, epoch, logs)


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

    def on_train_begin(self, model):
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

    def on_train_begin(self, model):
        super().on_train_begin(model)
        self.best_params = None
        self.stopped_epoch = None

    def on_epoch_end(self, model, epoch, logs):
        if self._improved(logs):
            self.best_epoch = epoch
            if self.restore_best_weights:
                self.best_params = model.params.copy()
            return False
        if epoch - self.best_epoch >= self.patience:
            self.stopped_epoch = epoch
            return True
        return False

    def on_train_end(self, model):
        if self.best_params is not None:
            np.copyto(model.params, self.best_params)


class ModelCheckpoint(_Monitor):
    """Save the model with ``model.save(path)`` ("{epoch}" in the path is
    replaced by the epoch number) after every epoch, or with
    ``save_best_only`` after each epoch that improves ``monitor``."""

    def __init__(self, path, monitor="val_loss", save_best_only=False, min_delta=0.0):
        super().__init__(monitor, min_delta)
        self.path = str(path)
        self.save_best_only = save_best_only

    def on_epoch_end(self, model, epoch, logs):
        if self.save_best_only:
            if not self._improved(logs):
                return False
            self.best_epoch = epoch
        model.save(self.path.format(epoch=epoch))
        return False
