"""fastmlp: multilayer perceptrons trained on the CPU by Numba kernels."""

from .gradcheck import gradcheck
from .model import MLP, History

__all__ = ["MLP", "History", "gradcheck"]
__version__ = "0.1.0"
