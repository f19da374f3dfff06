"""Per-sample SGD (batches of one), its layers' columns shared out over threads.

At batch 1 a step is a few microseconds of work over every weight, bound by
reading the weights from cache: the first layer of a 784-256-128-10 net
alone is 800 KB of float32, about one core's L2. So each layer's output
columns are cut into PIECES fixed pieces, and each thread (``part``) always
works on the same pieces, forward, backward and update: its share of the
weights stays in its own core's cache. The threads meet at a spin barrier
after each layer's forward pass, and after each backward product whose sum
over columns the next layer down needs: 2L - 1 per sample of an L-layer net,
or 2L - 3 where each thread computes the whole output layer (``_copied``).

The pieces do not depend on the number of threads: one thread runs every
piece in turn and sums the same partial products in the same order, so a
seeded fit gives the same bits on 1 thread or 2, and a fit may switch
between them from one chunk of samples to the next (fastmlp.threads.ChunkThreads).

Two threads writing to lines next to each other slow each other down: the
CPU's prefetchers fetch the line after the one a loop reads, and a line one
thread writes then moves between the cores. Pieces cut along rows of one W
ran at half the speed on two threads of one thread running both. So a chunk
trains a copy of the weights with each piece in a block of its own, which
each part copies in from ``params`` and back, and each part sums its
products in accumulators of its own; the buffers the parts share are
written once per sample, and blocks of different parts are GAP elements apart.

The update of the first layer is the largest pass over memory; it is fused
with the next sample's forward pass through the same rows (W - lr * x d is
written and read once), and a chunk's last update runs the same code with no
forward pass.

Buffers (``sample_buffers``), with layer l's units at columns
``_units(sizes, l)`` and U their total, each layer's rounded up to whole lines:
- weights: per layer and piece, W (sizes[l], columns of the piece) and b;
- acts (2, U): A_1..A_L, alternating rows by sample, so that a thread may
  start the next sample's forward pass while another still reads this one's;
- deltas (U,): dZ_1..dZ_{L-1}, each thread writing and reading its own pieces;
- partials (PIECES, U + GAP): W_l @ dZ_{l+1} summed over the columns of one piece;
- sums (PIECES, ...): per part, its accumulators and dZ_L, computed whole by each.
"""

import sys
import threading

import numpy as np
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic

from ._jit import cast_like, helper, kernel, vector_kernel
from .activations import backward_scalar, forward_scalar
from .losses import loss_forward_backward
from .network import layer_params
from .simd import element_pointer, rows_pass
from .target import HOST, TRIPLE

PIECES = 2  # column pieces per layer, so at most 2 threads: one per core of a pair
ALIGN = 16  # elements per line, rounded up: units and pieces start at multiples of 16
GAP = 1024  # elements between blocks that different parts write: 4 KB or more
LINE = 16   # int64 flags per thread: 128 bytes apart, on lines of their own
SPINS = 2000  # pauses a barrier spins before it yields the core (40-300 us)
BYTES = 128  # alignment of the buffers' starts
# What show_config reports of the per-sample path.
PER_SAMPLE = (f"batch 1: each layer's columns in {PIECES} pieces over up to {PIECES} threads, "
              f"passes of {HOST.row_vectors} vectors of {HOST.vector_bytes} bytes")


