"""Whole-network kernels over one flat parameter buffer.

Layout: layer l (0-based) maps sizes[l] inputs to sizes[l + 1] outputs and
occupies ``params[param_offset(sizes, l):param_offset(sizes, l + 1)]``: first W (sizes[l], sizes[l + 1])
row-major, then b (sizes[l + 1],). Gradients use the same layout.

Scratch memory is one flat ``work`` buffer for ``rows`` samples: the
activations A_1..A_L, then the deltas dZ_1..dZ_L (gradients w.r.t. each
layer's pre-activation), then, when the trainer gathers shuffled minibatches,
room for a batch of targets, of sample weights and of dense inputs; and last,
for training with dropout, the masks M_1..M_{L-1} of the hidden layers.

``dropout`` is None, or (rates, key, step, row0): rates (L,) float64, of the
input (applied by the trainers to their gathered copy of the batch, see
``drop_inputs``) and of each hidden layer, and the masks of update number
``step`` of the fit keyed ``key`` for rows row0.. of the batch (dropout.py).

Inputs X are dense (n, sizes[0]) arrays or ``SparseRows`` (sparse.py): the
first layer's kernels follow X's type, the other layers are the same for both.
"""

import functools

from numba import prange, types
from numba.extending import overload

from ._jit import cast_like, helper, inline_kernel, kernel, parallel_kernel
from .dense import dense_backward, dense_backward_input, dense_forward
from .dropout import dropout_forward
from .activations import activation_backward, activation_forward, dropout_backward
from .losses import loss_forward_backward
from .optim import SGD, clip_gradient, optimizer_update, sgd_coefficients, without_l2
from .sparse import is_sparse, linear_backward, linear_forward, n_rows, row_range


# Parameters per block of the update loop (threads take whole blocks).
UPDATE_BLOCK = 4096


@helper
def param_offset(sizes, l):
    """Start of layer l's (W, b) block in the flat buffer; l = n_layers gives its length."""
    start = 0
    for i in range(l):
        start += (sizes[i] + 1) * sizes[i + 1]
    return start


@helper
def layer_params(params, sizes, l):
    """Views (W, b) of layer l: W (sizes[l], sizes[l + 1]), b (sizes[l + 1],)."""
    start = param_offset(sizes, l)
    fan_in, fan_out = sizes[l], sizes[l + 1]
    mid = start + fan_in * fan_out
    return params[start:mid].reshape((fan_in, fan_out)), params[mid:mid + fan_out]


@helper
def update_block(sizes, k):
    """Block k of the update loop as (start, stop, is_weights): the flat buffer
    cut into runs of at most UPDATE_BLOCK parameters, none straddling a W and
    a b, so that each block is all weights or all biases. k = -1 gives
    (number of blocks, 0, False)."""
    count = 0
    start = 0
    for l in range(sizes.shape[0] - 1):
        for length, is_weights in ((sizes[l] * sizes[l + 1], True), (sizes[l + 1], False)):
            n = (length + UPDATE_BLOCK - 1) // UPDATE_BLOCK
            if count <= k < count + n:
                a = start + (k - count) * UPDATE_BLOCK
                return a, min(a + UPDATE_BLOCK, start + length), is_weights
            count += n
            start += length
    return count, 0, False


@helper
def work_size(sizes, rows, gather, sparse=False, dropout=False):
    """Length of the ``work`` buffer for batches of up to ``rows`` samples;
    ``gather`` adds room for a batch of targets and weights, and of inputs
    unless they are ``sparse`` (read in place); ``dropout``, for the masks."""
    width = 0
    for l in range(1, sizes.shape[0]):
        width += 2 * sizes[l]
    if gather:
        width += sizes[-1] + 1 + (0 if sparse else sizes[0])
    if dropout:
        width += _hidden_width(sizes)
    return rows * width


@helper
def _hidden_width(sizes):
    width = 0
    for l in range(1, sizes.shape[0] - 1):
        width += sizes[l]
    return width


@helper
def _mask(work, sizes, rows, l, n):
    """M_l (n, sizes[l]) of hidden layer l, at the end of ``work``."""
    start = work.shape[0] - rows * _hidden_width(sizes)
    for i in range(1, l):
        start += rows * sizes[i]
    return _block(work, start, n, sizes[l])


@helper
def _block(work, start, n, m):
    return work[start:start + n * m].reshape((n, m))


