"""fastmlp's matrix products against NumPy's BLAS at the training step's shapes.

    python benchmarks/gemm.py [--batch-sizes 16 128 512] [--threads 1 2] [--cpu avx2]

For the 784-256-128-10 net at batch B, float32: every product of a training
step (forward X @ W, dW = X.T @ dZ, and dX = dZ @ W.T for every layer but the
first), timed alone, medians of many calls, with ``fastmlp.kernels.gemm`` on
n of Numba's threads and with ``numpy.matmul`` on n of OpenBLAS's threads
(threadpoolctl). Prints GFLOP/s of each and of the whole step, after a line
of what fastmlp runs on (fastmlp.config.header: the BLAS libraries too, with
the kernels they chose). ``--cpu KEY`` runs
both on instruction set KEY (compare.py's option; the script runs itself again
with the environment that sets it).
"""

import argparse
import os
import sys
import time

from benchmarks.common import apply_environment, isa_environment


def cpu_option():
    """--cpu's value, read before Numba is imported (it reads the variables once)."""
    parser = argparse.ArgumentParser(add_help=False)
    parser.add_argument("--cpu")
    return parser.parse_known_args()[0].cpu


if __name__ == "__main__":
    CPU = cpu_option()
    if os.environ.get("GEMM_BENCH_CPU") != str(CPU):
        apply_environment(isa_environment(CPU) | {"GEMM_BENCH_CPU": str(CPU)})
        os.execv(sys.executable, [sys.executable] + sys.argv)

import numba  # noqa: E402
import numpy as np  # noqa: E402
import scipy.linalg.cython_blas  # noqa: E402, F401  SciPy's BLAS, which fastmlp calls
from threadpoolctl import threadpool_limits  # noqa: E402

from fastmlp.config import header  # noqa: E402
from fastmlp.kernels import gemm  # noqa: E402

SIZES = (784, 256, 128, 10)


def products(batch, rng):
    """[(name, C, A, B)] of one step: C = A @ B, A and B C-contiguous or transposed."""
    out = []
    for l, (fan_in, fan_out) in enumerate(zip(SIZES, SIZES[1:])):
        X = rng.random((batch, fan_in), dtype=np.float32)
        W = rng.random((fan_in, fan_out), dtype=np.float32)
        dZ = rng.random((batch, fan_out), dtype=np.float32)
        out.append((f"X{l} @ W{l}", np.empty((batch, fan_out), np.float32), X, W))
        out.append((f"X{l}.T @ dZ{l}", np.empty((fan_in, fan_out), np.float32), X.T, dZ))
        if l:
            out.append((f"dZ{l} @ W{l}.T", np.empty((batch, fan_in), np.float32), dZ, W.T))
    return out


def median_seconds(call, repeats=300):
    call()
    times = np.empty(repeats)
    for r in range(repeats):
        started = time.perf_counter()
        call()
        times[r] = time.perf_counter() - started
    return np.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--batch-sizes", type=int, nargs="+", default=[16, 128, 512])
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--cpu", metavar="KEY",
                        help="run the code of this instruction set (avx2, generic)")
    args = parser.parse_args()
    print(header())  # the BLAS libraries too, with the kernels they chose
    print("GFLOP/s, medians")
    print("| batch | threads | product | fastmlp | NumPy |\n|---|---|---|---:|---:|")
    rng = np.random.default_rng(0)
    for batch in args.batch_sizes:
        step = products(batch, rng)
        for threads in args.threads:
            numba.set_num_threads(threads)
            totals = [0.0, 0.0]
            for name, C, A, B in step:
                flops = 2 * C.size * A.shape[1]
                with threadpool_limits(1, user_api="blas"):  # BLAS under Numba's threads
                    ours = median_seconds(lambda: gemm(C, A, B, 1.0, 0.0))
                with threadpool_limits(threads, user_api="blas"):
                    seconds = [ours, median_seconds(lambda: np.matmul(A, B, out=C))]
                totals = [t + s for t, s in zip(totals, seconds)]
                print(f"| {batch} | {threads} | {name} | {flops / seconds[0] / 1e9:.0f} | "
                      f"{flops / seconds[1] / 1e9:.0f} |")
            flops = sum(2 * C.size * A.shape[1] for _, C, A, _ in step)
            print(f"| {batch} | {threads} | whole step | {flops / totals[0] / 1e9:.0f} | "
                  f"{flops / totals[1] / 1e9:.0f} |")


if __name__ == "__main__":
    main()
