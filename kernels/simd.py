"""The register tile of a matrix product, written in LLVM vector IR.

``gemm`` (blas.py) cuts C = alpha * A @ B + beta * C into tiles and computes
each with ``tile_nn``, whose accumulators live in vector registers for the
whole reduction: vectors of the CPU's own width, one fused multiply-add per
lane and step where it has the instruction, and a tile shape that fits its
register file (target.py's table, ``HOST``).

``tile_nn``: C[r, j] for MR rows and NV vectors of columns, the reduction
    index p walking down the rows of B (contiguous in j):
    acc[r, j] = sum_p A[r * sa_r + p * sa_p] * B[p * ldb + j].
    A is read one scalar at a time, so it may be A or A.T.

``rows_pass``: the per-sample step of samples.py on a block of columns of
    one layer, its sums acc[j] in registers while it walks down the rows i of
    W (the row d[j] of dZ read from memory by the multiply-adds): where u = lr * x_old[i] != 0, W[i, j] -= u
    * d[j] (the previous sample's SGD step); where x[i] != 0, acc[j] +=
    x[i] * W[i, j] (this sample's forward pass, through W after the step).

tile_nn ends with C = alpha * acc, or alpha * acc + beta * C when beta != 0 (C
is not read when beta == 0). Every element of C is summed by one tile in one
fixed order: results do not depend on how the tiles are shared out.
Arrays are passed with an element offset; ``mask`` (int) selects the lanes
of the last vector of columns of C.
"""

from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from .target import HOST

I32 = ir.IntType(32)
I64 = ir.IntType(64)


class _Vectors:
    """LLVM declarations and helpers for vectors of one float type (of
    ``bits`` bits) on the instruction set of ``tiles``."""

    def __init__(self, builder, bits, tiles):
        self.builder = builder
        self.scalar = ir.FloatType() if bits == 32 else ir.DoubleType()
        self.n = tiles.vector_bytes * 8 // bits
        self.fused = tiles.fma
        self.type = ir.VectorType(self.scalar, self.n)
        self.pointer = self.type.as_pointer()
        self.mask_type = ir.VectorType(ir.IntType(1), self.n)
        suffix = f"v{self.n}f{bits}"
        module = builder.module
        self._fma = cgutils.get_or_insert_function(
            module, ir.FunctionType(self.type, [self.type] * 3), f"llvm.fma.{suffix}")
        self._load = cgutils.get_or_insert_function(
            module, ir.FunctionType(self.type, [self.pointer, I32, self.mask_type, self.type]),
            f"llvm.masked.load.{suffix}.p0{suffix}")
        self._store = cgutils.get_or_insert_function(
            module, ir.FunctionType(ir.VoidType(), [self.type, self.pointer, I32,
                                                    self.mask_type]),
            f"llvm.masked.store.{suffix}.p0{suffix}")
        self.zero = ir.Constant(self.type, [0.0] * self.n)
        self.align = bits // 8

    def mask(self, bits):
        """A lane mask from the low bits of an i64."""
        return self.builder.bitcast(self.builder.trunc(bits, ir.IntType(self.n)),
                                    self.mask_type)

    def at(self, base, offset):
        """A vector pointer to base[offset] (offset an i64 value or int)."""
        if isinstance(offset, int):
            offset = ir.Constant(I64, offset)
        return self.builder.bitcast(self.builder.gep(base, [offset]), self.pointer)

    def load(self, pointer, mask=None):
        if mask is None:
            value = self.builder.load(pointer)
            value.align = self.align
            return value
        return self.builder.call(self._load, [pointer, ir.Constant(I32, self.align), mask,
                                              self.zero])

    def store(self, value, pointer, mask=None):
        if mask is None:
            self.builder.store(value, pointer).align = self.align
        else:
            self.builder.call(self._store, [value, pointer, ir.Constant(I32, self.align), mask])

    def splat(self, scalar):
        undef = ir.Constant(self.type, ir.Undefined)
        first = self.builder.insert_element(undef, scalar, ir.Constant(I32, 0))
        return self.builder.shuffle_vector(first, undef,
                                           ir.Constant(ir.VectorType(I32, self.n), [0] * self.n))

    def fma(self, a, b, c):
        """a * b + c, fused where the CPU has the instruction (a call of
        llvm.fma elsewhere becomes a library call per lane)."""
        if self.fused:
            return self.builder.call(self._fma, [a, b, c])
        return self.builder.fadd(self.builder.fmul(a, b), c)


