"""Shapes, parameters and data shared by the fastmlp and peer benchmarks."""

import numpy as np

NETS = {"784-100-10 sigmoid": ((784, 100, 10), "sigmoid"),
        "784-256-128-10 relu": ((784, 256, 128, 10), "relu")}
# Samples per epoch: fewer for small batches, to keep one epoch around a second.
SAMPLES = {"1": 2000, "16": 10000, "128": 10000, "512": 10000, "full": 10000}
PARAMS = (list(NETS), list(SAMPLES), ["float32", "float64"])
PARAM_NAMES = ["net", "batch_size", "dtype"]
LR = 0.01


def data(batch_size, dtype, scale=1):
    """Synthetic MNIST-shaped inputs (n, 784) in [0, 1] and labels 0..9 (n,);
    n is SAMPLES[batch_size] divided by ``scale`` for slow implementations."""
    rng = np.random.default_rng(0)
    n = SAMPLES[batch_size] // scale
    return rng.random((n, 784), dtype=np.float32).astype(dtype), rng.integers(0, 10, n)


def batch(batch_size, n):
    return n if batch_size == "full" else int(batch_size)
