"""Ctrl-C during fit: finish the current batch or iteration, keep the parameters, return.

A stop request belongs to the fit the signal interrupted. Each fit gets a flag of its own
(core.StopFlag); the SIGINT handler, which only the main thread can own, sets the flag of
the main thread's fit alone, which the compiled epoch loops running in the main thread
obey (the fit registers it with the core; a caller may also hand a flag to the loops,
`stop=`). A Ctrl-C never ends a fit running in another thread (it stopped early, without
a warning, when the flag was one for the whole process)."""
import contextlib
import signal
import threading

from cbackprop._core import core

InterruptFlag = core.StopFlag      # `requested`: whether this fit was asked to stop


@contextlib.contextmanager
def graceful_interrupt():
    """While training, SIGINT sets this fit's flag (which the compiled loops in the main
    thread obey) instead of raising.

    Only the main thread can own signal handlers; elsewhere the flag is the fit's own, which
    no signal sets (core.request_stop still stops every loop).
    """
    flag = InterruptFlag()
    if threading.current_thread() is not threading.main_thread():
        yield flag
        return

    def handler(signum, frame):
        flag.request()

    outer = core.set_main_fit_flag(flag)
    try:
        previous = signal.signal(signal.SIGINT, handler)
        try:
            yield flag
        finally:
            signal.signal(signal.SIGINT, previous)
    finally:
        core.set_main_fit_flag(outer)
