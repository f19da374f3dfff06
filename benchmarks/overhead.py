"""What an epoch costs beyond its compiled work, in MLP.fit and in the estimators.

    python benchmarks/overhead.py [--repeats 5]

On the digits shipped with fastmlp (1,437 training images, batch 200, Adam,
64-100-10 relu, 2 threads): the marginal seconds per epoch of
``MLPClassifier(max_iter=300)`` over ``max_iter=100`` (tol=0, so both run
every epoch) and of ``MLP.fit(epochs=300)`` over ``epochs=100``, against one
epoch of the Trainer's compiled call alone. The difference is the Python
work of an epoch: shuffling, the chunk loop, the finiteness checks, the
estimators' schedule and loss curve. Prints medians.
"""

import argparse
import time
import warnings

import numpy as np

import fastmlp
from fastmlp.datasets import load_digits
from fastmlp.trainer import Trainer


def seconds(fit):
    started = time.perf_counter()
    fit()
    return time.perf_counter() - started


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args()
    warnings.simplefilter("ignore")
    fastmlp.set_num_threads(2)
    (X, y), _ = load_digits()

    def estimator(epochs):
        return lambda: fastmlp.MLPClassifier(random_state=0, max_iter=epochs, tol=0,
                                             n_iter_no_change=10**9).fit(X, y)

    def mlp(epochs):
        return lambda: fastmlp.MLP((64, 100, 10), seed=0).fit(
            X, y, epochs=epochs, batch_size=200, lr=1e-3, optimizer="adam", verbose=0)

    net = fastmlp.MLP((64, 100, 10), seed=0)
    trainer = Trainer(net, X, y, batch_size=200, optimizer="adam")
    hyper = tuple(net.dtype.type(h) for h in trainer.optimizer.hyper(1e-3))

    def compiled_epochs():
        with trainer.running():
            for _ in range(200):
                trainer._step(0, trainer.n_batches, 1e-3, hyper, 0)

    for fit in (estimator(2), mlp(2), compiled_epochs):  # compile, or load from the cache
        fit()
    rows = {"MLPClassifier": [], "MLP.fit": [], "compiled": []}
    for _ in range(args.repeats):
        time.sleep(0.5)
        for name, make in [("MLPClassifier", estimator), ("MLP.fit", mlp)]:
            rows[name].append((seconds(make(300)) - seconds(make(100))) / 200)
        rows["compiled"].append(seconds(compiled_epochs) / 200)
    compiled = np.median(rows["compiled"])
    print(f"compiled epoch alone: {compiled * 1e6:.0f} us")
    for name in ("MLP.fit", "MLPClassifier"):
        per_epoch = np.median(rows[name])
        print(f"{name}: {per_epoch * 1e6:.0f} us per epoch, "
              f"{(per_epoch - compiled) * 1e6:.0f} us beyond the compiled work")


if __name__ == "__main__":
    main()
