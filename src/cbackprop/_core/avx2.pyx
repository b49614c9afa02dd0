# cython: language_level=3
"""The compiled core, built for AVX2 and FMA (x86-64-v3).

setup.py compiles the same sources (core.pxi) once per instruction set;
cbackprop._core imports the best build this processor runs.
"""
include "core.pxi"
