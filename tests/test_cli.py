"""The command line, mostly run as users run it: ``python -m fastmlp ...`` in a
subprocess, in a folder of its own."""

import csv
import gzip
import json
import pickle
import re
import struct
import subprocess
import sys

import numpy as np
import pytest
from matplotlib.image import imread

import fastmlp
from fastmlp import __main__ as cli
from fastmlp import datasets
from fastmlp.kernels.target import HOST
from fastmlp.optimizers import cosine

# Each option of each command, and words from its help text.
HELP = {
    "train": {"--data": "data set to train", "--train-file": "training data from files",
              "--test-file": "test data from files", "--download": "download the files",
              "--hidden": "hidden layer widths", "--activation": "activation of",
              "--loss": "loss:", "--optimizer": "sgd", "--momentum": "momentum of sgd",
              "--lr": "learning rate", "--epochs": "passes over",
              "--lr-schedule": "cosine annealing", "--dropout": "dropout rate",
              "--input-dropout": "dropout rate of the inputs",
              "--clip-norm": "clip each batch's gradient", "--batch-size": "samples per",
              "--validation-split": "share of the training set",
              "--early-stopping": "stop when the validation loss", "--seed": "seed of",
              "--threads": "threads to train with", "--dtype": "floating-point type",
              "--model": "where to save the trained model",
              "--history": "where to write the metrics", "--plot": "learning curves"},
    "evaluate": {"--model": "the model file", "--data": "data set whose test set",
                 "--test-file": "test data from files", "--download": "download the files",
                 "--confusion-png": "confusion matrix as a PNG"},
    "predict": {"--model": "the model file", "--data": "data set whose test inputs",
                "--input": "a .npy of inputs", "--download": "download the files",
                "--proba": "the probability of each class", "--output": "write the predictions"},
    "info": {},
}
PNG = b"\x89PNG\r\n\x1a\n"


def run(folder, *args):
    return subprocess.run([sys.executable, "-m", "fastmlp", *args], capture_output=True,
                          text=True, timeout=300, cwd=folder)


def accuracy_of(stdout):
    """The number on the one ``test accuracy`` line."""
    (value,) = re.findall(r"^test accuracy (\S+)$", stdout, re.M)
    return float(value)


def epoch_lines(stdout):
    """The lines of ``fit(verbose=2)``, without their timings."""
    return re.findall(r"^(epoch \d+/\d+ .*?)\s+\(\S+ s\)$", stdout, re.M)


def assert_picture(path, width, height):
    """``path`` is a PNG of width x height pixels that is not blank."""
    assert path.read_bytes()[:8] == PNG
    image = imread(path)
    assert image.shape[:2] == (height, width)
    assert len(np.unique(image.reshape(-1, image.shape[2]), axis=0)) > 20


def one_error_line(stderr, command):
    """The single stderr line of a failed command, without its prefix."""
    assert "Traceback" not in stderr
    (line,) = stderr.splitlines()
    assert line.startswith(f"fastmlp {command}: error: ")
    return line


