"""Command line: ``fastmlp train``, ``fastmlp evaluate``, ``fastmlp predict`` and
``fastmlp info`` (the same as ``python -m fastmlp ...``)."""

import argparse
import csv
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

from . import MLP, __version__, load, plots, show_config
from .callbacks import EarlyStopping
from .datasets import (load_array, load_digits, load_fashion_mnist, load_idx_pair, load_mnist,
                       load_mnist_pkl, load_npy, load_npz, scale)
from .distributed import launched_comm
from .model import DTYPES
from .optimizers import SGD, cosine
from .registry import ACTIVATIONS, LOSSES, OPTIMIZERS
from .threads import check_threads, get_num_threads

# Loaders by name, each taking ``download``.
DATA_SETS = {"digits": lambda download: load_digits(), "fashion-mnist": load_fashion_mnist,
             "mnist": load_mnist}
DEFAULT_DATA = "digits"  # shipped in the package: works offline
# The losses that take integer class labels, the kind of y the CLI reads.
CLASS_LOSSES = [name for name, loss in LOSSES.items() if loss.class_labels]
DEFAULT_LR = {"sgd": 0.1, "adam": 0.001}

FILES = """\
data files (--train-file, --test-file):
  DATA.npz        Keras' mnist.npz layout: arrays x_train, y_train, x_test, y_test;
                  training uses the first two, testing the last two
  mnist.pkl[.gz]  the classic pickle of (training, validation, test) pairs, read
                  without running code; as DATA.npz, the validation pair unused
  IMAGES LABELS   two .npy files, or two MNIST-style IDX files (gzipped or not):
                  one set, images (n, ...) and their integer labels (n,)
Integer inputs are pixels 0..255, divided by 255; float inputs are used as they are."""


def _number(kind, low, high=math.inf, low_allowed=False, name=None):
    """An argparse type: a ``kind`` (int or float) above ``low`` (or equal to it
    with ``low_allowed``) and below ``high``; ``name`` describes the range."""
    name = name or f"positive {kind.__name__}"

    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not (low <= value if low_allowed else low < value) or not value < high:
            raise argparse.ArgumentTypeError(f"expected a {name}, got {text!r}")
        return value
    return convert


_positive_int = _number(int, 0)
_fraction = _number(float, 0, 1, low_allowed=True, name="number from 0 up to (not including) 1")


def _batch_size(text):
    """An argparse type: a positive integer, or "full" (None) for full-batch descent."""
    return None if text == "full" else _positive_int(text)


def _threads(text):
    """An argparse type: a thread count from 1 to NUMBA_NUM_THREADS."""
    try:
        return check_threads(_positive_int(text))
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from None


def _output(*suffixes):
    """An argparse type: a file to write, ending in one of ``suffixes`` (any
    name when none), in a folder that exists."""
    def convert(text):
        if suffixes and not text.lower().endswith(suffixes):
            raise argparse.ArgumentTypeError(f"expected a file name ending in "
                                             f"{' or '.join(suffixes)}, got {text!r}")
        folder = Path(text).parent
        if not folder.is_dir():
            raise argparse.ArgumentTypeError(f"the folder {str(folder)!r} of {text!r} does not "
                                             "exist")
        return text
    return convert


def _add_data(parser, role, alternatives=()):
    """--data and --download for a command whose data is ``role``, with
    ``alternatives`` (option, help, nargs) to --data."""
    group = parser.add_mutually_exclusive_group()
    # No default here: argparse sees an explicit "--data digits" beside --train-file
    # only when the value is not the default object; _data_name supplies it.
    group.add_argument("--data", choices=list(DATA_SETS),
                       help=f"data set {role}: digits, shipped in the package; fashion-mnist "
                            "or mnist, the IDX files in $FASTMLP_DATA/NAME, "
                            "~/.cache/fastmlp/NAME or /usr/share/datasets/NAME "
                            "(default: digits)")
    for option, text, nargs in alternatives:
        group.add_argument(option, nargs=nargs, metavar="FILE" if nargs else "PATH", help=text)
    parser.add_argument("--download", action="store_true",
                        help="with --data fashion-mnist or mnist: download the files from the "
                             "official mirrors (checksums checked) into $FASTMLP_DATA or "
                             "~/.cache/fastmlp when they are not found (default: off)")


