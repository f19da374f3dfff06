"""fastmlp against its peers: samples/s of one training epoch, same run, same machine.

    python benchmarks/compare.py [--batch-sizes 1 16 128 512] [--repeats 5] [--threads 2]

The 784-256-128-10 relu net, float32, Fashion-MNIST training set scaled to
[0, 1], plain SGD (lr 0.01, no momentum), softmax cross-entropy. Each
implementation runs in a process of its own (as asv runs each benchmark:
no library's thread pools, BLAS or allocator state reach another's), one
warm-up epoch (compilation excluded), then ``--repeats`` timed epochs, the
implementations alternating within each repeat so that machine noise hits
them alike, each after a pause that lets the previous one's idle BLAS and
OpenMP threads stop spinning (they would take the cores from the next); the
table gives medians.
Slow cases train on a prefix of the data (samples/s stays comparable). Also
measured in the same run: the machine's float32 GEMM rate with NumPy, against
which fastmlp's achieved GFLOP/s is set.
"""

import argparse
import datetime
import multiprocessing
import platform
import time
import warnings

import numpy as np
from threadpoolctl import threadpool_limits

import fastmlp
from fastmlp import reference
from fastmlp.datasets import load_fashion_mnist

SIZES = (784, 256, 128, 10)
LR = 0.01
PAUSE = 0.5  # seconds between two timed epochs
# The FLOPs a training step does per sample, 2 per multiply-add: forward
# X @ W, backward dW = X.T @ dZ, and dX = dZ @ W.T for every layer but the
# first (no implementation computes the gradient w.r.t. the data).
MACS = [a * b for a, b in zip(SIZES, SIZES[1:])]
FLOPS_PER_SAMPLE = 2 * (2 * sum(MACS) + sum(MACS[1:]))
TRAIN_SAMPLES = 60000  # Fashion-MNIST's training set, loaded by each worker
# Samples per timed epoch, by implementation and batch size (None: all of them).
SAMPLES = {"fastmlp": {1: 20000}, "torch": {1: 5000, 16: 20000},
           "sklearn": {1: 5000, 16: 20000}, "numpy-ref": {1: 2000, 16: 5000, None: 10000}}


def fastmlp_epoch(X, y, batch_size):
    net = fastmlp.MLP(SIZES, "relu", seed=0)
    return lambda: net.fit(X, y, epochs=1, batch_size=batch_size, lr=LR, verbose=0)


def torch_epoch(X, y, batch_size):
    import torch
    torch.manual_seed(0)
    layers = [torch.nn.Linear(a, b) for a, b in zip(SIZES, SIZES[1:])]
    model = torch.nn.Sequential(layers[0], torch.nn.ReLU(), layers[1], torch.nn.ReLU(), layers[2])
    optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0)
    X_t, y_t = torch.from_numpy(X), torch.from_numpy(y)

    def epoch():
        order = torch.randperm(len(y_t))
        for s in range(0, len(y_t), batch_size):
            batch = order[s:s + batch_size]
            loss = torch.nn.functional.cross_entropy(model(X_t[batch]), y_t[batch])
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
    return epoch


def sklearn_epoch(X, y, batch_size):
    from sklearn.neural_network import MLPClassifier
    model = MLPClassifier(SIZES[1:-1], activation="relu", solver="sgd", alpha=0.0,
                          batch_size=batch_size, learning_rate_init=LR, momentum=0.0,
                          nesterovs_momentum=False, shuffle=True, random_state=0)
    classes = np.arange(10)
    return lambda: model.partial_fit(X, y, classes=classes)


def reference_epoch(X, y, batch_size):
    params = fastmlp.MLP(SIZES, "relu", dtype="float64", seed=0).params
    X, T, rng = X.astype(np.float64), np.eye(10)[y], np.random.default_rng(0)
    return lambda: reference.train(params, SIZES, "relu", "identity", "softmax_cross_entropy",
                                   X, T, [rng.permutation(len(y))], batch_size, LR)


IMPLEMENTATIONS = {"fastmlp": fastmlp_epoch, "torch": torch_epoch, "sklearn": sklearn_epoch,
                   "numpy-ref": reference_epoch}


def available(name):
    try:
        __import__({"torch": "torch", "sklearn": "sklearn"}.get(name, "numpy"))
        return True
    except ImportError:
        return False


