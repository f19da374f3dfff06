"""Training on sparse input against training on the same data densified.

    python benchmarks/sparse.py [--rows 5000] [--repeats 5] [--threads 1 2]

Text-like data: ``scipy.sparse.random(rows, 20000, density=0.005,
format="csr", random_state=0)`` (100 stored entries a row), 10 classes, a
20000-100-10 relu net in float32. For each optimizer (plain SGD, which
writes its step into the rows of W the batch touches; Adam, which updates
all 2M parameters every step), batch size (200, scikit-learn's default; 32)
and thread count, one Trainer on the CSR matrix and one on its float32
toarray(), built outside the timing; one untimed epoch each, then timed
epochs alternating sparse and dense. Prints the median epoch times, the
median of the paired ratios, and the memory each form of the training set
takes.
"""

import argparse
import time

import numpy as np
import scipy.sparse

import fastmlp
from fastmlp.trainer import Trainer

FEATURES, DENSITY, CLASSES, HIDDEN = 20000, 0.005, 10, 100


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=5000)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    args = parser.parse_args()
    X = scipy.sparse.random(args.rows, FEATURES, density=DENSITY, format="csr",
                            random_state=0, dtype=np.float32)
    y = np.random.default_rng(0).integers(0, CLASSES, args.rows)
    inputs = {"sparse": X, "dense": X.toarray()}
    sparse_bytes = X.data.nbytes + X.indices.nbytes + X.indptr.nbytes
    print(f"{args.rows} x {FEATURES}, {X.nnz} stored entries: CSR {sparse_bytes / 1e6:.1f} MB, "
          f"dense {inputs['dense'].nbytes / 1e6:.0f} MB; medians of {args.repeats} epochs\n")
    print("| optimizer | batch | threads | sparse epoch | dense epoch | dense / sparse |\n"
          "|---|---|---|---|---|---|")
    for optimizer, lr in [("sgd", 0.01), ("adam", 0.001)]:
        for batch in (200, 32):
            for threads in args.threads:
                trainers = {}
                for kind, data in inputs.items():
                    net = fastmlp.MLP((FEATURES, HIDDEN, CLASSES), seed=0)
                    trainers[kind] = Trainer(net, data, y, batch_size=batch,
                                             optimizer=optimizer, seed=0, n_threads=threads)
                    trainers[kind].epoch(lr)  # compile or load, and warm up
                seconds = {kind: [] for kind in trainers}
                for _ in range(args.repeats):
                    for kind, trainer in trainers.items():
                        started = time.perf_counter()
                        trainer.epoch(lr)
                        seconds[kind].append(time.perf_counter() - started)
                ratio = np.median(np.divide(seconds["dense"], seconds["sparse"]))
                sparse_s, dense_s = (np.median(seconds[kind]) for kind in ("sparse", "dense"))
                print(f"| {optimizer} | {batch} | {threads} | {sparse_s * 1e3:.1f} ms | "
                      f"{dense_s * 1e3:.0f} ms | {ratio:.1f}x |", flush=True)


if __name__ == "__main__":
    main()
