"""Faults during training: divergence and Ctrl-C."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

import fastmlp
from fastmlp.trainer import Trainer


def diverging_problem():
    """A regression that plain SGD at lr 1 drives to inf within an epoch."""
    rng = np.random.default_rng(0)
    X = rng.normal(size=(200, 5))
    return X, X.sum(axis=1)


def snapshot_each_chunk(net, monkeypatch):
    """Record the parameters after every compiled chunk of fit."""
    seen = []
    compiled_step = Trainer._compiled_step

    def recording(self):
        step = compiled_step(self)

        def recorded(*args):
            result = step(*args)
            seen.append(self.model.params.copy())
            return result
        return recorded
    monkeypatch.setattr(Trainer, "_compiled_step", recording)
    return seen


def test_divergence_raises_and_keeps_the_last_finite_parameters(monkeypatch):
    X, y = diverging_problem()
    net = fastmlp.MLP((5, 16, 1), "relu", loss="mse", seed=0)
    seen = snapshot_each_chunk(net, monkeypatch)
    with pytest.raises(FloatingPointError, match="diverged in epoch 1.*smaller learning rate"):
        net.fit(X, y, epochs=50, lr=1.0, verbose=0)
    # The first chunk that diverged (a replay with clipping may follow it).
    diverged = next(k for k, params in enumerate(seen) if not np.isfinite(params).all())
    assert diverged >= 1
    np.testing.assert_array_equal(net.params, seen[diverged - 1])  # before that chunk
    # Finite, though perhaps too large to predict with: how far from the start
    # they are depends on how many batches each compiled chunk ran.
    assert np.isfinite(net.params).all()


def test_divergence_can_warn_instead(recwarn):
    X, y = diverging_problem()
    net = fastmlp.MLP((5, 16, 1), "relu", loss="mse", seed=0)
    history = net.fit(X, y, epochs=50, lr=1.0, verbose=0, on_divergence="warn")
    assert [str(w.message)[:33] for w in recwarn] == ["training diverged in epoch 1: the"]
    assert history.epoch == [] and np.isfinite(net.params).all()


def test_on_divergence_is_checked():
    X, y = diverging_problem()
    with pytest.raises(ValueError, match="on_divergence"):
        fastmlp.MLP((5, 1), loss="mse").fit(X, y, on_divergence="ignore", verbose=0)


# Trains a large net for many epochs, says when the first epoch is done, and
# after fit returns reports what the model looks like.
CTRL_C_SCRIPT = """
import json, sys, time, warnings
import numpy as np
import fastmlp
rng = np.random.default_rng(0)
X = rng.random((20000, 784), dtype=np.float32)
y = rng.integers(0, 10, 20000)
net = fastmlp.MLP((784, 256, 128, 10), "relu", seed=0)
net.fit(X[:256], y[:256], epochs=1, batch_size=128, verbose=0, optimizer="adam")  # compile

def started(model, epoch, logs):
    print("epoch done", flush=True)

with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    history = net.fit(X, y, epochs=1000, batch_size=128, verbose=0, optimizer="adam",
                      callbacks=[started])
stopped = time.time()
updates = net._trainer.updates
before = net.params.copy()
net.fit(X[:1000], y[:1000], epochs=1, batch_size=128, verbose=0, optimizer="adam", resume=True)
print(json.dumps({"stopped": stopped, "epochs": len(history.epoch),
                  "warnings": [str(w.message) for w in caught],
                  "finite": bool(np.isfinite(before).all()), "updates": updates,
                  "after_resume": net._trainer.updates,
                  "predicts": int(net.predict(X[:5]).shape[0])}))
"""


def interrupted(script):
    """Run ``script``, press Ctrl-C 0.3 s after it prints "epoch done", and
    return (the JSON report it prints last, seconds from Ctrl-C to its "stopped")."""
    # Ctrl-C's default action, as in a terminal: a shell that runs the tests in
    # the background has its children ignore SIGINT, and Python keeps that.
    process = subprocess.Popen([sys.executable, "-c", script], stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, text=True,
                               env=dict(os.environ, NUMBA_NUM_THREADS="2"),
                               preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    assert process.stdout.readline() == "epoch done\n"
    time.sleep(0.3)  # into the second epoch
    process.send_signal(signal.SIGINT)
    sent = time.time()
    try:
        out, err = process.communicate(timeout=120)
    finally:
        process.kill()
    assert process.returncode == 0, err
    report = json.loads(out.splitlines()[-1])
    return report, report["stopped"] - sent


def test_ctrl_c_stops_training_within_a_second_and_keeps_the_model():
    report, seconds = interrupted(CTRL_C_SCRIPT)
    assert seconds < 1.0
    assert 1 <= report["epochs"] < 1000
    assert len(report["warnings"]) == 1 and "training interrupted in epoch" in report["warnings"][0]
    assert report["finite"] and report["predicts"] == 5
    # Updates of the completed epochs (157 batches each) and of the part of the
    # interrupted one, counted for resume: 8 more batches after resuming.
    assert report["updates"] > report["epochs"] * 157
    assert report["after_resume"] == report["updates"] + 8


ESTIMATOR_CTRL_C_SCRIPT = """
import json, time, warnings
import numpy as np
from fastmlp import MLPClassifier
rng = np.random.default_rng(0)
X = rng.random((20000, 784), dtype=np.float32)
y = rng.integers(0, 10, 20000)
MLPClassifier((256, 128), max_iter=1, batch_size=128).partial_fit(X[:256], y[:256], classes=np.arange(10))

def started(estimator, epoch, metrics):
    print("epoch done", flush=True)

est = MLPClassifier((256, 128), max_iter=1000, batch_size=128, tol=0, random_state=0)
with warnings.catch_warnings(record=True) as caught:
    warnings.simplefilter("always")
    est.fit(X, y, callbacks=[started])
print(json.dumps({"stopped": time.time(), "n_iter": est.n_iter_,
                  "warnings": [str(w.message) for w in caught],
                  "accuracy": est.score(X[:100], y[:100])}))
"""


def test_ctrl_c_stops_an_estimators_fit_and_keeps_it_usable():
    report, seconds = interrupted(ESTIMATOR_CTRL_C_SCRIPT)
    assert seconds < 1.0
    assert 1 <= report["n_iter"] < 1000
    assert [w[:29] for w in report["warnings"]] == ["training interrupted in epoch"]
    assert 0 <= report["accuracy"] <= 1
