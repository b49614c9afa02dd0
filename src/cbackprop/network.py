"""Network: the parameters of a fully connected network and the calls into the compiled core."""
import copy

import numpy as np

from cbackprop import (_sparse, _summary, _targets, cluster, interop, modelfile,
                       options as fit_options, sources, training)
from cbackprop import _validation as v
from cbackprop._core import core
from cbackprop._core import threads as _threads
from cbackprop._core.threads import default_threads, blas_single_threaded
from cbackprop.preprocessing import Scaler
from cbackprop.reference import debug_initialize_weights

METHODS = ("batched", "per_sample")
BLOCK_ROWS = 256          # rows a block: the time hardly depends on it (benchmarks/README.md)
WORK_A_THREAD = 4e6       # flops a thread must get before starting it pays (benchmarks/README.md)


def _is_row(X):
    """Whether X is one sample given 1-D: a 1-D NumPy array, list or tuple of numbers."""
    if isinstance(X, np.ndarray):
        return X.ndim == 1
    if not isinstance(X, (list, tuple)):
        return False
    try:
        return np.ndim(X) == 1
    except ValueError:               # ragged: _check_X says what is wrong with it
        return False


def _dense_only():
    raise TypeError("a predictor takes dense rows (NumPy arrays); for a scipy.sparse X "
                    "use the network's predict or predict_proba")


