"""``chainrule demo``: the tour ``make demo`` runs. The notes' scalar circuits with their values and
gradients, two explained circuits with their diagrams, the staged code of the notes' staged
example, and a short spiral training run; every file goes under ``--out``."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

from .. import notes
from ..explain import _width
from ..i18n import _, using
from ..trace import trace
from ..value import Value
from . import add_lang_option, int_at_least, writable_folder

STAGED_EXPRESSION = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)"


def register(subparsers: Any) -> None:
    """Add the ``demo`` subcommand."""
    parser = subparsers.add_parser(
        "demo", help="tour: the notes' circuits, explained, staged, trained", description=__doc__
    )
    parser.add_argument(
        "--out",
        default="out/demo",
        help="folder for diagrams, plot, checkpoint (default: out/demo)",
    )
    parser.add_argument(
        "--epochs",
        type=int_at_least(1),
        default=2000,
        help="epochs of the closing spiral training run (default: 2000)",
    )
    add_lang_option(parser)
    parser.set_defaults(run=run)


def _heading(text: str) -> None:
    print(f"\n=== {text} " + "=" * max(0, 76 - _width(text)))


def _print_circuit(name: str, output: Value) -> None:
    output.backward(retain_graph=True)
    circuit = trace(output)
    leaves = ", ".join(f"{w.name}={w.data:g}" for w in circuit.inputs)
    grads = ", ".join(f"d{w.name}={w.node.grad:.6g}" for w in circuit.inputs)
    labels = [_("inputs"), _("output"), _("gradients")]
    width = max(_width(label) for label in labels) + 1
    pad = [label + " " * (width - _width(label)) for label in labels]
    print(f"{name}{' ' * max(1, 23 - _width(name))}{pad[0]}{leaves}")
    print(f"{'':<22} {pad[1]}{circuit.output.name} = {output.data:.6g}")
    print(f"{'':<22} {pad[2]}{grads}")


def _neuron_with_sigmoid_gate() -> Value:
    w0, x0 = Value(2.0, name="w0"), Value(-1.0, name="x0")
    w1, x1 = Value(-3.0, name="w1"), Value(-2.0, name="x1")
    w2 = Value(-3.0, name="w2")
    out = (w0 * x0 + w1 * x1 + w2).sigmoid()
    out.name = "f"
    return out


def run(args: argparse.Namespace) -> int:
    """Run the tour in the language of ``--lang``; returns the first failing step's exit code,
    else 0."""
    with using(args.lang):
        return _run(args)


def _run(args: argparse.Namespace) -> int:
    from ..cli import main

    out = Path(writable_folder(args.out))

    _heading(_("The notes' circuits: forward values and gradients"))
    for name, build in notes.EXAMPLES.items():
        _print_circuit(name, build())
    _print_circuit(_("neuron (one σ gate)"), _neuron_with_sigmoid_gate())

    steps = [
        (
            _("Step by step: f = (x + y) z"),
            ["explain", "--example", "chain", "--svg", str(out / "chain.svg")],
        ),
        (
            _("Step by step: the 2-D sigmoid neuron"),
            [
                "explain",
                "--example",
                "neuron",
                "--svg",
                str(out / "neuron.svg"),
                "--png",
                str(out / "neuron.png"),
            ],
        ),
        (
            _("Staged backprop code for {expression}").format(expression=STAGED_EXPRESSION),
            ["stage", STAGED_EXPRESSION],
        ),
        (
            _("Training a 2-layer net on the spiral"),
            [
                "train",
                "--data",
                "spiral",
                "--hidden",
                "100",
                "--epochs",
                str(args.epochs),
                "--out",
                str(out / "train"),
            ],
        ),
    ]
    lang = ["--lang", args.lang] if args.lang else []
    for title, argv in steps:
        _heading(title)
        code = main(argv + (lang if argv[0] != "train" else []))
        if code:
            return code

    _heading(_("Files written"))
    for path in sorted(out.rglob("*")):
        if path.is_file():
            print(f"  {path}")
    return 0
