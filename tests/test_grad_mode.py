"""Grad mode is per thread (as in PyTorch) and the no_grad/enable_grad decorators wrap generator
functions; training in several threads at once loses no gradient and matches a single thread."""

import sys
import threading

import numpy as np

import chainrule as cr
from chainrule import nn, optim

STEPS = 1000


def _train(seed: int, steps: int, problems: list, infer: bool) -> list:
    """A small MLP trained with SGD; every step checks that each parameter got its gradient.

    With ``infer`` each step also runs an evaluation under ``no_grad`` (the inference thread)."""
    rng = np.random.default_rng(seed)
    x, y = rng.standard_normal((8, 3)), rng.standard_normal((8, 1))
    model = nn.Sequential(nn.Linear(3, 4), nn.Tanh(), nn.Linear(4, 1))
    model.load_state_dict(
        {k: rng.standard_normal(v.shape) * 0.5 for k, v in model.state_dict().items()}
    )
    opt = optim.SGD(model.parameters(), lr=0.01)
    for step in range(steps):
        opt.zero_grad()
        loss = ((model(x) - y) ** 2).mean()
        loss.backward()
        missing = [i for i, p in enumerate(model.parameters()) if p.grad is None]
        if missing:
            problems.append((seed, step, missing))
        opt.step()
        if infer:
            with cr.no_grad():
                model(x)
    return [p.data.copy() for p in model.parameters()]


def test_three_training_threads_lose_no_gradient_and_match_a_single_thread():
    expected = {seed: _train(seed, STEPS, [], infer=seed == 2) for seed in range(3)}
    problems: list = []
    results: dict = {}
    errors: list = []

    def run(seed: int) -> None:
        try:
            results[seed] = _train(seed, STEPS, problems, infer=seed == 2)
        except Exception as exc:  # reported below, with the thread's seed
            errors.append((seed, repr(exc)))

    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-5)  # switch threads often, as a loaded machine does
    try:
        threads = [threading.Thread(target=run, args=(seed,)) for seed in range(3)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
    finally:
        sys.setswitchinterval(interval)
    assert not errors
    assert not problems
    for seed in range(3):
        for got, want in zip(results[seed], expected[seed]):
            np.testing.assert_array_equal(got, want)
    assert cr.is_grad_enabled()


def test_no_grad_in_one_thread_leaves_another_recording():
    inside, release = threading.Event(), threading.Event()

    def hold() -> None:
        with cr.no_grad():
            inside.set()
            release.wait(5)

    t = threading.Thread(target=hold)
    t.start()
    inside.wait(5)
    try:
        assert cr.is_grad_enabled()
        x = cr.tensor([1.0, 2.0], requires_grad=True)
        assert (x * x).requires_grad
    finally:
        release.set()
        t.join()


def test_a_new_thread_starts_with_recording_on():
    seen = []
    with cr.no_grad():
        t = threading.Thread(target=lambda: seen.append(cr.is_grad_enabled()))
        t.start()
        t.join()
    assert seen == [True]


def test_no_grad_decorator_wraps_a_generator_body():
    @cr.no_grad()
    def gen(n):
        """Yields the grad mode seen inside."""
        for _ in range(n):
            received = yield cr.is_grad_enabled()
            assert received is None or received == "ping"
        return "done"

    assert gen.__name__ == "gen" and gen.__doc__ == "Yields the grad mode seen inside."
    it = gen(2)
    assert cr.is_grad_enabled()
    assert next(it) is False
    assert cr.is_grad_enabled()
    assert it.send("ping") is False
    try:
        next(it)
    except StopIteration as stop:
        assert stop.value == "done"
    assert cr.is_grad_enabled()


def test_enable_grad_decorator_wraps_a_generator_inside_no_grad():
    @cr.enable_grad()
    def gen():
        x = cr.tensor(2.0, requires_grad=True)
        yield (x * x).requires_grad
        yield cr.is_grad_enabled()

    with cr.no_grad():
        assert list(gen()) == [True, True]
        assert not cr.is_grad_enabled()


def test_generator_decorator_passes_exceptions_and_close_through():
    log = []

    @cr.no_grad()
    def gen():
        try:
            yield 1
        except KeyError:
            log.append(("caught", cr.is_grad_enabled()))
            yield 2
        finally:
            log.append(("closed", cr.is_grad_enabled()))

    it = gen()
    assert next(it) == 1
    assert it.throw(KeyError("k")) == 2
    it.close()
    assert log == [("caught", False), ("closed", False)]
    assert cr.is_grad_enabled()


def test_decorators_keep_the_function_metadata():
    def f(a, b=2):
        """Doc."""
        return a + b

    g = cr.no_grad()(f)
    assert g(1) == 3 and g.__name__ == "f" and g.__doc__ == "Doc."
    assert g.__wrapped__ is f
