"""Conversions between fastmlp and scikit-learn, PyTorch and ONNX.

``to_sklearn`` and ``from_sklearn`` move a fitted network between fastmlp's
estimators (or a ``fastmlp.MLP``) and scikit-learn's MLPs; ``to_torch`` builds
a ``torch.nn.Sequential`` and ``to_onnx`` an ONNX model computing the same
outputs. scikit-learn, torch and onnx are optional: each function imports
the library it needs when called.
"""

import copy
import importlib
from typing import NamedTuple

import numpy as np

from .estimators import MLPClassifier, MLPRegressor, _not_fitted
from .kernels import LEAKY_SLOPE
from .model import MLP
from .registry import ACTIVATIONS, LOSSES, SKLEARN_ACTIVATIONS

# scikit-learn's training state, kept under the same names by fastmlp's
# estimators: carried over both ways, so that training can go on.
TRAINING_STATE = ("n_iter_", "t_", "loss_", "loss_curve_", "best_loss_", "validation_scores_",
                  "best_validation_score_", "_no_improvement_count")

# The highest ONNX opset onnxruntime 1.32 loads (it refuses 29).
MAX_OPSET = 28


def _require(module, function, extra):
    """Import ``module``, or raise an ImportError naming fastmlp's extra."""
    try:
        return importlib.import_module(module)
    except ImportError as err:
        raise ImportError(f"{function} needs the {extra} extra: "
                          f"pip install 'fastmlp[{extra}]'") from err


class _Network(NamedTuple):
    """What the converters need of a fitted fastmlp model or estimator.

    weights : list of (W (fan_in, fan_out), b (fan_out,)) in the model's dtype.
    hidden : the registry names of the hidden layers' activations.
    output : "softmax" or "sigmoid" on the logits of a cross-entropy, or the
        registry name of an mse output activation.
    labels : None for regression. Else what a prediction's index stands for:
        for softmax, the label of each output; for sigmoid, the labels of a
        logit <= 0 and > 0.
    two_columns : a binary classifier's probabilities are [1 - p, p], (n, 2).
    """
    weights: list
    hidden: tuple
    output: str
    labels: np.ndarray | None
    two_columns: bool

    @property
    def dtype(self):
        return self.weights[0][0].dtype

    def activations(self):
        """The activation after each layer: hidden ones, then the output."""
        return [*self.hidden, self.output]


def _network(model_or_estimator):
    obj = model_or_estimator
    if isinstance(obj, (MLPClassifier, MLPRegressor)):
        if not hasattr(obj, "model_"):
            raise _not_fitted(obj)
        model, labels = obj.model_, getattr(obj, "classes_", None)
        multilabel = getattr(obj, "_multilabel", False)
        if multilabel:
            labels = np.array([0, 1], dtype=labels.dtype)
        two_columns = obj.out_activation_ == "logistic" and not multilabel
    elif isinstance(obj, MLP):
        model, two_columns = obj, False
        labels = {None: None, "softmax": np.arange(obj.sizes[-1]),
                  "sigmoid": np.array([getattr(obj, "negative_label_", 0), 1])
                  }[LOSSES[obj.loss].output]
    else:
        raise TypeError(f"expected a fastmlp.MLP, MLPClassifier or MLPRegressor, got "
                        f"{type(obj).__name__}")
    output = LOSSES[model.loss].output or ACTIVATIONS[model.output].name
    return _Network([(W.copy(), b.copy()) for W, b in model.weights],
                    tuple(ACTIVATIONS[name].name for name in model.activations), output, labels,
                    two_columns)


# scikit-learn


