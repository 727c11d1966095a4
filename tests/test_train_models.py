"""The course's networks: ``cr.nn.ThreeLayerConvNet`` / ``FullyConnectedNet`` and ``chainrule
train --model convnet`` (>= 98% test accuracy on digits) / ``--model mlp --norm --dropout``."""

import re

import numpy as np
import pytest
from threadpoolctl import threadpool_limits

import chainrule as cr
from chainrule.cli import main


def test_convnet_reaches_98_percent_on_digits(tmp_path, capsys):
    # One BLAS thread: on a loaded machine OpenBLAS's threads wait on each other, and a 32x512
    # by 512x100 product takes 20 ms instead of 0.2 ms (the run's 6 s become a minute).
    with threadpool_limits(1):
        code = main(["train", "--data", "digits", "--model", "convnet", "--out", str(tmp_path)])
    assert code == 0
    report = capsys.readouterr().out
    assert "convnet conv3x3x32-pool-100-10" in report
    accuracy = float(re.search(r"test accuracy\s*│\s*([\d.]+)%", report).group(1))
    assert accuracy >= 98.0, report
    model = cr.nn.ThreeLayerConvNet((1, 8, 8), 32, 3, 100, 10)
    model.load_state_dict(cr.load(tmp_path / "model.npz"))
    split = cr.data.digits(seed=0, images=True)
    predicted = model.eval()(cr.tensor(split.x_test)).data.argmax(axis=1)
    assert np.mean(predicted == split.y_test) * 100 == pytest.approx(accuracy, abs=0.05)


@pytest.mark.parametrize("norm", ["batchnorm", "layernorm"])
def test_mlp_with_normalization_and_dropout_trains_and_saves_buffers(tmp_path, capsys, norm):
    argv = ["train", "--data", "digits", "--norm", norm, "--dropout", "0.2", "--epochs", "2"]
    assert main([*argv, "--hidden", "16", "--out", str(tmp_path)]) == 0
    assert f"64-16-10 ReLU MLP, {norm}, dropout 0.2" in capsys.readouterr().out
    state = cr.load(tmp_path / "model.npz")
    model = cr.nn.FullyConnectedNet(64, [16], 10, norm, 0.2)
    model.load_state_dict(state)
    assert ("1.running_mean" in state) == (norm == "batchnorm")
    assert [type(m).__name__ for m in model][1:4] == [
        {"batchnorm": "BatchNorm1d", "layernorm": "LayerNorm"}[norm],
        "ReLU",
        "Dropout",
    ]


def test_the_plain_mlp_keeps_its_layout_and_weights():
    rng = np.random.default_rng(0)
    net = cr.nn.FullyConnectedNet(4, [3], 2, generator=rng)
    rng = np.random.default_rng(0)
    plain = cr.nn.Sequential(
        cr.nn.Linear(4, 3, generator=rng), cr.nn.ReLU(), cr.nn.Linear(3, 2, generator=rng)
    )
    for (k1, v1), (k2, v2) in zip(net.state_dict().items(), plain.state_dict().items()):
        assert k1 == k2 and np.array_equal(v1, v2)


@pytest.mark.parametrize(
    "argv,message",
    [
        (["--model", "convnet"], "--model convnet needs images"),
        (["--data", "digits", "--model", "convnet", "--filter-size", "4"], "must be odd"),
        (["--dropout", "1.5"], "argument --dropout"),
        (["--norm", "groupnorm"], "--norm"),
    ],
)
def test_bad_model_options_are_one_line_errors(tmp_path, capsys, argv, message):
    try:
        code = main(["train", *argv, "--epochs", "1", "--out", str(tmp_path)])
    except SystemExit as exit:  # argparse's own errors exit with 2
        code = exit.code
    assert code == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1


def test_model_classes_refuse_bad_settings():
    with pytest.raises(ValueError, match="normalization"):
        cr.nn.FullyConnectedNet(4, [3], 2, normalization="groupnorm")
    with pytest.raises(ValueError, match="dropout"):
        cr.nn.FullyConnectedNet(4, [3], 2, dropout=1.0)
    with pytest.raises(ValueError, match="odd"):
        cr.nn.ThreeLayerConvNet((1, 8, 8), filter_size=4)
