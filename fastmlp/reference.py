"""Plain NumPy reference for every kernel and for whole training runs.

Readable first, vectorised, float64. The tests hold the Numba kernels against
these functions; the library itself never calls them. Names follow
``fastmlp.kernels``, but these return their results instead of filling buffers.
Parameters use the same flat layout (see ``unpack``). Inputs X may be
scipy sparse matrices wherever the kernels take sparse input.

``fastmlp.registry`` names these functions; the ones here that take an
activation or a loss by name look it up there, importing the registry when
called, since the registry imports this module.
"""

import numpy as np

from .kernels import LEAKY_SLOPE

# Activations g(Z), each with its derivative g'(Z) written in terms of the
# output A = g(Z); tanh is np.tanh.


def identity(Z):
    return Z


def identity_derivative(A):
    return np.ones_like(A)


def sigmoid(Z):
    """1 / (1 + exp(-Z)) as exp(-softplus(-Z)), which cannot overflow."""
    return np.exp(-np.logaddexp(0.0, -Z))


def sigmoid_derivative(A):
    return A * (1.0 - A)


def tanh_derivative(A):
    return 1.0 - A**2


def relu(Z):
    return np.maximum(Z, 0.0)


def relu_derivative(A):
    return (A > 0).astype(A.dtype)


def leaky_relu(Z):
    return np.where(Z > 0, Z, LEAKY_SLOPE * Z)


def leaky_relu_derivative(A):
    return np.where(A > 0, 1.0, LEAKY_SLOPE)


def dense_forward(X, W, b):
    """Z (n, fan_out) = X (n, fan_in) @ W (fan_in, fan_out) + b (fan_out,);
    X dense or sparse."""
    return X @ W + b


def dense_backward(dZ, X, W):
    """Gradients (dX, dW, db) w.r.t. X, W and b, given dZ = dloss/dZ (n, fan_out);
    X dense or sparse."""
    return dZ @ W.T, X.T @ dZ, dZ.sum(axis=0)


def softmax(Z):
    """Row-wise softmax of Z (n, k)."""
    E = np.exp(Z - Z.max(axis=1, keepdims=True))
    return E / E.sum(axis=1, keepdims=True)


def logsumexp(Z):
    """log(sum_j exp(Z_ij)) for each row of Z (n, k): shape (n,)."""
    zmax = Z.max(axis=1)
    return zmax + np.log(np.exp(Z - zmax[:, None]).sum(axis=1))


def row_weights(n, weights=None):
    """The weight of each of n rows in a loss, shape (n, 1): 1 / n for the
    mean, or weights / weights.sum() for the weighted mean (0 if that is 0)."""
    if weights is None:
        return np.full((n, 1), 1.0 / n)
    total = weights.sum()
    return (weights / total if total > 0 else 0.0 * weights)[:, None]


def softmax_cross_entropy(Z, T, weights=None):
    """Mean over rows (weighted by ``weights`` (n,) if given) of
    -sum_j T_ij log softmax(Z)_ij, and its gradient w.r.t. Z.

    Z, T : (n, k). Returns (loss, dZ (n, k)).
    """
    s = row_weights(Z.shape[0], weights)
    log_p = Z - logsumexp(Z)[:, None]
    loss = -(s * T * log_p).sum()
    dZ = s * (softmax(Z) * T.sum(axis=1, keepdims=True) - T)
    return loss, dZ


def binary_cross_entropy(Z, T, weights=None):
    """Mean over rows (weighted by ``weights`` (n,) if given) of
    sum_j -[T log sigmoid(Z) + (1 - T) log(1 - sigmoid(Z))], and its gradient
    w.r.t. the logits Z. Z, T : (n, k). Returns (loss, dZ)."""
    s = row_weights(Z.shape[0], weights)
    loss = (s * (np.logaddexp(0.0, Z) - T * Z)).sum()
    return loss, s * (sigmoid(Z) - T)


def mean_squared_error(A, T, output, weights=None):
    """Mean over rows (weighted by ``weights`` (n,) if given) of
    sum_j (A_ij - T_ij)**2 / 2 for outputs A = g(Z), g the activation named
    ``output``; returns (loss, dZ), dZ the gradient w.r.t. Z."""
    from .registry import ACTIVATIONS
    s = row_weights(A.shape[0], weights)
    R = A - T
    return 0.5 * (s * R**2).sum(), s * R * ACTIVATIONS[output].derivative(A)


