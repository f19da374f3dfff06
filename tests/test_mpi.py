"""Data-parallel fits over MPI (``fit(comm=...)``), run as ``mpiexec -n 2`` in a subprocess.

Each launch runs one script on two ranks; the test process runs the
one-process fits it is compared with.
"""

import json
import os
import pickle
import re
import signal
import subprocess
import sys
import textwrap
import time
import warnings
from pathlib import Path

import numpy as np
import pytest

import fastmlp
from fastmlp.datasets import load_digits

pytest.importorskip("mpi4py", reason="needs mpi4py: pip install 'fastmlp[mpi]'")
MPIEXEC = Path(sys.executable).parent / "mpiexec"
if not MPIEXEC.exists():
    pytest.skip(f"needs mpiexec at {MPIEXEC}: pip install mpich", allow_module_level=True)

# (optimizer, dtype, fit arguments); each is fitted on two ranks and in one process.
CASES = {
    "sgd-float32": ("sgd", "float32", {}),
    "momentum-l2-float64": ({"momentum": 0.9, "l2": 1e-3}, "float64", {"sample_weight": True}),
    "adam-l2-float32": ({"adam": True, "l2": 1e-3}, "float32", {"validation_split": 0.1}),
    "adam-float64-unshuffled": ("adam", "float64", {"shuffle": False, "batch_size": 64}),
    "sgd-dropout-clipped-float64": ("sgd", "float64", {"dropout": 0.3, "clip_norm": 0.5}),
}
TOLERANCE = {"float32": 1e-5, "float64": 1e-10}

def optimizer(spec):
    """An optimizer from its JSON form: a name, or the fields of SGD or (with "adam") Adam."""
    if isinstance(spec, str):
        return spec
    spec = dict(spec)
    return fastmlp.Adam(**spec) if spec.pop("adam", False) else fastmlp.SGD(**spec)


def fit(case, seed, comm=None, verbose=0, callbacks=None):
    """The fit of CASES' ``case`` from the weights of ``seed``: (net, History)."""
    spec, dtype, extra = case
    (X, y), _ = load_digits()
    X, y, extra = X[:600] / 16, y[:600], dict(extra)
    if extra.pop("sample_weight", False):
        extra["sample_weight"] = 0.5 + (np.arange(len(y)) % 3)
    extra.setdefault("batch_size", 50)
    net = fastmlp.MLP((64, 24, 10), dtype=dtype, seed=seed, dropout=extra.pop("dropout", 0.0))
    history = net.fit(X, y, epochs=3, lr=0.05, optimizer=optimizer(spec), seed=7, comm=comm,
                      verbose=verbose, callbacks=callbacks, **extra)
    return net, history


def cases_script(body):
    """A script running ``body`` on every rank for each case of the JSON
    ``argv[2]`` (``name``, ``case``), writing into the folder ``argv[1]``
    (``out``); it can import this module's functions."""
    return f"""
import json
import pickle
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

import fastmlp

sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_mpi import estimator_data, estimator_fit, fit, shard_data, shard_weights, sharded_fit

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
out = Path(sys.argv[1])
for name, case in json.loads(sys.argv[2]).items():
""" + textwrap.indent(textwrap.dedent(body), "    ")


SCRIPT = cases_script("""
    def mark(model, epoch, logs, name=name):  # a callback's side effect, named by rank
        (out / f"{name}-callback-rank{rank}-epoch{epoch}").touch()
    # Each rank starts from other weights: rank 0's are broadcast.
    net, history = fit(case, seed=rank, comm=comm, verbose=2, callbacks=[mark])
    np.save(out / f"{name}-rank{rank}.npy", pickle.loads(pickle.dumps(net)).params)
    (out / f"{name}-history-rank{rank}.json").write_text(json.dumps(history.history))
""")


