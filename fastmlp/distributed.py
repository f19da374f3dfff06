"""Synchronous data-parallel training over MPI: ``MLP.fit(..., comm=comm)``.

Replicated mode: every rank passes the same X and y and draws the same
permutation; batch i of ``batch_size`` samples is cut into one run of
ceil(m / ranks) samples per rank (rank r takes run r), each rank writes its
run's part of the gradient of the batch's mean loss, one ``Allreduce`` adds
the parts, and every rank makes the same update. The result is the
one-process fit with the same batch size and seed, up to the order of the
sums.

What the ranks agree on, and how (``Ranks``):

- at the start, the data: every rank's shape and dtype (or its error) is
  gathered, and a disagreement or an error on any rank raises on all of them,
  naming the ranks; then rank 0's parameters, optimizer state and generator
  state are broadcast;
- after each compiled chunk of batches: the loss sum, the count of correct
  rows, whether the loss or the parameters stopped being finite, whether
  Ctrl-C arrived, and the chunk length (one small ``Allreduce``), so
  divergence and interruption stop every rank after the same batch;
- after each epoch: callbacks run on rank 0 only (its progress, history
  printing, checkpoints and saving), their stop decision or error is
  broadcast, and so are rank 0's parameters, which a callback may have
  changed (EarlyStopping's restore_best_weights does).

mpi4py is imported when a communicator is first given (``pip install
'fastmlp[mpi]'``).
"""

import functools
import os
import time

import numpy as np

from .kernels import gradient, n_rows, optimizer_update, update_block
from .kernels._jit import cast_like, kernel
from .kernels.network import batch_mass, batch_run
from .kernels.optim import without_l2

INSTALL = "pip install 'fastmlp[mpi]'"
# Environment variables giving the number of ranks a launcher started: PMI's
# (MPICH's mpiexec, Slurm's srun --mpi=pmi2) and Open MPI's mpirun's.
LAUNCHED_SIZE = ("PMI_SIZE", "OMPI_COMM_WORLD_SIZE")


def mpi():
    """mpi4py's MPI module, or an ImportError saying how to install it."""
    try:
        from mpi4py import MPI
    except ImportError as error:
        raise ImportError(f"training over MPI (comm=...) needs mpi4py and an MPI: {INSTALL}") \
            from error
    return MPI


def launched_comm():
    """MPI's COMM_WORLD when a launcher (mpiexec, srun) started this process as
    one of several ranks, else None; mpi4py is imported only then."""
    sizes = [os.environ.get(name, "") for name in LAUNCHED_SIZE]
    if not any(size.isdigit() and int(size) > 1 for size in sizes):
        return None
    return mpi().COMM_WORLD


class OneProcess:
    """The ranks of a fit without a communicator: itself alone, agreeing with
    itself at no cost."""
    size, rank, root = 1, 0, True
    allreduce_seconds = 0.0

    def start(self, prepare):
        prepare()

    def synchronise(self, *shared):
        pass

    def broadcast(self, params):
        pass

    def agree(self, values):
        return values

    def on_root(self, function, *args):
        return function(*args)