def gemm_gflops(repeats=20):
    """Best median float32 GEMM rate of NumPy over the net's largest GEMM and a big square."""
    rates = []
    for m, k, n in [(512, 784, 256), (2048, 2048, 2048)]:
        a, b = np.ones((m, k), np.float32), np.ones((k, n), np.float32)
        out = np.empty((m, n), np.float32)
        times = []
        for _ in range(repeats):
            start = time.perf_counter()
            np.dot(a, b, out=out)
            times.append(time.perf_counter() - start)
        rates.append(2 * m * k * n / np.median(times) / 1e9)
    return max(rates)


def cpu_name():
    with open("/proc/cpuinfo") as f:
        return next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")),
                    platform.processor())


def worker(name, batch_size, n, threads, connection):
    """Train ``name`` on the first n samples: a warm-up epoch, then one timed
    epoch per request, sending back its seconds."""
    warnings.filterwarnings("ignore", module="sklearn")
    threadpool_limits(threads)
    fastmlp.set_num_threads(threads)
    if name == "torch":
        import torch
        torch.set_num_threads(threads)
    (X, y), _ = load_fashion_mnist()
    X = X[:n] / np.float32(255)
    epoch = IMPLEMENTATIONS[name](X, y[:n], batch_size)
    epoch()  # warm-up: compilation, allocation, caches
    connection.send(None)
    while connection.recv():
        start = time.perf_counter()
        epoch()
        connection.send(time.perf_counter() - start)


def median_seconds(names, counts, batch_size, repeats, threads):
    """{name: median seconds of an epoch}, one worker process per implementation."""
    context = multiprocessing.get_context("spawn")
    connections, processes = {}, []
    for name in names:
        connections[name], theirs = context.Pipe()
        processes.append(context.Process(target=worker, args=(name, batch_size, counts[name],
                                                              threads, theirs)))
        processes[-1].start()
    for name in names:
        connections[name].recv()  # ready
    times = {name: [] for name in names}
    for _ in range(repeats):
        for name in names:
            time.sleep(PAUSE)
            connections[name].send(True)
            times[name].append(connections[name].recv())
    for name in names:
        connections[name].send(False)
    for process in processes:
        process.join()
    return {name: np.median(t) for name, t in times.items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 128, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=fastmlp.get_num_threads())
    args = parser.parse_args()
    names = [name for name in IMPLEMENTATIONS if available(name)]
    versions = {m.__name__: m.__version__ for m in [np, fastmlp]}
    for name, module in [("numba", "numba"), ("torch", "torch"), ("sklearn", "sklearn")]:
        if available(name) or name == "numba":
            versions[name] = __import__(module).__version__
    print(f"{datetime.date.today()}, {cpu_name()}, {args.threads} threads, "
          + ", ".join(f"{k} {v}" for k, v in versions.items()))
    print(f"784-256-128-10 relu, float32, SGD lr {LR}; samples/s, median of {args.repeats}\n")
    with threadpool_limits(args.threads):
        peak = gemm_gflops()
    rows = [f"machine float32 GEMM (NumPy): {peak:.0f} GFLOP/s\n",
            "| batch | " + " | ".join(names) + " | fastmlp/torch | fastmlp/sklearn "
            "| fastmlp GFLOP/s | % of GEMM |",
            "|---" * (len(names) + 5) + "|"]
    for batch_size in args.batch_sizes:
        counts = {name: SAMPLES[name].get(batch_size, SAMPLES[name].get(None, TRAIN_SAMPLES))
                  for name in names}
        seconds = median_seconds(names, counts, batch_size, args.repeats, args.threads)
        rate = {name: counts[name] / seconds[name] for name in names}
        ratio = {peer: (f"{rate['fastmlp'] / rate[peer]:.2f}x" if peer in rate else "n/a")
                 for peer in ["torch", "sklearn"]}
        gflops = rate["fastmlp"] * FLOPS_PER_SAMPLE / 1e9
        rows.append(f"| {batch_size} | " + " | ".join(f"{rate[n]:,.0f}" for n in names)
                    + f" | {ratio['torch']} | {ratio['sklearn']} | {gflops:.0f} "
                    f"| {100 * gflops / peak:.0f}% |")
        print(rows[-1], flush=True)
    print()
    print("\n".join(rows))


if __name__ == "__main__":
    main()
