"""The one table of fit options (cbackprop.options) and what is built from it."""
import inspect

import numpy as np
import pytest

import cbackprop as cb
from cbackprop import options

pytestmark = pytest.mark.filterwarnings("ignore::cbackprop.ConvergenceWarning")


def test_fit_signature_is_the_table():
    params = inspect.signature(cb.Network.fit).parameters
    assert list(params)[:4] == ["self", "X", "y", "sample_weight"]
    table = {o.name: o.default for o in options.FIT_OPTIONS}
    keyword = {n: p.default for n, p in params.items()
               if p.kind is inspect.Parameter.KEYWORD_ONLY}
    assert keyword == table
    for o in options.FIT_OPTIONS:                      # and the docstring lists every one
        assert f"{o.name} ({o.default!r}):" in cb.Network.fit.__doc__


def test_every_default_passes_its_own_check():
    for o in options.FIT_OPTIONS:
        o.check(o.name, o.default)
    assert options.resolve({}) == options.DEFAULTS


def test_unknown_option_names_the_closest():
    net = cb.Network([2, 3, 2], random_state=0)
    X, y = np.eye(2), np.array([0, 1])
    with pytest.raises(TypeError, match="unexpected keyword argument 'learnig_rate'; did you "
                                        "mean 'learning_rate'"):
        net.fit(X, y, learnig_rate=0.1)
    with pytest.raises(TypeError, match="unexpected keyword argument 'zzz'$"):
        net.fit(X, y, zzz=1)


@pytest.mark.parametrize("name, value, error", [
    ("nesterov", "no", TypeError),           # a string is not a bool (it would be truthy)
    ("shuffle", 1, TypeError),
    ("beta_1", 1.0, ValueError),
    ("epsilon", 0.0, ValueError),
    ("power_t", -1.0, ValueError),
    ("max_fun", 0, ValueError),
    ("verbose", "yes", TypeError),
    ("schedule", "cosine", ValueError),
])
def test_each_option_is_checked(name, value, error):
    net = cb.Network([2, 3, 2], random_state=0)
    with pytest.raises(error, match=name):
        net.fit(np.eye(2), np.array([0, 1]), **{name: value})


def test_adam_options_reach_the_solver():
    """beta_1, beta_2 and epsilon are the solver's: other values give other parameters."""
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(40, 3)), rng.integers(0, 2, 40)
    fits = []
    for kwargs in ({}, {"beta_1": 0.5}, {"beta_2": 0.9}, {"epsilon": 1e-2}):
        net = cb.Network([3, 4, 2], output="softmax", random_state=0)
        net.fit(X, y, solver="adam", epochs=3, learning_rate=0.05, random_state=0, **kwargs)
        fits.append(net.params.copy())
    for other in fits[1:]:
        assert not np.allclose(fits[0], other)


def test_command_line_takes_its_fit_flags_from_the_table():
    """cbackprop train's training flags: fit's names, checks and help."""
    from cbackprop.cli.parser import FIT_FLAGS, build_parser
    parser = build_parser()
    train = parser._subparsers._group_actions[0].choices["train"]
    flags = {a.dest: a for a in train._actions}
    for name in FIT_FLAGS:
        assert name in flags and name in options.BY_NAME
        brief = options.BY_NAME[name].brief or options.BY_NAME[name].help
        assert flags[name].help.startswith(brief)
    assert tuple(flags["solver"].choices) == cb.options.v.SOLVERS
    with pytest.raises(SystemExit):
        parser.parse_args(["train", "d.csv", "--epochs", "0"])
    args = parser.parse_args(["train", "d.csv", "--lam", "0.5", "--epochs", "7"])
    assert (args.lam, args.epochs, args.random_state) == (0.5, 7, 0)
