"""Gradient checking: the compiled backward pass against central finite differences."""
import numpy as np


def check_gradients(net, X, Y, lam=0.0, sample_weight=None, eps=1e-4):
    """Relative difference between backpropagation and central finite differences.

    Returns the largest, over the layers, of the course's measure
    ``norm(numeric - analytic) / norm(numeric + analytic)`` for dJ/dTheta(l)
    (about 1e-9 or less when backpropagation is right). The differences
    ``(J(theta + eps) - J(theta - eps)) / (2 eps)`` are taken on a float64 copy of
    the network (eps 1e-4, as the course), one parameter at a time, so a float32 network is checked against
    float64 differences (expect about 1e-4 there). The network is not modified.
    """
    _, analytic = net.cost_and_gradient(X, Y, lam, sample_weight=sample_weight)
    twin = net.copy() if net.dtype == np.float64 else type(net).from_thetas(
        net.thetas, net.activation, net.output, net.loss, "float64")
    params = twin.params
    numeric = np.empty_like(params)
    for k in range(params.size):
        saved = params[k]
        params[k] = saved + eps
        plus = twin.cost(X, Y, lam, sample_weight=sample_weight)
        params[k] = saved - eps
        minus = twin.cost(X, Y, lam, sample_weight=sample_weight)
        params[k] = saved
        numeric[k] = (plus - minus) / (2 * eps)
    worst = 0.0
    for num, ana in zip(twin.split(numeric), analytic):
        ana = ana.astype(np.float64)
        denom = np.linalg.norm(num + ana)
        if denom > 0:
            worst = max(worst, float(np.linalg.norm(num - ana) / denom))
    return worst
