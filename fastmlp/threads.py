"""The one place that decides how many threads fastmlp uses.

Numba's threads run shards of a minibatch; BLAS (SciPy's OpenBLAS, which
Numba's ``np.dot`` calls) has a thread pool of its own. Training uses one or
the other, never both at once, so the two never oversubscribe the cores.

Numba's count is per Python thread; BLAS's is one setting for the whole
process, and results depend on it (a GEMM split over more threads adds in
another order). Fits running at once in several Python threads therefore
share it: those that need the count in force run together, one that needs
another count waits until they are done. No fit sees its BLAS count change
under it, and the last one out restores the limits from before, whichever
Python thread it runs in.

Nothing here touches the process environment or another library's settings
outside a running fit: the limits are set on entering a fit and restored on
leaving it.
"""

import functools
import numbers
import threading
from contextlib import contextmanager

import numba
import scipy.linalg.cython_blas  # noqa: F401  loads SciPy's OpenBLAS so the limits reach it
import threadpoolctl

_default = numba.config.NUMBA_NUM_THREADS

_blas_turn = threading.Condition()
_blas = {"threads": None, "users": 0, "limiter": None}  # the count in force while users > 0
_holding = threading.local()  # how many fits this Python thread is running (callbacks nest)


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


def _as_blas_controller(action):
    """Run ``action`` (which sets BLAS limits) so that it takes effect from any
    Python thread. threadpoolctl 3.8 lets only the first thread that limits a
    pthreads OpenBLAS change it, until that thread lets go, and silently
    ignores the others: take that role for the call, then let go."""
    release = getattr(getattr(threadpoolctl, "OpenBLASController", None),
                      "clear_controlling_thread", None)
    if release is not None:
        release(force=True)
    try:
        return action()
    finally:
        if release is not None:
            release()


@functools.cache
def _blas_libraries():
    """threadpoolctl's controller of the BLAS libraries loaded by now (SciPy's,
    which Numba calls, is loaded above), found once: ``threadpool_limits``
    searches the process's libraries again at every call, 0.8 ms, most of a
    small epoch's fit (the estimators fit one epoch per call)."""
    return threadpoolctl.ThreadpoolController()


@contextmanager
def _blas_threads(n):
    """Hold BLAS at n threads for the block, waiting while other Python threads
    hold it at another count. A fit started from a callback of a fit in this
    thread takes the count in force: waiting would never end."""
    nested = getattr(_holding, "depth", 0) > 0
    with _blas_turn:
        _blas_turn.wait_for(lambda: nested or _blas["users"] == 0 or _blas["threads"] == n)
        if _blas["users"] == 0:
            _blas.update(threads=n, limiter=_as_blas_controller(
                lambda: _blas_libraries().limit(limits=n, user_api="blas")))
        _blas["users"] += 1
    _holding.depth = getattr(_holding, "depth", 0) + 1
    try:
        yield
    finally:
        _holding.depth -= 1
        with _blas_turn:
            _blas["users"] -= 1
            if _blas["users"] == 0:
                _as_blas_controller(_blas["limiter"].restore_original_limits)
                _blas.update(threads=None, limiter=None)
                _blas_turn.notify_all()


@contextmanager
def using(numba_threads, blas_threads):
    """Run the block with the given Numba thread count (in this Python thread)
    and BLAS thread count (shared with the fits of other Python threads)."""
    previous = numba.get_num_threads()
    numba.set_num_threads(numba_threads)
    try:
        with _blas_threads(blas_threads):
            yield
    finally:
        numba.set_num_threads(previous)
