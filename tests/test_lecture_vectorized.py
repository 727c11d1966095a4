"""The lecture's vectorized examples, number for number: the gradients of D = W·X (dW = dD·Xᵀ,
dX = Wᵀ·dD, each with the shape of its variable), the 2x2 example f = ||W x||² (f = 0.116), and the
issue's usage example."""

import numpy as np

import chainrule as cr


def test_matrix_product_gradients_are_products_with_the_transposed_other_operand(rng):
    W = cr.tensor(rng.standard_normal((5, 10)), requires_grad=True)
    X = cr.tensor(rng.standard_normal((10, 3)), requires_grad=True)
    D = W.dot(X)
    dD = rng.standard_normal(D.shape)
    D.backward(dD)
    np.testing.assert_allclose(W.grad, dD.dot(X.data.T), rtol=1e-14)
    np.testing.assert_allclose(X.grad, W.data.T.dot(dD), rtol=1e-14)
    # dimension analysis: a gradient has the shape of its variable
    assert W.grad.shape == W.shape and X.grad.shape == X.shape


def test_two_by_two_example_of_the_notes():
    W = cr.tensor([[0.1, 0.5], [-0.3, 0.8]], requires_grad=True)
    x = cr.tensor([0.2, 0.4], requires_grad=True)
    q = W @ x
    q.retain_grad()
    f = (q**2).sum()
    f.backward()
    np.testing.assert_allclose(q.data, [0.22, 0.26], rtol=1e-12)
    np.testing.assert_allclose(f.item(), 0.116, rtol=1e-12)
    np.testing.assert_allclose(q.grad, [0.44, 0.52], rtol=1e-12)
    np.testing.assert_allclose(W.grad, [[0.088, 0.176], [0.104, 0.208]], rtol=1e-12)
    np.testing.assert_allclose(x.grad, [-0.112, 0.636], rtol=1e-12)
    # the notes' reading: df/dW = 2 q xᵀ, df/dx = 2 Wᵀ q
    np.testing.assert_allclose(W.grad, np.outer(2 * q.data, x.data), rtol=1e-12)
    np.testing.assert_allclose(x.grad, W.data.T @ (2 * q.data), rtol=1e-12)


def test_two_by_two_example_through_the_functional_api():
    W = np.array([[0.1, 0.5], [-0.3, 0.8]])
    x = np.array([0.2, 0.4])
    value, (dW, dx) = cr.value_and_grad(lambda w, v: ((w @ v) ** 2).sum(), argnums=(0, 1))(W, x)
    np.testing.assert_allclose(value, 0.116, rtol=1e-12)
    np.testing.assert_allclose(dW, [[0.088, 0.176], [0.104, 0.208]], rtol=1e-12)
    np.testing.assert_allclose(dx, [-0.112, 0.636], rtol=1e-12)


def test_the_issue_usage_example():
    gen = np.random.default_rng(3)
    W = cr.tensor(gen.standard_normal((5, 10)), requires_grad=True)
    X = cr.tensor(gen.standard_normal((10, 3)), requires_grad=True)
    D = W @ X
    dD = gen.standard_normal(D.shape)
    D.backward(dD)
    assert np.allclose(W.grad, dD @ X.data.T) and np.allclose(X.grad, W.data.T @ dD)
    assert cr.gradcheck(lambda W, X: ((W @ X).tanh() ** 2).sum(), W, X) is True
    hessian = cr.hessian(lambda x: (x**3).sum())(np.ones(3))
    np.testing.assert_array_equal(hessian, np.diag([6.0, 6.0, 6.0]))
