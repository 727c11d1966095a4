"""Train a two-layer ReLU network on the CS231n spiral with cr.nn and cr.optim, save it, and
load it back: the case study's recipe (full batch, SGD lr 1, L2 1e-3) in PyTorch's vocabulary.

    .venv/bin/python examples/train_spiral.py
"""

import os
import tempfile

import numpy as np

import chainrule as cr
from chainrule import nn, optim
from chainrule.nn import functional as F

x, y = cr.data.spiral(n_per_class=100, classes=3, seed=0)
model = nn.Sequential(nn.Linear(2, 100, seed=0), nn.ReLU(), nn.Linear(100, 3, seed=1))
opt = optim.SGD(model.parameters(), lr=1.0)
weights = [model[0].weight, model[2].weight]

for step in range(3000):
    loss = F.cross_entropy(model(x), y) + F.l2_penalty(weights, reg=1e-3)
    opt.zero_grad()
    loss.backward()
    opt.step()
    if step % 500 == 0:
        print(f"step {step:4d}  loss {loss.item():.4f}")

with cr.no_grad():
    accuracy = np.mean(model(x).data.argmax(axis=1) == y)
print(model)
print(f"training accuracy: {accuracy:.1%}")

path = os.path.join(tempfile.mkdtemp(), "spiral.npz")
cr.save(model.state_dict(), path)
copy = nn.Sequential(nn.Linear(2, 100), nn.ReLU(), nn.Linear(100, 3))
copy.load_state_dict(cr.load(path))
print(
    f"reloaded from {path}: same predictions = "
    f"{np.array_equal(copy(x).data.argmax(axis=1), model(x).data.argmax(axis=1))}"
)
