"""What the circuit explorer costs per page and per request (issue 12).

Each change of an input rebuilds the circuit and reads it again in Python, so the number that
matters is the time to build a page's data, and which reader it goes to: the explanation rows
(``cr.explain``), the picture (``cr.draw`` through Graphviz's ``dot``, a subprocess), the staged
code (``cr.stage``). Measured for the notes' neuron and the staged example (scalar circuits, what
``chainrule serve`` computes) and a small network's loss with its three modules (four pictures:
every gate, all collapsed, one per expanded module). Then the size of the static file and the
round trip of one request to a local ``chainrule serve`` (uncached: a new input each time).

Run: ``.venv/bin/python benchmarks/bench_explore.py`` (needs Graphviz and the explore extra).
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import best_of, format_seconds, markdown_table  # noqa: E402

import chainrule as cr  # noqa: E402
from chainrule import nn  # noqa: E402
from chainrule.explore import Explorer  # noqa: E402
from chainrule.explore.subject import Subject  # noqa: E402

NEURON = "1 / (1 + exp(-(w0*x0 + w1*x1 + w2)))"
NEURON_AT = {"w0": 2.0, "x0": -1.0, "w1": -3.0, "x1": -2.0, "w2": -3.0}
STAGED = "(x + sigmoid(y)) / (sigmoid(x) + (x + y)**2)"


def network() -> Subject:
    net = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    X = np.random.default_rng(0).normal(size=(4, 2))
    y = np.array([0, 1, 1, 0])
    return Subject(
        lambda x, labels: nn.functional.cross_entropy(net(x), labels),
        {"x": X, "labels": y},
        model=net,
    )


def readers(subject: Subject) -> list[str]:
    """The page's data, and the share of the readers it calls."""
    out = subject.build()
    total = best_of(subject.describe, repeat=5)
    explain = best_of(lambda: cr.explain(out), repeat=5)
    draw = best_of(lambda: cr.draw(out).svg(), repeat=5)
    return [format_seconds(total), format_seconds(explain), format_seconds(draw)]


def served_round_trip() -> float:
    """The best time of one POST /api/explore with a new input value (never cached)."""
    import httpx
    import uvicorn

    from chainrule.explore.server import create_app

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}/api/explore"
    server = uvicorn.Server(uvicorn.Config(create_app(), log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    while not server.started:
        time.sleep(0.01)
    values = iter(np.linspace(-3, 3, 100))
    try:
        with httpx.Client(timeout=30) as client:

            def one() -> None:
                inputs = dict(NEURON_AT, x0=float(next(values)))
                reply = client.post(url, json={"expression": NEURON, "inputs": inputs})
                assert reply.status_code == 200, reply.text

            return best_of(one, repeat=10)
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()


def main() -> int:
    rows = [
        ["the notes' neuron (8 gates)", *readers(Subject.from_expression(NEURON, NEURON_AT))],
        [
            "the staged example (7 gates)",
            *readers(Subject.from_expression(STAGED, {"x": 3.0, "y": -4.0})),
        ],
        ["2-layer net + cross-entropy (3 modules)", *readers(network())],
    ]
    print(markdown_table(["circuit", "page data", "of which explain", "one draw (dot)"], rows))
    html = Explorer(Subject.from_expression(NEURON, NEURON_AT)).html()
    print(f"\nstatic file of the neuron: {len(html.encode()) / 1024:.0f} KiB")
    print(f"chainrule serve, one uncached request (neuron): {format_seconds(served_round_trip())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
