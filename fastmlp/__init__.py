"""fastmlp: multilayer perceptrons trained on the CPU by Numba kernels."""

from . import callbacks
from .estimators import MLPClassifier, MLPRegressor
from .gradcheck import gradcheck
from .model import MLP, History
from .optimizers import SGD, Adam
from .saving import load
from .threads import get_num_threads, set_num_threads

__all__ = ["MLP", "History", "MLPClassifier", "MLPRegressor", "SGD", "Adam", "callbacks",
           "gradcheck", "load",
           "get_num_threads", "set_num_threads"]
__version__ = "0.1.0"
