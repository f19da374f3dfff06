"""fastmlp: multilayer perceptrons trained on the CPU by Numba kernels."""

from .gradcheck import gradcheck
from .model import MLP, History
from .threads import get_num_threads, set_num_threads

__all__ = ["MLP", "History", "gradcheck", "get_num_threads", "set_num_threads"]
__version__ = "0.1.0"
