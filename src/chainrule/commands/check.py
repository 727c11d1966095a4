"""``chainrule check FILE:NAME``: check a hand-written layer's backward against its forward.

The file is imported as a module (never evaluated as text); ``NAME`` picks the pair
``NAME_forward`` / ``NAME_backward`` in it, or ``NAME_forward_naive`` / ``NAME_backward_naive``
(the course's naming). Inputs are random arrays of the ``--shapes`` given, one per array
argument, then a parameter dict built from ``--param KEY=VALUE`` options (numbers or words); the
course's layers (affine, relu, sigmoid, tanh, batchnorm, layernorm, spatial_batchnorm, conv,
max_pool) have default shapes and parameters. Prints one row per gradient and exits 0 when every
gradient agrees, 1 when one does not.
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import sys
from typing import Any

import numpy as np

from . import CommandError

# The course's layers: the shapes of their array arguments, then their parameter dict (if any).
KNOWN = {
    "affine": ([(4, 5), (5, 3), (3,)], None),
    "relu": ([(4, 5)], None),
    "sigmoid": ([(4, 5)], None),
    "tanh": ([(4, 5)], None),
    "batchnorm": ([(6, 4), (4,), (4,)], {"mode": "train"}),
    "layernorm": ([(6, 4), (4,), (4,)], {}),
    "spatial_batchnorm": ([(2, 3, 4, 4), (3,), (3,)], {"mode": "train"}),
    "conv": ([(2, 3, 5, 5), (4, 3, 3, 3), (4,)], {"stride": 1, "pad": 1}),
    "max_pool": ([(2, 3, 4, 4)], {"pool_height": 2, "pool_width": 2, "stride": 2}),
}


def register(subparsers: Any) -> None:
    """Add the ``check`` subcommand."""
    parser = subparsers.add_parser(
        "check",
        help="check a hand-written layer's backward (NAME_forward/NAME_backward in a file)",
        description=__doc__.split("\n\n")[0],
    )
    parser.add_argument("target", metavar="FILE:NAME", help="e.g. my_layers.py:affine")
    parser.add_argument(
        "--shapes",
        nargs="+",
        metavar="SHAPE",
        help="shapes of the array arguments in order, e.g. 4x5 5x3 3 (default: the course's "
        f"for {', '.join(KNOWN)})",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an entry of the parameter dict passed after the arrays (repeatable), e.g. "
        "--param stride=2 --param mode=train (default: the course's for its layers, else none)",
    )
    parser.add_argument(
        "--seed", type=int, default=0, help="seed of inputs and upstream gradient (default: 0)"
    )
    parser.set_defaults(run=run)


def _shape(text: str) -> tuple:
    try:
        shape = tuple(int(n) for n in text.lower().split("x")) if text else ()
    except ValueError:
        raise CommandError(f"--shapes: {text!r} is not a shape like 4x5") from None
    if any(n < 1 for n in shape):
        raise CommandError(f"--shapes: {text!r} has a side below 1")
    return shape


def _value(text: str) -> Any:
    """A parameter's value: an int, a float, or else the word itself (never evaluated)."""
    for kind in (int, float):
        try:
            return kind(text)
        except ValueError:
            pass
    return text


def _params(entries: list, defaults: dict | None) -> dict | None:
    if not entries:
        return defaults
    params = dict(defaults or {})
    for entry in entries:
        key, sep, text = entry.partition("=")
        if not sep or not key.isidentifier():
            raise CommandError(f"--param: expected KEY=VALUE, got {entry!r}")
        params[key] = _value(text)
    return params


def _load(path: str) -> Any:
    if not os.path.isfile(path):
        raise CommandError(f"{path}: no such file")
    name = "chainrule_check_" + os.path.splitext(os.path.basename(path))[0].replace("-", "_")
    spec = importlib.util.spec_from_file_location(name, path)
    if spec is None or spec.loader is None:
        raise CommandError(f"{path}: not a Python file")
    module = importlib.util.module_from_spec(spec)
    try:
        spec.loader.exec_module(module)  # importing the user's module, as `import` would
    except Exception as err:  # noqa: BLE001 - any error in the user's file is reported on one line
        raise CommandError(f"{path}: importing it failed: {type(err).__name__}: {err}") from None
    return module


def run(args: argparse.Namespace) -> int:
    """Import the file, build inputs, check the pair; 0 if every gradient agrees, else 1."""
    from ..layercheck import check_layer

    path, sep, name = args.target.rpartition(":")
    if not sep or not path or not name.isidentifier():
        raise CommandError(f"expected FILE:NAME (e.g. my_layers.py:affine), got {args.target!r}")
    module = _load(path)
    pair = []
    for suffix in ("forward", "backward"):
        fn = getattr(module, f"{name}_{suffix}", None) or getattr(
            module, f"{name}_{suffix}_naive", None
        )
        if not callable(fn):
            raise CommandError(f"{path} has no function {name}_{suffix} (or {name}_{suffix}_naive)")
        pair.append(fn)
    known_shapes, params = KNOWN.get(name, (None, None))
    params = _params(args.param, params)
    if args.shapes:
        shapes = [_shape(s) for s in args.shapes]
    elif known_shapes is not None:
        shapes = known_shapes
    else:
        raise CommandError(f"give the shapes of {name}_forward's array arguments with --shapes")
    rng = np.random.default_rng(args.seed)
    inputs = [rng.standard_normal(s) for s in shapes]
    if params is not None:
        inputs.append(dict(params))
    try:
        report = check_layer(*pair, *inputs, seed=args.seed, show=False)
    except Exception as err:  # noqa: BLE001 - the user's layer failing is reported on one line
        raise CommandError(f"{name}: {type(err).__name__}: {err}", code=1) from None
    print(report)
    sys.stdout.flush()
    return 0 if report.ok else 1
