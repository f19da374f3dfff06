"""What an epoch costs beyond its compiled work, in MLP.fit and in the estimators.

    python benchmarks/overhead.py [--repeats 5] [--epochs 300]

On the digits shipped with fastmlp (1,437 training images, batch 200, Adam,
64-100-10 relu, 2 threads): a whole ``MLPClassifier`` fit (tol=0, so that it
runs every epoch) and a whole ``MLP.fit``, with the Trainer's compiled calls
timed one by one inside them. What the fit took beyond those calls, per
epoch, is the Python work of an epoch: shuffling (``rng.permutation``, the
same order the reference replays), the chunk loop, the finiteness checks,
the history and the estimators' schedule and loss curve. Prints medians;
the timer itself adds about 0.1 us per compiled call.
"""

import argparse
import time
import warnings

import numpy as np

import fastmlp
from fastmlp.datasets import load_digits
from fastmlp.trainer import Trainer

inside = [0.0]  # seconds spent in compiled calls


def timed_compiled_step(make_step):
    def compiled_step(self):
        step = make_step(self)

        def timed(*args):
            started = time.perf_counter()
            result = step(*args)
            inside[0] += time.perf_counter() - started
            return result
        return timed
    return compiled_step


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=300)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    fastmlp.set_num_threads(2)
    Trainer._compiled_step = timed_compiled_step(Trainer._compiled_step)
    (X, y), _ = load_digits()
    fits = {
        "MLPClassifier": lambda epochs: fastmlp.MLPClassifier(
            random_state=0, max_iter=epochs, tol=0, n_iter_no_change=10**9).fit(X, y),
        "MLP.fit": lambda epochs: fastmlp.MLP((64, 100, 10), seed=0).fit(
            X, y, epochs=epochs, batch_size=200, lr=1e-3, optimizer="adam", verbose=0),
    }
    for fit in fits.values():
        fit(2)  # compile, or load from the cache
    rows = {name: [] for name in fits}
    for _ in range(args.repeats):
        for name, fit in fits.items():
            time.sleep(0.5)
            inside[0] = 0.0
            started = time.perf_counter()
            fit(args.epochs)
            total = time.perf_counter() - started
            rows[name].append((total / args.epochs, inside[0] / args.epochs))
    for name, runs in rows.items():
        per_epoch, compiled = np.median(runs, axis=0)
        print(f"{name}: {per_epoch * 1e6:.0f} us per epoch, of which compiled "
              f"{compiled * 1e6:.0f} us and {(per_epoch - compiled) * 1e6:.0f} us beyond")


if __name__ == "__main__":
    main()
