"""fastmlp: multilayer perceptrons trained on the CPU by Numba kernels."""

__version__ = "0.1.0"

from . import callbacks
from .config import show_config
from .estimators import MLPClassifier, MLPRegressor
from .gradcheck import gradcheck
from .model import MLP, History
from .optimizers import SGD, Adam
from .saving import load
from .threads import get_num_threads, set_num_threads

__all__ = ["MLP", "History", "MLPClassifier", "MLPRegressor", "SGD", "Adam", "callbacks",
           "gradcheck", "load",
           "get_num_threads", "set_num_threads", "show_config"]

# Submodules imported on first use (PEP 562), keeping ``import fastmlp`` quick.
_LAZY = ("datasets", "interop", "plots")


def __getattr__(name):
    if name in _LAZY:
        import importlib
        return importlib.import_module(f".{name}", __name__)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__():
    return sorted([*globals(), *_LAZY])