def _add_model(parser, role):
    parser.add_argument("--model", default="model.npz", metavar="PATH",
                        help=f"the model file written by 'fastmlp train' {role} "
                             "(default: model.npz)")


def build_parser():
    parser = argparse.ArgumentParser(
        prog="fastmlp", description="Train multilayer perceptrons on the CPU, evaluate them "
                                    "and predict with them. 'fastmlp COMMAND --help' "
                                    "describes each command.")
    parser.add_argument("--version", action="version", version=f"fastmlp {__version__}")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    formatter = argparse.RawDescriptionHelpFormatter

    train = commands.add_parser(
        "train", help="train an MLP, save it and report its test accuracy", epilog=FILES,
        formatter_class=formatter,
        description="Train an MLP by minibatch gradient descent, print a line per epoch\n"
                    "and the final test accuracy; save the model, and on request the\n"
                    "history and the learning curves.")
    train.set_defaults(run=_train, parser=train)
    _add_data(train, "to train and test on", [
        ("--train-file", "training data from files, see below, instead of --data "
                         "(default: none)", "+")])
    train.add_argument("--test-file", nargs="+", metavar="FILE",
                       help="test data from files, see below (default: the test set of "
                            "--data, or of --train-file DATA.npz or .pkl; none after "
                            "--train-file IMAGES LABELS)")
    train.add_argument("--hidden", type=_positive_int, nargs="*", default=[64],
                       metavar="WIDTH", help="hidden layer widths, none for a linear "
                                             "classifier (default: 64)")
    train.add_argument("--activation", choices=sorted(ACTIVATIONS), nargs="+", default=["relu"],
                       metavar="NAME",
                       help="activation of the hidden layers, or one per hidden layer, "
                            f"among {', '.join(sorted(ACTIVATIONS))} (default: relu)")
    train.add_argument("--loss", choices=CLASS_LOSSES, default=CLASS_LOSSES[0],
                       help="loss: softmax_cross_entropy (softmax outputs), or mse (half the "
                            "squared error to one-hot targets, identity outputs) "
                            f"(default: {CLASS_LOSSES[0]})")
    train.add_argument("--optimizer", choices=list(OPTIMIZERS), default="sgd",
                       help="sgd (with --momentum) or adam (default: sgd)")
    train.add_argument("--momentum", type=_fraction,
                       help="momentum of sgd, from 0 up to 1 (default: 0)")
    train.add_argument("--lr", type=_number(float, 0),
                       help="learning rate (default: " + ", ".join(
                           f"{lr:g} for {name}" for name, lr in DEFAULT_LR.items()) + ")")
    train.add_argument("--dropout", type=_number(float, 0, 1, low_allowed=True,
                                                 name="rate from 0 up to 1"),
                       nargs="+", default=[0.0], metavar="RATE",
                       help="dropout rate of the hidden layers while training, or one per "
                            "hidden layer (default: 0, none)")
    train.add_argument("--input-dropout", type=_number(float, 0, 1, low_allowed=True,
                                                       name="rate from 0 up to 1"),
                       default=0.0, metavar="RATE",
                       help="dropout rate of the inputs while training; the data must be "
                            "dense (default: 0, none)")
    train.add_argument("--clip-norm", type=_number(float, 0), metavar="NORM",
                       help="clip each batch's gradient to this L2 norm where it is larger "
                            "(default: no clipping)")
    train.add_argument("--lr-schedule", choices=["constant", "cosine"], default="constant",
                       help="constant, or cosine annealing from --lr to 0 over --epochs "
                            "(default: constant)")
    train.add_argument("--epochs", type=_positive_int, default=20,
                       help="passes over the training set (default: 20)")
    train.add_argument("--batch-size", type=_batch_size, default=32,
                       help="samples per step, or 'full' for full-batch gradient "
                            "descent (default: 32)")
    train.add_argument("--validation-split", type=_fraction, default=0.0, metavar="FRACTION",
                       help="share of the training set, its last samples, held out and "
                            "evaluated after each epoch (default: 0, none)")
    train.add_argument("--early-stopping", type=_positive_int, metavar="PATIENCE",
                       help="stop when the validation loss has not improved for PATIENCE "
                            "epochs and keep the best epoch's weights; needs "
                            "--validation-split (default: off)")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the initial weights and the shuffling (default: 0)")
    train.add_argument("--threads", type=_threads, default=get_num_threads(), metavar="N",
                       help=f"threads to train with (default: {get_num_threads()}, "
                            "NUMBA_NUM_THREADS)")
    train.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                       help="floating-point type of parameters and data (default: float32)")
    train.add_argument("--model", type=_output(), default="model.npz", metavar="PATH",
                       help="where to save the trained model, read by 'fastmlp evaluate' and "
                            "'fastmlp predict' (default: model.npz)")
    train.add_argument("--history", type=_output(".csv", ".json"), metavar="PATH",
                       help="where to write the metrics of each epoch: a .csv table or a "
                            ".json object of columns epoch, loss, accuracy, and val_loss, "
                            "val_accuracy with --validation-split (default: not written)")
    train.add_argument("--plot", type=_output(), metavar="PATH",
                       help="where to draw the learning curves as a PNG; needs matplotlib "
                            "(default: not drawn)")

    evaluate = commands.add_parser(
        "evaluate", help="report a saved model's loss, accuracy and confusion matrix",
        epilog=FILES, formatter_class=formatter,
        description="Evaluate a saved model on a test set: print its loss and accuracy,\n"
                    "the precision, recall and F1 score of each class, and the confusion\n"
                    "matrix.")
    evaluate.set_defaults(run=_evaluate, parser=evaluate)
    _add_model(evaluate, "to evaluate")
    _add_data(evaluate, "whose test set is evaluated",
              [("--test-file", "test data from files, see below, instead of --data "
                               "(default: none)", "+")])
    evaluate.add_argument("--confusion-png", type=_output(), metavar="PATH",
                          help="where to draw the confusion matrix as a PNG; needs "
                               "matplotlib (default: not drawn)")

    predict = commands.add_parser(
        "predict", help="predict with a saved model",
        description="Predict with a saved model: class labels (the outputs, for an mse "
                    "model), or with --proba the probabilities of each class. Printed one "
                    "sample a line, values separated by commas, or written to --output.")
    predict.set_defaults(run=_predict, parser=predict)
    _add_model(predict, "to predict with")
    _add_data(predict, "whose test inputs are predicted", [
        ("--input", "a .npy of inputs (n, n_features) or images (n, height, width); "
                    "integers are pixels 0..255, divided by 255 (default: the test set of "
                    "--data)", None)])
    predict.add_argument("--proba", action="store_true",
                         help="the probability of each class (the outputs, for an mse "
                              "model) instead of labels (default: off)")
    predict.add_argument("--output", type=_output(".npy", ".csv"), metavar="PATH",
                         help="write the predictions to a .npy or a .csv file instead of "
                              "printing them (default: printed)")

    info = commands.add_parser(
        "info", help="print the CPU, tile, BLAS and threads fastmlp runs with",
        description="Print what fastmlp runs on, as fastmlp.show_config() does: the CPU and "
                    "instruction set Numba compiles for, the matrix-product tile chosen for "
                    "them, the products that go to BLAS, the BLAS libraries and their "
                    "threads, Numba's threading layer and thread counts, the kernel cache "
                    "folder and the libraries' versions.")
    info.set_defaults(run=_info, parser=info)
    return parser


