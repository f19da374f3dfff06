"""Shapes, parameters and data shared by the fastmlp and peer benchmarks, and
the peers' epochs (also used by ../compare.py).

This module imports NumPy only: each peer's epoch imports its library when
called, so that a process imports no library it does not benchmark.
"""

import gzip
import os

import numpy as np

NETS = {"784-100-10 sigmoid": ((784, 100, 10), "sigmoid"),
        "784-256-128-10 relu": ((784, 256, 128, 10), "relu")}
# Samples per epoch: fewer for small batches, to keep one epoch around a second.
SAMPLES = {"1": 2000, "16": 10000, "128": 10000, "512": 10000, "full": 10000}
PARAMS = (list(NETS), list(SAMPLES), ["float32", "float64"])
PARAM_NAMES = ["net", "batch_size", "dtype"]
LR = 0.01
FASHION_MNIST = "/usr/share/datasets/fashion-mnist"
THREADS = 2  # the peers' threads in the asv suite (fastmlp's default there: the cores)


def read_idx(name):
    """The array in a gzipped IDX file of Debian's Fashion-MNIST folder."""
    with gzip.open(os.path.join(FASHION_MNIST, name)) as f:
        raw = f.read()
    ndim = raw[3]
    shape = np.frombuffer(raw, ">u4", ndim, 4)
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * ndim).reshape(shape)


def cpu_name():
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f
                     if line.startswith("model name")), "unknown CPU")


# Per instruction set: the variables that hold OpenBLAS, PyTorch (ATen, oneDNN,
# MKL) and JAX (XLA) to it, so that every library of a run runs the same set.
PEER_ISA = {
    "avx2": {"OPENBLAS_CORETYPE": "Haswell", "ATEN_CPU_CAPABILITY": "avx2",
             "ONEDNN_MAX_CPU_ISA": "AVX2", "MKL_ENABLE_INSTRUCTIONS": "AVX2",
             "XLA_FLAGS": "--xla_cpu_max_isa=AVX2"},
    "generic": {"OPENBLAS_CORETYPE": "Nehalem", "ATEN_CPU_CAPABILITY": "default",
                "ONEDNN_MAX_CPU_ISA": "SSE41", "MKL_ENABLE_INSTRUCTIONS": "SSE4_2",
                "XLA_FLAGS": "--xla_cpu_max_isa=SSE4_2"},
}


def isa_environment(key=None):
    """{variable: value, or None to remove} that make a benchmark's processes
    run instruction set ``key`` of fastmlp.kernels.target.TILES ("avx2",
    "generic") on this host: fastmlp through Numba's target, its peers through
    their own variables. None: the host's own, with OpenBLAS choosing its
    kernels (OPENBLAS_CORETYPE and OPENBLAS_L2_SIZE, which some machines here
    set for old OpenBLAS builds, removed). Asks a subprocess, so that this
    process imports no Numba."""
    import json
    import subprocess
    import sys
    changes = {"OPENBLAS_CORETYPE": None, "OPENBLAS_L2_SIZE": None}
    if key is None:
        return changes
    numba_env = subprocess.run(
        [sys.executable, "-c", "import json; from fastmlp.kernels import target; "
         f"print(json.dumps(target.variant_environment({key!r})))"],
        capture_output=True, text=True)
    if numba_env.returncode:
        raise SystemExit(numba_env.stderr.strip().splitlines()[-1])
    changes.update(json.loads(numba_env.stdout))
    changes.update(PEER_ISA.get(key, {}))
    return changes


def apply_environment(changes):
    """Set or remove os.environ's variables as ``changes`` says (benchmark
    scripts only: fastmlp itself never writes the environment)."""
    for name, value in changes.items():
        if value is None:
            os.environ.pop(name, None)
        else:
            os.environ[name] = value


def data(batch_size, dtype, scale=1):
    """Synthetic MNIST-shaped inputs (n, 784) in [0, 1] and labels 0..9 (n,);
    n is SAMPLES[batch_size] divided by ``scale`` for slow implementations."""
    rng = np.random.default_rng(0)
    n = SAMPLES[batch_size] // scale
    return rng.random((n, 784), dtype=np.float32).astype(dtype), rng.integers(0, 10, n)


