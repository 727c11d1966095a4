"""The training report: one self-contained HTML file a person would rather look at than read.

Plots are drawn with matplotlib (the ``viz`` extra) on figures not tied to any GUI, and embedded
as base64 PNG, so the page needs no network and no other file. The findings come first, in
words, with the numbers behind them; the plots show where those numbers come from.
"""

from __future__ import annotations

import base64
import html
import io
import math
import os
from typing import Any

import numpy as np

from .collect import Diagnostics
from .findings import RATIO_HIGH, Finding, expected_initial_loss, findings

__all__ = ["render", "write"]

_STYLE = """
body { font-family: system-ui, -apple-system, "Segoe UI", sans-serif; margin: 0 auto;
       max-width: 1100px; padding: 1.5em 2em; color: #222; background: #fff; }
h1 { font-size: 1.6em; margin-bottom: 0.2em; }
h2 { font-size: 1.2em; margin-top: 1.8em; border-bottom: 1px solid #ddd; }
.meta { color: #555; }
ul.findings { list-style: none; padding: 0; }
ul.findings li { margin: 0.5em 0; padding: 0.6em 0.9em; border-left: 5px solid #d9822b;
                 background: #fdf3e7; }
ul.findings li.divergence { border-color: #c23030; background: #fbe9e9; }
p.healthy { padding: 0.6em 0.9em; border-left: 5px solid #2b9a3f; background: #eaf6ec; }
img { max-width: 100%; }
table { border-collapse: collapse; font-variant-numeric: tabular-nums; }
td, th { padding: 0.25em 0.8em; border-bottom: 1px solid #eee; text-align: right; }
td:first-child, th:first-child { text-align: left; }
.note { color: #555; font-size: 0.92em; }
"""


def write(diag: Diagnostics, path: str | os.PathLike, title: str | None = None) -> str:
    """Write the report of ``diag`` to ``path`` (an .html file); returns the path written."""
    text = render(diag, title)
    path = os.fspath(path)
    with open(path, "w", encoding="utf-8") as f:
        f.write(text)
    return path


def render(diag: Diagnostics, title: str | None = None) -> str:
    """The report as one HTML string."""
    try:
        from matplotlib.backends.backend_agg import FigureCanvasAgg  # noqa: F401
    except ImportError:
        raise ImportError(
            "the training report needs matplotlib (pip install 'chainrule[viz]')"
        ) from None
    title = title or "Training report"
    found = findings(diag)
    parts = [
        "<!DOCTYPE html>",
        '<html lang="en"><head><meta charset="utf-8">',
        f"<title>{html.escape(title)}</title><style>{_STYLE}</style></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        f'<p class="meta">{html.escape(_summary(diag))}</p>',
        "<h2>Findings</h2>",
        _findings_html(found),
        "<h2>Loss and accuracy</h2>",
        _img(_loss_figure(diag), "loss and accuracy curves"),
    ]
    if diag.samples:
        parts += [
            "<h2>Update / weight ratios</h2>",
            '<p class="note">‖Δw‖ / ‖w‖ per parameter at each sampled step. The course\'s rule '
            "of thumb: about 1e-3 (band 1e-4 to 1e-2 shaded). Much higher, the learning rate is "
            "likely too high; much lower, too low.</p>",
            _img(_ratio_figure(diag), "update to weight ratios"),
            "<h2>Gradient norms</h2>",
            _img(_grad_figure(diag), "gradient norms"),
        ]
        layers = [n for n in diag.layer_order if any(n in s.layers for s in diag.samples)]
        if layers:
            parts += [
                "<h2>Activations per layer over time</h2>",
                '<p class="note">Histogram of each layer\'s outputs at every sampled step '
                "(darker: more values), with the mean (white line).</p>",
                _img(_histogram_figure(diag, layers), "activation histograms over time"),
            ]
        health = _health_figure(diag)
        if health is not None:
            parts += [
                "<h2>Dead and saturated units</h2>",
                '<p class="note">ReLU: fraction of units that were zero on every example of the '
                "sampled batch. Tanh/sigmoid: fraction of outputs whose local gradient is below "
                "2% of its peak.</p>",
                _img(health, "dead and saturated fractions"),
            ]
        filters = _filters_figure(diag)
        if filters is not None:
            parts += [
                "<h2>First-layer weights as images</h2>",
                _img(filters, "first-layer weights"),
            ]
        parts += ["<h2>Parameters at the last sample</h2>", _param_table(diag)]
    parts.append("</body></html>")
    return "\n".join(parts)


