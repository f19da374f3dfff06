"""General matrix multiply with BLAS' alpha and beta: C = alpha * A @ B + beta * C.

Products whose B has contiguous rows (X @ W, dW = X.T @ dZ) are computed on
the register tiles of simd.py, sized for the instruction set (target.py) and
shared out over Numba's threads. Products with a transposed B (dX = dZ @ W.T)
are dot products of rows, which the tiles ran at half of OpenBLAS's rate on
every instruction set measured; they (and A.T @ B.T, which training never
asks for) go to SciPy's BLAS (the library Numba's
np.dot calls) in blocks of a fixed grid, each block one call on one of Numba's
threads (BLAS on one thread: fastmlp.threads.blas_on_one_thread).

``python benchmarks/gemm.py``, GFLOP/s of dX = dZ1 @ W1.T (784-256-128-10 net),
tiles / BLAS blocks of 128 x 64 / one NumPy matmul, 1 and 2 threads, AMD Zen 5:
  AVX-512 (OpenBLAS SkylakeX): batch 128: 117 / 181 / 184, 223 / 333 / 295;
      batch 512: 112 / 186 / 230, 227 / 364 / 405.
  AVX2 (NUMBA_CPU_NAME=haswell, OpenBLAS Haswell): batch 128: 66 / 96 / 108,
      126 / 198 / 206; batch 512: 67 / 102 / 127, 131 / 204 / 238.
Blocks of 128 x 128 then beat 128 x 64, 64 x 256, 256 x 512 and 128 x 1024
where k is large (each call packs its block of A again): dZ (128, 1024) @
W.T (1024, 1024) on two threads at 334 GFLOP/s against 250 (NumPy 327) on
AVX-512, 215 against 185 (NumPy 237) on AVX2. BLAS blocks for the other
products ran at 0.6-0.9x of the tiles, so those stay on the tiles.

Every element of C is one tile's or one block's sum in a fixed order, so
results do not depend on thread counts.

Training writes a plain SGD step straight into the weights,
W = shrink * W - lr * X.T @ dZ, which needs beta.
"""

from numba import prange, types
from numba.core import cgutils
from numba.core.errors import TypingError
from numba.extending import intrinsic, overload
from numba.np.linalg import _BLAS

from ._jit import cast_like, helper, parallel_kernel
from .simd import element_pointer, tile_nn
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


# Blocks of C each BLAS call computes: a fixed grid, not one per thread, so
# that every element of C comes from the same call whatever the thread count.
BLAS_ROWS, BLAS_COLS = 128, 128
# What show_config reports of the choice above.
BLAS_PRODUCTS = (f"products with a transposed B (dX = dZ @ W.T) by BLAS in {BLAS_ROWS} x "
                 f"{BLAS_COLS} blocks; the rest on the tiles")


@intrinsic
def _pointer(typingctx, array, offset):
    """A pointer to element ``offset`` of ``array``'s buffer."""
    def codegen(context, builder, sig, args):
        return element_pointer(context, builder, array, *args)
    return types.CPointer(array.dtype)(array, offset), codegen


@intrinsic
def _on_stack(typingctx, value):
    """A pointer to a copy of the scalar ``value`` in the caller's frame."""
    def codegen(context, builder, sig, args):
        return cgutils.alloca_once_value(builder, args[0])
    return types.CPointer(value)(value), codegen


def _blas_blocks(C, A, B):
    """For the Numba types of C, A, B: the implementation of ``_part`` that
    computes its part of the BLAS_ROWS x BLAS_COLS blocks of C, each by one
    call of SciPy's BLAS (the library Numba's np.dot calls) on the calling
    thread. Row-major C = A @ B is column-major C.T = B.T @ A.T; an operand
    stored transposed is passed with BLAS's "T"."""
    xxgemm = _BLAS().numba_xxgemm(C.dtype)
    kind = ord("s" if C.dtype.bitwidth == 32 else "d")
    trans_b = ord("N" if B.layout == "C" else "T")
    trans_a = ord("N" if A.layout == "C" else "T")
    b_major, a_major = (0 if B.layout == "C" else 1), (0 if A.layout == "C" else 1)

    def blocks(C, A, B, alpha, beta, part, parts):
        m, n = C.shape
        k = A.shape[1]
        ldb = B.strides[b_major] // B.itemsize
        lda = A.strides[a_major] // A.itemsize
        column_blocks = (n + BLAS_COLS - 1) // BLAS_COLS
        count = column_blocks * ((m + BLAS_ROWS - 1) // BLAS_ROWS)
        for block in range(part * count // parts, (part + 1) * count // parts):
            i, j = block // column_blocks * BLAS_ROWS, block % column_blocks * BLAS_COLS
            xxgemm(kind, trans_b, trans_a, min(BLAS_COLS, n - j), min(BLAS_ROWS, m - i), k,
                   _on_stack(alpha), _pointer(B, j * (B.strides[1] // B.itemsize)), ldb,
                   _pointer(A, i * (A.strides[0] // A.itemsize)), lda, _on_stack(beta),
                   _pointer(C, i * n + j), n)
    return blocks


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
    return _blas_blocks(C, A, B)


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
