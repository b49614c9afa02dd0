# cython: language_level=3
"""The compiled core, for the platform's baseline instruction set.

setup.py builds these same sources once per instruction set (see setup.py);
cbackprop._cpu imports the best one this processor runs.
"""
include "_kernels.pxi"
include "_train.pxi"