def _at_most(builder, r, top):
    """min(r, top) for a constant r and an i64 value top."""
    r = ir.Constant(I64, r)
    return builder.select(builder.icmp_signed("<", r, top), r, top)


def element_pointer(context, builder, array_type, array, offset):
    """A pointer to element ``offset`` of an array argument."""
    return builder.gep(context.make_array(array_type)(context, builder, array).data, [offset])


def _rolled(module):
    """A new loop ID (!{self, !{"llvm.loop.unroll.disable"}}) that keeps LLVM
    from unrolling a tile's loop: unrolled twice for Zen (znver3, znver4,
    znver5), the loop needed two sets of row offsets of A and reloaded them
    from the stack on every step (tests/test_target.py)."""
    disable = module.add_metadata([ir.MetaDataString(module, "llvm.loop.unroll.disable")])
    loop_id = module.add_metadata([ir.MetaDataString(module, f"tile.{len(module.metadata)}")])
    loop_id.operands = (loop_id, disable)
    return loop_id


def _loop(builder, count, initial, body):
    """for p in range(count): values = body(p, values), from the list
    ``initial``; returns the final values (count >= 0). The body may branch:
    it returns in the block where its paths meet."""
    entry = builder.basic_block
    loop = builder.append_basic_block("tile.loop")
    done = builder.append_basic_block("tile.done")
    builder.cbranch(builder.icmp_signed(">", count, ir.Constant(I64, 0)), loop, done)
    builder.position_at_end(loop)
    p = builder.phi(I64)
    p.add_incoming(ir.Constant(I64, 0), entry)
    phis = [builder.phi(value.type) for value in initial]
    for phi, value in zip(phis, initial):
        phi.add_incoming(value, entry)
    updated = body(p, phis)
    following = builder.add(p, ir.Constant(I64, 1))
    end = builder.basic_block
    p.add_incoming(following, end)
    for phi, value in zip(phis, updated):
        phi.add_incoming(value, end)
    back = builder.cbranch(builder.icmp_signed("<", following, count), loop, done)
    back.set_metadata("llvm.loop", _rolled(builder.module))
    builder.position_at_end(done)
    results = [builder.phi(value.type) for value in initial]
    for result, start, value in zip(results, initial, updated):
        result.add_incoming(start, entry)
        result.add_incoming(value, end)
    return results


def _write(builder, vectors, beta, write):
    """write(fold) for fold = (old value -> new value): stores alpha * acc, or
    alpha * acc + beta * C when beta != 0, which only then reads C."""
    with builder.if_else(builder.fcmp_ordered("==", beta, ir.Constant(beta.type, 0.0))) \
            as (overwrite, accumulate):
        with overwrite:
            write(None)
        with accumulate:
            write(vectors.splat(beta))


def emit_nn(builder, v, rows, width, c, a, b, ldc, sa_r, sa_p, ldb, k, alpha, beta, mask, m):
    """The code of tile_nn for ``rows`` rows and ``width`` vectors, from
    pointers c, a, b to the first elements and i64 values of the rest;
    ``mask`` None: the last vector is whole, and is read without a mask."""
    masks = [None] * (width - 1) + [None if mask is None else v.mask(mask)]
    top = builder.sub(m, ir.Constant(I64, 1))
    a_rows = [builder.mul(_at_most(builder, r, top), sa_r) for r in range(rows)]

    def step(p, acc):
        row = builder.gep(b, [builder.mul(p, ldb)])
        bs = [v.load(v.at(row, j * v.n), masks[j]) for j in range(width)]
        a_p = builder.mul(p, sa_p)
        out = []
        for r in range(rows):
            s = v.splat(builder.load(builder.gep(a, [builder.add(a_p, a_rows[r])])))
            out += [v.fma(s, bs[j], acc[r * width + j]) for j in range(width)]
        return out

    acc = _loop(builder, k, [v.zero] * (rows * width), step)
    scale = v.splat(alpha)

    def write(keep):
        for r in range(rows):
            inside = builder.icmp_signed("<", ir.Constant(I64, r), m)
            with builder.if_then(inside, likely=True):
                row = builder.gep(c, [builder.mul(ir.Constant(I64, r), ldc)])
                for j in range(width):
                    at = v.at(row, j * v.n)
                    value = builder.fmul(scale, acc[r * width + j])
                    if keep is not None:
                        value = v.fma(keep, v.load(at, masks[j]), value)
                    v.store(value, at, masks[j])
    _write(builder, v, beta, write)