def mpirun(folder, *command, n=2, timeout=80):
    """Run ``command`` on n ranks in ``folder``; returns the CompletedProcess."""
    env = {**os.environ, "NUMBA_NUM_THREADS": "1"}
    return subprocess.run([str(MPIEXEC), "-n", str(n), *command], cwd=folder, check=False,
                          capture_output=True, text=True, timeout=timeout, env=env)


def python(folder, source, *args):
    """The command running Python ``source`` with ``args``, written to a file in ``folder``."""
    path = Path(folder) / "script.py"
    path.write_text(textwrap.dedent(source))
    return sys.executable, str(path), *args


@pytest.fixture(scope="module")
def two_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("mpi")
    run = mpirun(out, *python(out, SCRIPT, str(out), json.dumps(CASES)))
    assert run.returncode == 0, run.stderr
    return out, run.stdout


@pytest.mark.parametrize("name", CASES)
def test_two_ranks_equal_one_process(two_ranks, name):
    out, _ = two_ranks
    ranks = [np.load(out / f"{name}-rank{rank}.npy") for rank in (0, 1)]
    np.testing.assert_array_equal(ranks[0], ranks[1])
    net, history = fit(CASES[name], seed=0)
    rtol = TOLERANCE[net.dtype.name]
    np.testing.assert_allclose(ranks[0], net.params, rtol=rtol, atol=rtol)
    for rank in (0, 1):
        logged = json.loads((out / f"{name}-history-rank{rank}.json").read_text())
        assert logged.keys() == history.history.keys()
        for key, values in logged.items():
            np.testing.assert_allclose(values, history[key], rtol=rtol)


def test_only_rank_0_prints_and_runs_callbacks(two_ranks):
    out, stdout = two_ranks
    assert stdout.count("epoch 3/3") == len(CASES)
    names = sorted(p.name for p in out.glob("*-callback-*"))
    assert names == sorted(f"{name}-callback-rank0-epoch{e}" for name in CASES for e in (1, 2, 3))


# Sharded fits: each rank trains on its own rows of the digits' training set.
# (rows of rank 0, rows of rank 1, batch_size per rank, fit arguments)
SHARDED = {
    "equal-momentum-float64": (300, 300, 25, {"optimizer": {"momentum": 0.9}, "dtype": "float64",
                                              "shuffle": False, "sample_weight": True}),
    "equal-adam-float32": (300, 300, 25, {"optimizer": "adam", "dtype": "float32",
                                          "shuffle": False, "lr": 0.003}),
    "uneven-adam": (900, 538, 32, {"optimizer": "adam", "lr": 0.003, "epochs": 12,
                                   "validation_split": 0.1}),
    "regression-pooled-validation": (500, 320, 20, {"loss": "mse", "validation_split": 0.2}),
}


def shard_data(case, rank):
    """Rank ``rank``'s rows (X, y) of SHARDED's ``case``; y is a regression
    target for the mse case."""
    n0, n1, _, extra = case
    (X, y), _ = load_digits()
    if extra.get("loss") == "mse":
        y = X[:, :32].sum(axis=1) - X[:, 32:].sum(axis=1)
    rows = slice(0, n0) if rank == 0 else slice(n0, n0 + n1)
    return X[rows], y[rows]


def shard_weights(case, n):
    """The sample weights of n rows of a shard of ``case`` (None without)."""
    return 0.5 + (np.arange(n) % 3) if case[3].get("sample_weight") else None


def sharded_fit(case, X, y, batch_size, seed, comm=None, sample_weight=None):
    """The fit of SHARDED's ``case`` on X, y: (net, History)."""
    extra = dict(case[3])
    extra["sample_weight"] = sample_weight
    net = fastmlp.MLP((64, 24, 1 if extra.get("loss") == "mse" else 10),
                      loss=extra.pop("loss", "softmax_cross_entropy"),
                      dtype=extra.pop("dtype", "float32"), seed=seed)
    extra.setdefault("epochs", 3)
    history = net.fit(X, y, batch_size=batch_size, optimizer=optimizer(extra.pop("optimizer",
                                                                                 "sgd")),
                      seed=7, comm=comm, sharded=comm is not None, verbose=0,
                      **{"lr": 0.05, **extra})
    return net, history


