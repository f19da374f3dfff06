import re
import subprocess
import sys

import pytest

from fastmlp import __main__ as cli
from fastmlp import datasets

# Each option of ``train`` and words from its help text.
HELP = {"--data": "data set", "--hidden": "hidden layer widths", "--activation": "activation of",
        "--epochs": "passes over", "--batch-size": "samples per", "--lr": "learning rate",
        "--seed": "seed of", "--dtype": "floating-point type"}


def run(*args):
    return subprocess.run([sys.executable, "-m", "fastmlp", *args], capture_output=True,
                          text=True, timeout=300)


def accuracy_of(stdout):
    """The number on the one ``test accuracy`` line."""
    (value,) = re.findall(r"^test accuracy (\S+)$", stdout, re.M)
    return float(value)


def test_train_three_epochs():
    result = run("train", "--epochs", "3")
    assert result.returncode == 0, result.stderr
    assert re.findall(r"^epoch (\d+)/3 ", result.stdout, re.M) == ["1", "2", "3"]
    assert 0.0 <= accuracy_of(result.stdout) <= 1.0


def test_train_default_reaches_95_percent_on_digits():
    result = run("train")
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"^epoch \d+/20 ", result.stdout, re.M)) == 20
    assert 0.95 <= accuracy_of(result.stdout) <= 1.0


def test_train_options():
    result = run("train", "--hidden", "16", "8", "--activation", "tanh", "--epochs", "2",
                 "--batch-size", "full", "--lr", "0.5", "--seed", "3", "--dtype", "float64")
    assert result.returncode == 0, result.stderr
    assert "sizes=(64, 16, 8, 10), activation='tanh'" in result.stdout
    assert "dtype='float64'" in result.stdout
    assert re.findall(r"^epoch (\d+)/2 ", result.stdout, re.M) == ["1", "2"]
    assert 0.0 <= accuracy_of(result.stdout) <= 1.0


def test_help_names_every_option():
    top = run("--help")
    assert top.returncode == 0 and "train" in top.stdout and "train an MLP" in top.stdout
    train = run("train", "--help")
    assert train.returncode == 0
    options = " ".join(train.stdout.split("options:")[1].split())  # unwrapped
    metavar = r"(?: \{[^}]*\}| \[[A-Z]+ \.\.\.\]| [A-Z_]+)?"
    for option, words in HELP.items():
        assert re.search(rf"{option}{metavar} {words}", options), option


@pytest.mark.parametrize("args, message", [
    (["--activation", "nope"], "invalid choice: 'nope'"),
    (["--data", "cifar"], "invalid choice: 'cifar'"),
    (["--batch-size", "0"], "--batch-size: expected a positive int"),
    (["--epochs", "-1"], "--epochs: expected a positive int"),
    (["--hidden", "16", "0"], "--hidden: expected a positive int"),
    (["--lr", "nan"], "--lr: expected a positive float"),
    (["--lr", "inf"], "--lr: expected a positive float"),
    (["--dtype", "float16"], "invalid choice: 'float16'"),
])
def test_bad_values_are_refused(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse exits with status 2
        cli.main(["train", *args])
    assert exit_.value.code == 2 and message in capsys.readouterr().err


def test_bad_value_message_in_subprocess():
    result = run("train", "--activation", "nope")
    assert result.returncode == 2 and "invalid choice: 'nope'" in result.stderr
    assert result.stdout == ""


def test_missing_data_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(datasets, "DATA_ROOTS", [str(tmp_path / "none")])
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    assert cli.main(["train", "--data", "fashion-mnist"]) == 1
    error = capsys.readouterr().err
    assert "train-images-idx3-ubyte" in error and str(tmp_path / "none") in error
