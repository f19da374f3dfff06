"""Numba's disk cache: each compiled variant is stored and found as itself, and
a fit compiles the loss and optimizer rule it uses, not the others."""

import json
import os
import subprocess
import sys

# Fits one epoch unsharded (serial train_batches) or in shards (threaded) and
# reports which train_batches variants hit or missed the cache, then which
# loss and optimizer-rule kernels this process compiled or loaded.
SCRIPT = """
import json, sys
import numpy as np
import fastmlp
from fastmlp.kernels import batch_trainer, losses, optim
rng = np.random.default_rng(0)
X, y = rng.random((64, 20), dtype=np.float32), rng.integers(0, 3, 64)
fastmlp.MLP((20, 8, 3), seed=0).fit(X, y, epochs=1, batch_size=16, n_threads=2,
                                   shards=sys.argv[1] == "shards", verbose=0)
print(json.dumps({name: [sum(getattr(kernel.stats, kind).values())
                         for kind in ("cache_hits", "cache_misses")]
                  for name, kernel in [("serial", batch_trainer(losses.SOFTMAX_CROSS_ENTROPY,
                                                                optim.SGD, False)),
                                       ("parallel", batch_trainer(losses.SOFTMAX_CROSS_ENTROPY,
                                                                  optim.SGD, True))]}))
kernels = [losses.softmax_cross_entropy, losses.binary_cross_entropy,
           losses.mean_squared_error, optim._sgd, optim._momentum, optim._adam]
print(json.dumps([k.__name__ for k in kernels if k.signatures]))
"""


def run(cache_dir, way):
    """({variant: [cache hits, cache misses]}, [loss and rule kernels used])
    of one fresh process."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), NUMBA_NUM_THREADS="2")
    result = subprocess.run([sys.executable, "-c", SCRIPT, way], env=env,
                            capture_output=True, text=True, timeout=600, check=True)
    return [json.loads(line) for line in result.stdout.splitlines()]


def cache_use(cache_dir, way):
    return run(cache_dir, way)[0]


def test_serial_and_parallel_train_batches_are_cached_apart(tmp_path):
    # Both variants come from one Python function: were they one cache entry,
    # the threaded variant would load the serial code compiled before it.
    assert cache_use(tmp_path, "whole") == {"serial": [0, 1], "parallel": [0, 0]}
    assert cache_use(tmp_path, "shards") == {"serial": [0, 0], "parallel": [0, 1]}
    assert cache_use(tmp_path, "shards") == {"serial": [0, 0], "parallel": [1, 0]}
    assert cache_use(tmp_path, "whole") == {"serial": [1, 0], "parallel": [0, 0]}


def test_a_fit_compiles_only_its_loss_and_rule(tmp_path):
    # Sharded, the update loop runs (unsharded plain SGD writes its step in place).
    assert run(tmp_path, "shards")[1] == ["softmax_cross_entropy", "_sgd"]


NOTICE_SCRIPT = """
import numpy as np
import fastmlp
rng = np.random.default_rng(0)
X, y = rng.random((64, 20), dtype=np.float32), rng.integers(0, 3, 64)
for verbose in (2, 0):
    fastmlp.MLP((20, 8, 3), seed=0).fit(X, y, epochs=1, batch_size=16, verbose=verbose)
"""


def test_a_verbose_first_fit_says_it_compiles_once(tmp_path):
    env = dict(os.environ, NUMBA_CACHE_DIR=str(tmp_path))
    runs = [subprocess.run([sys.executable, "-c", NOTICE_SCRIPT], env=env, capture_output=True,
                           text=True, timeout=600, check=True).stdout for _ in range(2)]
    notices = [[line for line in out.splitlines() if line.startswith("fastmlp: compiling")]
               for out in runs]
    assert notices[0] == ["fastmlp: compiling the training loop for float32, "
                          "softmax_cross_entropy and SGD (once: later runs load it from "
                          "Numba's cache)"]
    assert notices[1] == []  # loaded from the cache
