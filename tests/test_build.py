"""The installed build: what the package ships, and the build without OpenMP.

setup.py builds the core with OpenMP where the compiler has it and without it elsewhere
(Apple's clang), or when CBACKPROP_OPENMP=0 forces it: then every call runs on one thread,
the thread counts say so, and the results are the reference's. .ci/run tests both builds
and sets CBACKPROP_EXPECT_OPENMP to the one it built.
"""
import os
import warnings
from pathlib import Path

import numpy as np
import pytest

import cbackprop as cb
from cbackprop import _core, reference
from cbackprop._core import HAS_OPENMP, threads

PACKAGE = Path(cb.__file__).resolve().parent


def test_the_installed_package_ships_no_sources():
    if (PACKAGE.parent.parent / "setup.py").exists():
        pytest.skip("cbackprop is imported from its source tree (an in-place build), not installed")
    sources = sorted(str(p.relative_to(PACKAGE)) for p in PACKAGE.rglob("*")
                     if p.suffix in (".c", ".pyx", ".pxi"))
    assert sources == []
    assert list(PACKAGE.glob("_core/*.so")) or list(PACKAGE.glob("_core/*.pyd"))


def test_the_build_has_openmp_as_ci_built_it():
    expected = os.environ.get("CBACKPROP_EXPECT_OPENMP")
    if expected is None:
        pytest.skip("CBACKPROP_EXPECT_OPENMP is not set (.ci/run sets it)")
    assert HAS_OPENMP is (expected == "1")
    for build in _core.runnable_builds():              # every build, built with the same flags
        assert _core.load(build).HAS_OPENMP is HAS_OPENMP


@pytest.mark.skipif(HAS_OPENMP, reason="this build has OpenMP")
def test_without_openmp_every_thread_count_is_one(monkeypatch):
    assert threads.default_threads() == 1
    net = cb.Network([50, 40, 3], random_state=0)
    assert net.n_threads == 1
    assert net._row_plan(10**6)[0] == 1
    net.n_threads = 4
    monkeypatch.setattr(threads, "_warned_no_openmp", False)
    with pytest.warns(UserWarning, match="without OpenMP"):
        assert net._row_plan(10**6)[0] == 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")                 # said once, not every call
        assert net._row_plan(10**6)[0] == 1
    from cbackprop.sklearn import BackpropClassifier         # needs scikit-learn
    assert BackpropClassifier()._n_threads() == 1


@pytest.mark.parametrize("dtype", ["float64", "float32"])
def test_threads_asked_of_the_core_give_the_reference(dtype):
    """Without OpenMP the core's parallel loops run serially (threadid() is 0): asked for
    several threads, it still gives the reference's results."""
    rng = np.random.default_rng(3)
    sizes, m = [30, 20, 4], 2000
    net = cb.Network(sizes, activation="tanh", output="softmax", dtype=dtype, random_state=1)
    X = rng.normal(size=(m, sizes[0])).astype(dtype)
    Y = np.eye(sizes[-1], dtype=dtype)[rng.integers(0, sizes[-1], m)]
    thetas64 = [t.astype(np.float64) for t in net.thetas]
    J_ref, G_ref = reference.cost_and_gradient(thetas64, X.astype(np.float64),
                                               Y.astype(np.float64), 0.5, activation="tanh",
                                               output="softmax")
    h_ref = reference.forward(thetas64, X.astype(np.float64), activation="tanh", output="softmax")
    tol = 1e-10 if dtype == "float64" else 1e-4
    layout = _core.core.Layout(sizes, ["tanh", "softmax"], "cross_entropy")
    w = np.empty(0, dtype)
    results = []
    for n_threads in (1, 2, 4):
        grad = np.zeros_like(net.params)
        J = _core.core.cost_grad(layout, X, Y, w, net.params, grad, float(m), 0.5 / m, 64,
                                 n_threads)
        h = _core.core.forward(layout, X, net.params, np.empty((m, sizes[-1]), dtype), 64,
                               n_threads)
        assert abs(J - J_ref) <= tol * abs(J_ref)
        for g, r in zip(net.split(grad), G_ref):
            assert np.abs(g - r).max() <= tol * np.abs(r).max()
        assert np.abs(h - h_ref).max() <= tol
        results.append((J, grad, h))
    if not HAS_OPENMP:           # one thread whatever was asked: rows in the same order
        for J, grad, h in results[1:]:
            assert np.array_equal(h, results[0][2])
