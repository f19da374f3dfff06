"""Optimizers and learning-rate schedules for ``MLP.fit``.

An optimizer holds every hyperparameter but the learning rate, which ``fit``
takes as a number or as a schedule: a function of the 1-based epoch.
"""

import math
from dataclasses import dataclass

from . import kernels
from ._validation import check_positive


@dataclass(frozen=True)
class SGD:
    """Stochastic gradient descent, with optional (Nesterov) momentum.

    v = momentum * v - lr * g; p += v (or p += momentum * v - lr * g with
    ``nesterov``). ``l2`` adds l2 * w to the gradient of each weight (not of
    the biases, as scikit-learn's alpha); ``weight_decay`` takes
    lr * weight_decay * p off each parameter, biases included, after the step
    (decoupled).
    """
    momentum: float = 0.0
    nesterov: bool = False
    l2: float = 0.0
    weight_decay: float = 0.0

    @property
    def rule(self):
        if self.momentum == 0:
            return kernels.SGD
        return kernels.NESTEROV if self.nesterov else kernels.MOMENTUM

    def hyper(self, lr):
        return (lr, self.momentum, 0.0, 0.0, 0.0, self.l2, self.weight_decay)


@dataclass(frozen=True)
class Adam:
    """Adam (Kingma and Ba, 2015); with ``weight_decay`` it is AdamW
    (Loshchilov and Hutter, 2019). ``l2`` adds l2 * w to the gradient of each
    weight (not of the biases); ``weight_decay`` shrinks every parameter."""
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-8
    l2: float = 0.0
    weight_decay: float = 0.0

    rule = kernels.ADAM

    def hyper(self, lr):
        return (lr, 0.0, self.beta_1, self.beta_2, self.epsilon, self.l2, self.weight_decay)


def check_optimizer(optimizer):
    """An optimizer instance from an instance or a name in fastmlp.registry.OPTIMIZERS."""
    from .registry import OPTIMIZERS  # imported here: the registry imports this module
    if isinstance(optimizer, str) and optimizer in OPTIMIZERS:
        optimizer = OPTIMIZERS[optimizer].type()
    types = tuple(entry.type for entry in OPTIMIZERS.values())
    if not isinstance(optimizer, types):
        instances = " or ".join(f"fastmlp.{t.__name__}" for t in types)
        raise ValueError(f"unknown optimizer {optimizer!r}; give one of {sorted(OPTIMIZERS)} "
                         f"or an instance of {instances}")
    for name in ["momentum", "l2", "weight_decay"]:
        check_positive(name, getattr(optimizer, name, 0.0), allow_zero=True)
    if isinstance(optimizer, Adam):
        for name in ["beta_1", "beta_2"]:
            value = getattr(optimizer, name)
            if not 0 <= value < 1:
                raise ValueError(f"{name} must be in [0, 1), got {value!r}")
        check_positive("epsilon", optimizer.epsilon)
    return optimizer


def inverse_scaling(lr, power_t=0.5):
    """lr / epoch ** power_t."""
    return lambda epoch: lr / epoch ** power_t


def step_decay(lr, drop=0.5, every=10):
    """lr * drop ** ((epoch - 1) // every): multiplied by ``drop`` every ``every`` epochs."""
    return lambda epoch: lr * drop ** ((epoch - 1) // every)


def cosine(lr, epochs, lr_min=0.0):
    """Cosine annealing from lr at epoch 1 to lr_min at epoch ``epochs + 1``."""
    return lambda epoch: lr_min + 0.5 * (lr - lr_min) * (1 + math.cos(math.pi * (epoch - 1) / epochs))
