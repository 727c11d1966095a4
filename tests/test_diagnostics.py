"""cr.diagnostics: each finding on a run built to cause it and absent on a healthy run; sampling
attaches hooks only around sampled steps; divergence named by the first gate that made a
non-finite value; the Trainer callback; the sanity checks; the HTML report's content."""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path

import numpy as np
import pytest

import chainrule as cr
from chainrule import data, nn, optim
from chainrule.diagnostics import Diagnostics, sanity_check
from chainrule.diagnostics import report as report_module
from chainrule.nn import functional as F
from chainrule.train import Trainer


@pytest.fixture(scope="module")
def digits():
    split = data.digits(seed=0)
    return split.x_train, split.y_train


def mlp(act=nn.ReLU, weight_scale=1.0, bias=None, seed=0):
    rng = np.random.default_rng(seed)
    model = nn.Sequential(
        nn.Linear(64, 100, generator=rng), act(), nn.Linear(100, 10, generator=rng)
    )
    for p in model.parameters():
        if p.ndim == 2:
            p.data *= weight_scale
    if bias is not None:
        model[0].bias.data[:] = bias
    return model


def train(digits, model=None, lr=0.1, input_scale=1.0, steps=200, every=10, **kwargs):
    """Plain SGD on the digits for ``steps`` steps of 32, watched by Diagnostics."""
    x, y = digits
    model = model if model is not None else mlp(**kwargs)
    opt = optim.SGD(model.parameters(), lr=lr)
    diag = Diagnostics(model, opt, every=every)
    rng = np.random.default_rng(1)
    taken = 0
    while taken < steps:
        for xb, yb in data.batches(x * input_scale, y, 32, generator=rng):
            loss = F.cross_entropy(model(xb), yb)
            opt.zero_grad()
            loss.backward()
            opt.step()
            diag.step(loss)
            taken += 1
            if taken == steps:
                break
    return diag


def kinds(diag):
    return sorted({f.kind for f in diag.findings()})


# --- findings ------------------------------------------------------------------------------------
def test_a_healthy_run_has_no_findings(digits):
    for act in (nn.ReLU, nn.Tanh):
        diag = train(digits, act=act)
        assert diag.findings() == []
        assert diag.classes == 10
        assert len(diag.samples) == 20


def test_too_high_a_learning_rate_is_named_with_the_ratio(digits):
    diag = train(digits, lr=3.0)
    high = [f for f in diag.findings() if f.kind == "ratio_high"]
    assert high and {f.subject for f in high} <= {"0.weight", "2.weight"}
    for finding in high:
        ratio = finding.numbers["ratio"]
        assert ratio > 0.05
        assert f"update/weight ratio {ratio:.2g} on {finding.subject}" in finding.message
        assert "lr 3" in finding.message
        assert "learning rate likely too high" in finding.message
    assert "dead_relu" in kinds(diag)  # what the too-large steps did to the hidden layer


def test_too_low_a_learning_rate_is_named(digits):
    diag = train(digits, lr=1e-4)
    assert kinds(diag) == ["ratio_low"]
    assert "learning rate likely too low" in diag.findings()[0].message


def test_too_large_an_init_shows_in_the_initial_loss(digits):
    diag = train(digits, weight_scale=10.0)
    (finding,) = [f for f in diag.findings() if f.kind == "initial_loss"]
    first = diag.losses[0]
    assert first > 5
    assert finding.message.startswith(f"initial loss {first:.3g}, expected about 2.3 = log 10")
    assert "check the weight scale" in finding.message


def test_inputs_scaled_by_1000_are_named(digits):
    diag = train(digits, input_scale=1000.0)
    found = {f.kind: f for f in diag.findings()}
    assert {"input_scale", "initial_loss", "ratio_high"} <= set(found)
    mean, std = found["input_scale"].numbers["mean"], found["input_scale"].numbers["std"]
    assert 200 < mean < 400 and 300 < std < 450
    assert "standardize them" in found["input_scale"].message


