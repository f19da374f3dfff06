"""One table per concept: every activation, loss and optimizer fastmlp knows,
by name, with what each part of the library needs of it.

The model, the scikit-learn estimators, the NumPy reference, the command line
and the tests all read these tables; a new activation, loss or optimizer is
one entry here (and its kernel). Each table maps an entry's name, and each of
its aliases, to the entry.
"""

from dataclasses import dataclass
from typing import Callable, Optional

import numpy as np

from . import kernels, reference
from .optimizers import SGD, Adam


@dataclass(frozen=True)
class Activation:
    """A hidden or output activation g.

    code : its kernel code (kernels.RELU, ...).
    forward : the reference g(Z).
    derivative : the reference g'(Z) in terms of the output A = g(Z).
    init : "he" (uniform in +-sqrt(6 / fan_in), for relu-like units) or
        "glorot" (+-sqrt(6 / (fan_in + fan_out))), fastmlp's initialisation.
    sklearn_name : its name in scikit-learn's MLPs, also accepted by
        fastmlp.MLP; None where scikit-learn has no such activation.
    sklearn_init_factor : the factor of scikit-learn's initialisation,
        uniform in +-sqrt(factor / (fan_in + fan_out)).
    """
    name: str
    code: int
    forward: Callable
    derivative: Callable
    init: str
    sklearn_name: Optional[str]
    sklearn_init_factor: float = 6.0

    @property
    def names(self):
        if self.sklearn_name in (None, self.name):
            return (self.name,)
        return (self.name, self.sklearn_name)


@dataclass(frozen=True)
class Loss:
    """A loss, a mean over the batch.

    code : its kernel code (kernels.MEAN_SQUARED_ERROR, ...).
    reference : the reference function, returning (loss, dZ); (Z, T, weights)
        for a loss with an implied output, (A, T, output name, weights) without.
    output : the output activation it implies and fuses into the loss kernel
        (whose last layer then hands logits to the loss), or None for a loss
        that takes any output activation.
    class_labels : y may be integer class labels 0..k-1 for k outputs (the
        command line trains on such labels).
    aliases : other names it is known by.
    """
    name: str
    code: int
    reference: Callable
    output: Optional[str]
    class_labels: bool
    aliases: tuple = ()

    @property
    def names(self):
        return (self.name, *self.aliases)


@dataclass(frozen=True)
class Optimizer:
    """An optimizer.

    type : its class (fastmlp.SGD, ...); the name stands for its instance with
        default hyperparameters.
    rules : the kernel update rules (kernels.SGD, ...) its instances run.
    """
    name: str
    type: type
    rules: tuple

    @property
    def names(self):
        return (self.name,)


def _by_name(*entries):
    return {name: entry for entry in entries for name in entry.names}


ACTIVATIONS = _by_name(
    Activation("identity", kernels.IDENTITY, reference.identity, reference.identity_derivative,
               init="glorot", sklearn_name="identity"),
    Activation("sigmoid", kernels.SIGMOID, reference.sigmoid, reference.sigmoid_derivative,
               init="glorot", sklearn_name="logistic", sklearn_init_factor=2.0),
    Activation("tanh", kernels.TANH, np.tanh, reference.tanh_derivative,
               init="glorot", sklearn_name="tanh"),
    Activation("relu", kernels.RELU, reference.relu, reference.relu_derivative,
               init="he", sklearn_name="relu"),
    Activation("leaky_relu", kernels.LEAKY_RELU, reference.leaky_relu,
               reference.leaky_relu_derivative, init="he", sklearn_name=None),
)

# The activations scikit-learn's estimators take, by scikit-learn's names.
SKLEARN_ACTIVATIONS = {a.sklearn_name: a for a in ACTIVATIONS.values() if a.sklearn_name}

LOSSES = _by_name(
    Loss("softmax_cross_entropy", kernels.SOFTMAX_CROSS_ENTROPY,
         reference.softmax_cross_entropy, output="softmax", class_labels=True),
    Loss("binary_cross_entropy", kernels.BINARY_CROSS_ENTROPY, reference.binary_cross_entropy,
         output="sigmoid", class_labels=False, aliases=("logistic",)),
    Loss("mse", kernels.MEAN_SQUARED_ERROR, reference.mean_squared_error,
         output=None, class_labels=True),
)

OPTIMIZERS = _by_name(
    Optimizer("sgd", SGD, (kernels.SGD, kernels.MOMENTUM, kernels.NESTEROV)),
    Optimizer("adam", Adam, (kernels.ADAM,)),
)