def to_sklearn(model_or_estimator):
    """A fitted ``sklearn.neural_network.MLPClassifier`` or ``MLPRegressor``
    with the network of a fitted fastmlp estimator or ``fastmlp.MLP``.

    Its weights keep the model's dtype, so that scikit-learn computes in that
    dtype for X of that dtype. It predicts the same labels, and probabilities
    and regression outputs equal up to rounding: its matrix products, softmax,
    logistic and tanh round differently from fastmlp's kernels (by a few units
    in the last place), so bit for bit only where they happen to agree.

    An estimator's constructor parameters that scikit-learn has, and its
    training state (``n_iter_``, ``t_``, ``loss_curve_``, ...), carry over;
    scikit-learn's optimizer starts afresh if it goes on training. An MLP
    maps as: softmax_cross_entropy -> classifier with classes 0..k-1;
    binary_cross_entropy -> logistic classifier, binary for one output
    (classes as its ``predict``), multilabel for more; mse with the identity
    output -> regressor.

    Raises ValueError for what scikit-learn's MLPs lack: a hidden activation
    not among theirs (such as leaky_relu) or different ones per hidden layer,
    an mse output other than identity,
    a softmax of one output, multilabel predictions of -1/+1.
    """
    neural_network = _require("sklearn.neural_network", "to_sklearn", "sklearn")
    preprocessing = importlib.import_module("sklearn.preprocessing")
    net = _network(model_or_estimator)
    if len(set(net.hidden)) > 1:
        raise ValueError(f"scikit-learn's MLPs take one activation for every hidden layer; "
                         f"this model has {list(net.hidden)}")
    hidden = net.hidden[0] if net.hidden else "identity"
    activation = ACTIVATIONS[hidden].sklearn_name
    if activation is None:
        raise ValueError(f"scikit-learn's MLPs have no {hidden!r} activation; they have "
                         f"{sorted(SKLEARN_ACTIVATIONS)}")
    n_outputs = net.weights[-1][0].shape[1]
    if net.labels is None:
        if net.output != "identity":
            raise ValueError(f"scikit-learn's MLPRegressor has the identity output only, "
                             f"this model has {net.output!r}")
        cls, out_activation, classes = neural_network.MLPRegressor, "identity", None
    else:
        cls = neural_network.MLPClassifier
        out_activation = "softmax" if net.output == "softmax" else "logistic"
        if out_activation == "softmax" and n_outputs == 1:
            raise ValueError("scikit-learn's classifiers have two classes or more, this "
                             "softmax has one output")
        classes = net.labels
        if out_activation == "logistic" and n_outputs > 1:
            if net.labels.tolist() != [0, 1]:
                raise ValueError(f"scikit-learn's multilabel classifiers predict 0 and 1, this "
                                 f"model predicts {net.labels.tolist()}")
            classes = np.eye(n_outputs, dtype=int)  # a multilabel indicator
    params = {"hidden_layer_sizes": tuple(W.shape[1] for W, _ in net.weights[:-1]),
              "activation": activation}
    if isinstance(model_or_estimator, (MLPClassifier, MLPRegressor)):
        params = model_or_estimator.get_params(deep=False)
    estimator = cls(**{k: v for k, v in params.items() if k in cls().get_params()})
    if classes is not None:
        estimator._label_binarizer = preprocessing.LabelBinarizer().fit(classes)
        estimator.classes_ = estimator._label_binarizer.classes_
    estimator.coefs_ = [W for W, _ in net.weights]
    estimator.intercepts_ = [b for _, b in net.weights]
    estimator.n_features_in_ = net.weights[0][0].shape[0]
    estimator.n_layers_ = len(net.weights) + 1
    estimator.n_outputs_ = n_outputs
    estimator.out_activation_ = out_activation
    # An MLP starts where scikit-learn's fit starts; an estimator where it stopped.
    estimator.n_iter_ = estimator.t_ = estimator._no_improvement_count = 0
    estimator.loss_curve_, estimator.best_loss_ = [], np.inf
    estimator.validation_scores_ = estimator.best_validation_score_ = None
    _copy_state(model_or_estimator, estimator)
    estimator._best_coefs = copy.deepcopy(estimator.coefs_)
    estimator._best_intercepts = copy.deepcopy(estimator.intercepts_)
    return estimator


def _copy_state(source, target):
    for name in TRAINING_STATE:
        if hasattr(source, name):
            setattr(target, name, copy.deepcopy(getattr(source, name)))