def _check(args):
    """Problems argparse cannot see alone, reported as usage errors."""
    error = args.parser.error
    for option in ("train_file", "test_file"):
        paths = getattr(args, option, None)
        if paths is None:
            continue
        name = "--" + option.replace("_", "-")
        if len(paths) > 2:
            error(f"{name} takes one .npz or .pkl[.gz] file or two files IMAGES LABELS, got "
                  f"{len(paths)}")
        if len(paths) == 1 and not paths[0].lower().endswith((".npz", ".pkl", ".pkl.gz")):
            error(f"{name}: one file must be a .npz or a .pkl[.gz], got {paths[0]!r}; give "
                  "images and labels as two files IMAGES LABELS")
    if args.command == "train":
        if args.momentum is not None and args.optimizer != "sgd":
            error(f"--momentum applies to --optimizer sgd, not {args.optimizer}")
        if args.early_stopping is not None and args.validation_split == 0:
            error("--early-stopping needs a validation set: give --validation-split")


def _inputs(X):
    """Integer inputs (pixels 0..255) scaled to [0, 1]; float inputs as they are."""
    return scale(X) if X.dtype.kind in "iu" else X


def _data_name(args):
    return args.data or DEFAULT_DATA


def _data_set(args):
    """(X, y) of the training and of the test set of --data."""
    try:
        return DATA_SETS[_data_name(args)](download=args.download)
    except FileNotFoundError as error:
        if args.download:
            raise
        raise FileNotFoundError(f"{error} (the option --download)") from None


