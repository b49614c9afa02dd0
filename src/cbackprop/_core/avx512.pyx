# cython: language_level=3
"""The compiled core, built for AVX-512 (x86-64-v4).

setup.py builds these same sources once per instruction set (see setup.py);
cbackprop._cpu imports the best one this processor runs.
"""
include "_kernels.pxi"
include "_train.pxi"