def test_all_negative_biases_kill_the_relus(digits):
    diag = train(digits, bias=-5.0)
    (finding,) = [f for f in diag.findings() if f.kind == "dead_relu"]
    assert finding.subject == "1"
    assert finding.numbers["dead"] == 1.0
    assert finding.message.startswith(
        "layer 1: 100% of ReLUs never fired on the 10 sampled batches of the last 100 steps: "
        "lower the learning rate or the initial weight scale; the biases feeding it average -5: "
        "start them at 0"
    )


def test_saturated_tanh_units_are_named(digits):
    diag = train(digits, act=nn.Tanh, input_scale=1000.0)
    (finding,) = [f for f in diag.findings() if f.kind == "saturated"]
    assert finding.subject == "1" and finding.numbers["saturated"] > 0.9
    assert "layer 1 (Tanh)" in finding.message
    assert "ratio_low" not in kinds(diag)  # the starved gradient is the saturation's doing


def test_sigmoid_saturation_uses_the_same_two_percent_rule():
    model = nn.Sequential(nn.Linear(2, 3, seed=0), nn.Sigmoid())
    diag = Diagnostics(model, every=1, classes=3)
    model(cr.tensor([[100.0, -100.0], [0.0, 0.0]]))
    diag.step(1.0)
    layer = diag.samples[0].layers["1"]
    y = model(cr.tensor([[100.0, -100.0], [0.0, 0.0]])).data
    expected = np.mean(y * (1 - y) < 0.02 * 0.25)
    assert layer.saturated == pytest.approx(expected)


# --- divergence ----------------------------------------------------------------------------------
class Log(nn.Module):
    def forward(self, x):
        return cr.log(x)


def test_a_nan_loss_names_the_gate_that_made_it():
    model = nn.Sequential(nn.Linear(3, 4, seed=0), Log())
    diag = Diagnostics(model)
    with np.errstate(invalid="ignore"):
        loss = F.cross_entropy(model(np.ones((2, 3))), np.array([0, 1]))
    diag.step(loss)
    d = diag.divergence
    assert d.gate == "log" and d.step == 0
    (finding,) = [f for f in diag.findings() if f.kind == "divergence"]
    assert finding.message.startswith(
        "the loss became nan at step 0: gate 'log' made nan from the output of gate 'linear'"
    )


def test_an_exploding_regression_names_what_led_to_the_overflow():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3)) * 10
    y = x @ np.array([1.0, -2.0, 3.0])
    model = nn.Sequential(nn.Linear(3, 1, seed=0))
    opt = optim.SGD(model.parameters(), lr=1.0)
    diag = Diagnostics(model, opt, every=1, expected_initial_loss=100.0)
    with np.errstate(all="ignore"):
        for _ in range(500):
            loss = F.mse_loss(model(x).reshape(64), y)
            opt.zero_grad()
            loss.backward()
            opt.step()
            diag.step(loss)
            if diag.divergence is not None:
                break
    d = diag.divergence
    assert d is not None and d.step > 10
    # the squares were still finite (just), their mean was not: that gate is named
    assert d.gate == "mean"
    assert re.match(r"gate 'mean' made inf from the output of gate 'mul' \(largest", d.origin)
    finding = diag.findings()[0]
    assert finding.kind == "divergence"
    assert "the last finite losses were" in finding.message
    assert "largest update/weight ratio" in finding.message
    assert finding.message.endswith("Lower the learning rate (or the initial weight scale).")


# --- sampling ------------------------------------------------------------------------------------
def test_hooks_are_attached_only_around_sampled_steps(digits):
    model = mlp()
    diag = Diagnostics(model, every=3)
    x, y = digits

    def hooked():
        return sum(len(m._forward_hooks) + len(m._forward_pre_hooks) for m in model.modules())

    counts = []
    for _ in range(7):
        counts.append(hooked())
        diag.step(F.cross_entropy(model(x[:8]), y[:8]))
    assert counts == [3, 0, 0, 1, 0, 0, 1]  # the model itself is watched on the first only
    assert [s.step for s in diag.samples] == [0, 3, 6]
    diag.close()
    assert hooked() == 0


