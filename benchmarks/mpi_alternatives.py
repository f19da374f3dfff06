"""The Allreduce of a data-parallel step, against the alternatives issue 12 names.

    python benchmarks/mpi_alternatives.py [--repeats 5] [--samples 20000] [--batch-sizes 128 512]

Each repeat launches ``mpiexec -n 2`` (one thread per rank) of this script
twice, once as is and once with ``MPICH_ASYNC_PROGRESS=1`` (MPICH's progress
thread), after an idle pause. On the 784-256-128-10 relu net (float32, plain
SGD, Fashion-MNIST scaled to [0, 1]) the ranks time, alternating, one epoch of
``--samples`` images after an untimed one, for each batch size:

    python loop   fastmlp's replicated step: per minibatch, a compiled call for
                  this rank's gradient, mpi4py's Allreduce, a compiled update
                  (``Trainer.epoch`` over ``fastmlp.distributed.Ranks``)
    numba-mpi     the same kernels and the Allreduce in one compiled loop over
                  the whole epoch (numba-mpi calls MPI from compiled code): no
                  return to Python between minibatches

and, to see whether an Allreduce can overlap with computation at all here,
the time of one minibatch's gradient (this rank's half) and of one Allreduce
of the net's parameters (into another buffer, as fastmlp does, and in
place), run in sequence and overlapped (``Iallreduce``, the gradient,
``Wait``), medians of 50 each.

Prints medians over the repeats (the slowest rank's epoch), and the ratio of
the paired epoch times.
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

SIZES = (784, 256, 128, 10)


def compiled_epoch(run_gradient, update):
    """A compiled epoch of the replicated step with numba-mpi's Allreduce."""
    import numba
    import numba_mpi
    from mpi4py import MPI

    # numba-mpi 1.3.1 maps no dtype to MPI_FLOAT: its table's "float" key is
    # NumPy's float64, which its "double" key then overwrites. Add float32.
    numba_mpi.common._MPI_DTYPES.setdefault(np.dtype(np.float32), MPI._addressof(MPI.FLOAT))

    @numba.njit
    def epoch(flat, grads, total, summed, work, rows, params, state, sizes, hidden, output, X,
              T, order, batch, rank, size, hyper):
        """flat (n_params + 1,) with grads (n_params,) its view, and total
        (n_params + 1,) with summed (1, n_params) its view."""
        n = X.shape[0]
        loss = 0.0
        for i in range((n + batch - 1) // batch):
            s = i * batch
            m = min(s + batch, n) - s
            run = (m + size - 1) // size
            a = min(s + rank * run, s + m)
            value, _, _ = run_gradient(grads, work, rows, params, sizes, hidden, output,
                                       X, T, None, order, True, a, min(a + run, s + m), 1.0 / m)
            numba_mpi.allreduce(flat, total)
            update(params, state, summed, 1.0, sizes, hyper, i + 1)
            loss += value
        return loss
    return epoch


def worker(args):
    from mpi4py import MPI

    from fastmlp.datasets import load_fashion_mnist

    comm = MPI.COMM_WORLD
    (X, y), _ = load_fashion_mnist()
    X, y = np.ascontiguousarray(X[:args.samples] / np.float32(255)), y[:args.samples]
    results = {batch: time_batch(comm, MPI, X, y, batch, args.epochs)
               for batch in args.batch_sizes}
    if comm.Get_rank() == 0:
        print(json.dumps(results), flush=True)


def time_batch(comm, MPI, X, y, batch, epochs):
    """Seconds of an epoch at ``batch`` by each step (medians of ``epochs``),
    and the overlap measurements."""
    import fastmlp
    from fastmlp import kernels
    from fastmlp.distributed import Ranks, step_kernels
    from fastmlp.trainer import Trainer

    rank, size = comm.Get_rank(), comm.Get_size()
    net = fastmlp.MLP(SIZES, "relu", seed=0)
    trainer = Trainer(net, X, y, batch_size=batch, seed=0, n_threads=1, ranks=Ranks(comm))
    hidden, output, loss = net._codes
    run_gradient, update = step_kernels(loss, fastmlp.SGD().rule)
    epoch = compiled_epoch(run_gradient, update)
    rows = -(-batch // size)
    work = np.empty(kernels.work_size(net._sizes, rows, True), net.dtype)
    flat = np.zeros(net.params.size + 1, net.dtype)
    total = np.zeros_like(flat)
    hyper = tuple(net.dtype.type(h) for h in fastmlp.SGD().hyper(0.01))
    state = np.zeros((2, net.params.size), net.dtype)

    def python_loop():
        trainer.epoch(0.01)

    def numba_mpi():
        order = trainer.rng.permutation(len(y))
        epoch(flat, flat[:-1], total, total[:-1].reshape(1, -1), work, rows, net.params,
              state, net._sizes, hidden, output, X, trainer.T, order, batch, rank, size, hyper)

    times = {"python loop": [], "numba-mpi": []}
    with trainer.running():
        for _ in range(epochs):
            for name, run in (("python loop", python_loop), ("numba-mpi", numba_mpi)):
                run()  # untimed: compiles, warms the caches
                comm.Barrier()
                started = time.perf_counter()
                run()
                times[name].append(comm.allreduce(time.perf_counter() - started, op=MPI.MAX))
        results = {name: float(np.median(t)) for name, t in times.items()}
        results.update(overlap(comm, MPI, run_gradient, work, rows, net, X, trainer.T, batch))
    return results


def overlap(comm, MPI, run_gradient, work, rows, net, X, T, batch, repeats=50):
    """Median seconds of this rank's gradient of one minibatch alone, of one
    Allreduce of the parameters alone (into another buffer, as fastmlp does,
    and in place), of both in sequence and of both overlapped (Iallreduce,
    gradient, Wait)."""
    hidden, output, _ = net._codes
    order = np.arange(len(X))
    grads = np.empty_like(net.params)
    buffer = np.ones(net.params.size + 1, net.dtype)
    received = np.empty_like(buffer)
    run = -(-batch // comm.Get_size())

    def gradient():
        run_gradient(grads, work, rows, net.params, net._sizes, hidden, output, X, T, None,
                     order, True, 0, run, 1.0 / batch)

    def allreduce():
        comm.Allreduce(buffer, received, op=MPI.SUM)

    def allreduce_in_place():
        comm.Allreduce(MPI.IN_PLACE, received, op=MPI.SUM)

    def sequence():
        allreduce()
        gradient()

    def overlapped():
        request = comm.Iallreduce(buffer, received, op=MPI.SUM)
        gradient()
        request.Wait()

    seconds = {}
    for name, step in (("gradient", gradient), ("allreduce", allreduce),
                       ("allreduce in place", allreduce_in_place), ("sequence", sequence),
                       ("overlapped", overlapped)):
        step()
        times = []
        for _ in range(repeats):
            comm.Barrier()
            started = time.perf_counter()
            step()
            times.append(time.perf_counter() - started)
        seconds[name] = float(np.median(comm.allgather(float(np.median(times)))))
    return seconds


def launch(args, progress_thread):
    env = dict(os.environ, NUMBA_NUM_THREADS="1")
    if progress_thread:
        env["MPICH_ASYNC_PROGRESS"] = "1"
    command = [str(Path(sys.executable).parent / "mpiexec"), "-n", "2", sys.executable,
               __file__, "--worker", "--samples", str(args.samples), "--epochs", "1",
               "--batch-sizes", *map(str, args.batch_sizes)]
    out = subprocess.run(command, capture_output=True, text=True, check=True, env=env).stdout
    return {int(b): r for b, r in json.loads(out.splitlines()[-1]).items()}


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--samples", type=int, default=20000)
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[128, 512])
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--epochs", type=int, default=1, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        return worker(args)
    runs = {False: [], True: []}
    for _ in range(args.repeats):
        for progress_thread in runs:
            time.sleep(1)
            runs[progress_thread].append(launch(args, progress_thread))
    print(f"2 ranks x 1 thread, {args.samples} samples per epoch, medians of {args.repeats}")
    print("| batch | MPICH progress thread | python loop samples/s | numba-mpi samples/s | "
          "numba-mpi / python loop | gradient | Allreduce | Allreduce in place | in sequence "
          "| overlapped |")
    print("|---" * 10 + "|")
    for b in args.batch_sizes:
        for progress_thread, results in runs.items():
            def median(key, results=results, b=b):
                return np.median([r[b][key] for r in results])
            ratio = np.median([r[b]["python loop"] / r[b]["numba-mpi"] for r in results])
            print(f"| {b} | {'on' if progress_thread else 'off'} "
                  f"| {args.samples / median('python loop'):,.0f} "
                  f"| {args.samples / median('numba-mpi'):,.0f} | {ratio:.2f}x "
                  + "".join(f"| {median(k) * 1e6:,.0f} us " for k in
                            ("gradient", "allreduce", "allreduce in place", "sequence",
                             "overlapped")) + "|",
                  flush=True)


if __name__ == "__main__":
    main()
