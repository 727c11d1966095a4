"""``cr.nn``: modules, layers, activations, losses and initializers with PyTorch's names, built
on chainrule's tensors and gates."""

from . import functional, init
from .activations import ELU, LeakyReLU, ReLU, Sigmoid, Tanh
from .conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from .layers import Dropout, Linear, Maxout, Sequential
from .losses import CrossEntropyLoss, MSELoss, SVMLoss
from .module import IncompatibleKeys, Module, Parameter, StateDictError

__all__ = [
    "AvgPool2d",
    "Conv2d",
    "Flatten",
    "MaxPool2d",
    "CrossEntropyLoss",
    "Dropout",
    "ELU",
    "IncompatibleKeys",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "Maxout",
    "Module",
    "Parameter",
    "ReLU",
    "SVMLoss",
    "Sequential",
    "Sigmoid",
    "StateDictError",
    "Tanh",
    "functional",
    "init",
]
