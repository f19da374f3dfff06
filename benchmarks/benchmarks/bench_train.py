"""One epoch of fastmlp training on synthetic MNIST-shaped data."""

import time

import numpy as np

import fastmlp

NETS = {"784-100-10 sigmoid": ((784, 100, 10), "sigmoid"),
        "784-256-128-10 relu": ((784, 256, 128, 10), "relu")}
# Samples per epoch: fewer for batch 1, to keep one epoch well under a second.
SAMPLES = {"1": 2000, "16": 10000, "128": 10000, "512": 10000, "full": 10000}


class TrainEpoch:
    params = (list(NETS), list(SAMPLES), ["float32", "float64"])
    param_names = ["net", "batch_size", "dtype"]
    timeout = 120

    def setup(self, net, batch_size, dtype):
        rng = np.random.default_rng(0)
        n = SAMPLES[batch_size]
        self.X = rng.random((n, 784), dtype=np.float32).astype(dtype)
        self.y = rng.integers(0, 10, n)
        self.batch_size = None if batch_size == "full" else int(batch_size)
        sizes, activation = NETS[net]
        self.net = fastmlp.MLP(sizes, activation, dtype=dtype, seed=0)
        self.epoch()  # compile (or load from the cache) outside the timing

    def epoch(self):
        self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch_size, lr=0.01,
                     verbose=0)

    def time_epoch(self, net, batch_size, dtype):
        self.epoch()

    def peakmem_epoch(self, net, batch_size, dtype):
        self.epoch()

    def track_samples_per_second(self, net, batch_size, dtype):
        start = time.perf_counter()
        self.epoch()
        return len(self.y) / (time.perf_counter() - start)

    track_samples_per_second.unit = "samples/s"
