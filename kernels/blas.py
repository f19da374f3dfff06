"""General matrix multiply with BLAS' alpha and beta: C = alpha * A @ B + beta * C.

``np.dot`` in Numba can only overwrite C. Training writes a plain SGD step
straight into the weights, W = shrink * W - lr * X.T @ dZ, which needs beta.
This calls the same BLAS routine as Numba's ``np.dot`` (``numba_xxgemm``,
SciPy's OpenBLAS), so threads and results follow the same library.
"""

from numba import types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload
from numba.np.linalg import _BLAS, get_blas_kind  # Numba's own np.dot bindings

from ._jit import kernel


@intrinsic
def _pointer_to(typingctx, x):
    """A pointer to a copy of the scalar x on the caller's stack."""
    def codegen(context, builder, signature, args):
        return cgutils.alloca_once_value(builder, args[0])
    return types.CPointer(x)(x), codegen


def _xxgemm(C, A, B, alpha, beta):
    raise NotImplementedError("compiled only: call gemm")


@overload(_xxgemm)
def _xxgemm_typed(C, A, B, alpha, beta):
    for name, array in [("C", C), ("A", A), ("B", B)]:
        if not (isinstance(array, types.Array) and array.ndim == 2
                and array.layout in "CF" and array.dtype == C.dtype):
            raise TypingError(f"gemm: {name} must be a 2-D C- or F-contiguous array "
                              f"of {C.dtype}, got {array}")
    if C.layout != "C":
        raise TypingError("gemm: C must be C-contiguous")
    xxgemm = _BLAS().numba_xxgemm(C.dtype)
    kind = ord(get_blas_kind(C.dtype))
    # BLAS is column-major, where row-major C = A @ B reads C.T = B.T @ A.T: so
    # B comes first, and an operand in F order is the transpose of a C array,
    # whose leading dimension is its number of rows.
    a_transposed, b_transposed = A.layout == "F", B.layout == "F"
    trans_a, trans_b = ord("t" if a_transposed else "n"), ord("t" if b_transposed else "n")
    dtype = C.dtype

    def impl(C, A, B, alpha, beta):
        m, n = C.shape
        k = A.shape[1]
        lda = A.shape[0] if a_transposed else A.shape[1]
        ldb = B.shape[0] if b_transposed else B.shape[1]
        status = xxgemm(kind, trans_b, trans_a, n, m, k, _pointer_to(dtype(alpha)), B.ctypes,
                        ldb, A.ctypes, lda, _pointer_to(dtype(beta)), C.ctypes, n)
        if status != 0:
            raise RuntimeError("BLAS gemm failed")
    return impl


@kernel
def gemm(C, A, B, alpha, beta):
    """C = alpha * A @ B + beta * C; with beta = 0, C is only written.

    C : (m, n) C-contiguous; A : (m, k), B : (k, n), each C-contiguous or the
    transpose of a C-contiguous array (X.T); all of one float dtype.
    """
    if A.shape[0] != C.shape[0] or B.shape[1] != C.shape[1] or A.shape[1] != B.shape[0]:
        raise ValueError("gemm: shapes do not align")
    _xxgemm(C, A, B, alpha, beta)
