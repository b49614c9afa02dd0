"""Shared fixtures for the tests of the compiled core."""
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
