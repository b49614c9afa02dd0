"""Build the compiled core. All metadata lives in pyproject.toml.

The core's sources (src/cbackprop/_core/core.pxi and the .pxi, .pxd and .h files beside
it) are compiled once per instruction set on x86-64 Linux: cbackprop._core.baseline (the
baseline every x86-64 runs, BLAS for every product), cbackprop._core.avx2 (x86-64-v3:
AVX2 + FMA, which vectorize the elementwise loops in wider lanes, and our own products of
gemm.h) and cbackprop._core.avx512 (x86-64-v4: the same products on 512-bit vectors and
32 registers). cbackprop._core picks the best one the processor runs at import time.
Other platforms get the baseline alone, built with the compiler's defaults.
CBACKPROP_BASELINE_ONLY=1 builds the baseline alone anywhere.

OpenMP splits the row blocks across threads where the compiler has it: build_ext first
compiles and links a tiny OpenMP program with the compiler it will use, and builds without
OpenMP if that fails (Apple's clang): the row blocks then run on one thread, with the same
results. CBACKPROP_OPENMP=0 forces a build without it (CI tests that build); =1 requires it
(an error if the compiler has none); unset or auto probes.
"""
import glob
import os
import platform
import sys
import tempfile

import numpy
from Cython.Build import cythonize
from setuptools import Extension, setup
from setuptools.command.build_ext import build_ext

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
    base_args, link_args, variants = ["/O2"], [], {"baseline": []}
else:
    # Neither flag changes a result: -fno-math-errno lets the compiler treat log as pure
    # (no errno side effect); -fno-trapping-math lets it evaluate both sides of a select,
    # which it needs to vectorize the elementwise loops (we never enable FP traps).
    base_args = ["-O3", "-fno-math-errno", "-fno-trapping-math"]
    link_args = []
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

OPENMP_PROBE = r"""
#include <omp.h>
int main(void) {
    int n = 0;
    #pragma omp parallel reduction(+:n)
    n += omp_get_num_threads() > 0;
    return n > 0 ? 0 : 1;
}
"""


def _has_openmp(compiler, cflags, ldflags):
    """Whether this compiler compiles and links an OpenMP program with these flags (its
    errors, if any, go to the build log)."""
    with tempfile.TemporaryDirectory() as tmp:
        src = os.path.join(tmp, "openmp_probe.c")
        with open(src, "w") as f:
            f.write(OPENMP_PROBE)
        try:
            objects = compiler.compile([src], output_dir=tmp, extra_postargs=cflags)
            compiler.link_executable(objects, "openmp_probe", output_dir=tmp,
                                     extra_postargs=ldflags)
        except Exception:         # CompileError, LinkError, no compiler: no OpenMP for us
            return False
    return True


class BuildExt(build_ext):
    """build_ext that adds OpenMP's flags only where the compiler has OpenMP."""

    def build_extensions(self):
        mode = os.environ.get("CBACKPROP_OPENMP", "auto").strip().lower() or "auto"
        if mode not in ("auto", "0", "1"):
            raise SystemExit(f"CBACKPROP_OPENMP must be 0, 1 or auto; got {mode!r}")
        if self.compiler.compiler_type == "msvc":
            flags = (["/openmp"], [])
        else:
            flags = (["-fopenmp"], ["-fopenmp"])
        # MSVC has always had /openmp: only the others are probed
        found = mode != "0" and (self.compiler.compiler_type == "msvc"
                                 or _has_openmp(self.compiler, *flags))
        if mode == "1" and not found:
            raise SystemExit("CBACKPROP_OPENMP=1, but the C compiler cannot build an OpenMP "
                             f"program with {' '.join(flags[0])} (see the errors above)")
        if found:
            for ext in self.extensions:
                ext.extra_compile_args += flags[0]
                ext.extra_link_args += flags[1]
        elif mode == "auto":
            print("cbackprop: the C compiler has no OpenMP: building without it (the core "
                  "runs on one thread)", file=sys.stderr)
        super().build_extensions()


setup(cmdclass={"build_ext": BuildExt}, ext_modules=cythonize(extensions, compiler_directives=directives, nthreads=os.cpu_count() or 1))