def from_sklearn(sklearn_estimator):
    """A fitted fastmlp ``MLPClassifier`` or ``MLPRegressor`` with the network,
    the constructor parameters and the training state of a fitted
    scikit-learn MLP.

    It predicts as the scikit-learn estimator does (in the dtype of its
    weights, which becomes its ``dtype``), and goes on training with
    ``partial_fit`` or a ``warm_start`` fit; the optimizer's state (momentum,
    Adam's moments) starts afresh, as scikit-learn's own does on a warm-start
    fit.
    """
    neural_network = _require("sklearn.neural_network", "from_sklearn", "sklearn")
    sk = sklearn_estimator
    classes = {neural_network.MLPClassifier: MLPClassifier,
               neural_network.MLPRegressor: MLPRegressor}
    if type(sk) not in classes:
        raise TypeError(f"expected a scikit-learn MLPClassifier or MLPRegressor, got "
                        f"{type(sk).__name__}")
    if not hasattr(sk, "coefs_"):
        raise _not_fitted(sk)
    cls = classes[type(sk)]
    params = {k: v for k, v in sk.get_params(deep=False).items()
              if k in cls._param_defaults()}
    estimator = cls(**params, dtype=sk.coefs_[0].dtype.name)
    estimator._check_params()
    estimator.out_activation_ = sk.out_activation_
    if hasattr(sk, "classes_"):
        estimator.classes_ = sk.classes_
        estimator._multilabel = sk._label_binarizer.y_type_.startswith("multilabel")
    sizes = [W.shape[0] for W in sk.coefs_] + [sk.n_outputs_]
    estimator._initialize(sizes, np.random.RandomState(0))
    for (W, b), coef, intercept in zip(estimator.model_.weights, sk.coefs_, sk.intercepts_):
        W[...] = coef
        b[...] = intercept
    if hasattr(estimator, "_best_params"):
        estimator._best_params[...] = estimator.model_.params
    _copy_state(sk, estimator)
    return estimator


# PyTorch


def to_torch(model_or_estimator):
    """A ``torch.nn.Sequential`` of Linear layers and activation modules in the
    model's dtype (float32 or float64), computing what ``predict_proba`` of
    the fastmlp model gives: class probabilities (Softmax, or Sigmoid: for a
    binary classifier (n, 1), the probability of ``classes_[1]``), or
    regression outputs (n, n_outputs). Input: a tensor (n, n_features)."""
    torch = _require("torch", "to_torch", "torch")
    nn = torch.nn
    net = _network(model_or_estimator)
    modules = {"identity": nn.Identity, "sigmoid": nn.Sigmoid, "tanh": nn.Tanh,
               "relu": nn.ReLU, "leaky_relu": lambda: nn.LeakyReLU(LEAKY_SLOPE),
               "softmax": lambda: nn.Softmax(dim=1)}
    dtype = getattr(torch, net.dtype.name)
    layers = []
    for (W, b), activation in zip(net.weights, net.activations()):
        # skip_init: no draw from torch's global generator
        linear = nn.utils.skip_init(nn.Linear, *W.shape, dtype=dtype)
        with torch.no_grad():
            linear.weight.copy_(torch.from_numpy(W.T))
            linear.bias.copy_(torch.from_numpy(b))
        layers += [linear, modules[activation]()]
    return nn.Sequential(*layers)


# ONNX