def _read_files(paths):
    """The sets in the files of --train-file or --test-file: (train, test) from
    a .npz or .pkl, (the set, None) from a pair IMAGES LABELS."""
    if len(paths) == 1:
        (path,) = paths
        if path.lower().endswith(".npz"):
            return load_npz(path)
        train, _, test = load_mnist_pkl(path)
        return train, test
    images, labels = paths
    if images.lower().endswith(".npy") and labels.lower().endswith(".npy"):
        return load_npy(images, labels), None
    return load_idx_pair(images, labels), None


def _test_files(paths):
    """(X, y) of the test set in the files of --test-file."""
    first, test = _read_files(paths)
    return first if test is None else test


def _source(args):
    """What the data comes from, for the first line printed."""
    files = getattr(args, "train_file", None) or getattr(args, "test_file", None)
    return " ".join(files) if files else _data_name(args)


def _need_matplotlib(option):
    """Fail before any work when ``option`` will need matplotlib and it is missing."""
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        raise ImportError(f'{option} needs matplotlib: pip install "fastmlp[plot]"') from None


def _write_history(history, path):
    """The epochs and metrics of ``history`` as a .csv table or a .json object of columns."""
    columns = {"epoch": history.epoch, **history.history}
    with open(path, "w", newline="") as f:
        if path.lower().endswith(".json"):
            json.dump(columns, f, indent=1)
        else:
            writer = csv.writer(f)
            writer.writerow(columns)
            writer.writerows(zip(*columns.values()))


def _silent(*args, **kwargs):
    pass


