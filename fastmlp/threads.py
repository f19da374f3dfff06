"""The one place that decides how many threads fastmlp uses.

Training and prediction run on Numba's threads: the matrix products share
their tiles out over them (fastmlp.kernels.blas), and ``fit(shards=True)``
gives each a shard of the minibatch. No BLAS library is called, so no other
library's thread pool is touched. Numba's thread count is a setting of each
Python thread: fits running at once in several Python threads each keep
their own, and the results do not depend on it.

The default, read once when fastmlp is imported, is Numba's thread count
(``NUMBA_NUM_THREADS``, by default the cores this process may run on),
lowered to ``OMP_NUM_THREADS`` when the environment sets that to a positive
integer (its first entry, for a nested list such as "4,2"). That is the
limit a parent sets for each process's numerical libraries, which Numba does
not read: Dask's nanny sets it to 1 in its workers, which run one task per
worker thread, so that a search's fits there do not oversubscribe the
cores. fastmlp reads the environment and never writes it.
``set_num_threads`` and ``fit(n_threads=...)`` override the default.
"""

import numbers
import os
from contextlib import contextmanager

import numba


def _environment_limit():
    """OMP_NUM_THREADS's first entry as an int when it is a positive integer,
    else None."""
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()
    return int(first) if first.isdigit() and int(first) > 0 else None


_default = min(numba.config.NUMBA_NUM_THREADS,
               _environment_limit() or numba.config.NUMBA_NUM_THREADS)


def set_num_threads(n):
    """Threads for fastmlp's training and prediction from now on, 1..NUMBA_NUM_THREADS
    (fixed when Numba is imported, by default the number of cores)."""
    global _default
    _default = check_threads(n)


def get_num_threads():
    """The threads fastmlp's training and prediction use when not told: the
    last ``set_num_threads``, else the default of the module docstring."""
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
