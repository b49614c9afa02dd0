"""FANN, the classic C library, as a contender: libdoublefann driven through ctypes.

FANN's standard backpropagation (FANN_TRAIN_INCREMENTAL: the weights updated after every
sample) with sigmoid units (FANN_SIGMOID at its default steepness 0.5 is 1 / (1 + exp(-z))) and
its linear error function minimizes the squared error (1/2) ||h - y||^2, so its counterpart is
cbackprop's `online` solver with loss="squared_error": the same updates from the same start, but
for one difference in FANN: it clips a unit's output to [0.01, 0.99] before taking the
derivative g' = a (1 - a), so parameters drift apart a little where units saturate.
Install FANN with Debian's `apt-get install libfann-dev`; without it `load()` says why.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/bench_fann.py
"""
import ctypes
import ctypes.util
import sys

import numpy as np

FANN_SIGMOID, FANN_TRAIN_INCREMENTAL, FANN_ERRORFUNC_LINEAR = 3, 0, 0
c_double_p = ctypes.POINTER(ctypes.c_double)


class Connection(ctypes.Structure):           # struct fann_connection
    _fields_ = [("from_neuron", ctypes.c_uint), ("to_neuron", ctypes.c_uint),
                ("weight", ctypes.c_double)]


class TrainData(ctypes.Structure):            # struct fann_train_data (fann_train.h)
    _fields_ = [("errno_f", ctypes.c_int), ("error_log", ctypes.c_void_p),
                ("errstr", ctypes.c_char_p), ("num_data", ctypes.c_uint),
                ("num_input", ctypes.c_uint), ("num_output", ctypes.c_uint),
                ("input", ctypes.POINTER(c_double_p)), ("output", ctypes.POINTER(c_double_p))]


_lib, _why = None, None


def load():
    """(libdoublefann as a ctypes library, None) or (None, why it is unavailable)."""
    global _lib, _why
    if _lib is not None or _why is not None:
        return _lib, _why
    path = ctypes.util.find_library("doublefann")
    if path is None:
        _why = "FANN not found (apt-get install libfann-dev): its rows are skipped"
        return None, _why
    lib = ctypes.CDLL(path)
    signatures = {
        "fann_create_standard_array": (ctypes.c_void_p, [ctypes.c_uint, ctypes.c_void_p]),
        "fann_destroy": (None, [ctypes.c_void_p]),
        "fann_set_activation_function_hidden": (None, [ctypes.c_void_p, ctypes.c_int]),
        "fann_set_activation_function_output": (None, [ctypes.c_void_p, ctypes.c_int]),
        "fann_set_training_algorithm": (None, [ctypes.c_void_p, ctypes.c_int]),
        "fann_set_train_error_function": (None, [ctypes.c_void_p, ctypes.c_int]),
        "fann_set_learning_rate": (None, [ctypes.c_void_p, ctypes.c_float]),
        "fann_set_learning_momentum": (None, [ctypes.c_void_p, ctypes.c_float]),
        "fann_get_total_connections": (ctypes.c_uint, [ctypes.c_void_p]),
        "fann_get_connection_array": (None, [ctypes.c_void_p, ctypes.c_void_p]),
        "fann_set_weight_array": (None, [ctypes.c_void_p, ctypes.c_void_p, ctypes.c_uint]),
        "fann_run": (c_double_p, [ctypes.c_void_p, ctypes.c_void_p]),
        "fann_train_epoch": (ctypes.c_float, [ctypes.c_void_p, ctypes.POINTER(TrainData)]),
        "fann_test_data": (ctypes.c_float, [ctypes.c_void_p, ctypes.POINTER(TrainData)]),
        "fann_create_train": (ctypes.POINTER(TrainData),
                              [ctypes.c_uint, ctypes.c_uint, ctypes.c_uint]),
        "fann_destroy_train": (None, [ctypes.POINTER(TrainData)]),
    }
    for name, (restype, argtypes) in signatures.items():
        fn = getattr(lib, name)
        fn.restype, fn.argtypes = restype, argtypes
    _lib = lib
    return _lib, None


def version():
    """'libdoublefann.so.2' or similar: the library's file, for the environment header."""
    return ctypes.util.find_library("doublefann")


class Data:
    """A fann_train_data holding X (m x n) and Y (m x K), copied row by row."""

    def __init__(self, X, Y):
        self.lib, _ = load()
        m, n = X.shape
        self.ptr = self.lib.fann_create_train(m, n, Y.shape[1])
        X, Y = np.ascontiguousarray(X, np.float64), np.ascontiguousarray(Y, np.float64)
        data = self.ptr.contents
        for i in range(m):
            ctypes.memmove(data.input[i], X[i].ctypes.data, X[i].nbytes)
            ctypes.memmove(data.output[i], Y[i].ctypes.data, Y[i].nbytes)
        self.m = m

    def __del__(self):
        self.lib.fann_destroy_train(self.ptr)