class Network:
    """A fully connected network in the course's notation.

    ``thetas[l]`` is Theta(l+1) of shape ``(s_{l+2}, s_{l+1} + 1)`` with the bias in column 0.
    All Thetas are views into the one flat vector ``params``; gradients come in the same layout.

    Parameters
    ----------
    layer_sizes : sequence of int
        Units per layer, input first, output last, e.g. ``[400, 25, 10]``.
    activation : {'sigmoid', 'tanh', 'relu', 'identity'} or list of them, one per hidden layer
    output : {'sigmoid', 'softmax', 'identity', 'exp'}
        'exp' goes with loss='poisson' only (and it with 'exp' only)
    loss : {'cross_entropy', 'squared_error', 'poisson'}
        'poisson': the half Poisson deviance of scikit-learn's MLPRegressor, targets >= 0
    dtype : {'float32', 'float64'}
    init : {'ng', 'he', 'debug'}
        'ng': uniform in +-sqrt(6)/sqrt(s_l + s_{l+1}) (the course's choice);
        'he': normal with std sqrt(2 / s_l), biases 0 (for relu);
        'debug': the course's deterministic debugInitializeWeights (sin(1..k)/10).
    random_state : None, int, numpy Generator or RandomState

    Attributes
    ----------
    n_threads : int
        Threads the batched kernels split row blocks across (default: the usable cores,
        at most 8). Results agree across thread counts to rounding (about 1e-16).
    classes_ : array or None
        The class label of each output unit (of the two classes, for one sigmoid unit),
        set by fit from 1-D labels; None: predict returns output indices.
    target_coding_ : TargetCoding
        What the outputs mean, as fit learned it from y (labels, a target matrix, values).
    history_, n_iter_ : dict of lists, int
        Set by fit (absent before, as scikit-learn's fitted attributes are): per epoch
        'loss' (and 'val_loss', 'val_score', 'time'); the epochs run.
    scaler_ : cbackprop.preprocessing.Scaler or None
        Feature scaling the network was trained behind (``cbackprop train`` sets it):
        ``net.predict(net.scaler_.transform(X))``. Saved in the model file.
    info_ : dict
        Free JSON-serializable notes saved in the model file (``cbackprop train`` records
        its data, options and scores there).
    """

    def __init__(self, layer_sizes, activation="sigmoid", output="sigmoid",
                 loss="cross_entropy", dtype="float64", init="ng", random_state=None):
        sizes = v.check_layer_sizes(layer_sizes)
        self._configure(sizes, activation, output, loss, dtype)
        v.check_option("init", init, v.INITS)
        rng = v.check_random_state(random_state)
        for l, theta in enumerate(self.thetas):
            s_in, s_out = sizes[l], sizes[l + 1]
            if init == "ng":
                eps = np.sqrt(6.0) / np.sqrt(s_in + s_out)
                theta[...] = rng.uniform(-eps, eps, size=theta.shape)
            elif init == "he":
                theta[:, 0] = 0
                theta[:, 1:] = rng.normal(0.0, np.sqrt(2.0 / s_in), size=(s_out, s_in))
            else:
                theta[...] = debug_initialize_weights(s_out, s_in)

    @classmethod
    def from_thetas(cls, thetas, activation="sigmoid", output="sigmoid",
                    loss="cross_entropy", dtype=None):
        """A network holding copies of the given Theta matrices (bias in column 0).

        dtype None keeps float32 if every Theta is float32, else float64.
        """
        if isinstance(thetas, np.ndarray) or not isinstance(thetas, (list, tuple)) or not thetas:
            raise TypeError("thetas must be a non-empty list of 2-D arrays, Theta(1) first")
        mats = []
        for l, t in enumerate(thetas):
            arr = v.to_array(f"thetas[{l}]", t)
            if arr.dtype.kind not in "biuf":
                raise TypeError(f"thetas[{l}] must hold numbers; got dtype {arr.dtype}")
            if arr.ndim != 2 or arr.shape[0] < 1 or arr.shape[1] < 2:
                raise ValueError(f"thetas[{l}] must be 2-D of shape (s_out, s_in + 1) with "
                                 f"s_out, s_in >= 1; got shape {arr.shape}")
            mats.append(arr)
        for l in range(1, len(mats)):
            if mats[l].shape[1] != mats[l - 1].shape[0] + 1:
                raise ValueError(
                    f"thetas[{l}] has shape {mats[l].shape} but thetas[{l - 1}] has "
                    f"{mats[l - 1].shape[0]} outputs, so thetas[{l}] needs "
                    f"{mats[l - 1].shape[0] + 1} columns (bias + one per input)")
        if dtype is None:
            dtype = "float32" if all(m.dtype == np.float32 for m in mats) else "float64"
        sizes = [mats[0].shape[1] - 1] + [m.shape[0] for m in mats]
        net = cls.__new__(cls)
        net._configure(v.check_layer_sizes(sizes), activation, output, loss, dtype)
        for l, (theta, m) in enumerate(zip(net.thetas, mats)):
            theta[...] = v.cast_finite(f"thetas[{l}]", m, net.dtype)
        return net

    @classmethod
    def _from_spec(cls, spec):
        """The network a NetworkSpec (from a model file or an importer) describes."""
        net = cls.from_thetas(spec.thetas, spec.activation, spec.output, spec.loss, spec.dtype)
        net.classes_, net.target_coding_ = spec.classes, spec.target_coding
        if spec.history is not None:
            net.history_, net.n_iter_ = spec.history, spec.n_iter
        net.scaler_, net.info_ = spec.scaler, spec.info
        return net

    @property
    def scaler_(self):
        return self._scaler

    @scaler_.setter
    def scaler_(self, scaler):
        if scaler is not None:
            if not isinstance(scaler, Scaler):
                raise TypeError(f"scaler_ must be a cbackprop.preprocessing.Scaler or None; "
                                f"got {type(scaler).__name__}")
            if scaler.n_features != self.layer_sizes[0]:
                raise ValueError(f"scaler_ scales {scaler.n_features} features, the network "
                                 f"takes {self.layer_sizes[0]}")
        self._scaler = scaler

    def _configure(self, sizes, activation, output, loss, dtype):
        self.activation = v.check_activations(activation, len(sizes) - 2)
        v.check_output_and_loss(output, loss, sizes[-1])
        self.output, self.loss = output, loss
        self.dtype = v.check_dtype(dtype)
        self.layer_sizes = sizes
        self.n_threads = default_threads()
        # what fit learns besides the parameters (see the class docstring)
        self.classes_ = None
        self.target_coding_ = _targets.TargetCoding()
        self._scaler = None
        self.info_ = {}
        self._solver_state = {}              # momentum / Adam moments, kept for warm starts
        # the architecture as the compiled core takes it, checked against by every call; the
        # Thetas are views into the flat parameters at the layout's offsets
        self._layout = core.Layout(sizes, self.activation + [output], loss)
        self._layout_flops = 6 * sum(a * b for a, b in zip(sizes, sizes[1:]))  # flops_per_sample
        self._params = np.zeros(self._layout.n_params, dtype=self.dtype)
        self._row_server = None              # forward's one-row Predictor, made when first used
        self._thetas = [self._params[o:o + (sizes[l + 1] * (sizes[l] + 1))]
                        .reshape(sizes[l + 1], sizes[l] + 1)
                        for l, o in enumerate(self._layout.offsets)]

    # ---------------------------------------------------------- parameters

    @property
    def params(self):
        """The flat parameter vector; every Theta is a view into it."""
        return self._params

    @params.setter
    def params(self, values):
        values = v.to_array("params", values)
        if values.shape != self._params.shape:
            raise ValueError(f"params must have shape {self._params.shape}; got {values.shape}")
        if values.dtype.kind not in "biuf":
            raise TypeError(f"params must hold numbers; got dtype {values.dtype}")
        self._params[...] = v.cast_finite("params", values, self.dtype)

    @property
    def thetas(self):
        """Theta(1), Theta(2), ...: views into params, shape (s_{l+1}, s_l + 1)."""
        return list(self._thetas)

    def unroll(self, order="C"):
        """A copy of the parameters as one flat vector: order 'C' is ``params`` (each Theta
        row by row), 'F' the course's ``[Theta1(:); Theta2(:)]`` (column by column)."""
        return interop.unroll(self._thetas, order)

    @classmethod
    def from_unrolled(cls, flat, layer_sizes, order="C", **kwargs):
        """A network from a flat vector unrolled in order 'C' (``params``) or 'F' (the
        course's nn_params); kwargs as from_thetas."""
        return cls.from_thetas(interop.reshape_unrolled(flat, layer_sizes, order), **kwargs)

    def split(self, flat):
        """View a flat vector with the layout of params (a gradient, say) as Theta-shaped arrays."""
        return [flat[o:o + t.size].reshape(t.shape)
                for o, t in zip(self._layout.offsets, self._thetas)]

    def __getstate__(self):
        """Pickle and deepcopy: the flat parameters and the settings; the Theta views are
        rebuilt on load, so that they keep sharing memory with params."""
        state = self.__dict__.copy()
        for derived in ("_thetas", "_layout", "_row_server"):
            state.pop(derived)
        return state

    def __setstate__(self, state):
        params = state.pop("_params")
        self.__dict__.update(state)
        self._configure(self.layer_sizes, self.activation, self.output, self.loss, self.dtype)
        self.__dict__.update(state)          # _configure reset the fitted state: restore it
        self._params[...] = params

    def copy(self):
        """An independent copy: parameters, settings and what fit learned (classes_, history_)."""
        return copy.deepcopy(self)

    def __repr__(self):
        acts = self.activation[0] if len(set(self.activation)) == 1 else self.activation
        return (f"Network({self.layer_sizes}, activation={acts!r}, output={self.output!r}, "
                f"loss={self.loss!r}, dtype={self.dtype.name!r})")

    def summary(self):
        """A table of the layers (input, hidden, output): units, activation, Theta shape and
        parameters; the total, the dtype and the parameters' memory. Returned, not printed."""
        return _summary.summary(self)

    # -------------------------------------------------------------- compute

    def _check_X(self, X, finite=True, name="X"):
        """X as the core takes it: a C-order matrix of the network's dtype, or, from a
        scipy.sparse X, a CSR (cbackprop._sparse) whose stored values are always checked
        finite."""
        if isinstance(X, _sparse.CSR) or _sparse.is_sparse(X):
            return _sparse.as_csr(name, X, self.dtype, self.layer_sizes[0])
        return v.as_matrix(name, X, self.dtype, self.layer_sizes[0], what="features",
                           finite=finite)

    def forward(self, X):
        """The outputs h = a(L), shape (m, s_L); for one row given 1-D (n_inputs values),
        its outputs, 1-D. On a Dask X: a Dask array, computed in parallel over its
        partitions (as are predict's and predict_proba's)."""
        if type(X) is np.ndarray and (X.ndim == 1 or X.ndim == 2 and X.shape[0] == 1):
            # one row: checked and run by a Predictor on params itself, made once
            if self._row_server is None:
                self._row_server = self._predictor(self._params, 1, live=True)
            return self._row_server(X)
        if _is_row(X):
            return self.forward(self._as_row(X))[0]
        if self._few_rows(X):                   # a serving loop's row: the shortest path
            return core.forward(self._layout, X, self._params,
                                np.empty((X.shape[0], self._layout.sizes[-1]), self.dtype),
                                X.shape[0], 1)
        if cluster.is_dask(X):
            return cluster.map_rows(self, X, "forward")
        X_given, X = X, self._check_X(X, finite=False)   # the core tests each block's rows
        out = np.empty((X.shape[0], self.layer_sizes[-1]), dtype=self.dtype)
        threads, block_rows = self._row_plan(X.shape[0], X, forward=True)
        with blas_single_threaded(threads > 1 and self._layout.forward_calls_blas()):
            out = _threads.note_call(core.forward(self._layout, X, self._params, out,
                                                  block_rows, threads, True))
        return v.require_finite("X", X_given, X) if out is None else out

    def _as_row(self, x):
        """One 1-D row as a 1 x n_inputs matrix: a view when it is already of the dtype and
        C order (forward then checks it as any X), else converted and checked."""
        if (type(x) is np.ndarray and x.dtype == self.dtype and x.flags.c_contiguous
                and x.shape[0] == self._layout.sizes[0]):
            return x.reshape(1, -1)
        return v.as_vector("X", x, self.dtype, self._layout.sizes[0]).reshape(1, -1)

    def _few_rows(self, X):
        """Whether X can go to the compiled core as it is, on one thread: a C-contiguous,
        finite NumPy matrix of the network's dtype and input width, with fewer rows than
        _row_plan would share between threads (else _check_X converts it or says why not)."""
        return (type(X) is np.ndarray and X.ndim == 2 and X.dtype == self.dtype
                and X.flags.c_contiguous and X.shape[1] == self._layout.sizes[0]
                and 0 < X.shape[0] <= BLOCK_ROWS
                and X.shape[0] * self._layout_flops < WORK_A_THREAD
                and bool(np.isfinite(X).all()))

    @property
    def flops_per_sample(self):
        """Floating-point operations of one sample's forward and backward pass (about)."""
        return self._layout_flops

    def _row_flops(self, X=None):
        """flops_per_sample, for a row of X: of a sparse X, the first layer's work is its
        stored entries' (their mean a row), not its width's."""
        if not isinstance(X, _sparse.CSR):
            return self.flops_per_sample
        s1, n_in = self.layer_sizes[1], self.layer_sizes[0]
        return max(1, self.flops_per_sample - 6 * s1 * (n_in - X.nnz / max(1, X.shape[0])))

    def _row_plan(self, m, X=None, forward=False):
        """(threads, rows a block) for m rows: a thread only where it gets WORK_A_THREAD
        flops or more, no more than the usable cores (capped_threads warns), one in a forked
        child (libgomp's pool does not survive fork: _core/batch.pxi); blocks of at most
        BLOCK_ROWS rows shared evenly; after a pause, threads_after_idle wakes them (forward
        passes' blocks place them as they run) or takes one for a small forward pass."""
        n = self.n_threads
        if isinstance(n, bool) or not isinstance(n, (int, np.integer)) or n < 1:
            raise ValueError(f"n_threads must be an int >= 1; got {n!r}")
        work = m * self._row_flops(X)
        threads = int(max(1, min(1 if core.forked_child() else _threads.capped_threads(n),
                                 work // WORK_A_THREAD)))
        ours = forward and not self._layout.forward_calls_blas()    # same rows on any threads
        threads = _threads.threads_after_idle(threads, work, fewer=ours, wake=not forward)
        blocks = -(-m // min(BLOCK_ROWS, -(-m // threads)))
        return threads, -(-m // blocks)         # blocks of even size: no short last one

    def _cost(self, X, Y, lam, sample_weight, method, want_grad):
        v.check_option("method", method, METHODS)      # the cheap checks before converting X
        lam = v.check_lam(lam)
        X_given, X = X, self._check_X(X, finite=False)
        threads, block_rows = (1, 1) if method == "per_sample" else self._row_plan(X.shape[0], X)
        # Our own products (blocks of 2 rows or more, layers they serve) never skip a zero
        # factor, so a NaN or inf in X makes its column of the gradient NaN or inf (0 * inf
        # is NaN): checking that small result instead of all of X saves a pass over X (its
        # share of a call: benchmarks/README.md). BLAS may skip zeros, and the cost alone
        # can hide an inf (a saturated sigmoid): X is checked up front there.
        sparse = isinstance(X, _sparse.CSR)             # checked finite already
        check_after = (want_grad and block_rows > 1 and not sparse
                       and core.own_products_for(self.layer_sizes[1]))
        if not (check_after or sparse):
            v.require_finite("X", X_given, X)
        Y = _targets.labels_as_matrix(Y, self.classes_, self.layer_sizes[-1], self.output,
                                      self.dtype)        # labels coded by classes_, as fit does
        Y = v.check_targets(Y, X.shape[0], self.layer_sizes[-1], self.loss, self.dtype)
        w = v.check_sample_weight(sample_weight, X.shape[0], self.dtype)
        norm = float(w.sum(dtype=np.float64)) if w.size else float(X.shape[0])
        reg = lam / norm
        if lam > 0:
            # lam / W, the gradient's (lam / W) Theta and the cost's (lam / 2W) sum W^2 must
            # stay in range, or the answer is inf (float32 and lam=1e300): refused naming
            # lam, as fit reports it (training.py, _Run.lam_absurd)
            limit = float(np.finfo(self.dtype).max)
            sq = core.reg_cost(self._layout, self._params, 2.0)     # sum W^2, in double
            if not (reg <= limit and reg * sq ** 0.5 <= limit
                    and 0.5 * reg * sq <= float(np.finfo(np.float64).max)):
                raise FloatingPointError(
                    f"lam={lam:g} is a regularization too strong for this data (lam / total "
                    f"sample weight = {reg:g}): the regularization term of the cost or "
                    f"gradient overflows {self.dtype.name} (try a smaller lam)")
        grad = np.zeros(self._params.size if want_grad else 0, dtype=self.dtype)
        # one BLAS thread when we split rows, and for the per-sample loop's many small calls,
        # if the kernel calls BLAS at all
        calls_blas = (self._layout.per_sample_calls_blas() if block_rows == 1
                      else self._layout.blocks_call_blas())
        with blas_single_threaded((threads > 1 or block_rows == 1) and calls_blas):
            J = _threads.note_call(core.cost_grad(self._layout, X, Y, w, self._params, grad,
                                                  norm, reg, block_rows, threads))
        if check_after and not (np.isfinite(J) and v.all_finite(grad)):
            v.require_finite("X", X_given, X)  # raises if X is at fault, as it would have
        return J, grad

    def cost(self, X, Y, lam=0.0, sample_weight=None):
        """The cost J of docs/design.md, "The math" (regularized by lam, bias excluded).

        Y: the target matrix, or class labels (1-D, or an (m, 1) column) of a network with
        classes_, one-hot coded by them."""
        return self._cost(X, Y, lam, sample_weight, "batched", want_grad=False)[0]

    def cost_and_gradient(self, X, Y, lam=0.0, sample_weight=None, method="batched"):
        """(J, [dJ/dTheta(l) for each l]).

        method 'batched' runs matrix products over row blocks (split across threads);
        'per_sample' runs the derivation's loop, one sample at a time (matrix-vector products).
        Thin layers use the core's own register-tiled loops where built (AVX2, AVX-512),
        wide ones BLAS.
        The gradients are views into one flat vector laid out like params.
        """
        J, grad = self._cost(X, Y, lam, sample_weight, method, want_grad=True)
        return J, self.split(grad)


    # -------------------------------------------------------------- training

    def fit(self, X, y, sample_weight=None, **options):
        if self.output == "exp" and (cluster.is_dask(X, y, sample_weight)
                                     or sources.is_blocked(X, y)):
            # the blocked and Dask sources code targets as labels or identity values only
            raise ValueError("output='exp' (loss='poisson') trains on arrays in memory; data "
                             "read in blocks or on Dask is not supported for it yet")
        y = _targets.label_column(y, self.layer_sizes[-1], self.output)   # (m, 1): the course's
        return training.fit(self, X, y, sample_weight, **options)

    fit.__signature__ = fit_options.signature(fit)
    fit.__doc__ = f"""Train the network from its current parameters; returns self.

        y: class labels of any sortable type, 1-D or an (m, 1) column like the course's
        ex4data1.mat y (one-hot coded, ``classes_`` kept), or a
        2-D target matrix (one-hot, multi-label 0/1, or real values with identity or exp
        outputs).
        sample_weight: one weight per sample (each sample's term of J multiplied by it).

        Every solver minimizes the same J (docs/design.md, "The math"). Ctrl-C stops at
        the end of the current batch or iteration with a warning, keeping the parameters
        reached. A NaN or inf cost raises cbackprop.DivergenceError (a FloatingPointError
        and a ValueError), the parameters restored to their last finite values.

        Sets ``history_`` (per epoch: 'loss', and 'val_loss', 'val_score' with validation
        data, 'time' in seconds since the start), ``n_iter_``, ``classes_`` and
        ``target_coding_``.

        Options (keyword only; cbackprop.options.FIT_OPTIONS):
{fit_options.docs()}
        """

    def predict(self, X):
        """Labels (argmax, or 0.5 for one sigmoid unit), 0/1 rows for multi-label targets,
        values for identity and exp outputs. Before fit: class indices."""
        if not isinstance(X, np.ndarray) and cluster.is_dask(X):
            return cluster.map_rows(self, X, "predict")
        if _is_row(X):                  # one row: its label (a scalar), or its row
            return self._decode(self.forward(self._as_row(X)))[0]
        return self._decode(self.forward(X))

    def _decode(self, h):
        coding = self.target_coding_
        return _targets.decode(h, self.classes_, coding.kind, self.output,
                               squeeze=coding.one_dimensional)

    def predict_proba(self, X):
        """Class probabilities; rows sum to one for single-label classification. One row
        given 1-D: its probabilities, 1-D."""
        if not isinstance(X, np.ndarray) and cluster.is_dask(X):
            return cluster.map_rows(self, X, "predict_proba")
        if _is_row(X):
            return self.predict_proba(self._as_row(X))[0]
        return _targets.probabilities(self.forward(X), self.target_coding_.kind, self.output)

    def predictor(self, n_threads=1):
        """A callable for serving loops, faster than predict_proba on one or a few rows:
        ``p = net.predictor(); p(x)`` is ``forward(x)``, ``p.predict_proba(x, out=None)``
        and ``p.predict(x)`` as the network's, for 1-D rows and 2-D arrays alike.

        It holds a snapshot of the parameters (and of classes_ and what the outputs mean)
        taken now: a later fit or change to ``params`` does not reach it; make a new one.
        Its workspace and the packed weights are made once, so a call checks x (a NumPy
        array of the network's dtype, C order, the input width, finite; anything else is
        converted as predict converts it, or refused with the same errors) and runs the
        rows. ``out=`` (a C-order array of the dtype and the result's shape) saves the one
        allocation left (a call refused for a NaN or inf may have written part of it). Few
        rows run on the calling thread with the GIL held, so threads may share a predictor.

        n_threads: 1 (the default, a server's usual setting: ONNX Runtime's
        intra_op_num_threads=1) runs every call on the calling thread, BLAS held to one
        thread too; None runs large batches as forward does, across ``net.n_threads``."""
        return self._snapshot_predictor(n_threads)

    def _snapshot_predictor(self, n_threads, decoding=None, convert=None):
        """predictor()'s. The scikit-learn estimators' pass their own decoding (classes,
        TargetCoding) and convert(x) (their predict's checks of X); None: the network's."""
        if n_threads not in (1, None):
            raise ValueError(f"n_threads must be 1 or None; got {n_threads!r}")
        serial = max(1, min(BLOCK_ROWS, int(-(-WORK_A_THREAD // self._layout_flops)) - 1))
        if n_threads == 1 and not self._layout.forward_calls_blas():
            serial = 2 ** 62                 # our own products: any rows, in place
        return self._predictor(self._params.copy(), serial, live=False,
                               one_thread=n_threads == 1, decoding=decoding, convert=convert)

    def _predictor(self, params, serial, live, one_thread=False, decoding=None, convert=None):
        """_snapshot_predictor's, or, live, the Predictor of forward's one-row path: on the
        network's own params (read at each call, never packed), one row at a time."""
        layout = self._layout
        classes, coding = decoding or (self.classes_, self.target_coding_)
        classes = None if classes is None else np.array(classes, copy=True)
        output = self.output

        def network_convert(x):      # what the predictor's own checks do not take
            if _sparse.is_sparse(x):
                _dense_only()
            if _is_row(x):
                return np.asarray(self._as_row(x)[0])
            return np.asarray(self._check_X(x))

        def many(X, out):
            threads, block_rows = ((1, BLOCK_ROWS) if one_thread
                                   else self._row_plan(X.shape[0], X, forward=True))
            with blas_single_threaded((threads > 1 or one_thread) and layout.forward_calls_blas()):
                return _threads.note_call(core.forward(layout, X, predictor.params, out,
                                                       block_rows, threads, True))

        def decode(h):
            return _targets.decode(h, classes, coding.kind, output,
                                   squeeze=coding.one_dimensional)

        proba = _targets.proba_mode(coding.kind, output, self.layer_sizes[-1])
        predictor = core.Predictor(layout, params, serial, convert or network_convert, many,
                                   decode, proba, live)
        return predictor

    def score(self, X, y):
        """Accuracy for classification (exact rows for multi-label), R^2 for regression.
        On Dask data: from sums over the partitions, computed where they lie."""
        if cluster.is_dask(X, y):
            if self.output == "exp":         # cluster.score knows identity outputs' R^2 only
                raise ValueError("score on Dask data is not supported for exp outputs yet; "
                                 "compute y and predict(X) and take their R^2")
            return cluster.score(self, X, y)
        h = self.forward(X)
        y = np.asarray(y)
        if y.shape[:1] != h.shape[:1]:
            raise ValueError(f"y has {y.shape[0] if y.ndim else 0} samples but X has {h.shape[0]}")
        if self.output in v.VALUE_OUTPUTS:
            Y = y.reshape(len(y), -1).astype(np.float64)
            if Y.shape[1] != h.shape[1] or not np.isfinite(Y).all():
                raise ValueError(f"y must be finite with {h.shape[1]} value(s) a sample")
            residual = ((Y - h) ** 2).sum(axis=0)
            total = ((Y - Y.mean(axis=0)) ** 2).sum(axis=0)
            with np.errstate(divide="ignore", invalid="ignore"):
                r2 = np.where(total > 0, 1 - residual / total, np.where(residual > 0, 0.0, 1.0))
            return float(r2.mean())
        if y.ndim == 2:
            if y.shape[1] != h.shape[1]:
                raise ValueError(f"y has {y.shape[1]} columns, the network {h.shape[1]} outputs")
            if self.output == "softmax" or self.target_coding_.kind == _targets.LABELS:
                # single-label: a one-hot row is right when its class is the argmax
                return float(np.mean(np.argmax(h, 1) == np.argmax(y, 1)))
            return float(np.mean(np.all((h >= 0.5) == (y >= 0.5), axis=1)))
        pred = _targets.decode(h, self.classes_, self.target_coding_.kind, self.output,
                               squeeze=True)
        if self.classes_ is not None:
            _targets.label_indices(y, self.classes_)
        return float(np.mean(pred == y))

    # ------------------------------------------------ files, other tools, the backprop trace

    def save(self, path):
        """Write a model file (an .npz of plain arrays and JSON metadata, see
        cbackprop.modelfile): the parameters and what fit learned. Returns path."""
        return modelfile.save(self, path)

    @classmethod
    def load(cls, path):
        """The network of a model file written by save (``cbackprop.load``): parameters bit
        for bit, classes_, target_coding_, history_, n_iter_, scaler_ and info_. A file
        saved from an estimator gives its network, with the estimator's labels (and its
        feature names in info_['features']); cbackprop.sklearn.load gives the estimator.
        Raises cbackprop.ModelFileError for anything but a valid model file."""
        return cls._from_spec(modelfile.read(path))

    def trace(self, x, y, lam=0.0, **dropout):
        """z, a, delta and dJ/dTheta of every layer for one sample: cbackprop.trace.Trace
        (dropout: its dropout, input_dropout, dropout_seed, epoch and sample, for the pass
        through the masks they draw)."""
        from cbackprop.trace import Trace
        return Trace(self, x, y, lam, **dropout)

    @classmethod
    def from_sklearn(cls, mlp):
        """The network of a fitted MLPClassifier/MLPRegressor, classes_ included.
        Predictions are the same; probabilities equal to rounding."""
        return cls._from_spec(interop.spec_from_sklearn(mlp))

    def to_sklearn(self):
        """A fitted MLPClassifier/MLPRegressor predicting the same (cbackprop.interop)."""
        return interop.to_sklearn(self)

    @classmethod
    def from_torch_state_dict(cls, state_dict, activation="sigmoid", output="sigmoid",
                              loss="cross_entropy", dtype=None):
        """A network from the state_dict of a stack of torch Linear layers."""
        return cls._from_spec(interop.spec_from_torch_state_dict(state_dict, activation, output,
                                                                 loss, dtype))

    def to_torch_state_dict(self):
        """The state_dict of torch.nn.Sequential(Linear, g, ...) (cbackprop.interop)."""
        return interop.to_torch_state_dict(self)

    def save_mat(self, path):
        """The course's weight file: Theta1, Theta2, ... (float64) in a MATLAB .mat."""
        return interop.save_mat(self, path)

    @classmethod
    def load_mat(cls, path, activation="sigmoid", output="sigmoid", loss="cross_entropy",
                 classes="course", dtype=None):
        """A network from a .mat file holding Theta1, Theta2, ... (the course's ex4weights).

        classes: the label of each output unit. 'course' (default): unit k is label k,
        1..K, as the course's predict.m gives (ex4: label 10 for the digit 0); None: no
        labels, predict gives unit indices 0..K-1; or the K labels.
        """
        thetas = interop.read_mat(path)
        try:
            net = cls.from_thetas(thetas, activation, output, loss, dtype)
        except (TypeError, ValueError) as exc:
            raise modelfile.ModelFileError(f"{path}: {exc}") from None
        if isinstance(classes, str) and classes == "course":
            classes = interop.course_classes(net.layer_sizes[-1])
        if classes is not None:
            classes = np.asarray(classes)
            if len(classes) != net.layer_sizes[-1] or len(np.unique(classes)) != len(classes):
                raise ValueError(f"classes must give {net.layer_sizes[-1]} distinct labels, "
                                 f"one per output unit; got {len(classes)}")
            order = np.argsort(classes, kind="stable")
            if not np.array_equal(order, np.arange(len(classes))):
                # predict maps argmax to sorted classes: put the output units in that order
                last = net.thetas[-1]
                last[...] = last[order]
            net.classes_ = classes[order]
            net.target_coding_ = _targets.TargetCoding(_targets.LABELS, True)
        return net