@pytest.fixture(scope="module")
def digits():
    return datasets.load_digits()


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A folder where ``train`` ran 3 epochs with validation, and its result."""
    folder = tmp_path_factory.mktemp("trained")
    result = run(folder, "train", "--epochs", "3", "--hidden", "32", "--validation-split",
                 "0.2", "--history", "history.csv", "--plot", "curves.png")
    assert result.returncode == 0, result.stderr
    return folder, result


def test_train_writes_model_history_and_curves(trained, digits):
    folder, result = trained
    lines = epoch_lines(result.stdout)
    assert [line.split()[1] for line in lines] == ["1/3", "2/3", "3/3"]
    with open(folder / "history.csv", newline="") as f:
        rows = list(csv.reader(f))
    assert rows[0] == ["epoch", "loss", "accuracy", "val_loss", "val_accuracy"]
    assert [row[0] for row in rows[1:]] == ["1", "2", "3"]
    for line, row in zip(lines, rows[1:]):  # the file holds what was printed
        metrics = "  ".join(f"{name} {float(value):.4f}" for name, value in zip(rows[0], row))
        assert line == f"epoch {row[0]}/3  {metrics[len('epoch 1.0000  '):]}"
    net = fastmlp.load(folder / "model.npz")
    assert net.sizes == (64, 32, 10)
    (_, _), (X_test, y_test) = digits
    assert accuracy_of(result.stdout) == round(net.evaluate(X_test, y_test)[1], 4)
    assert_picture(folder / "curves.png", 1000, 400)  # two panels, loss and accuracy


def test_train_default_reaches_95_percent_on_digits(tmp_path):
    result = run(tmp_path, "train")
    assert result.returncode == 0, result.stderr
    assert len(epoch_lines(result.stdout)) == 20
    assert 0.95 <= accuracy_of(result.stdout) <= 1.0
    assert (tmp_path / "model.npz").is_file()


def test_train_options_and_json_history(tmp_path):
    result = run(tmp_path, "train", "--hidden", "16", "8", "--activation", "tanh", "--epochs",
                 "2", "--batch-size", "full", "--lr", "0.5", "--momentum", "0.5", "--seed", "3",
                 "--dtype", "float64", "--model", "net.npz", "--history", "history.json")
    assert result.returncode == 0, result.stderr
    assert "sizes=(64, 16, 8, 10), activation='tanh'" in result.stdout
    assert "dtype='float64'" in result.stdout
    history = json.loads((tmp_path / "history.json").read_text())
    assert list(history) == ["epoch", "loss", "accuracy"] and history["epoch"] == [1, 2]
    assert len(history["loss"]) == len(history["accuracy"]) == 2
    net = fastmlp.load(tmp_path / "net.npz")
    assert (net.sizes, net.activation, net.dtype) == ((64, 16, 8, 10), "tanh", np.float64)


def test_train_takes_per_layer_activations_dropout_clipping_and_cosine(tmp_path, digits):
    result = run(tmp_path, "train", "--hidden", "16", "8", "--activation", "tanh", "relu",
                 "--epochs", "2", "--lr", "0.05", "--clip-norm", "0.5", "--threads", "1",
                 "--dropout", "0.2", "0.1", "--input-dropout", "0.1", "--lr-schedule", "cosine")
    assert result.returncode == 0, result.stderr
    net = fastmlp.load(tmp_path / "model.npz")
    assert net.activations == ("tanh", "relu") and net.dropout == (0.2, 0.1)
    assert net.input_dropout == 0.1
    same = fastmlp.MLP((64, 16, 8, 10), ("tanh", "relu"), seed=0, dropout=(0.2, 0.1),
                       input_dropout=0.1)
    same.fit(*digits[0], epochs=2, lr=cosine(0.05, 2), clip_norm=0.5, n_threads=1, verbose=0)
    assert np.array_equal(net.params, same.params)
    assert run(tmp_path, "train", "--clip-norm", "0").returncode == 2
    assert run(tmp_path, "train", "--dropout", "1").returncode == 2
    assert run(tmp_path, "train", "--input-dropout", "1").returncode == 2
    wrong = run(tmp_path, "train", "--hidden", "16", "--activation", "tanh", "relu")
    assert wrong.returncode == 1
    assert "activation has 2 entries for 1 hidden layers" in wrong.stderr


def test_train_matches_the_api(tmp_path, digits, monkeypatch, capsys):
    """Adam's default learning rate, mse, batch size, seed: the CLI's model is
    the one fit makes with the same settings, to the bit. Evaluated, the
    class of an mse model is its largest output."""
    result = run(tmp_path, "train", "--optimizer", "adam", "--loss", "mse", "--hidden", "16",
                 "--epochs", "2", "--batch-size", "64", "--seed", "5", "--threads", "1")
    assert result.returncode == 0, result.stderr
    (X, y), _ = digits
    net = fastmlp.MLP((64, 16, 10), loss="mse", seed=5)
    net.fit(X, y, epochs=2, batch_size=64, lr=0.001, optimizer="adam", verbose=0, n_threads=1)
    np.testing.assert_array_equal(fastmlp.load(tmp_path / "model.npz").params, net.params)
    monkeypatch.chdir(tmp_path)
    assert cli.main(["evaluate"]) == 0
    out = capsys.readouterr().out
    _, (X_test, y_test) = digits
    accuracy = net.evaluate(X_test, y_test)[1]
    assert accuracy_of(out) == accuracy_of(result.stdout) == round(accuracy, 4)
    cm = matrix_of(out)
    assert cm.sum() == len(y_test) and np.trace(cm) == round(accuracy * len(y_test))


def test_early_stopping_keeps_the_best_epoch(tmp_path, digits):
    result = run(tmp_path, "train", "--validation-split", "0.3", "--early-stopping", "2",
                 "--epochs", "60", "--lr", "0.5", "--history", "history.csv")
    assert result.returncode == 0, result.stderr
    stopped, best = map(int, re.search(r"stopped early after epoch (\d+): .* kept the weights "
                                       r"of epoch (\d+)", result.stdout).groups())
    with open(tmp_path / "history.csv", newline="") as f:
        val_loss = [float(row["val_loss"]) for row in csv.DictReader(f)]
    assert len(val_loss) == stopped < 60 and len(epoch_lines(result.stdout)) == stopped
    assert best == 1 + int(np.argmin(val_loss)) == stopped - 2
    (X, y), _ = digits
    held_out = slice(len(y) - round(0.3 * len(y)), None)
    loss, _ = fastmlp.load(tmp_path / "model.npz").evaluate(X[held_out], y[held_out])
    assert loss == pytest.approx(val_loss[best - 1], rel=1e-6)


def write_idx(path, array):
    """An IDX file of ``array`` (uint8 or float32), gzipped when ``path`` ends in .gz."""
    code, dtype = {"u": (0x08, ">u1"), "f": (0x0D, ">f4")}[array.dtype.kind]
    data = (bytes([0, 0, code, array.ndim]) + struct.pack(f">{array.ndim}I", *array.shape)
            + array.astype(dtype).tobytes())
    path.write_bytes(gzip.compress(data) if path.suffix == ".gz" else data)


def write_files(folder, form, digits):
    """The digits in the file form ``form``: the --train-file and --test-file arguments."""
    (X, y), (X_test, y_test) = digits
    images, images_test = X.reshape(-1, 8, 8), X_test.reshape(-1, 8, 8)
    if form == "npz":
        np.savez(folder / "digits.npz", x_train=images, y_train=y.astype(np.uint8),
                 x_test=images_test, y_test=y_test.astype(np.uint8))
        return ["digits.npz"], []
    if form == "pkl":
        sets = ((X, y), (X_test[:5], y_test[:5]), (X_test, y_test))
        (folder / "digits.pkl.gz").write_bytes(gzip.compress(pickle.dumps(sets, protocol=4)))
        return ["digits.pkl.gz"], []
    names = {"npy": ["x.npy", "y.npy", "xt.npy", "yt.npy"],
             "idx": ["x-idx3.gz", "y-idx1", "xt-idx3", "yt-idx1.gz"]}[form]
    for name, array in zip(names, [images, y.astype(np.uint8), images_test,
                                   y_test.astype(np.uint8)]):
        np.save(folder / name, array) if form == "npy" else write_idx(folder / name, array)
    return names[:2], names[2:]


@pytest.mark.parametrize("form", ["npz", "pkl", "npy", "idx"])
def test_train_and_evaluate_on_files(form, digits, tmp_path, monkeypatch, capsys):
    """The digits from files train and test exactly as --data digits."""
    monkeypatch.chdir(tmp_path)
    train_files, test_files = write_files(tmp_path, form, digits)
    common = ["--epochs", "2", "--hidden", "8", "--threads", "1"]
    assert cli.main(["train", *common, "--model", "data.npz"]) == 0
    expected = capsys.readouterr().out
    test = ["--test-file", *test_files] if test_files else []
    assert cli.main(["train", "--train-file", *train_files, *test, *common]) == 0
    out = capsys.readouterr().out
    assert out.startswith(f"{' '.join(train_files)}: 1438 training and 359 test samples")
    assert epoch_lines(out) == epoch_lines(expected) and len(epoch_lines(out)) == 2
    assert accuracy_of(out) == accuracy_of(expected)
    assert cli.main(["evaluate", "--test-file", *(test_files or train_files)]) == 0
    assert accuracy_of(capsys.readouterr().out) == accuracy_of(expected)


def matrix_of(stdout):
    """The 10 x 10 confusion matrix printed by ``evaluate``."""
    table = stdout.split("true \\ predicted")[1].split("\n\n")[0].splitlines()
    assert table[0].split() == [str(k) for k in range(10)]
    cm = np.array([[int(v) for v in line.split()] for line in table[1:]])
    assert cm.shape == (10, 11) and (cm[:, 0] == np.arange(10)).all()
    return cm[:, 1:]


def run_trained(trained, *args):
    """Run a command where ``trained`` trained; its result and the trained model."""
    folder, _ = trained
    result = run(folder, *args)
    assert result.returncode == 0, result.stderr
    return result, fastmlp.load(folder / "model.npz")


def test_train_without_a_test_set(digits, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    train_files, _ = write_files(tmp_path, "npy", digits)
    assert cli.main(["train", "--train-file", *train_files, "--epochs", "1"]) == 0
    out = capsys.readouterr().out
    assert out.startswith("x.npy y.npy: 1438 training and no test samples")
    assert len(epoch_lines(out)) == 1 and "test accuracy" not in out
    assert (tmp_path / "model.npz").is_file()


def test_evaluate_prints_report_and_matrix(trained, digits):
    result, net = run_trained(trained, "evaluate", "--confusion-png", "cm.png")
    (_, _), (X_test, y_test) = digits
    assert accuracy_of(result.stdout) == accuracy_of(trained[1].stdout)
    assert f"test loss {net.evaluate(X_test, y_test)[0]:.4f}\n" in result.stdout
    support = {int(label): int(count) for label, count in
               re.findall(r"^\s+(\d)(?:\s+[\d.]+){3}\s+(\d+)$", result.stdout, re.M)}
    assert support == dict(enumerate(np.bincount(y_test)))
    cm = matrix_of(result.stdout)
    expected = np.zeros((10, 10), int)
    np.add.at(expected, (y_test, net.predict(X_test)), 1)
    np.testing.assert_array_equal(cm, expected)
    assert cm.sum() == len(y_test)
    assert_picture(trained[0] / "cm.png", 1000, 850)


def test_predict_writes_labels(trained, digits):
    _, net = run_trained(trained, "predict", "--output", "labels.npy")
    (_, _), (X_test, _) = digits
    labels = np.load(trained[0] / "labels.npy")
    assert labels.shape == (359,) and labels.dtype.kind == "i"
    np.testing.assert_array_equal(labels, net.predict(X_test))


def test_predict_writes_probabilities_as_csv(trained, digits):
    _, net = run_trained(trained, "predict", "--proba", "--output", "proba.csv")
    (_, _), (X_test, _) = digits
    proba = np.loadtxt(trained[0] / "proba.csv", delimiter=",").astype(np.float32)
    np.testing.assert_array_equal(proba, net.predict_proba(X_test))  # read back exactly
    assert proba.shape == (359, 10)


def test_predict_prints_probabilities_of_pixel_images(trained, digits):
    """Integer pixels are divided by 255; images are flattened."""
    (_, _), (X_test, _) = digits
    pixels = np.round(X_test[:7] * 255).astype(np.uint8)
    np.save(trained[0] / "pixels.npy", pixels.reshape(7, 8, 8))
    result, net = run_trained(trained, "predict", "--input", "pixels.npy", "--proba")
    expected = net.predict_proba(pixels.astype(np.float32) / 255)
    printed = [[np.float32(v) for v in line.split(",")] for line in result.stdout.splitlines()]
    np.testing.assert_array_equal(printed, expected)


def test_help_of_each_command_is_complete():
    top = run(None, "--help")
    assert top.returncode == 0
    for command in HELP:
        assert re.search(rf"^\s+{command}\s+\w", top.stdout, re.M), command
    for command, options in HELP.items():
        result = run(None, command, "--help")
        assert result.returncode == 0
        text = result.stdout.split("options:\n")[1].split("\n\n")[0]
        entries = [" ".join(entry.split()) for entry in re.split(r"\n(?=  -)", text)]
        named = {entry.split()[0]: entry for entry in entries[1:]}  # after -h, --help
        assert set(named) == set(options)
        for option, words in options.items():
            assert words in named[option] and "(default: " in named[option], named[option]


def test_info_prints_the_configuration():
    result = run(None, "info")
    assert result.returncode == 0, result.stderr
    assert re.match(rf"fastmlp +{re.escape(fastmlp.__version__)}\n", result.stdout)
    assert re.search(rf"^instruction_set +{re.escape(HOST.isa)}$", result.stdout, re.M)


def test_version():
    result = run(None, "--version")
    assert result.returncode == 0 and result.stdout.strip() == f"fastmlp {fastmlp.__version__}"


@pytest.mark.parametrize("args, message", [
    (["train", "--activation", "nope"], "invalid choice: 'nope'"),
    (["train", "--data", "cifar"], "invalid choice: 'cifar'"),
    (["evaluate", "--data", "cifar"], "invalid choice: 'cifar'"),
    (["train", "--batch-size", "0"], "--batch-size: expected a positive int"),
    (["train", "--epochs", "-1"], "--epochs: expected a positive int"),
    (["train", "--hidden", "16", "0"], "--hidden: expected a positive int"),
    (["train", "--lr", "nan"], "--lr: expected a positive float"),
    (["train", "--lr", "inf"], "--lr: expected a positive float"),
    (["train", "--dtype", "float16"], "invalid choice: 'float16'"),
    (["train", "--validation-split", "1"], "--validation-split: expected a number from 0"),
    (["train", "--momentum", "-0.1"], "--momentum: expected a number from 0"),
    (["train", "--threads", "0"], "--threads: expected a positive int"),
    (["train", "--threads", "100000"], "n_threads must be an integer from 1 to"),
    (["train", "--early-stopping", "0"], "--early-stopping: expected a positive int"),
    (["train", "--early-stopping", "3"], "--early-stopping needs a validation set"),
    (["train", "--optimizer", "adam", "--momentum", "0.9"], "--momentum applies to"),
    (["train", "--history", "h.txt"], "expected a file name ending in .csv or .json"),
    (["train", "--model", "nowhere/m.npz"], "the folder 'nowhere' of 'nowhere/m.npz' does not"),
    (["train", "--train-file", "a", "b", "c"], "takes one .npz or .pkl[.gz] file or two"),
    (["train", "--train-file", "a.csv"], "one file must be a .npz or a .pkl[.gz]"),
    (["train", "--data", "digits", "--train-file", "d.npz"], "not allowed with argument"),
    (["predict", "--input", "x.npy", "--data", "digits"], "not allowed with argument"),
    (["predict", "--output", "p.txt"], "expected a file name ending in .npy or .csv"),
    ([], "the following arguments are required: COMMAND"),
])
def test_bad_usage_is_refused(args, message, capsys):
    with pytest.raises(SystemExit) as exit_:  # argparse exits with status 2
        cli.main(args)
    assert exit_.value.code == 2 and message in capsys.readouterr().err.splitlines()[-1]


@pytest.mark.parametrize("args, message", [
    (["evaluate", "--model", "missing.npz"], "missing.npz: No such file or directory"),
    (["predict", "--model", "junk.npz"], "cannot load junk.npz: not a fastmlp model file"),
    (["train", "--train-file", "missing.npz"], "missing.npz: no such file (expected a .npz"),
    (["evaluate", "--test-file", "x10.npy", "y5.npy"], "x10.npy and y5.npy: 359 images but 5"),
    (["predict", "--input", "x10.npy"], "X has 10 features, the model expects 64"),
    (["predict", "--input", "objects.npy"], "objects.npy: expected a .npy of inputs"),
])
def test_errors_are_one_line(args, message, trained, capsys, monkeypatch):
    folder, _ = trained
    monkeypatch.chdir(folder)
    (folder / "junk.npz").write_bytes(b"not a model")
    np.save(folder / "x10.npy", np.zeros((359, 10), np.float32))
    np.save(folder / "y5.npy", np.zeros(5, np.int64))
    np.save(folder / "objects.npy", np.zeros(5, object), allow_pickle=True)
    assert cli.main(args) == 1
    assert message in one_error_line(capsys.readouterr().err, args[0])


def test_errors_in_a_subprocess(tmp_path):
    result = run(tmp_path, "evaluate", "--model", "missing.npz")
    assert result.returncode == 1 and result.stdout == ""
    assert "missing.npz: No such file" in one_error_line(result.stderr, "evaluate")
    result = run(tmp_path, "train", "--activation", "nope")
    assert result.returncode == 2 and result.stdout == "" and "Traceback" not in result.stderr
    assert "invalid choice: 'nope'" in result.stderr.splitlines()[-1]


@pytest.mark.parametrize("args", [["train", "--plot", "c.png"],
                                  ["evaluate", "--confusion-png", "c.png"]])
def test_pictures_without_matplotlib(args, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib fails
    assert cli.main(args) == 1
    line = one_error_line(capsys.readouterr().err, args[0])
    assert f'{args[1]} needs matplotlib: pip install "fastmlp[plot]"' in line
    assert list(tmp_path.iterdir()) == []  # refused before any work


def test_interrupt_is_one_line(monkeypatch, capsys):
    def interrupted(download):
        raise KeyboardInterrupt
    monkeypatch.setitem(cli.DATA_SETS, "digits", interrupted)
    assert cli.main(["train"]) == 130
    assert capsys.readouterr().err == "fastmlp train: interrupted\n"


def test_missing_data_is_reported(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr(datasets, "DATA_ROOTS", [str(tmp_path / "none")])
    monkeypatch.delenv("FASTMLP_DATA", raising=False)
    assert cli.main(["train", "--data", "fashion-mnist"]) == 1
    error = one_error_line(capsys.readouterr().err, "train")
    assert "train-images-idx3-ubyte" in error and str(tmp_path / "none") in error
    assert error.endswith("(the option --download)")


def test_download_is_tried(trained, tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("FASTMLP_DATA", str(tmp_path))
    monkeypatch.setitem(datasets.MIRRORS, "mnist", ["http://127.0.0.1:9/"])  # nothing listens
    model = str(trained[0] / "model.npz")
    assert cli.main(["predict", "--data", "mnist", "--download", "--model", model]) == 1
    error = capsys.readouterr().err
    assert "downloading http://127.0.0.1:9/train-images-idx3-ubyte.gz" in error
    line = one_error_line(error.splitlines()[-1], "predict")
    assert f"downloading train-images-idx3-ubyte.gz into {tmp_path / 'mnist'} failed" in line
