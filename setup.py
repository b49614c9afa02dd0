"""Build the compiled core. All metadata lives in pyproject.toml."""
import os

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

# Neither flag changes a result: -fno-math-errno lets the compiler treat log as pure
# (no errno side effect); -fno-trapping-math lets it evaluate both sides of a select,
# which it needs to vectorize the elementwise loops (we never enable FP traps).
compile_args = ["-O3", "-fno-math-errno", "-fno-trapping-math", "-fopenmp"]
link_args = ["-fopenmp"]
if os.name == "nt":
    compile_args, link_args = ["/O2", "/openmp"], []

extensions = [
    Extension(
        f"cbackprop.{name}",
        [f"src/cbackprop/{name}.pyx"],
        include_dirs=[numpy.get_include(), "src/cbackprop"],
        define_macros=[("NPY_NO_DEPRECATED_API", "NPY_1_7_API_VERSION")],
        extra_compile_args=compile_args,
        extra_link_args=link_args,
    )
    for name in ("_kernels", "_train")
]

setup(ext_modules=cythonize(extensions, compiler_directives=directives))
