"""Pure NumPy reference implementation of backpropagation.

This module is the contract every compiled path is tested against. It follows the notation of
Andrew Ng's Machine Learning course (week 5) and section 1 of the design notes:

- layers l = 1..L with s_l units; a(1) = x, one sample per row of X (m x n);
- Theta(l) has shape (s_{l+1}, s_l + 1) and column 0 is the bias;
- z(l+1) = Theta(l) [1; a(l)],  a(l+1) = g(z(l+1)),  h = a(L);
- delta(L) = dJ_i/dz(L)  (h - y for the course's cost),
  delta(l) = (Theta(l)[:, 1:])^T delta(l+1) * g'(z(l)),
  dJ/dTheta(l) = (1/m) sum_i delta(l+1) [1; a(l)]^T + (lam/m) Theta(l),
  the bias column never regularized.

Sample weights w multiply each sample's term, and every 1/m becomes 1/sum(w).

Three implementations compute the same (J, gradients):

- ``cost_and_gradient``: vectorized, one sample per row, whole batch at once;
- ``cost_and_gradient_loop``: the literal per-sample loop of the derivation, NumPy per sample;
- ``pure_python``: the same loop with Python lists and the ``math`` module only.

``online_epoch`` is the derivation's stochastic gradient descent built on the same pieces:
one epoch of per-sample updates, the contract of the compiled online solver;
``minibatch_epoch`` the same for the mini-batch solvers (SGD, Adam, clipping, decoupled decay).

The units, losses, argument checks and dropout's generator are in _reference_units.py, imported
here (every name of the contract is this module's).

Only NumPy and the standard library are used (and the package's input checks, which
give the same errors as everywhere else).
"""

import math

import numpy as np

from cbackprop import _validation as v
from cbackprop._reference_units import (  # noqa: F401 (the contract's names, re-exported)
    sigmoid, sigmoid_gradient, debug_initialize_weights, _softplus, _logsumexp, _softmax,
    LEAKY_SLOPE, ELU_ALPHA, ELLIOTT_STEEPNESS, _G, _G_PRIME, _xlogx, _sample_loss,
    _output_delta, _layer_names, _check_loss, _as_arrays, _as_targets, _check_masks, _U64,
    _mix64, dropout_keep, dropout_masks,
)

__all__ = [
    "ACTIVATIONS",
    "OUTPUTS",
    "LOSSES",
    "sigmoid",
    "sigmoid_gradient",
    "debug_initialize_weights",
    "forward",
    "forward_all",
    "cost",
    "cost_and_gradient",
    "cost_and_gradient_loop",
    "pure_python",
    "online_epoch",
    "minibatch_epoch",
    "dropout_keep",
    "dropout_masks",
    "smooth_labels",
    "class_sample_weights",
]

# the names of the package's one table (hidden layers, output layer, losses)
ACTIVATIONS, OUTPUTS, LOSSES = v.HIDDEN_ACTIVATIONS, v.OUTPUTS, v.LOSSES


# ----------------------------------------------------------------------------------------------
# Targets and weights of class labels (fit's label_smoothing and class_weight)
# ----------------------------------------------------------------------------------------------

def smooth_labels(Y, eps):
    """Label smoothing of one-hot targets Y (m x K): (1 - eps) * Y + eps / K; of one column
    (the 0/1 target of one sigmoid unit, two classes): (1 - eps) * y + eps / 2."""
    Y = np.asarray(Y, dtype=np.float64)
    K = Y.shape[1] if Y.shape[1] > 1 else 2
    return (1 - eps) * Y + eps / K


def class_sample_weights(y, class_weight, sample_weight=None):
    """Each sample's weight under class_weight ('balanced': n / (K * samples of its class),
    or {label: weight}, 1 for the others), times sample_weight if given."""
    classes, index, counts = np.unique(np.asarray(y), return_inverse=True, return_counts=True)
    if isinstance(class_weight, str):
        per_class = len(index) / (len(classes) * counts.astype(np.float64))
    else:
        per_class = np.array([class_weight.get(c, 1.0) for c in classes.tolist()], dtype=float)
    w = per_class[index.reshape(-1)]
    return w if sample_weight is None else np.asarray(sample_weight, dtype=np.float64) * w


