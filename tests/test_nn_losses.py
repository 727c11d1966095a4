"""Loss modules: the same numbers as the functions, PyTorch's reductions, readable repr."""

import numpy as np
import pytest
import torch

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F


def data(seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((5, 3)), rng.integers(0, 3, 5)


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_loss_modules_match_functions_and_torch(reduction):
    s, y = data()
    t = torch.from_numpy(s)
    ce = nn.CrossEntropyLoss(reduction)(cr.tensor(s), y).data
    np.testing.assert_allclose(ce, F.cross_entropy(cr.tensor(s), y, reduction).data)
    np.testing.assert_allclose(
        ce,
        torch.nn.CrossEntropyLoss(reduction=reduction)(t, torch.from_numpy(y)).numpy(),
        rtol=1e-12,
    )
    target = np.ones_like(s)
    mse = nn.MSELoss(reduction)(cr.tensor(s), target).data
    np.testing.assert_allclose(
        mse, torch.nn.MSELoss(reduction=reduction)(t, torch.from_numpy(target)).numpy(), rtol=1e-12
    )
    svm = nn.SVMLoss(0.5, reduction)(cr.tensor(s), y).data
    np.testing.assert_allclose(svm, F.svm_loss(cr.tensor(s), y, 0.5, reduction).data)


def test_loss_module_backward_reaches_the_scores():
    s, y = data(1)
    scores = cr.tensor(s, requires_grad=True)
    nn.SVMLoss()(scores, y).backward()
    assert scores.grad.shape == s.shape and np.any(scores.grad != 0)


def test_loss_modules_validate_and_print():
    for cls in (nn.MSELoss, nn.CrossEntropyLoss):
        with pytest.raises(ValueError, match=f"{cls.__name__}: reduction must be"):
            cls("avg")
    with pytest.raises(ValueError, match="SVMLoss: reduction must be"):
        nn.SVMLoss(reduction="avg")
    assert repr(nn.CrossEntropyLoss()) == "CrossEntropyLoss(reduction='mean')"
    assert repr(nn.SVMLoss()) == "SVMLoss(margin=1.0, reduction='mean')"
    assert repr(nn.MSELoss("sum")) == "MSELoss(reduction='sum')"
