"""Data-parallel training over MPI with cr.distributed: each rank trains on its own shard of
the spiral, gradients are averaged after every backward, and rank 0 reports and saves.

    pip install 'chainrule[mpi]'
    .venv/bin/mpiexec -n 2 .venv/bin/python examples/distributed_training.py

Run with plain python it is a job of one rank and trains the same model (same global batch).
"""

import os
import tempfile

import numpy as np

import chainrule as cr
from chainrule import nn, optim
from chainrule.nn import functional as F

dist = cr.distributed
rank, ranks = dist.get_rank(), dist.get_world_size()

x, y = cr.data.spiral(n_per_class=100, classes=3, seed=0)
net = nn.Sequential(
    nn.Linear(2, 100, seed=0),
    nn.ReLU(),
    nn.Dropout(0.1, seed=dist.rank_seed(0)),  # each rank its own dropout masks
    nn.Linear(100, 3, seed=1),
)
model = dist.DataParallel(net)  # every rank starts from rank 0's parameters
opt = optim.SGD(model.parameters(), lr=1.0)
weights = [net[0].weight, net[3].weight]
shuffle = np.random.default_rng(0)  # the same shuffle on every rank: each takes its shard

for epoch in range(1000):
    for xb, yb in dist.batches(x, y, len(x) // ranks, generator=shuffle):
        loss = F.cross_entropy(model(xb), yb) + F.l2_penalty(weights, reg=1e-3)
        opt.zero_grad()
        loss.backward()
        model.allreduce_gradients()  # one Allreduce: the mean gradient over the ranks
        opt.step()
    mean_loss = dist.all_reduce(loss.item(), op="mean")
    if rank == 0 and epoch % 250 == 0:
        print(f"epoch {epoch:4d}  loss {mean_loss:.4f}  ({ranks} rank{'s' * (ranks > 1)})")

model.eval()
with cr.no_grad():
    accuracy = np.mean(model(x).data.argmax(axis=1) == y)
if rank == 0:  # only rank 0 writes
    path = os.path.join(tempfile.mkdtemp(), "spiral.npz")
    cr.save(net.state_dict(), path)
    print(f"training accuracy: {accuracy:.1%}, saved to {path}")