# ----------------------------------------------------------------------------------------------
# Forward propagation
# ----------------------------------------------------------------------------------------------


def forward_all(thetas, X, activation="sigmoid", output="sigmoid", masks=None):
    """Forward propagation keeping every layer.

    Returns (zs, activations): zs[0..L-2] are z(2)..z(L) and activations[0..L-1] are
    a(1) = X, ..., a(L) = h, all without a bias column, one sample per row.
    masks (dropout): masks[k] multiplies a(k+1) (k = 0: the input, then each hidden layer;
    an (m, s_{k+1}) array of factors, 1/(1-p) where kept and 0 where dropped, or None)
    before the next layer reads it; activations holds a(l) after its mask.
    """
    thetas, X = _as_arrays(thetas, X)
    names = _layer_names(activation, output, len(thetas))
    masks = _check_masks(masks, thetas, X)
    zs, activations = [], [X if masks[0] is None else X * masks[0]]
    for l, (theta, name) in enumerate(zip(thetas, names)):
        a = activations[-1]
        # z(l+1) = Theta(l) [1; a(l)] for every sample; with samples as rows this is
        # a(l) Theta(l)[:, 1:]^T plus the bias column, without stacking ones onto a(l)
        z = a @ theta[:, 1:].T + theta[:, 0]
        zs.append(z)
        a = _G[name](z)  # a(l+1) = g(z(l+1))
        if l + 1 < len(thetas) and masks[l + 1] is not None:
            a = a * masks[l + 1]
        activations.append(a)
    return zs, activations


def forward(thetas, X, activation="sigmoid", output="sigmoid"):
    """The network's output h = a(L), shape (m, s_L)."""
    return forward_all(thetas, X, activation, output)[1][-1]


# ----------------------------------------------------------------------------------------------
# Cost and gradient, vectorized
# ----------------------------------------------------------------------------------------------


def _regularization(thetas, lam, w_sum):
    """(lam / 2 sum(w)) sum_l sum_{j, i >= 1} Theta(l)_ji^2: the bias column is not regularized."""
    return lam / (2 * w_sum) * sum(float(np.sum(theta[:, 1:] ** 2)) for theta in thetas)


def _forward_and_cost(thetas, X, Y, lam, activation, output, loss, sample_weight,
                      masks=None):
    """The forward pass over all samples and J: what cost and cost_and_gradient share."""
    _check_loss(output, loss)
    thetas, X = _as_arrays(thetas, X)
    Y, w = _as_targets(thetas, X, Y, sample_weight)
    # a[l] is a(l+1) in the course's numbering
    zs, a = forward_all(thetas, X, activation, output, masks)
    w_sum = float(np.sum(w))
    per_sample = _sample_loss(zs[-1], a[-1], Y, output, loss)
    J = float(np.sum(w * per_sample)) / w_sum + _regularization(thetas, lam, w_sum)
    return J, thetas, a, zs, Y, w, w_sum


def cost(
    thetas,
    X,
    Y,
    lam=0.0,
    activation="sigmoid",
    output="sigmoid",
    loss="cross_entropy",
    sample_weight=None,
    masks=None,
):
    """The cost J = (1/sum w) sum_i w_i loss_i + (lam / 2 sum w) sum ||Theta[:, 1:]||^2
    (masks: of the network that dropout leaves, as forward_all takes them)."""
    return _forward_and_cost(thetas, X, Y, lam, activation, output, loss, sample_weight,
                             masks)[0]


