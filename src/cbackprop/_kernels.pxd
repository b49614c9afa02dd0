# Declarations of the compiled core shared with the training loops (_train.pyx).
from cython cimport floating

cdef enum:
    SIGMOID = 0
    TANH = 1
    RELU = 2
    IDENTITY = 3
    SOFTMAX = 4

cdef enum:
    CROSS_ENTROPY = 0
    SQUARED_ERROR = 1

cdef struct Net:
    int n_layers                # L, input layer included
    const int* sizes            # s_1 .. s_L
    const Py_ssize_t* offsets   # where Theta(l) starts in the flat parameters
    const int* acts             # activation of layers 2 .. L (the last is the output's)
    int loss

cdef Net make_net(const int[::1] sizes, const Py_ssize_t[::1] offsets, const int[::1] acts,
                  int loss) noexcept

cdef Py_ssize_t workspace_size(const Net* net, int mb_max) noexcept nogil

cdef double block(const Net* net, const floating* X, const floating* Y, const floating* w,
                  int mb, const floating* params, floating* H_out,
                  floating* target, floating alpha, floating decay,
                  floating* ws, int mb_max) noexcept nogil

cdef double regularize(const Net* net, const floating* params, floating* grad,
                       double loss_norm, double reg) noexcept nogil
