"""Build the compiled core. All metadata lives in pyproject.toml.

The core's sources (src/cbackprop/_core/core.pxi and the .pxi, .pxd and .h files beside
it) are compiled once per instruction set on x86-64 Linux: cbackprop._core.baseline (the
baseline every x86-64 runs, BLAS for every product), cbackprop._core.avx2 (x86-64-v3:
AVX2 + FMA, which vectorize the elementwise loops in wider lanes, and our own products of
gemm.h) and cbackprop._core.avx512 (x86-64-v4: the same products on 512-bit vectors and
32 registers). cbackprop._core picks the best one the processor runs at import time.
Other platforms get the baseline alone, built with the compiler's defaults.
CBACKPROP_BASELINE_ONLY=1 builds the baseline alone anywhere.
"""
import glob
import os
import platform
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

CORE = "src/cbackprop/_core"

# CBACKPROP_DEBUG=1 builds with bounds checks on, for hunting memory errors.
DEBUG = os.environ.get("CBACKPROP_DEBUG", "") not in ("", "0")

directives = {
    "language_level": 3,
    "boundscheck": DEBUG,
    "wraparound": DEBUG,
    "initializedcheck": DEBUG,
    "cdivision": True,
    "embedsignature": True,
}

if os.name == "nt":
    base_args, link_args, variants = ["/O2", "/openmp"], [], {"baseline": []}
else:
    # Neither flag changes a result: -fno-math-errno lets the compiler treat log as pure
    # (no errno side effect); -fno-trapping-math lets it evaluate both sides of a select,
    # which it needs to vectorize the elementwise loops (we never enable FP traps).
    base_args = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]
    link_args = ["-fopenmp"]
    variants = {"baseline": []}
    if platform.machine().lower() in ("x86_64", "amd64") and sys.platform.startswith("linux"):
        variants["avx2"] = ["-march=x86-64-v3"]
        variants["avx512"] = ["-march=x86-64-v4", "-mprefer-vector-width=512"]
    if os.environ.get("CBACKPROP_BASELINE_ONLY", "") not in ("", "0"):
        variants = {"baseline": []}

extensions = [
    Extension(
        f"cbackprop._core.{build}",
        [f"{CORE}/{build}.pyx"],
        include_dirs=[numpy.get_include(), CORE],
        # rebuild in place when a header changes (Cython tracks the .pxi and .pxd itself)
        depends=sorted(glob.glob(f"{CORE}/*.h")),
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=base_args + flags,
        extra_link_args=link_args,
    )
    for build, flags in variants.items()
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives, nthreads=os.cpu_count() or 1))