def cost_and_gradient(
    thetas,
    X,
    Y,
    lam=0.0,
    activation="sigmoid",
    output="sigmoid",
    loss="cross_entropy",
    sample_weight=None,
    masks=None,
):
    """J and [dJ/dTheta(1), ..., dJ/dTheta(L-1)], all samples at once (one sample per row).
    masks (dropout, as forward_all takes them): J and its gradient of the network that
    the masks leave, delta(l) taking layer l's factors too."""
    J, thetas, a, zs, Y, w, w_sum = _forward_and_cost(thetas, X, Y, lam, activation, output,
                                                      loss, sample_weight, masks)
    names = _layer_names(activation, output, len(thetas))
    masks = _check_masks(masks, thetas, a[0])

    # delta(L), one row per sample, each row multiplied by its sample's weight
    delta = _output_delta(a[-1], Y, output, loss) * w[:, None]
    grads = [None] * len(thetas)
    for l in reversed(range(len(thetas))):
        theta = thetas[l]
        # Delta(l) = sum_i delta(l+1) [1; a(l)]^T: the bias column sums the deltas
        grad = np.empty_like(theta)
        grad[:, 0] = np.sum(delta, axis=0)
        grad[:, 1:] = delta.T @ a[l]
        grad /= w_sum
        grad[:, 1:] += (lam / w_sum) * theta[:, 1:]  # + (lam/m) Theta(l), bias column excluded
        grads[l] = grad
        if l > 0:
            # delta(l) = (Theta(l)[:, 1:])^T delta(l+1) * g'(z(l)), with g' from a(l);
            # dropout: from a(l) before its mask, and times the mask
            if masks[l] is None:
                delta = (delta @ theta[:, 1:]) * _G_PRIME[names[l - 1]](a[l])
            else:
                a_l = _G[names[l - 1]](zs[l - 1])
                delta = (delta @ theta[:, 1:]) * _G_PRIME[names[l - 1]](a_l) * masks[l]
    return J, grads


# ----------------------------------------------------------------------------------------------
# Cost and gradient, the literal per-sample loop of the derivation
# ----------------------------------------------------------------------------------------------


def cost_and_gradient_loop(
    thetas,
    X,
    Y,
    lam=0.0,
    activation="sigmoid",
    output="sigmoid",
    loss="cross_entropy",
    sample_weight=None,
):
    """Same result as ``cost_and_gradient``, one sample at a time, as in the course:

    set Delta(l) = 0; for i = 1..m: forward propagate x(i), compute delta(L), ..., delta(2),
    Delta(l) += delta(l+1) [1; a(l)]^T; then D(l) = (1/m) Delta(l) + (lam/m) Theta(l) (no bias).
    """
    _check_loss(output, loss)
    thetas, X = _as_arrays(thetas, X)
    Y, w = _as_targets(thetas, X, Y, sample_weight)
    names = _layer_names(activation, output, len(thetas))
    n_layers = len(thetas)
    w_sum = float(np.sum(w))

    J = 0.0
    Deltas = [np.zeros_like(theta) for theta in thetas]
    for i in range(X.shape[0]):
        # forward propagation of one sample: a[l] holds [1; a(l+1)], the bias unit first
        a = [np.insert(X[i], 0, 1.0)]  # [1; a(1)] = [1; x(i)]
        for theta, name in zip(thetas, names):
            z = theta @ a[-1]  # z(l+1) = Theta(l) [1; a(l)]
            a.append(np.insert(_G[name](z), 0, 1.0))  # [1; a(l+1)]
        h = a[-1][1:]  # h = a(L), without the bias unit

        J += float(w[i] * _sample_loss(z, h, Y[i], output, loss))  # w_i loss_i

        # backward: delta(L), then delta(l) for l = L-1 .. 2, accumulating Delta(l)
        delta = w[i] * _output_delta(h, Y[i], output, loss)
        for l in reversed(range(n_layers)):
            Deltas[l] += np.outer(delta, a[l])  # Delta(l) += delta(l+1) [1; a(l)]^T
            if l > 0:
                # delta(l) = (Theta(l)[:, 1:])^T delta(l+1) * g'(z(l))
                delta = (thetas[l][:, 1:].T @ delta) * _G_PRIME[names[l - 1]](a[l][1:])

    J = J / w_sum + _regularization(thetas, lam, w_sum)
    grads = []
    for theta, Delta in zip(thetas, Deltas):
        grad = Delta / w_sum  # D(l) = (1/m) Delta(l)
        grad[:, 1:] += (lam / w_sum) * theta[:, 1:]  # + (lam/m) Theta(l) for j >= 1
        grads.append(grad)
    return J, grads


