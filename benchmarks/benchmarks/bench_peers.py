"""The same epoch as bench_train.TrainEpoch with the peers a user would pick
instead: PyTorch (CPU), scikit-learn's MLPClassifier, and fastmlp's NumPy
reference. Each is skipped when its package is missing."""

import time

import numpy as np

import fastmlp
from fastmlp import reference
from fastmlp.registry import ACTIVATIONS

from .common import LR, NETS, PARAM_NAMES, PARAMS, batch, data


class _Peer:
    params = PARAMS
    param_names = PARAM_NAMES
    timeout = 300
    scale = 1  # data() divisor for slow peers

    def setup(self, net, batch_size, dtype):
        self.X, self.y = data(batch_size, dtype, self.scale)
        self.epoch = self.make(NETS[net], batch(batch_size, len(self.y)), dtype)
        self.epoch()  # warm-up outside the timing

    def time_epoch(self, net, batch_size, dtype):
        self.epoch()

    def track_samples_per_second(self, net, batch_size, dtype):
        start = time.perf_counter()
        self.epoch()
        return len(self.y) / (time.perf_counter() - start)

    track_samples_per_second.unit = "samples/s"


class TorchEpoch(_Peer):
    """A tight loop over pre-made tensors, torch.set_num_threads equal to fastmlp's."""

    def make(self, net, batch_size, dtype):
        try:
            import torch
        except ImportError:
            raise NotImplementedError("torch is not installed")
        torch.set_num_threads(fastmlp.get_num_threads())
        torch.manual_seed(0)
        (sizes, activation) = net
        act = torch.nn.ReLU if activation == "relu" else torch.nn.Sigmoid
        layers = []
        for fan_in, fan_out in zip(sizes, sizes[1:]):
            layers += [torch.nn.Linear(fan_in, fan_out), act()]
        model = torch.nn.Sequential(*layers[:-1]).to(getattr(torch, dtype))
        optimizer = torch.optim.SGD(model.parameters(), lr=LR, momentum=0)
        X, y = torch.from_numpy(self.X), torch.from_numpy(self.y)

        def epoch():
            order = torch.randperm(len(y))
            for s in range(0, len(y), batch_size):
                rows = order[s:s + batch_size]
                loss = torch.nn.functional.cross_entropy(model(X[rows]), y[rows])
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
        return epoch


class SklearnEpoch(_Peer):
    """MLPClassifier, solver sgd, no momentum, no penalty, one pass of partial_fit."""

    def make(self, net, batch_size, dtype):
        try:
            from sklearn.neural_network import MLPClassifier
        except ImportError:
            raise NotImplementedError("scikit-learn is not installed")
        (sizes, activation) = net
        model = MLPClassifier(sizes[1:-1], activation=ACTIVATIONS[activation].sklearn_name,
                              solver="sgd", alpha=0.0, batch_size=batch_size,
                              learning_rate_init=LR, momentum=0.0, nesterovs_momentum=False,
                              random_state=0)
        classes = np.arange(10)
        return lambda: model.partial_fit(self.X, self.y, classes=classes)


class ReferenceEpoch(_Peer):
    """fastmlp.reference.train: readable float64 NumPy, on a fifth of the data."""
    scale = 5

    def make(self, net, batch_size, dtype):
        (sizes, activation) = net
        params = fastmlp.MLP(sizes, activation, dtype="float64", seed=0).params
        X, T = self.X.astype(np.float64), np.eye(10)[self.y]
        rng = np.random.default_rng(0)
        return lambda: reference.train(params, sizes, activation, "identity",
                                       "softmax_cross_entropy", X, T,
                                       [rng.permutation(len(self.y))], batch_size, LR)
