"""Command line: ``python -m fastmlp train`` (also the ``fastmlp`` script)."""

import argparse
import math
import sys
import time

import numpy as np

from . import MLP
from .datasets import load_digits, load_fashion_mnist
from .model import ACTIVATIONS, DTYPES


def _load(name):
    """Train and test sets of the named data set, X float32 in [0, 1]."""
    if name == "digits":
        return load_digits()
    (X, y), (X_test, y_test) = load_fashion_mnist()
    return (X / np.float32(255), y), (X_test / np.float32(255), y_test)


def _positive(kind):
    """An argparse type: a finite number of ``kind`` (int or float) above zero."""
    def convert(text):
        try:
            value = kind(text)
        except ValueError:
            value = None
        if value is None or not 0 < value < math.inf:
            raise argparse.ArgumentTypeError(f"expected a positive {kind.__name__}, got {text!r}")
        return value
    return convert


def _batch_size(text):
    """An argparse type: a positive integer, or "full" (None) for full-batch descent."""
    return None if text == "full" else _positive(int)(text)


def build_parser():
    parser = argparse.ArgumentParser(prog="fastmlp", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    train = commands.add_parser("train", help="train an MLP and report its test accuracy",
                                description="Train an MLP by minibatch SGD, print a line "
                                            "per epoch and the final test accuracy.")
    train.add_argument("--data", choices=["digits", "fashion-mnist"], default="digits",
                       help="data set: the digits shipped in the package (default) or "
                            "Fashion-MNIST from $FASTMLP_DATA, ~/.cache/fastmlp or "
                            "/usr/share/datasets")
    train.add_argument("--hidden", type=_positive(int), nargs="*", default=[64],
                       metavar="WIDTH", help="hidden layer widths, none for a linear "
                                             "softmax classifier (default: 64)")
    train.add_argument("--activation", choices=sorted(ACTIVATIONS), default="relu",
                       help="activation of the hidden layers (default: relu)")
    train.add_argument("--epochs", type=_positive(int), default=20,
                       help="passes over the training set (default: 20)")
    train.add_argument("--batch-size", type=_batch_size, default=32,
                       help="samples per SGD step, or 'full' for full-batch gradient "
                            "descent (default: 32)")
    train.add_argument("--lr", type=_positive(float), default=0.1,
                       help="learning rate (default: 0.1)")
    train.add_argument("--seed", type=int, default=0,
                       help="seed of the initial weights and the shuffling (default: 0)")
    train.add_argument("--dtype", choices=sorted(DTYPES), default="float32",
                       help="floating-point type of parameters and data (default: float32)")
    return parser


def main(argv=None):
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        (X, y), (X_test, y_test) = _load(args.data)
    except FileNotFoundError as error:
        print(f"fastmlp: {error}", file=sys.stderr)
        return 1
    net = MLP((X.shape[1], *args.hidden, 10), activation=args.activation,
              dtype=args.dtype, seed=args.seed)
    print(f"{args.data}: {len(y)} training and {len(y_test)} test samples; {net}")
    start = time.perf_counter()
    net.fit(X, y, epochs=args.epochs, batch_size=args.batch_size, lr=args.lr, verbose=2)
    print(f"trained in {time.perf_counter() - start:.2f} s")
    print(f"test accuracy {net.evaluate(X_test, y_test)[1]:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