def optimizer_update(params, state, grad, rule, lr, momentum=0.0, beta_1=0.9, beta_2=0.999,
                     epsilon=1e-8, l2=0.0, weight_decay=0.0, step=1, penalised=1.0):
    """One update by ``rule`` ("sgd", "momentum", "nesterov", "adam") of the flat
    params (n_params,) with gradient grad (n_params,) and state (2, n_params);
    returns (new params, new state). ``step`` counts updates from 1. The L2
    penalty applies where ``penalised`` (1 or an (n_params,) 0/1 mask) is 1."""
    g = grad + l2 * penalised * params
    state = state.copy()
    if rule == "sgd":
        delta = -lr * g
    elif rule == "adam":
        state[0] = beta_1 * state[0] + (1 - beta_1) * g
        state[1] = beta_2 * state[1] + (1 - beta_2) * g**2
        m_hat = state[0] / (1 - beta_1**step)
        s_hat = state[1] / (1 - beta_2**step)
        delta = -lr * m_hat / (np.sqrt(s_hat) + epsilon)
    else:
        state[0] = momentum * state[0] - lr * g
        delta = momentum * state[0] - lr * g if rule == "nesterov" else state[0]
    return params + delta - lr * weight_decay * params, state


def unpack(params, sizes):
    """Views [(W, b), ...] of the flat buffer: W (sizes[l], sizes[l+1]), b (sizes[l+1],)."""
    layers, start = [], 0
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        W = params[start:start + fan_in * fan_out].reshape(fan_in, fan_out)
        start += fan_in * fan_out
        layers.append((W, params[start:start + fan_out]))
        start += fan_out
    return layers


def layer_activations(activation, sizes):
    """The activation name of each hidden layer: ``activation`` (a name) for
    all, or its entries (one per hidden layer)."""
    n_hidden = len(sizes) - 2
    return [activation] * n_hidden if isinstance(activation, str) else list(activation)


