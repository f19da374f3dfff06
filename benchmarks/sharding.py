"""Which way to use the threads, per net and batch size: shards or shared products.

    python benchmarks/sharding.py [--repeats 5] [--batch-sizes 16 128 512]

Trains the 784-100-10 sigmoid and 784-256-128-10 relu nets (float32,
Fashion-MNIST) for one epoch per repeat, with minibatches split into one shard
per Numba thread, and unsplit with each matrix product's tiles shared out over
the threads, alternating the two; prints median samples/s. fit's default (no shards)
comes from this.
"""

import argparse
import time

import numpy as np

import fastmlp
from fastmlp.datasets import load_fashion_mnist


NETS = {"784-100-10 sigmoid": ((784, 100, 10), "sigmoid"),
        "784-256-128-10 relu": ((784, 256, 128, 10), "relu")}


def epoch_rate(net, X, y, batch_size, shards):
    net = fastmlp.MLP(*NETS[net], seed=0)
    start = time.perf_counter()
    net.fit(X, y, epochs=1, batch_size=batch_size, lr=0.01, verbose=0, shards=shards)
    return len(y) / (time.perf_counter() - start)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 32, 64, 128, 512])
    args = parser.parse_args()
    (X, y), _ = load_fashion_mnist()
    X = X / np.float32(255)
    strategies = {"shards": True, "shared products": False}
    print(f"threads {fastmlp.get_num_threads()}; samples/s, median of {args.repeats}")
    print("| net | batch | " + " | ".join(strategies) + " |\n|---|---|---|---|")
    for net in NETS:
        for batch_size in args.batch_sizes:
            n = min(len(y), 4000 * batch_size)
            for shards in strategies.values():  # warm-up and compile
                epoch_rate(net, X[:2000], y[:2000], batch_size, shards)
            rates = {name: [] for name in strategies}
            for _ in range(args.repeats):
                for name, shards in strategies.items():
                    rates[name].append(epoch_rate(net, X[:n], y[:n], batch_size, shards))
            print(f"| {net} | {batch_size} | "
                  + " | ".join(f"{np.median(r):,.0f}" for r in rates.values()) + " |", flush=True)


if __name__ == "__main__":
    main()