class _Graph:
    """An ONNX graph under construction: its nodes and constants. ``node``
    and ``const`` return the name of what they add."""

    def __init__(self, onnx, dtype):
        self.onnx, self.dtype, self.nodes, self.constants = onnx, dtype, [], []

    def const(self, value):
        """A constant holding ``value``; Python numbers take the graph's dtype."""
        array = np.asarray(value, dtype=self.dtype if np.isscalar(value) else None)
        name = f"c{len(self.constants)}"
        self.constants.append(self.onnx.numpy_helper.from_array(array, name))
        return name

    def node(self, op, *inputs, output=None, **attributes):
        output = output or f"t{len(self.nodes)}"
        self.nodes.append(self.onnx.helper.make_node(op, list(inputs), [output], **attributes))
        return output

    def activation(self, x, name):
        if name == "leaky_relu" and self.dtype == np.float64:
            # onnxruntime has no float64 LeakyRelu: max(z, slope * z) is the same
            return self.node("Max", x, self.node("Mul", x, self.const(LEAKY_SLOPE)))
        op, attributes = {"identity": ("Identity", {}), "sigmoid": ("Sigmoid", {}),
                          "tanh": ("Tanh", {}), "relu": ("Relu", {}),
                          "leaky_relu": ("LeakyRelu", {"alpha": LEAKY_SLOPE}),
                          "softmax": ("Softmax", {"axis": 1})}[name]
        return self.node(op, x, **attributes)

    def output(self, x, name, elem_type, shape):
        self.node("Identity", x, output=name)
        return self.onnx.helper.make_tensor_value_info(name, elem_type, shape)


def _classifier_outputs(graph, net, Z, P):
    """The "label" and "probabilities" outputs of a classifier with logits Z
    and outputs P (n, n_outputs); labels come from the logits, as
    ``fastmlp.MLP.predict`` takes them."""
    k = net.weights[-1][0].shape[1]
    if net.output == "softmax":
        index = graph.node("ArgMax", Z, axis=1, keepdims=0)
    else:
        index = graph.node("Cast", graph.node("Greater", Z, graph.const(0)),
                           to=graph.onnx.TensorProto.INT64)
    strings = net.labels.dtype.kind in "USO"
    label = graph.node("Gather", graph.const(net.labels.astype(object) if strings
                                             else net.labels), index)
    label_type = graph.constants[-1].data_type
    one_column = net.output == "softmax" or k == 1
    if net.output == "sigmoid" and k == 1:
        label = graph.node("Reshape", label, graph.const(np.array([-1])))
    if net.two_columns:
        P = graph.node("Concat", graph.node("Sub", graph.const(1), P), P, axis=1)
    real = graph.onnx.helper.np_dtype_to_tensor_dtype(net.dtype)
    return [graph.output(label, "label", label_type, [None] if one_column else [None, k]),
            graph.output(P, "probabilities", real, [None, 2 if net.two_columns else k])]


def to_onnx(model_or_estimator, path=None, *, opset=None):
    """An ONNX ``ModelProto`` computing the fastmlp model's predictions from
    the input "X" (n, n_features) in the model's dtype; written to ``path``
    too when given.

    Outputs, as skl2onnx names them: "label" (n,) and "probabilities"
    (n, n_classes) for classifiers (label (n, n_outputs) for multilabel
    ones and an MLP's binary cross-entropy of several outputs); "variable"
    (n, n_outputs) for regressors. Labels are looked up by a Gather in a
    constant holding the classes (strings as strings). ``opset`` defaults to
    the newest the onnx package knows, at most 28 (what onnxruntime 1.32
    loads); the IR version follows it.
    """
    onnx = _require("onnx", "to_onnx", "onnx")
    helper = onnx.helper
    net = _network(model_or_estimator)
    graph = _Graph(onnx, net.dtype)
    x = "X"
    for (W, b), activation in zip(net.weights, net.activations()):
        z = graph.node("Add", graph.node("MatMul", x, graph.const(W)), graph.const(b))
        x = graph.activation(z, activation)
    real = helper.np_dtype_to_tensor_dtype(net.dtype)
    if net.labels is None:
        outputs = [graph.output(x, "variable", real, [None, net.weights[-1][0].shape[1]])]
    else:
        outputs = _classifier_outputs(graph, net, z, x)
    inputs = [helper.make_tensor_value_info("X", real, [None, net.weights[0][0].shape[0]])]
    opset = opset or min(onnx.defs.onnx_opset_version(), MAX_OPSET)
    model = helper.make_model_gen_version(
        helper.make_graph(graph.nodes, "fastmlp", inputs, outputs, initializer=graph.constants),
        opset_imports=[helper.make_opsetid("", opset)], producer_name="fastmlp")
    if path is not None:
        onnx.save_model(model, path)
    return model
