"""Hyperparameter searches on a Dask cluster through joblib's Dask backend:
the same results as a serial search, the fits run in the workers on one
thread each (the OMP_NUM_THREADS=1 that Dask's nanny sets, which fastmlp's
default honours), and estimators and models travel to and from the workers
without carrying compiled code: the workers load the kernels from Numba's
disk cache and compile nothing."""

import io
import os
import pickle
import subprocess
import sys

import numba
import numpy as np
import pytest

import fastmlp
from fastmlp import threads

PROBE = """
import numba, fastmlp
seen = []
record = lambda net, epoch, logs: seen.append(numba.get_num_threads())
X, y = [[0.0, 1.0], [1.0, 0.0]] * 4, [0, 1] * 4
fastmlp.MLP((2, 3, 2), seed=0).fit(X, y, epochs=1, verbose=0, callbacks=record)
fastmlp.MLP((2, 3, 2), seed=0).fit(X, y, epochs=1, verbose=0, callbacks=record, n_threads=2)
print(fastmlp.get_num_threads(), *seen)
"""


def test_omp_num_threads_lowers_the_default_and_n_threads_overrides_it():
    env = dict(os.environ, OMP_NUM_THREADS="1", NUMBA_NUM_THREADS="2")
    out = subprocess.run([sys.executable, "-c", PROBE], env=env, check=True,
                         capture_output=True, text=True).stdout
    assert out.split() == ["1", "1", "2"]  # default, a fit by default, fit(n_threads=2)


@pytest.mark.parametrize("value, limit", [("1", 1), ("3,2", 3), (" 2 ", 2), ("0", None),
                                          ("-1", None), ("many", None), ("", None)])
def test_omp_num_threads_is_read_as_openmp_reads_it(monkeypatch, value, limit):
    monkeypatch.setenv("OMP_NUM_THREADS", value)
    assert threads._environment_limit() == limit


@pytest.fixture(scope="module")
def client():
    """A Client of a local cluster of 2 worker processes of 1 thread each,
    listening on 127.0.0.1 only, that records the compiles of Numba in each
    worker (``compiled``)."""
    distributed = pytest.importorskip(
        "distributed", reason="dask.distributed is missing: pip install -e '.[test]'")
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  host="127.0.0.1", dashboard_address=None) as cluster, \
            distributed.Client(cluster) as client:
        # Functions sent to the workers are local ones, which travel by value:
        # the workers need not import this module.
        def watch_compiles(dask_worker):
            dask_worker.numba_compiles = numba.core.event.RecordingListener()
            numba.core.event.register("numba:compile", dask_worker.numba_compiles)
        client.run(watch_compiles)
        yield client


def compiled(client):
    """{worker address: names of the functions Numba compiled there so far}."""
    return client.run(lambda dask_worker: [event.data["dispatcher"].py_func.__qualname__
                                           for _, event in dask_worker.numba_compiles.buffer
                                           if event.is_start])


def carried_modules(obj):
    """The top-level modules of the types of every object a pickle of obj
    holds (pickle, not cloudpickle: no closures, lambdas or local classes)."""
    modules = set()

    class Recorder(pickle.Pickler):
        def persistent_id(self, o):
            modules.add(type(o).__module__.split(".")[0])
    Recorder(io.BytesIO()).dump(obj)
    return modules


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_grid_search_on_dask_equals_the_serial_search(client):
    joblib = pytest.importorskip("joblib", reason="joblib is missing: pip install -e '.[test]'")
    model_selection = pytest.importorskip(
        "sklearn.model_selection", reason="scikit-learn is missing: pip install -e '.[test]'")
    (X, y), _ = fastmlp.datasets.load_digits()

    def record_threads(estimator, epoch, logs):
        estimator.threads_in_fit_ = numba.get_num_threads()
    scoring = {"accuracy": "accuracy",
               "pid": lambda estimator, X, y: os.getpid(),
               "threads": lambda estimator, X, y: estimator.threads_in_fit_}

    def search(n_jobs):
        grid = model_selection.GridSearchCV(
            fastmlp.MLPClassifier(max_iter=15, random_state=0),
            {"hidden_layer_sizes": [(8,), (32,)], "alpha": [1e-4, 1.0]},
            cv=3, scoring=scoring, refit="accuracy", n_jobs=n_jobs)
        return grid.fit(X, y, callbacks=record_threads)

    serial = search(1)  # also puts every kernel the search needs in Numba's cache
    with joblib.parallel_config(backend="dask"):
        spread = search(-1)
    results = spread.cv_results_
    for key in [*(f"split{i}_test_accuracy" for i in range(3)), "mean_test_accuracy",
                "rank_test_accuracy"]:
        np.testing.assert_array_equal(results[key], serial.cv_results_[key])
    assert spread.best_params_ == serial.best_params_
    pids = np.concatenate([results[f"split{i}_test_pid"] for i in range(3)])
    assert set(pids) <= set(client.run(os.getpid).values())  # the fits ran in the workers
    assert set(client.run(fastmlp.get_num_threads).values()) == {1}
    np.testing.assert_array_equal([results[f"split{i}_test_threads"] for i in range(3)], 1)
    names = compiled(client)
    assert not any(names.values()), names


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
def test_estimators_and_models_travel_to_and_from_workers(client):
    (X, y), (X_test, _) = fastmlp.datasets.load_digits()
    unfitted = fastmlp.MLPClassifier((16,), max_iter=3, random_state=0)
    fitted = fastmlp.MLPClassifier((16,), max_iter=3, random_state=0).fit(X, y)
    net = fastmlp.MLP((64, 16, 10), seed=0)
    net.fit(X, y, epochs=2, verbose=0)
    for obj in unfitted, fitted, net:
        assert not carried_modules(obj) & {"numba", "llvmlite", "threading", "_thread"}, obj
    # fitted on a worker and sent back; fitted here, sent there and trained on
    back = client.submit(unfitted.fit, X, y).result()
    np.testing.assert_array_equal(back.predict(X_test), fitted.predict(X_test))
    there = client.submit(lambda est: est.partial_fit(X, y), fitted).result()
    fitted.partial_fit(X, y)
    np.testing.assert_array_equal(there.model_.params, fitted.model_.params)
    predicted = client.submit(net.predict, X_test).result()
    np.testing.assert_array_equal(predicted, net.predict(X_test))
    names = compiled(client)
    assert not any(names.values()), names
