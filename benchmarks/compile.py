"""What a user waits for before training starts: import, compile, cache.

    python benchmarks/compile.py [--repeats 3]

Each measurement runs in a fresh process with a fresh, empty NUMBA_CACHE_DIR
(a temporary folder), then once more with that folder filled, on the digits
shipped with fastmlp (1,437 training images, 64 features):

- ``import fastmlp``;
- the first ``MLP((64, 100, 10)).fit`` (SGD, one epoch) of a new process;
- a second variant in the same process (Adam after SGD, then mse after
  softmax cross-entropy);
- the first ``MLPClassifier().fit`` (Adam, softmax, max_iter=1);
- each of these again from the filled cache.

Prints the median seconds of ``--repeats`` runs of each.
"""

import argparse
import json
import os
import subprocess
import sys
import tempfile

import numpy as np

# One fresh process: times each step and prints them as JSON.
WORKER = """
import json, sys, time, warnings
warnings.simplefilter("ignore")
started = time.perf_counter()
import fastmlp
times = {"import fastmlp": time.perf_counter() - started}
from fastmlp.datasets import load_digits
(X, y), _ = load_digits()


def timed(name, fit):
    started = time.perf_counter()
    fit()
    times[name] = time.perf_counter() - started


if sys.argv[1] == "mlp":
    timed("MLP.fit, sgd", lambda: fastmlp.MLP((64, 100, 10), seed=0).fit(
        X, y, epochs=1, verbose=0))
    timed("then adam", lambda: fastmlp.MLP((64, 100, 10), seed=0).fit(
        X, y, epochs=1, optimizer="adam", verbose=0))
    timed("then mse", lambda: fastmlp.MLP((64, 100, 10), loss="mse", seed=0).fit(
        X, y, epochs=1, verbose=0))
else:
    timed("MLPClassifier().fit, adam", lambda: fastmlp.MLPClassifier(max_iter=1).fit(X, y))
print(json.dumps(times))
"""


def run(kind, cache_dir):
    env = dict(os.environ, NUMBA_CACHE_DIR=cache_dir)
    out = subprocess.run([sys.executable, "-c", WORKER, kind], env=env, check=True,
                         capture_output=True, text=True).stdout
    return json.loads(out.splitlines()[-1])


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    seconds = {}
    for _ in range(args.repeats):
        for kind in ("mlp", "classifier"):
            with tempfile.TemporaryDirectory() as cache_dir:
                for cache in ("fresh cache", "from cache"):
                    for name, value in run(kind, cache_dir).items():
                        seconds.setdefault((name, cache), []).append(value)
    print("| step | fresh cache | from cache |\n|---|---|---|")
    for name in dict.fromkeys(name for name, _ in seconds):
        fresh, cached = (np.median(seconds[name, cache]) for cache in ("fresh cache",
                                                                       "from cache"))
        print(f"| {name} | {fresh:.2f} s | {cached:.2f} s |")


if __name__ == "__main__":
    main()
