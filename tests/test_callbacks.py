"""fit's Keras-style conveniences: validation_split, callbacks, progress."""

import pickle

import numpy as np
import pytest

import fastmlp
from fastmlp import progress
from fastmlp.callbacks import EarlyStopping, ModelCheckpoint
from fastmlp.datasets import load_digits


@pytest.fixture(scope="module")
def digits():
    (X, y), _ = load_digits()
    return X[:600], y[:600]


def net():
    return fastmlp.MLP((64, 16, 10), "relu", seed=0)


def fit(model, X, y, **kwargs):
    kwargs = {"epochs": 3, "batch_size": 32, "lr": 0.1, "verbose": 0, **kwargs}
    return model.fit(X, y, **kwargs)


def test_validation_split_holds_out_the_last_samples(digits):
    X, y = digits
    split, given = net(), net()
    h_split = fit(split, X, y, validation_split=0.25)
    h_given = fit(given, X[:450], y[:450], validation_data=(X[450:], y[450:]))
    assert h_split.history == h_given.history
    np.testing.assert_array_equal(split.params, given.params)


@pytest.mark.parametrize("kwargs, message", [
    ({"validation_split": 0.2, "validation_data": "x"}, "not both"),
    ({"validation_split": 1.0}, "no training"),
    ({"validation_split": 0.0001}, "no training or no validation"),
    ({"validation_split": -0.1}, "non-negative"),
])
def test_bad_validation_split_is_refused(digits, kwargs, message):
    with pytest.raises(ValueError, match=message):
        fit(net(), *digits, **kwargs)


def recorder(snapshots):
    """A callback keeping a copy of the parameters after each epoch."""
    return lambda model, epoch, logs: snapshots.append(model.params.copy())


def test_early_stopping_stops_and_restores_the_best_epoch(digits):
    X, y = digits
    snapshots = []
    stop = EarlyStopping(monitor="val_loss", patience=2)
    # A learning rate this large makes the validation loss climb soon.
    model = net()
    history = fit(model, X, y, epochs=40, lr=2.0, validation_split=0.3,
                  callbacks=[recorder(snapshots), stop])
    assert stop.stopped_epoch == len(history.epoch) < 40
    best = int(np.argmin(history["val_loss"]))
    assert stop.best_epoch == best + 1 == stop.stopped_epoch - 2
    np.testing.assert_array_equal(model.params, snapshots[best])


def test_early_stopping_without_restore_keeps_the_last_parameters(digits):
    snapshots = []
    model = net()
    fit(model, *digits, epochs=40, lr=2.0, validation_split=0.3,
        callbacks=[recorder(snapshots), EarlyStopping(patience=2, restore_best_weights=False)])
    np.testing.assert_array_equal(model.params, snapshots[-1])


def test_a_callable_returning_true_stops_training(digits):
    seen = []

    def stop_at_two(model, epoch, logs):
        seen.append((epoch, sorted(logs)))
        return epoch == 2

    history = fit(net(), *digits, epochs=5, callbacks=stop_at_two)
    assert history.epoch == [1, 2]
    assert seen == [(1, ["accuracy", "loss"]), (2, ["accuracy", "loss"])]


def test_a_monitor_missing_from_the_logs_is_named(digits):
    with pytest.raises(KeyError, match="val_loss.*pass validation data"):
        fit(net(), *digits, callbacks=[EarlyStopping()])


def test_non_callable_callbacks_are_refused(digits):
    with pytest.raises(TypeError, match="callable"):
        fit(net(), *digits, callbacks=[3])


def test_model_checkpoint_saves_the_best_epochs(digits, tmp_path):
    X, y = digits
    snapshots = []
    checkpoint = ModelCheckpoint(tmp_path / "best-{epoch}.npz", monitor="val_accuracy",
                                 save_best_only=True)
    history = fit(net(), X, y, epochs=6, validation_split=0.3,
                  callbacks=[recorder(snapshots), checkpoint])
    accuracy = history["val_accuracy"]
    improved = [e for e in range(1, 7) if accuracy[e - 1] > max(accuracy[:e - 1], default=-1)]
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        f"best-{e}.npz" for e in improved)
    last = improved[-1]
    loaded = fastmlp.load(tmp_path / f"best-{last}.npz")
    np.testing.assert_array_equal(loaded.params, snapshots[last - 1])


def test_model_checkpoint_every_epoch_needs_no_monitor(digits, tmp_path):
    path = tmp_path / "model.npz"
    model = net()
    fit(model, *digits, epochs=2, callbacks=[ModelCheckpoint(path)])
    np.testing.assert_array_equal(fastmlp.load(path).params, model.params)


def test_verbose_1_draws_a_progress_bar(digits, capsys):
    fit(net(), *digits, epochs=2, verbose=1, validation_split=0.2)
    err = capsys.readouterr().err
    assert "epoch 2/2" in err and "samples/s" in err and "val_accuracy=" in err


@pytest.mark.parametrize("verbose", [1, 2])
def test_one_line_per_epoch_without_a_bar(digits, capsys, monkeypatch, verbose):
    monkeypatch.setattr(progress, "_bar_class", lambda: None)  # as without tqdm
    history = fit(net(), *digits, epochs=2, verbose=verbose)
    lines = capsys.readouterr().out.splitlines()
    assert [line.split("  ")[0] for line in lines] == ["epoch 1/2", "epoch 2/2"]
    assert f"loss {history['loss'][1]:.4f}" in lines[1]


def test_verbose_0_is_silent(digits, capsys):
    fit(net(), *digits, epochs=2, verbose=0)
    assert capsys.readouterr() == ("", "")


def test_a_callback_can_pickle_the_model_mid_fit(digits):
    pickles = []

    def keep(model, epoch, logs):
        pickles.append(pickle.dumps(model))

    model = net()
    fit(model, *digits, epochs=2, callbacks=keep)
    first = pickle.loads(pickles[0])
    assert first._trainer.X is None and first._trainer.updates > 0
    np.testing.assert_array_equal(pickle.loads(pickles[-1]).predict(digits[0]),
                                  model.predict(digits[0]))
