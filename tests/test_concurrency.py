"""Concurrency and reproducibility: fits in several Python threads at once
give what they give one after the other, and the same seed, data and thread
count give the same bits in every run and every process."""

import os
import subprocess
import sys
import threading

import numpy as np
import pytest
import scipy.linalg.cython_blas  # noqa: F401  (a fit loads SciPy's BLAS: load it before counting)
from threadpoolctl import threadpool_info

import fastmlp
from fastmlp import threads, trainer


def problem(seed=0):
    """A float64 net and batch large enough for 2 threads to share out the
    tiles of every matrix product."""
    rng = np.random.default_rng(seed)
    return rng.random((512, 100)), rng.integers(0, 10, 512)


def train(n_threads, seed=0, callbacks=None, shards=False):
    X, y = problem()
    net = fastmlp.MLP((100, 300, 200, 10), "tanh", dtype="float64", seed=seed)
    net.fit(X, y, epochs=3, batch_size=128, lr=0.1, seed=1, verbose=0, n_threads=n_threads,
            callbacks=callbacks, shards=shards)
    return net.params


def in_threads(*jobs):
    """Run the callables at once, one Python thread each; their results."""
    results = [None] * len(jobs)

    def run(i):
        results[i] = jobs[i]()
    workers = [threading.Thread(target=run, args=(i,)) for i in range(len(jobs))]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert not any(worker.is_alive() for worker in workers)
    return results


def blas_threads():
    return [lib["num_threads"] for lib in threadpool_info() if lib["user_api"] == "blas"]


def test_two_fits_at_once_equal_the_same_fits_one_after_the_other():
    """Both models pass a barrier after their first epoch: they really are
    inside fit at the same time."""
    alone = [train(2, seed) for seed in (0, 1)]
    barrier = threading.Barrier(2, timeout=120)

    def meet(model, epoch, logs):
        if epoch == 1:
            barrier.wait()
    together = in_threads(*[lambda seed=seed: train(2, seed, [meet]) for seed in (0, 1)])
    for got, want in zip(together, alone):
        np.testing.assert_array_equal(got, want)


@pytest.mark.parametrize("counts", [(1, 2), (2, 1)], ids=["1 then 2", "2 then 1"])
def test_fits_with_different_thread_counts_at_once_keep_their_own_bits(counts):
    """Numba's thread count is a setting of each Python thread, and the
    results do not depend on it; BLAS's thread count is left as it was."""
    before = blas_threads()
    alone = {n: train(n) for n in counts}
    np.testing.assert_array_equal(alone[1], alone[2])
    together = in_threads(*[lambda n=n: train(n) for n in counts])
    for n, got in zip(counts, together):
        np.testing.assert_array_equal(got, alone[n])
    assert blas_threads() == before


def test_a_sharded_fit_and_an_unsharded_fit_at_once():
    alone = [train(2, shards=True), train(2)]
    together = in_threads(lambda: train(2, shards=True), lambda: train(2))
    for got, want in zip(together, alone):
        np.testing.assert_array_equal(got, want)


def test_training_while_another_thread_predicts():
    X, _ = problem()
    other = fastmlp.MLP((100, 300, 200, 10), "relu", dtype="float64", seed=5)
    want_predictions = other.predict_proba(X)
    want_params = train(2)
    done = threading.Event()

    def predict_until_done():
        seen = []
        while not done.is_set() or not seen:
            seen.append(other.predict_proba(X))
        return seen

    def train_then_stop():
        try:
            return train(2)
        finally:
            done.set()
    params, predictions = in_threads(train_then_stop, predict_until_done)
    np.testing.assert_array_equal(params, want_params)
    assert len(predictions) >= 2
    for got in predictions:
        np.testing.assert_array_equal(got, want_predictions)


def test_different_thread_counts_give_the_same_bits():
    """Each element of a matrix product is summed by one tile in one order,
    whichever thread runs the tile."""
    np.testing.assert_array_equal(train(1), train(2))