@intrinsic
def tile_nn(typingctx, C, c_at, ldc, A, a_at, sa_r, sa_p, B, b_at, ldb, k, alpha, beta,
            width, mask, m):
    """C[c_at + r * ldc + j] = alpha * sum_p A[a_at + r * sa_r + p * sa_p]
    * B[b_at + p * ldb + j] (+ beta * C[...]) for r < min(m, HOST.rows) and
    ``width`` (1 to HOST.vectors) vectors of j, the last vector's lanes chosen
    by ``mask``; p < k. Rows from m on repeat row m - 1's work and are not
    written."""
    signature = types.void(C, c_at, ldc, A, a_at, sa_r, sa_p, B, b_at, ldb, k, alpha, beta,
                           width, mask, m)

    def codegen(context, builder, sig, args):
        C_, c_at_, ldc_, A_, a_at_, sa_r_, sa_p_, B_, b_at_, ldb_, k_, alpha_, beta_, \
            width_, mask_, m_ = args
        v = _Vectors(builder, C.dtype.bitwidth, HOST)
        c, a, b = (element_pointer(context, builder, *x) for x in [(C, C_, c_at_), (A, A_, a_at_),
                                                          (B, B_, b_at_)])
        whole = None if HOST.masked_loads else builder.icmp_signed(
            "==", mask_, ir.Constant(mask_.type, (1 << v.n) - 1))
        for vectors in range(1, HOST.vectors + 1):  # one tile per width
            chosen = builder.icmp_signed("==", width_, ir.Constant(width_.type, vectors))
            with builder.if_then(chosen):
                if HOST.masked_loads:
                    emit_nn(builder, v, HOST.rows, vectors, c, a, b, ldc_, sa_r_, sa_p_, ldb_,
                            k_, alpha_, beta_, mask_, m_)
                    continue
                # a masked load without the instruction tests each lane in the
                # loop: whole vectors get a loop without masks
                with builder.if_else(whole) as (unmasked, masked):
                    for lanes_mask, branch in [(None, unmasked), (mask_, masked)]:
                        with branch:
                            emit_nn(builder, v, HOST.rows, vectors, c, a, b, ldc_, sa_r_,
                                    sa_p_, ldb_, k_, alpha_, beta_, lanes_mask, m_)
        return context.get_dummy_value()
    return signature, codegen


def emit_rows(builder, v, width, acc, w, ldw, x, x_old, d, lr, n, update, forward):
    """The code of rows_pass for ``width`` vectors, from pointers acc, w, x,
    x_old, d to the first elements, i64 values ldw and n, the scalar lr, and
    i1 values update and forward."""
    zero = ir.Constant(v.scalar, 0.0)
    function = builder.function

    def row(i, sums):
        u = builder.select(update, builder.fmul(lr, builder.load(builder.gep(x_old, [i]))), zero)
        s = builder.select(forward, builder.load(builder.gep(x, [i])), zero)
        at = builder.gep(w, [builder.mul(i, ldw)])
        step, add, added_block, following = (function.append_basic_block(f"rows.{name}")
                                             for name in ("step", "add", "sum", "next"))
        builder.cbranch(builder.fcmp_unordered("!=", u, zero), step, add)
        # The step, and the sum through the new row (s may be 0: a row that x
        # skips but x_old does not adds 0 * W, so needs no branch of its own).
        builder.position_at_end(step)
        minus_u, scale = v.splat(builder.fsub(ir.Constant(v.scalar, -0.0), u)), v.splat(s)
        stepped = []
        for j in range(width):
            new = v.fma(minus_u, v.load(v.at(d, j * v.n)), v.load(v.at(at, j * v.n)))
            v.store(new, v.at(at, j * v.n))
            stepped.append(v.fma(scale, new, sums[j]))
        builder.branch(following)
        builder.position_at_end(add)  # no step: the sum alone, where s != 0
        builder.cbranch(builder.fcmp_unordered("!=", s, zero), added_block, following)
        builder.position_at_end(added_block)
        scale = v.splat(s)
        added = [v.fma(scale, v.load(v.at(at, j * v.n)), sums[j]) for j in range(width)]
        builder.branch(following)
        builder.position_at_end(following)
        merged = [builder.phi(v.type) for _ in range(width)]
        for j, phi in enumerate(merged):
            phi.add_incoming(stepped[j], step)
            phi.add_incoming(sums[j], add)
            phi.add_incoming(added[j], added_block)
        return merged

    initial = [v.load(v.at(acc, j * v.n)) for j in range(width)]
    for j, value in enumerate(_loop(builder, n, initial, row)):
        v.store(value, v.at(acc, j * v.n))


