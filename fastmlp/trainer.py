"""The training session under ``MLP.fit`` and the scikit-learn estimators.

A ``Trainer`` validates the data once, allocates the work, gradient and
optimizer-state buffers once, owns the generator, the sample order, the update
count and the last finite parameters, chooses the compiled path in one place,
and runs epochs on demand. ``MLP.fit`` loops over its epochs with progress,
callbacks and divergence handling; the estimators drive it with scikit-learn's
schedules. A fit with ``resume=True`` starts from the previous fit's Trainer:
its optimizer state and update count carry over.
"""

import numbers
import threading
import time
import warnings
from contextlib import contextmanager
from typing import NamedTuple

import numba
import numpy as np

from . import kernels, threads
from ._interrupt import DeferredInterrupt
from ._validation import check_positive, check_sample_weight
from .distributed import ONE_PROCESS, step_kernels
from .optimizers import SGD, check_optimizer

# Seconds of compiled work between two returns to Python.
CHUNK_SECONDS = 0.2
# A per-sample chunk on several threads whose barriers waited so long that a
# thread yielded its core (kernels.run_samples) at more than this share of its
# samples turns the fit to one thread (threads.ChunkThreads): another was off
# its core. An idle machine here had such waits at 0.02% of the samples,
# beside a busy core at 30-100%.
LATE_SHARE = 0.01
# A first compiled call still running after this many seconds is compiling:
# verbose fits say so.
COMPILE_NOTICE_SECONDS = 0.5


class EpochResult(NamedTuple):
    """loss: mean loss of the epoch's samples (weighted when sample weights are
    given), each taken before its batch's update; score: accuracy or R^2 from
    the same pass (None for R^2 of several outputs, see ``scorer``);
    interrupted: Ctrl-C ended the epoch early (loss and score are then NaN)."""
    loss: float
    score: float
    interrupted: bool


def r2_score(T, P, weights=None):
    """R^2 of predictions P for targets T, both (n,) or (n, k), as scikit-learn's
    r2_score: per output, then averaged; an output with no variance scores 1
    when predicted exactly, else 0. weights: (n,) or None. fastmlp's one
    definition of R^2."""
    T = T.reshape(T.shape[0], -1).astype(np.float64)
    P = P.reshape(T.shape)
    w = np.ones(T.shape[0]) if weights is None else weights
    residual = w @ (T - P) ** 2
    total = w @ (T - np.average(T, axis=0, weights=w)) ** 2
    safe = np.where(total > 0, total, 1.0)
    with np.errstate(invalid="ignore"):  # inf / inf: NaN, which callers refuse
        return float(np.where(total > 0, 1.0 - residual / safe, residual == 0).mean())


def scorer(metric, T, weights=None, ranks=ONE_PROCESS):
    """A function (mean loss, n_correct) -> score of an epoch's running sums for
    targets T (n, k): accuracy, the share of correct rows; or, for one output,
    R^2 = 1 - SSE / SST from the (weighted) mean half squared error, which is
    ``r2_score`` for one output. For several outputs it gives None: R^2 is
    then a mean over the outputs, which the pooled sums cannot give. The
    sums are pooled over ``ranks`` (the ranks of a sharded fit)."""
    n = ranks.pooled([T.shape[0]])[0]
    if metric == "accuracy":
        return lambda value, correct: correct / n
    if T.shape[1] > 1:
        return lambda value, correct: None
    w = np.ones(T.shape[0]) if weights is None else weights.astype(np.float64)
    mass, weighted_sum = ranks.pooled([w.sum(), w @ T[:, 0]])
    sst = ranks.pooled([w @ (T[:, 0] - weighted_sum / mass) ** 2])[0]
    return lambda value, correct: 1.0 - 2.0 * value * mass / sst if sst > 0 else 0.0


