"""Losses fused with their gradient w.r.t. the network output.

Every loss is a weighted sum over rows of the sum over the outputs of one row,
row i weighing ``scale * weights[i]``, or ``scale`` when ``weights`` is None
(pass ``scale = 1 / n_batch`` for the batch mean, ``1 / weights.sum()`` for the
weighted mean). Each kernel writes the
gradient of that loss w.r.t. its input into ``dZ`` and returns
``(loss, n_correct)``, where ``n_correct`` counts the rows predicted right, the
accuracy a classifier reports for free. Targets ``T`` are always a float
matrix: one-hot or probability rows, 0/1 values, or regression targets.
"""

import numpy as np

from ._jit import helper, inline_kernel, kernel
from .activations import activation_backward, sigmoid

SOFTMAX_CROSS_ENTROPY, BINARY_CROSS_ENTROPY, MEAN_SQUARED_ERROR = range(3)


@helper
def row_weight(scale, weights, i):
    """The weight of row i: scale * weights[i], or scale when weights is None."""
    if weights is None:
        return scale
    return scale * weights[i]


@kernel
def softmax_cross_entropy(dZ, Z, T, scale, weights=None):
    """Softmax cross-entropy of logits Z and its gradient w.r.t. Z.

    loss = sum_i s_i sum_j T_ij (logsumexp(Z_i) - Z_ij)
    dZ   = s_i (softmax(Z_i) * sum_j T_ij - T_i),  s_i = row_weight(scale, weights, i)
    dZ, Z, T : (n, k); weights : (n,) or None. Log-sum-exp keeps every exp
    below 1 and takes no log(0).
    A row is correct when argmax Z_i == argmax T_i.
    """
    n, k = Z.shape
    loss = 0.0
    correct = 0
    for i in range(n):
        zmax = Z[i, 0]
        zarg = 0
        tmax = T[i, 0]
        targ = 0
        for j in range(1, k):
            if Z[i, j] > zmax:
                zmax = Z[i, j]
                zarg = j
            if T[i, j] > tmax:
                tmax = T[i, j]
                targ = j
        correct += zarg == targ
        total = 0.0
        for j in range(k):
            e = np.exp(Z[i, j] - zmax)
            dZ[i, j] = e
            total += e
        lse = zmax + np.log(total)
        tsum = 0.0
        row = 0.0
        for j in range(k):
            tsum += T[i, j]
            row += T[i, j] * (lse - Z[i, j])
        s = row_weight(scale, weights, i)
        loss += s * row
        for j in range(k):
            dZ[i, j] = s * (dZ[i, j] / total * tsum - T[i, j])
    return loss, correct


@kernel
def binary_cross_entropy(dZ, Z, T, scale, weights=None):
    """Cross-entropy of sigmoid(Z) against 0/1 targets T, and its gradient w.r.t. Z.

    loss = sum_i s_i sum_j softplus(Z_ij) - T_ij Z_ij   (= log(1 + exp(-y Z)) for y = 2T - 1)
    dZ   = s_i (sigmoid(Z) - T),  s_i = row_weight(scale, weights, i)
    dZ, Z, T : (n, k); weights : (n,) or None. softplus(z) = max(z, 0) +
    log1p(exp(-|z|)) never overflows.
    A row is correct when (Z_ij > 0) == (T_ij > 0.5) for every j.
    """
    n, k = Z.shape
    loss = 0.0
    correct = 0
    for i in range(n):
        s = row_weight(scale, weights, i)
        row = 0.0
        row_ok = True
        for j in range(k):
            z = Z[i, j]
            t = T[i, j]
            row += max(z, 0.0) + np.log1p(np.exp(-abs(z))) - t * z
            dZ[i, j] = s * (sigmoid(z) - t)
            row_ok = row_ok and ((z > 0) == (t > 0.5))
        loss += s * row
        correct += row_ok
    return loss, correct


@kernel
def mean_squared_error(dZ, A, T, code, scale, weights=None):
    """Half squared error of outputs A = g(Z) and its gradient w.r.t. Z.

    loss = sum_i s_i sum_j (A_ij - T_ij)**2 / 2
    dZ   = s_i (A - T) * g'(Z), with g the activation ``code`` (from activations)
    and s_i = row_weight(scale, weights, i).
    dZ, A, T : (n, k); weights : (n,) or None. A row is correct when
    argmax A_i == argmax T_i.
    """
    n, k = A.shape
    loss = 0.0
    correct = 0
    for i in range(n):
        s = row_weight(scale, weights, i)
        row = 0.0
        aarg = 0
        targ = 0
        for j in range(k):
            r = np.float64(A[i, j]) - T[i, j]  # float32 would overflow in r * r
            row += r * r
            dZ[i, j] = s * r
            if A[i, j] > A[i, aarg]:
                aarg = j
            if T[i, j] > T[i, targ]:
                targ = j
        loss += s * row
        correct += aarg == targ
    activation_backward(dZ, dZ, A, code)
    return 0.5 * loss, correct


@inline_kernel
def loss_forward_backward(dZ, out, T, loss, code, scale, weights=None):
    """Dispatch to the loss numbered ``loss``; ``out`` is Z for the
    cross-entropies and A = g(Z) (``code`` names g) for squared error.
    Inlined, so that a constant ``loss`` compiles that loss alone."""
    if loss == SOFTMAX_CROSS_ENTROPY:
        return softmax_cross_entropy(dZ, out, T, scale, weights)
    if loss == BINARY_CROSS_ENTROPY:
        return binary_cross_entropy(dZ, out, T, scale, weights)
    return mean_squared_error(dZ, out, T, code, scale, weights)


@kernel
def softmax(P, Z):
    """P = softmax(Z) row by row. P, Z : (n, k); P may be Z."""
    n, k = Z.shape
    for i in range(n):
        zmax = Z[i, 0]
        for j in range(1, k):
            zmax = max(zmax, Z[i, j])
        total = 0.0
        for j in range(k):
            P[i, j] = np.exp(Z[i, j] - zmax)
            total += P[i, j]
        for j in range(k):
            P[i, j] /= total
