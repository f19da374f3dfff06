"""Throughput of data-parallel fits over MPI against one process.

    python benchmarks/mpi_scaling.py [--repeats 3] [--samples 20000] [--batch-sizes 128 512 2048]

Trains the 784-256-128-10 relu net (float32, SGD, Fashion-MNIST) for one
epoch of ``--samples`` images per batch size in five set-ups, each a fresh
process (``mpiexec -n R`` from this venv for the ranks), after one untimed
epoch, alternating the set-ups ``--repeats`` times:

    1 process x 1 thread    fit without comm, n_threads=1
    1 rank x 1 thread       fit(comm=MPI.COMM_WORLD) under mpiexec -n 1
    2 ranks x 1 thread      the same under mpiexec -n 2 (replicated mode)
    2 ranks sharded         each rank its half of the rows (rank r every
                            other row from r), batch_size B / 2 per rank:
                            fit(comm=..., sharded=True), global batch B
    1 process x 2 threads   fit without comm, n_threads=2
    2 processes, no comm    the ceiling of 2 ranks: under mpiexec -n 2, each
                            rank fits its half of the rows at batch B / 2
                            without comm (the launcher's communicator only
                            starts and stops the clocks together): the two
                            processes share the machine's caches, memory and
                            cores as the ranks do, and exchange nothing

Prints median samples/s (the slowest rank's epoch time), the speed-up of 2
ranks over 1 rank in each mode (the median of the repeats' paired ratios),
and the communication share of the 2-rank step: seconds in the gradients'
Allreduce over the epoch's seconds (rank 0's; waiting for a slower rank
counts as Allreduce), then the median time of one Allreduce between the 2
ranks of the net's parameters alone, and of one number.
"""

import argparse
import json
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = (784, 256, 128, 10)
# (ranks, threads, sharded)
SETUPS = {"1 process x 1 thread": (0, 1, False), "1 rank x 1 thread": (1, 1, False),
          "2 ranks x 1 thread": (2, 1, False), "2 ranks sharded": (2, 1, True),
          "1 process x 2 threads": (0, 2, False), "2 processes, no comm": (2, 1, None)}


def worker(args):
    """One set-up: prints a JSON line {batch: [samples/s, Allreduce share]} (rank 0)."""
    import fastmlp
    from fastmlp.datasets import load_fashion_mnist
    comm = None
    if args.ranks:
        from mpi4py import MPI
        comm = MPI.COMM_WORLD
    (X, y), _ = load_fashion_mnist()
    X, y = X[:args.samples] / np.float32(255), y[:args.samples]
    size = 1 if args.mode == "replicated" else args.ranks
    if size > 1:  # each rank its rows
        X, y = np.ascontiguousarray(X[comm.Get_rank()::size]), y[comm.Get_rank()::size]
    fit_comm = None if args.mode == "independent" else comm
    n_params = fastmlp.MLP(SIZES).params.size + 1  # the gradient and its weight
    results = {"allreduce": [allreduce_seconds(comm, n) if comm is not None else 0.0
                             for n in (n_params, 1)]}
    for batch_size in args.batch_sizes:
        def epoch(n, batch_size=batch_size):
            net = fastmlp.MLP(SIZES, "relu", seed=0)
            if comm is not None:
                comm.Barrier()
            started = time.perf_counter()
            net.fit(X[:n], y[:n], epochs=1, batch_size=batch_size // size, lr=0.01, verbose=0,
                    n_threads=args.threads, comm=fit_comm, sharded=args.mode == "sharded")
            seconds = time.perf_counter() - started
            if comm is None:
                return seconds, 0.0
            share = net._trainer.allreduce_seconds / seconds
            return comm.allreduce(seconds, op=MPI.MAX), share
        epoch(4 * batch_size)  # compile or load, warm up the threads
        seconds, share = epoch(len(y))
        results[batch_size] = (len(y) * size / seconds, share)
    if comm is None or comm.Get_rank() == 0:
        print(json.dumps(results), flush=True)


def allreduce_seconds(comm, n, repeats=200):
    """Median seconds of an Allreduce of n float32 over ``comm`` into another
    buffer, as fit makes it, its ranks released together by a Barrier."""
    from mpi4py import MPI
    buffer, total = np.ones(n, np.float32), np.empty(n, np.float32)
    times = []
    for _ in range(repeats):
        comm.Barrier()
        started = time.perf_counter()
        comm.Allreduce(buffer, total, op=MPI.SUM)
        times.append(time.perf_counter() - started)
    return float(np.median(times))


def run(setup, args):
    ranks, n_threads, sharded = SETUPS[setup]
    command = [sys.executable, __file__, "--worker", "--ranks", str(ranks), "--threads",
               str(n_threads), "--samples", str(args.samples), "--batch-sizes",
               *map(str, args.batch_sizes), "--mode",
               {True: "sharded", False: "replicated", None: "independent"}[sharded]]
    if ranks:
        command = [str(Path(sys.executable).parent / "mpiexec"), "-n", str(ranks), *command]
    out = subprocess.run(command, capture_output=True, text=True, check=True).stdout
    return {int(b) if b.isdigit() else b: r for b, r in json.loads(out.splitlines()[-1]).items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512, 2048])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--ranks", type=int, default=0, help=argparse.SUPPRESS)
    parser.add_argument("--threads", type=int, default=1, help=argparse.SUPPRESS)
    parser.add_argument("--mode", default="replicated", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    runs = {setup: [] for setup in SETUPS}
    for _ in range(args.repeats):
        for setup in SETUPS:
            time.sleep(1)  # an idle pause before each set-up
            runs[setup].append(run(setup, args))
    print(f"samples/s, median of {args.repeats}; {args.samples} samples per epoch")
    modes = ("2 ranks x 1 thread", "2 ranks sharded", "2 processes, no comm")
    print("| batch | " + " | ".join(SETUPS) + " | 2 ranks / 1 rank, replicated | sharded "
          "| ceiling (no comm) | Allreduce share, replicated | sharded |")
    print("|---" * (len(SETUPS) + 6) + "|")
    for b in args.batch_sizes:
        rate = {s: np.median([r[b][0] for r in runs[s]]) for s in SETUPS}
        speedup = [np.median([two[b][0] / one[b][0] for two, one in
                              zip(runs[mode], runs["1 rank x 1 thread"])]) for mode in modes]
        share = [np.median([r[b][1] for r in runs[mode]]) for mode in modes[:2]]
        print(f"| {b} | " + " | ".join(f"{rate[s]:,.0f}" for s in SETUPS)
              + "".join(f" | {x:.2f}x" for x in speedup)
              + "".join(f" | {x:.1%}" for x in share) + " |", flush=True)
    params, one = np.median([r["allreduce"] for r in runs["2 ranks x 1 thread"]], axis=0)
    print(f"One Allreduce between 2 ranks, median: {params * 1e6:.0f} us of the net's float32 "
          f"parameters, {one * 1e6:.0f} us of one float32")


if __name__ == "__main__":
    main()
