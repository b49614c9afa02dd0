"""Bad input: a ValueError or TypeError whose message names the argument, raised in Python
before any compiled code runs, and the network is unharmed afterwards.

Each bad input is its own test id. The messages are matched on the argument's name only
(plus a key word where one is unambiguous), not on their wording.
"""
import numpy as np
import pytest

import cbackprop as cb
from cbackprop import _validation as v

BAD = (ValueError, TypeError)
SIZES = [3, 4, 2]
M = 5


def good_X():
    return np.linspace(-1, 1, M * SIZES[0]).reshape(M, SIZES[0])


def good_Y():
    return np.eye(SIZES[-1])[np.arange(M) % SIZES[-1]]


def make_net(**kwargs):
    return cb.Network(SIZES, random_state=0, **kwargs)


def name(arg):
    """A regex: the argument's name as a word."""
    return rf"\b{arg}\b"


def with_value(a, index, value):
    a = a.copy()
    a[index] = value
    return a


def call(entry, net, X, Y=None, **kwargs):
    """Run one public entry point of the network on (X, Y)."""
    if Y is None:
        Y = good_Y()
    if entry == "forward":
        return net.forward(X)
    if entry == "cost":
        return net.cost(X, Y, **kwargs)
    if entry == "check_gradients":
        return cb.check_gradients(net, X, Y, **kwargs)
    return net.cost_and_gradient(X, Y, method=entry, **kwargs)


@pytest.fixture
def net():
    """A 3-4-2 sigmoid network; the test checks afterwards that a rejected call left it intact."""
    net = make_net()
    before = net.params.copy()
    J = net.cost(good_X(), good_Y())
    yield net
    np.testing.assert_array_equal(net.params, before)
    assert net.cost(good_X(), good_Y()) == J


# ------------------------------------------------------------------------------------ X


BAD_X = {
    "ndim_0": lambda: 1.0,
    "ndim_1": lambda: good_X()[0],
    "ndim_3": lambda: good_X()[None],
    "too_few_columns": lambda: good_X()[:, :2],
    "too_many_columns": lambda: np.hstack([good_X(), good_X()]),
    "empty_rows": lambda: np.empty((0, SIZES[0])),
    "empty_columns": lambda: np.empty((M, 0)),
    "empty_list": lambda: [],
    "none": lambda: None,
    "nan": lambda: with_value(good_X(), (2, 1), np.nan),
    "inf": lambda: with_value(good_X(), (0, 0), np.inf),
    "minus_inf": lambda: with_value(good_X(), (4, 2), -np.inf),
    "nan_float32": lambda: with_value(good_X().astype(np.float32), (1, 1), np.nan),
    "string_dtype": lambda: np.full((M, SIZES[0]), "1.0"),
    "bytes_dtype": lambda: np.full((M, SIZES[0]), b"1"),
    "object_dtype_text": lambda: np.full((M, SIZES[0]), "x", dtype=object),
    "object_dtype_missing": lambda: with_value(good_X().astype(object), (1, 1), None),
    "complex_dtype": lambda: good_X().astype(complex),
    "datetime_dtype": lambda: np.zeros((M, SIZES[0]), dtype="datetime64[s]"),
    "ragged_list": lambda: [[1.0, 2.0, 3.0], [1.0, 2.0]],
    "strings_in_list": lambda: [["a", "b", "c"]] * M,
}


@pytest.mark.parametrize("entry", ["forward", "cost", "batched", "per_sample"])
@pytest.mark.parametrize("case", sorted(BAD_X))
def test_bad_X(net, case, entry):
    if case == "ndim_1" and entry == "forward":
        assert net.forward(BAD_X[case]()).shape == (SIZES[-1],)   # one row (test_serve.py)
        return
    with pytest.raises(BAD, match=name("X")):
        call(entry, net, BAD_X[case]())


def test_X_overflowing_float32():
    """Finite float64 values too large for a float32 network."""
    net = make_net(dtype="float32")
    X = with_value(good_X(), (0, 0), 1e39)
    for entry in ["forward", "cost", "batched", "per_sample"]:
        with pytest.raises(BAD, match=name("X")):
            call(entry, net, X)


