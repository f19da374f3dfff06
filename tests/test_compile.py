"""Numba's disk cache: each compiled variant is stored and found as itself."""

import json
import os
import subprocess
import sys

# Fits one epoch unsharded (serial train_batches) or in shards (threaded) and
# reports which train_batches variants hit or missed the cache.
SCRIPT = """
import json, sys
import numpy as np
import fastmlp
from fastmlp import kernels
rng = np.random.default_rng(0)
X, y = rng.random((64, 20), dtype=np.float32), rng.integers(0, 3, 64)
fastmlp.MLP((20, 8, 3), seed=0).fit(X, y, epochs=1, batch_size=16, n_threads=2,
                                   shards=sys.argv[1] == "shards", verbose=0)
print(json.dumps({name: [sum(getattr(kernel.stats, kind).values())
                         for kind in ("cache_hits", "cache_misses")]
                  for name, kernel in [("serial", kernels.train_batches),
                                       ("parallel", kernels.train_batches_parallel)]}))
"""


def cache_use(cache_dir, way):
    """{variant: [cache hits, cache misses]} of one fresh process."""
    env = dict(os.environ, NUMBA_CACHE_DIR=str(cache_dir), NUMBA_NUM_THREADS="2")
    result = subprocess.run([sys.executable, "-c", SCRIPT, way], env=env,
                            capture_output=True, text=True, timeout=600, check=True)
    return json.loads(result.stdout)


def test_serial_and_parallel_train_batches_are_cached_apart(tmp_path):
    # Both variants come from one Python function: were they one cache entry,
    # the threaded variant would load the serial code compiled before it.
    assert cache_use(tmp_path, "whole") == {"serial": [0, 1], "parallel": [0, 0]}
    assert cache_use(tmp_path, "shards") == {"serial": [0, 0], "parallel": [0, 1]}
    assert cache_use(tmp_path, "shards") == {"serial": [0, 0], "parallel": [1, 0]}
    assert cache_use(tmp_path, "whole") == {"serial": [1, 0], "parallel": [0, 0]}
