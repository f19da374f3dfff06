"""fastmlp against its peers and the GEMM floor: samples/s of one training epoch.

    python benchmarks/compare.py [--data pixels standardized] [--threads 2]
        [--batch-sizes 1 16 32 128 200 512] [--repeats 5] [--only fastmlp,jax]
        [--samples N] [--cpu avx2]
    python benchmarks/compare.py --only fastmlp,dropout --batch-sizes 128
    python benchmarks/compare.py --only fastmlp,torch --batch-sizes 128 --busy 1


The 784-256-128-10 relu net, float32, softmax cross-entropy, plain SGD (lr
0.01, no momentum, no penalty), on the Fashion-MNIST training set, as pixels
(X / 255) or standardized (per feature, std 0 taken as 1). Peers: JAX (the
epoch one jitted ``lax.scan``), PyTorch eager and scikit-learn; install them
with ``pip install -e ".[bench]"``. The GEMM floor is the ceiling for the same
FLOPs: the step's GEMMs at batch B (forward, dW, and dX for all layers but the
first) timed alone with NumPy's BLAS, median per GEMM, summed.

Fairness rules, from what was seen to skew such comparisons (DESIGN.md,
"Measuring speed honestly"):

- Each implementation runs in a fresh process of its own that imports only
  its library (no library's environment variables, thread pools or BLAS
  reach another); this process imports NumPy only. Each worker sets its
  threads through its library (JAX: CPU affinity, see common.jax_epoch).
- The implementations alternate within each repeat; before each timed epoch,
  an idle pause (idle BLAS/OpenMP threads stop spinning) and one untimed
  epoch (XLA's pool threads wake up).
- Reported: median samples/s, and medians of the paired ratios (fastmlp's
  rate over a peer's in the same repeat).

``dropout`` (not run by default) is fastmlp with dropout 0.2 on both hidden
layers; its column "dropout cost" is the share of fastmlp's throughput that
dropout takes (one minus the median of the paired ratios).

``--busy N`` runs N processes that each spin on a core for the whole
measurement, as on a machine busy with other work.

``--cpu KEY`` runs every implementation on instruction set KEY of
fastmlp.kernels.target.TILES (``avx2`` or ``generic`` on an AVX-512 host):
fastmlp through Numba's NUMBA_CPU_NAME/NUMBA_CPU_FEATURES, OpenBLAS, PyTorch
and JAX through their own variables (common.isa_environment). Without it the
host's own set runs, and OpenBLAS chooses its kernels.

Slow cases train on a prefix of the data (samples/s stays comparable), said
under the tables; ``--samples`` caps every epoch, for quick checks only.
"""

import argparse
import contextlib
import datetime
import functools
import importlib.util
import multiprocessing
import os
import shlex
import subprocess
import sys
import time
import warnings

import numpy as np

from benchmarks.common import (LR, apply_environment, cpu_name, isa_environment, jax_epoch,
                               read_idx, sklearn_epoch, torch_epoch)

SIZES = (784, 256, 128, 10)
TRAIN_SAMPLES = 60000
PAUSE = 1.0  # seconds of idle before each timed epoch
# Name: column title, modules it needs (their versions are reported).
IMPLEMENTATIONS = {"fastmlp": ("fastmlp", ["fastmlp", "numba"]),
                   "jax": ("JAX", ["jax", "jaxlib"]),
                   "torch": ("PyTorch", ["torch"]),
                   "sklearn": ("scikit-learn", ["sklearn"]),
                   "floor": ("GEMM floor", ["numpy"]),
                   "dropout": ("fastmlp, dropout 0.2", ["fastmlp", "numba"])}
PEERS = ["jax", "torch", "sklearn"]
# Samples per timed epoch where a whole epoch is slow: {name: {batch size: n}}.
PREFIX = {"fastmlp": {1: 20000}, "jax": {1: 20000}, "torch": {1: 5000, 16: 20000},
          "sklearn": {1: 3000, 16: 15000, 32: 30000}}


def load(variant, n):
    """The first n training samples: float32 X (n, 784) and int64 labels."""
    X = read_idx("train-images-idx3-ubyte.gz").reshape(TRAIN_SAMPLES, -1).astype(np.float64)
    if variant == "pixels":
        X /= 255
    else:
        std = X.std(axis=0)
        X = (X - X.mean(axis=0)) / np.where(std == 0, 1, std)
    y = read_idx("train-labels-idx1-ubyte.gz").astype(np.int64)
    return np.ascontiguousarray(X[:n], np.float32), y[:n]