@pytest.mark.filterwarnings("error")
def test_X_overflowing_float32_no_stray_warning():
    """The overflow is reported as the ValueError alone: no RuntimeWarning from the cast first
    (under -W error that warning would replace the clear error)."""
    net = make_net(dtype="float32")
    with pytest.raises(ValueError, match=name("X")):
        net.forward(with_value(good_X(), (0, 0), 1e39))


@pytest.mark.parametrize("value, word", [(np.inf, "inf"), (-np.inf, "inf"), (np.nan, "NaN")])
@pytest.mark.parametrize("activation, output, loss", [
    ("sigmoid", "sigmoid", "cross_entropy"), ("sigmoid", "sigmoid", "squared_error"),
    ("relu", "identity", "squared_error"), ("tanh", "softmax", "cross_entropy")])
@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_nonfinite_X_found_after_the_gradient(value, word, activation, output, loss, dtype):
    """The batched gradient checks its result instead of X first: a NaN or inf must still be
    reported as such, even where the weights on that column are all zero and sigmoids
    saturate (so that the cost alone stays finite), in any row of any block."""
    net = cb.Network([5, 12, 3], activation=activation, output=output, loss=loss, dtype=dtype,
                     random_state=0)
    net.thetas[0][:, 1 + 3] = 0.0                     # column 3 of X meets zero weights only
    X = np.random.default_rng(0).normal(size=(600, 5)) * 50   # saturates the sigmoids
    Y = np.eye(3)[np.arange(600) % 3]
    for row in (0, 257, 599):
        bad = with_value(X, (row, 3), value)
        with pytest.raises(ValueError, match=f"X contains {word}"):
            net.cost_and_gradient(bad, Y, 0.1)


def test_bad_X_in_check_gradients(net):
    with pytest.raises(BAD, match=name("X")):
        cb.check_gradients(net, good_X()[:, :2], good_Y())


# ------------------------------------------------------------------------------------ Y


BAD_Y = {
    "ndim_1_labels": lambda: np.arange(M) % SIZES[-1],
    "ndim_3": lambda: good_Y()[None],
    "too_few_rows": lambda: good_Y()[:-1],
    "too_many_rows": lambda: np.vstack([good_Y(), good_Y()]),
    "too_few_columns": lambda: good_Y()[:, :1],
    "too_many_columns": lambda: np.hstack([good_Y(), good_Y()]),
    "empty_columns": lambda: np.empty((M, 0)),
    "none": lambda: None,
    "nan": lambda: with_value(good_Y(), (1, 0), np.nan),
    "inf": lambda: with_value(good_Y(), (3, 1), np.inf),
    "string_dtype": lambda: np.full((M, SIZES[-1]), "1"),
    "object_dtype_text": lambda: np.full((M, SIZES[-1]), "x", dtype=object),
    "complex_dtype": lambda: good_Y().astype(complex),
    "above_one_cross_entropy": lambda: with_value(good_Y(), (0, 0), 2.0),
    "below_zero_cross_entropy": lambda: with_value(good_Y(), (2, 1), -0.5),
    "class_labels_not_one_hot": lambda: np.tile(np.arange(1, SIZES[-1] + 1), (M, 1)),
}


@pytest.mark.parametrize("entry", ["cost", "batched", "per_sample"])
@pytest.mark.parametrize("case", sorted(BAD_Y))
def test_bad_Y(net, case, entry):
    Y = BAD_Y[case]()
    with pytest.raises(BAD, match=name("Y")):
        if Y is None:
            # call() would substitute good targets for None
            net.cost(good_X(), None) if entry == "cost" else net.cost_and_gradient(
                good_X(), None, method=entry)
        else:
            call(entry, net, good_X(), Y)


@pytest.mark.parametrize("loss", ["cross_entropy", "squared_error"])
@pytest.mark.parametrize("value, words", [(np.nan, "Y contains NaN"), (np.inf, "Y contains inf"),
                                          (-np.inf, "Y contains inf"),
                                          (1e300, "Y overflows float32")])
