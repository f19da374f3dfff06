"""Data-parallel fits over MPI (``fit(comm=...)``), run as ``mpiexec -n 2`` in a subprocess.

Each launch runs one script on two ranks; the test process runs the
one-process fits it is compared with.
"""

import json
import os
import signal
import subprocess
import sys
import textwrap
import time
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
    net = fastmlp.MLP((64, 24, 10), dtype=dtype, seed=seed)
    history = net.fit(X, y, epochs=3, lr=0.05, optimizer=optimizer(spec), seed=7, comm=comm,
                      verbose=verbose, callbacks=callbacks, **extra)
    return net, history


SCRIPT = f"""
import json
import pickle
import sys
from pathlib import Path

import numpy as np
from mpi4py import MPI

sys.path.insert(0, {str(Path(__file__).parent)!r})
from test_mpi import fit

comm = MPI.COMM_WORLD
rank = comm.Get_rank()
out = Path(sys.argv[1])
for name, case in json.loads(sys.argv[2]).items():
    def mark(model, epoch, logs, name=name):  # a callback's side effect, named by rank
        (out / f"{{name}}-callback-rank{{rank}}-epoch{{epoch}}").touch()
    # Each rank starts from other weights: rank 0's are broadcast.
    net, history = fit(case, seed=rank, comm=comm, verbose=2, callbacks=[mark])
    np.save(out / f"{{name}}-rank{{rank}}.npy", pickle.loads(pickle.dumps(net)).params)
    (out / f"{{name}}-history-rank{{rank}}.json").write_text(json.dumps(history.history))
"""


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
    lines = sorted(line for line in out.splitlines() if line.startswith("rank"))
    assert len(lines) == 2, out
    updates = {line.split(", ")[1] for line in lines}
    assert all("interrupted True" in line for line in lines) and len(updates) == 1, out
    assert err.count("training interrupted") == 2
