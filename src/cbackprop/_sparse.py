"""Sparse X (scipy.sparse matrices and arrays) as the compiled core reads it: CSR.

The core's first layer runs over a row's stored entries only, forward and back
(_core/rows.pxi); every other layer is dense. CSC, COO and the other formats are
converted to CSR once, when X is checked; X is never densified.
"""
import numpy as np

from cbackprop import _validation as v


def is_sparse(X):
    """Whether X is a scipy.sparse matrix or array (without importing scipy.sparse)."""
    return type(X).__module__.startswith("scipy.sparse") and hasattr(X, "tocsr")


class CSR:
    """A CSR matrix as the core takes it: data of the network's dtype, indices as C ints,
    indptr as intp (Py_ssize_t), shape. Rows can be taken (`take`) for validation splits.

    `columns`, once with_columns() has made it, holds the same matrix by columns (CSC:
    data, row indices, column pointers), from which the core's full-batch gradient sums
    the first layer's weights a column at a time: worth its memory (as much again as X)
    for a fit's many calls on one X, so fit asks for it, and single calls do not. The
    columns come in segments of rows, one CSC of each segment after the other (column
    pointers: a segment's n + 1 after the other's), so that the core's pass over one
    segment's entries reads delta(2) of those rows only, a block that stays in cache."""

    __slots__ = ("data", "indices", "indptr", "shape", "columns", "_segment_rows", "blocks",
                 "_block_columns")
    ndim = 2

    def __init__(self, data, indices, indptr, shape):
        self.data, self.indices, self.indptr = data, indices, indptr
        self.shape = (int(shape[0]), int(shape[1]))
        self.columns, self._segment_rows = None, None
        self.blocks, self._block_columns = None, None

    def with_columns(self, segment_rows=None):
        """self, with `columns` made (scipy's CSR to CSC conversion, a segment of
        segment_rows rows at a time; None: one segment) unless it was, in those segments."""
        m = self.shape[0]
        segment_rows = m if segment_rows is None else max(1, min(int(segment_rows), m))
        if self.columns is None or self._segment_rows != segment_rows:
            whole = self.to_scipy()
            parts = [whole[r0:r0 + segment_rows].tocsc() for r0 in range(0, m, segment_rows)]
            starts = np.cumsum([0] + [part.nnz for part in parts[:-1]])
            self.columns = (
                np.concatenate([part.data for part in parts]).astype(self.dtype, copy=False),
                np.concatenate([part.indices.astype(np.intc) + r0 for part, r0
                                in zip(parts, range(0, m, segment_rows))]),
                np.concatenate([part.indptr.astype(np.intp) + start for part, start
                                in zip(parts, starts)]))
            self._segment_rows = segment_rows
        return self

    def with_blocks(self, block_columns):
        """self, with `blocks` made (unless it was, in blocks of that many columns): the
        same entries grouped by blocks of block_columns columns, each block's row by row
        (pointers: a block's m after the other's), from which the core's full-batch
        forward pass reads one block of W(1)^T's rows at a time, a block that stays in
        cache. Each row's entries keep their order."""
        block_columns = max(1, int(block_columns))
        if self.blocks is None or self._block_columns != block_columns:
            m = self.shape[0]
            block = self.indices // block_columns
            n_blocks = max(1, -(-self.shape[1] // block_columns))
            order = np.argsort(block, kind="stable")        # by block, then by position
            rows = np.repeat(np.arange(m, dtype=np.intp), np.diff(self.indptr))
            counts = np.bincount(block.astype(np.intp) * m + rows, minlength=n_blocks * m)
            ptr = np.zeros(n_blocks * m + 1, dtype=np.intp)
            np.cumsum(counts, out=ptr[1:])
            self.blocks = (np.ascontiguousarray(self.data[order]),
                           np.ascontiguousarray(self.indices[order]), ptr)
            self._block_columns = block_columns
        return self

    @property
    def dtype(self):
        return self.data.dtype

    @property
    def nnz(self):
        return int(self.indptr[-1])

    def __len__(self):
        return self.shape[0]

    def take(self, rows):
        """The rows given (indices, in their order) as a new CSR."""
        rows = np.asarray(rows, dtype=np.intp)
        starts, ends = self.indptr[rows], self.indptr[rows + 1]
        lengths = ends - starts
        indptr = np.zeros(len(rows) + 1, dtype=np.intp)
        np.cumsum(lengths, out=indptr[1:])
        # every kept entry's position in data: its row's start plus its rank in the row
        pos = np.repeat(starts - indptr[:-1], lengths) + np.arange(indptr[-1], dtype=np.intp)
        return CSR(self.data[pos], self.indices[pos], indptr, (len(rows), self.shape[1]))

    __getitem__ = take

    def to_scipy(self):
        import scipy.sparse
        return scipy.sparse.csr_array((self.data, self.indices, self.indptr), shape=self.shape)

    def toarray(self):
        return self.to_scipy().toarray()

    def __repr__(self):
        return f"CSR(shape={self.shape}, nnz={self.nnz}, dtype={self.dtype.name})"


# delta(2) of a segment's rows, W(1)^T's rows of a block's columns: half of a core's L2
SEGMENT_BYTES = BLOCK_BYTES = 1 << 20


def segment_rows(n_hidden, itemsize):
    """The rows of a segment of `columns` for a first hidden layer of n_hidden units."""
    return max(1, SEGMENT_BYTES // (max(1, n_hidden) * itemsize))


def block_columns(n_hidden, itemsize):
    """The columns of a block of `blocks` for a first hidden layer of n_hidden units."""
    return max(1, BLOCK_BYTES // (max(1, n_hidden) * itemsize))


def as_csr(name, X, dtype, n_cols=None, what="features"):
    """X (scipy.sparse, any format, or a CSR) as a checked CSR of dtype: 2-D, not empty,
    n_cols columns, finite stored values."""
    if isinstance(X, CSR):
        csr = X
    else:
        if len(X.shape) != 2:
            raise ValueError(f"{name} must be 2-D (samples x {what}); got shape {X.shape}")
        csr = X.tocsr()
        if csr.dtype.kind not in "biuf":
            raise TypeError(f"{name} must hold numbers (bool, int or float); got dtype "
                            f"{csr.dtype}")
    m, n = csr.shape
    if m == 0 or n == 0:
        raise ValueError(f"{name} is empty (shape {csr.shape})")
    if n_cols is not None and n != n_cols:
        raise ValueError(f"{name} has {n} {what}, the network expects {n_cols}")
    if isinstance(csr, CSR) and csr.dtype == dtype:
        return csr
    data = v.cast_finite(name, csr.data, dtype)
    indices = np.ascontiguousarray(csr.indices, dtype=np.intc)
    indptr = np.ascontiguousarray(csr.indptr, dtype=np.intp)
    return CSR(data, indices, indptr, (m, n))
