# cython: language_level=3
"""The compiled core, built for the platform's baseline instruction set (BLAS runs every product).

setup.py compiles the same sources (core.pxi) once per instruction set;
cbackprop._core imports the best build this processor runs.
"""
include "core.pxi"
