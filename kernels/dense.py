"""The dense (fully connected) layer Z = X @ W + b and its gradients."""


from ._jit import cast_like, helper, kernel, vector_kernel
from .blas import gemm


@vector_kernel
def dense_forward(Z, X, W, b):
    """Z = X @ W + b.

    Z : (n, fan_out), X : (n, fan_in), W : (fan_in, fan_out), b : (fan_out,).
    """
    gemm(Z, X, W, 1.0, 0.0)
    n, m = Z.shape
    for i in range(n):
        for j in range(m):
            Z[i, j] += b[j]


@vector_kernel
def dense_backward(dW, db, dZ, X, alpha, beta, bias_beta):
    """Gradients w.r.t. W and b given dZ, the gradient w.r.t. Z = X @ W + b,
    scaled by alpha and added to beta (bias_beta) times the buffers' contents:

    dW = alpha * X.T @ dZ + beta * dW,  db = alpha * (dZ summed over rows) + bias_beta * db.
    With alpha = 1, beta = bias_beta = 0 they are the gradients (the buffers are
    only written); with dW, db the layer's own W, b, alpha = -lr and betas 1
    they are its SGD step. dW : (fan_in, fan_out), db : (fan_out,), dZ : (n, fan_out),
    X : (n, fan_in).
    """
    gemm(dW, X.T, dZ, alpha, beta)
    bias_backward(db, dZ, alpha, bias_beta)


@helper
def bias_backward(db, dZ, alpha, bias_beta):
    """db = alpha * (dZ summed over rows) + bias_beta * db, the bias part of
    ``dense_backward``. db : (fan_out,), dZ : (n, fan_out)."""
    a, c = cast_like(db, alpha), cast_like(db, bias_beta)
    n, m = dZ.shape
    for j in range(m):
        db[j] = 0.0 if bias_beta == 0 else c * db[j]
    for i in range(n):
        for j in range(m):
            db[j] += a * dZ[i, j]


@kernel
def dense_backward_input(dX, dZ, W):
    """dX = dZ @ W.T, the gradient w.r.t. the layer input X.

    dX : (n, fan_in), dZ : (n, fan_out), W : (fan_in, fan_out).
    """
    gemm(dX, dZ, W.T, 1.0, 0.0)
