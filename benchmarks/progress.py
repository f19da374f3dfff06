"""What the progress bar costs: fit with verbose=1 against verbose=0.

    python benchmarks/progress.py [--repeats 5] [--batch-sizes 1 128]

Trains the 784-256-128-10 relu net (float32, Fashion-MNIST) for one epoch per
repeat, alternating verbose=0 and verbose=1 (the tqdm bar, drawn on stderr),
and prints median samples/s of each and their ratio.
"""

import argparse
import contextlib
import io
import time

import numpy as np

import fastmlp
from fastmlp.datasets import load_fashion_mnist


def epoch_rate(net, X, y, batch_size, verbose):
    start = time.perf_counter()
    with contextlib.redirect_stderr(io.StringIO()):
        net.fit(X, y, epochs=1, batch_size=batch_size, lr=0.01, verbose=verbose)
    return len(y) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[1, 128])
    args = parser.parse_args()
    (X, y), _ = load_fashion_mnist()
    X = X / np.float32(255)
    print(f"samples/s, median of {args.repeats}")
    for batch_size in args.batch_sizes:
        net = fastmlp.MLP((784, 256, 128, 10), "relu", seed=0)
        net.fit(X[:2000], y[:2000], epochs=1, batch_size=batch_size, verbose=0)  # compile
        rates = {0: [], 1: []}
        for _ in range(args.repeats):
            for verbose in rates:
                rates[verbose].append(epoch_rate(net, X, y, batch_size, verbose))
        quiet, bar = (np.median(rates[v]) for v in (0, 1))
        print(f"batch {batch_size}: verbose=0 {quiet:,.0f}  verbose=1 {bar:,.0f}  "
              f"ratio {bar / quiet:.3f}")


if __name__ == "__main__":
    main()
