"""Compiler options for every kernel, in one place.

Loops that should run on several threads use ``prange`` and are compiled
twice, serial with ``kernel`` and threaded with ``parallel_kernel``.
``cache=True`` keeps the compiled code on disk between runs; ``nogil=True`` lets
kernels run from Python threads in parallel; ``error_model="numpy"`` drops the
Python-style division checks from the inner loops.

``helper`` marks a small function (offsets, views, scalar formulas) that is
compiled into each compiled caller instead of as a kernel of its own: a
kernel costs about 0.1 s of compile time for its wrapper and cache entry
alone, a helper a fraction of that; called from Python, a helper is the plain
Python function.

``inline_kernel`` is copied into each compiled caller instead of being called:
the dispatchers on a loss or optimizer code use it, so that a caller where the
code is a compile-time constant (a closure variable) has the other branches
pruned before typing and compiles one loss and one rule, not all of them.

``vector_kernel`` adds the fastmath flags that let LLVM vectorise sums and
dot products (reassociation, fused multiply-add), for the dense inner loops
only: reassociation changes results by rounding alone, the same binary gives
the same bits run after run, and the losses keep strict IEEE order, where it
would cancel large terms. The full fastmath set would also assume there are no
NaN or inf values, which the trainer checks for.
"""

import numba
import numba.extending

OPTIONS = dict(cache=True, nogil=True, error_model="numpy")

kernel = numba.njit(**OPTIONS)
vector_kernel = numba.njit(fastmath={"reassoc", "contract", "nsz"}, **OPTIONS)
parallel_kernel = numba.njit(parallel=True, **OPTIONS)
inline_kernel = numba.njit(inline="always", **OPTIONS)
helper = numba.extending.register_jitable


def cast_like(a, x):
    """x as a scalar of a's dtype, for kernels: float64 constants would
    otherwise turn float32 loops into float64 ones."""
    return a.dtype.type(x)


@numba.extending.overload(cast_like)
def _cast_like(a, x):
    dtype = a.dtype
    return lambda a, x: dtype(x)
