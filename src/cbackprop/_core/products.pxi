# The products of a layer, and who runs them: gemm.h's own register-tiled loops on thin
# layers (builds with AVX2 + FMA or AVX-512), BLAS (blas.pxd) on wide layers and on the
# baseline build. Every product here is row-major with explicit row strides, so that
# Theta's weights are used in place as the strided view theta + 1 (the bias in column 0).

from cython cimport floating

from cbackprop._core.blas cimport gemm_nt, gemm_tn, gemm_nn, gemv_n, gemv_t, ger


cdef extern from "gemm.h" nogil:
    const bint CB_OWN_GEMM
    void cb_gemm_d(int R, int N, int S, double alpha, const double* coef, long rs, long ss,
                   const double* B, long ldb, int accumulate, double* C, long ldc,
                   int s_block)
    void cb_gemm_f(int R, int N, int S, float alpha, const float* coef, long rs, long ss,
                   const float* B, long ldb, int accumulate, float* C, long ldc,
                   int s_block)
    const int CB_LANES_D, CB_LANES_F
    void cb_dot_rows_d(int R, int T, int S, const double* X, long ldx, const double* Wr,
                       long ldw, double* C, long ldc)
    void cb_dot_rows_f(int R, int T, int S, const float* X, long ldx, const float* Wr,
                       long ldw, float* C, long ldc)
    void cb_colsum_d(int S, int N, const double* B, long ldb, double* out)
    void cb_colsum_f(int S, int N, const float* B, long ldb, float* out)
    void cb_matvec_rows_d(int m, int n, const double* W, long ld, const double* x, double* y)
    void cb_matvec_rows_f(int m, int n, const float* W, long ld, const float* x, float* y)
    void cb_update_matvec_rows_d(int m, int n, double* W, long ld, const double* x, double* y,
                                 double alpha, const double* dp, const double* xp,
                                 double decay)
    void cb_update_matvec_rows_f(int m, int n, float* W, long ld, const float* x, float* y,
                                 float alpha, const float* dp, const float* xp, float decay)
    void cb_update_rows_d(int m, int n, double alpha, const double* d, const double* x,
                          double* G, long ld, double decay)
    void cb_update_rows_f(int m, int n, float alpha, const float* d, const float* x,
                          float* G, long ld, float decay)

cdef bint _own_products = CB_OWN_GEMM
# Our products serve layers up to this many units; wider ones go to BLAS, whose cache
# blocking wins there (the crossover measured: benchmarks/README.md, "Measurements behind
# the code's choices").
cdef int OWN_MAX_UNITS = 128


def use_own_products(bint on):
    """Blocks of rows through gemm.h (True, where built) or through BLAS (False): for
    tests and benchmarks that compare the two. Returns the previous setting."""
    global _own_products
    previous = _own_products
    _own_products = on and CB_OWN_GEMM
    return previous


def own_products_for(int units):
    """Whether blocks of rows run a layer of this many units through gemm.h's products
    (which never skip a zero factor, unlike some BLAS: a NaN or inf in the layer's input
    always reaches its gradient)."""
    return bool(_own_products and units <= OWN_MAX_UNITS)

# The gradient product sums over a block's rows in slices of this many (cb_gemm's s_block),
# so that a slice of A's panel stays in L1 for every row tile instead of being read from L2
# by each (benchmarks/README.md, "Measurements behind the code's choices").
cdef int GRADIENT_SLICE = 96

# Up to this many weights a layer's per-sample products run in gemm.h's loops (on builds
# that have them): there a BLAS call costs more than its arithmetic. One sample's update of
# Theta runs there at any size (aligned stores, weight decay folded in).
cdef int SMALL_LAYER = 4096

# Forward passes (forward, predict, the Predictor) run every layer through our products,
# however wide: no gradient product follows there, and a forward product through BLAS
# packs X's block on every call (the gain, and the packing's cost, in benchmarks/README.md,
# "Measurements behind the code's choices"). Training keeps OWN_MAX_UNITS: the W^T of a wide
# layer costs more to pack every mini-batch than ours gains over BLAS's product.
cdef int FORWARD_PACKED = 1 << 30


cdef inline void _gemm(int R, int N, int S, floating alpha, const floating* coef, long rs,
                       long ss, const floating* B, long ldb, bint accumulate, floating* C,
                       long ldc, int s_block) noexcept nogil:
    """C (R x N) (+)= alpha sum_s coef[r rs + s ss] B[s, :]: gemm.h's one product form."""
    if floating is float:
        cb_gemm_f(R, N, S, alpha, coef, rs, ss, B, ldb, accumulate, C, ldc, s_block)
    else:
        cb_gemm_d(R, N, S, alpha, coef, rs, ss, B, ldb, accumulate, C, ldc, s_block)

