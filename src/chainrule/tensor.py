"""Tensor: the array front end. A NumPy ndarray in a circuit, with NumPy's operators, broadcasting,
methods (``axis``, ``keepdims``, ``reshape``, ``.T``, ``@``) and PyTorch's autograd names."""

from __future__ import annotations

import sys
from collections.abc import Callable
from typing import Any

import numpy as np

from . import ops
from .engine import NO_OPTIONS as _NO_OPTIONS
from .engine import GateError, GateTypeError, Node, _GradMode, is_complex
from .gate import record_nodes
from .ops import arithmetic as ar
from .ops import arrange, contract, numpy_api, stats
from .ops._util import raw


def _refs_seen_by_callee(array: np.ndarray) -> int:
    return sys.getrefcount(array)


def _refs_of_an_unshared_local() -> int:
    local = np.empty(0)
    return _refs_seen_by_callee(local)


# The references a method sees on an array that only its caller's local variable holds (the
# backward sweep hands each leaf its gradient that way): measured, not assumed, so that an
# interpreter counting differently cannot make a shared array look unshared. Any more and someone
# else holds the array too.
_UNSHARED = _refs_of_an_unshared_local()


def _is_number(value: Any) -> bool:
    kind = type(value)
    if kind is float or kind is int:
        return True
    return isinstance(value, (int, float, np.number)) and not isinstance(value, np.complexfloating)


def _elementwise_method(gate: Any, doc: str) -> Any:
    """A Tensor method applying the one-input ``gate`` to the tensor (recorded directly)."""

    def method(self: Tensor) -> Tensor:
        return record_nodes(
            gate, Tensor, (self,), self.requires_grad and _GradMode.enabled, _NO_OPTIONS
        )

    method.__name__ = method.__qualname__ = gate.name
    method.__doc__ = doc
    return method


