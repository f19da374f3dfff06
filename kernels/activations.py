"""Elementwise activations and their derivatives.

Derivatives are written in terms of the forward output ``A = g(Z)``, so the
backward pass needs no copy of the pre-activation ``Z``.
"""

import numpy as np

from ._jit import helper, kernel

IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU = range(5)
LEAKY_SLOPE = 0.01


@helper
def sigmoid(z):
    """Logistic function of one scalar, without overflow for any finite z."""
    if z >= 0:
        return 1.0 / (1.0 + np.exp(-z))
    e = np.exp(z)
    return e / (1.0 + e)


@helper
def forward_scalar(z, code):
    """g(z) for one unit; ``code`` is one of IDENTITY, SIGMOID, TANH, RELU, LEAKY_RELU."""
    if code == SIGMOID:
        return sigmoid(z)
    if code == TANH:
        return np.tanh(z)
    if code == RELU:
        return z if z > 0 else 0.0
    if code == LEAKY_RELU:
        return z if z > 0 else LEAKY_SLOPE * z
    return z


@kernel
def activation_forward(A, Z, code):
    """A = g(Z) elementwise. A, Z : (n, m); A may be Z (in place)."""
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            A[i, j] = forward_scalar(Z[i, j], code)


@helper
def backward_scalar(d, a, code):
    """d * g'(z) for one unit whose output is a = g(z)."""
    if code == SIGMOID:
        return d * a * (1.0 - a)
    if code == TANH:
        return d * (1.0 - a * a)
    if code == RELU:
        return d if a > 0 else 0.0
    if code == LEAKY_RELU:
        return d if a > 0 else LEAKY_SLOPE * d
    return d


@kernel
def activation_backward(dZ, dA, A, code):
    """dZ = dA * g'(Z), the gradient w.r.t. the pre-activation Z.

    dZ, dA, A : (n, m), where A = g(Z) is the forward output; dZ may be dA.
    """
    n, m = A.shape
    for i in range(n):
        for j in range(m):
            dZ[i, j] = backward_scalar(dA[i, j], A[i, j], code)


@kernel
def dropout_backward(dZ, dA, A, M, keep, code):
    """dZ = dA * M * g'(Z) for a layer whose output went through inverted
    dropout: A = M * g(Z), M (n, m) of 0 (dropped) and 1 / keep (kept), as
    ``dropout_forward`` wrote them, so g(Z) = A * keep where kept. dZ may be dA.
    A dropped unit needs no branch: its delta dA * 0 is zero, and every
    derivative here maps a zero delta to zero, so the loop vectorises."""
    n, m = A.shape
    keep = A.dtype.type(keep)
    for i in range(n):
        for j in range(m):
            dZ[i, j] = backward_scalar(dA[i, j] * M[i, j], A[i, j] * keep, code)