def fastmlp_epoch(X, y, sizes, activation, batch_size, lr, threads, dropout=0.0):
    import fastmlp
    fastmlp.set_num_threads(threads)
    net = fastmlp.MLP(sizes, activation, seed=0, dropout=dropout)
    return lambda: net.fit(X, y, epochs=1, batch_size=batch_size, lr=lr, verbose=0)


EPOCHS = {"fastmlp": fastmlp_epoch, "jax": jax_epoch, "torch": torch_epoch,
          "sklearn": sklearn_epoch, "dropout": functools.partial(fastmlp_epoch, dropout=0.2)}


def gemm_floor(batch_size, threads, repeats=200):
    """A function returning batch_size / (summed median seconds of the step's GEMMs)."""
    from threadpoolctl import threadpool_limits
    threadpool_limits(threads)
    rng = np.random.default_rng(0)
    gemms = []  # (a, b, out) of out = a @ b
    for i, (fan_in, fan_out) in enumerate(zip(SIZES, SIZES[1:])):
        X, dZ = (rng.random((batch_size, k), np.float32) for k in (fan_in, fan_out))
        W = rng.random((fan_in, fan_out), np.float32)
        gemms += [(X, W), (X.T, dZ)] + ([(dZ, W.T)] if i else [])
    gemms = [(a, b, np.empty((a.shape[0], b.shape[1]), np.float32)) for a, b in gemms]

    def rate():
        total = 0.0
        for a, b, out in gemms:
            times = np.empty(repeats)
            for r in range(repeats):
                start = time.perf_counter()
                np.matmul(a, b, out=out)
                times[r] = time.perf_counter() - start
            total += np.median(times)
        return batch_size / total
    return rate


def worker(name, variant, batch_size, n, threads, connection):
    """Set up ``name`` on n samples, warm it up and send its versions; then,
    per request, an untimed and a timed epoch, sending back samples/s."""
    warnings.filterwarnings("ignore")
    if name == "floor":
        rate = gemm_floor(batch_size, threads)
    else:
        X, y = load(variant, n)
        epoch = EPOCHS[name](X, y, SIZES, "relu", batch_size, LR, threads)

        def rate():
            start = time.perf_counter()
            epoch()
            return n / (time.perf_counter() - start)
    rate()  # warm-up: compilation, allocation
    versions = {module: sys.modules[module].__version__ for module in IMPLEMENTATIONS[name][1]}
    if name == "fastmlp":
        from fastmlp.config import header
        versions["runs on:"] = header()
    if name == "floor":
        from threadpoolctl import threadpool_info
        versions.update({info["internal_api"]: info["version"] for info in threadpool_info()
                         if info["user_api"] == "blas"})
    connection.send(versions)
    while connection.recv():
        rate()  # settle
        connection.send(rate())


def measure(names, variant, batch_size, args):
    """{name: [samples/s per repeat]}, {name: samples per epoch}, {module: version}."""
    context = multiprocessing.get_context("spawn")
    counts = {name: min(PREFIX.get(name, {}).get(batch_size, TRAIN_SAMPLES), args.samples)
              for name in names}
    connections, processes = {}, []
    for name in names:
        connections[name], theirs = context.Pipe()
        processes.append(context.Process(target=worker, daemon=True, args=(
            name, variant, batch_size, counts[name], args.threads, theirs)))
        processes[-1].start()
    versions = {}
    for name in names:
        versions.update(connections[name].recv())
    rates = {name: [] for name in names}
    for repeat in range(args.repeats):
        turn = repeat % len(names)
        for name in names[turn:] + names[:turn]:
            time.sleep(PAUSE)
            connections[name].send(True)
            rates[name].append(connections[name].recv())
    for name in names:
        connections[name].send(False)
    for process in processes:
        process.join()
    return rates, counts, versions


@contextlib.contextmanager
def busy_loops(n):
    """n processes of this Python, each spinning on a core until the block ends."""
    loops = [subprocess.Popen([sys.executable, "-c", "while True: pass"]) for _ in range(n)]
    try:
        yield
    finally:
        for loop in loops:
            loop.kill()
            loop.wait()