@helper
def _activation(work, sizes, rows, l, n):
    """A_l (n, sizes[l]) for l >= 1, inside ``work`` laid out for ``rows`` samples."""
    start = 0
    for i in range(1, l):
        start += rows * sizes[i]
    return _block(work, start, n, sizes[l])


@helper
def _delta(work, sizes, rows, l, n):
    """dZ_l (n, sizes[l]) for l >= 1."""
    start = 0
    for i in range(1, sizes.shape[0]):
        start += rows * sizes[i]
    for i in range(1, l):
        start += rows * sizes[i]
    return _block(work, start, n, sizes[l])


@helper
def _copy_rows(out, A, order, start):
    """out[r] = A[order[start + r]] for every row r of out (n, m), element by
    element: row assignment would compile Numba's shape-mismatch message, a
    second of cold compile time."""
    n, m = out.shape
    for r in range(n):
        row = A[order[start + r]]
        for j in range(m):
            out[r, j] = row[j]


def _gathered_inputs(out, X, order, start, n):
    """Rows order[start:start + n] of a dense X, copied to the start of the
    flat buffer ``out`` (returns that (n, sizes[0]) block); of a sparse X,
    which lists its rows in the epoch's order, the n from ``start``, read in
    place. Compiled only."""
    raise NotImplementedError("compiled only: the inputs of _gathered")


@overload(_gathered_inputs)
def _gathered_inputs_typed(out, X, order, start, n):
    if is_sparse(X):
        return lambda out, X, order, start, n: row_range(X, start, start + n)

    def dense(out, X, order, start, n):
        Xb = _block(out, 0, n, X.shape[1])
        _copy_rows(Xb, X, order, start)
        return Xb
    return dense


@helper
def _gathered(work, sizes, rows, X, T, weights, order, start, n):
    """The batch of samples order[start:start + n]: rows of T and weights
    (None or (n_samples,)) copied into the batch buffers at the end of
    ``work``, and the inputs as ``_gathered_inputs`` takes them. Returns Xb
    (n, sizes[0]) or SparseRows, Tb (n, sizes[-1]) and their weights (n,) or None."""
    offset = 0
    for i in range(1, sizes.shape[0]):
        offset += 2 * rows * sizes[i]
    Tb = _block(work, offset, n, sizes[-1])
    _copy_rows(Tb, T, order, start)
    Xb = _gathered_inputs(work[offset + rows * (sizes[-1] + 1):], X, order, start, n)
    if weights is None:
        return Xb, Tb, weights
    wb = work[offset + rows * sizes[-1]:][:n]
    for r in range(n):
        wb[r] = weights[order[start + r]]
    return Xb, Tb, wb


@helper
def batch_mass(weights, order, start, m):
    """Total weight of the m samples order[start:start + m]: m when weights
    (n_samples,) is None."""
    if weights is None:
        return float(m)
    mass = 0.0
    for r in range(start, start + m):
        mass += weights[order[r]]
    return mass


@helper
def batch_run(work, sizes, rows, X, T, weights, order, gather, a, b):
    """The samples a..b-1 of the epoch as (Xb, Tb, wb): gathered from
    ``order`` into the batch buffers of ``work`` when ``gather`` (see
    ``_gathered``), else views of X (dense or SparseRows), T and weights."""
    if gather:
        return _gathered(work, sizes, rows, X, T, weights, order, a, b - a)
    return row_range(X, a, b), T[a:b], weights if weights is None else weights[a:b]


@kernel
def forward(work, rows, params, sizes, hidden, output, X, dropout=None):
    """Run the network on X (n, sizes[0]) or SparseRows, n <= rows; return
    the output view A_L (n, sizes[-1]). Hidden layer l (1-based) uses the
    activation ``hidden[l - 1]`` (hidden: int64 codes, one per hidden layer),
    the last layer ``output`` (IDENTITY leaves logits for the cross-entropy
    losses); with ``dropout``, the hidden outputs go through its masks."""
    L = sizes.shape[0] - 1
    n = n_rows(X)
    W, b = layer_params(params, sizes, 0)
    A = _activation(work, sizes, rows, 1, n)
    linear_forward(A, X, W, b)
    activation_forward(A, A, hidden[0] if L > 1 else output)
    for l in range(1, L):
        _drop(work, sizes, rows, A, l, dropout)
        W, b = layer_params(params, sizes, l)
        A_out = _activation(work, sizes, rows, l + 1, n)
        dense_forward(A_out, A, W, b)
        activation_forward(A_out, A_out, hidden[l] if l < L - 1 else output)
        A = A_out
    return A


