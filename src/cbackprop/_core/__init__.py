"""The compiled core, and the choice of its build for this processor.

The sources (core.pxi and what it includes: products, layout, kernels, batch, loops;
the headers gemm.h, gemm_tile.h, fastmath.h; blas.pxd) are compiled by setup.py once per
instruction set on x86-64 Linux: cbackprop._core.baseline (every x86-64, BLAS for every
product), .avx2 (AVX2 + FMA, which also runs the own products of gemm.h) and .avx512
(the same on 512-bit vectors). Other platforms get the baseline alone. NumPy's own CPU
detection says which builds this processor runs; `core` is the best of them, or the one
CBACKPROP_CPU=baseline|avx2|avx512 forces (to test each one, or compare them).

setup.py builds them with OpenMP where the compiler has it; HAS_OPENMP says whether it did
(without, every call runs on one thread). threads.py holds BLAS to one thread while the
kernels split rows; interrupt.py turns
Ctrl-C during fit into a stop at the end of the current batch. See docs/design.md,
"Architecture".
"""
import importlib
import os

# build -> the NumPy CPU features it needs
BUILDS = {
    "avx512": ("AVX512F", "AVX512CD", "AVX512_SKX", "AVX2", "FMA3", "F16C"),
    "avx2": ("AVX2", "FMA3", "F16C"),
    "baseline": (),
}


def _cpu_features():
    for name in ("numpy._core._multiarray_umath", "numpy.core._multiarray_umath"):
        try:
            return importlib.import_module(name).__cpu_features__
        except (ImportError, AttributeError):
            continue
    return {}


def runnable_builds():
    """The builds present in this installation that this processor can run, best first."""
    features = _cpu_features()
    found = []
    for build, needs in BUILDS.items():
        if not all(features.get(f, False) for f in needs):
            continue
        try:
            importlib.import_module(_module_name(build))
        except ImportError:
            continue
        found.append(build)
    return found


def _module_name(build):
    return f"{__name__}.{build}"


def load(build=None):
    """The compiled core module: the given build, CBACKPROP_CPU's, or the best runnable."""
    build = build or os.environ.get("CBACKPROP_CPU", "auto")
    if build == "auto":
        return importlib.import_module(_module_name(runnable_builds()[0]))
    if build not in BUILDS:
        raise ValueError(f"CBACKPROP_CPU must be auto or one of {', '.join(BUILDS)}; got {build!r}")
    if build not in runnable_builds():
        raise ImportError(f"the {build} build of cbackprop's core is not installed or not "
                          "supported by this processor")
    return importlib.import_module(_module_name(build))


core = load()
BUILD = core.__name__.rsplit(".", 1)[1]
# False where the compiler had no OpenMP (setup.py; CBACKPROP_OPENMP=0): one thread then
HAS_OPENMP = core.HAS_OPENMP


def _unpickle_layout(sizes, activations, loss):
    """A pickled Layout, rebuilt by this processor's build (Layout.__reduce__)."""
    return core.Layout(sizes, activations, loss)