def table(rates, batch_sizes):
    """The markdown table of one data variant; rates[batch][name] lists samples/s."""
    dropout = any("dropout" in r for r in rates.values())
    columns = ([(name, title) for name, (title, _) in IMPLEMENTATIONS.items()
                if name != "dropout" or dropout]
               + [("% floor", "fastmlp % of floor")]
               + [(f"/{peer}", f"fastmlp/{IMPLEMENTATIONS[peer][0]}") for peer in PEERS]
               + [("cost", "dropout cost")] * dropout)
    lines = ["| batch | " + " | ".join(title for _, title in columns) + " |",
             "|---:" * (len(columns) + 1) + "|"]
    for batch_size in batch_sizes:
        r = rates[batch_size]
        cells = {name: f"{np.median(r[name]):,.0f}" for name in r}
        if "fastmlp" in r:  # medians of the paired ratios
            paired = {peer: np.median(np.divide(r["fastmlp"], r[peer])) for peer in r}
            cells.update({f"/{peer}": f"{paired[peer]:.2f}x" for peer in PEERS if peer in r})
            if "floor" in r:
                cells["% floor"] = f"{100 * paired['floor']:.0f}%"
            if "dropout" in r:
                cells["cost"] = f"{100 * (1 - 1 / paired['dropout']):.1f}%"
        if batch_size == 1:  # a step of one sample does no GEMM
            cells["floor"] = cells["% floor"] = "-"
        lines.append(f"| {batch_size} | "
                     + " | ".join(cells.get(key, "n/a") for key, _ in columns) + " |")
    return "\n".join(lines)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data", nargs="+", choices=["pixels", "standardized"],
                        default=["pixels", "standardized"])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 16, 32, 128, 200, 512])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--only", default=",".join(name for name in IMPLEMENTATIONS
                                                   if name != "dropout"),
                        help="comma-separated, from " + ",".join(IMPLEMENTATIONS))
    parser.add_argument("--samples", type=int, default=TRAIN_SAMPLES,
                        help="at most this many samples per epoch (quick checks)")
    parser.add_argument("--busy", type=int, default=0, metavar="N",
                        help="processes spinning on a core each while measuring")
    parser.add_argument("--cpu", metavar="KEY",
                        help="run the code of this instruction set (avx2, generic)")
    args = parser.parse_args()
    apply_environment(isa_environment(args.cpu))  # inherited by the workers
    chosen = args.only.split(",")
    unknown = set(chosen) - set(IMPLEMENTATIONS)
    if unknown:
        parser.error(f"--only: unknown {', '.join(sorted(unknown))}")
    missing = [name for name in chosen if not all(importlib.util.find_spec(module)
                                                  for module in IMPLEMENTATIONS[name][1])]
    names = [name for name in IMPLEMENTATIONS if name in chosen and name not in missing]

    rates, prefixes, versions = {}, {}, {}
    with busy_loops(args.busy):
        for variant in args.data:
            rates[variant] = {}
            for batch_size in args.batch_sizes:
                run = [name for name in names if not (name == "floor" and batch_size == 1)]
                rates[variant][batch_size], counts, found = measure(run, variant, batch_size,
                                                                    args)
                versions.update(found)
                for name, n in counts.items():
                    if name != "floor" and n < TRAIN_SAMPLES:
                        prefixes.setdefault(name, {})[batch_size] = n
                print(f"{variant}, batch {batch_size}: done", file=sys.stderr, flush=True)

    print(f"{datetime.date.today()}, {cpu_name()}, threads: {args.threads}, "
          + ", ".join(f"{module} {version}" for module, version in versions.items())
          + f"; command: python {shlex.join(sys.argv)}")
    print(f"784-256-128-10 relu, float32, SGD lr {LR}; samples/s of a training epoch, "
          f"medians of {args.repeats} repeats (ratios: medians of paired ratios)"
          + (f"; beside {args.busy} busy-loop processes" if args.busy else ""))
    for variant in args.data:
        print(f"\n{variant}\n\n{table(rates[variant], args.batch_sizes)}")
    print()
    if prefixes:
        print("Trained on a prefix of the 60,000 samples (samples/s stays comparable): "
              + "; ".join(f"{IMPLEMENTATIONS[name][0]} " + ", ".join(
                  f"{n:,} at batch {b}" for b, n in by_batch.items())
                          for name, by_batch in prefixes.items()) + ".")
    if missing:
        print(f"n/a: {', '.join(missing)} not installed; the peers are in the bench extra: "
              "pip install -e \".[bench]\".")
    if "jax" in names and args.threads < len(os.sched_getaffinity(0)):
        print(f"JAX ran pinned to {args.threads} cores (its thread pool follows the CPU affinity).")


if __name__ == "__main__":
    main()
