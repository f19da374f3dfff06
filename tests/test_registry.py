"""fastmlp.registry is complete, and the model, the estimators and the command
line accept exactly its names: a new entry cannot be forgotten in one of them."""

import ast
import re

import numpy as np
import pytest
from conftest import own_names

import fastmlp
from fastmlp import kernels, registry
from fastmlp.__main__ import DEFAULT_LR, build_parser

X, Y = np.arange(8.0).reshape(4, 2), np.array([0, 1, 0, 1])


def entries(table):
    return [table[name] for name in own_names(table)]


def offered(call):
    """The names listed by the ValueError ``call`` raises for an unknown name."""
    with pytest.raises(ValueError, match="unknown") as error:
        call()
    return set(ast.literal_eval(re.search(r"one of (\[.*?\])", str(error.value)).group(1)))


def cli_choices(option):
    train = build_parser().parse_args(["train"]).parser
    return next(set(action.choices) for action in train._actions
                if option in action.option_strings)


@pytest.mark.parametrize("table", [registry.ACTIVATIONS, registry.LOSSES, registry.OPTIMIZERS])
def test_every_name_finds_its_entry(table):
    assert all(name in entry.names for name, entry in table.items())
    assert all(table[name] is entry for entry in entries(table) for name in entry.names)


def test_every_activation_has_a_kernel_code_and_reference_functions():
    kernel_codes = {kernels.IDENTITY, kernels.SIGMOID, kernels.TANH, kernels.RELU,
                    kernels.LEAKY_RELU}
    for entry in entries(registry.ACTIVATIONS):
        assert entry.code in kernel_codes
        assert callable(entry.forward) and callable(entry.derivative)
        assert entry.init in ("he", "glorot")
    assert sorted(a.code for a in entries(registry.ACTIVATIONS)) == sorted(kernel_codes)


def test_every_loss_has_a_kernel_code_and_a_reference_function():
    kernel_codes = {kernels.SOFTMAX_CROSS_ENTROPY, kernels.BINARY_CROSS_ENTROPY,
                    kernels.MEAN_SQUARED_ERROR}
    for entry in entries(registry.LOSSES):
        assert entry.code in kernel_codes and callable(entry.reference)
    assert sorted(loss.code for loss in entries(registry.LOSSES)) == sorted(kernel_codes)


def test_every_optimizer_has_its_class_and_kernel_rules():
    for entry in entries(registry.OPTIMIZERS):
        assert entry.type().rule in entry.rules
    rules = [rule for entry in entries(registry.OPTIMIZERS) for rule in entry.rules]
    assert sorted(rules) == sorted({kernels.SGD, kernels.MOMENTUM, kernels.NESTEROV,
                                    kernels.ADAM})


def test_the_model_accepts_exactly_the_registry_names():
    assert offered(lambda: fastmlp.MLP((2, 2), "nope")) == set(registry.ACTIVATIONS)
    assert offered(lambda: fastmlp.MLP((2, 2), loss="nope")) == set(registry.LOSSES)
    assert offered(lambda: fastmlp.MLP((2, 2), loss="mse", output="nope")) \
        == set(registry.ACTIVATIONS)
    net = fastmlp.MLP((2, 2), seed=0)
    assert offered(lambda: net.fit(X, Y, optimizer="nope", verbose=0)) \
        == set(registry.OPTIMIZERS)
    for activation in registry.ACTIVATIONS:
        for loss in registry.LOSSES:
            fastmlp.MLP((2, 3, 2), activation, loss)
    for optimizer in registry.OPTIMIZERS:
        net.fit(X, Y, epochs=1, optimizer=optimizer, verbose=0)


@pytest.mark.filterwarnings("ignore:Stochastic Optimizer")
@pytest.mark.parametrize("estimator", [fastmlp.MLPClassifier, fastmlp.MLPRegressor])
def test_the_estimators_accept_exactly_the_registry_names(estimator):
    """scikit-learn's names of the activations, and the optimizers (and lbfgs) as solvers."""
    assert offered(lambda: estimator(activation="nope").fit(X, Y)) \
        == set(registry.SKLEARN_ACTIVATIONS)
    solvers = {"lbfgs", *registry.OPTIMIZERS}  # lbfgs is SciPy's, not a registered rule
    assert offered(lambda: estimator(solver="nope").fit(X, Y)) == solvers
    for activation in registry.SKLEARN_ACTIVATIONS:
        for solver in solvers:
            estimator(hidden_layer_sizes=(3,), activation=activation, solver=solver,
                      max_iter=1).fit(X, Y)


def test_the_command_line_accepts_exactly_the_registry_names():
    """Every activation and optimizer, the losses that take class labels (the
    CLI's targets), and a default learning rate for each optimizer."""
    assert cli_choices("--activation") == set(registry.ACTIVATIONS)
    assert cli_choices("--loss") == {name for name, loss in registry.LOSSES.items()
                                     if loss.class_labels}
    assert cli_choices("--optimizer") == set(registry.OPTIMIZERS) == set(DEFAULT_LR)
