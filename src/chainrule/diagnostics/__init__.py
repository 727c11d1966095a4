"""``cr.diagnostics``: babysitting a training run, as the course teaches right after backprop.

:class:`Diagnostics` attaches to a model (and optionally its optimizer), samples every N steps
the statistics the course watches (per-layer activations, dead ReLUs, saturated tanh/sigmoid
units, gradient norms, update/weight ratios, the initial loss), :func:`findings` turns them into
plain-language findings with the numbers behind them, and :meth:`Diagnostics.report` writes a
self-contained HTML page. :func:`sanity_check` runs the course's checks before a long run: the
initial loss, and overfitting 20 examples.
"""

from .collect import Diagnostics, Divergence, LayerSample, ParamSample, Sample
from .findings import Finding, findings
from .sanity import Check, SanityReport, sanity_check

__all__ = [
    "Check",
    "Diagnostics",
    "Divergence",
    "Finding",
    "LayerSample",
    "ParamSample",
    "Sample",
    "SanityReport",
    "findings",
    "sanity_check",
]
