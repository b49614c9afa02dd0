"""Every quantity of backpropagation for one sample, in the notation of docs/design.md ("The math").

``Network.trace(x, y)`` runs the derivation step by step in NumPy (float64) and keeps
what each step produced, keyed by the course's layer numbers l = 1..L:

- ``a[1] = x``; for l = 2..L: ``z[l] = Theta(l-1) [1; a(l-1)]`` and ``a[l] = g(z[l])``;
- ``delta[L] = h - y`` (or ``(h - y) * g'(z(L))`` for squared error with sigmoid outputs);
- for l = L-1..2: ``delta[l] = Theta(l)[:, 1:]^T delta[l+1] * g'(z(l))``, with
  ``g_prime[l]`` = g'(z(l)) computed from a(l) (``a (1 - a)`` for the sigmoid);
- for l = 1..L-1: ``grad[l] = dJ/dTheta(l) = delta[l+1] [1; a(l)]^T (+ lam Theta(l), bias
  column excluded)``, the gradient of this one sample's cost (m = 1).

With ``dropout`` (and ``input_dropout``) rates and a ``dropout_seed``, the pass is that of
the network dropout leaves for this sample (sample index ``sample`` in epoch ``epoch``, the
masks of reference.dropout_keep: the compiled epochs' generator): ``mask[l]`` (l = 1..L-1)
is 1 where unit j of layer l is kept and 0 where it is dropped; a kept unit's ``a[l]`` is
g(z) / (1 - p) and ``delta[l]`` takes the same factor.

``print(trace)`` shows them as tables for a small network (docs/backprop.md's 3-4-4-3) and
as a summary (shapes, norms, first values) for a larger one; ``trace.table()`` is always the
whole table, and the arrays are the attributes. The values equal those of
``cbackprop.reference`` (forward_all, cost_and_gradient) on the same sample.
"""
import numpy as np

from cbackprop import _targets, _validation, reference

__all__ = ["Trace", "trace"]


def _target_vector(net, y):
    """y as the output layer's target vector: a label, an index, or a vector of s_L values."""
    K = net.layer_sizes[-1]
    arr = np.asarray(y)
    if arr.ndim == 1 and arr.shape[0] == K and not (K == 1 and net.classes_ is not None):
        if arr.dtype.kind not in "biuf":
            raise TypeError(f"y as a target vector must hold numbers; got dtype {arr.dtype}")
        vec = arr.astype(np.float64)
    elif arr.ndim == 0 or arr.shape == (1,):
        label = arr.reshape(()) if arr.ndim else arr
        if net.output in _validation.VALUE_OUTPUTS:
            if K != 1 or label.dtype.kind not in "biuf":
                raise ValueError(f"y must be {K} value(s) for a network with {net.output} "
                                 "outputs")
            vec = np.array([float(label)])
        elif net.classes_ is not None:
            index = _targets.label_indices(label.reshape(1), net.classes_)[0]
            vec = _targets._one_hot(np.array([index]), K, np.float64)[0]
        else:
            if label.dtype.kind not in "iu" and not (label.dtype.kind == "f"
                                                     and float(label).is_integer()):
                raise ValueError(f"y must be a class index 0..{max(K - 1, 1)} (the network "
                                 f"has no classes_) or a vector of {K} targets; got {y!r}")
            index = int(label)
            if not 0 <= index < max(K, 2):
                raise ValueError(f"y = {index} is not a class index 0..{max(K - 1, 1)}")
            vec = _targets._one_hot(np.array([index]), K, np.float64)[0]
    else:
        raise ValueError(f"y must be one label or a vector of {K} targets; got shape {arr.shape}")
    if not np.isfinite(vec).all():
        raise ValueError("y contains NaN or inf")
    if net.loss == "cross_entropy" and (vec.min() < 0 or vec.max() > 1):
        raise ValueError("y must lie in [0, 1] for loss='cross_entropy'")
    if net.loss == "poisson" and vec.min() < 0:
        raise ValueError("y must be >= 0 for loss='poisson'")
    return vec