def _aligned_zeros(shape, dtype):
    """Zeros of ``shape`` whose first element starts at a multiple of BYTES."""
    n, itemsize = int(np.prod(shape)), np.dtype(dtype).itemsize
    raw = np.zeros(n + BYTES // itemsize, dtype)
    skip = (-raw.ctypes.data % BYTES) // itemsize
    return raw[skip:skip + n].reshape(shape)


def sample_buffers(sizes, dtype):
    """(weights, acts, deltas, partials, sums), as the module docstring lays them out."""
    sizes = np.asarray(sizes)
    L = len(sizes) - 1
    units = sum(_padded(n) for n in sizes[1:])
    widest = max(_padded(_piece(n, 0)[1]) for n in sizes[1:])
    return (_aligned_zeros(_block_start(sizes, L, 0), dtype), _aligned_zeros((2, units), dtype),
            _aligned_zeros(units, dtype), _aligned_zeros((PIECES, units + GAP), dtype),
            _aligned_zeros((PIECES, widest + 2 * _padded(sizes[L]) + GAP), dtype))


def sample_flags(parts):
    """The barrier's counters for ``parts`` threads, all at zero."""
    return _aligned_zeros(parts * LINE, np.int64)


@intrinsic
def _publish(typingctx, flags, index, value):
    """flags[index] = value, stored atomically with release order: what this
    thread wrote before is seen by a thread that reads the new value."""
    def codegen(context, builder, signature, args):
        pointer = element_pointer(context, builder, signature.args[0], args[0], args[1])
        value = context.cast(builder, args[2], signature.args[2], types.int64)
        builder.store_atomic(value, pointer, "release", 8)
        return context.get_dummy_value()
    return types.void(flags, index, value), codegen


@intrinsic
def _read(typingctx, flags, index):
    """flags[index], loaded atomically with acquire order."""
    def codegen(context, builder, signature, args):
        pointer = element_pointer(context, builder, signature.args[0], args[0], args[1])
        return builder.load_atomic(pointer, "acquire", 8)
    return types.int64(flags, index), codegen


def _emit_pause(builder):
    """The CPU's spin-wait hint at ``builder``: x86 pause, AArch64 yield,
    nothing elsewhere."""
    module = builder.module
    if TRIPLE.startswith("x86_64"):
        builder.call(cgutils.get_or_insert_function(
            module, ir.FunctionType(ir.VoidType(), []), "llvm.x86.sse2.pause"), [])
    elif TRIPLE.startswith(("aarch64", "arm64")):
        builder.call(cgutils.get_or_insert_function(
            module, ir.FunctionType(ir.VoidType(), [ir.IntType(32)]), "llvm.aarch64.hint"),
            [ir.Constant(ir.IntType(32), 1)])


@intrinsic
def _pause(typingctx):
    """The CPU's spin-wait hint."""
    def codegen(context, builder, signature, args):
        _emit_pause(builder)
        return context.get_dummy_value()
    return types.void(), codegen


@intrinsic
def _yield(typingctx):
    """Give the core to another thread: POSIX sched_yield (the spin-wait hint
    on Windows, which has no sched_yield)."""
    def codegen(context, builder, signature, args):
        if sys.platform == "win32":
            _emit_pause(builder)
        else:
            builder.call(cgutils.get_or_insert_function(
                builder.module, ir.FunctionType(ir.IntType(32), []), "sched_yield"), [])
        return context.get_dummy_value()
    return types.void(), codegen


@helper
def _barrier(flags, part, parts, count):
    """Wait until every part has reached its barrier number ``count``: spin
    for SPINS pauses (the other threads arrive within a microsecond when they
    run), then yield the core at each check, for a thread the system has
    taken off its core (a machine busy with other work). Returns 1 when it
    had to yield, else 0."""
    late = 0
    if parts == 1:
        return late
    _publish(flags, part * LINE, count)
    for p in range(parts):
        spins = 0
        while _read(flags, p * LINE) < count:
            if spins < SPINS:
                _pause()
                spins += 1
            else:
                _yield()
                late = 1
    return late


@helper
def _padded(n):
    """n rounded up to whole lines of ALIGN elements."""
    return -(-n // ALIGN) * ALIGN


@helper
def _piece(n, p):
    """Columns [lo, hi) of piece p of a layer with n outputs (possibly empty)."""
    step = _padded(-(-n // PIECES))
    return min(p * step, n), min((p + 1) * step, n)


@helper
def _units(sizes, l):
    """Column of layer l's first unit (l >= 1) in acts, deltas and partials."""
    start = 0
    for i in range(1, l):
        start += _padded(sizes[i])
    return start


@helper
def _copied(sizes):
    """Whether every part computes the whole output layer: it has hidden layers
    before it, and too few units for a second piece (10 classes, say). Each
    part then keeps its own copy of it, and the barriers after its forward
    pass and its backward product go (they waited for the part that had it all)."""
    L = sizes.shape[0] - 1
    return L > 1 and _piece(sizes[L], 1)[0] == sizes[L]


@helper
def _block_columns(sizes, l, p):
    """Columns [lo, hi) of layer l in its block p: piece p's, or all of the
    copied output layer's (block p: part p's copy)."""
    if l == sizes.shape[0] - 2 and _copied(sizes):
        return 0, sizes[l + 1]
    return _piece(sizes[l + 1], p)


@helper
def _block_start(sizes, l, p):
    """Start of block p of layer l in ``weights`` (l = L, p = 0: its length)."""
    start = 0
    for i in range(l + 1):
        for q in range(PIECES if i < l else p):
            lo, hi = _block_columns(sizes, i, q)
            start += (sizes[i] + 1) * _padded(hi - lo) + GAP
    return start


@helper
def _block(weights, sizes, l, p):
    """Views (W (sizes[l], m), b (m,)) of block p of layer l, m its columns
    rounded up to a line."""
    start = _block_start(sizes, l, p)
    lo, hi = _block_columns(sizes, l, p)
    fan_in, width = sizes[l], _padded(hi - lo)
    mid = start + fan_in * width
    return weights[start:mid].reshape((fan_in, width)), weights[mid:mid + width]


@helper
def _copy_blocks(weights, params, sizes, part, parts, into_block):
    """This part's blocks of every layer from params into weights
    (into_block), or back: its pieces, and its copy of a copied output layer
    (which part 0 alone copies back)."""
    L = sizes.shape[0] - 1
    for l in range(L):
        if l == L - 1 and _copied(sizes):
            if into_block or part == 0:
                _copy_piece(weights, params, sizes, l, part, into_block)
        else:
            for p in range(part, PIECES, parts):
                _copy_piece(weights, params, sizes, l, p, into_block)


@helper
def _copy_piece(weights, params, sizes, l, p, into_block):
    """Block p of layer l from params into weights (into_block), or back."""
    W, b = _block(weights, sizes, l, p)
    W_user, b_user = layer_params(params, sizes, l)
    lo, hi = _block_columns(sizes, l, p)
    for i in range(W.shape[0]):
        for j in range(hi - lo):
            if into_block:
                W[i, j] = W_user[i, lo + j]
            else:
                W_user[i, lo + j] = W[i, j]
    for j in range(hi - lo):
        if into_block:
            b[j] = b_user[lo + j]
        else:
            b_user[lo + j] = b[j]


@kernel
def _rows(acc, W, x, x_old, d, d_at, lr, update, forward):
    """rows_pass over every column of W (n, m), m a multiple of the vectors'
    lanes, in blocks of HOST.row_vectors vectors, or the widest power of two
    that fits the columns left: acc (m,), d from d_at. A kernel of its own,
    so that its code is compiled once for every piece function."""
    lanes = HOST.vector_bytes // W.itemsize
    m = W.shape[1]
    c = 0
    while c < m:
        vectors = HOST.row_vectors
        while vectors * lanes > m - c:
            vectors //= 2
        rows_pass(acc, c, W, c, m, x, x_old, d, d_at + c, lr, x.shape[0], vectors, update,
                  forward)
        c += vectors * lanes


@kernel
def _forward_piece(a, acc, x, W, b, code):
    """a = g(x @ W + b) for the len(a) units of one piece, skipping zero
    inputs: x (n,), W (n, m) and b (m,) padded to whole lines, summed in acc (>= m,)."""
    for j in range(W.shape[1]):
        acc[j] = b[j]
    _rows(acc, W, x, x, b, 0, cast_like(W, 0), False, True)
    for j in range(a.shape[0]):
        a[j] = forward_scalar(acc[j], code)


@kernel
def _first_layer_piece(a, acc, x, W, b, x_old, d_old, lo, lr, code, forward):
    """The previous sample's step on one piece of the first layer, the units
    lo:lo + len(a): W -= lr * outer(x_old, d_old[lo:]) and b -= lr *
    d_old[lo:], then, when ``forward``, a = g(x @ W + b) in the same pass over
    W's rows. W (n, m) and b (m,) are padded to whole lines, and so is d_old
    after lo + len(a) (zeros there)."""
    m = W.shape[1]
    d = d_old[lo:lo + m]
    for j in range(m):
        b[j] -= lr * d[j]
        acc[j] = b[j]
    _rows(acc, W, x, x_old, d_old, lo, lr, True, forward)
    if forward:
        for j in range(a.shape[0]):
            a[j] = forward_scalar(acc[j], code)


@vector_kernel
def _backward_piece(partial, a, W, b, d, lr):
    """partial = W @ d (n,) with W before the step, and the step
    W -= lr * outer(a, d), b -= lr * d, in one pass over W's rows: a (n,),
    W (n, m) and b (m,) padded to whole lines, and d (>= m,) too, with zeros
    beyond the piece (whole vectors: no scalar loop for the last columns)."""
    m = W.shape[1]
    for i in range(W.shape[0]):
        u = lr * a[i]
        s = cast_like(W, 0)
        if u != 0:
            for j in range(m):
                w = W[i, j]
                s += w * d[j]
                W[i, j] = w - u * d[j]
        else:
            for j in range(m):
                s += W[i, j] * d[j]
        partial[i] = s
    for j in range(m):
        b[j] -= lr * d[j]


@kernel
def train_samples(part, parts, flags, params, buffers, sizes, hidden, output, loss,
                  X, T, order, first, stop, lr):
    """Per-sample SGD over samples order[first:stop] of X (n, sizes[0]), T:
    the share of thread ``part`` of ``parts`` (the pieces p = part, part + parts,
    ...), all parts running at once on the same ``flags`` (``sample_flags``)
    and ``buffers`` (``sample_buffers``). Equal to ``train_batches`` with
    batch 1 up to rounding. Returns (sum of the losses, n_correct), each taken
    before its update, from part 0 (zeros from the others)."""
    weights, acts, deltas, partials, sums = buffers
    L = sizes.shape[0] - 1
    if stop <= first:
        return 0.0, 0
    copied = _copied(sizes)
    _copy_blocks(weights, params, sizes, part, parts, True)
    acc = sums[part]
    at = sums.shape[1] - GAP - 2 * _padded(sizes[L])
    a_out = sums[part, at:at + sizes[L]]  # A_L of the copied output layer
    at += _padded(sizes[L])
    d_out = sums[part, at:at + _padded(sizes[L])]  # dZ_L, whole, this part's, then zeros
    d_first = d_out if L == 1 else deltas  # dZ_1, for the first layer's step
    total = 0.0
    correct = 0
    count = 0  # barriers passed
    late = 0  # barriers that waited long enough to yield
    for k in range(first, stop):
        now = (k - first) % 2
        x = X[order[k]]
        a = acts[now]
        code = hidden[0] if L > 1 else output
        for p in range(part, PIECES, parts):
            W, b = _block(weights, sizes, 0, p)
            lo, hi = _piece(sizes[1], p)
            if k == first:
                _forward_piece(a[lo:hi], acc, x, W, b, code)
            else:
                _first_layer_piece(a[lo:hi], acc, x, W, b, X[order[k - 1]], d_first, lo, lr,
                                   code, True)
        count += 1
        waited = _barrier(flags, part, parts, count)
        late += waited if count > 1 else 0  # not the threads' start
        for l in range(1, L - 1 if copied else L):
            begin, after = _units(sizes, l), _units(sizes, l + 1)
            for p in range(part, PIECES, parts):
                W, b = _block(weights, sizes, l, p)
                lo, hi = _piece(sizes[l + 1], p)
                _forward_piece(a[after + lo:after + hi], acc, a[begin:begin + sizes[l]], W, b,
                               hidden[l] if l < L - 1 else output)
            count += 1
            late += _barrier(flags, part, parts, count)
        begin = _units(sizes, L - 1)
        if copied:
            W, b = _block(weights, sizes, L - 1, part)
            _forward_piece(a_out, acc, a[begin:begin + sizes[L - 1]], W, b, output)
        else:
            start = _units(sizes, L)
            for j in range(sizes[L]):
                a_out[j] = a[start + j]
        value, c = loss_forward_backward(d_out[:sizes[L]].reshape((1, sizes[L])),
                                         a_out.reshape((1, sizes[L])),
                                         T[order[k]:order[k] + 1], loss, output, 1.0)
        if part == 0:
            total += value
            correct += c
        for l in range(L - 1, 0, -1):
            begin, after = _units(sizes, l), _units(sizes, l + 1)
            d = d_out if l == L - 1 else deltas[after:after + _padded(sizes[l + 1])]
            whole = l == L - 1 and copied  # this part's copy, all columns
            for p in range(part, PIECES, parts):
                W, b = _block(weights, sizes, l, part if whole else p)
                lo, hi = _block_columns(sizes, l, p)
                _backward_piece(partials[part if whole else p, begin:begin + sizes[l]],
                                a[begin:begin + sizes[l]], W, b, d[lo:], lr)
                if whole:
                    break
            if not whole:
                count += 1
                late += _barrier(flags, part, parts, count)
            for p in range(part, PIECES, parts):
                lo, hi = _piece(sizes[l], p)
                for i in range(begin + lo, begin + hi):
                    if whole:
                        s = partials[part, i]
                    else:
                        s = partials[0, i]
                        for q in range(1, PIECES):
                            s += partials[q, i]
                    deltas[i] = backward_scalar(s, a[i], hidden[l - 1])
    # The last sample's step on the first layer, which no forward pass follows.
    x = X[order[stop - 1]]
    for p in range(part, PIECES, parts):
        W, b = _block(weights, sizes, 0, p)
        lo, hi = _piece(sizes[1], p)
        _first_layer_piece(acts[0, lo:hi], acc, x, W, b, x, d_first, lo, lr, output, False)
    _copy_blocks(weights, params, sizes, part, parts, False)
    flags[part * LINE + 1] = late
    return total, correct


def run_samples(threads, params, buffers, sizes, hidden, output, loss, X, T, order, first,
                stop, lr):
    """train_samples over samples order[first:stop] on ``threads`` threads,
    at most PIECES: this Python thread and the others, each in the nogil
    kernel. A call with no samples first compiles it, or raises, here, before
    any thread waits at a barrier. Returns (sum of the losses, n_correct,
    the barriers at which a thread waited so long that it yielded its core:
    another was off its own)."""
    parts = min(threads, PIECES)
    flags = sample_flags(parts)
    args = (flags, params, buffers, sizes, hidden, output, loss, X, T, order)
    train_samples(0, 1, *args, first, first, lr)
    others = [threading.Thread(target=train_samples, args=(part, parts, *args, first, stop, lr))
              for part in range(1, parts)]
    for other in others:
        other.start()
    total, correct = train_samples(0, parts, *args, first, stop, lr)
    for other in others:
        other.join()
    return total, correct, int(flags[1::LINE].sum())
