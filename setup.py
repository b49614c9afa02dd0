"""Build the compiled core. All metadata lives in pyproject.toml.

The core's sources (_kernels.pxi, _train.pxi) are compiled three times on x86-64 Linux:
_core (the baseline every x86-64 runs, BLAS for every product), _core_avx2 (x86-64-v3:
AVX2 + FMA, which made the elementwise loops and small products 15-25% faster, and runs
our own products of _gemm.h) and _core_avx512 (x86-64-v4: the same products on 512-bit
vectors and 32 registers). cbackprop._cpu picks the best one the processor runs at
import time. Other platforms get _core alone, built with the compiler's defaults.
"""
import glob
import os
import platform
import sys

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup

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
    base_args, link_args, variants = ["/O2", "/openmp"], [], {"": []}
else:
    # Neither flag changes a result: -fno-math-errno lets the compiler treat log as pure
    # (no errno side effect); -fno-trapping-math lets it evaluate both sides of a select,
    # which it needs to vectorize the elementwise loops (we never enable FP traps).
    base_args = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]
    link_args = ["-fopenmp"]
    variants = {"": []}
    if platform.machine().lower() in ("x86_64", "amd64") and sys.platform.startswith("linux"):
        variants["_avx2"] = ["-march=x86-64-v3"]
        variants["_avx512"] = ["-march=x86-64-v4", "-mprefer-vector-width=512"]
    if os.environ.get("CBACKPROP_BASELINE_ONLY", "") not in ("", "0"):
        variants = {"": []}

extensions = [
    Extension(
        f"cbackprop._core{suffix}",
        [f"src/cbackprop/_core{suffix}.pyx"],
        include_dirs=[numpy.get_include(), "src/cbackprop"],
        depends=sorted(glob.glob("src/cbackprop/*.h")),     # rebuild when a header changes
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=base_args + flags,
        extra_link_args=link_args,
    )
    for suffix, flags in variants.items()
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives, nthreads=os.cpu_count() or 1))
