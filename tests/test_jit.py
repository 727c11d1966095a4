"""cr.jit: staged training steps equal eager ones, effects included; what cannot be staged falls
back to eager with one warning naming the reason and the line (or raises with strict=True)."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from test_stage import Cube, NumpyCube

import chainrule as cr
from chainrule import nn, optim
from chainrule.nn import functional as F


def _data(n: int = 70, d: int = 6, c: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, d)), rng.integers(0, c, size=n)


def _batches(x, y, sizes):
    start = 0
    for size in sizes:
        yield x[start : start + size], y[start : start + size]
        start += size


def _mlp(seed: int = 1, dropout: float = 0.0, norm: bool = False) -> nn.Module:
    layers = [nn.Linear(6, 8, seed=seed)]
    if norm:
        layers.append(nn.BatchNorm1d(8))
    layers.append(nn.ReLU())
    if dropout:
        layers.append(nn.Dropout(dropout, seed=seed))
    layers.append(nn.Linear(8, 3, seed=seed + 1))
    return nn.Sequential(*layers)


def _state(model: nn.Module) -> dict:
    return {k: np.array(v, copy=True) for k, v in model.state_dict().items()}


def _assert_same(a: dict, b: dict, rtol: float = 1e-12) -> None:
    assert a.keys() == b.keys()
    for key in a:
        np.testing.assert_allclose(a[key], b[key], rtol=rtol, atol=1e-15, err_msg=key)


def _train(model, sizes, jit: bool, reg: float = 0.0, **jit_options):
    """Train with SGD + momentum on fixed batches; jitted or eager. Returns losses and the step."""
    x, y = _data()
    opt = optim.SGD(model.parameters(), lr=0.1, momentum=0.9)

    def step(xb, yb):
        loss = F.cross_entropy(model(xb), yb)
        if reg:
            loss = loss + F.l2_penalty([p for p in model.parameters() if p.ndim == 2], reg)
        opt.zero_grad()
        loss.backward()
        return loss

    run = cr.jit(step, **jit_options) if jit else step
    losses = []
    for xb, yb in _batches(x, y, sizes):
        losses.append(run(xb, yb).item())
        opt.step()
    return losses, run


SIZES = [8, 8, 8, 8, 5, 3, 8, 8, 3, 3, 3]  # a smaller last batch, seen three times


@pytest.mark.parametrize(
    "options",
    [{}, {"dropout": 0.3}, {"norm": True}, {"norm": True, "dropout": 0.5}],
    ids=["mlp", "dropout", "batchnorm", "both"],
)
def test_jitted_training_equals_eager(options):
    eager_model, jit_model = _mlp(**options), _mlp(**options)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        expected, _ = _train(eager_model, SIZES, jit=False, reg=1e-3)
        losses, step = _train(jit_model, SIZES, jit=True, reg=1e-3)
    np.testing.assert_allclose(losses, expected, rtol=1e-12)
    _assert_same(_state(jit_model), _state(eager_model))
    assert step.traces == 5  # batch 8 and 3 traced twice (then checked), batch 5 seen once
    assert step.staged_calls == len(SIZES) - step.traces
    assert step.eager_calls == 0


def test_source_is_readable_code():
    _, step = _train(_mlp(), [8, 8, 8], jit=True)
    source = step.source
    assert "def step_staged(xb, yb, layer0_weight, layer0_bias" in source
    assert "# forward pass" in source and "# backward pass" in source
    assert "dlayer0_weight = " in source
    assert "staged by cr.jit at xb: float64[8, 6], yb: int64[8]" in source


def test_no_source_before_first_call():
    step = cr.jit(lambda x: x)
    with pytest.raises(RuntimeError, match="no staged code yet"):
        _ = step.source


def test_parameters_are_read_live_and_grads_accumulate():
    """Without zero_grad, .grad accumulates as in eager; replacing .data is seen next call."""
    w = cr.tensor(np.linspace(-1, 1, 6).reshape(3, 2), requires_grad=True)
    w_eager = cr.tensor(w.data.copy(), requires_grad=True)

    def loss_of(weight, x):
        return (cr.tanh(x @ weight) ** 2).sum()

    @cr.jit
    def step(x):
        loss = loss_of(w, x)
        loss.backward()
        return loss

    rng = np.random.default_rng(3)
    for k in range(6):
        x = cr.tensor(rng.normal(size=(4, 3)))
        if k == 4:  # a new array, not an in-place edit
            w.data = w.data * 0.5
            w_eager.data = w_eager.data * 0.5
        value = step(x)
        expected = loss_of(w_eager, x)
        expected.backward()
        assert value.item() == pytest.approx(expected.item(), rel=1e-13)
        np.testing.assert_allclose(w.grad, w_eager.grad, rtol=1e-13)
    assert step.staged_calls == 4
    assert not value.requires_grad


def test_zero_grad_to_zeros_and_tensor_arguments():
    """zero_grad(set_to_none=False) is replayed as zeros; a tensor argument that requires grad
    receives its gradient, on the object passed at each call."""
    model = nn.Linear(3, 2, seed=0)
    opt = optim.SGD(model.parameters(), lr=0.1)

    @cr.jit
    def step(x):
        opt.zero_grad(set_to_none=False)
        loss = (model(x) ** 2).mean()
        loss.backward()
        return loss

    rng = np.random.default_rng(0)
    for _ in range(4):
        x = cr.tensor(rng.normal(size=(5, 3)), requires_grad=True)
        step(x)
        reference = cr.tensor(x.data.copy(), requires_grad=True)
        ((model(reference) ** 2).mean()).backward()
        np.testing.assert_allclose(x.grad, reference.grad, rtol=1e-13)
    assert step.staged_calls == 2


def test_inference_under_no_grad_and_structured_outputs():
    model = _mlp()
    model.eval()

    @cr.jit
    def predict(x):
        scores = model(x)
        return {"scores": scores, "probs": [F.softmax(scores, dim=1)], "note": None}

    x, _ = _data()
    with cr.no_grad():
        for _ in range(3):
            out = predict(x)
    expected = model(x).data
    np.testing.assert_allclose(out["scores"].data, expected, rtol=1e-13)
    assert out["note"] is None and isinstance(out["probs"], list)
    assert predict.staged_calls == 1


def _line_of(text: str) -> int:
    import inspect

    source, start = inspect.getsourcelines(test_fallbacks_name_reason_and_line)
    return start + next(i for i, line in enumerate(source) if text in line)


def test_fallbacks_name_reason_and_line():
    w = cr.tensor([1.0, 2.0], requires_grad=True)

    def reads_item(x):
        loss = (w * x).sum()
        if loss.item() > 0:  # data-dependent control flow
            loss = loss * 2
        loss.backward()
        return loss

    jitted = cr.jit(reads_item)
    with pytest.warns(cr.JitWarning, match=r"item\(\) reads a traced value") as caught:
        first = jitted(np.array([1.0, 1.0]))
    assert f"test_jit.py:{_line_of('data-dependent control flow')}" in str(caught[0].message)
    assert first.item() == 6.0
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # warned once, then eager quietly
        assert jitted(np.array([-1.0, -1.0])).item() == -3.0
    assert jitted.eager_calls == 1 and jitted.staged_calls == 0


@pytest.mark.parametrize(
    "body, reason",
    [
        ("step", r"\.grad is read inside the function"),
        ("assign", r"\.grad is assigned inside the function"),
        ("twice", r"calls backward\(\) 2 times"),
        ("create", r"backward\(create_graph=True\)"),
        ("no_backward", "requires grad without calling backward"),
        ("hook", "register_hook"),
    ],
)
def test_unstageable_steps_fall_back(body, reason):
    w = cr.tensor([1.0, -2.0, 0.5], requires_grad=True)
    opt = optim.SGD([w], lr=0.1)

    def fn(x):
        loss = (w * x).sum() ** 2
        if body == "hook":
            loss.register_hook(lambda g: g)
        if body == "no_backward":
            return loss
        opt.zero_grad()
        loss.backward(create_graph=body == "create")
        if body == "twice":
            (w * 2).sum().backward()
        if body == "step":
            opt.step()
        if body == "assign":
            w.grad = np.ones(3)
        return loss

    with pytest.warns(cr.JitWarning, match=reason):
        cr.jit(fn)(np.ones(3))
    with pytest.raises(cr.JitError, match=reason):
        w.grad = None
        cr.jit(fn, strict=True)(np.ones(3))


def test_numpy_values_that_change_between_calls_are_caught():
    w = cr.tensor([1.0, 2.0, 3.0], requires_grad=True)
    rng = np.random.default_rng(0)

    @cr.jit
    def step(x):
        noise = rng.normal(size=3)  # computed outside chainrule: would be frozen
        loss = (w * (x + noise)).sum()
        loss.backward()
        return loss

    step(np.ones(3))
    with pytest.warns(cr.JitWarning, match=r"shape \(3,\) computed outside chainrule changes"):
        step(np.ones(3))
    step(np.ones(3))
    assert step.staged_calls == 0 and step.eager_calls == 1


def test_module_hooks_are_never_skipped():
    model = nn.Linear(3, 2, seed=0)
    seen = []

    @cr.jit
    def step(x):
        return model(x)

    x = np.ones((2, 3))
    with cr.no_grad():
        for _ in range(3):
            step(x)
        model.register_forward_hook(lambda m, args, out: seen.append(out.shape))
        with pytest.warns(cr.JitWarning, match="Linear has forward or backward hooks"):
            step(x)
        step(x)
    assert seen == [(2, 2), (2, 2)]


def test_retracing_warns_once_and_counts():
    @cr.jit(cache_size=2)
    def total(x):
        return cr.tensor(x).sum()

    total(np.ones(1))
    total(np.ones(2))
    with pytest.warns(cr.JitWarning, match="more than 2 signatures"):
        total(np.ones(3))
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        total(np.ones(4))
    assert total.evictions == 2 and total.traces == 4
    assert "4 trace(s)" in repr(total)


def test_static_arguments_and_keywords_are_part_of_the_signature():
    w = cr.tensor([1.0, 2.0], requires_grad=True)

    @cr.jit
    def step(x, scale=1.0, *, power=2):
        w.grad = None
        loss = ((w * x) ** power).sum() * scale
        loss.backward()
        return loss

    x = np.array([1.0, 3.0])
    for _ in range(3):
        assert step(x, 2.0, power=3).item() == pytest.approx(2 * (1 + 216))
        np.testing.assert_allclose(w.grad, 2 * 3 * (w.data * x) ** 2 * x)
        assert step(x).item() == pytest.approx(1 + 36)
        np.testing.assert_allclose(w.grad, 2 * w.data * x * x)
    assert step.staged_calls == 2


def test_bad_arguments():
    with pytest.raises(TypeError, match="needs a function"):
        cr.jit(3)
    with pytest.raises(ValueError, match="cache_size must be at least 1"):
        cr.jit(lambda x: x, cache_size=0)


_UNARY = {
    "tanh": cr.tanh,
    "sigmoid": cr.sigmoid,
    "relu": cr.relu,
    "exp_small": lambda t: cr.exp(t * 0.1),
    "square": lambda t: t * t,
    "affine": lambda t: t * 1.5 - 0.25,
}


@settings(deadline=None)
@given(
    ops=st.lists(st.sampled_from(sorted(_UNARY)), min_size=1, max_size=6),
    fork=st.booleans(),
    reduce=st.sampled_from(["sum", "mean"]),
    dtype=st.sampled_from([np.float64, np.float32]),
    seed=st.integers(0, 2**16),
)
def test_random_circuits_train_as_eager(ops, fork, reduce, dtype, seed):
    """Random circuits over a matmul, broadcasting and forks: five SGD steps jitted equal five
    eager steps (float64 to 1e-12; float32 to float32 precision)."""
    rng = np.random.default_rng(seed)
    w0, b0 = rng.normal(size=(3, 4)).astype(dtype), rng.normal(size=4).astype(dtype)
    xs = [rng.normal(size=(5, 3)).astype(dtype) for _ in range(5)]

    def run(jit: bool):
        w, b = cr.tensor(w0.copy(), requires_grad=True), cr.tensor(b0.copy(), requires_grad=True)
        opt = optim.SGD([w, b], lr=0.05)

        def step(x):
            h = x @ w + b
            for name in ops:
                h = _UNARY[name](h)
            if fork:
                h = h * cr.sigmoid(h) + h
            loss = h.sum() if reduce == "sum" else h.mean()
            opt.zero_grad()
            loss.backward()
            return loss

        fn = cr.jit(step, strict=True) if jit else step
        for x in xs:
            fn(cr.tensor(x))
            opt.step()
        return w.data, b.data

    rtol = 1e-12 if dtype == np.float64 else 1e-5
    with np.errstate(over="ignore", invalid="ignore"):  # squares of squares may overflow: alike
        results = run(True), run(False)
    for got, want in zip(*results):
        assert got.dtype == want.dtype
        np.testing.assert_allclose(got, want, rtol=rtol, atol=rtol)


def test_threads_share_a_jitted_function_safely():
    """Staged code writes into buffers of its own: concurrent calls take turns, and each thread
    gets its own results."""
    import sys
    import threading

    w = cr.tensor(np.linspace(-1, 1, 12).reshape(4, 3), requires_grad=True)

    @cr.jit
    def scores(x):
        return cr.tanh(x @ w) * 2.0

    rng = np.random.default_rng(5)
    inputs = [cr.tensor(rng.normal(size=(64, 4))) for _ in range(8)]
    expected = [np.tanh(x.data @ w.data) * 2.0 for x in inputs]
    with cr.no_grad():
        for x in inputs[:3]:
            scores(x)
    failures = []

    def work(k: int) -> None:
        with cr.no_grad():
            for _ in range(50):
                got = scores(inputs[k]).data
                if not np.array_equal(got, expected[k]):
                    failures.append(k)

    threads = [threading.Thread(target=work, args=(k,)) for k in range(len(inputs))]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not failures
    assert scores.staged_calls >= 400


def test_user_gates_stage_or_fall_back_by_name():
    w = cr.tensor([0.5, -1.0, 2.0], requires_grad=True)

    def make(gate):
        def step(x):
            w.grad = None
            loss = (gate.apply(w * x)).sum()
            loss.backward()
            return loss

        return step

    x = np.array([1.0, 2.0, 3.0])
    staged = cr.jit(make(Cube))
    for _ in range(3):
        staged(x)
    np.testing.assert_allclose(w.grad, 3 * (w.data * x) ** 2 * x, rtol=1e-14)
    assert staged.staged_calls == 1 and "= cube(" in staged.source
    assert "def step_staged(x, w):" in staged.source  # the closure's name
    with pytest.warns(cr.JitWarning, match="gate 'numpy_cube'"):
        cr.jit(make(NumpyCube))(x)
    np.testing.assert_allclose(w.grad, 3 * (w.data * x) ** 2 * x, rtol=1e-14)


@pytest.mark.parametrize(
    "change",
    [lambda m: m.eval(), lambda m: setattr(m[2], "p", 0.1)],
    ids=["eval", "dropout-p"],
)
def test_module_mode_and_settings_are_guarded(change):
    """train()/eval() and a Python setting a module's forward reads (dropout's p), which staged
    code freezes: changing either stages again, with the eager results."""
    model, twin = _mlp(dropout=0.5), _mlp(dropout=0.5)

    @cr.jit
    def scores(x):
        return model(x)

    x, _ = _data()
    with cr.no_grad():
        for _ in range(3):
            scores(x)
            twin(x)
        change(model)
        change(twin)
        for _ in range(3):
            np.testing.assert_array_equal(scores(x).data, twin(x).data)
    assert scores.traces == 3 and scores.staged_calls == 3  # one more trace, then staged
