"""The one place that decides how many threads fastmlp uses.

Training and prediction run on Numba's threads: the matrix products share
their tiles out over them (fastmlp.kernels.blas), and ``fit(shards=True)``
gives each a shard of the minibatch. The products that BLAS computes faster
(dX = dZ @ W.T) call SciPy's BLAS from each of Numba's threads, and SciPy's
L-BFGS-B (solver="lbfgs") calls BLAS too: for the length of a fit or a
gradient BLAS runs on one thread (``blas_on_one_thread``). Numba's thread count is a setting of each
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

A fit on several threads runs each compiled chunk of batches on all of them
or, while one thread has been running faster (a machine busy with other
work), on one: ``ChunkThreads``.
"""

import numbers
import os
import threading
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


# A fit on several threads tries one thread on a quarter chunk after this
# many seconds of training, and after twice as long each time its threads stay
# the faster, up to PROBE_MOST seconds (ChunkThreads).
PROBE_FIRST, PROBE_MOST = 1.0, 16.0


class ChunkThreads:
    """The thread count of each compiled chunk of a fit that may use ``most``
    threads: ``most``, or 1 while one thread runs faster, as on a machine busy
    with other work (beside one busy core, two threads trained at 0.4-0.5x of
    one here: README, Speed). The count not in use runs one chunk after
    PROBE_FIRST seconds of training, then after doubling intervals while the
    count in use stays the faster (back to PROBE_FIRST when it loses), at
    most PROBE_MOST. Faster means fewer seconds per batch than the chunks on
    the count in use since the last probe. A per-sample chunk whose threads
    waited for one another off their cores turns to one thread at once, and
    counts as a lost probe when it was one. The results of a fit do not
    depend on its thread count, so its chunks may run on different counts."""

    def __init__(self, most):
        self.most = most
        self.current = most
        self.interval = PROBE_FIRST
        self.seconds = self.batches = 0  # on the count in use, since the last probe

    def next(self):
        """The thread count for the next chunk (always 1 when ``most`` is 1:
        the other count is then the count in use)."""
        if self.batches == 0 or self.seconds < self.interval:
            return self.current
        return 1 if self.current == self.most else self.most

    def record(self, n, seconds, batches, waited=False):
        """The chunk just run on n threads took ``seconds`` for ``batches``
        batches; ``waited``: its threads waited for one another off their cores
        (a per-sample chunk's barriers, kernels.run_samples), where one thread
        runs faster."""
        if waited and n > 1:
            if n == self.current:
                self.current, self.interval = 1, PROBE_FIRST
            else:
                self.interval = min(2 * self.interval, PROBE_MOST)
            self.seconds = self.batches = 0
            return
        if n == self.current:
            self.seconds += seconds
            self.batches += batches
            return
        if seconds * self.batches < self.seconds * batches:  # the probe ran faster
            self.current, self.interval = n, PROBE_FIRST
        else:
            self.interval = min(2 * self.interval, PROBE_MOST)
        self.seconds = self.batches = 0


_blas_lock = threading.Lock()
_blas_limited = False  # a blas_on_one_thread block holds the limit
_blas_controller = None  # threadpoolctl's view of the BLAS libraries, made once


@contextmanager
def blas_on_one_thread():
    """Run the block with every BLAS library on one thread. BLAS's thread
    count is one setting for the whole process, and OpenBLAS takes it only
    from the thread that sets it: the first block sets the limit and lifts it
    (the counts restored) when it ends, and blocks that start while it runs,
    in other Python threads, run under it and change nothing. The libraries
    are found once, with SciPy's BLAS (the one fastmlp calls) loaded first:
    a search of the loaded libraries costs 0.7 ms, a limit from the kept
    result 10 us (a gradient of a batch of 128 takes 0.7 ms)."""
    global _blas_limited, _blas_controller
    with _blas_lock:
        owner = not _blas_limited
        _blas_limited = True
        if owner and _blas_controller is None:
            import scipy.linalg.cython_blas  # noqa: F401  loaded, so that the limit reaches it
            from threadpoolctl import ThreadpoolController
            _blas_controller = ThreadpoolController()
    if not owner:
        yield
        return
    try:
        with _blas_controller.limit(limits=1, user_api="blas"):
            yield
    finally:
        with _blas_lock:
            _blas_limited = False