@helper
def _drop(work, sizes, rows, A, l, dropout):
    """A (n, sizes[l]) of hidden layer l through its dropout mask, when
    ``dropout`` is given and drops units of this layer."""
    if dropout is not None:
        rates, key, step, row0 = dropout
        if rates[l] > 0:
            dropout_forward(A, _mask(work, sizes, rows, l, A.shape[0]), rates[l], key,
                            step, l, row0)


@kernel
def backward(grads, work, rows, params, sizes, hidden, X, alpha, beta, bias_beta, dropout=None):
    """Backpropagation from the output delta dZ_L, which a loss kernel has
    written into ``work`` after ``forward`` on X (n, sizes[0]).

    Writes grads = alpha * gradient + beta * grads (n_params,), with
    ``bias_beta`` in place of beta for the biases. ``grads`` may
    be ``params`` itself: with alpha = -lr that is an SGD step, each layer's
    update made after the layer below has taken its delta through the old
    weights. ``dropout`` as ``forward`` had it.
    """
    L = sizes.shape[0] - 1
    n = n_rows(X)
    D = _delta(work, sizes, rows, L, n)
    for l in range(L - 1, 0, -1):
        W = layer_params(params, sizes, l)[0]
        A_in = _activation(work, sizes, rows, l, n)
        D_in = _delta(work, sizes, rows, l, n)
        dense_backward_input(D_in, D, W)
        if dropout is not None and dropout[0][l] > 0:
            dropout_backward(D_in, D_in, A_in, _mask(work, sizes, rows, l, n),
                             1.0 - dropout[0][l], hidden[l - 1])
        else:
            activation_backward(D_in, D_in, A_in, hidden[l - 1])
        dW, db = layer_params(grads, sizes, l)
        dense_backward(dW, db, D, A_in, alpha, beta, bias_beta)
        D = D_in
    dW, db = layer_params(grads, sizes, 0)  # the input needs no gradient
    linear_backward(dW, db, D, X, alpha, beta, bias_beta)


@inline_kernel
def gradient(grads, work, rows, params, sizes, hidden, output, loss, X, T, scale, alpha, beta,
             bias_beta, weights=None, dropout=None):
    """Loss of the batch (X, T) and its gradient w.r.t. every parameter
    (through the masks of ``dropout``, when given).

    Writes grads = alpha * gradient + beta * grads (n_params,), bias_beta for
    the biases, as ``backward`` does; returns (loss, n_correct) as the loss kernels do.
    X : (n, sizes[0]), T : (n, sizes[-1]), n <= rows. Sample i's loss weighs
    ``scale * weights[i]`` (weights (n,)), or ``scale`` when weights is None
    (1 / n for the batch mean). Inlined into its callers, like
    the loss dispatch in it, so a constant ``loss`` compiles that loss alone.
    """
    out = forward(work, rows, params, sizes, hidden, output, X, dropout)
    D = _delta(work, sizes, rows, sizes.shape[0] - 1, n_rows(X))
    value, correct = loss_forward_backward(D, out, T, loss, output, scale, weights)
    backward(grads, work, rows, params, sizes, hidden, X, alpha, beta, bias_beta, dropout)
    return value, correct


