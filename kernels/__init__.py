"""Numba kernels of fastmlp, installed as ``fastmlp.kernels``.

Each kernel takes its output buffers first, then its inputs, then sizes and
codes; it allocates nothing and keeps no state. Activations and losses are
chosen by the integer codes defined next to them.
"""

from .activations import (IDENTITY, LEAKY_RELU, LEAKY_SLOPE, RELU, SIGMOID, TANH,
                          activation_backward, activation_forward)
from .blas import gemm
from .dense import dense_backward, dense_backward_input, dense_forward
from .dropout import dropout_forward
from .losses import (BINARY_CROSS_ENTROPY, MEAN_SQUARED_ERROR, SOFTMAX_CROSS_ENTROPY,
                     binary_cross_entropy, loss_forward_backward, mean_squared_error,
                     softmax, softmax_cross_entropy)
from .network import (batch_trainer, forward, gradient, layer_params, param_offset,
                      update_block, work_size)
from .optim import ADAM, MOMENTUM, NESTEROV, SGD, clip_gradient, optimizer_update
from .samples import run_samples, sample_buffers
from .sparse import SparseRows, n_rows, row_range, sparse_backward, sparse_forward