# ----------------------------------------------------------------------------------------------
# The same loop in plain Python: lists and the math module only
# ----------------------------------------------------------------------------------------------


def _py_sigmoid(z):
    e = math.exp(-abs(z))  # never overflows
    return 1.0 / (1.0 + e) if z >= 0 else e / (1.0 + e)


def _py_softplus(z):
    return max(z, 0.0) + math.log1p(math.exp(-abs(z)))


def _py_exp(z):
    return math.exp(z) if z < 709.0 else math.inf  # math.exp raises past its range


def _py_xlogx(y):
    return y * math.log(y) if y > 0 else 0.0


# g of one value, and g'(z) from a = g(z), for each unit (softmax: _py_g)
_PY_G = {
    "sigmoid": _py_sigmoid, "tanh": math.tanh, "relu": lambda v: max(v, 0.0),
    "identity": lambda v: v, "exp": _py_exp, "softplus": _py_softplus,
    "leaky_relu": lambda v: v if v > 0 else LEAKY_SLOPE * v,
    "elu": lambda v: v if v > 0 else ELU_ALPHA * math.expm1(v),
    "elliott": lambda v: ELLIOTT_STEEPNESS * v / 2 / (1 + abs(ELLIOTT_STEEPNESS * v)) + 0.5,
}
_PY_G_PRIME = {
    "sigmoid": lambda v: v * (1.0 - v), "tanh": lambda v: 1.0 - v * v,
    "relu": lambda v: 1.0 if v > 0 else 0.0, "identity": lambda v: 1.0,
    "leaky_relu": lambda v: 1.0 if v > 0 else LEAKY_SLOPE,
    "elu": lambda v: 1.0 if v > 0 else v + ELU_ALPHA, "softplus": lambda v: -math.expm1(-v),
    "elliott": lambda v: ELLIOTT_STEEPNESS / 2 * (1 - 2 * abs(v - 0.5)) ** 2,
}


def _py_g(name, z):
    """g applied to the list z."""
    if name != "softmax":
        return [_PY_G[name](v) for v in z]
    zmax = max(z)  # softmax, shifted by the maximum
    e = [math.exp(v - zmax) for v in z]
    s = sum(e)
    return [v / s for v in e]


def _py_g_prime(name, a):
    """g'(z) of a hidden layer, from a = g(z)."""
    return [_PY_G_PRIME[name](v) for v in a]


def _py_loss_and_delta(z, h, y, output, loss):
    """(loss, delta(L)) of one sample, as in ``_sample_loss`` and ``_output_delta``."""
    K = range(len(z))
    if loss == "poisson":  # h = exp(z)
        return (sum(h[k] - y[k] * z[k] + _py_xlogx(y[k]) - y[k] for k in K),
                [h[k] - y[k] for k in K])
    if loss == "squared_error":
        r = [h[k] - y[k] for k in K]
        J = 0.5 * sum(v * v for v in r)
        if output == "identity":
            return J, r
        if output == "sigmoid":
            return J, [r[k] * h[k] * (1.0 - h[k]) for k in K]
        rh = sum(r[k] * h[k] for k in K)  # softmax Jacobian applied to r
        return J, [h[k] * (r[k] - rh) for k in K]
    if output == "sigmoid":
        return sum(_py_softplus(z[k]) - y[k] * z[k] for k in K), [h[k] - y[k] for k in K]
    zmax = max(z)  # softmax
    lse = zmax + math.log(sum(math.exp(v - zmax) for v in z))
    y_sum = sum(y)
    return sum(y[k] * (lse - z[k]) for k in K), [h[k] * y_sum - y[k] for k in K]