@functools.cache
def batch_trainer(loss, rule, parallel):
    """``train_batches`` compiled for one loss and one optimizer rule (codes),
    serial or with the shards and the update blocks on Numba's threads.

    The codes are closure constants, so Numba prunes the other losses and
    rules before typing: a first fit compiles what it uses, not every loss
    and rule. Numba's disk cache keys a closure by its code and closure
    values (not by its compiler options), so each variant is cached as itself.
    """
    loop = prange if parallel else range

    def train_batches(params, state, grads, work, stats, rows, sizes, hidden, output,
                      X, T, weights, order, gather, batch, first, stop, hyper, step, clip,
                      dropout):
        """Minibatch SGD over batches first..stop-1 of one epoch, each split into shards.

        Batch i holds the samples ``order[i * batch:(i + 1) * batch]`` (the last may
        be short). Its m samples are cut into n_shards runs of ceil(m / n_shards)
        (at most ``rows``, the capacity ``work`` was sized for); shard t takes
        run t, copied into ``work[t]`` when ``gather`` (without it
        ``order`` must be 0..n-1 and shards are views of X), and writes its part of
        the gradient of the batch's mean loss into ``grads[t]``: the mean weighted
        by ``weights`` (n,) when given (sum_i w_i loss_i / sum_i w_i over the batch,
        zero for a batch of zero weight). The shard gradients
        are summed in shard order and one ``optimizer_update`` (``hyper``,
        state) follows, in the blocks of ``update_block`` (L2 on the weights
        only); batch i is update number ``step + i + 1``. With ``clip`` > 0 the
        summed gradient is first scaled to norm ``clip`` where its L2 norm is
        larger (``clip_gradient``; the L2 penalty is added after). ``dropout``
        is None or (rates, key): batch i takes the masks of its update number
        for its rows in batch order (see dropout.py), whatever the shards.

        X is dense (n, sizes[0]) or a SparseRows that lists its rows in the
        epoch's order (rows permuted by ``order``): a shard then reads its run
        of those rows in place, and ``order`` picks only targets and weights.

        params (n_params,), state (2, n_params), grads (n_shards, n_params),
        work (n_shards, work_size), stats (n_shards, 2) float64 for each shard's
        loss and count of correct rows.
        Returns (sum over samples of the loss, times its weight when weighted,
        n_correct), taken before each update.
        """
        n = n_rows(X)
        n_shards = grads.shape[0]
        one, zero = cast_like(params, 1.0), cast_like(params, 0.0)
        bias_hyper = without_l2(params, hyper)
        step_scale, decay = sgd_coefficients(params, hyper)
        bias_decay = sgd_coefficients(params, bias_hyper)[1]
        n_blocks = update_block(sizes, -1)[0]
        total = 0.0
        correct = 0
        for i in range(first, stop):
            s = i * batch
            m = min(s + batch, n) - s
            mass = batch_mass(weights, order, s, m)
            scale = 1.0 / mass if mass > 0 else 0.0
            size = (m + n_shards - 1) // n_shards
            active = (m + size - 1) // size
            # Plain SGD on one shard writes its step straight into params,
            # with no gradient buffer to write and read back.
            fused = rule == SGD and active == 1 and clip == 0
            for t in loop(active):
                a = s + t * size
                b = min(a + size, s + m)
                Xb, Tb, wb = batch_run(work[t], sizes, rows, X, T, weights, order, gather, a, b)
                masks = _masks(dropout, step + i + 1, t * size)
                drop_inputs(Xb, masks)
                if fused:
                    target, alpha, beta, bias_beta = params, step_scale, decay, bias_decay
                else:
                    target, alpha, beta, bias_beta = grads[t], one, zero, zero
                stats[t, 0], stats[t, 1] = gradient(target, work[t], rows, params, sizes, hidden,
                                                    output, loss, Xb, Tb, scale, alpha, beta,
                                                    bias_beta, wb, masks)
            if not fused:
                if clip > 0:
                    clip_gradient(grads[:active], clip)
                    active_rows = 1
                else:
                    active_rows = active
                for block in loop(n_blocks):
                    start, stop, is_weights = update_block(sizes, block)
                    optimizer_update(params, state, grads[:active_rows], rule,
                                     hyper if is_weights else bias_hyper, step + i + 1,
                                     start, stop)
            for t in range(active):
                total += stats[t, 0] * mass
                correct += int(stats[t, 1])
        return total, correct

    return (parallel_kernel if parallel else kernel)(train_batches)


def drop_inputs(X, dropout):
    """Input dropout on a batch X (n, sizes[0]) that a trainer gathered into
    its own buffer, with ``forward``'s ``dropout`` (None: none), when the
    input's rate is above 0. Compiled only."""
    raise NotImplementedError("compiled only: the input dropout of the trainers")


@overload(drop_inputs)
def _drop_inputs_typed(X, dropout):
    # Sparse inputs have no input dropout (fit refuses it): nothing to type there.
    if isinstance(dropout, types.NoneType) or is_sparse(X):
        return lambda X, dropout: None

    def drop(X, dropout):
        rates, key, step, row0 = dropout
        if rates[0] > 0:
            dropout_forward(X, None, rates[0], key, step, 0, row0)
    return drop


def _masks(dropout, step, row0):
    """``forward``'s dropout of update ``step`` for rows row0.. of its batch,
    from the trainer's (rates, key), or None. Compiled only."""
    raise NotImplementedError("compiled only: the masks of train_batches")


@overload(_masks)
def _masks_typed(dropout, step, row0):
    # Chosen by type, so that the result is a tuple or None, never an optional.
    if isinstance(dropout, types.NoneType):
        return lambda dropout, step, row0: None
    return lambda dropout, step, row0: (dropout[0], dropout[1], step, row0)