# --- text ----------------------------------------------------------------------------------------
def _summary(diag: Diagnostics) -> str:
    n_params = sum(p.size for p in diag.params.values())
    words = [
        f"{type(diag.model).__name__} with {n_params} parameters",
        f"{diag.steps} steps, sampled every {diag.every} ({len(diag.samples)} samples)",
    ]
    groups = getattr(diag.optimizer, "param_groups", None)
    if groups:
        words.append(f"{type(diag.optimizer).__name__} lr {groups[0]['lr']:g}")
    finite = [v for v in diag.losses if math.isfinite(v)]
    if finite:
        words.append(f"loss {finite[0]:.4g} → {finite[-1]:.4g}")
    return "; ".join(words)


def _findings_html(found: list[Finding]) -> str:
    if not found:
        return (
            '<p class="healthy">No problems found: the initial loss, update/weight ratios, '
            "activations and inputs all look healthy.</p>"
        )
    items = "".join(
        f'<li class="{html.escape(f.kind)}">{html.escape(f.message)}</li>' for f in found
    )
    return f'<ul class="findings">{items}</ul>'


def _param_table(diag: Diagnostics) -> str:
    last = diag.samples[-1]
    ratios = {}
    for sample in reversed(diag.samples):  # the latest sample whose update is known
        for name, p in sample.params.items():
            if p.update_ratio is not None:
                ratios.setdefault(name, p.update_ratio)
    rows = [
        "<tr><th>parameter</th><th>shape</th><th>‖w‖</th><th>‖∇w‖</th><th>update / weight</th></tr>"
    ]
    for name, param in diag.params.items():
        p = last.params.get(name)
        if p is None:
            continue
        ratio = ratios.get(name)
        rows.append(
            f"<tr><td>{html.escape(name)}</td><td>{param.shape}</td><td>{p.weight_norm:.4g}</td>"
            f"<td>{p.grad_norm:.4g}</td><td>{'—' if ratio is None else f'{ratio:.3g}'}</td></tr>"
        )
    return "<table>" + "".join(rows) + "</table>"


# --- figures -------------------------------------------------------------------------------------
def _figure(width: float, height: float) -> Any:
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    fig = Figure(figsize=(width, height))
    FigureCanvasAgg(fig)
    return fig


