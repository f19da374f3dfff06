"""The multilayer perceptron: its parameters, and fit / predict / evaluate."""

import numbers
import warnings

import numpy as np

from . import kernels, threads
from .callbacks import check_callbacks
from .distributed import ONE_PROCESS, ranks_of
from .progress import EpochProgress
from .registry import ACTIVATIONS, LOSSES
from .trainer import Trainer, r2_score
from ._validation import (check_choice, check_dtype, check_features, check_finite_result,
                          check_positive, check_targets, kernel_inputs)

DTYPES = {"float32": np.float32, "float64": np.float64}

# Samples per block when predicting or evaluating: bounds the scratch memory.
BLOCK_ROWS = 4096


class History:
    """Per-epoch metrics of ``MLP.fit``: ``history["loss"]`` is a list with one
    value per epoch, like Keras' History. Keys: loss, accuracy or r2 (not
    for several regression outputs, whose R^2 the epoch's running sums cannot
    give), and val_loss, val_accuracy or val_r2 when validation data is given.
    ``interrupted`` says whether Ctrl-C ended the fit that returned it."""

    def __init__(self):
        self.history = {}
        self.epoch = []
        self.interrupted = False

    def __getitem__(self, key):
        return self.history[key]

    def append(self, epoch, **metrics):
        self.epoch.append(epoch)
        for key, value in metrics.items():
            self.history.setdefault(key, []).append(value)

    def __repr__(self):
        return f"History(epochs={len(self.epoch)}, keys={list(self.history)})"


def hidden_activations(activation, n_hidden):
    """The registry name of each of ``n_hidden`` hidden layers' activations:
    ``activation`` (a name) for every one, or one entry of a sequence each."""
    if isinstance(activation, str):
        check_choice("activation", activation, ACTIVATIONS)
        return (activation,) * n_hidden
    names = tuple(activation)
    if len(names) != n_hidden:
        raise ValueError(f"activation has {len(names)} entries for {n_hidden} hidden layers: "
                         "give one name, or one per hidden layer")
    for name in names:
        check_choice("activation", name, ACTIVATIONS)
    return names


def hidden_dropout(dropout, n_hidden):
    """The dropout rate of each of ``n_hidden`` hidden layers: ``dropout`` (a
    number) for every one, or one entry of a sequence each; rates in [0, 1)."""
    rates = (dropout,) * n_hidden if isinstance(dropout, numbers.Real) else tuple(dropout)
    if len(rates) != n_hidden:
        raise ValueError(f"dropout has {len(rates)} rates for {n_hidden} hidden layers: give "
                         "one rate, or one per hidden layer")
    return tuple(dropout_rate("a dropout rate", rate) for rate in rates)


def dropout_rate(name, rate):
    """``rate`` as a float, checked to be a number in [0, 1); ``name`` for the error."""
    if isinstance(rate, bool) or not isinstance(rate, numbers.Real) or not 0 <= rate < 1:
        raise ValueError(f"{name} must be a number in [0, 1), got {rate!r}")
    return float(rate)


def _init_bound(activation, fan_in, fan_out):
    """Half-width of the uniform initialisation: He for relu-like units,
    Glorot otherwise."""
    if ACTIVATIONS[activation].init == "he":
        return np.sqrt(6.0 / fan_in)
    return np.sqrt(6.0 / (fan_in + fan_out))


