"""Ctrl-C during fit: finish the current batch or iteration, keep the parameters, return."""
import contextlib
import signal
import threading

from cbackprop._core import core


class InterruptFlag:
    requested = False


@contextlib.contextmanager
def graceful_interrupt():
    """While training, SIGINT sets a flag (also seen by the compiled loops) instead of raising.

    Only the main thread can own signal handlers; elsewhere this does nothing.
    """
    flag = InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag.requested = True
        core.request_stop()

    previous = signal.signal(signal.SIGINT, handler)
    core.clear_stop()
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
        core.clear_stop()
