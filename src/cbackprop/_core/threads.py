"""Thread counts. The kernels split row blocks across cores themselves, so while they
run, BLAS must stay on one thread inside each block: letting OpenBLAS add its own
threads to every small product oversubscribes the cores (benchmarks/README.md,
"Measurements behind the code's choices", has what that cost)."""
import contextlib
import os
import threading

_lock = threading.Lock()
_depth = 0          # kernels running with BLAS held to one thread, across Python threads
_saved = []
_libs = None


def default_threads():
    """Cores this process may use (affinity-aware), at most 8, and no more than
    OMP_NUM_THREADS says (joblib sets it to 1 in its workers, so that jobs running
    side by side do not each start a thread per core)."""
    try:
        n = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        n = os.cpu_count() or 1
    first = os.environ.get("OMP_NUM_THREADS", "").split(",")[0].strip()   # "4,2": nested form
    if first.isdigit() and int(first) >= 1:
        n = min(n, int(first))
    return max(1, min(n, 8))


def _blas_libs():
    """threadpoolctl's controllers of the loaded BLAS libraries (scipy's among them), found once."""
    global _libs
    if _libs is None:
        from threadpoolctl import ThreadpoolController
        _libs = ThreadpoolController().select(user_api="blas").lib_controllers
    return _libs


@contextlib.contextmanager
def blas_single_threaded(active=True):
    """Hold every BLAS to one thread while a row-split kernel runs.

    Reference-counted so that kernels running at once from several Python threads
    restore the user's setting only when the last one leaves.
    """
    global _depth, _saved
    if not active:
        yield
        return
    with _lock:
        if _depth == 0:
            libs = _blas_libs()
            _saved = [lib.get_num_threads() for lib in libs]
            for lib in libs:
                lib.set_num_threads(1)
        _depth += 1
    try:
        yield
    finally:
        with _lock:
            _depth -= 1
            if _depth == 0:
                for lib, n in zip(_blas_libs(), _saved):
                    lib.set_num_threads(n)
