"""General matrix multiply with BLAS' alpha and beta: C = alpha * A @ B + beta * C.

Computed on the register tiles of simd.py, shared out over Numba's threads,
instead of calling a BLAS library: the OpenBLAS builds that NumPy and SciPy ship run AVX2 code on
this AVX-512 machine, and on the training step's shapes (a few to a few
hundred rows against 10 to 784 columns) the tiles ran at twice their rate
(``python benchmarks/gemm.py``). Every element of C is one tile's sum in a
fixed order, so results do not depend on thread counts.

Training writes a plain SGD step straight into the weights,
W = shrink * W - lr * X.T @ dZ, which needs beta.
"""

from numba import prange
from numba.core.errors import TypingError
from numba.extending import overload

from ._jit import cast_like, helper, parallel_kernel
from .simd import tile_nn, tile_nt
from .target import HOST

# Steps of the sum a tile_nn runs before its partial sums go back to C: the
# rows of B it reads (256 x 48 columns, 48 KB in float32) are read again by
# every row block, and stay in cache only if this is short. A full batch of
# 10,000 made dW = X.T @ dZ read B's 10,000 rows, 1.9 MB, once per row block.
DEPTH = 256
# Runs of tiles a product is cut into; Numba gives each of its threads (as many
# as ``numba.get_num_threads()`` where the product is called) an equal share
# of consecutive runs. A constant, not the thread count: compiled code that
# asks Numba for the thread count cannot be cached.
PARTS = 64


@helper
def _nn_tiles(C, A, B, alpha, beta, part, parts):
    """Part ``part`` of ``parts`` of the tiles of C = alpha * A @ B + beta * C,
    for B with contiguous rows and A of any strides (A or a transposed array).
    Tiles go row block by row block: the threads' shares are runs of whole
    row blocks, equal work where the column blocks differ in width."""
    m, n = C.shape
    k = A.shape[1]
    lanes, rows, vectors = HOST.vector_bytes // C.itemsize, HOST.rows, HOST.vectors
    sa_r, sa_p = A.strides[0] // A.itemsize, A.strides[1] // A.itemsize
    ldb = B.strides[0] // B.itemsize
    column_blocks = (n + vectors * lanes - 1) // (vectors * lanes)
    tiles = column_blocks * ((m + rows - 1) // rows)
    for p in range(0, k, DEPTH):  # the rows p..p+DEPTH-1 of B stay in cache
        depth = min(DEPTH, k - p)
        keep = beta if p == 0 else cast_like(C, 1.0)
        for tile in range(part * tiles // parts, (part + 1) * tiles // parts):
            i, j = tile // column_blocks * rows, tile % column_blocks * vectors * lanes
            columns = min(vectors * lanes, n - j)
            width = (columns + lanes - 1) // lanes
            mask = (1 << (columns - (width - 1) * lanes)) - 1
            tile_nn(C, i * n + j, n, A, i * sa_r + p * sa_p, sa_r, sa_p, B, p * ldb + j, ldb,
                    depth, alpha, keep, width, mask, min(rows, m - i))


@helper
def _nt_tiles(C, A, B, alpha, beta, part, parts):
    """Part ``part`` of ``parts`` of the tiles of C = alpha * A @ B + beta * C
    for A with contiguous rows and B = Bt.T, Bt with contiguous rows: dot
    products of rows."""
    Bt = B.T
    m, n = C.shape
    k = A.shape[1]
    lanes, rows, cols = HOST.vector_bytes // C.itemsize, HOST.nt_rows, HOST.nt_cols
    mask = (1 << (k % lanes)) - 1
    lda, ldbt = A.strides[0] // A.itemsize, Bt.strides[0] // Bt.itemsize
    column_blocks = (n + cols - 1) // cols
    tiles = column_blocks * ((m + rows - 1) // rows)
    for tile in range(part * tiles // parts, (part + 1) * tiles // parts):
        i, j = tile // column_blocks * rows, tile % column_blocks * cols
        tile_nt(C, i * n + j, n, A, i * lda, lda, Bt, j * ldbt, ldbt, k, alpha, beta, mask,
                min(rows, m - i), min(cols, n - j))


@helper
def _loops(C, A, B, alpha, beta, part, parts):
    """Plain loops over rows part, part + parts, ..., for operands neither
    tile reads."""
    for i in range(part, C.shape[0], parts):
        for j in range(C.shape[1]):
            total = 0.0
            for p in range(A.shape[1]):
                total += A[i, p] * B[p, j]
            C[i, j] = alpha * total + (0.0 if beta == 0 else beta * C[i, j])


def _part(C, A, B, alpha, beta, part, parts):
    raise NotImplementedError("compiled only: call gemm")


@overload(_part)
def _part_typed(C, A, B, alpha, beta, part, parts):
    for name, array in [("C", C), ("A", A), ("B", B)]:
        if not (getattr(array, "ndim", 0) == 2 and array.layout in "CF"
                and array.dtype == C.dtype):
            raise TypingError(f"gemm: {name} must be a 2-D C- or F-contiguous array "
                              f"of {C.dtype}, got {array}")
    if C.layout != "C":
        raise TypingError("gemm: C must be C-contiguous")
    if B.layout == "C":
        return _nn_tiles
    if A.layout == "C":
        return _nt_tiles
    return _loops  # A.T @ B.T: no tile reads both; training never asks for it


@parallel_kernel
def gemm(C, A, B, alpha, beta):
    """C = alpha * A @ B + beta * C; with beta = 0, C is only written. The
    tiles are shared out over Numba's threads; the result is the same for
    every thread count.

    C : (m, n) C-contiguous; A : (m, k), B : (k, n), each C-contiguous or the
    transpose of a C-contiguous array (X.T); all of one float dtype.
    """
    if A.shape[0] != C.shape[0] or B.shape[1] != C.shape[1] or A.shape[1] != B.shape[0]:
        raise ValueError("gemm: shapes do not align")
    if A.shape[1] == 0:  # an empty sum
        for i in range(C.shape[0]):
            for j in range(C.shape[1]):
                C[i, j] = 0.0 if beta == 0 else beta * C[i, j]
    elif C.size > 0:
        alpha, beta = cast_like(C, alpha), cast_like(C, beta)
        for part in prange(PARTS):
            _part(C, A, B, alpha, beta, part, PARTS)