class Ranks:
    """The ranks of ``comm`` (an mpi4py communicator) training one model.

    ``allreduce_seconds`` adds up the time spent in the gradients' Allreduce.
    """

    def __init__(self, comm):
        self.MPI = mpi()
        self.comm = comm
        self.size = comm.Get_size()
        self.rank = comm.Get_rank()
        self.root = self.rank == 0
        self.allreduce_seconds = 0.0

    def start(self, prepare):
        """Run ``prepare()``, which validates this rank's data and returns a
        description of it (shapes, dtype); raise on every rank when it raised
        on any or when the descriptions differ, naming the ranks."""
        try:
            outcome = ("ok", prepare())
        except Exception as error:  # noqa: BLE001 (raised below on every rank)
            outcome = ("error", f"{type(error).__name__}: {error}")
            failed = error
        outcomes = self.comm.allgather(outcome)
        errors = {rank: text for rank, (kind, text) in enumerate(outcomes) if kind == "error"}
        if errors:
            if self.rank in errors:
                raise failed
            raise RuntimeError("the fit failed on rank(s) " + "; ".join(
                f"{rank}: {text}" for rank, text in errors.items()))
        groups = {}
        for rank, (_, text) in enumerate(outcomes):
            groups.setdefault(text, []).append(rank)
        if len(groups) > 1:
            raise ValueError("the ranks' data disagree (replicated mode needs the same X and y "
                             "on every rank): " + "; ".join(
                                 f"rank(s) {', '.join(map(str, ranks))} have {text}"
                                 for text, ranks in groups.items()))

    def synchronise(self, params, state, rng):
        """Give params (n_params,), the optimizer state (2, n_params) and the
        generator ``rng`` rank 0's values, in place."""
        self.broadcast(params)
        self.comm.Bcast(state, root=0)
        rng.bit_generator.state = self.comm.bcast(rng.bit_generator.state, root=0)

    def broadcast(self, params):
        """Overwrite params (n_params,) with rank 0's, in place."""
        self.comm.Bcast(params, root=0)

    def sum(self, buffer):
        """buffer = its sum over the ranks, in place."""
        started = time.perf_counter()
        self.comm.Allreduce(self.MPI.IN_PLACE, buffer, op=self.MPI.SUM)
        self.allreduce_seconds += time.perf_counter() - started

    def agree(self, values):
        """The sums over the ranks of a few float64 ``values`` (a sequence)."""
        total = np.array(values, dtype=np.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, total, op=self.MPI.SUM)
        return total

    def on_root(self, function, *args):
        """``function(*args)`` run on rank 0 only; its result, or its error,
        reaches every rank (rank 0 raises its own exception, the others a
        RuntimeError quoting it)."""
        outcome, failed = None, None
        if self.root:
            try:
                outcome = ("ok", function(*args))
            except Exception as error:  # noqa: BLE001 (raised below on every rank)
                failed = error
                outcome = ("error", f"{type(error).__name__}: {error}")
        kind, value = self.comm.bcast(outcome, root=0)
        if kind == "error":
            if failed is not None:
                raise failed
            raise RuntimeError(f"the fit failed on rank 0: {value}")
        return value


@functools.cache
def step_kernels(loss, rule):
    """(share_gradient, update) compiled for one loss and one optimizer rule
    (closure constants, as in ``kernels.batch_trainer``): the two halves of a
    replicated step, with the Allreduce between them."""

    def share_gradient(grads, work, rows, params, sizes, hidden, output, X, T, weights, order,
                       gather, batch, i, rank, ranks):
        """This rank's part of the gradient of batch i's mean loss, into grads
        (n_params,); zero when its run is empty.

        Batch i holds ``order[i * batch:(i + 1) * batch]`` (the last may be
        short); its m samples are cut into runs of ceil(m / ranks), at most
        ``rows``, and rank ``rank`` takes its run as ``train_batches`` takes
        a shard (``gather``, X dense or SparseRows in the epoch's order).
        The batch's mean is over all its m samples (weighted when ``weights``
        (n,) is given). Returns (this run's loss sum, times the weights when
        weighted; its n_correct).
        """
        n = n_rows(X)
        s = i * batch
        m = min(s + batch, n) - s
        mass = batch_mass(weights, order, s, m)
        scale = 1.0 / mass if mass > 0 else 0.0
        size = (m + ranks - 1) // ranks
        a = min(s + rank * size, s + m)
        b = min(a + size, s + m)
        if a == b:
            grads[:] = 0
            return 0.0, 0
        Xb, Tb, wb = batch_run(work, sizes, rows, X, T, weights, order, gather, a, b)
        one, zero = cast_like(params, 1.0), cast_like(params, 0.0)
        value, correct = gradient(grads, work, rows, params, sizes, hidden, output, loss, Xb, Tb,
                                  scale, one, zero, zero, wb)
        return value * mass, correct

    def update(params, state, grads, sizes, hyper, step):
        """Update number ``step`` of params (n_params,) from the summed
        gradient grads (1, n_params), in the blocks of ``update_block`` (L2
        on the weights only), as ``train_batches`` does."""
        bias_hyper = without_l2(params, hyper)
        for block in range(update_block(sizes, -1)[0]):
            start, stop, is_weights = update_block(sizes, block)
            optimizer_update(params, state, grads, rule, hyper if is_weights else bias_hyper,
                             step, start, stop)

    return kernel(share_gradient), kernel(update)