def test_evaluation_passes_under_no_grad_are_not_sampled(digits):
    model = mlp()
    diag = Diagnostics(model, every=1)
    x, y = digits
    loss = F.cross_entropy(model(x[:8]), y[:8])
    with cr.no_grad():
        model(x[:100])
    diag.step(loss)
    assert diag.samples[0].layers["1"].values.size == 8 * 100 // max(1, 800 // 512)


def test_update_ratio_is_the_change_over_the_weights(digits):
    model = mlp()
    opt = optim.SGD(model.parameters(), lr=0.1)
    diag = Diagnostics(model, opt, every=2)
    x, y = digits
    before = model[0].weight.data.copy()
    loss = F.cross_entropy(model(x[:16]), y[:16])
    opt.zero_grad()
    loss.backward()
    grad_norm = np.linalg.norm(model[0].weight.grad)
    opt.step()
    diag.step(loss)
    change = np.linalg.norm(model[0].weight.data - before)
    diag.settle()
    sample = diag.samples[0].params["0.weight"]
    assert sample.grad_norm == pytest.approx(grad_norm)
    assert sample.weight_norm == pytest.approx(np.linalg.norm(model[0].weight.data))
    assert change == pytest.approx(0.1 * grad_norm)
    # recorded after opt.step(): the weight norm is taken then, and the update is the next one
    assert diag.samples[0].params["0.weight"].update_ratio is None


def test_bad_arguments_are_refused():
    with pytest.raises(TypeError, match="cr.nn.Module"):
        Diagnostics("model")
    with pytest.raises(ValueError, match="every must be a positive integer"):
        Diagnostics(mlp(), every=0)
    with pytest.raises(ValueError, match="classes must be an integer >= 2"):
        Diagnostics(mlp(), classes=1)


# --- with the Trainer ----------------------------------------------------------------------------
def test_trainer_callback_feeds_losses_and_accuracies(digits):
    x, y = digits
    model = mlp()
    diag = Diagnostics(model, every=10)
    trainer = Trainer(
        model,
        (x[:640], y[:640]),
        optim_config={"lr": 0.1},
        batch_size=32,
        epochs=2,
        val_split=0.1,
        generator=0,
        callbacks=[diag.callback()],
    )
    trainer.fit()
    assert diag.optimizer is trainer.optimizer
    assert len(diag.losses) == trainer.step == 36
    assert [s.step for s in diag.samples] == [0, 10, 20, 30]
    assert [step for step, _ in diag.accuracies["train"]] == [18, 36]
    assert len(diag.accuracies["validation"]) == 2
    assert diag.findings() == []


# --- sanity checks -------------------------------------------------------------------------------
def test_sanity_checks_pass_on_a_healthy_model_and_leave_it_unchanged(digits):
    x, y = digits
    model = mlp()
    state = model.state_dict()
    report = sanity_check(model, x, y, optim_config={"lr": 0.1})
    assert report.passed, str(report)
    assert [c.name for c in report.checks] == ["initial loss", "overfit 20 examples"]
    assert str(report.checks[1]).startswith("ok   overfit 20 examples: 100% training accuracy")
    for key, value in model.state_dict().items():
        np.testing.assert_array_equal(value, state[key])


def test_sanity_checks_fail_on_a_large_init_and_a_tiny_learning_rate(digits):
    x, y = digits
    report = sanity_check(mlp(weight_scale=10.0), x, y, optim_config={"lr": 1e-6}, steps=50)
    assert not report.passed
    initial, overfit = report.checks
    assert not initial.passed and "check the initial weight scale" in initial.message
    assert not overfit.passed and overfit.message.startswith("only ")
    assert "after 50 steps (SGD lr 1e-06" in overfit.message


# --- the report ---------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def report_path(digits, tmp_path_factory):
    """The report of a run whose biases kill every ReLU (60 steps), written once."""
    diag = train(digits, bias=-5.0, steps=60)
    return diag.report(tmp_path_factory.mktemp("report") / "report.html", "dead relus")