def test_bad_Y_values_are_named(loss, value, words):
    """Cross-entropy's range check stands in for the finite check (NaN fails it too): the
    message still says what is wrong."""
    net = cb.Network(SIZES, loss=loss, dtype="float32", random_state=0)
    with pytest.raises(ValueError, match=words):
        net.cost_and_gradient(good_X(), with_value(good_Y(), (2, 1), value))


@pytest.mark.parametrize("output", ["sigmoid", "softmax"])
def test_cross_entropy_targets_in_unit_interval(output):
    net = make_net(output=output)
    for Y in (good_Y() * 1.5, good_Y() - 0.25):
        with pytest.raises(ValueError, match=name("Y")):
            net.cost_and_gradient(good_X(), Y)


def test_poisson_targets_must_not_be_negative():
    net = make_net(output="exp", loss="poisson")
    J, grads = net.cost_and_gradient(good_X(), good_Y() * 5)       # counts and reals >= 0
    assert np.isfinite(J) and all(np.isfinite(g).all() for g in grads)
    with pytest.raises(ValueError, match=r"Some value\(s\) of Y are negative"):
        net.cost_and_gradient(good_X(), good_Y() - 0.5)
    with pytest.raises(ValueError, match="Y contains NaN"):
        net.cost(good_X(), np.full_like(good_Y(), np.nan))


@pytest.mark.parametrize("output", ["sigmoid", "softmax", "identity"])
def test_squared_error_takes_any_real_targets(output):
    net = make_net(output=output, loss="squared_error")
    Y = good_Y() * 7 - 3
    J, grads = net.cost_and_gradient(good_X(), Y)
    assert np.isfinite(J) and all(np.isfinite(g).all() for g in grads)


# ------------------------------------------------------------------- lam, sample_weight, method


BAD_LAM = {
    "negative": -0.1,
    "nan": float("nan"),
    "inf": float("inf"),
    "minus_inf": float("-inf"),
    "string": "1.0",
    "none": None,
    "complex": 1j,
    "list": [1.0],
}


@pytest.mark.parametrize("entry", ["cost", "batched", "per_sample", "check_gradients"])
@pytest.mark.parametrize("case", sorted(BAD_LAM))
def test_bad_lam(net, case, entry):
    with pytest.raises(BAD, match=name("lam")):
        call(entry, net, good_X(), lam=BAD_LAM[case])


@pytest.mark.parametrize("lam", [0, 0.0, 3, np.float32(0.5), np.int64(2), np.float64(1e-3)],
                         ids=repr)
def test_lam_any_real_number(net, lam):
    assert np.isfinite(net.cost(good_X(), good_Y(), lam=lam))


BAD_WEIGHTS = {
    "too_short": lambda: np.ones(M - 1),
    "too_long": lambda: np.ones(M + 1),
    "ndim_2": lambda: np.ones((M, 1)),
    "ndim_0": lambda: 1.0,
    "negative": lambda: with_value(np.ones(M), 2, -1.0),
    "nan": lambda: with_value(np.ones(M), 0, np.nan),
    "inf": lambda: with_value(np.ones(M), 4, np.inf),
    "all_zero": lambda: np.zeros(M),
    "string_dtype": lambda: np.full(M, "1"),
    "complex_dtype": lambda: np.ones(M, dtype=complex),
}


@pytest.mark.parametrize("entry", ["cost", "batched", "per_sample", "check_gradients"])
@pytest.mark.parametrize("case", sorted(BAD_WEIGHTS))
def test_bad_sample_weight(net, case, entry):
    with pytest.raises(BAD, match=name("sample_weight")):
        call(entry, net, good_X(), sample_weight=BAD_WEIGHTS[case]())


@pytest.mark.parametrize("method", ["loop", "BATCHED", "per-sample", "", None, 1])
def test_bad_method(net, method):
    with pytest.raises(BAD, match=name("method")):
        net.cost_and_gradient(good_X(), good_Y(), method=method)


