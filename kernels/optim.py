"""Parameter updates over the flat parameter buffer."""

from ._jit import vector_kernel


@vector_kernel
def sgd_update(params, grads, lr, start, stop):
    """params[start:stop] -= lr * (sum of the rows of grads)[start:stop].

    params : (n_params,); grads : (n_shards, n_params), one gradient per shard,
    summed in row order.
    """
    n_shards = grads.shape[0]
    for j in range(start, stop):
        g = grads[0, j]
        for t in range(1, n_shards):
            g += grads[t, j]
        params[j] -= lr * g
