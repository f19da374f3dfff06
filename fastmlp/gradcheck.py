"""Finite-difference check of ``MLP.loss_and_grad``."""

import numpy as np


def gradcheck(net, X, y, eps=1e-6, dropout=None):
    """Largest error of the backpropagated gradient against central differences.

    For every parameter p_i, n_i = (loss(p_i + eps) - loss(p_i - eps)) / (2 eps).
    Returns max_i |g_i - n_i| / max_i |n_i|: each component's error relative
    to the gradient's scale, so that near-zero components cannot dominate
    through round-off. Use a float64 model; the parameters are left unchanged.
    ``dropout`` (key, step) holds the masks of that key and step fixed, as
    ``MLP.loss_and_grad`` takes it.
    """
    _, grad = net.loss_and_grad(X, y, dropout)
    params = net.params
    numeric = np.empty_like(grad)
    for i in range(params.size):
        saved = params[i]
        params[i] = saved + eps
        up, _ = net.loss_and_grad(X, y, dropout)
        params[i] = saved - eps
        down, _ = net.loss_and_grad(X, y, dropout)
        params[i] = saved
        numeric[i] = (up - down) / (2 * eps)
    scale = np.abs(numeric).max()
    return np.abs(grad - numeric).max() / (scale if scale > 0 else 1.0)