SHARDED_SCRIPT = cases_script("""
    X, y = shard_data(case, rank)
    net, history = sharded_fit(case, X, y, case[2], seed=rank, comm=comm,
                               sample_weight=shard_weights(case, len(y)))
    np.save(out / f"{name}-rank{rank}.npy", net.params)
    (out / f"{name}-history-rank{rank}.json").write_text(json.dumps(history.history))
""")


@pytest.fixture(scope="module")
def sharded_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("sharded")
    run = mpirun(out, *python(out, SHARDED_SCRIPT, str(out), json.dumps(SHARDED)))
    assert run.returncode == 0, run.stderr
    return out


def sharded_result(out, name):
    """(rank 0's parameters, its History's dict), after checking that both
    ranks ended with the same parameters and History."""
    params = [np.load(out / f"{name}-rank{rank}.npy") for rank in (0, 1)]
    np.testing.assert_array_equal(params[0], params[1])
    histories = [json.loads((out / f"{name}-history-rank{rank}.json").read_text())
                 for rank in (0, 1)]
    assert histories[0] == histories[1]
    return params[0], histories[0]


@pytest.mark.parametrize("name", [name for name in SHARDED if name.startswith("equal")])
def test_sharded_equals_one_process_on_the_interleaved_batches(sharded_ranks, name):
    """Unshuffled equal shards: step i is rank 0's batch i, then rank 1's, the
    one-process fit's batch i of twice the size after interleaving the shards."""
    case = SHARDED[name]
    batch = case[2]
    shards = [shard_data(case, rank) for rank in (0, 1)]
    order = np.concatenate([np.arange(start, start + batch) + rank * case[0]
                            for start in range(0, case[0], batch) for rank in (0, 1)])
    X, y = (np.concatenate([shard[k] for shard in shards])[order] for k in (0, 1))
    weights = shard_weights(case, case[0])
    if weights is not None:  # each rank weighs its own rows
        weights = np.concatenate([weights, weights])[order]
    net, history = sharded_fit(case, X, y, 2 * batch, seed=0, sample_weight=weights)
    params, logged = sharded_result(sharded_ranks, name)
    rtol = TOLERANCE[net.dtype.name]
    np.testing.assert_allclose(params, net.params, rtol=rtol, atol=rtol)
    for key, values in logged.items():
        np.testing.assert_allclose(values, history[key], rtol=rtol)


def test_uneven_shards_train_as_one_process_does(sharded_ranks):
    """900 and 538 rows: rank 1 pads the last steps; the test accuracy is
    within 0.02 of one process's fit of all the rows with the global batch."""
    case = SHARDED["uneven-adam"]
    params, logged = sharded_result(sharded_ranks, "uneven-adam")
    assert len(logged["val_accuracy"]) == 12
    test = load_digits()[1]
    sharded = fastmlp.MLP((64, 24, 10), seed=0)
    sharded.params[...] = params
    (X, y), _ = load_digits()
    one, _ = sharded_fit(case, X[:1438], y[:1438], 2 * case[2], seed=0)
    accuracy, expected = sharded.evaluate(*test)[1], one.evaluate(*test)[1]
    assert expected > 0.9
    print(f"digits test accuracy: sharded {accuracy:.4f}, one process {expected:.4f}")
    assert abs(accuracy - expected) <= 0.02, (accuracy, expected)


def test_sharded_validation_is_pooled_over_the_ranks(sharded_ranks):
    case = SHARDED["regression-pooled-validation"]
    params, logged = sharded_result(sharded_ranks, "regression-pooled-validation")
    net = fastmlp.MLP((64, 24, 1), loss="mse", seed=0)
    net.params[...] = params
    held_out = [shard_data(case, rank) for rank in (0, 1)]
    held_out = [(X[len(X) - round(0.2 * len(X)):], y[len(y) - round(0.2 * len(y)):])
                for X, y in held_out]
    X_val, y_val = (np.concatenate([part[k] for part in held_out]) for k in (0, 1))
    val_loss, val_r2 = net.evaluate(X_val, y_val)
    np.testing.assert_allclose([logged["val_loss"][-1], logged["val_r2"][-1]],
                               [val_loss, val_r2], rtol=1e-5)
    assert val_r2 > 0.5


