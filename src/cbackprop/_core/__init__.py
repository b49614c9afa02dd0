"""Pick the build of the compiled core for this processor.

setup.py compiles the same Cython sources three times on x86-64 Linux (baseline,
AVX2 + FMA, AVX-512); the wider ones vectorize the exp/log loops and run our own
products (_gemm.h). NumPy's own CPU detection says which this processor runs.
CBACKPROP_CPU=baseline|avx2|avx512 forces a build (to test each one, or compare them).
"""
import importlib
import os

import numpy as np

# build suffix -> the NumPy CPU features it needs
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
    return "cbackprop._core" if build == "baseline" else f"cbackprop._core_{build}"


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
BUILD = core.__name__.rsplit("_core", 1)[1].lstrip("_") or "baseline"