def batch(batch_size, n):
    return n if batch_size == "full" else int(batch_size)


def jax_epoch(X, y, sizes, activation, batch_size, lr, threads):
    """A function running one epoch of SGD with JAX, the whole epoch one jitted
    call: a shuffled order, ``lax.scan`` over the full batches, then the last
    partial batch, parameters donated. Returns the epoch's mean batch loss.

    XLA's CPU pool has a thread per core the process may run on, and jaxlib
    0.10 ignores ``XLA_FLAGS=intra_op_parallelism_threads``: fewer threads than
    cores pins this process to ``threads`` cores (call before JAX starts).
    """
    cpus = sorted(os.sched_getaffinity(0))
    if threads < len(cpus):
        os.sched_setaffinity(0, cpus[:threads])
    import jax
    import jax.numpy as jnp
    jax.config.update("jax_enable_x64", X.dtype == np.float64)
    act = jax.nn.relu if activation == "relu" else jax.nn.sigmoid
    n, full = len(y), len(y) - len(y) % batch_size

    def loss(params, X, y):
        for W, b in params[:-1]:
            X = act(X @ W + b)
        W, b = params[-1]
        log_p = jax.nn.log_softmax(X @ W + b)
        return -jnp.take_along_axis(log_p, y[:, None], axis=1).mean()

    def epoch(params, X, y, key):
        def step(params, rows):
            value, grads = jax.value_and_grad(loss)(params, X[rows], y[rows])
            return jax.tree.map(lambda p, g: p - lr * g, params, grads), value

        order = jax.random.permutation(key, n)
        params, losses = jax.lax.scan(step, params, order[:full].reshape(-1, batch_size))
        if full < n:
            params, last = step(params, order[full:])
            losses = jnp.append(losses, last)
        return params, losses.mean()

    epoch = jax.jit(epoch, donate_argnums=0)
    rng = np.random.default_rng(0)
    state = [[(jnp.asarray(rng.uniform(-1, 1, (a, b)) * np.sqrt(6 / a), X.dtype),
               jnp.zeros(b, X.dtype)) for a, b in zip(sizes, sizes[1:])],
             jax.random.key(0)]
    X, y = jnp.asarray(X), jnp.asarray(y, jnp.int32)

    def run():
        state[1], key = jax.random.split(state[1])
        state[0], mean_loss = jax.block_until_ready(epoch(state[0], X, y, key))
        return float(mean_loss)
    return run


def torch_epoch(X, y, sizes, activation, batch_size, lr, threads):
    """A function running one epoch of SGD with PyTorch eager: a tight loop
    over pre-made tensors, randperm, cross_entropy, optimizer.step."""
    import torch
    torch.set_num_threads(threads)
    torch.manual_seed(0)
    act = torch.nn.ReLU if activation == "relu" else torch.nn.Sigmoid
    layers = []
    for fan_in, fan_out in zip(sizes, sizes[1:]):
        layers += [torch.nn.Linear(fan_in, fan_out), act()]
    model = torch.nn.Sequential(*layers[:-1]).to(getattr(torch, X.dtype.name))
    optimizer = torch.optim.SGD(model.parameters(), lr=lr, momentum=0)
    X, y = torch.from_numpy(X), torch.from_numpy(np.asarray(y, np.int64))

    def epoch():
        order = torch.randperm(len(y))
        for s in range(0, len(y), batch_size):
            rows = order[s:s + batch_size]
            loss = torch.nn.functional.cross_entropy(model(X[rows]), y[rows])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return epoch


def sklearn_epoch(X, y, sizes, activation, batch_size, lr, threads):
    """A function running one epoch of SGD with scikit-learn's MLPClassifier
    (solver sgd, no momentum, no penalty): one partial_fit, BLAS limited to
    ``threads`` by threadpoolctl."""
    from sklearn.neural_network import MLPClassifier
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)
    model = MLPClassifier(sizes[1:-1], activation=activation.replace("sigmoid", "logistic"),
                          solver="sgd", alpha=0.0, batch_size=batch_size,
                          learning_rate_init=lr, momentum=0.0, nesterovs_momentum=False,
                          random_state=0)
    classes = np.arange(sizes[-1])
    return lambda: model.partial_fit(X, y, classes=classes)
