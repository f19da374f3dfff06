"""fit copies the training set at most once: into the model's dtype, when it
is not already C-contiguous in it. Besides that it allocates the boolean mask
of the NaN check (one byte per value) and buffers for one batch."""

import tracemalloc

import numpy as np
import pytest

import fastmlp

SLACK = 1 << 20  # weights, gradients, optimizer state and batch buffers: well under 1 MB


@pytest.mark.parametrize("batch_size", [1, 16, 128, None])
@pytest.mark.parametrize("input_dtype, copies", [(np.float32, 0), (np.float64, 1)])
def test_fit_copies_the_training_set_at_most_once(batch_size, input_dtype, copies):
    rng = np.random.default_rng(0)
    X = rng.random((20000, 784)).astype(input_dtype)
    y = rng.integers(0, 10, len(X))
    net = fastmlp.MLP((784, 32, 10), seed=0)
    net.fit(X[:100], y[:100], epochs=1, batch_size=batch_size, verbose=0)  # compile first
    tracemalloc.start()
    net.fit(X, y, epochs=1, batch_size=batch_size, verbose=0)
    _, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    float32_copy = X.size * 4
    assert peak <= copies * float32_copy + X.size + SLACK
