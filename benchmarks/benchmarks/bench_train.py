"""One epoch of fastmlp training on synthetic MNIST-shaped data."""

import time

import fastmlp

from .common import LR, NETS, PARAM_NAMES, PARAMS, data


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
