"""numerical_grad (centered differences), relative_error and gradcheck: passing circuits, a wrong
gate caught with a message naming the input, the worst index, both values and the CS231n relative
error |a - n| / max(|a|, |n|)."""

import re

import numpy as np
import pytest

import chainrule as cr


class WrongSquare(cr.Gate):
    """x² whose backward is wrong at one element: the local gradient is 2x, except 3x at [1, 2]."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        local = 2 * x
        local[1, 2] = 3 * x[1, 2]
        return (grad * local,)


def test_numerical_grad_uses_centered_differences():
    x = np.array([1.0, -2.0, 0.5])
    g = cr.numerical_grad(lambda t: (t**3).sum(), x)
    assert g.dtype == np.float64 and g.shape == (3,)
    np.testing.assert_allclose(g, 3 * x**2, rtol=1e-8)
    # centered: the error of a cube is eps² exactly, not eps
    coarse = cr.numerical_grad(lambda t: (t**3).sum(), np.array([1.0]), eps=1e-2)
    np.testing.assert_allclose(coarse, [3.0 + 1e-4], rtol=1e-10)


def test_numerical_grad_accepts_tensors_and_plain_results_and_leaves_the_input_alone():
    x = cr.tensor(np.array([[1.0, 2.0]], dtype=np.float32))
    g = cr.numerical_grad(lambda t: float((t.data**2).sum()), x)
    np.testing.assert_allclose(g, [[2.0, 4.0]], rtol=1e-6)
    np.testing.assert_array_equal(x.data, [[1.0, 2.0]])


def test_numerical_grad_needs_a_scalar_function():
    with pytest.raises(ValueError, match=r"must return one number, got shape \(2,\)"):
        cr.numerical_grad(lambda t: t * 2, np.ones(2))


def test_relative_error_is_the_notes_definition():
    a = np.array([1.0, 0.0, -2.0, 3.0])
    n = np.array([1.5, 0.0, 2.0, 3.0])
    np.testing.assert_allclose(cr.relative_error(a, n), [0.5 / 1.5, 0.0, 2.0, 0.0])


def test_gradcheck_passes_on_correct_circuits(rng):
    a, b = rng.standard_normal((2, 3)), rng.standard_normal((3, 2))
    assert cr.gradcheck(lambda x, y: ((x @ y).tanh() ** 2).sum(), a, b) is True
    # a non-scalar output is checked through a fixed random projection
    assert cr.gradcheck(lambda x, y: (x @ y).sigmoid(), a, b)
    assert cr.gradcheck(lambda x: cr.softmax(x, 0), cr.tensor(a, dtype=np.float32))


def test_gradcheck_catches_a_wrong_gate_and_says_where():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    with pytest.raises(cr.GradcheckError) as info:
        cr.gradcheck(lambda t: WrongSquare.apply(t).sum(), x)
    message = str(info.value)
    analytic, numeric = 3 * x[1, 2], 2 * x[1, 2]
    assert "input 0" in message and "index (1, 2)" in message
    assert f"analytic {analytic:.10g}" in message
    assert re.search(r"numeric 12(\.0+\d*)?,", message)
    expected = abs(analytic - numeric) / max(abs(analytic), abs(numeric))
    assert f"relative error {expected:.3g}" in message
    assert "1 of 6 elements" in message


def test_gradcheck_names_the_failing_input():
    a = np.ones((2, 3))
    b = np.arange(1.0, 7.0).reshape(2, 3)
    with pytest.raises(cr.GradcheckError, match=r"input 1 at index \(1, 2\)"):
        cr.gradcheck(lambda x, y: (x * WrongSquare.apply(y)).sum(), a, b)


def test_gradcheck_tolerances_decide():
    x = np.arange(1.0, 7.0).reshape(2, 3)
    # the wrong element is off by 50%: a loose rtol lets it through, the default does not
    assert cr.gradcheck(lambda t: WrongSquare.apply(t).sum(), x, rtol=0.6)
    with pytest.raises(cr.GradcheckError):
        cr.gradcheck(lambda t: WrongSquare.apply(t).sum(), x, rtol=0.4)


def test_gradcheck_is_a_assertion_error_subclass():
    assert issubclass(cr.GradcheckError, AssertionError)


# --- issue 9 item 5: non-finite values never pass ---------------------------------------
class NaNBackward(cr.Gate):
    """x² whose backward gives NaN at element 2."""

    @staticmethod
    def forward(ctx, x):
        ctx.save_for_backward(x)
        return x * x

    @staticmethod
    def backward(ctx, grad):
        (x,) = ctx.saved_tensors
        local = 2 * x
        local[2] = np.nan
        return (grad * local,)


def test_relative_error_of_a_non_finite_value_is_infinite():
    err = cr.relative_error([2.0, np.nan, np.inf, 1.0, 0.0], [np.nan, 2.0, np.inf, 1.0, 0.0])
    np.testing.assert_array_equal(err, [np.inf, np.inf, np.inf, 0.0, 0.0])


def test_gradcheck_fails_on_a_nan_from_backward_naming_the_element():
    with pytest.raises(
        cr.GradcheckError, match=r"input 0 at index \(2,\): the analytic gradient is nan"
    ):
        cr.gradcheck(lambda x: NaNBackward.apply(x).sum(), np.arange(1.0, 5.0))


def test_gradcheck_fails_when_the_function_itself_is_nan():
    def f(x):
        return (x * x).sum() * np.nan

    with pytest.raises(cr.GradcheckError, match="gradient is nan"):
        cr.gradcheck(f, np.ones(3))


@pytest.mark.filterwarnings("ignore:overflow encountered:RuntimeWarning")
def test_gradcheck_fails_when_the_numeric_gradient_overflows():
    with pytest.raises(cr.GradcheckError, match=r"index \(0,\): the numeric gradient is nan"):
        cr.gradcheck(lambda x: (x * x).sum(), np.array([1e200]))