class Trace:
    """One sample's forward and backward pass (see the module's docstring).

    Attributes (dicts keyed by the layer number l, arrays of float64):
    ``a`` (l = 1..L), ``z`` (2..L), ``g_prime`` (2..L-1), ``delta`` (2..L),
    ``theta`` and ``grad`` (1..L-1, shape (s_{l+1}, s_l + 1), bias in column 0);
    ``x``, ``y`` (the target vector), ``h`` = a[L], ``J`` (the sample's cost, with
    ``lam``), ``L`` (the number of layers) and ``names`` (g of each layer 2..L);
    ``mask`` (1..L-1, with dropout: 1 kept, 0 dropped; else empty) and ``rates``.
    """

    def __init__(self, net, x, y, lam=0.0, dropout=0.0, input_dropout=0.0,
                 dropout_seed=None, epoch=0, sample=0):
        x = np.asarray(x)
        if x.ndim == 2 and x.shape[0] == 1:
            x = x[0]
        if x.ndim != 1:
            raise ValueError(f"trace takes one sample: x of shape (n,) or (1, n); got shape "
                             f"{x.shape}")
        X = net._check_X(x.reshape(1, -1))                 # its size, dtype and finiteness
        self.net_repr = repr(net)
        self.lam = _validation.check_lam(lam)
        self.L = L = len(net.layer_sizes)
        self.names = dict(zip(range(2, L + 1), net.activation + [net.output]))
        self.theta = {l: t.astype(np.float64) for l, t in enumerate(net.thetas, start=1)}
        self.x = X[0].astype(np.float64)
        self.y = _target_vector(net, y)
        self.output, self.loss = net.output, net.loss
        self.mask, self.rates = self._masks(net, dropout, input_dropout, dropout_seed, epoch,
                                            sample)
        factor = {l: self.mask[l] / (1 - self.rates[l - 1]) for l in self.mask}

        # forward: z(l+1) = Theta(l) [1; a(l)],  a(l+1) = g(z(l+1)) (times its factor)
        self.a, self.z = {1: self.x * factor[1] if 1 in factor else self.x}, {}
        unmasked = {}
        for l in range(1, L):
            self.z[l + 1] = self.theta[l] @ np.r_[1.0, self.a[l]]
            unmasked[l + 1] = reference._G[self.names[l + 1]](self.z[l + 1])
            self.a[l + 1] = unmasked[l + 1] * factor.get(l + 1, 1.0)
        self.h = self.a[L]

        # backward: delta(L) from the loss, then delta(l) = Theta(l)[:, 1:]^T delta(l+1) * g'(z(l))
        self.delta = {L: reference._output_delta(self.h, self.y, self.output, self.loss)}
        self.g_prime = {}
        for l in range(L - 1, 1, -1):
            self.g_prime[l] = reference._G_PRIME[self.names[l]](unmasked[l])
            self.delta[l] = ((self.theta[l][:, 1:].T @ self.delta[l + 1]) * self.g_prime[l]
                             * factor.get(l, 1.0))

        # dJ/dTheta(l) = delta(l+1) [1; a(l)]^T + lam Theta(l) (bias column not regularized)
        self.grad = {}
        for l in range(1, L):
            grad = np.outer(self.delta[l + 1], np.r_[1.0, self.a[l]])
            grad[:, 1:] += self.lam * self.theta[l][:, 1:]
            self.grad[l] = grad
        self.sample_loss = float(reference._sample_loss(self.z[L], self.h, self.y, self.output,
                                                        self.loss))
        self.J = self.sample_loss + reference._regularization(list(self.theta.values()),
                                                              self.lam, 1.0)

    @staticmethod
    def _masks(net, dropout, input_dropout, seed, epoch, sample):
        """({l: 0/1 mask of layer l} where a rate is > 0, [rate of layers 1..L-1])."""
        hidden = len(net.layer_sizes) - 2
        rates = list(dropout) if isinstance(dropout, (list, tuple)) else [dropout] * hidden
        if len(rates) != hidden:
            raise ValueError(f"dropout has {len(rates)} rates; the network has {hidden} "
                             "hidden layers")
        rates = [_validation.check_real("input_dropout", input_dropout, low=0, high=1,
                                        high_open=True)] + [
            _validation.check_real("dropout", p, low=0, high=1, high_open=True) for p in rates]
        if not any(rates):
            return {}, rates
        if not _validation.is_int(seed) or not 0 <= seed < 2 ** 64:
            raise TypeError(f"dropout_seed must be an int in [0, 2**64) with dropout; got "
                            f"{seed!r}")
        masks = reference.dropout_masks(seed, epoch, [sample], rates, net.layer_sizes[:-1])
        return ({k + 1: (m[0] > 0).astype(np.float64) for k, m in enumerate(masks)
                 if m is not None}, rates)

    @property
    def gradients(self):
        """[dJ/dTheta(1), ..., dJ/dTheta(L-1)], the layout of Network.cost_and_gradient."""
        return [self.grad[l] for l in range(1, self.L)]

    def __repr__(self):
        return f"<Trace of one sample through {self.net_repr}: J = {self.J:.6g}>"

    def __str__(self):
        """The whole table for a small network, a summary for a larger one."""
        small = (max(len(a) for a in self.a.values()) <= MAX_TABLE_UNITS
                 and max(g.shape[1] for g in self.grad.values()) <= MAX_TABLE_UNITS)
        return _table(self) if small else _summary(self)

    def table(self):
        """Every value, as tables (a 400-25-10 network's run to 140,000 characters)."""
        return _table(self)

    def _repr_pretty_(self, p, cycle):        # IPython shows the table
        p.text(str(self))


def trace(net, x, y, lam=0.0, **dropout):
    """The :class:`Trace` of sample x (one row of X) with target y (a label, a class index
    for a network without classes_, or a vector of s_L targets) through net; dropout:
    Trace's dropout, input_dropout, dropout_seed, epoch, sample."""
    return Trace(net, x, y, lam, **dropout)


