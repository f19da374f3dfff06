"""Synchronous data-parallel training over MPI: ``MLP.fit(..., comm=comm)``.

Every step, each rank writes the gradient sum of its run of samples and their
total weight into one flat buffer, one ``Allreduce`` adds the buffers, and
every rank makes the same update from the mean, so the parameters stay the
same on every rank. The two data modes differ in whose samples make a step:

- replicated (the default): every rank passes the same X and y and draws the
  same permutation; batch i of ``batch_size`` samples is cut into one run of
  ceil(m / ranks) samples per rank (rank r takes run r). The result is the
  one-process fit with the same batch size and seed, up to the order of the
  sums.
- sharded (``sharded=True``): each rank passes its own rows and shuffles them
  with its own generator (rank 0's seed, spawned per rank); step i is the
  union of every rank's batch i of ``batch_size`` samples. Every rank runs
  the steps of the rank with the most batches, and a rank whose batches are
  used up pads: it adds an empty run (no samples, zero weight) until the
  epoch ends. So each sample counts once per epoch, and the last steps of an
  epoch are smaller when the ranks hold different numbers of rows. Epoch
  metrics and validation are pooled over the ranks.

What the ranks agree on, and how (``Ranks``):

- at the start, the data: every rank's description of its data (shape, dtype,
  rows in replicated mode) or its error is gathered, and a disagreement or an
  error on any rank raises on all of them, naming the ranks; then rank 0's
  parameters, optimizer state and generator state are broadcast;
- after each compiled chunk of batches: the loss sum, the count of correct
  rows, whether the loss or the parameters stopped being finite, whether
  Ctrl-C arrived, and the chunk length (one small ``Allreduce``), so
  divergence and interruption stop every rank after the same batch. An
  exception inside a chunk, where the other ranks wait in an Allreduce, is
  printed and ends every rank through ``comm.Abort``;
- after each epoch: callbacks run on rank 0 only (its progress, history
  printing, checkpoints and saving), their stop decision or error is
  broadcast, and so are rank 0's parameters, which a callback may have
  changed (EarlyStopping's restore_best_weights does).

mpi4py is imported when a communicator is first given (``pip install
'fastmlp[mpi]'``).
"""

import contextlib
import functools
import os
import sys
import time
import traceback

import numpy as np

from .kernels import clip_gradient, gradient, optimizer_update, update_block
from .kernels._jit import cast_like, kernel
from .kernels.network import batch_mass, batch_run, drop_inputs
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


def ranks_of(comm, sharded=False):
    """The ranks of a fit: ``Ranks(comm, sharded)``, or ONE_PROCESS without comm."""
    if comm is None:
        if sharded:
            raise ValueError("sharded=True trains on each rank's own rows: it needs comm")
        return ONE_PROCESS
    return Ranks(comm, sharded)


class OneProcess:
    """The ranks of a fit without a communicator: itself alone, agreeing with
    itself at no cost."""
    size, rank, root, sharded = 1, 0, True, False
    allreduce_seconds = 0.0

    def start(self, prepare):
        return prepare()

    def synchronise(self, params, state, rng):
        return rng

    def broadcast(self, params):
        pass

    def agree(self, values):
        return np.array(values, dtype=np.float64)

    pooled = agree

    def gathered(self, array):
        return array

    def shared(self, value):
        return value

    def on_root(self, function, *args):
        return function(*args)

    @contextlib.contextmanager
    def fatal(self):
        yield


ONE_PROCESS = OneProcess()