def splitmix(z):
    """SplitMix64's finaliser of a uint64 array, wrapping as C does."""
    z = (z ^ (z >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)
    z = (z ^ (z >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)
    return z ^ (z >> np.uint64(31))


def dropout_mask(rate, key, step, layer, rows, width):
    """The inverted-dropout mask (len(rows), width) of hidden layer ``layer``
    in update ``step`` of a fit keyed ``key``, for the batch rows ``rows``:
    unit j of row r is dropped (0) when the top 24 bits of the hash chain
    key, step, layer, r, j fall below rate * 2**24, else kept (1 / (1 - rate))."""
    z = splitmix(np.array([key], np.uint64) + np.uint64(0x9E3779B97F4A7C15))
    for part in (step, layer):
        z = splitmix(z ^ np.uint64(part))
    z = splitmix(z ^ np.asarray(rows, np.uint64))[:, None]
    draws = splitmix(z ^ np.arange(width, dtype=np.uint64)) >> np.uint64(40)
    return np.where(draws >= np.ceil(rate * 2.0**24), 1.0 / (1.0 - rate), 0.0)


def forward(params, sizes, activation, output, X, dropout=None):
    """Outputs [A_0 = X, A_1, ..., A_L] of every layer; hidden layers use
    ``activation`` (a name, or one per hidden layer), the last ``output``.
    ``dropout``: None, or (rates, key, step, row0), the input's rate and one
    per hidden layer, whose masks (``dropout_mask``, rows row0.. of the batch;
    the input is layer 0) multiply the inputs and the hidden outputs; then
    also returns the hidden layers' masks [M_1, ..., M_{L-1}]."""
    from .registry import ACTIVATIONS
    layers = unpack(params, sizes)
    names = layer_activations(activation, sizes) + [output]
    A, masks = [X], []
    if dropout is not None:
        rates, key, step, row0 = dropout
        rows = np.arange(row0, row0 + X.shape[0])
        if rates[0] > 0:
            A[0] = X * dropout_mask(rates[0], key, step, 0, rows, X.shape[1])
    for l, ((W, b), name) in enumerate(zip(layers, names), start=1):
        A.append(ACTIVATIONS[name].forward(dense_forward(A[-1], W, b)))
        if dropout is not None and l < len(layers):
            masks.append(dropout_mask(rates[l], key, step, l, rows, A[-1].shape[1]))
            A[-1] = A[-1] * masks[-1]
    return A if dropout is None else (A, masks)


def loss_and_grad(params, sizes, activation, output, loss, X, T, weights=None, dropout=None):
    """Mean loss over the batch (X (n, sizes[0]), T (n, sizes[-1])), weighted
    by ``weights`` (n,) if given, and its gradient w.r.t. the flat parameter
    vector, by backpropagation; through the masks of ``dropout`` as
    ``forward`` takes it.

    ``output`` is the last layer's activation as the kernels see it:
    "identity" (logits) for the cross-entropy losses.
    """
    from .registry import ACTIVATIONS, LOSSES
    if dropout is None:
        A, masks = forward(params, sizes, activation, output, X), None
    else:
        A, masks = forward(params, sizes, activation, output, X, dropout)
    # A loss that implies its output activation takes logits; one that implies
    # none (mse) takes the output activation's name.
    entry = LOSSES[loss]
    value, dZ = (entry.reference(A[-1], T, weights) if entry.output else
                 entry.reference(A[-1], T, output, weights))
    grads = np.zeros_like(params)
    layers, grad_layers = unpack(params, sizes), unpack(grads, sizes)
    for l in range(len(layers) - 1, -1, -1):
        dX, dW, db = dense_backward(dZ, A[l], layers[l][0])
        grad_layers[l][0][...] = dW
        grad_layers[l][1][...] = db
        if l > 0:  # A[0] is the input X
            derivative = ACTIVATIONS[layer_activations(activation, sizes)[l - 1]].derivative
            if masks is None:
                dZ = dX * derivative(A[l])
            else:  # A[l] = M * g(Z): dZ = dX * M * g'(Z), g(Z) the undropped output
                M = masks[l - 1]
                kept = np.divide(A[l], M, out=np.zeros_like(A[l]), where=M != 0)
                dZ = dX * M * derivative(kept)
    return value, grads


def clip_by_norm(grads, clip_norm):
    """grads scaled to L2 norm ``clip_norm`` if their norm is larger."""
    norm = np.sqrt((grads**2).sum())
    return grads * (clip_norm / norm) if norm > clip_norm else grads


def train(params, sizes, activation, output, loss, X, T, orders, batch_size, lr,
          rule="sgd", weights=None, clip_norm=None, dropout=None, **hyper):
    """Minibatch training: for each epoch's sample order in ``orders``, batches
    of ``batch_size`` consecutive entries (the last may be short), one
    ``optimizer_update`` by ``rule`` each, with learning rate ``lr`` (a number,
    or a list with one per epoch) and the other ``hyper`` parameters; each
    batch's loss is weighted by ``weights`` (n,) if given, and its gradient
    clipped by ``clip_by_norm`` when ``clip_norm`` is given. ``dropout``:
    None, or (rates, key): update number k takes the masks of step k.
    Returns the final flat parameters and the list of batch losses."""
    losses, state, step = [], np.zeros((2, params.size)), 0
    weights_only = np.zeros_like(params)  # L2 penalises the weights, not the biases
    for W, _ in unpack(weights_only, sizes):
        W[...] = 1.0
    for epoch, order in enumerate(orders):
        epoch_lr = lr[epoch] if isinstance(lr, list) else lr
        for s in range(0, len(order), batch_size):
            batch = order[s:s + batch_size]
            step += 1
            masks = None if dropout is None else (*dropout, step, 0)
            value, grads = loss_and_grad(params, sizes, activation, output, loss,
                                         X[batch], T[batch],
                                         None if weights is None else weights[batch], masks)
            if clip_norm is not None:
                grads = clip_by_norm(grads, clip_norm)
            params, state = optimizer_update(params, state, grads, rule, epoch_lr,
                                             step=step, penalised=weights_only, **hyper)
            losses.append(value)
    return params, losses
