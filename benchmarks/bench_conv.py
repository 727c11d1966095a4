"""The course's convnet layers against hand-written NumPy floors and PyTorch (float64, one thread).

(a) conv2d forward + backward (dx, dW, db) on x (64, 3, 32, 32) with 32 filters 7x7, padding 3
    (the course's convnet layer). The floor is im2col in blocks of 4 samples with one matrix
    product per pass: forward ``cols @ Wᵀ``, backward ``gᵀ @ cols`` (re-gathering the columns) and
    ``g @ W`` added back offset by offset.
(b) max pooling 2x2, stride 2, on (64, 32, 32, 32), forward + backward. The floor takes the max
    of the four strided slices and sends the gradient back through each slice's mask of the
    maxima (ties not broken; chainrule breaks them as PyTorch does).
(c) batch normalization in training mode on (64, 32, 16, 16), forward + backward (dx, dgamma,
    dbeta). The floor is the course's closed form ("alternative" backward).
(d) one epoch of the course's three-layer convnet (conv 3x3 pad 1 with 16 filters, relu, 2x2 max
    pool, affine 100, relu, affine 10, softmax cross-entropy, Adam lr 1e-3) on the digits set as
    1x8x8 images, batch 64, from the same initial weights: chainrule against PyTorch (the
    "vs floor" column is relative to chainrule here).

Every way is checked to agree with the floor before it is timed. Run: ``env -u
OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 .venv/bin/python
benchmarks/bench_conv.py``. Times are best of N wall times (see _timing.py).
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _timing import best_of, format_seconds, markdown_table  # noqa: E402

import chainrule as cr  # noqa: E402
from chainrule.nn import functional as F  # noqa: E402

try:
    import torch

    torch.set_num_threads(1)
except ImportError:  # PyTorch is optional: the floor and chainrule still run
    torch = None


def _leaves(make, *arrays):
    """Leaves that require grad, sharing the arrays' memory: the floors do not copy their inputs,
    so neither do the ways compared with them."""
    if make is cr.tensor:
        leaves = []
        for a in arrays:
            t = cr.Tensor._constant(a)
            t.requires_grad = True
            leaves.append(t)
        return leaves
    return [make(a).requires_grad_() for a in arrays]


# --- (a) conv2d ----------------------------------------------------------------------------------
def conv_floor(x, w, b, g, pad, block=4):
    """Forward and backward of a stride-1 convolution by blocked im2col; returns dx, dW, db."""
    n, c, h, wd = x.shape
    f, _, kh, kw = w.shape
    xp = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    oh, ow = h + 2 * pad - kh + 1, wd + 2 * pad - kw + 1
    sn, sc, sh, sw = xp.strides
    view = np.lib.stride_tricks.as_strided(
        xp, (n, oh, ow, c, kh, kw), (sn, sh, sw, sc, sh, sw), writeable=False
    )
    w2 = w.reshape(f, -1)
    out = np.empty((n, f, oh, ow))
    for n0 in range(0, n, block):
        cols = view[n0 : n0 + block].reshape(-1, c * kh * kw)
        out[n0 : n0 + block] = (cols @ w2.T).reshape(-1, oh, ow, f).transpose(0, 3, 1, 2)
    out += b.reshape(1, f, 1, 1)
    dw = np.zeros_like(w2)
    dxp = np.zeros_like(xp)
    for n0 in range(0, n, block):
        cols = view[n0 : n0 + block].reshape(-1, c * kh * kw)
        grows = g[n0 : n0 + block].transpose(0, 2, 3, 1).reshape(-1, f)
        dw += grows.T @ cols
        dcols = (grows @ w2).reshape(-1, oh, ow, c, kh, kw)
        for i in range(kh):
            for j in range(kw):
                dxp[n0 : n0 + block, :, i : i + oh, j : j + ow] += dcols[..., i, j].transpose(
                    0, 3, 1, 2
                )
    return out, dxp[:, :, pad : pad + h, pad : pad + wd], dw.reshape(w.shape), g.sum((0, 2, 3))


def conv_chainrule(x, w, b, g, pad):
    xt, wt, bt = _leaves(cr.tensor, x, w, b)
    out = F.conv2d(xt, wt, bt, padding=pad)
    out.backward(g)
    return out.data, xt.grad, wt.grad, bt.grad


def conv_torch(x, w, b, g, pad):
    xt, wt, bt = _leaves(torch.from_numpy, x, w, b)
    out = torch.nn.functional.conv2d(xt, wt, bt, padding=pad)
    out.backward(torch.from_numpy(g))
    return out.detach().numpy(), xt.grad.numpy(), wt.grad.numpy(), bt.grad.numpy()


def bench_conv(rows: list, repeat: int) -> None:
    rng = np.random.default_rng(0)
    x = rng.standard_normal((64, 3, 32, 32))
    w = rng.standard_normal((32, 3, 7, 7)) * 0.1
    b = rng.standard_normal(32)
    g = rng.standard_normal((64, 32, 32, 32))
    ways = {"NumPy floor (im2col, blocks of 4)": conv_floor, "chainrule": conv_chainrule}
    if torch is not None:
        ways["PyTorch"] = conv_torch
    _compare_and_time(rows, "conv2d 7x7 pad 3, (64,3,32,32) -> 32", ways, (x, w, b, g, 3), repeat)


# --- (b) max pooling -----------------------------------------------------------------------------
def pool_floor(x, g):
    """Forward: the max of the four strided slices; backward: each slice's mask of the maxima
    times the upstream gradient (ties would all receive it)."""
    slices = [(slice(i, None, 2), slice(j, None, 2)) for i in range(2) for j in range(2)]
    views = [x[..., r, c] for r, c in slices]
    out = np.maximum(np.maximum(views[0], views[1]), np.maximum(views[2], views[3]))
    dx = np.empty_like(x)
    for (r, c), view in zip(slices, views):
        np.multiply(g, view == out, out=dx[..., r, c])
    return out, dx


def pool_chainrule(x, g):
    (xt,) = _leaves(cr.tensor, x)
    out = F.max_pool2d(xt, 2)
    out.backward(g)
    return out.data, xt.grad


def pool_torch(x, g):
    (xt,) = _leaves(torch.from_numpy, x)
    out = torch.nn.functional.max_pool2d(xt, 2)
    out.backward(torch.from_numpy(g))
    return out.detach().numpy(), xt.grad.numpy()


def bench_pool(rows: list, repeat: int) -> None:
    rng = np.random.default_rng(1)
    x = rng.standard_normal((64, 32, 32, 32))
    g = rng.standard_normal((64, 32, 16, 16))
    ways = {"NumPy floor (strided slices + masks)": pool_floor, "chainrule": pool_chainrule}
    if torch is not None:
        ways["PyTorch"] = pool_torch
    _compare_and_time(rows, "max pool 2x2/2, (64,32,32,32)", ways, (x, g), repeat)


# --- (c) batch normalization ---------------------------------------------------------------------
def bn_floor(x, gamma, beta, g, eps=1e-5):
    axes = (0, 2, 3)
    gamma, beta = gamma.reshape(1, -1, 1, 1), beta.reshape(1, -1, 1, 1)
    xc = x - x.mean(axis=axes, keepdims=True)
    inv = 1.0 / np.sqrt((xc * xc).mean(axis=axes, keepdims=True) + eps)
    xhat = xc * inv
    out = xhat * gamma + beta
    dbeta = g.sum(axis=axes)
    dgamma = (g * xhat).sum(axis=axes)
    gx = g * gamma
    dx = (
        gx - gx.mean(axis=axes, keepdims=True) - xhat * (gx * xhat).mean(axis=axes, keepdims=True)
    ) * inv
    return out, dx, dgamma, dbeta


def bn_chainrule(x, gamma, beta, g):
    xt, gt, bt = _leaves(cr.tensor, x, gamma, beta)
    out = F.batch_norm(xt, None, None, gt, bt, training=True)
    out.backward(g)
    return out.data, xt.grad, gt.grad, bt.grad


def bn_torch(x, gamma, beta, g):
    xt, gt, bt = _leaves(torch.from_numpy, x, gamma, beta)
    out = torch.nn.functional.batch_norm(xt, None, None, gt, bt, training=True)
    out.backward(torch.from_numpy(g))
    return out.detach().numpy(), xt.grad.numpy(), gt.grad.numpy(), bt.grad.numpy()


def bench_bn(rows: list, repeat: int) -> None:
    rng = np.random.default_rng(2)
    x = rng.standard_normal((64, 32, 16, 16)) * 2 + 1
    gamma, beta = rng.standard_normal(32), rng.standard_normal(32)
    g = rng.standard_normal(x.shape)
    ways = {"NumPy floor (closed form)": bn_floor, "chainrule": bn_chainrule}
    if torch is not None:
        ways["PyTorch"] = bn_torch
    _compare_and_time(rows, "batch norm train, (64,32,16,16)", ways, (x, gamma, beta, g), repeat)


# --- (d) a convnet epoch on digits ---------------------------------------------------------------
EPOCH_BATCH = 64


def _epoch_data():
    split = cr.data.digits(seed=0, images=True)
    order = np.random.default_rng(0).permutation(len(split.y_train))
    return split.x_train[order], split.y_train[order]


def epoch_chainrule(x, y, state):
    model = cr.nn.ThreeLayerConvNet((1, 8, 8), 16, 3, 100, 10, seed=0)
    model.load_state_dict(state)
    optimizer = cr.optim.Adam(model.parameters(), lr=1e-3)
    for n0 in range(0, len(y), EPOCH_BATCH):
        loss = F.cross_entropy(model(cr.tensor(x[n0 : n0 + EPOCH_BATCH])), y[n0 : n0 + EPOCH_BATCH])
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (model.state_dict()["0.weight"],)


def epoch_torch(x, y, state):
    model = torch.nn.Sequential(
        torch.nn.Conv2d(1, 16, 3, padding=1),
        torch.nn.ReLU(),
        torch.nn.MaxPool2d(2),
        torch.nn.Flatten(),
        torch.nn.Linear(16 * 4 * 4, 100),
        torch.nn.ReLU(),
        torch.nn.Linear(100, 10),
    ).double()
    model.load_state_dict({k: torch.from_numpy(v) for k, v in state.items()})
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    xt, yt = torch.from_numpy(x), torch.from_numpy(y)
    for n0 in range(0, len(y), EPOCH_BATCH):
        loss = torch.nn.functional.cross_entropy(
            model(xt[n0 : n0 + EPOCH_BATCH]), yt[n0 : n0 + EPOCH_BATCH]
        )
        optimizer.zero_grad()
        loss.backward()
        optimizer.step()
    return (model.state_dict()["0.weight"].numpy(),)


def bench_epoch(rows: list, repeat: int) -> None:
    x, y = _epoch_data()
    state = cr.nn.ThreeLayerConvNet((1, 8, 8), 16, 3, 100, 10, seed=0).state_dict()
    ways = {"chainrule": epoch_chainrule}
    if torch is None:
        return
    ways["PyTorch"] = epoch_torch
    what = f"convnet epoch, digits 1x8x8, batch {EPOCH_BATCH}, Adam"
    _compare_and_time(rows, what, ways, (x, y, state), repeat, rtol=1e-6)


def _compare_and_time(
    rows: list, what: str, ways: dict, args: tuple, repeat: int, rtol: float = 1e-9
) -> None:
    results = {name: fn(*args) for name, fn in ways.items()}
    reference = next(iter(results.values()))
    for name, result in results.items():
        for mine, theirs in zip(result, reference):
            np.testing.assert_allclose(mine, theirs, rtol=rtol, atol=rtol, err_msg=name)
    # Interleaved: each round times every way once, so a burst of load on the shared machine
    # hits all of them alike; the best round of each is reported.
    best = dict.fromkeys(ways, float("inf"))
    for _ in range(repeat):
        for name, fn in ways.items():
            best[name] = min(best[name], best_of(lambda fn=fn: fn(*args), 1))
    floor = next(iter(best.values()))
    for name, seconds in best.items():
        rows.append((what, name, format_seconds(seconds), f"{seconds / floor:.2f}x"))


def main() -> int:
    rows: list = []
    bench_conv(rows, 7)
    bench_pool(rows, 15)
    bench_bn(rows, 15)
    bench_epoch(rows, 7)
    print(markdown_table(("workload", "way", "time", "vs floor"), rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