class Ranks:
    """The ranks of ``comm`` (an mpi4py communicator) training one model, in
    replicated or ``sharded`` mode (see the module's docstring).

    ``allreduce_seconds`` adds up the time spent in the gradients' Allreduce.
    """

    def __init__(self, comm, sharded=False):
        self.MPI = mpi()
        self.comm = comm
        self.sharded = sharded
        self.size = comm.Get_size()
        self.rank = comm.Get_rank()
        self.root = self.rank == 0
        self.allreduce_seconds = 0.0

    def start(self, prepare):
        """Run ``prepare()``, which validates this rank's data and returns a
        description of what the ranks must share (shapes, dtype, and the rows
        in replicated mode); raise on every rank when it raised on any or
        when the descriptions differ, naming the ranks. Returns the description."""
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
            needs = ("the same columns, dtype and settings on every rank" if self.sharded
                     else "the same X and y on every rank, or sharded=True")
            raise ValueError(f"the ranks' data disagree (needs {needs}): " + "; ".join(
                f"rank(s) {', '.join(map(str, ranks))} have {text}"
                for text, ranks in groups.items()))
        return outcome[1]

    def synchronise(self, params, state, rng):
        """Give params (n_params,) and the optimizer state (2, n_params) rank
        0's values, in place; returns the generator of this rank: rank 0's
        ``rng`` in replicated mode, one spawned from it per rank when
        sharded."""
        self.broadcast(params)
        self.comm.Bcast(state, root=0)
        rng.bit_generator.state = self.comm.bcast(rng.bit_generator.state, root=0)
        if not self.sharded:
            return rng
        seed = np.random.SeedSequence(rng.integers(2**63), spawn_key=(self.rank,))
        return np.random.default_rng(seed)

    def broadcast(self, params):
        """Overwrite params (n_params,) with rank 0's, in place."""
        self.comm.Bcast(params, root=0)

    def sum(self, buffer, total):
        """total = the sum of ``buffer`` over the ranks. Not in place: MPICH's
        in-place Allreduce of the 940 KB gradient of 784-256-128-10 took
        260 us where this took 165 us (benchmarks/mpi_alternatives.py)."""
        started = time.perf_counter()
        self.comm.Allreduce(buffer, total, op=self.MPI.SUM)
        self.allreduce_seconds += time.perf_counter() - started

    def agree(self, values):
        """The sums over the ranks of a few float64 ``values`` (a sequence)."""
        total = np.array(values, dtype=np.float64)
        self.comm.Allreduce(self.MPI.IN_PLACE, total, op=self.MPI.SUM)
        return total

    def pooled(self, values):
        """Sums of the ranks' ``values`` (float64) over their data: over the
        ranks when sharded; replicated ranks hold the same data, so theirs."""
        return self.agree(values) if self.sharded else np.array(values, dtype=np.float64)

    def gathered(self, array):
        """The ranks' rows of ``array`` concatenated in rank order when
        sharded; replicated ranks hold the same rows, so ``array``."""
        return np.concatenate(self.comm.allgather(array)) if self.sharded else array

    def shared(self, value):
        """Rank 0's ``value`` (any picklable object), on every rank."""
        return self.comm.bcast(value, root=0)

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

    @contextlib.contextmanager
    def fatal(self):
        """Around the compiled chunks, where the other ranks may be waiting in
        an Allreduce: an exception is printed with this rank's number and
        ends every rank through ``comm.Abort``."""
        try:
            yield
        except BaseException:
            print(f"fastmlp: rank {self.rank} of {self.size} failed inside a compiled chunk; "
                  "aborting every rank:", file=sys.stderr, flush=True)
            traceback.print_exc()
            sys.stderr.flush()
            self.comm.Abort(1)
            raise  # Abort does not return; here for readers and fakes

    def run(self, i, batch, n):
        """This rank's samples a..b-1 of the epoch for step i, with n samples
        here: its run of batch i when replicated, its own batch i when sharded
        (empty once its batches are used up)."""
        s = i * batch
        if self.sharded:
            return min(s, n), min(s + batch, n)
        m = min(s + batch, n) - s
        size = -(-m // self.size)
        a = min(s + self.rank * size, s + m)
        return a, min(a + size, s + m)


@functools.cache
def step_kernels(loss, rule):
    """(run_gradient, update) compiled for one loss and one optimizer rule
    (closure constants, as in ``kernels.batch_trainer``): the two halves of a
    distributed step, with the Allreduce between them."""

    def run_gradient(grads, work, rows, params, sizes, hidden, output, X, T, weights, order,
                     gather, a, b, scale, dropout):
        """``scale`` times the gradient of the summed (weighted) loss of the
        samples ``order[a:b]`` into grads (n_params,), zero when a == b; they
        are taken as ``train_batches`` takes a shard (``gather``, X dense or
        SparseRows in the epoch's order), at most ``rows`` of them, through
        the masks of ``dropout`` (as ``kernels.forward`` takes it). Returns
        (their loss sum, times the weights when weighted; n_correct; their
        total weight)."""
        if a == b:
            grads[:] = 0
            return 0.0, 0, 0.0
        mass = batch_mass(weights, order, a, b - a)
        Xb, Tb, wb = batch_run(work, sizes, rows, X, T, weights, order, gather, a, b)
        drop_inputs(Xb, dropout)
        one, zero = cast_like(params, 1.0), cast_like(params, 0.0)
        value, correct = gradient(grads, work, rows, params, sizes, hidden, output, loss, Xb, Tb,
                                  scale, one, zero, zero, wb, dropout)
        return value / scale, correct, mass

    def update(params, state, grads, mass, sizes, hyper, step, clip):
        """Update number ``step`` of params (n_params,) from grads (1,
        n_params), the gradient summed over samples of total weight ``mass``:
        from the mean gradient (zero for zero mass; ``mass`` 1 takes grads
        as they are), clipped to norm ``clip`` when that is > 0, in the
        blocks of ``update_block`` (L2 on the weights only), as
        ``train_batches`` does."""
        if mass != 1.0:
            scale = cast_like(params, 1.0 / mass if mass > 0 else 0.0)
            g = grads[0]
            for j in range(g.shape[0]):
                g[j] *= scale
        if clip > 0:
            clip_gradient(grads, clip)
        bias_hyper = without_l2(params, hyper)
        for block in range(update_block(sizes, -1)[0]):
            start, stop, is_weights = update_block(sizes, block)
            optimizer_update(params, state, grads, rule, hyper if is_weights else bias_hyper,
                             step, start, stop)

    return kernel(run_gradient), kernel(update)
