import re
import subprocess
import sys


def run(*args):
    return subprocess.run([sys.executable, "-m", "fastmlp", *args], capture_output=True,
                          text=True, timeout=300)


def test_train_default_reaches_95_percent_on_digits():
    result = run("train")
    assert result.returncode == 0, result.stderr
    assert len(re.findall(r"^epoch \d+/20 ", result.stdout, re.M)) == 20
    accuracy = float(re.search(r"^test accuracy (\S+)$", result.stdout, re.M).group(1))
    assert 0.95 <= accuracy <= 1.0


def test_train_options():
    result = run("train", "--hidden", "16", "8", "--activation", "tanh", "--epochs", "2",
                 "--batch-size", "full", "--lr", "0.5", "--dtype", "float64")
    assert result.returncode == 0, result.stderr
    assert "sizes=(64, 16, 8, 10)" in result.stdout and "float64" in result.stdout
    assert "epoch 2/2" in result.stdout


def test_help_names_every_option():
    assert "train" in run("--help").stdout
    text = run("train", "--help").stdout
    for option in ["--data", "--hidden", "--activation", "--epochs", "--batch-size", "--lr",
                   "--seed", "--dtype"]:
        assert option in text


def test_bad_values_are_refused():
    result = run("train", "--activation", "nope")
    assert result.returncode == 2 and "invalid choice: 'nope'" in result.stderr
    result = run("train", "--batch-size", "0")
    assert result.returncode == 2 and "batch size" in result.stderr
