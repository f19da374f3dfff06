"""The same epoch as bench_train.TrainEpoch with the peers a user would pick
instead: JAX (the epoch one jitted lax.scan), PyTorch (CPU, eager) and
scikit-learn's MLPClassifier, each on common.THREADS threads. Each is skipped
when its package is missing (they are in the ``bench`` extra).

asv runs each benchmark in a process of its own; this module imports no peer
and not fastmlp, and setup imports only the peer it measures, so no library's
environment variables or thread pools reach another's.
"""

import time

from .common import (LR, NETS, PARAM_NAMES, PARAMS, THREADS, batch, data, jax_epoch,
                     sklearn_epoch, torch_epoch)


class _Peer:
    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300
    package = None  # the module whose absence skips the benchmark
    make = None  # common's (X, y, sizes, activation, batch_size, lr, threads) -> epoch

    def setup(self, net, batch_size, dtype):
        try:
            __import__(self.package)
        except ImportError:
            raise NotImplementedError(f"{self.package} is not installed")
        self.X, self.y = data(batch_size, dtype)
        sizes, activation = NETS[net]
        self.epoch = self.make(self.X, self.y, sizes, activation,
                               batch(batch_size, len(self.y)), LR, THREADS)
        self.epoch()  # warm-up outside the timing: compilation, allocation

    def time_epoch(self, net, batch_size, dtype):
        self.epoch()

    def track_samples_per_second(self, net, batch_size, dtype):
        start = time.perf_counter()
        self.epoch()
        return len(self.y) / (time.perf_counter() - start)

    track_samples_per_second.unit = "samples/s"


class JaxEpoch(_Peer):
    """The whole epoch one jitted call: shuffle, lax.scan over the batches, SGD."""
    package = "jax"
    make = staticmethod(jax_epoch)


class TorchEpoch(_Peer):
    """A tight loop over pre-made tensors: randperm, cross_entropy, optimizer.step."""
    package = "torch"
    make = staticmethod(torch_epoch)


class SklearnEpoch(_Peer):
    """MLPClassifier, solver sgd, no momentum, no penalty, one pass of partial_fit."""
    package = "sklearn"
    make = staticmethod(sklearn_epoch)