def pure_python(
    thetas,
    X,
    Y,
    lam=0.0,
    activation="sigmoid",
    output="sigmoid",
    loss="cross_entropy",
    sample_weight=None,
):
    """Same result as ``cost_and_gradient_loop``, in plain Python floats (float64).

    Inputs may be arrays or nested lists. Returns (J as float, grads as float64 arrays).
    """
    _check_loss(output, loss)
    thetas, X = _as_arrays(thetas, X)  # shape checks only; the computing below uses lists
    Y, w = _as_targets(thetas, X, Y, sample_weight)
    names = _layer_names(activation, output, len(thetas))
    thetas = [theta.tolist() for theta in thetas]
    X, Y, w = X.tolist(), Y.tolist(), w.tolist()
    n_layers = len(thetas)
    w_sum = sum(w)

    J = 0.0
    Deltas = [[[0.0] * len(row) for row in theta] for theta in thetas]
    for x, y, w_i in zip(X, Y, w):
        a = [[1.0] + x]  # a[l] = [1; a(l+1)]
        for theta, name in zip(thetas, names):
            z = [sum(t * v for t, v in zip(row, a[-1])) for row in theta]  # Theta(l) [1; a(l)]
            a.append([1.0] + _py_g(name, z))
        J_i, delta = _py_loss_and_delta(z, a[-1][1:], y, output, loss)
        J += w_i * J_i
        delta = [w_i * d for d in delta]
        for l in reversed(range(n_layers)):
            for j, d in enumerate(delta):  # Delta(l) += delta(l+1) [1; a(l)]^T
                Deltas[l][j] = [D + d * v for D, v in zip(Deltas[l][j], a[l])]
            if l > 0:  # delta(l) = (Theta(l)[:, 1:])^T delta(l+1) * g'(z(l))
                g_prime = _py_g_prime(names[l - 1], a[l][1:])
                back = [
                    sum(thetas[l][j][i + 1] * delta[j] for j in range(len(delta)))
                    for i in range(len(g_prime))
                ]
                delta = [b * g for b, g in zip(back, g_prime)]

    reg = sum(v * v for theta in thetas for row in theta for v in row[1:])
    J = J / w_sum + lam / (2 * w_sum) * reg
    grads = []
    for theta, Delta in zip(thetas, Deltas):
        grad = []
        for D_row, theta_row in zip(Delta, theta):
            # D(l) = (1/m) Delta(l) + (lam/m) Theta(l), the bias column (first) not regularized
            bias = D_row[0] / w_sum
            rest = [D / w_sum + lam / w_sum * t for D, t in zip(D_row[1:], theta_row[1:])]
            grad.append([bias] + rest)
        grads.append(np.array(grad, dtype=np.float64))
    return float(J), grads


# ----------------------------------------------------------------------------------------------
# Stochastic gradient descent: one epoch of per-sample updates
# ----------------------------------------------------------------------------------------------


