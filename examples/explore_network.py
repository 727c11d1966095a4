"""Explore a small network's loss in the browser: each layer is one box you can expand.

    python examples/explore_network.py        # writes network.html; open it in a browser

A two-layer net (2 -> 8 -> 3, ReLU) on a few points of the spiral data, its cross-entropy loss
explored with ``cr.explore``: the page steps the backward pass gate by gate, shows each tensor's
shape and heatmaps of its values and gradients (click a wire), and names every parameter as the
model does (``0.weight``, ``2.bias``). In Jupyter, the same ``cr.explore(...)`` call shows the
page as a live widget.
"""

from __future__ import annotations

import numpy as np

import chainrule as cr
from chainrule import nn
from chainrule.data import spiral

X, y = spiral(n_per_class=4, classes=3, seed=0)
net = nn.Sequential(nn.Linear(2, 8), nn.ReLU(), nn.Linear(8, 3))
page = cr.explore(
    lambda x, labels: nn.functional.cross_entropy(net(x), labels),
    x=X.astype(np.float64),
    labels=y,
    model=net,
)
path = page.save("network.html")
loss = page.data["wires"][page.data["output"]]["value"]["text"]
print(
    f"loss = {loss}; {len(page.data['steps'])} backward steps; modules: "
    + ", ".join(m["label"] for m in page.data["modules"])
)
print(f"wrote {path}; open it in a browser")