@pytest.mark.parametrize("n_threads", [0, -1, 1.5, "2", None, True], ids=repr)
def test_bad_n_threads(n_threads):
    net = make_net()
    net.n_threads = n_threads
    X = np.tile(good_X(), (60, 1))       # enough rows for more than one thread
    Y = np.tile(good_Y(), (60, 1))
    for entry in ["forward", "cost", "batched"]:
        with pytest.raises(BAD, match=name("n_threads")):
            call(entry, net, X, Y)


# ------------------------------------------------------------------------- the constructor


BAD_NETWORK = {
    # layer_sizes
    "sizes_zero": (dict(layer_sizes=[3, 0, 2]), "layer_sizes"),
    "sizes_zero_output": (dict(layer_sizes=[3, 4, 0]), "layer_sizes"),
    "sizes_zero_input": (dict(layer_sizes=[0, 4, 2]), "layer_sizes"),
    "sizes_negative": (dict(layer_sizes=[3, -4, 2]), "layer_sizes"),
    "sizes_float": (dict(layer_sizes=[3, 4.0, 2]), "layer_sizes"),
    "sizes_float_fraction": (dict(layer_sizes=[3, 2.5, 2]), "layer_sizes"),
    "sizes_float_array": (dict(layer_sizes=np.array([3.0, 2.0])), "layer_sizes"),
    "sizes_bool": (dict(layer_sizes=[3, True, 2]), "layer_sizes"),
    "sizes_none_entry": (dict(layer_sizes=[3, None, 2]), "layer_sizes"),
    "sizes_string_entry": (dict(layer_sizes=[3, "4", 2]), "layer_sizes"),
    "sizes_one_entry": (dict(layer_sizes=[3]), "layer_sizes"),
    "sizes_empty": (dict(layer_sizes=[]), "layer_sizes"),
    "sizes_int": (dict(layer_sizes=3), "layer_sizes"),
    "sizes_string": (dict(layer_sizes="3,4,2"), "layer_sizes"),
    "sizes_none": (dict(layer_sizes=None), "layer_sizes"),
    # activation
    "activation_unknown": (dict(activation="swish"), "activation"),
    "activation_output_name": (dict(activation="softmax"), "activation"),
    "activation_case": (dict(activation="Sigmoid"), "activation"),
    "activation_none": (dict(activation=None), "activation"),
    "activation_number": (dict(activation=1), "activation"),
    "activation_list_too_long": (dict(activation=["relu", "tanh"]), "activation"),
    "activation_list_empty": (dict(activation=[]), "activation"),
    "activation_list_unknown": (dict(activation=["swish"]), "activation"),
    # output and loss
    "output_unknown": (dict(output="linear"), "output"),
    "output_hidden_name": (dict(output="relu"), "output"),
    "output_none": (dict(output=None), "output"),
    "loss_unknown": (dict(loss="mse"), "loss"),
    "loss_none": (dict(loss=None), "loss"),
    "cross_entropy_identity": (dict(output="identity", loss="cross_entropy"), "loss"),
    "poisson_identity": (dict(output="identity", loss="poisson"), "loss"),
    "exp_squared_error": (dict(output="exp", loss="squared_error"), "output"),
    "exp_cross_entropy": (dict(output="exp", loss="cross_entropy"), "loss"),
    "softmax_one_unit": (dict(layer_sizes=[3, 4, 1], output="softmax"), "output"),
    "softmax_one_unit_squared_error": (dict(layer_sizes=[3, 1], output="softmax",
                                            loss="squared_error"), "output"),
    # dtype
    "dtype_float16": (dict(dtype="float16"), "dtype"),
    "dtype_int32": (dict(dtype="int32"), "dtype"),
    "dtype_complex": (dict(dtype=np.complex128), "dtype"),
    "dtype_object": (dict(dtype=object), "dtype"),
    "dtype_unknown_name": (dict(dtype="banana"), "dtype"),
    "dtype_longdouble": (dict(dtype=np.longdouble), "dtype"),
    # init and random_state
    "init_unknown": (dict(init="xavier"), "init"),
    "init_case": (dict(init="NG"), "init"),
    "init_none": (dict(init=None), "init"),
    "random_state_string": (dict(random_state="seed"), "random_state"),
    "random_state_float": (dict(random_state=1.5), "random_state"),
}


