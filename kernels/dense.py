"""The dense (fully connected) layer Z = X @ W + b and its gradients."""

import numpy as np

from ._jit import kernel, vector_kernel


@vector_kernel
def dense_forward(Z, X, W, b):
    """Z = X @ W + b.

    Z : (n, fan_out), X : (n, fan_in), W : (fan_in, fan_out), b : (fan_out,).
    """
    np.dot(X, W, Z)
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            Z[i, j] += b[j]


@vector_kernel
def dense_backward(dW, db, dZ, X):
    """Gradients w.r.t. W and b given dZ, the gradient w.r.t. Z = X @ W + b.

    dW : (fan_in, fan_out) = X.T @ dZ, db : (fan_out,) = dZ summed over rows,
    dZ : (n, fan_out), X : (n, fan_in).
    """
    np.dot(X.T, dZ, dW)
    n, m = dZ.shape
    db[:] = 0.0
    for i in range(n):
        for j in range(m):
            db[j] += dZ[i, j]


@kernel
def dense_backward_input(dX, dZ, W):
    """dX = dZ @ W.T, the gradient w.r.t. the layer input X.

    dX : (n, fan_in), dZ : (n, fan_out), W : (fan_in, fan_out).
    """
    np.dot(dZ, W.T, dX)