@intrinsic
def rows_pass(typingctx, acc, acc_at, W, w_at, ldw, x, x_old, d, d_at, lr, n, width, update,
              forward):
    """For ``width`` (a power of two up to HOST.row_vectors) whole vectors of columns j from
    acc_at, w_at and d_at: over rows i < n of W (row i at w_at + i * ldw),
    where update and u = lr * x_old[i] != 0, W[i, j] -= u * d[j]; then, where
    forward and x[i] != 0, acc[j] += x[i] * W[i, j]; in order of i."""
    signature = types.void(acc, acc_at, W, w_at, ldw, x, x_old, d, d_at, lr, n, width, update,
                           forward)

    def codegen(context, builder, sig, args):
        acc_, acc_at_, W_, w_at_, ldw_, x_, x_old_, d_, d_at_, lr_, n_, width_, update_, \
            forward_ = args
        zero = ir.Constant(I64, 0)
        pointers = [element_pointer(context, builder, *a) for a in
                    [(acc, acc_, acc_at_), (W, W_, w_at_), (x, x_, zero), (x_old, x_old_, zero),
                     (d, d_, d_at_)]]
        v = _Vectors(builder, W.dtype.bitwidth, HOST)
        lr_ = context.cast(builder, lr_, sig.args[9], W.dtype)
        update_, forward_ = (context.cast(builder, f, t, types.boolean)
                             for f, t in [(update_, sig.args[12]), (forward_, sig.args[13])])
        for vectors in (2 ** i for i in range(HOST.row_vectors.bit_length())):
            with builder.if_then(builder.icmp_signed("==", width_,
                                                     ir.Constant(width_.type, vectors))):
                a, w, xp, xo, dp = pointers
                emit_rows(builder, v, vectors, a, w, ldw_, xp, xo, dp, lr_, n_, update_,
                          forward_)
        return context.get_dummy_value()
    return signature, codegen


def tile_module(tiles, bits=32):
    """An LLVM module holding the kernels of this file for ``tiles`` (a
    target.TILES entry) at their widest, with no Numba around them, to compile
    for any target; for the static check that they fit the register file.
    Functions over pointers, i64 and i1 values in the intrinsics' argument order:
    ``tile_nn`` (c, ldc, a, sa_r, sa_p, b, ldb, k, alpha, beta, mask, m), its
    last vector masked where the CPU has masked loads (whole elsewhere, as
    the loop that runs for whole vectors); ``rows_pass`` (acc, w, ldw, x,
    x_old, d, lr, n, update, forward)."""
    module = ir.Module("tiles")
    scalar = ir.FloatType() if bits == 32 else ir.DoubleType()
    pointer = scalar.as_pointer()
    arguments = [pointer, I64, pointer, I64, I64, pointer, I64, I64, scalar, scalar, I64, I64]
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), arguments), "tile_nn")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    c, ldc, a, sa_r, sa_p, b, ldb, k, alpha, beta, mask, m = function.args
    emit_nn(builder, _Vectors(builder, bits, tiles), tiles.rows, tiles.vectors, c, a, b, ldc,
            sa_r, sa_p, ldb, k, alpha, beta, mask if tiles.masked_loads else None, m)
    builder.ret_void()
    flag = ir.IntType(1)
    arguments = [pointer, pointer, I64, pointer, pointer, pointer, scalar, I64, flag, flag]
    function = ir.Function(module, ir.FunctionType(ir.VoidType(), arguments), "rows_pass")
    builder = ir.IRBuilder(function.append_basic_block("entry"))
    acc, w, ldw, x, x_old, d, lr, n, update, forward = function.args
    emit_rows(builder, _Vectors(builder, bits, tiles), tiles.row_vectors, acc, w, ldw, x, x_old,
              d, lr, n, update, forward)
    builder.ret_void()
    return module