@pytest.mark.parametrize("case", sorted(BAD_NETWORK))
def test_bad_network(case):
    kwargs, arg = BAD_NETWORK[case]
    kwargs = {"layer_sizes": SIZES, "random_state": 0, **kwargs}
    with pytest.raises(BAD, match=name(arg)):
        cb.Network(**kwargs)


@pytest.mark.parametrize("sizes", [[3, 2], (3, 4, 2), np.array([3, 4, 5, 2]),
                                   [np.int64(3), np.int32(2)], range(2, 5)],
                         ids=["list", "tuple", "int_array", "numpy_ints", "range"])
def test_layer_sizes_any_int_sequence(sizes):
    net = cb.Network(sizes)
    assert net.layer_sizes == [int(s) for s in sizes]
    assert all(type(s) is int for s in net.layer_sizes)


# --------------------------------------------------------------------------- from_thetas


def T(*shape):
    return np.full(shape, 0.1)


BAD_THETAS = {
    "inconsistent_shapes": [T(4, 4), T(2, 6)],
    "inconsistent_shapes_later": [T(4, 4), T(3, 5), T(2, 3)],
    "too_few_columns_next": [T(4, 4), T(2, 4)],
    "one_column": [T(4, 1)],
    "zero_rows": [T(0, 3)],
    "ndim_1": [np.full(4, 0.1)],
    "ndim_3": [T(2, 4, 3)],
    "empty_list": [],
    "none": None,
    "array_not_list": T(4, 4),
    "nan": [T(4, 4), with_value(T(2, 5), (1, 1), np.nan)],
    "inf": [with_value(T(4, 4), (0, 0), np.inf)],
    "string_dtype": [np.full((4, 4), "0.1")],
    "object_dtype": [T(4, 4).astype(object)],
    "complex_dtype": [T(4, 4).astype(complex)],
    "ragged_nested_list": [[[0.1, 0.2], [0.3]]],
}


@pytest.mark.parametrize("case", sorted(BAD_THETAS))
def test_bad_from_thetas(case):
    with pytest.raises(BAD, match=name("thetas")):
        cb.Network.from_thetas(BAD_THETAS[case])


def test_from_thetas_overflowing_float32():
    """Finite float64 Thetas too large for float32 must not become inf parameters."""
    with pytest.raises(BAD, match=name("thetas")):
        cb.Network.from_thetas([with_value(T(2, 4), (0, 1), 1e39)], dtype="float32")


@pytest.mark.parametrize("kwargs,arg", [
    (dict(activation="swish"), "activation"),
    (dict(activation=["relu", "relu"]), "activation"),
    (dict(output="linear"), "output"),
    (dict(loss="hinge"), "loss"),
    (dict(output="identity", loss="cross_entropy"), "loss"),
    (dict(dtype="float16"), "dtype"),
], ids=["activation", "activation_list_length", "output", "loss", "cross_entropy_identity",
        "dtype"])
def test_bad_from_thetas_options(kwargs, arg):
    with pytest.raises(BAD, match=name(arg)):
        cb.Network.from_thetas([T(4, 4), T(2, 5)], **kwargs)


def test_from_thetas_softmax_one_unit():
    with pytest.raises(BAD, match=name("output")):
        cb.Network.from_thetas([T(4, 4), T(1, 5)], output="softmax")


# -------------------------------------------------------------------------------- params


BAD_PARAMS = {
    "too_short": lambda n: np.zeros(n - 1),
    "too_long": lambda n: np.zeros(n + 1),
    "ndim_2": lambda n: np.zeros((1, n)),
    "nan": lambda n: with_value(np.zeros(n), 3, np.nan),
    "inf": lambda n: with_value(np.zeros(n), 0, -np.inf),
    "string_dtype": lambda n: np.full(n, "0"),
    "complex_dtype": lambda n: np.zeros(n, dtype=complex),
}


@pytest.mark.parametrize("case", sorted(BAD_PARAMS))
def test_bad_params(net, case):
    with pytest.raises(BAD, match=name("params")):
        net.params = BAD_PARAMS[case](net.params.size)