class Trainer:
    """A training session of ``model`` on X (n, sizes[0]) and y; the
    parameters mean what they do in ``MLP.fit``, and ``ranks``
    (``distributed.ranks_of(comm, sharded)``) are those of a fit over MPI.

    Attributes
    ----------
    X, T : the training inputs (n, sizes[0]) and targets (n, sizes[-1]) as
        validated, in the model's dtype (validation rows split off); a sparse
        X is a ``kernels.SparseRows`` of its CSR arrays.
    inputs : X as the kernels read it: a sparse X's rows in the epoch's order.
    validation : (X_val, T_val), or None.
    metric : "accuracy" or "r2".
    n_total : training samples per epoch, over the ranks of a sharded fit.
    n_batches : steps per epoch.
    updates : optimizer steps taken, counting those of resumed fits.
    epochs_run : epochs this Trainer has run.
    """

    def __init__(self, model, X, y, *, batch_size=32, optimizer="sgd", shuffle=True, seed=None,
                 n_threads=None, shards=False, sample_weight=None, validation_data=None,
                 validation_split=0.0, resume=False, verbose=0, ranks=ONE_PROCESS,
                 clip_norm=None):
        self.model = model
        self.verbose = verbose
        self.ranks = ranks
        self.clip = 0.0 if clip_norm is None else float(check_positive("clip_norm", clip_norm))
        self.ranks.start(lambda: self._prepare(
            X, y, batch_size, optimizer, n_threads, shards, sample_weight, validation_data,
            validation_split, resume))
        n = self.n
        self.shuffle = shuffle and self.batch < n
        # The kernels copy each batch into their buffer when they shuffle, and
        # for input dropout, which drops inputs in that copy.
        self.gather = self.shuffle or bool(model.input_dropout)
        # Rows and batch size of each rank (of this process alone unless sharded).
        self._rank_rows = self.ranks.gathered(np.array([[n, self.batch]]))
        rows, batches = self._rank_rows.T
        self.n_total = int(rows.sum())
        self.n_batches = int((-(-rows // batches)).max())
        self.mass = float(self.ranks.pooled(
            [n if self.weights is None else self.weights.sum(dtype=np.float64)])[0])
        self.score = scorer(self.metric, self.T, self.weights, self.ranks)
        self.order = np.arange(n)
        self.inputs = self.X  # X as the kernels read it in the epoch's order
        self.epochs_run = 0
        self.last_finite = np.empty_like(model.params)
        previous = getattr(model, "_trainer", None) if resume else None
        if previous is None:
            self.state = np.zeros((2, model.params.size), model.dtype)
            self.updates, self._chunk = 0, 1
        else:
            self.state, self.updates, self._chunk = previous.state, previous.updates, \
                previous._chunk
        self.last_state = np.empty_like(self.state)
        self.rng = self.ranks.synchronise(
            model.params, self.state, model._rng if seed is None else np.random.default_rng(seed))
        self._dropout = None if not model._dropout_rates.any() else (
            model._dropout_rates, np.uint64(self.ranks.shared(self._dropout_key(seed))))
        self._interrupt = None
        # MPI ranks keep their thread count: they agree on one time per chunk.
        self._chunk_threads = (threads.ChunkThreads(self.n_threads)
                               if self.ranks is ONE_PROCESS else None)
        self._waited = False  # the last per-sample chunk's threads waited for a core
        self._step = self._compiled_step()
        model._trainer = self  # the next fit resumes from here

    def _dropout_key(self, seed):
        """The key of the fit's dropout masks: its integer seed, else the
        model's, else a draw from the generator."""
        for candidate in (seed, self.model.seed):
            if isinstance(candidate, numbers.Integral):
                return int(candidate) % 2**64
        return int(self.rng.integers(2**63))

    def _prepare(self, X, y, batch_size, optimizer, n_threads, shards, sample_weight,
                 validation_data, validation_split, resume):
        """Validate the data and the settings and keep them; returns what the
        ranks of a distributed fit must agree on (not the rows, when sharded)."""
        model = self.model
        X_given = X
        X, T, self.metric = model._data(X, y)
        self.optimizer = check_optimizer(optimizer)
        weights = None if sample_weight is None else check_sample_weight(
            sample_weight, kernels.n_rows(X), model.dtype)
        self.validation, X, T, weights = self._split(validation_data, validation_split,
                                                     X, T, weights)
        self.X, self.T, self.weights = X, T, weights
        self.n = n = kernels.n_rows(X)
        self.batch = n if batch_size is None else min(
            check_positive("batch_size", batch_size, integer=True), n)
        self.n_threads = threads.check_threads(n_threads)
        model._check_input_dropout(X)
        if shards and self.ranks is not ONE_PROCESS:
            raise ValueError("shards=True splits a process's minibatch over its threads; "
                             "with comm, each rank already takes its share of the minibatch")
        self.n_shards = self.n_threads if shards and self.batch > 1 else 1
        previous = getattr(model, "_trainer", None) if resume else None
        if previous is not None and previous.optimizer != self.optimizer:
            raise ValueError(f"resume needs the optimizer of the previous fit, "
                             f"{previous.optimizer!r}; got {self.optimizer!r}")
        rows = "" if self.ranks.sharded else f" with {n} training rows"
        return (f"X {type(X_given).__name__} of {getattr(X_given, 'dtype', None)}{rows}, "
                f"targets of {T.shape[1]} columns, weights {weights is not None}, model "
                f"{model.sizes} {model.dtype}, batch_size {batch_size}, {self.optimizer!r}")

    def _split(self, validation_data, validation_split, X, T, weights):
        """((X_val, T_val) or None, and the training X, T, weights): the
        validation data given, or the last ``validation_split`` of X, T."""
        check_positive("validation_split", validation_split, allow_zero=True)
        if validation_split == 0:
            if validation_data is None:
                return None, X, T, weights
            if not isinstance(validation_data, (tuple, list)) or len(validation_data) != 2:
                raise ValueError("validation_data must be a pair (X_val, y_val), got a "
                                 f"{type(validation_data).__name__}")
            return self.model._data(*validation_data)[:2], X, T, weights
        if validation_data is not None:
            raise ValueError("give validation_data or validation_split, not both")
        n = kernels.n_rows(X)
        n_train = n - int(round(validation_split * n))
        if not 0 < n_train < n:
            raise ValueError(f"validation_split {validation_split} of {n} samples "
                             "leaves no training or no validation sample")
        if weights is not None:
            weights = weights[:n_train]
            if not np.any(weights > 0):
                raise ValueError("sample_weight is zero for every training sample")
        return ((kernels.row_range(X, n_train, n), T[n_train:]), kernels.row_range(X, 0, n_train),
                T[:n_train], weights)

    def _compiled_step(self):
        """The compiled path, chosen once: a function (first, stop, lr, hyper,
        done) running batches first..stop-1 of the epoch in ``self.order``, the
        optimizer having made ``done`` updates before the epoch, and
        returning (loss sum, n_correct). Dense batches of one sample with plain
        SGD take the per-sample loop; every other batch takes the batch trainer,
        which writes a plain SGD step straight into the weights when the batch
        runs as one shard (for sparse X, into the rows of W its entries touch,
        unless the step shrinks every weight, and unless it clips the
        gradient). A fit over MPI takes ``_distributed_step``."""
        model, sizes = self.model, self.model._sizes
        hidden, output, loss = model._codes
        X, T, weights = self.X, self.T, self.weights
        sparse = isinstance(X, kernels.SparseRows)
        dropout = self._dropout
        per_sample = (self.batch == 1 and self.optimizer == SGD() and weights is None
                      and not sparse and not self.clip and dropout is None
                      and self.ranks is ONE_PROCESS)
        self._clippable = not per_sample  # the step can clip the gradient
        if self.ranks is not ONE_PROCESS:
            return self._distributed_step()
        if per_sample:
            buffers = kernels.sample_buffers(sizes, model.dtype)

            def step(first, stop, lr, hyper, done):
                value, correct, late = kernels.run_samples(
                    numba.get_num_threads(), model.params, buffers, sizes, hidden, output, loss, X, T,
                    self.order, first, stop, lr)
                self._waited = late > LATE_SHARE * (stop - first)
                return value, correct
            return step
        rows = -(-self.batch // self.n_shards)
        work = np.empty((self.n_shards, kernels.work_size(sizes, rows, self.gather, sparse,
                                                          dropout is not None)), model.dtype)
        grads = np.empty((self.n_shards, model.params.size), model.dtype)
        stats = np.empty((self.n_shards, 2))
        train = kernels.batch_trainer(loss, self.optimizer.rule, self.n_shards > 1)
        params, state, batch, gather = model.params, self.state, self.batch, self.gather

        def step(first, stop, lr, hyper, done):
            return train(params, state, grads, work, stats, rows, sizes, hidden, output,
                         self.inputs, T, weights, self.order, gather, batch, first, stop,
                         hyper, done, self.clip, dropout)
        return step

    def _distributed_step(self):
        """The step of a fit over MPI (fastmlp.distributed): per batch, the
        gradient sum and weight of this rank's run, one Allreduce of the flat
        buffer holding both, and the update every rank makes from the mean;
        its (loss sum, n_correct) are this rank's, which ``epoch`` adds over
        the ranks. Without sample weights every step's sample count is known
        beforehand, so the runs' gradients are divided by it as they are
        written, and the update makes no pass of its own to do it."""
        model, sizes, ranks = self.model, self.model._sizes, self.ranks
        hidden, output, loss = model._codes
        X, T, weights = self.X, self.T, self.weights
        sparse = isinstance(X, kernels.SparseRows)
        rows = self.batch if ranks.sharded else -(-self.batch // ranks.size)
        dropout = self._dropout
        work = np.empty(kernels.work_size(sizes, rows, self.gather, sparse, dropout is not None),
                        model.dtype)
        # The run's gradient, then its weight: one buffer, one Allreduce into
        # another, whose gradient the update reads.
        flat = np.empty(model.params.size + 1, model.dtype)
        received = np.empty_like(flat)
        grads, summed = flat[:-1], received[:-1].reshape(1, -1)
        run_gradient, update = step_kernels(loss, self.optimizer.rule)
        params, state, batch, gather, n = model.params, self.state, self.batch, self.gather, \
            self.n
        # The samples of each step over the ranks: 1 / that scales the runs.
        rank_rows, rank_batches = self._rank_rows.T
        starts = np.arange(self.n_batches)[:, None] * rank_batches
        scales = 1.0 / np.clip(rank_rows - starts, 0, rank_batches).sum(axis=1)
        weighted = weights is not None

        def step(first, stop, lr, hyper, done):
            total, correct = 0.0, 0
            for i in range(first, stop):
                a, b = ranks.run(i, batch, n)
                # Each row's masks: those of its place in the batch over the ranks.
                masks = None if dropout is None else (
                    *dropout, done + i + 1, a - i * batch + ranks.sharded * ranks.rank * batch)
                value, c, flat[-1] = run_gradient(grads, work, rows, params, sizes, hidden,
                                                  output, self.inputs, T, weights, self.order,
                                                  gather, a, b, 1.0 if weighted else scales[i],
                                                  masks)
                ranks.sum(flat, received)
                update(params, state, summed, received[-1] if weighted else 1.0, sizes, hyper,
                       done + i + 1, self.clip)
                total += value
                correct += c
            return total, correct
        return step

    @contextmanager
    def running(self):
        """Hold the thread counts for a run of epochs (BLAS on one thread, as
        the products that call it run on each of Numba's threads), and defer
        Ctrl-C to the end of the running chunk."""
        with threads.using(self.n_threads), threads.blas_on_one_thread(), \
                DeferredInterrupt() as interrupt:
            self._interrupt = interrupt
            try:
                yield self
            finally:
                self._interrupt = None

    def epoch(self, lr, on_chunk=None):
        """One pass over the training data at learning rate ``lr``; returns an
        EpochResult.

        The batches run in compiled chunks of about CHUNK_SECONDS; after each,
        ``on_chunk(samples done, loss sum, n_correct)`` is called when given.
        Ctrl-C ends the epoch after the running chunk, with a RuntimeWarning.
        When the loss or the parameters stop being finite, the parameters go
        back to those before the chunk, the optimizer state is forgotten, and
        FloatingPointError is raised.
        """
        if self._interrupt is None:
            with self.running():
                return self.epoch(lr, on_chunk)
        dtype = self.model.dtype.type
        self.epochs_run += 1
        lr = dtype(lr)
        hyper = tuple(dtype(h) for h in self.optimizer.hyper(lr))
        if self.shuffle:
            self.order = self.rng.permutation(self.n)
            if isinstance(self.X, kernels.SparseRows):  # its rows in the epoch's order
                self.inputs = self.X._replace(rows=self.X.rows[self.order])
        params, start_updates = self.model.params, self.updates
        total, correct, first = 0.0, 0, 0
        while first < self.n_batches:
            compiling = self.epochs_run == 1 and first == 0
            chooser = None if compiling else self._chunk_threads
            n_threads = self.n_threads if chooser is None else chooser.next()
            probing = chooser is not None and n_threads != chooser.current
            # A probe of the other thread count runs a quarter chunk: it may be the slower.
            stop = min(first + (max(1, self._chunk // 4) if probing else self._chunk),
                       self.n_batches)
            np.copyto(self.last_finite, params)
            np.copyto(self.last_state, self.state)
            started = time.perf_counter()
            with self.ranks.fatal(), threads.using(n_threads):
                if compiling:
                    value, c = self._first_call(stop, lr, hyper, start_updates)
                else:
                    value, c = self._step(first, stop, lr, hyper, start_updates)
            seconds = time.perf_counter() - started
            per_batch = seconds / (stop - first)
            if chooser is not None:
                chooser.record(n_threads, seconds, stop - first, self._waited)
            diverged = not (np.isfinite(value) and np.isfinite(params).all())
            # A distributed fit's ranks add these up, so all decide alike.
            value, c, per_batch, diverged, interrupted = self.ranks.agree(
                (value, c, per_batch / self.ranks.size, diverged, self._interrupt.requested))
            # The first call's time is mostly compiling, no measure of the batches:
            # the chunks after it grow as they would after a fast call, so that a
            # fit that compiles sums its epoch's loss over the same chunks as one
            # that does not (the sums of other groupings differ in the last bit).
            self._chunk = 4 * self._chunk if compiling else max(
                1, min(4 * self._chunk, int(CHUNK_SECONDS / max(per_batch, 1e-9))))
            if diverged:
                self._diverged(lr, first, stop, hyper, start_updates)
            total += value
            correct += c
            first = stop
            self.updates = start_updates + stop
            if on_chunk is not None:
                rows, batches = self._rank_rows.T
                on_chunk(int(np.minimum(stop * batches, rows).sum()), total, correct)
            if interrupted:
                warnings.warn(f"training interrupted in epoch {self.epochs_run}, after {stop} "
                              f"of {self.n_batches} batches: the model keeps every update made",
                              RuntimeWarning, stacklevel=3)
                return EpochResult(np.nan, np.nan, True)
        loss = total / self.mass
        return EpochResult(loss, self.score(loss, correct), False)

    def validate(self):
        """(mean loss, accuracy or R^2) of the model on the validation data,
        pooled over the ranks of a sharded fit."""
        return self.model._evaluate(*self.validation, self.metric, self.ranks)

    def _first_call(self, stop, lr, hyper, done):
        """The Trainer's first compiled call, which compiles its kernels or loads
        them from Numba's disk cache; under ``verbose`` a call still running
        after COMPILE_NOTICE_SECONDS prints one line saying what compiles (on
        rank 0 of a distributed fit)."""
        if not (self.verbose and self.ranks.root):
            return self._step(0, stop, lr, hyper, done)
        notice = threading.Timer(COMPILE_NOTICE_SECONDS, print, [
            f"fastmlp: compiling the training loop for {self.model.dtype}, "
            f"{self.model.loss} and {type(self.optimizer).__name__} (once: later runs load "
            "it from Numba's cache)"], {"flush": True})
        notice.start()
        try:
            return self._step(0, stop, lr, hyper, done)
        finally:
            notice.cancel()

    def _diverged(self, lr, first, stop, hyper, done):
        """Restore the parameters from before batches first..stop-1, forget the
        optimizer state, and raise FloatingPointError, saying whether clipping
        would have prevented the divergence."""
        note = "" if self.clip or not self._clippable else self._clipping_note(
            first, stop, hyper, done)
        np.copyto(self.model.params, self.last_finite)
        self.state.fill(0)
        self.updates = 0
        raise FloatingPointError(
            f"training diverged in epoch {self.epochs_run}: the loss or the parameters became "
            f"NaN or infinite at learning rate {lr:g}; try a smaller learning rate. "
            f"The model keeps its last finite parameters.{note}")

    def _clipping_note(self, first, stop, hyper, done):
        """A sentence saying that fit(clip_norm=1) would have kept batches
        first..stop-1 finite, when it would: they are run again from the
        parameters and optimizer state before them, each step's gradient
        clipped to norm 1; "" otherwise."""
        params = self.model.params
        np.copyto(params, self.last_finite)
        np.copyto(self.state, self.last_state)
        self.clip = 1.0
        try:
            value, _ = self._step(first, stop, hyper[0], hyper, done)
        finally:
            self.clip = 0.0
        diverged = not (np.isfinite(value) and np.isfinite(params).all())
        if self.ranks.agree([diverged])[0]:
            return ""
        return (" Clipping would have prevented it: from the same parameters the same "
                "batches stay finite with each step's gradient clipped to norm 1, as "
                "fit(..., clip_norm=1) does.")

    # Dropped by release, and left out of pickles: the data, the work buffers,
    # the compiled closures and the communicator.
    _SESSION = ("X", "inputs", "T", "weights", "validation", "_step", "score", "order",
                "last_finite", "last_state", "ranks")

    def release(self):
        """Drop the data and the work buffers, keeping what a resumed fit
        needs: the optimizer, its state and the update count, and
        ``allreduce_seconds``, the time the ranks of a fit over MPI spent in
        the gradients' Allreduce (0 without)."""
        self.allreduce_seconds = self.ranks.allreduce_seconds
        for name in self._SESSION:
            setattr(self, name, None)

    def __getstate__(self):
        """What ``release`` keeps: a model pickled during a fit (from a
        callback, say) carries what resume needs, not the session."""
        return {**self.__dict__, **dict.fromkeys(self._SESSION), "_interrupt": None}
