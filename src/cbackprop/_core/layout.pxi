# The architecture as the compiled core takes it (docs/design.md, "Architecture"): a
# Layout, built once per network (Network._configure) and handed whole to every entry
# point, which checks each buffer it is given against it before any nogil code runs. The
# kernels then trust their arguments: a buffer of the wrong size is a ValueError naming it,
# never a write past its end.

cimport cython
from libc.limits cimport INT_MAX

cdef enum:                      # activations (Net.acts)
    SIGMOID = 0
    TANH = 1
    RELU = 2
    IDENTITY = 3
    SOFTMAX = 4
    EXP = 5                     # the output of the Poisson loss (log link)
    LEAKY_RELU = 6              # hidden only, from here on (issue 16)
    ELU = 7
    SOFTPLUS = 8
    ELLIOTT = 9                 # FANN_ELLIOT, FANN's default steepness 0.5

cdef enum:                      # losses (Net.loss)
    CROSS_ENTROPY = 0
    SQUARED_ERROR = 1
    POISSON = 2

_HIDDEN_CODES = {"sigmoid": SIGMOID, "tanh": TANH, "relu": RELU, "identity": IDENTITY,
                 "leaky_relu": LEAKY_RELU, "elu": ELU, "softplus": SOFTPLUS,
                 "elliott": ELLIOTT}
_OUTPUT_CODES = {"sigmoid": SIGMOID, "softmax": SOFTMAX, "identity": IDENTITY, "exp": EXP}
_LOSS_CODES = {"cross_entropy": CROSS_ENTROPY, "squared_error": SQUARED_ERROR,
               "poisson": POISSON}


cdef struct Net:
    # What the kernels read of the architecture: pointers into the arrays of the Layout
    # that holds this struct, never changed once it is built (threads, and calls from
    # several Python threads, read it at once).
    int n_layers                # L, input layer included
    const int* sizes            # s_1 .. s_L
    const Py_ssize_t* offsets   # where Theta(l) starts in the flat parameters
    const int* strides          # Theta(l)'s row stride there: s_l + 1 (bias, then weights)
    const int* acts             # activation of layers 2 .. L (the last is the output's)
    int loss
    int widest                  # the widest of layers 2 .. L
    Py_ssize_t units            # s_2 + ... + s_L: a row of activations in the workspace
    Py_ssize_t n_params         # elements of the flat parameters