# ------------------------------------------------------------------------------ the table


W = 12          # characters a column
MAX_TABLE_UNITS = 9   # widest layer print() shows in full: 9 columns of W fit 120 characters


def _num(value):
    return f" {value:>{W - 1}.5g}"


def _matrix(M, l):
    """dJ/dTheta(l): row i for unit i of layer l+1, column j for [1; a(l)]_j."""
    head = "  i\\j |" + "".join(f"{('1 (bias)' if j == 0 else f'a({l})_{j}'):>{W}}"
                                 for j in range(M.shape[1]))
    rows = [f"  {i:>3} |" + "".join(_num(val) for val in row) for i, row in enumerate(M, 1)]
    return "\n".join([head] + rows)


def _output_rule(t):
    if t.loss == "squared_error" and t.output == "sigmoid":
        return "delta(L) = (h - y) * g'(z(L))"
    if t.loss == "squared_error" and t.output == "softmax":
        return "delta(L) = J_softmax (h - y)"
    if t.loss == "cross_entropy" and t.output == "softmax":
        return "delta(L) = h sum(y) - y  (h - y for one-hot y)"
    return "delta(L) = h - y"


def _brief(name, values, n=3):
    """One array in a line: its shape, norm, largest |value| and its first values."""
    flat = values.ravel()
    first = " ".join(f"{x:.5g}" for x in flat[:n]) + (" ..." if flat.size > n else "")
    return (f"{name:<16} shape {str(values.shape):<10} norm {np.linalg.norm(flat):<11.5g}"
            f"max |.| {np.abs(flat).max():<11.5g} [{first}]")


def _summary(t):
    L = t.L
    out = [f"Backpropagation of one sample through {t.net_repr}",
           f"L = {L} layers; J = {t.J:.10g} (loss {t.sample_loss:.10g}"
           + (f", lam = {t.lam:g})" if t.lam else ")"), ""]
    for l in range(1, L + 1):
        kind = "input" if l == 1 else ("output" if l == L else "hidden")
        out.append(f"layer {l}: {kind}" + (f", g = {t.names[l]}" if l > 1 else "")
                   + f", s_{l} = {len(t.a[l])}")
        arrays = [(f"a({l})", t.a[l])] if l == 1 else [(f"z({l})", t.z[l]), (f"a({l})", t.a[l])]
        if l in t.mask:
            arrays.append((f"mask({l})", t.mask[l]))
        if l == L:
            arrays.append(("y", t.y))
        if l > 1:
            arrays.append((f"delta({l})", t.delta[l]))
        out += ["  " + _brief(name, values) for name, values in arrays]
    out.append("")
    out += [_brief(f"dJ/dTheta({l})", t.grad[l]) for l in range(1, L)]
    out += ["", "Every value: print(t.table()); the arrays: t.a[l], t.z[l], t.delta[l], "
                "t.grad[l] (l = the course's layer numbers)"]
    return "\n".join(out)


def _table(t):
    L = t.L
    out = [f"Backpropagation of one sample through {t.net_repr}",
           f"L = {L} layers; J = {t.J:.10g} (loss {t.sample_loss:.10g}"
           + (f", lam = {t.lam:g})" if t.lam else ")"), ""]
    out.append("Forward:  z(l+1) = Theta(l) [1; a(l)],  a(l+1) = g(z(l+1))")
    out.append("Backward: " + _output_rule(t).replace("L)", f"{L})") + ";  delta(l) = "
               "Theta(l)[:, 1:]^T delta(l+1) * g'(z(l))")
    for l in range(1, L + 1):
        if l == 1:
            title = f"layer 1: input, s_1 = {len(t.a[1])}"
            cols = [("a(1)", t.a[1])]
        else:
            kind = "output" if l == L else "hidden"
            title = f"layer {l}: {kind}, g = {t.names[l]}, s_{l} = {len(t.a[l])}"
            cols = [(f"z({l})", t.z[l]), (f"a({l})", t.a[l])]
            if l == L:
                cols.append(("y", t.y))
            else:
                cols.append((f"g'(z({l}))", t.g_prime[l]))
            cols.append((f"delta({l})", t.delta[l]))
        if l in t.mask:
            cols.insert(len(cols) - (l > 1), (f"mask({l})", t.mask[l]))
        out += ["", title, "    j |" + "".join(f"{name:>{W}}" for name, _ in cols)]
        for j in range(len(t.a[l])):
            out.append(f"  {j + 1:>3} |" + "".join(_num(col[j]) for _, col in cols))
    for l in range(1, L):
        reg = f" + lam Theta({l}) (bias column excluded)" if t.lam else ""
        out += ["", f"dJ/dTheta({l}) = delta({l + 1}) [1; a({l})]^T{reg}, shape "
                    f"{t.grad[l].shape}:", _matrix(t.grad[l], l)]
    return "\n".join(out)
