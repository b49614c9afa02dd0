# Predictor: a network's forward pass for serving loops (issue 17), one or a few rows a
# call. Everything a call of forward() makes or checks again each time (the workspace, the
# packed W^T, the parameters' and the Layout's buffer checks, memoryviews) is made once,
# so a call checks x (type, dtype, shape, order, finite) and runs the rows. The
# parameters are a snapshot taken when it is built: a later change to the network's
# params does not reach it. Rows beyond serial_rows go to `many` (Network's threaded
# forward on the same snapshot).
#
# Few rows run with the GIL held: they take microseconds, and the GIL is then what lets
# threads share one predictor (its workspace is one).

import mmap

from libc.stdint cimport uint32_t, uint64_t

cpdef enum Proba:               # what predict_proba makes of h; _targets.proba_mode picks it
    PROBA_AS_IS = 0             # softmax, or a target matrix: h itself
    PROBA_TWO = 1               # one sigmoid unit: [1 - h, h]
    PROBA_NORMALIZED = 2        # one-vs-all sigmoid units: each row over its sum
    PROBA_NONE = 3              # value outputs: no probabilities


cdef int _proba_mode(object mode) except -1:
    """mode as a Proba code, or a clear error."""
    if not isinstance(mode, int) or isinstance(mode, bool) or not 0 <= mode <= PROBA_NONE:
        raise ValueError(f"proba must be a Proba code, 0 to 3; got {mode!r}")
    return <int>mode


cdef object _no_proba():
    """The one error of predict_proba on value outputs (Predictor's and probabilities')."""
    return ValueError("predict_proba is for classifiers; this network has value outputs "
                      "(identity or exp)")


cdef bint _finite_rows(const floating* x, Py_ssize_t n) noexcept nogil:
    """Whether x[0 .. n-1] are all finite: none has every exponent bit set (inf and NaN
    do). Tested on the bits, whose OR vectorizes; a floating-point sum of x - x, the
    obvious test, is one chain of additions, a few cycles an element (most of a digits
    row's prediction)."""
    cdef Py_ssize_t k
    cdef const uint32_t* u
    cdef const uint64_t* w
    cdef uint32_t bad = 0
    cdef uint64_t bad64 = 0
    if floating is float:
        u = <const uint32_t*>x
        for k in range(n):
            bad |= <uint32_t>((u[k] & 0x7f800000u) == 0x7f800000u)
        return bad == 0
    w = <const uint64_t*>x
    for k in range(n):
        bad64 |= <uint64_t>((w[k] & 0x7ff0000000000000u) == 0x7ff0000000000000u)
    return bad64 == 0


def all_finite(x):
    """Whether x, a contiguous 1-D float64 or float32 array, holds no NaN and no inf
    (_finite_rows, without the GIL): the checks of fit's and predict's arrays
    (cbackprop._validation.all_finite). Typed views by hand: a fused def's dispatch
    costs more than the test of a small X."""
    cdef const double[::1] d
    cdef const float[::1] f
    cdef bint ok = True
    if x.dtype == np.float64:
        d = x
        if d.shape[0] > 0:
            with nogil:
                ok = _finite_rows(&d[0], d.shape[0])
    else:
        f = x
        if f.shape[0] > 0:
            with nogil:
                ok = _finite_rows(&f[0], f.shape[0])
    return ok


# The Predictor's packed W^T from this many bytes on lies in a transparent huge page: on
# 4 KB pages its physical placement varies from process to process, and with it (through
# the L2's sets) the time of a wide layer's forward pass, up to twice as long for one row
# (benchmarks/README.md, "Measurements behind the code's choices")
HUGE_PAGE_FROM = 1 << 18
_HUGE_PAGE = 1 << 21


def _huge_page_zeros(Py_ssize_t n, dtype):
    """n zeros of dtype, from a 2 MB boundary of an anonymous mapping advised for huge
    pages where the system has them (Linux); else np.zeros. Small arrays: np.zeros."""
    dtype = np.dtype(dtype)
    cdef Py_ssize_t nbytes = n * dtype.itemsize
    if nbytes < HUGE_PAGE_FROM or not hasattr(mmap, "MADV_HUGEPAGE") or not hasattr(
            mmap, "MAP_ANONYMOUS"):
        return np.zeros(n, dtype=dtype)
    # private, not shared: shared memory gets no transparent huge pages
    try:
        region = mmap.mmap(-1, nbytes + _HUGE_PAGE,
                           flags=mmap.MAP_PRIVATE | mmap.MAP_ANONYMOUS)
    except OSError:                                      # no mapping to be had: plain pages
        return np.zeros(n, dtype=dtype)
    try:
        region.madvise(mmap.MADV_HUGEPAGE)
    except OSError:                                      # a kernel without them
        pass
    buf = np.frombuffer(region, dtype=np.uint8)
    cdef Py_ssize_t skip = (-<Py_ssize_t>buf.ctypes.data) % _HUGE_PAGE
    return buf[skip:skip + nbytes].view(dtype)


