"""Ctrl-C during training: finish the compiled chunk, then stop cleanly."""

import signal
import threading


class DeferredInterrupt:
    """While active, the first SIGINT sets ``requested`` instead of raising
    KeyboardInterrupt in the middle of the trainer's bookkeeping; a second one
    raises at once. Only the main thread receives signals: elsewhere, and when
    the program has its own SIGINT handler, this changes nothing."""

    def __enter__(self):
        self.requested = False
        self.previous = None
        if (threading.current_thread() is threading.main_thread()
                and signal.getsignal(signal.SIGINT) is signal.default_int_handler):
            self.previous = signal.signal(signal.SIGINT, self._handle)
        return self

    def _handle(self, signum, frame):
        self.requested = True
        signal.signal(signal.SIGINT, self.previous)

    def __exit__(self, *exc):
        if self.previous is not None:
            signal.signal(signal.SIGINT, self.previous)
        return False