cdef inline void _forward_product(int mb, int s_out, int s_in, const floating* A,
                                  const floating* wt, int ldwt, const floating* W, int ldw,
                                  floating* Z) noexcept nogil:
    """Z (mb x s_out) = A W^T, W^T packed in wt (s_in x s_out, row stride ldwt). The
    broadcast form fills vectors along a row of Z; when the last vector would hold a quarter of its lanes or
    fewer (25 units in float64's vectors of 8: 3 full and 1), those columns are dot
    products of A's rows with W's instead, which keeps the last vector's work from costing
    as much as a full one. A larger remainder (float32's 9 of 16 lanes at 25 units) stays
    in the broadcast form, which measured faster there (benchmarks/README.md)."""
    cdef int lanes = CB_LANES_F if floating is float else CB_LANES_D
    cdef int tail = s_out % lanes
    if tail == 0 or tail * 4 > lanes or tail == s_out:
        _gemm(mb, s_out, s_in, 1, A, s_in, 1, wt, ldwt, False, Z, s_out, 0)
        return
    _gemm(mb, s_out - tail, s_in, 1, A, s_in, 1, wt, ldwt, False, Z, s_out, 0)
    if floating is float:
        cb_dot_rows_f(mb, tail, s_in, A, s_in, W + <Py_ssize_t>(s_out - tail) * ldw, ldw,
                      Z + s_out - tail, s_out)
    else:
        cb_dot_rows_d(mb, tail, s_in, A, s_in, W + <Py_ssize_t>(s_out - tail) * ldw, ldw,
                      Z + s_out - tail, s_out)

cdef inline void _matvec(int M, int N, const floating* W, int ld, const floating* x,
                         floating* y) noexcept nogil:
    """y (M) = W (M x N, row stride ld) @ x."""
    if not CB_OWN_GEMM or <long long>M * N > SMALL_LAYER:
        gemv_n(M, N, 1, W, ld, x, 0, y)
    elif floating is float:
        cb_matvec_rows_f(M, N, W, ld, x, y)
    else:
        cb_matvec_rows_d(M, N, W, ld, x, y)

cdef inline void _matvec_t(int M, int N, const floating* W, int ld, const floating* d,
                           floating* y) noexcept nogil:
    """y (N) = W (M x N, row stride ld)^T @ d."""
    if not CB_OWN_GEMM or <long long>M * N > SMALL_LAYER:
        gemv_t(M, N, 1, W, ld, d, 0, y)
    else:       # the broadcast form with one row: y stays in registers over W's rows
        _gemm(1, N, M, 1, d, 0, 1, W, ld, False, y, N, 0)

cdef inline void _outer(int M, int N, floating alpha, const floating* d, const floating* x,
                        floating* G, int ld, floating decay) noexcept nogil:
    """G (M x N, row stride ld) = decay G + alpha d x^T."""
    cdef int j, i
    cdef floating* row
    if CB_OWN_GEMM:
        if floating is float:
            cb_update_rows_f(M, N, alpha, d, x, G, ld, decay)
        else:
            cb_update_rows_d(M, N, alpha, d, x, G, ld, decay)
        return
    if decay != 1:
        for j in range(M):
            row = G + <Py_ssize_t>j * ld
            for i in range(N):
                row[i] *= decay
    ger(M, N, alpha, d, x, G, ld)

cdef inline void _colsum(int S, int N, const floating* B, long ldb,
                         floating* out) noexcept nogil:
    """out (N) = the sum of B's S rows (row stride ldb), in gemm.h's interleaved sums."""
    if floating is float:
        cb_colsum_f(S, N, B, ldb, out)
    else:
        cb_colsum_d(S, N, B, ldb, out)

cdef inline void _update_matvec_rows(int m, int n, floating* W, int ld, const floating* x,
                                     floating* y, const floating* dp, const floating* xp,
                                     floating decay) noexcept nogil:
    """W = decay W + dp xp^T, then y = W x, in one pass over W (gemm.h)."""
    if floating is float:
        cb_update_matvec_rows_f(m, n, W, ld, x, y, 1, dp, xp, decay)
    else:
        cb_update_matvec_rows_d(m, n, W, ld, x, y, 1, dp, xp, decay)