class MLP:
    """A multilayer perceptron trained by minibatch gradient descent.

    Parameters
    ----------
    sizes : sequence of int
        Layer widths from inputs to outputs, e.g. (784, 100, 10).
    activation : str or sequence of str
        Hidden activation: "identity", "sigmoid" (or "logistic"), "tanh",
        "relu", "leaky_relu"; or one of these per hidden layer.
    loss : str
        "softmax_cross_entropy" (targets: integer labels 0..k-1 or one-hot
        rows), "binary_cross_entropy" or "logistic" (targets 0/1 or -1/+1,
        one column per output), "mse" (half squared error: float targets, or
        integer labels that become one-hot rows).
    output : str or None
        Output activation. None takes the one the loss implies: softmax for
        softmax_cross_entropy, sigmoid for binary_cross_entropy, identity for
        mse; mse accepts any activation name.
    dtype : "float32" or "float64"
    seed : int or None
        Seeds the initial weights and, unless ``fit`` gets its own, the
        shuffling and the dropout masks.
    dropout : float or sequence of float
        Inverted dropout while training: the share of each hidden layer's
        units zeroed in each sample (the kept ones scaled by 1 / (1 - rate)),
        one rate for every hidden layer or one per hidden layer. The masks
        follow from the fit's seed (else the model's), the update count and
        the sample's row in its batch, so a seeded fit is reproducible bit
        for bit at any thread count (``kernels/dropout.py``). predict,
        evaluate and loss_and_grad (unless given masks) use every unit.
    input_dropout : float
        The same for the inputs (dense X only).

    Every method that takes X (n, sizes[0]) takes a dense array or a
    scipy.sparse matrix or array. A sparse X is read in place when it is CSR
    of the model's dtype (its values are converted otherwise, another format
    is converted to CSR once); the first layer then costs time in proportion
    to its stored entries, not to n * sizes[0], and X is never densified.

    Attributes
    ----------
    params : ndarray of shape (n_params,)
        Every weight and bias in one flat buffer.
    activations : tuple of str
        The activation of each hidden layer.
    weights : list of (W, b)
        Views into ``params``: W of shape (fan_in, fan_out), b of shape (fan_out,).
    """

    def __init__(self, sizes, activation="relu", loss="softmax_cross_entropy",
                 output=None, dtype="float32", seed=None, dropout=0.0, input_dropout=0.0):
        if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
            raise TypeError(f"sizes must be a sequence of layer widths such as (784, 100, 10), "
                            f"got {sizes!r}")
        sizes = tuple(sizes)
        if len(sizes) < 2:
            raise ValueError(f"sizes needs at least an input and an output width, got {sizes}")
        for s in sizes:
            check_positive("layer size", s, integer=True)
        activations = hidden_activations(activation, len(sizes) - 2)
        if not isinstance(activation, str):
            activation = activations
        check_choice("loss", loss, LOSSES)
        dtype = check_dtype(dtype, DTYPES)
        implied = LOSSES[loss].output
        if implied is None:
            output = "identity" if output is None else output
            check_choice("output", output, ACTIVATIONS)
            self._output_code = ACTIVATIONS[output].code
        else:
            if output not in (None, implied):
                raise ValueError(f"loss {loss!r} implies output {implied!r}, got {output!r}")
            output = implied
            self._output_code = kernels.IDENTITY
        self.sizes = sizes
        self.activation = activation
        self.activations = activations
        self.dropout = hidden_dropout(dropout, len(sizes) - 2)
        self.input_dropout = dropout_rate("input_dropout", input_dropout)
        self.loss = loss
        self.output = output
        self.dtype = np.dtype(DTYPES[dtype])
        self.seed = seed
        self._sizes = np.asarray(sizes, dtype=np.int64)
        self._rng = np.random.default_rng(seed)
        self.params = np.empty(kernels.param_offset(self._sizes, len(sizes) - 1),
                               dtype=self.dtype)
        self._weight_views()
        # Each layer's initialisation follows the activation of the units it
        # feeds; the output layer's, that of the last hidden layer.
        init = activations[-1:] or (activation if isinstance(activation, str) else "identity",)
        for (W, b), layer_activation in zip(self.weights, activations + init):
            bound = _init_bound(layer_activation, *W.shape)
            W[...] = self._rng.uniform(-bound, bound, size=W.shape)
            b[...] = 0.0

    def __getstate__(self):
        state = self.__dict__.copy()
        del state["weights"]  # views into params: rebuilt by __setstate__
        return state

    def __setstate__(self, state):
        self.__dict__.update(state)
        if "activations" not in state:  # pickled before per-layer activations
            self.activations = (self.activation,) * (len(self.sizes) - 2)
        if "dropout" not in state:  # pickled before dropout
            self.dropout = (0.0,) * (len(self.sizes) - 2)
        if "input_dropout" not in state:  # pickled before input dropout
            self.input_dropout = 0.0
        self._weight_views()

    def _weight_views(self):
        self.weights = [kernels.layer_params(self.params, self._sizes, l)
                        for l in range(len(self.sizes) - 1)]

    def __repr__(self):
        dropout = f", dropout={self.dropout}" if any(self.dropout) else ""
        if self.input_dropout:
            dropout += f", input_dropout={self.input_dropout}"
        return (f"MLP(sizes={self.sizes}, activation={self.activation!r}{dropout}, "
                f"loss={self.loss!r}, output={self.output!r}, dtype={str(self.dtype)!r})")

    @property
    def _codes(self):
        """(hidden: int64 codes, one per hidden layer; output code; loss code)."""
        hidden = np.array([ACTIVATIONS[name].code for name in self.activations], np.int64)
        return hidden, self._output_code, LOSSES[self.loss].code

    def _features(self, X):
        """X as the kernels take it, in the model's dtype: a C-contiguous
        (n, sizes[0]) array, or the SparseRows of every row of a sparse X."""
        return kernel_inputs(check_features(X, self.sizes[0], self.dtype))

    def _data(self, X, y):
        """X as ``_features`` gives it and targets T (n, sizes[-1]) in the
        model's dtype, plus the metric name for these targets."""
        X = self._features(X)
        T, metric = check_targets(y, kernels.n_rows(X), self.sizes[-1], LOSSES[self.loss].code,
                                  self.dtype)
        return X, T, metric

    def _work(self, rows, gather=False, dropout=False):
        return np.empty(kernels.work_size(self._sizes, rows, gather, False, dropout),
                        dtype=self.dtype)

    @property
    def _dropout_rates(self):
        """The dropout rates as the kernels take them, (L,) float64: the
        input's, then each hidden layer's."""
        return np.array((self.input_dropout, *self.dropout), dtype=np.float64)

    def _check_input_dropout(self, X):
        """Refuse a sparse X (kernels.SparseRows) when the inputs are dropped:
        they are dropped in a dense copy of each batch."""
        if self.input_dropout and isinstance(X, kernels.SparseRows):
            raise ValueError("input_dropout needs dense X: the inputs are dropped in a dense "
                             "copy of each batch")

    def loss_and_grad(self, X, y, dropout=None):
        """Mean loss over (X, y) and its gradient w.r.t. ``params`` (n_params,).

        dropout : None (every unit), or (key, step): the model's dropout with
            the masks that update number ``step`` of a fit keyed ``key`` (its
            seed) draws for a batch of the rows of X, held fixed.
        """
        X, T, _ = self._data(X, y)
        n = kernels.n_rows(X)
        grads = np.empty_like(self.params)
        hidden, output, loss = self._codes
        one, zero = self.dtype.type(1), self.dtype.type(0)
        masks = None
        if dropout is not None:
            key, step = dropout
            masks = (self._dropout_rates, np.uint64(key), np.int64(step), np.int64(0))
            self._check_input_dropout(X)
            if self.input_dropout:  # the kernels drop inputs in a copy of them
                X = X.copy()
                kernels.dropout_forward(X, None, self.input_dropout, masks[1], masks[2], 0, 0)
        with threads.using(threads.get_num_threads()), threads.blas_on_one_thread():
            value, _ = kernels.gradient(grads, self._work(n, dropout=masks is not None), n,
                                        self.params, self._sizes, hidden, output, loss, X, T,
                                        1.0 / n, one, zero, zero, None, masks)
        check_finite_result("the loss or its gradient", self.dtype, value, grads)
        return value, grads

    def _blocks(self, X):
        """Run the network on X block by block: yields (slice, output view), the
        kernels' output (logits for the cross-entropies), valid until the next."""
        hidden, output, _ = self._codes
        n = kernels.n_rows(X)
        rows = min(BLOCK_ROWS, n)
        work = self._work(rows)
        with threads.using(threads.get_num_threads()):
            for start in range(0, n, rows):
                yield slice(start, start + rows), kernels.forward(
                    work, rows, self.params, self._sizes, hidden, output,
                    kernels.row_range(X, start, start + rows))

    def _evaluate(self, X, T, metric, ranks=ONE_PROCESS):
        """(mean loss, accuracy or R^2) on X, T (n, sizes[-1]), pooled over
        the ranks of a sharded fit."""
        _, output, loss = self._codes
        total, correct = 0.0, 0
        predictions = np.empty_like(T) if metric == "r2" else None
        for block, out in self._blocks(X):
            value, c = kernels.loss_forward_backward(np.empty_like(out), out, T[block], loss,
                                                     output, 1.0)
            total += value
            correct += c
            if predictions is not None:  # mse's outputs are the predictions
                predictions[block] = out
        total, correct, n = ranks.pooled([total, correct, T.shape[0]])
        value = total / n
        score = correct / n if predictions is None else r2_score(ranks.gathered(T),
                                                                  ranks.gathered(predictions))
        check_finite_result("the loss", self.dtype, value, score)
        return value, score

    def evaluate(self, X, y):
        """(mean loss, accuracy) on (X, y); for regression targets the second
        value is the coefficient of determination R^2, as scikit-learn's
        r2_score (per output, then averaged)."""
        return self._evaluate(*self._data(X, y))

    def _raw_output(self, X):
        X = self._features(X)
        out = np.empty((kernels.n_rows(X), self.sizes[-1]), dtype=self.dtype)
        for block, block_out in self._blocks(X):
            out[block] = block_out
        check_finite_result("the network's output", self.dtype, out)
        return out

    def predict_proba(self, X, dtype=None):
        """Network outputs for X (n, sizes[0]): class probabilities (n, k) for the
        cross-entropy losses, the output activations for mse. ``dtype``: of the
        answer, the model's by default; the output activation runs in it, so
        float64 probabilities of float32 logits stay below 1 where float32
        ones round to it."""
        out = self._raw_output(X)
        if dtype is not None:
            out = out.astype(dtype, copy=False)
        if self.output == "softmax":
            kernels.softmax(out, out)
        elif self.output == "sigmoid" and self._output_code == kernels.IDENTITY:
            kernels.activation_forward(out, out, kernels.SIGMOID)
        return out

    def predict(self, X):
        """Predictions for X (n, sizes[0]).

        softmax_cross_entropy: labels (n,). binary_cross_entropy: labels in the
        convention of the targets seen by ``fit`` (0/1 or -1/+1), shape (n,) for
        one output, else (n, k). mse: outputs (n,) for one output, else (n, k).
        """
        out = self._raw_output(X)
        loss = LOSSES[self.loss].code
        if loss == kernels.SOFTMAX_CROSS_ENTROPY:
            return out.argmax(axis=1)
        if loss == kernels.BINARY_CROSS_ENTROPY:
            labels = np.where(out > 0, 1, getattr(self, "negative_label_", 0))
            return labels[:, 0] if labels.shape[1] == 1 else labels
        return out[:, 0] if out.shape[1] == 1 else out

    def save(self, path):
        """Write the model to ``path`` (one .npz, written atomically); read it
        back with ``fastmlp.load``. See fastmlp.saving."""
        from .saving import save  # saving imports this module
        save(self, path)

    def fit(self, X, y, epochs=10, batch_size=32, lr=0.01, optimizer="sgd", shuffle=True,
            seed=None, validation_data=None, validation_split=0.0, callbacks=None, verbose=1,
            n_threads=None, shards=False, sample_weight=None, resume=False,
            on_divergence="raise", comm=None, sharded=False, clip_norm=None):
        """Train by minibatch SGD; returns a History.

        X : (n, sizes[0]), dense or scipy.sparse; y : targets as described for ``loss``.
        batch_size : int or None. None is full-batch gradient descent, 1 is
            per-sample SGD. Each step uses the mean loss of its batch.
        lr : learning rate, or a schedule: a function of the 1-based epoch
            (see fastmlp.optimizers: inverse_scaling, step_decay, cosine).
        optimizer : "sgd", "adam", or an instance of fastmlp.SGD or
            fastmlp.Adam (momentum, Nesterov, L2 penalty, AdamW weight decay).
            Its state starts from zero, unless ``resume``.
        shuffle : visit the samples of epoch e in the order ``rng.permutation(n)``
            of ``rng = numpy.random.default_rng(seed)`` (the model's own
            generator when seed is None); otherwise in their given order.
        validation_data : (X_val, y_val) evaluated after each epoch.
        validation_split : or this share of the samples, the last ones as
            given (before any shuffling, as Keras does), held out and
            evaluated after each epoch.
        callbacks : callables ``callback(model, epoch, logs)`` (or
            fastmlp.callbacks.Callback objects, such as EarlyStopping and
            ModelCheckpoint) called after each epoch with its metrics;
            returning True stops training.
        verbose : 0 silent, 1 a progress bar per epoch (with tqdm installed;
            otherwise as 2), 2 one line per epoch.
        n_threads : threads to train with; None takes ``fastmlp.get_num_threads()``.
            Results do not depend on it. A fit runs on one of them while one
            trains faster, as on a machine busy with other work, and tries its
            threads again from time to time (fastmlp.threads.ChunkThreads).
        shards : split each minibatch into one shard per thread, each on its own
            Numba thread, instead of sharing each matrix product's tiles out
            over the threads. Slower for every net and batch size measured
            here (``python benchmarks/sharding.py``); results differ from
            unsharded ones by floating-point reassociation.
        sample_weight : (n,) finite non-negative weights. Each batch's loss is
            then sum_i w_i loss_i / sum_i w_i over its samples (a batch of zero
            weight makes no step), and the epoch's ``loss`` is the weighted mean.
        clip_norm : clip each batch's gradient (of the loss, before the L2
            penalty is added) to this L2 norm over all parameters where its
            norm is larger, before the optimizer's update; None does not clip.
            It costs a pass over the gradient to measure its norm, another
            on the batches it clips, and plain SGD's update written straight
            into the weights. A fit that diverges without it says when
            clip_norm=1 would have kept the same batches finite.
        resume : continue from the previous ``fit``: the optimizer's state
            (momentum, Adam's moments) and its update count carry over, as
            when one call had run all the epochs. The optimizer must be the same.
        on_divergence : "raise" (FloatingPointError) or "warn" (RuntimeWarning,
            and return) when the loss or the parameters stop being finite;
            either way the model keeps the parameters it had before the
            compiled chunk of batches (about 0.2 s of training) where that happened.

        Ctrl-C stops training after the chunk of batches running (within about
        0.2 s) with a RuntimeWarning: fit returns the History of the completed
        epochs, and the model keeps every update made, its optimizer state
        ready for ``resume``. A second Ctrl-C interrupts at once.

        comm : an mpi4py communicator (``pip install 'fastmlp[mpi]'``) to
            train data-parallel over its ranks, each calling ``fit`` with the
            same X, y and arguments (a memory-mapped .npy shares them on one
            machine): rank r computes its share of each minibatch's gradient,
            one Allreduce adds the shares, and every rank makes the same
            update, so the result is the one-process fit with the same
            batch_size and seed up to the order of the sums. The parameters
            start as rank 0's and stay the same on every rank. Progress and
            callbacks (checkpoints, saving) run on rank 0 only; their stop
            decision, their error and the parameters they leave reach every
            rank after each epoch, and every rank returns the same History.
            Divergence and Ctrl-C stop all ranks after the same chunk. Not
            with ``shards``. See fastmlp.distributed.
        sharded : with comm, each rank passes its own rows (and its own
            validation data or split) instead of the same X and y: step i
            trains on the union of every rank's batch i of ``batch_size``
            samples, each rank shuffling its rows with its own generator. A
            rank whose batches run out before the others' adds no samples to
            the epoch's last steps. The epoch's metrics and the validation
            are pooled over the ranks.

        The training metrics of an epoch are averages over its batches, each
        taken before that batch's update.
        """
        check_positive("epochs", epochs, integer=True, allow_zero=True)
        if not callable(lr):
            check_positive("lr", lr)
        schedule = lr if callable(lr) else (lambda epoch: lr)
        callbacks = check_callbacks(callbacks)
        check_choice("on_divergence", on_divergence, ("raise", "warn"))
        trainer = Trainer(self, X, y, batch_size=batch_size, optimizer=optimizer,
                          shuffle=shuffle, seed=seed, n_threads=n_threads, shards=shards,
                          sample_weight=sample_weight, validation_data=validation_data,
                          validation_split=validation_split, resume=resume,
                          verbose=verbose, ranks=ranks_of(comm, sharded), clip_norm=clip_norm)
        if LOSSES[self.loss].code == kernels.BINARY_CROSS_ENTROPY:
            self.negative_label_ = -1 if np.any(np.asarray(y) == -1) else 0
        metric = trainer.metric
        ranks = trainer.ranks
        progress = EpochProgress(verbose if ranks.root else 0, epochs, trainer.n_total)
        history = History()

        def show(done, total, correct):
            progress.update(done, {"loss": total / done, "accuracy": correct / done}
                            if metric == "accuracy" else {"loss": total / done})

        def epoch_end(epoch, logs):  # every callback runs: no short-circuit
            return any([callback(self, epoch, logs) for callback in callbacks])

        ranks.on_root(lambda: [callback.on_train_begin(self) for callback in callbacks])
        try:
            with trainer.running():
                for epoch in range(1, epochs + 1):
                    epoch_lr = check_positive(f"lr of epoch {epoch}", schedule(epoch))
                    progress.start(epoch)
                    try:
                        result = trainer.epoch(epoch_lr, on_chunk=show)
                    except FloatingPointError as error:
                        progress.end({})
                        if on_divergence == "raise":
                            raise
                        warnings.warn(str(error), RuntimeWarning, stacklevel=2)
                        return history
                    if result.interrupted:
                        progress.end({})
                        history.interrupted = True
                        return history
                    logs = {"loss": result.loss}
                    if result.score is not None:  # None: R^2 of several outputs
                        logs[metric] = result.score
                    if trainer.validation is not None:
                        logs["val_loss"], logs["val_" + metric] = trainer.validate()
                    history.append(epoch, **logs)
                    progress.end(logs)
                    stop = ranks.on_root(epoch_end, epoch, logs)
                    ranks.broadcast(self.params)
                    if stop:
                        break
        finally:
            trainer.release()
        ranks.on_root(lambda: [callback.on_train_end(self) for callback in callbacks])
        ranks.broadcast(self.params)
        return history
