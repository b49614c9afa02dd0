"""Thread counts. The kernels split row blocks across cores themselves, so while they
run, BLAS must stay on one thread inside each block: letting OpenBLAS add its own
threads to every small product oversubscribes the cores (benchmarks/README.md,
"Measurements behind the code's choices", has what that cost). A build without OpenMP
(HAS_OPENMP false) has one thread: the counts say so."""
import contextlib
import os
import threading
import time
import warnings

from cbackprop._core import HAS_OPENMP, core

_lock = threading.Lock()
_warned_no_openmp = False
_holders = {}       # thread ident -> kernels it runs with BLAS held to one thread
_saved = []
_libs = None


def usable_cores():
    """Cores this process may run on (its CPU affinity where the platform has one)."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):
        return os.cpu_count() or 1


_CORES_AT_IMPORT = usable_cores()
# OMP_NUM_THREADS as this process started with it, not as it is later: distributed's Nanny
# writes OMP_NUM_THREADS=1 into its parent's environment for the worker processes it spawns,
# and a client that started a LocalCluster would then train single-threaded itself
_OMP_AT_IMPORT = os.environ.get("OMP_NUM_THREADS", "")


def default_threads():
    """Cores this process may use (affinity-aware), at most 8, and no more than
    OMP_NUM_THREADS said when cbackprop was imported (joblib sets it to 1 in its workers,
    Dask in its worker processes, so that jobs running side by side do not each start a
    thread per core). One in a build without OpenMP."""
    if not HAS_OPENMP:
        return 1
    n = usable_cores()
    first = _OMP_AT_IMPORT.split(",")[0].strip()                          # "4,2": nested form
    if first.isdigit() and int(first) >= 1:
        n = min(n, int(first))
    return max(1, min(n, 8))


def capped_threads(n):
    """n threads, or the usable cores if n is more, with a warning saying so: each thread
    beyond them only waits for a core (n_threads=10**6 started that many threads). Called
    every forward or gradient: n within the cores usable at import is taken at once (the
    affinity asked anew costs a system call and a set of the cores). Without OpenMP, 1 (a
    warning, once, if n asks for more)."""
    global _warned_no_openmp
    if not HAS_OPENMP:
        if n > 1 and not _warned_no_openmp:
            _warned_no_openmp = True
            warnings.warn(f"n_threads={n}: this cbackprop was built without OpenMP "
                          "(cbackprop._core.HAS_OPENMP), so it runs on one thread",
                          UserWarning, stacklevel=4)
        return 1
    if n <= _CORES_AT_IMPORT:
        return int(n)
    cores = usable_cores()
    if n > cores:
        warnings.warn(f"n_threads={n} is more than the {cores} cores this process may use; "
                      f"using {cores}", UserWarning, stacklevel=4)
        return cores
    return int(n)


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

    Counted per Python thread, so that kernels running at once from several threads
    restore the user's setting only when the last one leaves (and a forked child, which
    has only the thread that forked, forgets the others').
    """
    global _saved
    if not active:
        yield
        return
    me = threading.get_ident()
    with _lock:
        if not _holders:
            libs = _blas_libs()
            _saved = [lib.get_num_threads() for lib in libs]
            for lib in libs:
                lib.set_num_threads(1)
        _holders[me] = _holders.get(me, 0) + 1
    try:
        yield
    finally:
        with _lock:
            _holders[me] -= 1
            if not _holders[me]:
                del _holders[me]
            if not _holders:
                for lib, n in zip(_blas_libs(), _saved):
                    lib.set_num_threads(n)


def _after_fork_in_child():
    """A forked child has only the thread that forked: a lock another thread held then
    would never be released (the child's next kernel would wait for it forever), and the
    kernels those threads ran never leave. Keep the forking thread's own count only, and
    give back the user's BLAS threads if it held none."""
    global _lock
    _lock = threading.Lock()
    me = threading.get_ident()
    others = [t for t in _holders if t != me]
    for t in others:
        del _holders[t]
    if others and not _holders:
        for lib, n in zip(_libs or (), _saved):
            lib.set_num_threads(n)


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


# The threads of our parallel regions (libgomp's, by default) spin for a while after a
# region ends (GOMP_SPINCOUNT), then sleep. On virtual machines (KVM guests such as this
# project's 2-core ones) a woken thread may be put on the calling thread's core and wait
# there while that one spins at the region's end: an empty two-thread region after 20 ms
# idle took 7.8 ms here, 0.7 us while the threads still spun (benchmarks/README.md,
# "Measurements behind the code's choices"). The core's workers move off the caller's core
# when they find themselves on it (core.forward's at each block, while the caller works;
# core.place_workers, which a call that comes after POOL_NAP seconds without one of ours
# runs first, for the other entry points): a wake then takes about 80 us. A forward pass
# whose work (flops_per_sample units) is below WAKE_WORK runs on the calling thread after
# such a pause instead, which is faster than a wake for a serving loop's few rows.
POOL_NAP = 0.002
WAKE_WORK = 6e7
_last_call = -float("inf")          # time.monotonic() when the last call of ours ended


def threads_after_idle(threads, work, fewer=True, wake=True):
    """threads; after a pause (POOL_NAP), 1 if fewer allows it and work is too small to
    pay for waking them (WAKE_WORK), else threads, woken first if wake (place_workers)."""
    if threads > 1 and time.monotonic() - _last_call > POOL_NAP:
        if fewer and work < WAKE_WORK:
            return 1
        if wake:
            core.place_workers(threads)
    return threads


def note_call(result=None):
    """Records that a call of ours ended now (threads_after_idle's clock); returns result."""
    global _last_call
    _last_call = time.monotonic()
    return result


def forget_calls():
    """As if no call of ours had run yet: for tests of threads_after_idle."""
    global _last_call
    _last_call = -float("inf")
