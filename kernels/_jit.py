"""Compiler options for every kernel, in one place.

Loops that should run on several threads use ``prange`` and are compiled
twice, serial with ``kernel`` and threaded with ``parallel_kernel``.
``cache=True`` keeps the compiled code on disk between runs; ``nogil=True`` lets
kernels run from Python threads in parallel; ``error_model="numpy"`` drops the
Python-style division checks from the inner loops. No ``fastmath``: it would
let LLVM assume there are no NaN or inf values, and the trainer checks for them.
"""

import numba

OPTIONS = dict(cache=True, nogil=True, error_model="numpy")

kernel = numba.njit(**OPTIONS)
parallel_kernel = numba.njit(parallel=True, **OPTIONS)
