# Row-major BLAS wrappers, generic over float/double.
#
# Every matrix here is C-ordered (row-major) with an explicit leading dimension
# (the distance between rows, so a strided view such as Theta[:, 1:] is
# (ptr + 1, ld = s_in + 1)). BLAS is column-major: a row-major A (r x c, ld) is
# the column-major A^T (c x r, ld). Each wrapper therefore computes the
# transposed problem (C^T = B^T A^T) by swapping operands and sizes, once, here.
# Callers say which product they mean in row-major terms and never think about it.

from cython cimport floating
from scipy.linalg.cython_blas cimport sgemm, dgemm, sgemv, dgemv, sger, dger


cdef inline void gemm_nt(int M, int N, int K, floating alpha,
                         const floating* A, int lda, const floating* B, int ldb,
                         floating beta, floating* C, int ldc) noexcept nogil:
    """C (M x N) = alpha * A (M x K) @ B (N x K)^T + beta * C."""
    cdef char* ta = b"T"
    cdef char* tb = b"N"
    if floating is float:
        sgemm(ta, tb, &N, &M, &K, &alpha, <float*>B, &ldb, <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(ta, tb, &N, &M, &K, &alpha, <double*>B, &ldb, <double*>A, &lda, &beta, C, &ldc)


cdef inline void gemm_tn(int M, int N, int K, floating alpha,
                         const floating* A, int lda, const floating* B, int ldb,
                         floating beta, floating* C, int ldc) noexcept nogil:
    """C (M x N) = alpha * A (K x M)^T @ B (K x N) + beta * C."""
    cdef char* ta = b"N"
    cdef char* tb = b"T"
    if floating is float:
        sgemm(ta, tb, &N, &M, &K, &alpha, <float*>B, &ldb, <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(ta, tb, &N, &M, &K, &alpha, <double*>B, &ldb, <double*>A, &lda, &beta, C, &ldc)


cdef inline void gemm_nn(int M, int N, int K, floating alpha,
                         const floating* A, int lda, const floating* B, int ldb,
                         floating beta, floating* C, int ldc) noexcept nogil:
    """C (M x N) = alpha * A (M x K) @ B (K x N) + beta * C."""
    cdef char* t = b"N"
    if floating is float:
        sgemm(t, t, &N, &M, &K, &alpha, <float*>B, &ldb, <float*>A, &lda, &beta, C, &ldc)
    else:
        dgemm(t, t, &N, &M, &K, &alpha, <double*>B, &ldb, <double*>A, &lda, &beta, C, &ldc)


cdef inline void gemv_n(int M, int N, floating alpha, const floating* A, int lda,
                        const floating* x, floating beta, floating* y) noexcept nogil:
    """y (M) = alpha * A (M x N) @ x (N) + beta * y."""
    cdef char* t = b"T"
    cdef int one = 1
    if floating is float:
        sgemv(t, &N, &M, &alpha, <float*>A, &lda, <float*>x, &one, &beta, y, &one)
    else:
        dgemv(t, &N, &M, &alpha, <double*>A, &lda, <double*>x, &one, &beta, y, &one)


cdef inline void gemv_t(int M, int N, floating alpha, const floating* A, int lda,
                        const floating* x, floating beta, floating* y) noexcept nogil:
    """y (N) = alpha * A (M x N)^T @ x (M) + beta * y."""
    cdef char* t = b"N"
    cdef int one = 1
    if floating is float:
        sgemv(t, &N, &M, &alpha, <float*>A, &lda, <float*>x, &one, &beta, y, &one)
    else:
        dgemv(t, &N, &M, &alpha, <double*>A, &lda, <double*>x, &one, &beta, y, &one)


cdef inline void ger(int M, int N, floating alpha, const floating* x, const floating* y,
                     floating* A, int lda) noexcept nogil:
    """A (M x N) += alpha * x (M) y (N)^T."""
    cdef int one = 1
    if floating is float:
        sger(&N, &M, &alpha, <float*>y, &one, <float*>x, &one, A, &lda)
    else:
        dger(&N, &M, &alpha, <double*>y, &one, <double*>x, &one, A, &lda)
