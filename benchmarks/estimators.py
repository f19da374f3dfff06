"""fastmlp's MLPClassifier against scikit-learn's: seconds of a whole fit with defaults.

    python benchmarks/estimators.py [--solver adam lbfgs] [--data digits fashion-mnist]
                                    [--repeats 5]

``MLPClassifier(random_state=0, solver=...)`` with every other parameter at
its default (hidden (100,), max_iter 200; adam: batch 200), on the digits
shipped with fastmlp (X / 16, 1,437 training and 360 test images) and on
Fashion-MNIST (X / 255, 10,000 test images; adam: the 60,000 training images
with max_iter=10; lbfgs: the first 10,000 training images).
Each fits in a fresh process of its own that imports only its library, with 2
threads; they alternate within each repeat, each timed fit after an idle
pause and an untimed fit on a few samples (compilation and caches excluded).
Prints median seconds, the median of the paired ratios, n_iter_ and test
accuracy.
"""

import argparse
import gzip
import multiprocessing
import os
import time
import warnings

import numpy as np

from compare import PAUSE, read_idx

DIGITS = os.path.join(os.path.dirname(__file__), "..", "fastmlp", "data", "digits.csv.gz")
# (max_iter, training rows) per solver and data set; None: all the rows
SETUPS = {"adam": {"digits": (200, None), "fashion-mnist": (10, None)},
          "lbfgs": {"digits": (200, None), "fashion-mnist": (200, 10_000)}}
THREADS = 2


def load(name):
    """(X_train, y_train, X_test, y_test) as float64 in [0, 1] and int labels."""
    if name == "digits":
        with gzip.open(DIGITS) as f:
            data = np.loadtxt(f, delimiter=",")
        order = np.random.default_rng(0).permutation(len(data))
        X, y = data[order, :-1] / 16, data[order, -1].astype(np.int64)
        return X[:1437], y[:1437], X[1437:], y[1437:]
    images = [read_idx(f"{part}-images-idx3-ubyte.gz").reshape(-1, 784) / 255.0
              for part in ("train", "t10k")]
    labels = [read_idx(f"{part}-labels-idx1-ubyte.gz").astype(np.int64)
              for part in ("train", "t10k")]
    return images[0], labels[0], images[1], labels[1]


def worker(library, solver, data, connection):
    """Per request: an untimed fit on 400 samples, then a timed fit; sends back
    (seconds, n_iter_, test accuracy)."""
    warnings.filterwarnings("ignore")
    if library == "fastmlp":
        from fastmlp import MLPClassifier
        from fastmlp import set_num_threads
        set_num_threads(THREADS)
    else:
        from sklearn.neural_network import MLPClassifier
        from threadpoolctl import threadpool_limits
        threadpool_limits(THREADS)
    X, y, X_test, y_test = load(data)
    max_iter, rows = SETUPS[solver][data]
    X, y = X[:rows], y[:rows]
    connection.send(None)
    while connection.recv():
        MLPClassifier(random_state=0, solver=solver, max_iter=2).fit(X[:400], y[:400])  # settle
        started = time.perf_counter()
        model = MLPClassifier(random_state=0, solver=solver, max_iter=max_iter).fit(X, y)
        seconds = time.perf_counter() - started
        connection.send((seconds, model.n_iter_, model.score(X_test, y_test)))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--solver", nargs="+", choices=list(SETUPS), default=list(SETUPS))
    parser.add_argument("--data", nargs="+", choices=list(SETUPS["adam"]),
                        default=list(SETUPS["adam"]))
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    libraries = ["fastmlp", "sklearn"]
    print("| solver | data | fastmlp s | scikit-learn s | ratio | n_iter_ | test accuracy |")
    print("|---|---|---:|---:|---:|---|---|")
    for solver, data in [(s, d) for s in args.solver for d in args.data]:
        context = multiprocessing.get_context("spawn")
        connections = {}
        for library in libraries:
            connections[library], theirs = context.Pipe()
            context.Process(target=worker, args=(library, solver, data, theirs),
                            daemon=True).start()
        for library in libraries:
            connections[library].recv()  # ready
        runs = {library: [] for library in libraries}
        for repeat in range(args.repeats):
            for library in libraries[repeat % 2:] + libraries[:repeat % 2]:
                time.sleep(PAUSE)
                connections[library].send(True)
                runs[library].append(connections[library].recv())
        for library in libraries:
            connections[library].send(False)
        seconds = {library: np.array([run[0] for run in runs[library]]) for library in libraries}
        ratio = np.median(seconds["sklearn"] / seconds["fastmlp"])
        first = {library: runs[library][0] for library in libraries}
        print(f"| {solver} | {data} | {np.median(seconds['fastmlp']):.3f} | "
              f"{np.median(seconds['sklearn']):.3f} | {ratio:.2f}x | "
              f"{first['fastmlp'][1]} / {first['sklearn'][1]} | "
              f"{first['fastmlp'][2]:.4f} / {first['sklearn'][2]:.4f} |", flush=True)


if __name__ == "__main__":
    main()
