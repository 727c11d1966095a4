"""Draw the pictures of the README and the tutorial: the notes' circuits, the notes' 2x2 vectorized
example, a two-layer network's loss and a circuit full of forks, each after its backward pass.

    python examples/circuit_pictures.py [FOLDER]    # default: pictures/ (docs/images/ in the repo)

Needs Graphviz's ``dot`` (apt-get install graphviz) for the PNG and SVG files.
"""

from __future__ import annotations

import sys
from pathlib import Path

import chainrule as cr
from chainrule import nn
from chainrule.nn import functional as F
from chainrule.notes import EXAMPLES


def matmul_2x2() -> cr.Tensor:
    """The notes' f = ||W x||² with W = [[0.1, 0.5], [-0.3, 0.8]] and x = [0.2, 0.4]."""
    W = cr.tensor([[0.1, 0.5], [-0.3, 0.8]], requires_grad=True, name="W")
    x = cr.tensor([0.2, 0.4], requires_grad=True, name="x")
    q = W @ x
    q.name = "q"
    f = (q**2).sum()
    f.name = "f"
    return f


def two_layer_loss() -> cr.Tensor:
    """The softmax loss of a 2-layer ReLU network on 12 spiral points."""
    x, y = cr.data.spiral(n_per_class=4, classes=3, seed=0)
    model = nn.Sequential(nn.Linear(2, 5, seed=0), nn.ReLU(), nn.Linear(5, 3, seed=1))
    return F.cross_entropy(model(x), y)


def forks() -> cr.Value:
    """f = (x² + x y + y²) x: x is used four times, y three times."""
    x, y = cr.Value(1.5, name="x"), cr.Value(-2.0, name="y")
    f = (x * x + x * y + y * y) * x
    f.name = "f"
    return f


def main(folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    pictures = {name: build() for name, build in EXAMPLES.items()}
    pictures.update(matmul_2x2=matmul_2x2(), two_layer_loss=two_layer_loss(), forks=forks())
    written = []
    for name, output in pictures.items():
        output.backward()  # first backward, then look: the picture is the same as before
        diagram = cr.draw(output)
        written += [diagram.save(folder / f"{name}.png"), diagram.save(folder / f"{name}.svg")]
    sigmoid = EXAMPLES["neuron"]()
    written.append(cr.draw(sigmoid, collapse="sigmoid").save(folder / "neuron_sigmoid.svg"))
    print(f"wrote {len(written)} pictures to {folder}")


if __name__ == "__main__":
    main(Path(sys.argv[1] if len(sys.argv) > 1 else "pictures"))