def _train(args):
    """Train, and under mpiexec or srun train data-parallel over the ranks
    (replicated mode: each reads the same data), rank 0 printing and writing."""
    comm = launched_comm()
    root = comm is None or comm.Get_rank() == 0
    say = print if root else _silent
    if args.plot:
        _need_matplotlib("--plot")
    (X, y), test = _read_files(args.train_file) if args.train_file else _data_set(args)
    if args.test_file:
        test = _test_files(args.test_file)
    X = _inputs(X)
    labels = [y] if test is None else [y, test[1]]
    n_classes = max(int(labels_.max()) for labels_ in labels) + 1
    activation = args.activation[0] if len(args.activation) == 1 else args.activation
    dropout = args.dropout[0] if len(args.dropout) == 1 else args.dropout
    net = MLP((X.shape[1], *args.hidden, n_classes), activation=activation,
              loss=args.loss, dtype=args.dtype, seed=args.seed, dropout=dropout,
              input_dropout=args.input_dropout)
    tested = "no" if test is None else len(test[1])
    say(f"{_source(args)}: {len(y)} training and {tested} test samples; {net}")
    optimizer = (SGD(momentum=args.momentum or 0.0) if args.optimizer == "sgd"
                 else OPTIMIZERS[args.optimizer].type())
    lr = DEFAULT_LR[args.optimizer] if args.lr is None else args.lr
    if args.lr_schedule == "cosine":
        lr = cosine(lr, args.epochs)
    stopper = None if args.early_stopping is None else EarlyStopping(patience=args.early_stopping)
    start = time.perf_counter()
    history = net.fit(X, y, epochs=args.epochs, batch_size=args.batch_size,
                      lr=lr, optimizer=optimizer,
                      validation_split=args.validation_split, callbacks=stopper, verbose=2,
                      n_threads=args.threads, comm=comm, clip_norm=args.clip_norm)
    say(f"trained in {time.perf_counter() - start:.2f} s")
    if not root:
        return 0
    if stopper is not None and stopper.stopped_epoch is not None:
        print(f"stopped early after epoch {stopper.stopped_epoch}: no better val_loss for "
              f"{stopper.patience} epochs; kept the weights of epoch {stopper.best_epoch}")
    net.save(args.model)
    print(f"saved the model to {args.model}")
    if args.history:
        _write_history(history, args.history)
        print(f"wrote the history to {args.history}")
    if args.plot:
        plots.plot_history(history, args.plot)
        print(f"drew the learning curves in {args.plot}")
    if test is not None:
        print(f"test accuracy {net.evaluate(_inputs(test[0]), test[1])[1]:.4f}")
    return 0


def _labels(net, X):
    """The class the model predicts for each row of X: for an mse model, the
    largest output."""
    predicted = net.predict(X)
    return predicted.argmax(axis=1) if predicted.ndim == 2 else predicted


def _evaluate(args):
    if args.confusion_png:
        _need_matplotlib("--confusion-png")
    net = load(args.model)
    X, y = _test_files(args.test_file) if args.test_file else _data_set(args)[1]
    X = _inputs(X)
    loss, accuracy = net.evaluate(X, y)
    predicted = _labels(net, X)
    classes = range(net.sizes[-1])
    print(f"{_source(args)}: {len(y)} test samples; {net}")
    print(f"test loss {loss:.4f}")
    print(f"test accuracy {accuracy:.4f}")
    print()
    print(plots.classification_report(y, predicted, labels=classes))
    print()
    cm = plots.confusion_matrix(y, predicted, n_classes=len(classes))
    print(plots.format_confusion_matrix(cm))
    if args.confusion_png:
        plots.plot_confusion_matrix(cm, args.confusion_png)
        print(f"\ndrew the confusion matrix in {args.confusion_png}")
    return 0


def _write_rows(values, f):
    """One line per sample, its values separated by commas, each in the
    shortest form that reads back exactly."""
    for row in values.reshape(len(values), -1):
        f.write(",".join(map(str, row)) + "\n")


def _predict(args):
    net = load(args.model)
    if args.input:
        X = load_array(args.input, "a .npy of inputs (n, n_features)")
        X = X.reshape(len(X), -1) if X.ndim > 2 else X
    else:
        X = _data_set(args)[1][0]
    X = _inputs(X)
    values = net.predict_proba(X) if args.proba else net.predict(X)
    if args.output is None:
        _write_rows(values, sys.stdout)
        return 0
    if args.output.lower().endswith(".npy"):
        np.save(args.output, values)
    else:
        with open(args.output, "w") as f:
            _write_rows(values, f)
    print(f"wrote {'probabilities' if args.proba else 'predictions'} of shape {values.shape} "
          f"to {args.output}")
    return 0


def _info(args):
    show_config()
    return 0


def _message(error):
    """One line describing ``error``; an OSError names its file."""
    if isinstance(error, OSError) and error.filename is not None and error.strerror:
        return f"{error.filename}: {error.strerror}"
    return str(error)


def main(argv=None):
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit
    status: 0, 1 after an error (one line on stderr), 2 after a usage error."""
    args = build_parser().parse_args(argv)
    _check(args)
    try:
        return args.run(args)
    except (OSError, ValueError, ImportError) as error:
        print(f"fastmlp {args.command}: error: {_message(error)}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(f"fastmlp {args.command}: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