# Estimators over MPI: (estimator class, its parameters, mode, rows of rank 0 when sharded).
ESTIMATORS = {
    "classifier-replicated": ("MLPClassifier", {"early_stopping": True, "max_iter": 30,
                                                "dtype": "float64"}, "replicated", None),
    "regressor-replicated": ("MLPRegressor", {"solver": "sgd", "max_iter": 8,
                                              "learning_rate": "invscaling",
                                              "learning_rate_init": 0.01}, "replicated", None),
    "classifier-sharded": ("MLPClassifier", {"early_stopping": True, "max_iter": 100,
                                             "n_iter_no_change": 25,
                                             "batch_size": 100}, "sharded", 800),
    "regressor-sharded": ("MLPRegressor", {"max_iter": 30, "batch_size": 100}, "sharded", 800),
}


def estimator_data(case, rank=None):
    """The data of ESTIMATORS' ``case``: all the digits' training rows, or rank
    ``rank``'s rows when sharded (rank 1 has no nines: the classes must come
    from both ranks)."""
    (X, y), _ = load_digits()
    if case[0] == "MLPRegressor":
        y = X[:, :32].sum(axis=1) - X[:, 32:].sum(axis=1)
    if rank is None:
        return X, y
    rows = np.arange(len(y)) < case[3] if rank == 0 else (np.arange(len(y)) >= case[3]) & (y != 9)
    return X[rows], y[rows]


def estimator_fit(case, X, y, comm=None):
    """The fitted estimator of ESTIMATORS' ``case`` on X, y."""
    estimator = getattr(fastmlp, case[0])(hidden_layer_sizes=(24,), random_state=0, **case[1])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # max_iter reached
        return estimator.fit(X, y, comm=comm, sharded=comm is not None and case[2] == "sharded")


ESTIMATOR_SCRIPT = cases_script("""
    X, y = estimator_data(case, rank if case[2] == "sharded" else None)
    estimator = estimator_fit(case, X, y, comm)
    (out / f"{name}-rank{rank}.pickle").write_bytes(pickle.dumps(estimator))
    if name == "classifier-replicated":
        try:
            estimator.set_params(solver="lbfgs").fit(X, y, comm=comm)
        except ValueError as error:
            (out / f"lbfgs-rank{rank}.txt").write_text(str(error))
""")


@pytest.fixture(scope="module")
def estimator_ranks(tmp_path_factory):
    out = tmp_path_factory.mktemp("estimators")
    run = mpirun(out, *python(out, ESTIMATOR_SCRIPT, str(out), json.dumps(ESTIMATORS)),
                 timeout=120)
    assert run.returncode == 0, run.stderr
    return out


def fitted_on_both_ranks(out, name):
    """Rank 0's fitted estimator of ``name``, after checking that rank 1's is the same."""
    ranks = [pickle.loads((out / f"{name}-rank{rank}.pickle").read_bytes()) for rank in (0, 1)]
    np.testing.assert_array_equal(ranks[0].model_.params, ranks[1].model_.params)
    for attribute in ("n_iter_", "t_", "loss_curve_", "validation_scores_"):
        assert getattr(ranks[0], attribute) == getattr(ranks[1], attribute), attribute
    return ranks[0]