def online_epoch(
    thetas,
    X,
    Y,
    order,
    rate,
    lam=0.0,
    activation="sigmoid",
    output="sigmoid",
    loss="cross_entropy",
    sample_weight=None,
    dropout=None,
    dropout_seed=0,
    epoch=0,
):
    """One epoch of the derivation's stochastic gradient descent, as ``Network.fit`` with
    ``solver="online"`` runs it: for each sample i in ``order``, forward propagate x(i),
    back propagate its deltas, and step down the gradient of J's share of that sample,

        Theta(l) <- Theta(l) - rate ((m/W) w_i delta(l+1) [1; a(l)]^T + (lam/W) Theta(l)),

    the bias column not regularized (W = sum of the weights, m for none). Each sample's
    deltas use the Thetas before its own update.

    dropout: one rate per layer but the output (the input first), each sample's pass
    through the network its masks leave (dropout_masks(dropout_seed, epoch, [i], ...)):
    a(k) times its factors before the next layer reads it, delta(k) times them too.

    Returns (thetas after the epoch, as new arrays; J), where J is the epoch's cost as fit
    records it in ``history_["loss"]``: each sample's weighted loss taken before its update,
    averaged, plus the regularization of the Thetas after the epoch.
    """
    _check_loss(output, loss)
    thetas, X = _as_arrays(thetas, X)
    Y, w = _as_targets(thetas, X, Y, sample_weight)
    names = _layer_names(activation, output, len(thetas))
    order = np.asarray(order)
    if order.ndim != 1 or (order.size and order.dtype.kind not in "iu"):
        raise ValueError(f"order must be a 1-D sequence of sample indices, got {order!r}")
    thetas = [theta.copy() for theta in thetas]  # updated in place below: the caller's stay
    weights = [theta[:, 1:] for theta in thetas]  # views into thetas: the bias column apart
    biases = [theta[:, 0] for theta in thetas]
    w_sum = float(np.sum(w))
    decay = 1.0 - rate * lam / w_sum  # Theta(l)[:, 1:] * decay is the regularization's step
    step = rate * X.shape[0] / w_sum

    sizes = [X.shape[1]] + [theta.shape[0] for theta in thetas[:-1]]
    ones = [np.ones(s, dtype=X.dtype) for s in sizes]

    J = 0.0
    for i in order:
        # dropout's factors of this sample (ones: the full network)
        masks = (ones if dropout is None else
                 [np.ones(s, dtype=X.dtype) if f is None else f[0].astype(X.dtype)
                  for f, s in zip(dropout_masks(dropout_seed, epoch, [i], dropout, sizes),
                                  sizes)])
        a = [X[i] * masks[0]]  # a(1) = x(i); a[l] is a(l+1), without the bias unit
        g_prime = [None]       # g'(z(l+1)) of the hidden layers, times their factors
        for l, (W, b, name) in enumerate(zip(weights, biases, names)):
            z = W @ a[-1] + b  # z(l+1) = Theta(l) [1; a(l)]
            h = _G[name](z)
            if l + 1 < len(thetas):
                g_prime.append(_G_PRIME[name](h) * masks[l + 1])
                h = h * masks[l + 1]
            a.append(h)
        J += float(w[i] * _sample_loss(z, a[-1], Y[i], output, loss))
        delta = _output_delta(a[-1], Y[i], output, loss)  # delta(L)
        sample_step = step * w[i]
        for l in reversed(range(len(thetas))):
            # delta(l) from Theta(l) as it was before this sample's update
            back = weights[l].T @ delta if l > 0 else None
            weights[l] *= decay
            weights[l] -= sample_step * np.outer(delta, a[l])
            biases[l] -= sample_step * delta
            if l > 0:
                delta = back * g_prime[l]
    return thetas, J / w_sum + _regularization(thetas, lam, w_sum)


# ----------------------------------------------------------------------------------------------
# Mini-batch epochs: SGD (momentum, Nesterov) and Adam, gradient clipping, decoupled decay
# ----------------------------------------------------------------------------------------------


