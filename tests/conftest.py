"""Shared fixtures for the tests of the compiled core."""
import signal
import zlib

import numpy as np
import pytest


@pytest.fixture
def rng(request):
    """A numpy Generator seeded from the test's name and parameters (not its path).

    The same test id draws the same shapes and data wherever the suite runs
    (source tree or installed package), so a failure always reproduces.
    """
    return np.random.default_rng(zlib.crc32(request.node.name.encode()))


@pytest.fixture
def sigint_outside_fit():
    """Record a SIGINT that arrives while no fit owns the handler, instead of letting
    KeyboardInterrupt abort the whole test session."""
    outside = []
    previous = signal.signal(signal.SIGINT, lambda signum, frame: outside.append(signum))
    try:
        yield outside
    finally:
        signal.signal(signal.SIGINT, previous)