def test_report_is_one_self_contained_page_with_findings_and_plots(report_path):
    text = open(report_path, encoding="utf-8").read()
    assert text.startswith("<!DOCTYPE html>")
    assert "<title>dead relus</title>" in text
    assert "100% of ReLUs never fired" in text
    images = re.findall(r'src="data:image/png;base64,([^"]+)"', text)
    assert len(images) == 6  # loss, ratios, gradients, histograms, dead, first-layer weights
    for image in images:
        assert base64.b64decode(image).startswith(b"\x89PNG")
    assert not re.search(r"(src|href)=\"(https?:)?//", text)  # nothing fetched from a network
    assert "<script" not in text


def test_a_healthy_run_is_reported_as_such():
    assert "No problems found" in report_module._findings_html([])


playwright = pytest.importorskip("playwright.sync_api")
CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
SCREENSHOTS = Path(__file__).resolve().parent.parent / "out" / "screenshots"


@pytest.mark.skipif(not Path(CHROMIUM).exists(), reason="chromium is not installed")
def test_report_renders_in_headless_chromium_without_network(report_path, tmp_path):
    with playwright.sync_playwright() as p:
        browser = p.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu"], headless=True
        )
        try:
            page = browser.new_page(viewport={"width": 1200, "height": 900})
            requests = []
            page.on("request", lambda r: requests.append(r.url))
            page.goto(Path(report_path).as_uri())
            page.wait_for_load_state("load")
            sizes = page.eval_on_selector_all(
                "img", "els => els.map(e => [e.complete, e.naturalWidth, e.naturalHeight])"
            )
            assert len(sizes) == 6
            assert all(done and w > 300 and h > 50 for done, w, h in sizes), sizes
            assert page.locator("ul.findings li").count() >= 1
            assert "100% of ReLUs never fired" in page.inner_text("ul.findings")
            assert page.inner_text("h1") == "dead relus"
            assert all(url.startswith(("file:", "data:")) for url in requests), requests
            SCREENSHOTS.mkdir(parents=True, exist_ok=True)
            page.screenshot(path=str(SCREENSHOTS / "diagnostics_report.png"), full_page=True)
        finally:
            browser.close()


# --- convnets and the Trainer's divergence ----------------------------------------------------
def test_a_convnet_is_watched_and_its_first_layer_filters_are_drawn():
    rng = np.random.default_rng(0)
    model = nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1, seed=0),
        nn.ReLU(),
        nn.Flatten(),
        nn.Linear(4 * 6 * 6, 3, seed=1),
    )
    opt = optim.SGD(model.parameters(), lr=0.01)
    diag = Diagnostics(model, opt, every=1)
    x, y = rng.standard_normal((5, 3, 6, 6)), np.array([0, 1, 2, 0, 1])
    for _ in range(3):
        loss = F.cross_entropy(model(x), y)
        opt.zero_grad()
        loss.backward()
        opt.step()
        diag.step(loss)
    assert list(diag.layers) == ["1"] and diag.classes == 3
    assert diag.samples[0].layers["1"].fired.shape == (4 * 6 * 6,)  # per channel and position
    assert diag.samples[0].params["0.weight"].update_ratio > 0
    fig = report_module._filters_figure(diag)
    image = fig.axes[0].images[0].get_array()
    assert image.shape == (1 + 4, 1 + 4 * 4, 3)  # four 3x3 RGB filters in a row, 1px apart
    assert diag.findings() == []


def test_the_trainer_stopping_on_a_nan_loss_leaves_the_gate_named(digits):
    x, y = digits
    model = nn.Sequential(nn.Linear(64, 10, seed=0), Log())
    diag = Diagnostics(model)
    trainer = Trainer(model, (x[:64], y[:64]), batch_size=32, epochs=1, callbacks=[diag.callback()])
    with pytest.raises(FloatingPointError, match="the loss became nan"):
        trainer.fit()
    assert diag.divergence.gate == "log"
    assert diag.findings()[0].message.startswith("the loss became nan at step 0: gate 'log'")