def test_params_overflowing_float32():
    net = make_net(dtype="float32")
    before = net.params.copy()
    with pytest.raises(BAD, match=name("params")):
        net.params = with_value(np.zeros(net.params.size), 1, 1e39)
    np.testing.assert_array_equal(net.params, before)


# ---------------------------------------------------------------- rejected calls change nothing


def test_rejected_calls_leave_inputs_alone(net):
    """Inputs of a call that is rejected (for another argument) are not modified either."""
    X, Y, w = good_X(), good_Y(), np.ones(M)
    copies = [a.copy() for a in (X, Y, w)]
    with pytest.raises(BAD):
        net.cost_and_gradient(X, Y, lam=-1.0, sample_weight=w)
    with pytest.raises(BAD):
        net.cost_and_gradient(X, Y, sample_weight=with_value(w, 0, -1))
    with pytest.raises(BAD):
        net.cost_and_gradient(X, Y, method="nope")
    for a, c in zip((X, Y, w), copies):
        np.testing.assert_array_equal(a, c)


def test_object_arrays_of_numbers_are_numbers(net):
    """pandas' nullable columns (Int64, Float64, boolean) arrive as object arrays of numbers."""
    X = good_X()
    np.testing.assert_array_equal(net.forward(X.astype(object)), net.forward(X))


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_all_finite_finds_nan_and_inf_anywhere(dtype):
    """all_finite checks chunk by chunk: NaN and inf in any chunk must be found, strided and
    empty arrays handled, and finite values near the float range must pass."""
    a = np.ones(100_000, dtype)
    assert v.all_finite(a) and v.all_finite(a.reshape(400, 250)[:, ::3])
    for bad in (np.nan, np.inf, -np.inf):
        for index in (0, 65_536, 99_999):
            b = a.copy()
            b[index] = bad
            assert not v.all_finite(b)
    assert v.all_finite(np.full(1000, np.finfo(dtype).max / 2, dtype))
    assert v.all_finite(np.empty(0, dtype))
    # the compiled test of the exponent bits: every position of a short array (vector
    # body and tail), NaN with its sign bit set, a strided view, and values at the edges
    info = np.finfo(dtype)
    edges = np.array([info.max, -info.max, info.tiny, info.smallest_subnormal, -0.0, 0], dtype)
    assert v.all_finite(edges)
    for n in range(1, 40):
        for index in range(n):
            b = np.zeros(n, dtype)
            b[index] = -np.nan if index % 2 else np.inf
            assert not v.all_finite(b)
    strided = np.ones((50, 6), dtype)
    strided[17, 4] = np.nan
    assert v.all_finite(strided[:, ::3]) and not v.all_finite(strided[:, 1::3])


@pytest.mark.parametrize("dtype", [np.float16, np.longdouble, ">f8", ">f4"])
def test_all_finite_other_float_dtypes(dtype):
    """dtypes the compiled test does not take (half, long double, the other byte order)
    are checked by NumPy instead, with the same answers."""
    a = np.ones(70_000, dtype)
    assert v.all_finite(a)
    for bad in (np.nan, np.inf):
        b = a.copy()
        b[66_000] = bad
        assert not v.all_finite(b)


def test_lazy_generator_draws_as_default_rng():
    """fit's generator of an int seed is made on first use and draws what
    np.random.default_rng would; bad seeds are refused at once, not at the first draw."""
    lazy = v.check_random_state(7, lazy=True)
    assert isinstance(lazy, v.LazyGenerator)
    expected = np.random.default_rng(7)
    np.testing.assert_array_equal(lazy.permutation(50), expected.permutation(50))
    assert lazy.integers(0, 2 ** 63, dtype=np.int64) == expected.integers(0, 2 ** 63,
                                                                          dtype=np.int64)
    assert v.check_random_state(None, lazy=True).permutation(5).shape == (5,)
    given = np.random.RandomState(0)
    assert v.check_random_state(given, lazy=True) is given
    with pytest.raises(ValueError, match="random_state"):
        v.check_random_state(-1, lazy=True)
    with pytest.raises(TypeError, match="random_state"):
        v.check_random_state("seed", lazy=True)