cdef bint _serve_rows(const Net* net, const floating* wt, const floating* X, Py_ssize_t m,
                      const floating* params, floating* out, floating* ws,
                      int mb_max, bint check) noexcept nogil:
    """out (m x s_L) = h(X) on this thread, in blocks of mb_max rows (ws sized for them).
    check: each block's rows tested finite just before it runs, while they are in cache
    (X read once); False (out partly written) at the first that is not."""
    cdef Rows rows = dense_rows(X, m)
    cdef Py_ssize_t r0
    cdef int K = net.sizes[net.n_layers - 1], mb
    rows.packed_units = FORWARD_PACKED
    r0 = 0
    while r0 < m:
        mb = <int>min(<Py_ssize_t>mb_max, m - r0)
        if check and not _finite_rows(X + r0 * net.sizes[0], mb * <Py_ssize_t>net.sizes[0]):
            return False
        forward_block(net, wt, &rows, r0, mb, params, out + r0 * K, ws, mb_max)
        r0 += mb_max
    return True


cdef void _proba_in_place(floating* h, Py_ssize_t m, int K, int mode) noexcept nogil:
    """The probabilities of h (m x K, C order), in place. PROBA_TWO: h (m x 1) was written to the
    first m elements of the (m x 2) out; spread from the last row back, each row's two
    places at or after its own."""
    cdef Py_ssize_t i
    cdef int k
    cdef floating hv, s, one = 1
    cdef floating tiny = 1.1754943508222875e-38 if floating is float else 2.2250738585072014e-308
    if mode == PROBA_TWO:
        i = m - 1
        while i >= 0:
            hv = h[i]
            h[2 * i + 1] = hv
            h[2 * i] = one - hv
            i -= 1
    elif mode == PROBA_NORMALIZED:
        for i in range(m):
            s = 0
            for k in range(K):
                s = s + h[i * K + k]
            if s < tiny:
                s = tiny
            for k in range(K):
                h[i * K + k] = h[i * K + k] / s


def probabilities(h, mode):
    """_targets.probabilities: the Proba rule (mode) applied to h (m x s_L, float32 or
    float64), as a predictor's predict_proba applies it. PROBA_AS_IS gives h itself; the
    others a new C-order array of h's dtype (h, which may be a strided or read-only view,
    is only read)."""
    cdef int code = _proba_mode(mode)
    cdef cnp.ndarray out
    cdef Py_ssize_t m
    cdef int K
    if code == PROBA_NONE:
        raise _no_proba()
    if type(h) is not cnp.ndarray or h.ndim != 2 or h.dtype not in (np.float32, np.float64):
        raise TypeError("h must be a 2-D float32 or float64 NumPy array; got "
                        + (f"{h.dtype.name} of shape {h.shape}" if type(h) is cnp.ndarray
                           else type(h).__name__))
    if code == PROBA_AS_IS:
        return h
    m, K = h.shape
    if code == PROBA_TWO:
        if K != 1:
            raise ValueError(f"PROBA_TWO is for one output unit; h has {K}")
        out = np.empty((m, 2), dtype=h.dtype)
        out.reshape(-1)[:m] = h[:, 0]           # where _proba_in_place expects h
    else:
        out = np.array(h, order="C", copy=True)
    if out.dtype == np.float64:
        _proba_in_place(<double*>cnp.PyArray_DATA(out), m, K, code)
    else:
        _proba_in_place(<float*>cnp.PyArray_DATA(out), m, K, code)
    return out