@pytest.mark.parametrize("name", [name for name in ESTIMATORS if name.endswith("replicated")])
def test_replicated_estimators_equal_one_process(estimator_ranks, name):
    case = ESTIMATORS[name]
    distributed = fitted_on_both_ranks(estimator_ranks, name)
    one = estimator_fit(case, *estimator_data(case))
    assert distributed.n_iter_ == one.n_iter_ and distributed.t_ == one.t_
    rtol = TOLERANCE[one.model_.dtype.name]
    np.testing.assert_allclose(distributed.model_.params, one.model_.params, rtol=rtol,
                               atol=rtol)
    np.testing.assert_allclose(distributed.loss_curve_, one.loss_curve_, rtol=rtol)
    if one.validation_scores_ is not None:
        np.testing.assert_allclose(distributed.validation_scores_, one.validation_scores_)


def test_sharded_classifier_learns_every_ranks_classes(estimator_ranks):
    case = ESTIMATORS["classifier-sharded"]
    distributed = fitted_on_both_ranks(estimator_ranks, "classifier-sharded")
    np.testing.assert_array_equal(distributed.classes_, np.arange(10))
    X, y = (np.concatenate(parts) for parts in zip(*(estimator_data(case, rank)
                                                      for rank in (0, 1))))
    assert distributed.t_ == distributed.n_iter_ * round(0.9 * 800) + distributed.n_iter_ * (
        len(y) - 800 - round(0.1 * (len(y) - 800)))
    one = estimator_fit((*case[:1], {**case[1], "batch_size": 200}, *case[2:]), X, y)
    test = load_digits()[1]
    accuracy, expected = distributed.score(*test), one.score(*test)
    print(f"digits test accuracy: sharded classifier {accuracy:.4f}, one process {expected:.4f}")
    assert expected > 0.9 and abs(accuracy - expected) <= 0.02, (accuracy, expected)


def test_sharded_regressor_fits_the_same_on_both_ranks(estimator_ranks):
    distributed = fitted_on_both_ranks(estimator_ranks, "regressor-sharded")
    (X, _), (X_test, _) = load_digits()
    y_test = X_test[:, :32].sum(axis=1) - X_test[:, 32:].sum(axis=1)
    assert distributed.score(X_test, y_test) > 0.9


def test_lbfgs_refuses_comm(estimator_ranks):
    said = [(estimator_ranks / f"lbfgs-rank{rank}.txt").read_text() for rank in (0, 1)]
    assert said[0] == said[1] and "stochastic solvers" in said[0]


def test_sharded_needs_comm():
    with pytest.raises(ValueError, match="sharded=True .* needs comm"):
        fastmlp.MLP((4, 2)).fit(np.zeros((4, 4)), [0, 1, 0, 1], sharded=True, verbose=0)


def test_missing_mpi4py_names_the_extra(monkeypatch):
    monkeypatch.setitem(sys.modules, "mpi4py", None)
    with pytest.raises(ImportError, match=r"fastmlp\[mpi\]"):
        fastmlp.MLP((4, 2)).fit(np.zeros((4, 4)), [0, 1, 0, 1], comm=object(), verbose=0)


FAULTS = """
import sys
import numpy as np
import fastmlp
from mpi4py import MPI

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
X = np.zeros((40 + 10 * (sys.argv[2] == "shape") * rank, 4))
y = np.arange(len(X)) % 2
net = fastmlp.MLP((4, 3, 2), seed=0)


def full_disk(model, epoch, logs):
    raise OSError("No space left on device")


try:
    net.fit(X, y, epochs=2, verbose=0, comm=comm,
            callbacks=full_disk if sys.argv[2] == "callback" else None)
except Exception as error:
    with open(f"{sys.argv[1]}/rank{rank}.txt", "w") as out:
        out.write(f"{type(error).__name__}: {error}")
"""


@pytest.mark.parametrize("fault, rank_1_says", [
    ("shape", "ValueError: the ranks' data disagree"),
    ("callback", "RuntimeError: the fit failed on rank 0: OSError: No space left"),
])
def test_faults_end_every_rank_with_the_error(tmp_path, fault, rank_1_says):
    run = mpirun(tmp_path, *python(tmp_path, FAULTS, str(tmp_path), fault), timeout=60)
    assert run.returncode == 0, run.stderr
    said = [(tmp_path / f"rank{rank}.txt").read_text() for rank in (0, 1)]
    assert said[1].startswith(rank_1_says)
    if fault == "shape":
        assert said[0] == said[1]
        assert "rank(s) 0 have X ndarray of float64 with 40 training rows" in said[0]
        assert "rank(s) 1 have X ndarray of float64 with 50 training rows" in said[0]
    else:
        assert said[0] == "OSError: No space left on device"


