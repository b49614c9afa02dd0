"""cbackprop.preprocessing.TargetScaler: regression targets standardized for training,
the scaling folded into the network afterwards (what `cbackprop train` does)."""
import numpy as np
import pytest

import cbackprop as cb
from cbackprop.preprocessing import Scaler, TargetScaler


@pytest.mark.parametrize("n_outputs", [1, 3])
def test_folded_network_predicts_in_the_targets_units(rng, n_outputs):
    """After folding, the outputs are std * h + mean of the network's outputs h before."""
    y = rng.normal(size=(50, n_outputs)) * [40.0, 0.5, 3.0][:n_outputs] + 1000.0
    y = y[:, 0] if n_outputs == 1 else y
    scaler = TargetScaler.fit(y)
    z = scaler.transform(y)
    assert z.shape == y.shape
    np.testing.assert_allclose(z.mean(axis=0), 0.0, atol=1e-10)
    np.testing.assert_allclose(z.std(axis=0), 1.0, rtol=1e-12)

    net = cb.Network([4, 6, n_outputs], activation="tanh", output="identity",
                     loss="squared_error", random_state=0)
    X = rng.normal(size=(20, 4))
    h = net.forward(X)
    assert scaler.fold_into(net) is net
    expected = scaler.std * h + scaler.mean
    np.testing.assert_allclose(net.forward(X), expected, rtol=1e-12, atol=0)
    if n_outputs == 1:                     # what `cbackprop predict` prints
        np.testing.assert_allclose(net.predict(X), expected[:, 0], rtol=1e-12, atol=0)


def test_constant_targets_and_bad_input():
    scaler = TargetScaler.fit(np.full(5, 7.0))
    assert scaler.std.tolist() == [1.0] and scaler.mean.tolist() == [7.0]
    assert scaler.transform(np.full(5, 7.0)).tolist() == [0.0] * 5
    with pytest.raises(ValueError, match="1 value"):
        scaler.transform(np.zeros((5, 2)))
    with pytest.raises(ValueError, match="identity"):
        scaler.fold_into(cb.Network([2, 1], output="sigmoid"))
    with pytest.raises(ValueError, match="1 identity output"):
        scaler.fold_into(cb.Network([2, 2], output="identity", loss="squared_error"))
    with pytest.raises(ValueError):
        TargetScaler(0.0, 0.0)
    with pytest.raises(ValueError):
        TargetScaler.fit(np.zeros((0,)))


def test_scaler_fit_names_the_columns_that_hold_nan_or_inf():
    X = np.ones((5, 3))
    X[2, 1] = np.nan
    with pytest.raises(ValueError, match=r"column\(s\) \[1\]"):
        Scaler.fit(X)
    X[2, 1] = np.inf
    with pytest.raises(ValueError, match=r"column\(s\) \[1\]"):
        Scaler.fit(X, "minmax")
