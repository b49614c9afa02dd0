"""Ctrl-C during fit: finish the current batch or iteration, keep the parameters, return.

A stop request belongs to the fit the signal interrupted. Each fit gets a flag of its own
(core.StopFlag), which it hands to the compiled epoch loops; the SIGINT handler, which only
the main thread can own, sets the flag of the main thread's fit alone, so that a Ctrl-C
never ends a fit running in another thread (it would have stopped early, without a
warning)."""
import contextlib
import signal
import threading

from cbackprop._core import core

InterruptFlag = core.StopFlag      # `requested`: whether this fit was asked to stop


@contextlib.contextmanager
def graceful_interrupt():
    """While training, SIGINT sets this fit's flag (also seen by the compiled loops it is
    handed to) instead of raising.

    Only the main thread can own signal handlers; elsewhere the flag is the fit's own, which
    no signal sets (core.request_stop still stops every loop).
    """
    flag = InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag.request()

    previous = signal.signal(signal.SIGINT, handler)
    try:
        yield flag
    finally:
        signal.signal(signal.SIGINT, previous)