def minibatch_epoch(
    thetas,
    X,
    Y,
    order,
    rate,
    batch_size,
    solver="adam",
    lam=0.0,
    activation="sigmoid",
    output="sigmoid",
    loss="cross_entropy",
    sample_weight=None,
    state=None,
    momentum=0.9,
    nesterov=True,
    beta_1=0.9,
    beta_2=0.999,
    epsilon=1e-8,
    clip_norm=None,
    weight_decay=0.0,
    dropout=None,
    dropout_seed=0,
    epoch=0,
):
    """One epoch of mini-batches, as ``Network.fit`` with ``solver="sgd"`` or ``"adam"`` runs
    it: the samples of ``order`` taken ``batch_size`` at a time (the last batch short), and
    for each batch B of b samples (W = sum of all weights, m = X's rows):

        g = (m/W) (1/b) sum_{i in B} w_i dloss_i/dTheta + (lam/W) Theta   (bias: no lam term)
        clip_norm:  g <- g min(1, clip_norm / ||g||),  ||g|| = sqrt(sum of every g^2),
                    biases included
        'sgd':      v <- momentum v - rate g;   step = momentum v - rate g (nesterov), else v
        'adam':     t <- t + 1;  m1 <- beta_1 m1 + (1 - beta_1) g;
                    m2 <- beta_2 m2 + (1 - beta_2) g^2
                    step = -rate sqrt(1 - beta_2^t) / (1 - beta_1^t) m1 / (sqrt(m2) + epsilon)
        Theta_W <- (1 - rate weight_decay) Theta_W + step_W;   Theta_b <- Theta_b + step_b

    (the decoupled decay of AdamW, on the weights only, from Theta before the step).
    ``dropout``: one rate per layer but the output (the input first): each batch's loss and
    gradient those of the network its samples' masks leave (dropout_masks(dropout_seed,
    epoch, batch, ...): cost_and_gradient's masks).
    ``state``: (m1, m2, t) from the last epoch (m1, m2: lists shaped like thetas; SGD keeps
    its velocity in m1), or None to start from zeros.

    Returns (thetas after the epoch, as new arrays; state; J), J the epoch's cost as fit
    records it: each batch's cost, (m/W)(1/b) sum w_i loss_i + (lam/2W) sum W^2 from the
    Thetas before its step, weighted by b and averaged over the samples.
    """
    _check_loss(output, loss)
    thetas, X = _as_arrays(thetas, X)
    Y, w = _as_targets(thetas, X, Y, sample_weight)
    if solver not in ("sgd", "adam"):
        raise ValueError(f"solver must be 'sgd' or 'adam'; got {solver!r}")
    order = np.asarray(order)
    if order.ndim != 1 or (order.size and order.dtype.kind not in "iu"):
        raise ValueError(f"order must be a 1-D sequence of sample indices, got {order!r}")
    thetas = [theta.copy() for theta in thetas]
    if state is None:
        state = ([np.zeros_like(t) for t in thetas], [np.zeros_like(t) for t in thetas], 0)
    m1, m2, t = [a.copy() for a in state[0]], [a.copy() for a in state[1]], state[2]
    m, w_sum = X.shape[0], float(np.sum(w))
    keep = 1.0 - rate * weight_decay

    total = 0.0
    for start in range(0, len(order), batch_size):
        batch = order[start:start + batch_size]
        b, w_batch = len(batch), float(np.sum(w[batch]))
        # the reference's gradient divides by the batch's weight: back to the sum, then the
        # estimate of the full J's gradient
        masks = (None if dropout is None else
                 dropout_masks(dropout_seed, epoch, batch, dropout,
                               [X.shape[1]] + [theta.shape[0] for theta in thetas[:-1]]))
        J_b, grads = cost_and_gradient(thetas, X[batch], Y[batch], 0.0, activation, output,
                                       loss, sample_weight=w[batch], masks=masks)
        to_estimate = w_batch * (m / w_sum) / b
        total += b * (J_b * to_estimate + _regularization(thetas, lam, w_sum))
        for grad, theta in zip(grads, thetas):
            grad *= to_estimate
            grad[:, 1:] += (lam / w_sum) * theta[:, 1:]
        if clip_norm is not None:
            norm = math.sqrt(sum(float(np.sum(g * g)) for g in grads))
            if norm > clip_norm:
                grads = [g * (clip_norm / norm) for g in grads]
        if solver == "adam":
            t += 1
            lr_t = rate * math.sqrt(1 - beta_2 ** t) / (1 - beta_1 ** t)
        for l, (theta, g) in enumerate(zip(thetas, grads)):
            if solver == "sgd":
                m1[l] = momentum * m1[l] - rate * g
                step = momentum * m1[l] - rate * g if nesterov else m1[l]
            else:
                m1[l] = beta_1 * m1[l] + (1 - beta_1) * g
                m2[l] = beta_2 * m2[l] + (1 - beta_2) * g * g
                step = -lr_t * m1[l] / (np.sqrt(m2[l]) + epsilon)
            theta[:, 1:] *= keep
            theta += step
    return thetas, (m1, m2, t), total / max(1, len(order))
