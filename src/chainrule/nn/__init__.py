"""``cr.nn``: modules, layers, activations, losses and initializers with PyTorch's names, built
on chainrule's tensors and gates."""

from . import functional, init
from .activations import ELU, LeakyReLU, ReLU, Sigmoid, Tanh
from .conv import AvgPool2d, Conv2d, Flatten, MaxPool2d
from .layers import Dropout, Identity, Linear, Maxout, Sequential
from .losses import CrossEntropyLoss, MSELoss, SVMLoss
from .models import FullyConnectedNet, ThreeLayerConvNet
from .module import IncompatibleKeys, Module, Parameter, StateDictError
from .norm import BatchNorm1d, BatchNorm2d, GroupNorm, LayerNorm
from .recurrent import Embedding, LSTMCell, RNNCell

__all__ = [
    "AvgPool2d",
    "BatchNorm1d",
    "BatchNorm2d",
    "Conv2d",
    "Flatten",
    "FullyConnectedNet",
    "MaxPool2d",
    "CrossEntropyLoss",
    "Dropout",
    "ELU",
    "Embedding",
    "GroupNorm",
    "Identity",
    "IncompatibleKeys",
    "LSTMCell",
    "LayerNorm",
    "LeakyReLU",
    "Linear",
    "MSELoss",
    "Maxout",
    "Module",
    "Parameter",
    "RNNCell",
    "ReLU",
    "SVMLoss",
    "Sequential",
    "Sigmoid",
    "StateDictError",
    "Tanh",
    "ThreeLayerConvNet",
    "functional",
    "init",
]