def _img(fig: Any, alt: str) -> str:
    buffer = io.BytesIO()
    fig.tight_layout()
    fig.savefig(buffer, format="png", dpi=90)
    data = base64.b64encode(buffer.getvalue()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _loss_figure(diag: Diagnostics) -> Any:
    with_acc = bool(diag.accuracies)
    fig = _figure(11, 3.6)
    axes = fig.subplots(1, 2 if with_acc else 1, squeeze=False)[0]
    ax = axes[0]
    losses = np.array(diag.losses, dtype=np.float64)
    steps = np.arange(len(losses))
    finite = np.isfinite(losses)
    ax.plot(steps[finite], losses[finite], lw=0.8, color="#4c72b0", alpha=0.6, label="batch loss")
    if finite.sum() >= 20:
        k = max(5, len(losses) // 50)
        smooth = np.convolve(np.where(finite, losses, np.nan), np.ones(k) / k, mode="valid")
        ax.plot(steps[k - 1 :], smooth, color="#1f3d7a", lw=1.6, label=f"mean of {k}")
    expected = expected_initial_loss(diag)
    if expected is not None:
        ax.axhline(
            expected, color="#c44e52", ls="--", lw=1, label=f"expected at start {expected:.3g}"
        )
    if diag.divergence is not None:
        ax.axvline(diag.divergence.step, color="#c23030", lw=1.5, label="loss not finite")
    if finite.any() and losses[finite].min() > 0:
        ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("loss")
    ax.legend(loc="upper right", fontsize=8)
    if with_acc:
        for split, points in diag.accuracies.items():
            s, a = zip(*points)
            axes[1].plot(s, a, marker=".", label=split)
        axes[1].set_ylim(0, 1.02)
        axes[1].legend(loc="lower right", fontsize=8)
        axes[1].set_xlabel("step")
        axes[1].set_ylabel("accuracy")
    return fig


def _series(diag: Diagnostics, name: str, field: str) -> tuple[list, list]:
    steps, values = [], []
    for sample in diag.samples:
        p = sample.params.get(name)
        value = getattr(p, field) if p is not None else None
        if value is not None and math.isfinite(value) and value > 0:
            steps.append(sample.step)
            values.append(value)
    return steps, values


def _ratio_figure(diag: Diagnostics) -> Any:
    fig = _figure(11, 3.8)
    ax = fig.subplots()
    ax.axhspan(1e-4, 1e-2, color="#55a868", alpha=0.12, label="1e-4 to 1e-2")
    ax.axhline(1e-3, color="#55a868", lw=1.2, ls="--", label="1e-3")
    ax.axhline(RATIO_HIGH, color="#c44e52", lw=0.8, ls=":", label="too high")
    for name in diag.params:
        steps, values = _series(diag, name, "update_ratio")
        if values:
            ax.plot(steps, values, marker=".", lw=1, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("‖Δw‖ / ‖w‖")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return fig


def _grad_figure(diag: Diagnostics) -> Any:
    fig = _figure(11, 3.4)
    ax = fig.subplots()
    for name in diag.params:
        steps, values = _series(diag, name, "grad_norm")
        if values:
            ax.plot(steps, values, marker=".", lw=1, label=name)
    ax.set_yscale("log")
    ax.set_xlabel("step")
    ax.set_ylabel("‖∇w‖")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return fig


def _histogram_figure(diag: Diagnostics, layers: list[str]) -> Any:
    cols = min(3, len(layers))
    rows = math.ceil(len(layers) / cols)
    fig = _figure(11, 2.9 * rows)
    axes = np.atleast_1d(fig.subplots(rows, cols, squeeze=False)).ravel()
    for ax, name in zip(axes, layers):
        samples = [s for s in diag.samples if name in s.layers]
        values = [s.layers[name].values for s in samples]
        finite = np.concatenate([v[np.isfinite(v)] for v in values])
        if finite.size == 0:
            ax.set_title(f"{name}: no finite values", fontsize=9)
            continue
        low, high = np.percentile(finite, [0.5, 99.5])
        if high <= low:
            low, high = low - 0.5, high + 0.5
        bins = np.linspace(low, high, 41)
        grid = np.stack(
            [np.histogram(np.clip(v, low, high), bins)[0] / max(v.size, 1) for v in values]
        )
        steps = [s.step for s in samples]
        right = steps[-1] + (steps[-1] - steps[0]) / max(len(steps) - 1, 1) if len(steps) > 1 else 1
        ax.imshow(
            grid.T,
            origin="lower",
            aspect="auto",
            cmap="Blues",
            extent=(steps[0], right, low, high),
            interpolation="nearest",
        )
        ax.plot(steps, [s.layers[name].mean for s in samples], color="white", lw=1.2)
        kind = samples[-1].layers[name].kind
        ax.set_title(f"layer {name} ({kind})", fontsize=9)
        ax.set_xlabel("step", fontsize=8)
        ax.tick_params(labelsize=7)
    for ax in axes[len(layers) :]:
        ax.set_visible(False)
    return fig


def _health_figure(diag: Diagnostics) -> Any | None:
    lines = []
    for name in diag.layer_order:
        dead = [(s.step, s.layers[name].dead) for s in diag.samples if name in s.layers]
        dead = [(t, v) for t, v in dead if v is not None]
        sat = [(s.step, s.layers[name].saturated) for s in diag.samples if name in s.layers]
        sat = [(t, v) for t, v in sat if v is not None]
        if dead:
            lines.append((f"layer {name}: dead ReLUs", dead))
        if sat:
            lines.append((f"layer {name}: saturated", sat))
    if not lines:
        return None
    fig = _figure(11, 3.2)
    ax = fig.subplots()
    for label, points in lines:
        steps, values = zip(*points)
        ax.plot(steps, values, marker=".", label=label)
    ax.set_ylim(-0.02, 1.02)
    ax.set_xlabel("step")
    ax.set_ylabel("fraction")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=8)
    return fig


def _filters_figure(diag: Diagnostics) -> Any | None:
    """The first layer's weights as images: a convolution's filters, or a linear layer's rows
    when its inputs are square images (8x8 digits, 32x32x3 CIFAR)."""
    first = next(iter(diag.params.values()), None)
    if first is None:
        return None
    w = np.asarray(first.data, dtype=np.float64)
    if w.ndim == 4:
        images = w.transpose(0, 2, 3, 1) if w.shape[1] == 3 else w.mean(axis=1)
    elif w.ndim == 2:
        side = math.isqrt(w.shape[1])
        side3 = math.isqrt(w.shape[1] // 3) if w.shape[1] % 3 == 0 else 0
        if side * side == w.shape[1] and side >= 4:
            images = w.reshape(-1, side, side)
        elif side3 >= 4 and 3 * side3 * side3 == w.shape[1]:
            images = w.reshape(-1, 3, side3, side3).transpose(0, 2, 3, 1)
        else:
            return None
    else:
        return None
    images = images[:64]
    cols = min(16, len(images))
    rows = math.ceil(len(images) / cols)
    h, w = images.shape[1:3]
    mosaic = np.ones((rows * (h + 1) + 1, cols * (w + 1) + 1) + images.shape[3:])
    for k, image in enumerate(images):  # each filter scaled to [0, 1] on its own, 1px apart
        low, high = image.min(), image.max()
        r, c = divmod(k, cols)
        top, left = 1 + r * (h + 1), 1 + c * (w + 1)
        mosaic[top : top + h, left : left + w] = (image - low) / (high - low or 1.0)
    fig = _figure(min(11, 0.6 * cols), 0.6 * rows + 0.1)
    ax = fig.subplots()
    ax.imshow(mosaic, cmap=None if mosaic.ndim == 3 else "gray", interpolation="nearest")
    ax.set_axis_off()
    return fig
