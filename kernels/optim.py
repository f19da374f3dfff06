"""Parameter updates over the flat parameter buffer."""

from ._jit import kernel


@kernel
def sgd_update(params, grads, lr):
    """params -= lr * grads. params, grads : (n_params,)."""
    for i in range(params.shape[0]):
        params[i] -= lr * grads[i]