CHUNK_FAULT = """
import numpy as np
from mpi4py import MPI

import fastmlp
import fastmlp.trainer

comm = MPI.COMM_WORLD
if comm.Get_rank() == 1:  # rank 1 runs out of memory in its third batch
    compiled = fastmlp.trainer.step_kernels

    def failing(loss, rule, calls=[]):
        run_gradient, update = compiled(loss, rule)

        def run(*args):
            calls.append(1)
            if len(calls) == 3:
                raise MemoryError("no room for the batch")
            return run_gradient(*args)
        return run, update
    fastmlp.trainer.step_kernels = failing
X = np.zeros((400, 4))
y = np.arange(len(X)) % 2
fastmlp.MLP((4, 3, 2), seed=0).fit(X, y, epochs=50, verbose=0, comm=comm)
print("finished", flush=True)
"""


def test_an_error_inside_a_chunk_ends_every_rank(tmp_path):
    """Rank 0 waits in the Allreduce that rank 1 never reaches: rank 1 prints
    its error and aborts both."""
    started = time.monotonic()
    run = mpirun(tmp_path, *python(tmp_path, CHUNK_FAULT), timeout=60)
    assert run.returncode != 0
    assert "finished" not in run.stdout
    assert "rank 1 of 2 failed inside a compiled chunk" in run.stderr
    assert "MemoryError: no room for the batch" in run.stderr
    assert time.monotonic() - started < 30


def test_the_command_line_trains_over_the_ranks(tmp_path):
    run = mpirun(tmp_path, sys.executable, "-m", "fastmlp", "train", "--epochs", "2",
                 "--model", "net.npz", "--threads", "1")
    assert run.returncode == 0, run.stderr
    for line in ("digits: 1438 training", "epoch 2/2", "saved the model to net.npz",
                 "test accuracy"):
        assert run.stdout.count(line) == 1, run.stdout
    assert fastmlp.load(tmp_path / "net.npz").evaluate(*load_digits()[1])[1] > 0.8


INTERRUPTED = """
import sys
from pathlib import Path

from mpi4py import MPI

import fastmlp
from fastmlp.datasets import load_digits

comm = MPI.COMM_WORLD
(X, y), _ = load_digits()
started = Path(sys.argv[1]) / "started"
net = fastmlp.MLP((64, 256, 10), seed=0)
history = net.fit(X / 16, y, epochs=10**6, batch_size=8, verbose=0, comm=comm,
                  callbacks=lambda model, epoch, logs: started.touch())
print(f"rank {comm.Get_rank()}: interrupted {history.interrupted}, "
      f"{net._trainer.updates} updates", flush=True)
"""


def test_ctrl_c_to_mpiexec_stops_every_rank_after_the_same_batch(tmp_path):
    command = [str(MPIEXEC), "-n", "2", *python(tmp_path, INTERRUPTED, str(tmp_path))]
    process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               text=True, env={**os.environ, "NUMBA_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 60
        while not (tmp_path / "started").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        process.send_signal(signal.SIGINT)
        out, err = process.communicate(timeout=30)
    finally:
        process.kill()
    assert process.returncode == 0, err
    # mpiexec may join the ranks' lines without a newline between them.
    reports = sorted(re.findall(r"rank (\d): interrupted (\w+), (\d+) updates", out))
    assert [rank for rank, _, _ in reports] == ["0", "1"], out
    updates = {count for _, _, count in reports}
    assert all(interrupted == "True" for _, interrupted, _ in reports) and len(updates) == 1, out
    assert err.count("training interrupted") == 2
