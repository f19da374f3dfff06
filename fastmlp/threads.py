"""The one place that decides how many threads fastmlp uses.

Training and prediction run on Numba's threads: the matrix products share
their tiles out over them (fastmlp.kernels.blas), and ``fit(shards=True)``
gives each a shard of the minibatch. No BLAS library is called, so no other
library's thread pool is touched. Numba's thread count is a setting of each
Python thread: fits running at once in several Python threads each keep
their own, and the results do not depend on it.
"""

import numbers
from contextlib import contextmanager

import numba

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
    if isinstance(n, bool) or not isinstance(n, numbers.Integral) or not 1 <= n <= limit:
        raise ValueError(f"n_threads must be an integer from 1 to {limit} "
                         f"(NUMBA_NUM_THREADS), got {n!r}")
    return int(n)


@contextmanager
def using(n):
    """Run the block on n of Numba's threads (in this Python thread)."""
    previous = numba.get_num_threads()
    numba.set_num_threads(n)
    try:
        yield
    finally:
        numba.set_num_threads(previous)