class Network:
    """A FANN network with sigmoid units and incremental backpropagation, starting from the
    course's Thetas (bias in column 0; FANN keeps each layer's bias as its last neuron)."""

    def __init__(self, thetas, learning_rate):
        self.lib, why = load()
        if self.lib is None:
            raise RuntimeError(why)
        self.sizes = [thetas[0].shape[1] - 1] + [t.shape[0] for t in thetas]
        layers = (ctypes.c_uint * len(self.sizes))(*self.sizes)
        self.ann = self.lib.fann_create_standard_array(len(self.sizes), layers)
        for setter, value in ((self.lib.fann_set_activation_function_hidden, FANN_SIGMOID),
                              (self.lib.fann_set_activation_function_output, FANN_SIGMOID),
                              (self.lib.fann_set_training_algorithm, FANN_TRAIN_INCREMENTAL),
                              (self.lib.fann_set_train_error_function, FANN_ERRORFUNC_LINEAR),
                              (self.lib.fann_set_learning_rate, learning_rate),
                              (self.lib.fann_set_learning_momentum, 0.0)):
            setter(self.ann, value)
        self.thetas = thetas

    def __del__(self):
        if getattr(self, "ann", None):
            self.lib.fann_destroy(self.ann)

    def _connections(self):
        """FANN's connections, and for each the (layer, row, column) of its Theta entry."""
        n = self.lib.fann_get_total_connections(self.ann)
        conns = (Connection * n)()
        self.lib.fann_get_connection_array(self.ann, conns)
        starts = np.cumsum([0] + [s + 1 for s in self.sizes])     # first neuron of each layer
        where = []
        for c in conns:
            l = int(np.searchsorted(starts, c.from_neuron, side="right")) - 1
            i, j = c.from_neuron - starts[l], c.to_neuron - starts[l + 1]
            where.append((l, j, 0 if i == self.sizes[l] else i + 1))
        return conns, where

    @property
    def thetas(self):
        conns, where = self._connections()
        thetas = [np.zeros((s_out, s_in + 1)) for s_in, s_out in zip(self.sizes, self.sizes[1:])]
        for c, (l, j, k) in zip(conns, where):
            thetas[l][j, k] = c.weight
        return thetas

    @thetas.setter
    def thetas(self, thetas):
        conns, where = self._connections()
        for c, (l, j, k) in zip(conns, where):
            c.weight = float(thetas[l][j, k])
        self.lib.fann_set_weight_array(self.ann, conns, len(conns))

    def forward(self, X):
        X = np.ascontiguousarray(X, np.float64)
        K = self.sizes[-1]
        return np.array([self.lib.fann_run(self.ann, x.ctypes.data)[:K] for x in X])

    def train_epoch(self, data):
        """One epoch of incremental backpropagation over data, in its order; FANN's MSE."""
        return self.lib.fann_train_epoch(self.ann, data.ptr)

    def mse(self, data):
        """FANN's mean squared error: sum ||h - y||^2 / (m K), the cost J of loss=
        'squared_error' times 2 / K."""
        return self.lib.fann_test_data(self.ann, data.ptr)


def online_fann(d, seed, learning_rate=0.1):
    """One online epoch on d (bench_train's data sets) from bench_train.start_thetas(seed)."""
    from bench_train import start_thetas
    from _common import timed
    net, data = Network(start_thetas(seed), learning_rate), Data(d["Xtr"], d["Ytr"])
    t, _ = timed(lambda: net.train_epoch(data))
    h = net.forward(d["Xte"])
    return dict(time=t / data.m, acc=float(np.mean(h.argmax(1) == d["yte"])), iters=1,
                params=np.concatenate([theta.ravel() for theta in net.thetas]))


def check_cost(thetas, X, Y):
    """Relative difference between FANN's MSE and cbackprop's squared-error cost (2 J / K) for
    the same Thetas and data: FANN computes the same function."""
    import cbackprop as cb
    ours = cb.Network.from_thetas(thetas, loss="squared_error").cost(X, Y)
    theirs = Network(thetas, 0.1).mse(Data(X, Y)) * Y.shape[1] / 2
    return abs(theirs - ours) / abs(ours)


def main():
    """FANN against cbackprop's online solver (squared error) on digits, per sample."""
    from bench_train import LR_ONLINE, digits, online_cbackprop, start_thetas
    from _common import environment, interleave, print_environment, spread, steady_run
    lib, why = load()
    print_environment(environment(fann=version()))
    if lib is None:
        sys.exit(why)
    d = digits()
    print(f"FANN MSE vs cbackprop squared-error cost, same Thetas: relative difference "
          f"{check_cost(start_thetas(0), d['Xtr'], d['Ytr']):.1e} (FANN's MSE is a float)")
    runs = interleave({"FANN": steady_run(lambda r: online_fann(d, r, LR_ONLINE)),
                       "cbackprop": steady_run(
                           lambda r: online_cbackprop(d, r, loss="squared_error"))}, 7)
    for name, rs in runs.items():
        s = spread([r["time"] for r in rs], 1e6)
        print(f"{name:10s} {s['median']:7.3f} us a sample ({s['min']:.3f}-{s['max']:.3f}), "
              f"test accuracy {np.median([r['acc'] for r in rs]):.4f}")


if __name__ == "__main__":
    main()
