"""cr.check_layer and `chainrule check FILE:NAME`: correct layers pass, and each planted mistake
(factor 2, wrong sign, missing transpose, wrong sum axis) is named; the CLI imports the file and
fails on one line for bad input."""

import textwrap

import numpy as np
import pytest

import chainrule as cr
from chainrule.cli import main
from chainrule.layercheck import band


def affine_forward(x, w, b):
    return x.reshape(x.shape[0], -1) @ w + b, (x, w)


def make_affine_backward(mistake=None):
    def backward(dout, cache):
        x, w = cache
        dx = (dout @ w.T).reshape(x.shape)
        dw = x.reshape(x.shape[0], -1).T @ dout
        db = dout.sum(axis=0)
        if mistake == "factor 2":
            dw = 2 * dw
        elif mistake == "sign":
            dx = -dx
        elif mistake == "transpose":
            dw = dw.T
        elif mistake == "axis":
            db = dout.sum(axis=1)
        return dx, dw, db

    return backward


def relu_forward(x):
    out = x.copy()
    out[out < 0] = 0  # not traceable with Tensors: checked by centered differences
    return out, x


def relu_backward(dout, x):
    return dout * (x > 0)


def inputs(n=4, d=5, m=3, seed=0):
    rng = np.random.default_rng(seed)
    return rng.standard_normal((n, d)), rng.standard_normal((d, m)), rng.standard_normal(m)


def test_correct_layers_pass_by_chainrule_and_by_differences(capsys):
    report = cr.check_layer(affine_forward, make_affine_backward(), *inputs())
    assert report.ok and report.method == "chainrule backward"
    assert [row.name for row in report.rows] == ["dx", "dw", "db"]
    assert all(row.verdict == "good" for row in report.rows)
    out = capsys.readouterr().out
    assert "check_layer affine" in out and "all gradients agree" in out
    report = cr.check_layer(relu_forward, relu_backward, inputs()[0], show=False)
    assert report.ok and report.method == "centered differences"


@pytest.mark.parametrize(
    "mistake,row,hint",
    [
        ("factor 2", "dw", "twice the reference"),
        ("sign", "dx", "wrong sign"),
        ("transpose", "dw", "missing transpose"),
        ("axis", "db", "over axis 1; it should sum over axis 0"),
    ],
)
def test_planted_mistakes_are_named(mistake, row, hint):
    report = cr.check_layer(affine_forward, make_affine_backward(mistake), *inputs(), show=False)
    assert not report.ok
    bad = {r.name: r for r in report.rows if not r.ok}
    assert list(bad) == [row]
    assert bad[row].verdict == "wrong" and hint in bad[row].hint
    assert hint in str(report)


@pytest.mark.parametrize("mistake,hint", [("transpose", "transpose"), ("axis", "axis 1")])
def test_square_shapes_still_get_the_hint(mistake, hint):
    # shapes equal, so only the values tell: W is 4x4 and N == M
    report = cr.check_layer(
        affine_forward, make_affine_backward(mistake), *inputs(4, 4, 4), show=False
    )
    assert any(hint in r.hint for r in report.rows)


def test_bands_and_report_never_print_the_expected_gradient():
    assert [band(e) for e in (1e-9, 1e-5, 1e-3, 0.5, np.nan)] == [
        "good",
        "ok only with kinks (relu, max)",
        "suspicious",
        "wrong",
        "wrong",
    ]
    report = cr.check_layer(affine_forward, make_affine_backward("sign"), *inputs(), show=False)
    assert len(str(report).splitlines()) == 7  # title, header, three rows, a hint, verdict


def test_bad_use_is_explained():
    with pytest.raises(ValueError, match="returned 2 gradient"):
        cr.check_layer(affine_forward, lambda d, c: (d, d), *inputs(), show=False)
    with pytest.raises(TypeError, match=r"must return \(out, cache\)"):
        cr.check_layer(lambda x: x, relu_backward, inputs()[0], show=False)


LAYERS = """
import numpy as np

def affine_forward(x, w, b):
    return x.reshape(x.shape[0], -1).dot(w) + b, (x, w)

def affine_backward(dout, cache):
    x, w = cache
    return dout.dot(w.T).reshape(x.shape), x.reshape(x.shape[0], -1).T.dot(dout), dout.sum(0)

def scale_forward(x, s):
    return x * s, (x, s)

def scale_backward(dout, cache):
    x, s = cache
    return dout * s, 2 * (dout * x)
"""


def test_cli_checks_a_file_of_layers(tmp_path, capsys):
    path = tmp_path / "my_layers.py"
    path.write_text(textwrap.dedent(LAYERS))
    assert main(["check", f"{path}:affine"]) == 0
    assert "all gradients agree" in capsys.readouterr().out
    assert main(["check", f"{path}:scale", "--shapes", "3x2", "3x2"]) == 1
    out = capsys.readouterr().out
    assert "ds" in out and "twice the reference" in out


@pytest.mark.parametrize(
    "target,extra,message",
    [
        ("missing.py:affine", [], "no such file"),
        ("{path}:conv", [], "has no function conv_forward"),
        ("{path}:scale", [], "--shapes"),
        ("{path}", [], "FILE:NAME"),
        ("{path}:scale", ["--shapes", "3xa"], "not a shape"),
        ("{broken}:affine", [], "importing it failed: ZeroDivisionError"),
    ],
)
def test_cli_errors_are_one_line(tmp_path, capsys, target, extra, message):
    path = tmp_path / "layers.py"
    path.write_text(textwrap.dedent(LAYERS))
    broken = tmp_path / "broken.py"
    broken.write_text("1 / 0\n")
    code = main(["check", target.format(path=path, broken=broken), *extra])
    err = capsys.readouterr().err
    assert code == 2 and message in err and len(err.strip().splitlines()) == 1


CONV = """
import numpy as np

def conv_forward_naive(x, w, b, conv_param):
    s, p = conv_param["stride"], conv_param["pad"]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    n, f, k = x.shape[0], w.shape[0], w.shape[2]
    size = (xp.shape[2] - k) // s + 1
    out = np.zeros((n, f, size, size))
    for i in range(size):
        for j in range(size):
            window = xp[:, None, :, i * s : i * s + k, j * s : j * s + k]
            out[:, :, i, j] = (window * w[None]).sum(axis=(2, 3, 4)) + b
    return out, (x, w, b, conv_param)

def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    s, p = conv_param["stride"], conv_param["pad"]
    xp = np.pad(x, ((0, 0), (0, 0), (p, p), (p, p)))
    dxp, dw, k = np.zeros_like(xp), np.zeros_like(w), w.shape[2]
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            g = dout[:, :, i, j]
            dxp[:, :, i * s : i * s + k, j * s : j * s + k] += np.einsum("nf,fcij->ncij", g, w)
            dw += np.einsum("nf,ncij->fcij", g, xp[:, :, i * s : i * s + k, j * s : j * s + k])
    return dxp[:, :, p : xp.shape[2] - p, p : xp.shape[3] - p], dw, dout.sum(axis=(0, 2, 3))
"""


def test_cli_finds_naive_layers_and_takes_parameters(tmp_path, capsys):
    path = tmp_path / "layers.py"
    path.write_text(CONV)
    assert main(["check", f"{path}:conv"]) == 0
    out = capsys.readouterr().out
    assert "check_layer conv " in out and out.count(" good ") == 3
    assert main(["check", f"{path}:conv", "--param", "stride=2", "--param", "pad=0"]) == 0
    assert main(["check", f"{path}:conv", "--param", "stride"]) == 2
    assert "expected KEY=VALUE" in capsys.readouterr().err