@cython.final
@cython.auto_pickle(False)
cdef class Layout:
    """Layout(sizes, activations, loss): a network's architecture, for the compiled core.

    sizes: units per layer, input first. activations: one name per layer after the input,
    the hidden layers' ('sigmoid', 'tanh', 'relu', 'identity', 'leaky_relu', 'elu',
    'softplus', 'elliott'), then the output's
    ('sigmoid', 'softmax', 'identity', 'exp'). loss: 'cross_entropy', 'squared_error' or
    'poisson' (exp outputs only, and exp outputs only with it).

    The parameters are one flat vector: Theta(l) (s_{l+1} x (s_l + 1), the bias in column
    0) starts at offsets[l] and is stored row after row. A Layout never changes: every
    entry point takes one and checks its buffers against it.
    """
    cdef Net net
    cdef int[::1] _sizes, _strides, _acts           # what net points into
    cdef Py_ssize_t[::1] _offsets
    cdef readonly tuple sizes, offsets, activations
    cdef readonly str loss
    cdef readonly Py_ssize_t n_params, units
    cdef readonly int widest

    def __init__(self, sizes, activations, str loss):
        # (no negative indices here: the core is compiled with wraparound off)
        sizes = tuple(int(s) for s in sizes)
        activations = tuple(activations)
        n = len(sizes)
        if n < 2 or min(sizes) < 1 or max(sizes) > INT_MAX - 1:
            raise ValueError(f"Layout: sizes must be two or more positive C ints (input, "
                             f"..., output); got {list(sizes)}")
        if len(activations) != n - 1:
            raise ValueError(f"Layout: one activation per layer after the input "
                             f"({n - 1}); got {list(activations)}")
        hidden, output = activations[0:n - 2], activations[n - 2]
        for a in hidden:
            if a not in _HIDDEN_CODES:
                raise ValueError(f"Layout: a hidden activation must be one of "
                                 f"{', '.join(_HIDDEN_CODES)}; got {a!r}")
        if output not in _OUTPUT_CODES:
            raise ValueError(f"Layout: the output activation must be one of "
                             f"{', '.join(_OUTPUT_CODES)}; got {output!r}")
        if loss not in _LOSS_CODES:
            raise ValueError(f"Layout: loss must be one of {', '.join(_LOSS_CODES)}; "
                             f"got {loss!r}")
        if loss == "cross_entropy" and output == "identity":
            raise ValueError("Layout: cross_entropy needs a sigmoid or softmax output")
        if (loss == "poisson") != (output == "exp"):
            raise ValueError("Layout: the poisson loss goes with an exp output, and an exp "
                             f"output with the poisson loss; got {output!r} and {loss!r}")
        offsets, position = [], 0
        for l in range(n - 1):
            offsets.append(position)
            position += sizes[l + 1] * (sizes[l] + 1)
        self.sizes, self.offsets, self.activations, self.loss = (
            sizes, tuple(offsets), activations, loss)
        self.n_params = position
        self.units = sum(sizes[1:n])
        self.widest = max(sizes[1:n])
        self._sizes = np.array(sizes, dtype=np.intc)
        self._strides = np.array([sizes[l] + 1 for l in range(n - 1)], dtype=np.intc)
        self._offsets = np.array(offsets, dtype=np.intp)
        self._acts = np.array([_HIDDEN_CODES[a] for a in hidden] + [_OUTPUT_CODES[output]],
                              dtype=np.intc)
        self.net.n_layers = n
        self.net.sizes = &self._sizes[0]
        self.net.offsets = &self._offsets[0]
        self.net.strides = &self._strides[0]
        self.net.acts = &self._acts[0]
        self.net.loss = _LOSS_CODES[loss]
        self.net.widest = self.widest
        self.net.units = self.units
        self.net.n_params = self.n_params

    @property
    def n_inputs(self):
        return self.sizes[0]

    @property
    def n_outputs(self):
        return self.net.sizes[self.net.n_layers - 1]

    def __repr__(self):
        return f"Layout({list(self.sizes)}, {list(self.activations)}, {self.loss!r})"

    def __reduce__(self):
        # Rebuilt on loading by the build cbackprop._core picks there, so that a pickle
        # made on one processor (a network's attributes, say) loads on any other.
        from cbackprop._core import _unpickle_layout
        return _unpickle_layout, (self.sizes, self.activations, self.loss)

    def blocks_call_blas(self):
        """Whether blocks of rows call BLAS (a layer too wide for our products, or a build
        or setting without them): cost, gradient and forward hold BLAS to one thread only
        then, since holding it costs threadpoolctl calls."""
        cdef int l
        for l in range(1, self.net.n_layers):
            if not own_products_for(self.net.sizes[l]):
                return True
        return False

    def forward_calls_blas(self):
        """Whether forward passes over blocks of rows call BLAS: only on a build or setting
        without our products, which serve every layer there (FORWARD_PACKED)."""
        return not _own_products

    def per_sample_calls_blas(self):
        """Whether one sample's products call BLAS (layers too wide for our loops, or a
        build without them): fit holds BLAS to one thread only then."""
        cdef int l
        if not CB_OWN_GEMM:
            return True
        for l in range(self.net.n_layers - 1):
            if <long long>self.net.sizes[l] * self.net.sizes[l + 1] > SMALL_LAYER:
                return True
        return False

    def aligned(self, int itemsize):
        """Offsets and row strides of a copy of the parameters whose every weight row
        starts 64 bytes after the copy's start, so on a 64-byte boundary when the copy is:
        each row padded to a multiple of 64 bytes, the bias just before its weights.
        Online training updates every weight of a layer each sample, and full-width stores
        of unaligned rows each straddle two cache lines. Returns (offsets, strides,
        elements the copy needs)."""
        cdef int lanes = 64 // itemsize, l
        cdef Py_ssize_t pos = lanes - 1          # the first row's weights at `lanes`
        offsets = np.empty(self.net.n_layers - 1, dtype=np.intp)
        strides = np.empty(self.net.n_layers - 1, dtype=np.intc)
        for l in range(self.net.n_layers - 1):
            offsets[l] = pos
            strides[l] = (self.net.sizes[l] + 1 + lanes - 1) // lanes * lanes
            pos += <Py_ssize_t>strides[l] * self.net.sizes[l + 1]
        return offsets, strides, pos


# ------------------------------------------------- the entry points' checks of buffers

cdef int check_params(Layout layout, str name, Py_ssize_t n) except -1:
    """params, grad and every optimizer buffer: one element per parameter."""
    if n != layout.n_params:
        raise ValueError(f"{name} has {n} elements; the network {list(layout.sizes)} has "
                         f"{layout.n_params} parameters")
    return 0


cdef int check_inputs(Layout layout, Py_ssize_t rows, Py_ssize_t cols) except -1:
    """X: one column per input unit (any number of rows: the kernels count them in
    Py_ssize_t, and hand BLAS blocks of rows)."""
    if cols != layout.sizes[0]:
        raise ValueError(f"X has {cols} columns; the network {list(layout.sizes)} has "
                         f"{layout.sizes[0]} inputs")
    return 0


cdef int check_outputs(Layout layout, str name, Py_ssize_t rows, Py_ssize_t cols,
                       Py_ssize_t m) except -1:
    """Y and out: one row per row of X, one column per output unit."""
    cdef int K = layout.net.sizes[layout.net.n_layers - 1]
    if rows != m or cols != K:
        raise ValueError(f"{name} has shape ({rows}, {cols}); for X's {m} rows and the "
                         f"network's {K} outputs it must be ({m}, {K})")
    return 0


cdef int check_weights(Py_ssize_t n, Py_ssize_t m) except -1:
    """w: empty (every weight one) or one weight per row of X."""
    if n != 0 and n != m:
        raise ValueError(f"w has {n} elements; it must be empty or have one per row of "
                         f"X ({m})")
    return 0


cdef int check_order(const Py_ssize_t[::1] order, Py_ssize_t m) except -1:
    """order: indices of rows of X."""
    cdef Py_ssize_t k, i
    for k in range(order.shape[0]):
        i = order[k]
        if i < 0 or i >= m:
            raise ValueError(f"order[{k}] is {i}; X has rows 0 to {m - 1}")
    return 0


cdef int check_positive(str name, long long value) except -1:
    if value < 1:
        raise ValueError(f"{name} must be >= 1; got {value}")
    return 0
