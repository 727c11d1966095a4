"""Errors follow Python's convention (issue 9 item 10): a wrong type raises TypeError, a wrong
value ValueError, and cr.GateError is the common base of both, so `except cr.GateError` still
catches every gate error."""

from __future__ import annotations

import numpy as np
import pytest

import chainrule as cr
from chainrule.nn import functional as F

SCORES = cr.tensor(np.zeros((3, 4)), requires_grad=True)


def _raises(kind, call, match):
    with pytest.raises(kind, match=match) as info:
        call()
    assert isinstance(info.value, cr.GateError)
    other = ValueError if kind is TypeError else TypeError
    assert not isinstance(info.value, other), f"{type(info.value).__name__} is also {other}"


@pytest.mark.parametrize("loss", [F.cross_entropy, F.svm_loss])
def test_float_labels_are_a_type_error_and_bad_labels_a_value_error(loss):
    _raises(TypeError, lambda: loss(SCORES, np.array([0.0, 1.0, 2.0])), "labels must be integers")
    _raises(ValueError, lambda: loss(SCORES, np.array([0, 1, 7])), "label 7 is out of range")
    _raises(ValueError, lambda: loss(SCORES, np.array([0, 1])), "do not match 3 samples")


def test_a_non_integer_shape_is_a_type_error_as_in_numpy():
    x = cr.tensor(np.arange(6.0))
    with pytest.raises(TypeError):
        np.arange(6.0).reshape(2.0, 3)  # NumPy's answer
    _raises(TypeError, lambda: x.reshape(2.0, 3), r"a shape holds integers, got 2.0")
    _raises(TypeError, lambda: x.reshape((3, 2.5)), r"got 2.5 in \(3, 2.5\)")
    _raises(TypeError, lambda: cr.reshape(x, 6.0), "got 6.0")
    _raises(ValueError, lambda: x.reshape(4, 2), "cannot reshape an array of shape")
    assert x.reshape(np.int64(3), 2).shape == (3, 2)


def test_a_non_integer_axis_or_index_is_a_type_error():
    x = cr.tensor(np.ones((2, 3)))
    with pytest.raises(TypeError):
        np.ones((2, 3)).sum(axis=1.0)  # NumPy's answer
    _raises(TypeError, lambda: x.sum(axis=1.0), "axis must be an int")
    _raises(TypeError, lambda: x.sum(axis=(0, "1")), "axis must be an int")
    _raises(ValueError, lambda: x.sum(axis=2), "axis 2 is out of range")
    _raises(TypeError, lambda: x[np.array([0.5])], "index arrays must be integer or boolean")


def test_combining_a_tensor_with_a_scalar_value_node_is_a_type_error():
    _raises(TypeError, lambda: cr.tensor([1.0]) + cr.Value(2.0), "cannot combine a Tensor")


def test_gate_error_is_the_common_base_and_raised_plainly_is_a_value_error():
    plain = cr.GateError("bad value")
    assert isinstance(plain, cr.GateValueError) and isinstance(plain, ValueError)
    assert issubclass(cr.GateTypeError, cr.GateError) and issubclass(cr.GateTypeError, TypeError)
    assert not issubclass(cr.GateTypeError, ValueError)
    for error in (cr.GateError("v"), cr.GateTypeError("t"), cr.GateValueError("v")):
        with pytest.raises(cr.GateError):
            raise error