def test_chunk_threads_follow_the_faster_count():
    """The count in use changes only when a probe of the other one runs faster
    per batch; the probes thin out while the count in use keeps winning."""
    choice, counts = threads.ChunkThreads(2), []
    chunk = threads.PROBE_FIRST / 8  # seconds of a chunk of 10 batches on two threads

    def run(n_chunks, slower):  # slower: the count whose chunks take twice as long
        counts.clear()
        for _ in range(n_chunks):
            n = choice.next()
            counts.append(n)
            choice.record(n, chunk * (2 if n == slower else 1), 10)

    run(9, slower=1)  # an idle machine: two threads win
    assert counts == [2] * 8 + [1] and choice.current == 2
    run(9, slower=2)  # busy: the next probe comes twice as late, and wins
    assert counts == [2] * 8 + [1] and choice.current == 1
    run(9, slower=2)  # one thread in use, and two threads probed after PROBE_FIRST again
    assert counts == [1] * 8 + [2] and choice.current == 1
    for _ in range(10):  # one thread keeps winning: the interval stops at PROBE_MOST
        run(int(choice.interval / chunk) + 1, slower=2)
    assert counts == [1] * int(threads.PROBE_MOST / chunk) + [2]
    alone = threads.ChunkThreads(1)
    for _ in range(100):
        alone.record(alone.next(), chunk, 10)
    assert alone.next() == 1


def test_chunk_threads_leave_threads_that_waited_for_a_core():
    """A per-sample chunk whose threads waited for one another off their
    cores turns the fit to one thread at once, however fast it ran; a probe
    of two threads that waited so counts as lost."""
    choice = threads.ChunkThreads(2)
    choice.record(2, 0.1, 10)
    choice.record(2, 0.1, 10, waited=True)
    assert choice.current == 1 and choice.next() == 1
    while choice.next() == 1:
        choice.record(1, 1.0, 10)
    interval = choice.interval
    choice.record(2, 0.01, 10, waited=True)  # the probe: fast, but waited
    assert choice.current == 1 and choice.interval == 2 * interval


def test_a_fit_moving_between_thread_counts_keeps_its_bits(monkeypatch):
    """A fit may run each compiled chunk on its threads or on one
    (threads.ChunkThreads); here it tries the other count after every chunk,
    with chunks of one batch."""
    monkeypatch.setattr(threads, "PROBE_FIRST", 0.0)
    monkeypatch.setattr(threads, "PROBE_MOST", 0.0)
    monkeypatch.setattr(trainer, "CHUNK_SECONDS", 1e-9)
    used, using = [], threads.using

    def spy(n):
        used.append(n)
        return using(n)
    monkeypatch.setattr(threads, "using", spy)
    moved = train(2)
    assert used.count(1) >= 3 and used.count(2) >= 3
    monkeypatch.undo()
    np.testing.assert_array_equal(moved, train(1))


# Trains a net and prints the SHA-256 of its parameters' bytes.
HASH_SCRIPT = """
import hashlib, sys
import numpy as np
import fastmlp
rng = np.random.default_rng(0)
X, y = rng.random((512, 100)), rng.integers(0, 10, 512)
net = fastmlp.MLP((100, 64, 10), "relu", dtype=sys.argv[1], seed=0)
net.fit(X, y, epochs=2, batch_size=int(sys.argv[2]), lr=0.1, optimizer="adam", verbose=0,
        n_threads=int(sys.argv[3]), shards=sys.argv[4] == "shards")
print(hashlib.sha256(net.params.tobytes()).hexdigest())
"""


@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("n_threads, shards", [(1, "whole"), (2, "whole"), (2, "shards")])
def test_same_seed_gives_the_same_bits_in_every_process(dtype, n_threads, shards):
    args = [sys.executable, "-c", HASH_SCRIPT, dtype, "100", str(n_threads), shards]
    env = dict(os.environ, NUMBA_NUM_THREADS="2")
    hashes = [subprocess.run(args, capture_output=True, text=True, check=True, env=env,
                             timeout=300).stdout.strip() for _ in range(2)]
    assert len(hashes[0]) == 64 and hashes[0] == hashes[1]
