"""Thread counts: the kernels split row blocks across cores themselves."""
import contextlib
import os


def default_threads():
    """Cores this process may use (affinity-aware), at most 8."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    return max(1, min(n, 8))


@contextlib.contextmanager
def blas_single_threaded(active=True):
    yield
