"""Optimizer updates over the flat parameter buffer.

Every rule reads the gradient as the sum of the per-shard rows of ``grads``
(summed in row order), adds the L2 penalty's gradient ``l2 * params``, and
keeps its state in ``state`` (2, n_params), in the parameters' layout. The
trainer penalises weights only: it updates biases with ``without_l2(hyper)``.
"""

import numpy as np

from ._jit import cast_like, helper, inline_kernel, vector_kernel

SGD, MOMENTUM, NESTEROV, ADAM = range(4)


@helper
def sgd_coefficients(params, hyper):
    """(alpha, beta) of the SGD rule written as params = beta * params + alpha * g,
    in the parameters' dtype: alpha = -lr, beta = 1 - lr * (l2 + weight_decay).
    ``hyper`` as for ``optimizer_update``; the trainer uses them to write the
    step straight into the weights."""
    lr, l2, weight_decay = hyper[0], hyper[5], hyper[6]
    return cast_like(params, -lr), cast_like(params, 1.0 - lr * (l2 + weight_decay))


@helper
def without_l2(params, hyper):
    """``hyper`` with the L2 penalty zero, for the biases, which L2 leaves alone
    (as scikit-learn and Keras' kernel regularizers do)."""
    lr, momentum, beta_1, beta_2, epsilon, _, weight_decay = hyper
    return lr, momentum, beta_1, beta_2, epsilon, cast_like(params, 0.0), weight_decay


@vector_kernel
def _shard_sum(grads, start, stop):
    """grads[0, start:stop] += the other rows, in row order; returns that view."""
    g = grads[0, start:stop]
    for t in range(1, grads.shape[0]):
        other = grads[t, start:stop]
        for j in range(g.shape[0]):
            g[j] += other[j]
    return g


@vector_kernel
def clip_gradient(grads, clip):
    """Sum the shard rows of grads (n_shards, n_params) into its first row and
    scale that row to the norm ``clip`` when its L2 norm is larger; returns
    the norm before clipping. One pass to measure, one more to scale."""
    g = _shard_sum(grads, 0, grads.shape[1])
    squares = 0.0
    for j in range(g.shape[0]):
        squares += np.float64(g[j]) * g[j]
    norm = np.sqrt(squares)
    if norm > clip:
        shrink = cast_like(g, clip / norm)
        for j in range(g.shape[0]):
            g[j] *= shrink
    return norm


# One plain loop per rule over slices, with coefficients in the parameters'
# dtype, so that LLVM vectorises each; the only branch inside, Nesterov's, is
# the same for every j.

@vector_kernel
def _sgd(p, g, hyper):
    alpha, beta = sgd_coefficients(p, hyper)
    for j in range(p.shape[0]):
        p[j] = beta * p[j] + alpha * g[j]


@vector_kernel
def _momentum(p, v, g, hyper, nesterov):
    lr, momentum, l2, weight_decay = hyper[0], hyper[1], hyper[5], hyper[6]
    shrink = cast_like(p, 1.0 - lr * weight_decay)
    for j in range(p.shape[0]):
        gj = g[j] + l2 * p[j]
        v[j] = momentum * v[j] - lr * gj
        p[j] = shrink * p[j] + (momentum * v[j] - lr * gj if nesterov else v[j])


@vector_kernel
def _adam(p, m, s, g, hyper, step):
    lr, _, beta_1, beta_2, epsilon, l2, weight_decay = hyper
    shrink = cast_like(p, 1.0 - lr * weight_decay)
    step_1 = cast_like(p, lr / (1.0 - beta_1 ** step))
    root_2 = cast_like(p, 1.0 / np.sqrt(1.0 - beta_2 ** step))
    keep_1, keep_2 = cast_like(p, 1.0 - beta_1), cast_like(p, 1.0 - beta_2)
    for j in range(p.shape[0]):
        gj = g[j] + l2 * p[j]
        m[j] = beta_1 * m[j] + keep_1 * gj
        s[j] = beta_2 * s[j] + keep_2 * gj * gj
        p[j] = shrink * p[j] - step_1 * m[j] / (np.sqrt(s[j]) * root_2 + epsilon)


@inline_kernel
def optimizer_update(params, state, grads, rule, hyper, step, start, stop):
    """One update of params[start:stop] by the rule numbered ``rule``.

    params : (n_params,); state : (2, n_params); grads : (n_shards, n_params),
    whose first row is overwritten with the shard sum.
    hyper = (lr, momentum, beta_1, beta_2, epsilon, l2, weight_decay); step is
    the 1-based update count (Adam's bias correction).

    SGD       p -= lr * g
    MOMENTUM  v = momentum * v - lr * g;  p += v
    NESTEROV  v = momentum * v - lr * g;  p += momentum * v - lr * g
    ADAM      m = b1 m + (1 - b1) g;  s = b2 s + (1 - b2) g^2;
              p -= lr * (m / (1 - b1^step)) / (sqrt(s / (1 - b2^step)) + epsilon)
    Then decoupled weight decay (AdamW): p -= lr * weight_decay * p_old.
    Inlined into its caller: where ``rule`` is a compile-time constant, Numba
    compiles that rule alone.
    """
    p = params[start:stop]
    g = _shard_sum(grads, start, stop)
    if rule == SGD:
        _sgd(p, g, hyper)
    elif rule == ADAM:
        _adam(p, state[0, start:stop], state[1, start:stop], g, hyper, step)
    else:
        _momentum(p, state[0, start:stop], g, hyper, rule == NESTEROV)
