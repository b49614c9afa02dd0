# The compiled core's sources, each building on those before it. Every build's .pyx
# (baseline, avx2, avx512) is this file alone, compiled with its own -march (setup.py).
#
#   products.pxi  the products of a layer: gemm.h's own loops on thin layers, else BLAS
#   layout.pxi    Layout, the architecture every entry point takes, and its buffer checks
#   rows.pxi      Rows, what the kernels see of X (dense or CSR), and CSR's first layer
#   kernels.pxi   the row-block pass: its shared pieces and one function per mode
#   batch.pxi     forward, cost_grad, reg_cost: every row at once, across threads
#   lbfgs.pxi     the two passes of an L-BFGS iteration over its stored rows
#   serve.pxi     Predictor: a snapshot's forward pass on a few rows, set up once
#   loops.pxi     online_epoch, minibatch_epoch (StepRule, StepState), rprop_update

import numpy as np

cimport numpy as cnp
from cython cimport floating
from cython.parallel cimport prange, threadid

cnp.import_array()

include "products.pxi"
include "layout.pxi"
include "rows.pxi"
include "kernels.pxi"
include "batch.pxi"
include "lbfgs.pxi"
include "serve.pxi"
include "loops.pxi"
