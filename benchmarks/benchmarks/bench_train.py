"""One epoch of fastmlp training on synthetic MNIST-shaped data, and of its
NumPy reference."""

import time

import numpy as np

import fastmlp
from fastmlp import reference

from .common import LR, NETS, PARAM_NAMES, PARAMS, batch, data


class TrainEpoch:
    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 120

    def setup(self, net, batch_size, dtype):
        self.X, self.y = data(batch_size, dtype)
        self.batch_size = None if batch_size == "full" else int(batch_size)
        self.net = fastmlp.MLP(*NETS[net], dtype=dtype, seed=0)
        self.epoch()  # compile (or load from the cache) outside the timing

    def epoch(self):
        self.net.fit(self.X, self.y, epochs=1, batch_size=self.batch_size, lr=LR, verbose=0)

    def time_epoch(self, net, batch_size, dtype):
        self.epoch()

    def peakmem_epoch(self, net, batch_size, dtype):
        self.epoch()

    def track_samples_per_second(self, net, batch_size, dtype):
        start = time.perf_counter()
        self.epoch()
        return len(self.y) / (time.perf_counter() - start)

    track_samples_per_second.unit = "samples/s"


class ReferenceEpoch(TrainEpoch):
    """fastmlp.reference.train: readable float64 NumPy, on a fifth of the data."""

    def setup(self, net, batch_size, dtype):
        self.X, self.y = data(batch_size, dtype, scale=5)
        sizes, activation = NETS[net]
        params = fastmlp.MLP(sizes, activation, dtype="float64", seed=0).params
        X, T = self.X.astype(np.float64), np.eye(10)[self.y]
        rng, size = np.random.default_rng(0), batch(batch_size, len(self.y))
        self.epoch = lambda: reference.train(params, sizes, activation, "identity",
                                             "softmax_cross_entropy", X, T,
                                             [rng.permutation(len(self.y))], size, LR)
        self.epoch()