@cython.final
@cython.auto_pickle(False)
cdef class Predictor:
    """Predictor(layout, params, serial_rows, convert, many, decode, proba): see
    Network.predictor, which builds it. params is copied (the snapshot); convert(x) turns
    anything the fast checks refuse into a valid 1-D or 2-D array or raises; many(X, out)
    runs more than serial_rows rows, testing them finite (core.forward's check_finite:
    None when they are not); decode(h) gives predict's labels of a 2-D h; proba is
    its Proba code (_targets.proba_mode)."""
    cdef Layout layout
    cdef readonly object params
    cdef object _ws, _wt_buf, _convert, _many, _decode
    cdef const void* _p_params
    cdef void* _p_ws
    cdef const void* _p_wt
    cdef readonly object dtype
    cdef bint _double
    cdef int _type_num, _n_in, _n_out, _mb_max, _proba
    cdef readonly Py_ssize_t serial_rows

    def __init__(self, Layout layout, params, Py_ssize_t serial_rows, convert, many, decode,
                 int proba, bint live=False):
        # live: params used in place, not copied (Network's own one-row path), so never
        # packed: one row's product reads Theta itself, and serial_rows must be 1
        check_positive("serial_rows", serial_rows)
        _proba_mode(proba)
        if live and serial_rows != 1:
            raise ValueError("a live predictor runs one row at a time (serial_rows=1)")
        self.params = params if live else np.array(params, copy=True, order="C")
        if (type(self.params) is not cnp.ndarray or self.params.ndim != 1
                or self.params.dtype not in (np.float32, np.float64)
                or not self.params.flags.c_contiguous):
            raise TypeError("params must be a C-contiguous 1-D float32 or float64 array")
        check_params(layout, "params", self.params.shape[0])
        if not live:
            self.params.setflags(write=False)
        self.layout, self.dtype, self.serial_rows = layout, self.params.dtype, serial_rows
        self._double = self.dtype == np.float64
        self._type_num = cnp.NPY_FLOAT64 if self._double else cnp.NPY_FLOAT32
        self._n_in, self._n_out = layout.n_inputs, layout.n_outputs
        self._mb_max = <int>min(serial_rows, 256)
        self._convert, self._many, self._decode, self._proba = convert, many, decode, proba
        self._ws = np.zeros(workspace_size(&layout.net, self._mb_max), dtype=self.dtype)
        self._wt_buf = _huge_page_zeros(max(1, packed_size(&layout.net, self.dtype.itemsize)),
                                         self.dtype)
        self._p_ws = cnp.PyArray_DATA(<cnp.ndarray>self._ws)
        self._p_params = cnp.PyArray_DATA(<cnp.ndarray>self.params)
        # packed once: the snapshot never changes
        if live:
            self._p_wt = NULL
        elif self._double:
            self._p_wt = pack_transposed(
                &layout.net, <const double*>self._p_params,
                <double*>cnp.PyArray_DATA(<cnp.ndarray>self._wt_buf), self._mb_max, False,
                FORWARD_PACKED)
        else:
            self._p_wt = pack_transposed(
                &layout.net, <const float*>self._p_params,
                <float*>cnp.PyArray_DATA(<cnp.ndarray>self._wt_buf), self._mb_max, False,
                FORWARD_PACKED)

    @property
    def n_inputs(self):
        return self._n_in

    @property
    def n_outputs(self):
        return self._n_out

    cdef inline bint _ready(self, object x):
        """Whether x can be read as it is: an ndarray of the dtype, C order, one row of
        n_inputs (1-D) or m >= 1 rows of them."""
        cdef cnp.ndarray a
        if type(x) is not cnp.ndarray:
            return False
        a = <cnp.ndarray>x
        if cnp.PyArray_TYPE(a) != self._type_num or not cnp.PyArray_IS_C_CONTIGUOUS(a):
            return False
        if cnp.PyArray_NDIM(a) == 1:
            return cnp.PyArray_DIMS(a)[0] == self._n_in
        return (cnp.PyArray_NDIM(a) == 2 and cnp.PyArray_DIMS(a)[1] == self._n_in
                and cnp.PyArray_DIMS(a)[0] >= 1)

    cdef object _output(self, Py_ssize_t m, bint one_d, int width, object out):
        """A new result array, or out checked: an ndarray of the dtype, C order, writeable,
        shaped as the result."""
        cdef cnp.npy_intp dims[2]
        cdef cnp.ndarray o
        cdef object shape, given
        if out is None:
            if one_d:
                dims[0] = width
                return cnp.PyArray_EMPTY(1, dims, self._type_num, 0)
            dims[0] = m
            dims[1] = width
            return cnp.PyArray_EMPTY(2, dims, self._type_num, 0)
        shape = (<object>width,) if one_d else (<object>m, <object>width)
        if type(out) is not cnp.ndarray:
            raise TypeError(f"out must be a NumPy array; got {type(out).__name__}")
        o = <cnp.ndarray>out
        given = out.shape
        if (cnp.PyArray_TYPE(o) != self._type_num or not cnp.PyArray_IS_C_CONTIGUOUS(o)
                or not cnp.PyArray_ISWRITEABLE(o) or given != shape):
            raise ValueError(f"out must be a writeable C-contiguous {self.dtype.name} array "
                             f"of shape {shape}; got {out.dtype.name} {given}"
                             f"{'' if out.flags.c_contiguous else ', not C-contiguous'}"
                             f"{'' if out.flags.writeable else ', read-only'}")
        return out

    cdef object _run(self, object x, object out, int width, int proba):
        """h(x) into out (or a new array), with proba applied; x checked or converted."""
        cdef cnp.ndarray a, o
        cdef Py_ssize_t m
        cdef bint one_d, ok, fused
        cdef char* xp
        cdef char* op
        cdef Py_ssize_t itemsize = 8 if self._double else 4
        if not self._ready(x):
            x = self._convert(x)
            if not self._ready(x):              # convert's contract, kept even if broken
                raise ValueError("X could not be converted to the predictor's rows")
        a = <cnp.ndarray>x
        one_d = cnp.PyArray_NDIM(a) == 1
        m = 1 if one_d else cnp.PyArray_DIMS(a)[0]
        o = <cnp.ndarray>self._output(m, one_d, width, out)
        xp = <char*>cnp.PyArray_DATA(a)
        op = <char*>cnp.PyArray_DATA(o)
        if op < xp + m * self._n_in * itemsize and xp < op + m * width * itemsize:
            raise ValueError("out must not overlap X")
        # rows of more than one block are tested block by block as they run (_serve_rows,
        # or many's forward: X read once); one block's up front
        fused = m > self._mb_max
        if fused:
            ok = True
        elif self._double:
            ok = _finite_rows(<const double*>xp, m * self._n_in)
        else:
            ok = _finite_rows(<const float*>xp, m * self._n_in)
        if ok and m > self.serial_rows:
            ok = self._many(a, o if width == self._n_out else o.reshape(-1)[:m * self._n_out]
                            .reshape(m, self._n_out)) is not None
        elif ok and self._double:
            ok = _serve_rows(&self.layout.net, <const double*>self._p_wt, <const double*>xp,
                             m, <const double*>self._p_params, <double*>op,
                             <double*>self._p_ws, self._mb_max, fused)
        elif ok:
            ok = _serve_rows(&self.layout.net, <const float*>self._p_wt, <const float*>xp, m,
                             <const float*>self._p_params, <float*>op, <float*>self._p_ws,
                             self._mb_max, fused)
        if not ok:
            bad = "NaN" if np.isnan(a).any() else "inf"
            raise ValueError(f"X contains {bad}; remove or impute those values first")
        if proba == PROBA_TWO or proba == PROBA_NORMALIZED:
            if self._double:
                _proba_in_place(<double*>op, m, self._n_out, proba)
            else:
                _proba_in_place(<float*>op, m, self._n_out, proba)
        return o

    def __call__(self, x, out=None):
        """h = a(L) of x: one row (1-D, n_inputs) gives a 1-D result, rows (2-D) a 2-D one.
        As Network.forward, with the snapshot's parameters."""
        return self._run(x, out, self._n_out, PROBA_AS_IS)

    def forward(self, x, out=None):
        """The same as calling the predictor."""
        return self._run(x, out, self._n_out, PROBA_AS_IS)

    def predict_proba(self, x, out=None):
        """As Network.predict_proba (1-D for one row); out: where to write it."""
        if self._proba == PROBA_NONE:
            raise _no_proba()
        return self._run(x, out, 2 if self._proba == PROBA_TWO else self._n_out,
                         self._proba)

    def predict(self, x):
        """As Network.predict: for one row (1-D), its label (a scalar), or its row of 0/1
        labels or values where predict gives rows."""
        h = self._run(x, None, self._n_out, PROBA_AS_IS)
        if cnp.PyArray_NDIM(<cnp.ndarray>h) == 1:
            return self._decode(h.reshape(1, self._n_out))[0]
        return self._decode(h)

    def __repr__(self):
        return (f"Predictor({list(self.layout.sizes)}, {self.dtype.name}, "
                f"serial_rows={self.serial_rows})")
