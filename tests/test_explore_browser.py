"""The circuit explorer end to end in a real headless browser: Debian's chromium driven by
Playwright (its own browser download is never used). The static file is loaded from file:// and
the served page from a local uvicorn server. Screenshots go to out/screenshots/ (looked at; the
README shows copies of them from docs/images/)."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import nn
from chainrule.draw import dot_program
from chainrule.explore.subject import Subject

playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
pytestmark = [
    pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed"),
    pytest.mark.skipif(dot_program() is None, reason="Graphviz's dot is needed"),
]
ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IMAGES = Path(__file__).resolve().parent.parent / "out" / "screenshots"
NEURON = "1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))"
NEURON_AT = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
STAGED = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)"


@pytest.fixture(scope="module")
def browser(tmp_path_factory):
    """One chromium for the whole module, with a fresh profile."""
    profile = tmp_path_factory.mktemp("chromium-profile")
    with playwright.sync_playwright() as p:
        context = p.chromium.launch_persistent_context(
            str(profile),
            executable_path=CHROMIUM,
            args=ARGS,
            headless=True,
            viewport={"width": 1280, "height": 820},
        )
        yield context
        context.close()


@pytest.fixture
def page(browser):
    page = browser.new_page()
    page.set_default_timeout(90_000)  # generous: a shared, loaded machine can be slow to render
    errors: list[str] = []
    page.on("pageerror", lambda exc: errors.append(str(exc)))
    page.on(
        "console",
        lambda m: (
            errors.append(m.text)
            if m.type == "error" and "status of 400" not in m.text  # the error the test provokes
            else None
        ),
    )
    yield page
    page.close()
    assert errors == [], errors


def save_page(tmp_path, expression, values, name) -> str:
    from chainrule.explore import Explorer

    path = tmp_path / name
    Explorer(Subject.from_expression(expression, values)).save(path)
    return path.as_uri()


def text(page, selector: str) -> str:
    return page.locator(selector).first.inner_text().strip()


def number(page, selector: str) -> float:
    return float(re.sub(r"[^0-9eE.+-]", "", text(page, selector)))


def current_gate(page) -> str:
    return page.locator(".cr-circuit g.cr-current").get_attribute("data-name")


def shot(page, name: str) -> None:
    IMAGES.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(IMAGES / name), full_page=True)


def test_static_file_steps_through_the_notes_neuron(page, tmp_path):
    page.goto(save_page(tmp_path, NEURON, NEURON_AT, "neuron.html"))
    assert "static page" in text(page, "[data-role=mode-note]")
    assert page.locator(".cr-circuit .cr-grad:not(.cr-hidden)").count() == 0  # forward only
    expected = [  # gate, local, upstream, gradient (the notes' numbers)
        ("1/x", -0.53, 1.00, -0.53),
        ("+1", 1.00, -0.53, -0.53),
        ("exp", 0.37, -0.53, -0.20),
        ("*-1", -1.00, -0.20, 0.20),
    ]
    for k, (label, local, upstream, grad) in enumerate(expected, 1):
        page.click("[data-role=next]")
        assert text(page, "[data-role=counter]") == f"step {k} of 8"
        assert text(page, "[data-role=gate-label]") == label
        gate = current_gate(page)
        assert page.locator(f'.cr-circuit g.cr-gate[data-name="{gate}"]').count() == 1
        assert number(page, "[data-role=row] [data-role=local]") == pytest.approx(local, abs=0.006)
        assert number(page, "[data-role=row] [data-role=upstream]") == pytest.approx(
            upstream, abs=0.006
        )
        assert number(page, "[data-role=row] [data-role=grad] b") == pytest.approx(grad, abs=0.006)
        highlighted = page.locator(".cr-code .cr-line.cr-on")
        assert highlighted.count() >= 2
    page.click("[data-role=prev]")
    assert text(page, "[data-role=gate-label]") == "exp"
    assert "np.exp" in page.locator(".cr-code .cr-line.cr-on").first.inner_text()
    for _ in range(5):
        page.click("[data-role=next]")
    assert text(page, "[data-role=counter]") == "step 8 of 8"
    rows = {
        r.get_attribute("data-input"): r.locator("[data-role=grad] b").inner_text()
        for r in page.locator("[data-role=row] tbody tr").all()
    }
    assert float(rows["w0"]) == pytest.approx(-0.20, abs=0.006)
    assert float(rows["x0"]) == pytest.approx(0.39, abs=0.006)
    page.click("[data-role=prev]")
    page.click("[data-role=prev]")
    shot(page, "explore_neuron.png")
    page.click("[data-role=reset]")
    assert text(page, "[data-role=counter]") == "step 0 of 8"


def test_click_a_fork_trunk_to_see_its_branches(page, tmp_path):
    page.goto(save_page(tmp_path, STAGED, {"x": 3.0, "y": -4.0}, "staged.html"))
    page.click('.cr-circuit g.wire[data-name="x"]')
    assert text(page, "[data-role=wire-name]") == "x"
    assert text(page, "[data-role=wire-grad]") == "?"  # not yet reached by the backward pass
    for _ in range(7):
        page.click("[data-role=next]")
    branches = page.locator("[data-role=branch] b").all_inner_texts()
    assert len(branches) == 3
    exact = cr.grad(lambda x, y: (x + cr.sigmoid(y)) / (cr.sigmoid(x) + (x + y) ** 2))(3.0, -4.0)
    assert sum(float(b) for b in branches) == pytest.approx(exact, abs=0.02)
    assert number(page, "[data-role=branch-sum]") == pytest.approx(exact, abs=0.006)
    shot(page, "explore_fork.png")


def test_quiz_hides_the_gradient_until_answered(page, tmp_path):
    page.goto(save_page(tmp_path, NEURON, NEURON_AT, "quiz.html"))
    page.check("[data-role=quiz]")
    assert not page.locator("[data-role=gradients]").is_visible()  # the last answers
    page.click("[data-role=next]")
    assert page.locator("[data-role=row] [data-role=grad]").count() == 0
    assert page.locator(".cr-circuit .cr-grad:not(.cr-hidden)").count() == 0
    page.fill("[data-role=guess]", "0.53")
    page.click("[data-role=check]")
    assert "not yet" in text(page, "[data-role=feedback]")
    page.fill("[data-role=guess]", "-0.53")
    page.click("[data-role=check]")
    assert "right" in text(page, ".cr-quiz-result")
    assert number(page, "[data-role=row] [data-role=grad] b") == pytest.approx(-0.53, abs=0.006)
    assert page.locator(".cr-circuit .cr-grad:not(.cr-hidden)").count() >= 1
    page.click("[data-role=next]")
    assert page.locator("[data-role=guess]").count() == 1


def test_tensor_wires_show_shape_and_heatmaps(page, tmp_path):
    W = np.array([[0.1, 0.5], [-0.3, 0.8]])
    f = cr.explore(lambda W, x: ((W @ x) ** 2).sum(), W=W, x=np.array([0.2, 0.4]))
    path = f.save(tmp_path / "matrix.html")
    page.goto(path.as_uri())
    for _ in range(len(f.data["steps"])):
        page.click("[data-role=next]")
    page.click('.cr-circuit g.wire[data-name="W"]')
    assert page.locator("[data-role=heat-value]").count() == 1
    assert page.locator("[data-role=heat-gradient]").count() == 1
    assert "shape (2,2)" in text(page, "[data-role=wire] .cr-heatfig figcaption")
    assert page.locator("[data-role=step-heatmaps] canvas").count() >= 3


def test_a_network_expands_a_module(page, tmp_path):
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    X = np.random.default_rng(0).normal(size=(4, 2))
    f = cr.explore(
        lambda x, labels: nn.functional.cross_entropy(net(x), labels),
        x=X,
        labels=np.array([0, 1, 1, 0]),
        model=net,
    )
    page.goto(f.save(tmp_path / "net.html").as_uri())
    assert page.locator(".cr-circuit g.cr-module").count() == 3
    page.locator('.cr-circuit g.cr-module[data-module="0"]').click()
    assert page.locator(".cr-circuit g.cr-module").count() == 2
    assert page.input_value("[data-role=view]") == "0"
    page.click("[data-role=next]")
    assert page.locator(".cr-circuit g.cr-current").count() == 1
    shot(page, "explore_network.png")


def test_served_page_recomputes_in_python(page):
    pytest.importorskip("uvicorn")
    from explore_server import running_server

    from chainrule.explore.server import create_app

    with running_server(create_app()) as url:
        page.goto(url + "/")
        assert "live" in text(page, "[data-role=mode-note]")
        before = text(page, '[data-grad="w0"]')
        assert float(before) == pytest.approx(-0.20, abs=0.006)
        field = page.locator('[data-role=input][data-name="x0"]')
        field.fill("0.5")
        field.dispatch_event("change")
        page.wait_for_function(
            "before => document.querySelector('[data-grad=w0]').textContent !== before", arg=before
        )
        point = dict(NEURON_AT, x0=0.5)
        grads = cr.grad(
            lambda w0, x0, w1, x1, w2: cr.sigmoid(w0 * x0 + w1 * x1 + w2), argnums=(0, 1, 2, 3, 4)
        )(*point.values())
        for name, exact in zip(point, grads):
            assert number(page, f'[data-grad="{name}"]') == pytest.approx(exact, abs=0.006)
        for _ in range(3):
            page.click("[data-role=next]")
        shot(page, "explore_serve.png")
        page.fill("[data-role=expression]", "x +* y")
        page.click("[data-role=explore]")
        page.wait_for_selector("[data-role=error]:not([hidden])")
        assert "column 4" in text(page, "[data-role=error]")
        page.fill("[data-role=expression]", "(x + y) * z")
        page.click("[data-role=explore]")
        page.wait_for_function("() => document.querySelector('[data-role=error]').hidden")
        assert number(page, '[data-grad="z"]') == pytest.approx(2.0)


def test_the_module_keeps_anywidgets_contract(page):
    """The ES module's default export renders from an anywidget-style model: a changed input is
    sent with model.set('inputs') + save_changes(), and new data from Python redraws the page."""
    pytest.importorskip("uvicorn")
    from explore_server import running_server

    from chainrule.explore.server import create_app

    with running_server(create_app("(x + y) * z", {"x": -2.0, "y": 5.0, "z": -4.0})) as url:
        page.goto(url + "/")
        result = page.evaluate(
            """async () => {
              const widget = (await import("./explorer.js")).default;
              const first = JSON.parse(document.getElementById("chainrule-data").textContent);
              const state = { data: first.data, inputs: first.inputs, error: "", mode: "live" };
              const handlers = {}, sent = [];
              const model = {
                get: (k) => state[k],
                set: (k, v) => { state[k] = v; },
                save_changes: () => sent.push(JSON.stringify(state.inputs)),
                on: (name, cb) => { (handlers[name] ||= []).push(cb); },
                off: () => {},
              };
              const el = document.createElement("div");
              document.body.append(el);
              const destroy = widget.render({ model, el });
              const field = el.querySelector('[data-role=input][data-name="z"]');
              field.value = "2";
              field.dispatchEvent(new Event("change"));
              const before = el.querySelector('[data-grad="x"]').textContent;
              const body = JSON.stringify({ expression: "(x + y) * z", inputs: state.inputs });
              const response = await fetch("./api/explore", { method: "POST", body });
              const reply = await response.json();
              state.data = reply.data;  // what Python sends back
              handlers["change:data"].forEach((cb) => cb());
              const after = el.querySelector('[data-grad="x"]').textContent;
              destroy();
              const box = !!el.querySelector("[data-role=expression]");
              return { sent, before, after, hasExpressionField: box };
            }"""
        )
    assert result["sent"] == ['{"x":-2,"y":5,"z":2}']
    assert (result["before"], result["after"]) == ("-4", "2")
    assert result["hasExpressionField"] is False  # a widget has inputs, not an expression box


def test_served_page_takes_arrays(page):
    """The notes' vectorized example in the served page: W typed as nested lists, the
    gradients recomputed by chainrule (dW = 2 (W x) x^T)."""
    pytest.importorskip("uvicorn")
    from explore_server import running_server

    from chainrule.explore.server import create_app

    W, x = [[0.1, 0.5], [-0.3, 0.8]], [0.2, 0.4]
    with running_server(create_app("sum((W @ x)**2)", {"W": W, "x": x})) as url:
        page.goto(url + "/")
        assert text(page, '[data-grad="W"]') == "[[0.088 0.176] [0.104 0.208]]"
        field = page.locator('[data-role=array][data-name="W"]')
        field.fill("[[1, 0], [0, 1]]")
        field.dispatch_event("change")
        page.wait_for_function(
            "() => document.querySelector('[data-grad=W]').textContent "
            "!== '[[0.088 0.176] [0.104 0.208]]'"
        )
        assert text(page, '[data-grad="W"]') == "[[0.08 0.16] [0.16 0.32]]"  # 2 x x^T
        field = page.locator('[data-role=array][data-name="W"]')
        field.fill("[[1, 0], [0]]")
        field.dispatch_event("change")
        page.wait_for_selector("[data-role=error]:not([hidden])")
        assert "rectangular" in text(page, "[data-role=error]")
