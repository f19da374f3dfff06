"""What ``MLP.fit`` shows while it trains.

verbose=1 draws a tqdm progress bar per epoch (samples/s, running loss and
accuracy), updated between the compiled chunks of training, so it costs
nothing measurable; without tqdm installed (``pip install "fastmlp[progress]"``)
it prints as verbose=2 does: one line per epoch. verbose=0 shows nothing.
"""

import time


def _bar_class():
    try:
        from tqdm.auto import tqdm
    except ImportError:
        return None
    return tqdm


def _format(metrics):
    return {name: f"{value:.4f}" for name, value in metrics.items()}


class EpochProgress:
    """Progress of ``epochs`` epochs of ``n`` samples each."""

    def __init__(self, verbose, epochs, n):
        self.verbose = verbose
        self.epochs = epochs
        self.n = n
        self.bar_class = _bar_class() if verbose == 1 else None
        self.bar = None

    def start(self, epoch):
        self.epoch = epoch
        self.started = time.perf_counter()
        if self.bar_class is not None:
            self.bar = self.bar_class(total=self.n, desc=f"epoch {epoch}/{self.epochs}",
                                      unit=" samples", unit_scale=True, leave=True)
            self.shown = 0

    def update(self, samples, running):
        """``samples`` done so far in this epoch; ``running`` the metrics so far."""
        if self.bar is not None:
            self.bar.update(samples - self.shown)
            self.shown = samples
            self.bar.set_postfix(_format(running), refresh=False)

    def end(self, metrics):
        """Close the epoch with its final metrics (validation ones included)."""
        if self.bar is not None:
            self.bar.set_postfix(_format(metrics), refresh=False)
            self.bar.close()
        elif self.verbose:
            shown = "  ".join(f"{k} {v}" for k, v in _format(metrics).items())
            print(f"epoch {self.epoch}/{self.epochs}  {shown}  "
                  f"({time.perf_counter() - self.started:.2f} s)", flush=True)
