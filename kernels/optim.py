"""Optimizer updates over the flat parameter buffer.

Every rule reads the gradient as the sum of the per-shard rows of ``grads``
(summed in row order), adds the L2 penalty's gradient ``l2 * params``, and
keeps its state in ``state`` (2, n_params), in the parameters' layout.
"""

import numpy as np

from ._jit import vector_kernel

SGD, MOMENTUM, NESTEROV, ADAM = range(4)


@vector_kernel
def optimizer_update(params, state, grads, rule, hyper, step, start, stop):
    """One update of params[start:stop] by the rule numbered ``rule``.

    params : (n_params,); state : (2, n_params); grads : (n_shards, n_params).
    hyper = (lr, momentum, beta_1, beta_2, epsilon, l2, weight_decay); step is
    the 1-based update count (Adam's bias correction).

    SGD       p -= lr * g
    MOMENTUM  v = momentum * v - lr * g;  p += v
    NESTEROV  v = momentum * v - lr * g;  p += momentum * v - lr * g
    ADAM      m = b1 m + (1 - b1) g;  s = b2 s + (1 - b2) g^2;
              p -= lr * (m / (1 - b1^step)) / (sqrt(s / (1 - b2^step)) + epsilon)
    Then decoupled weight decay (AdamW): p -= lr * weight_decay * p_old.
    """
    lr, momentum, beta_1, beta_2, epsilon, l2, weight_decay = hyper
    correct_1 = 1.0 - beta_1 ** step
    correct_2 = 1.0 - beta_2 ** step
    for j in range(start, stop):
        p = params[j]
        g = grads[0, j]
        for t in range(1, grads.shape[0]):
            g += grads[t, j]
        g += l2 * p
        if rule == SGD:
            delta = -lr * g
        elif rule == ADAM:
            m = beta_1 * state[0, j] + (1.0 - beta_1) * g
            s = beta_2 * state[1, j] + (1.0 - beta_2) * g * g
            state[0, j] = m
            state[1, j] = s
            delta = -lr * (m / correct_1) / (np.sqrt(s / correct_2) + epsilon)
        else:
            v = momentum * state[0, j] - lr * g
            state[0, j] = v
            delta = momentum * v - lr * g if rule == NESTEROV else v
        params[j] = p + delta - lr * weight_decay * p