class Tensor(Node):
    """An array in a circuit. ``.data`` is an ndarray; ``.grad`` an ndarray of the same shape (or
    None). Create with :func:`tensor`; integer and bool tensors cannot require grad."""

    __slots__ = ()
    _data_type = np.ndarray
    # While cr.stage or cr.jit traces a function: called with (tensor, what) when a traced value
    # is read as a Python value (see _refuse_while_staging).
    _staging: Callable[[Tensor, str], None] | None = None

    # --- NumPy's functions on tensors (np.exp(t), np.sum(t), ndarray * t) run chainrule's gates
    def __array_ufunc__(self, ufunc: Any, method: str, *inputs: Any, **kwargs: Any) -> Any:
        return numpy_api.array_ufunc(ufunc, method, *inputs, **kwargs)

    def __array_function__(self, func: Any, types: Any, args: tuple, kwargs: dict) -> Any:
        return numpy_api.array_function(func, args, kwargs)

    def __init__(
        self, data: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None
    ) -> None:
        array = np.array(data.data if isinstance(data, Tensor) else data, dtype=dtype)
        if array.dtype.kind not in "fiub":
            raise TypeError(f"tensor: unsupported dtype {array.dtype} (use float, int or bool)")
        if requires_grad and array.dtype.kind != "f":
            raise TypeError(
                f"tensor: only floating tensors can require grad, got dtype {array.dtype}"
            )
        self._init_node(array, None, bool(requires_grad))
        if name is not None:
            self.name = name

    # --- front-end hooks used by the engine and gates ------------------------------------------
    @classmethod
    def _coerce(cls, data: Any, gate: Any) -> np.ndarray:
        return np.asarray(data)

    @classmethod
    def _constant(cls, data: Any) -> Tensor:
        if is_complex(data):
            raise GateError(
                f"complex constant {data!r} refused: chainrule differentiates real functions "
                "only (a complex value would silently lose its imaginary part in backward)"
            )
        out = cls.__new__(cls)
        out._init_node(data, None, False)
        return out

    def _default_seed(self) -> np.ndarray:
        if self._data.size != 1:
            raise RuntimeError(
                f"backward() on a tensor of shape {self.shape} needs grad= (an array of that "
                "shape): only a single-element output has an implicit gradient of 1"
            )
        shape, dtype = self._data.shape, self._data.dtype
        if not shape:  # a scalar loss: np.array skips np.ones' Python layer
            return np.array(1, dtype)
        return np.ones(shape, dtype)

    def _check_seed(self, grad: Any) -> Any:
        if isinstance(grad, Tensor):
            grad = grad if _GradMode.enabled and grad.requires_grad else grad.data
            if isinstance(grad, Tensor):
                return grad
        seed = np.asarray(grad)
        if seed.shape != self.data.shape:
            raise GateError(
                f"backward(): grad has shape {seed.shape} but the tensor has shape {self.shape}"
            )
        if seed.dtype.kind not in "fiu":
            raise GateTypeError(f"backward(): grad must be a real array, got dtype {seed.dtype}")
        if not np.isfinite(seed).all():
            raise GateError("backward(): the seed gradient contains inf or nan")
        return seed.astype(self.data.dtype, copy=False)

    def _accumulate(self, grad: Any) -> None:
        if isinstance(grad, Tensor):
            self.grad = grad if self.grad is None else self.grad + grad
            return
        dtype = self._data.dtype
        if self.grad is None:
            if (
                type(grad) is np.ndarray
                and grad.dtype == dtype
                and grad.flags.owndata
                and grad.flags.writeable
                and sys.getrefcount(grad) <= _UNSHARED
            ):
                self.grad = grad  # a fresh array nobody else holds: adopt it (as PyTorch steals)
            else:
                self.grad = np.array(grad, dtype=dtype)
        else:
            self.grad = self.grad + np.asarray(grad, dtype=dtype)

    def _zeros_like(self) -> np.ndarray:
        return np.zeros_like(self.data)

    def _gradient_problem(self, grad: Any) -> str | None:
        data = grad._data if isinstance(grad, Node) else grad
        shape, expected = np.shape(data), np.shape(self._data)
        if shape != expected:
            return f"shape {shape}, expected {expected} (the input's shape)"
        dtype, expected_dtype = np.asarray(data).dtype, np.asarray(self._data).dtype
        if dtype != expected_dtype:
            return f"dtype {dtype}, expected {expected_dtype} (the input's dtype)"
        return None

    # --- array facts ---------------------------------------------------------------------------
    @property
    def shape(self) -> tuple:
        """The array's shape."""
        return np.shape(self.data)  # a constant's data may be a Python number

    @property
    def ndim(self) -> int:
        """Number of dimensions."""
        return np.ndim(self.data)

    @property
    def size(self) -> int:
        """Number of elements."""
        return np.size(self.data)

    @property
    def dtype(self) -> np.dtype:
        """The array's dtype (float32 stays float32 through every gate)."""
        return np.asarray(self.data).dtype

    def __len__(self) -> int:
        if self.ndim == 0:
            raise TypeError("len() of a 0-d tensor")
        return self.shape[0]

    def item(self) -> Any:
        """The single element as a Python number."""
        _refuse_while_staging(self, "item()")
        return np.asarray(self.data).item()

    def numpy(self) -> np.ndarray:
        """The underlying array (shared, not copied)."""
        return np.asarray(self.data)

    def detach(self) -> Tensor:
        """The same data outside any circuit."""
        return Tensor._constant(self.data)

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        array = np.asarray(self.data)
        return array if dtype is None else array.astype(dtype)

    # --- arithmetic ----------------------------------------------------------------------------
    # The operators are the hot path of the array front end: they make the node directly
    # (record_nodes) when the operands already agree in shape, and leave broadcasting, constants
    # and odd operands to ops.apply_elementwise.
    def _unary(self, gate: Any, options: dict = _NO_OPTIONS) -> Tensor:
        return record_nodes(
            gate, Tensor, (self,), self.requires_grad and _GradMode.enabled, options
        )

    def _scalar(self, gate: Any, c: Any) -> Tensor:
        """``gate`` with the number ``c`` as its constant option (translate, scale, pow)."""
        if type(c) is not float and type(c) is not int:
            c = c.item() if isinstance(c, np.generic) else c  # weak, as Python numbers: f32 stays
        return record_nodes(
            gate, Tensor, (self,), self.requires_grad and _GradMode.enabled, {"c": c}
        )

    def __add__(self, other: Any) -> Tensor:
        if _is_number(other):
            return self._scalar(ar.Translate, other)
        return _binary(ar.Add, self, _operand(other))

    def __radd__(self, other: Any) -> Tensor:
        if _is_number(other):
            return self._scalar(ar.Translate, other)
        return _binary(ar.Add, _operand(other), self)

    def __sub__(self, other: Any) -> Tensor:
        if _is_number(other):
            return self._scalar(ar.Translate, -other)
        return _binary(ar.Sub, self, _operand(other))

    def __rsub__(self, other: Any) -> Tensor:
        if _is_number(other):
            return (-self)._scalar(ar.Translate, other)
        return _binary(ar.Sub, _operand(other), self)

    def __mul__(self, other: Any) -> Tensor:
        if _is_number(other):
            return self._scalar(ar.Scale, other)
        return _binary(ar.Mul, self, _operand(other))

    def __rmul__(self, other: Any) -> Tensor:
        if _is_number(other):
            return self._scalar(ar.Scale, other)
        return _binary(ar.Mul, _operand(other), self)

    def __truediv__(self, other: Any) -> Tensor:
        return _binary(ar.Div, self, _operand(other))

    def __rtruediv__(self, other: Any) -> Tensor:
        if _is_number(other) and other == 1:
            return self._unary(ar.Reciprocal)
        return _binary(ar.Div, _operand(other), self)

    def __pow__(self, other: Any) -> Tensor:
        if _is_number(other):
            return self._scalar(ar.PowConst, other)
        return _binary(ar.Pow, self, _operand(other))

    def __rpow__(self, other: Any) -> Tensor:
        return _binary(ar.Pow, _operand(other), self)

    def __matmul__(self, other: Any) -> Tensor:
        return _matmul(self, _operand(other))

    def __rmatmul__(self, other: Any) -> Tensor:
        return _matmul(_operand(other), self)

    def __neg__(self) -> Tensor:
        return self._unary(ar.Neg)

    def __pos__(self) -> Tensor:
        return self

    def __abs__(self) -> Tensor:
        return ops.absolute(self)

    # --- comparisons give bool arrays, not gates -----------------------------------------------
    def __lt__(self, other: Any) -> np.ndarray:
        _refuse_while_staging(self, "comparison '<'")
        return self.data < raw(other)

    def __le__(self, other: Any) -> np.ndarray:
        _refuse_while_staging(self, "comparison '<='")
        return self.data <= raw(other)

    def __gt__(self, other: Any) -> np.ndarray:
        _refuse_while_staging(self, "comparison '>'")
        return self.data > raw(other)

    def __ge__(self, other: Any) -> np.ndarray:
        _refuse_while_staging(self, "comparison '>='")
        return self.data >= raw(other)

    def __eq__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return self.data == raw(other)

    def __ne__(self, other: Any) -> np.ndarray:  # type: ignore[override]
        return self.data != raw(other)

    __hash__ = Node.__hash__

    def __bool__(self) -> bool:
        _refuse_while_staging(self, "bool() (a Python `if` or `while`)")
        if self.size != 1:
            raise ValueError(
                f"the truth value of a tensor of shape {self.shape} is ambiguous; a Python `if` "
                "on traced data is data-dependent control flow (use cr.where)"
            )
        return bool(self.data)

    def __float__(self) -> float:
        return float(self.item())

    # --- indexing and shape --------------------------------------------------------------------
    def __getitem__(self, index: Any) -> Tensor:
        return ops.getitem(self, index)

    def __setitem__(self, index: Any, value: Any) -> None:
        raise TypeError(
            "tensors in a circuit are immutable; build a new one (cr.where, cr.concatenate) or "
            "change .data of a leaf outside the circuit"
        )

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def reshape(self, *shape: Any) -> Tensor:
        """Same elements, new shape (one dimension may be -1)."""
        return ops.reshape(self, *shape)

    def transpose(self, *axes: Any) -> Tensor:
        """Axes permuted; reversed when none are given (like ndarray.transpose)."""
        if len(axes) == 1 and not isinstance(axes[0], (int, np.integer)):
            axes = tuple(axes[0]) if axes[0] is not None else ()
        return ops.transpose(self, axes or None)

    @property
    def T(self) -> Tensor:
        """Axes reversed (the matrix transpose for 2-D)."""
        return ops.transpose(self)

    def swapaxes(self, axis1: int, axis2: int) -> Tensor:
        """Two axes exchanged."""
        return ops.swapaxes(self, axis1, axis2)

    def squeeze(self, axis: Any = None) -> Tensor:
        """Length-1 axes removed."""
        return ops.squeeze(self, axis)

    def unsqueeze(self, axis: int) -> Tensor:
        """A length-1 axis inserted at ``axis`` (PyTorch's name for np.expand_dims)."""
        return ops.expand_dims(self, axis)

    def expand(self, *shape: Any) -> Tensor:
        """Stretched to ``shape`` by broadcasting (PyTorch's name for broadcast_to)."""
        if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
            shape = tuple(shape[0])
        return ops.broadcast_to(self, shape)

    def broadcast_to(self, shape: Any) -> Tensor:
        """Stretched to ``shape`` by broadcasting."""
        return ops.broadcast_to(self, shape)

    def split(self, indices_or_sections: Any, axis: int = 0) -> list:
        """Pieces along ``axis`` (like np.split)."""
        return ops.split(self, indices_or_sections, axis)

    # --- reductions ----------------------------------------------------------------------------
    def sum(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Sum over ``axis``."""
        return ops.Sum.apply(self, axis, keepdims)

    def mean(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Mean over ``axis``."""
        return ops.Mean.apply(self, axis, keepdims)

    def max(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Maximum over ``axis`` (ties share the gradient)."""
        return ops.Max.apply(self, axis, keepdims)

    def min(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Minimum over ``axis`` (ties share the gradient)."""
        return ops.Min.apply(self, axis, keepdims)

    def argmax(self, axis: int | None = None, keepdims: bool = False) -> np.ndarray:
        """Indices of the maxima along ``axis`` (of the flattened tensor when None), as NumPy's
        ``argmax``: a plain integer array, through which no gradient flows."""
        return np.argmax(self.data, axis=axis, keepdims=keepdims)

    def argmin(self, axis: int | None = None, keepdims: bool = False) -> np.ndarray:
        """Indices of the minima along ``axis``, as NumPy's ``argmin`` (no gradient)."""
        return np.argmin(self.data, axis=axis, keepdims=keepdims)

    def logsumexp(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Stable log(sum(exp)) over ``axis``."""
        return ops.LogSumExp.apply(self, axis, keepdims)

    def prod(self, axis: Any = None, keepdims: bool = False) -> Tensor:
        """Product over ``axis`` (NumPy's ``prod``)."""
        return stats.prod(self, axis, keepdims)

    def var(self, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
        """Variance over ``axis`` with ``ddof`` delta degrees of freedom (NumPy's ``var``)."""
        return stats.var(self, axis, ddof, keepdims)

    def std(self, axis: Any = None, ddof: int = 0, keepdims: bool = False) -> Tensor:
        """Standard deviation over ``axis`` (NumPy's ``std``)."""
        return stats.std(self, axis, ddof, keepdims)

    def cumsum(self, axis: Any = None) -> Tensor:
        """Running sum along ``axis`` (NumPy's ``cumsum``)."""
        return stats.cumsum(self, axis)

    def cumprod(self, axis: Any = None) -> Tensor:
        """Running product along ``axis`` (NumPy's ``cumprod``)."""
        return stats.cumprod(self, axis)

    def diagonal(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
        """The diagonal of two axes (NumPy's ``diagonal``)."""
        return contract.diagonal(self, offset, axis1, axis2)

    def trace(self, offset: int = 0, axis1: int = 0, axis2: int = 1) -> Tensor:
        """The sum of the diagonal (NumPy's ``trace``)."""
        return contract.trace(self, offset, axis1, axis2)

    def repeat(self, repeats: Any, axis: Any = None) -> Tensor:
        """Each element repeated along ``axis`` (NumPy's ``repeat``)."""
        return arrange.repeat(self, repeats, axis)

    def softmax(self, axis: int = -1) -> Tensor:
        """Softmax along ``axis``."""
        return ops.softmax(self, axis)

    def log_softmax(self, axis: int = -1) -> Tensor:
        """Log-softmax along ``axis``."""
        return ops.log_softmax(self, axis)

    # --- elementwise (one gate each, recorded directly: these are on the hot path) ---------------
    exp = _elementwise_method(ops.Exp, "e**x, elementwise (local gradient: its output).")
    log = _elementwise_method(ops.Log, "Natural logarithm, elementwise (local gradient 1/x).")
    sqrt = _elementwise_method(ops.Sqrt, "Square root, elementwise.")
    tanh = _elementwise_method(ops.Tanh, "Hyperbolic tangent (local gradient 1 - tanh²).")
    sigmoid = _elementwise_method(ops.Sigmoid, "Logistic sigmoid as one gate (gradient s(1 - s)).")
    relu = _elementwise_method(ops.Relu, "max(0, x), elementwise (gradient 0 at x = 0).")
    abs = _elementwise_method(ops.Abs, "|x|, elementwise (gradient 0 at x = 0).")

    def clip(self, lo: Any = None, hi: Any = None) -> Tensor:
        """Limited to [lo, hi]; the gradient passes where lo <= x <= hi."""
        return ops.clip(self, lo, hi)

    def dot(self, other: Any) -> Tensor:
        """``np.dot`` for up to 2-D operands (dD·Xᵀ and Wᵀ·dD flow back)."""
        return ops.dot(self, _operand(other))

    def __repr__(self) -> str:
        body = np.array2string(np.asarray(self.data), separator=", ", prefix="tensor(")
        extras = []
        if self.name:
            extras.append(f"name={self.name!r}")
        if self.requires_grad:
            extras.append("requires_grad=True")
        if np.asarray(self.data).dtype != np.float64:
            extras.append(f"dtype={np.asarray(self.data).dtype}")
        return "tensor(" + ", ".join([body, *extras]) + ")"


def _refuse_while_staging(t: Tensor, what: str) -> None:
    """While a function is traced for staging (``cr.stage``, ``cr.jit``), a Python value read
    from a traced tensor would be frozen into the staged code (data-dependent control flow): the
    tracer's observer is told what was asked (``cr.stage`` refuses, ``cr.jit`` falls back)."""
    observer = Tensor._staging
    if observer is not None and t.requires_grad:
        observer(t, what)


_PLAIN_NUMBERS = (float, int)


def _binary(gate: Any, a: Any, b: Any) -> Tensor:
    """A binary elementwise gate over a tensor and a tensor, constant array of the same shape or
    Python number, recorded directly; anything else (broadcasting) goes through
    apply_elementwise."""
    a_tensor, b_tensor = isinstance(a, Tensor), isinstance(b, Tensor)
    ad = a._data if a_tensor else a
    bd = b._data if b_tensor else b
    if type(ad) is np.ndarray:
        if type(bd) is np.ndarray and ad.shape == bd.shape or type(bd) in _PLAIN_NUMBERS:
            if not a_tensor:
                a = Tensor._constant(a)
            if not b_tensor:
                b = Tensor._constant(b)
            recording = (a.requires_grad or b.requires_grad) and _GradMode.enabled
            return record_nodes(gate, Tensor, (a, b), recording, _NO_OPTIONS)
    elif type(bd) is np.ndarray and type(ad) in _PLAIN_NUMBERS:
        a = Tensor._constant(a)
        recording = b.requires_grad and _GradMode.enabled
        return record_nodes(gate, Tensor, (a, b), recording, _NO_OPTIONS)
    return ops.apply_elementwise(gate, a, b)


def _matmul(a: Any, b: Any) -> Tensor:
    """``a @ b`` recorded directly when both are arrays of at least one dimension."""
    a_tensor, b_tensor = isinstance(a, Tensor), isinstance(b, Tensor)
    ad = a._data if a_tensor else a
    bd = b._data if b_tensor else b
    if type(ad) is np.ndarray and type(bd) is np.ndarray and ad.ndim and bd.ndim:
        if not a_tensor:
            a = Tensor._constant(a)
        elif not b_tensor:
            b = Tensor._constant(b)
        recording = (a.requires_grad or b.requires_grad) and _GradMode.enabled
        return record_nodes(ops.MatMul, Tensor, (a, b), recording, _NO_OPTIONS)
    return ops.matmul(a, b)


def _operand(other: Any) -> Any:
    """The other operand of a binary operator: a node, or a constant array."""
    if isinstance(other, Node):
        if not isinstance(other, Tensor):
            raise GateTypeError(f"cannot combine a Tensor with a {type(other).__name__}")
        return other
    if isinstance(other, (list, tuple)):
        return np.asarray(other)
    if isinstance(other, np.generic):
        return other.item()  # a NumPy scalar acts as a Python number: float32 stays float32
    return other


Tensor._front = Tensor


def tensor(
    data: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """A new tensor holding a copy of ``data`` (NumPy's dtype rules; Python floats give float64)."""
    return Tensor(data, dtype=dtype, requires_grad=requires_grad, name=name)


def zeros(
    *shape: Any, dtype: Any = np.float64, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """A tensor of zeros."""
    return Tensor(np.zeros(_shape(shape), dtype=dtype), requires_grad=requires_grad, name=name)


def ones(
    *shape: Any, dtype: Any = np.float64, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """A tensor of ones."""
    return Tensor(np.ones(_shape(shape), dtype=dtype), requires_grad=requires_grad, name=name)


def randn(
    *shape: Any,
    seed: int | None = None,
    generator: np.random.Generator | None = None,
    dtype: Any = np.float64,
    requires_grad: bool = False,
    name: str | None = None,
) -> Tensor:
    """Standard normal samples from ``generator`` (or a new one seeded with ``seed``)."""
    if seed is not None and generator is not None:
        raise TypeError("randn: pass seed or generator, not both")
    rng = generator if generator is not None else np.random.default_rng(seed)
    data = rng.standard_normal(_shape(shape)).astype(dtype, copy=False)
    return Tensor(data, requires_grad=requires_grad, name=name)


def arange(
    *args: Any, dtype: Any = None, requires_grad: bool = False, name: str | None = None
) -> Tensor:
    """Evenly spaced values, like ``np.arange``."""
    return Tensor(np.arange(*args, dtype=dtype), requires_grad=requires_grad, name=name)


def _shape(shape: tuple) -> tuple:
    if len(shape) == 1 and not isinstance(shape[0], (int, np.integer)):
        return tuple(shape[0])
    return tuple(shape)
