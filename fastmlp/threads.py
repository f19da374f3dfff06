"""The one place that decides how many threads fastmlp uses.

Numba's threads run shards of a minibatch; BLAS (SciPy's OpenBLAS, which
Numba's ``np.dot`` calls) has a thread pool of its own. Training uses one or
the other, never both at once, so the two never oversubscribe the cores.
"""

import os
from contextlib import contextmanager

# Idle OpenMP threads must sleep, not spin: spinning Numba threads left over
# from a sharded fit slowed threaded BLAS 12-fold here (benchmarks/sharding.py).
# Read when Numba first starts its OpenMP pool, so set before that happens.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

import numba
import scipy.linalg.cython_blas  # noqa: F401  loads SciPy's OpenBLAS so the limits reach it
from threadpoolctl import threadpool_limits

_default = numba.config.NUMBA_NUM_THREADS


def set_num_threads(n):
    """Threads for fastmlp's training and prediction from now on, 1..NUMBA_NUM_THREADS
    (fixed when Numba is imported, by default the number of cores)."""
    global _default
    _default = check_threads(n)


def get_num_threads():
    return _default


def check_threads(n):
    """n, or the default when None; raises for anything but 1..NUMBA_NUM_THREADS."""
    if n is None:
        return _default
    limit = numba.config.NUMBA_NUM_THREADS
    if isinstance(n, bool) or not isinstance(n, int) or not 1 <= n <= limit:
        raise ValueError(f"n_threads must be an integer from 1 to {limit} "
                         f"(NUMBA_NUM_THREADS), got {n!r}")
    return n


@contextmanager
def using(numba_threads, blas_threads):
    """Run the block with the given Numba thread count (in this Python thread)
    and BLAS thread count."""
    previous = numba.get_num_threads()
    numba.set_num_threads(numba_threads)
    try:
        with threadpool_limits(blas_threads, user_api="blas"):
            yield
    finally:
        numba.set_num_threads(previous)
