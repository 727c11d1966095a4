"""``chainrule train --diagnose`` and ``--sanity`` end to end: the report file, the findings
printed (stdout on success, stderr with the divergence message), exit codes 0 and 1."""

from chainrule.cli import main


def run(argv):
    return main(["train", *argv])


def test_diagnose_writes_the_report_and_prints_the_diagnosis(tmp_path, capsys):
    code = run(
        [
            "--data",
            "spiral",
            "--hidden",
            "20",
            "--epochs",
            "30",
            "--out",
            str(tmp_path),
            "--diagnose",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "diagnosis: nothing looks wrong" in out
    assert f"report: {tmp_path / 'report.html'}" in out
    text = (tmp_path / "report.html").read_text(encoding="utf-8")
    assert "chainrule train --data spiral: 2-20-3 ReLU MLP" in text
    assert "No problems found" in text


def test_a_diverging_run_still_writes_the_report_and_names_the_cause(tmp_path, capsys):
    code = run(
        ["--data", "spiral", "--epochs", "30", "--lr", "1e4", "--out", str(tmp_path), "--diagnose"]
    )
    assert code == 1
    err = capsys.readouterr().err
    assert "training diverged" in err
    assert "diagnosis:" in err and "learning rate likely too high" in err
    assert (tmp_path / "report.html").exists()


def test_sanity_passes_on_the_default_setup(tmp_path, capsys):
    assert run(["--data", "spiral", "--sanity", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ok   initial loss: 1.099 with no regularization, expected about 1.099 = log 3" in out
    assert "ok   overfit 20 examples: 100% training accuracy after" in out
    assert not (tmp_path / "model.npz").exists()  # nothing was trained


def test_sanity_fails_with_exit_1_when_the_model_cannot_overfit(tmp_path, capsys):
    assert run(["--data", "spiral", "--sanity", "--lr", "1e-5", "--out", str(tmp_path)]) == 1
    out = capsys.readouterr().out
    assert "FAIL overfit 20 examples: only" in out
