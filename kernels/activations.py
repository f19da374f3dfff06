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


@kernel
def activation_forward(A, Z, code):
    """A = g(Z) elementwise.

    A, Z : (n, m); A may be Z (in place). ``code`` is one of IDENTITY, SIGMOID,
    TANH, RELU, LEAKY_RELU.
    """
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            z = Z[i, j]
            if code == SIGMOID:
                A[i, j] = sigmoid(z)
            elif code == TANH:
                A[i, j] = np.tanh(z)
            elif code == RELU:
                A[i, j] = z if z > 0 else 0.0
            elif code == LEAKY_RELU:
                A[i, j] = z if z > 0 else LEAKY_SLOPE * z
            else:
                A[i, j] = z


@kernel
def activation_backward(dZ, dA, A, code):
    """dZ = dA * g'(Z), the gradient w.r.t. the pre-activation Z.

    dZ, dA, A : (n, m), where A = g(Z) is the forward output; dZ may be dA.
    """
    n, m = A.shape
    for i in range(n):
        for j in range(m):
            a = A[i, j]
            d = dA[i, j]
            if code == SIGMOID:
                dZ[i, j] = d * a * (1.0 - a)
            elif code == TANH:
                dZ[i, j] = d * (1.0 - a * a)
            elif code == RELU:
                dZ[i, j] = d if a > 0 else 0.0
            elif code == LEAKY_RELU:
                dZ[i, j] = d if a > 0 else LEAKY_SLOPE * d
            else:
                dZ[i, j] = d
