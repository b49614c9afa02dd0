"""L-BFGS without bounds, on the path of scipy's minimize(method="L-BFGS-B").

L-BFGS-B 3.0 (Byrd, Lu, Nocedal, Zhu; Morales and Nocedal 2011) with no bounds: its
generalized Cauchy point and subspace minimization give the quasi-Newton step d = -H g of
its compact matrix (B0 = theta I), which is what the two-loop recursion computes with
H0 = I / theta. The recursion runs here on coefficients over the stored rows (g, then the
pairs s_i, y_i) with their Gram matrix, so an iteration reads the memory twice instead of
4m passes: once for d as a combination of the rows (with d'g, d'd and the first trial
x + d on the way), once when the iterate moves for the new pair and every row's product
with the new gradient (the compiled passes of _core/lbfgs.pxi, over n_threads threads).
The line search is Moré-Thuente's (MINPACK-2 dcsrch, dcstep) with L-BFGS-B's constants; the memory resets, the stopping tests, the counts, the callback and the
messages are scipy's (scipy/optimize/_lbfgsb_py.py, __lbfgsb.c). Not reproduced: L-BFGS-B
resets its memory when a Cholesky factorization of its middle matrix fails, which needs
s'y > 0 to fail in rounding; and scipy's wrapper does not count an evaluation at the same
x as the one before it.
"""
from types import SimpleNamespace

import numpy as np

from cbackprop._core import core

EPS = np.finfo(np.float64).eps
STPMAX = 1e10                       # L-BFGS-B's largest step when nothing is bounded
PARALLEL_MIN = 1 << 16              # parameters from which the compiled passes run
NO_TRIAL = np.empty(0)
FTOL, GTOL, XTOL = 1e-3, 0.9, 0.1   # its line search's constants
PGTOL = "CONVERGENCE: NORM OF PROJECTED GRADIENT <= PGTOL"
FACTR = "CONVERGENCE: RELATIVE REDUCTION OF F <= FACTR*EPSMCH"


def _gamma(theta, a, b, negate, clip=False):
    """The cubic's discriminant root, scaled by s against overflow, as dcstep has it."""
    s = np.fmax(abs(theta), np.fmax(abs(a), abs(b)))
    square = (theta / s) ** 2 - (a / s) * (b / s)
    gamma = s * np.sqrt(np.fmax(0.0, square) if clip else square)
    return -gamma if negate else gamma


def _dcstep(stx, fx, dx, sty, fy, dy, stp, fp, dp, brackt, stpmin, stpmax):
    """One step of Moré and Thuente's safeguarded interval update: the new bracket
    (stx, fx, dx), (sty, fy, dy) and trial step. IEEE arithmetic (numpy scalars) so that
    a zero divisor gives inf or NaN as in the Fortran, never an exception."""
    stx, fx, dx, sty, fy, dy, stp, fp, dp = map(np.float64, (stx, fx, dx, sty, fy, dy, stp,
                                                              fp, dp))
    sgnd = dp * (dx / abs(dx))
    if fp > fx:             # higher value: the minimum is bracketed
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        gamma = _gamma(theta, dx, dp, stp < stx)
        r = ((gamma - dx) + theta) / (((gamma - dx) + gamma) + dp)
        stpc = stx + r * (stp - stx)
        stpq = stx + ((dx / ((fx - fp) / (stp - stx) + dx)) / 2.0) * (stp - stx)
        stpf = stpc if abs(stpc - stx) < abs(stpq - stx) else stpc + (stpq - stpc) / 2.0
        brackt = True
    elif sgnd < 0.0:        # derivatives of opposite signs: bracketed
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        gamma = _gamma(theta, dx, dp, stp > stx)
        r = ((gamma - dp) + theta) / (((gamma - dp) + gamma) + dx)
        stpc = stp + r * (stx - stp)
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        stpf = stpc if abs(stpc - stp) > abs(stpq - stp) else stpq
        brackt = True
    elif abs(dp) < abs(dx):  # same sign, the derivative's magnitude decreases
        theta = 3.0 * (fx - fp) / (stp - stx) + dx + dp
        gamma = _gamma(theta, dx, dp, stp > stx, clip=True)
        r = ((gamma - dp) + theta) / ((gamma + (dx - dp)) + gamma)
        if r < 0.0 and gamma != 0.0:
            stpc = stp + r * (stx - stp)
        else:
            stpc = stpmax if stp > stx else stpmin
        stpq = stp + (dp / (dp - dx)) * (stx - stp)
        if brackt:
            stpf = stpc if abs(stpc - stp) < abs(stpq - stp) else stpq
            bound = stp + 0.66 * (sty - stp)
            stpf = np.fmin(bound, stpf) if stp > stx else np.fmax(bound, stpf)
        else:
            stpf = stpc if abs(stpc - stp) > abs(stpq - stp) else stpq
            stpf = np.fmax(stpmin, np.fmin(stpmax, stpf))
    elif brackt:            # same sign, no decrease: the cubic through (sty, stp)
        theta = 3.0 * (fp - fy) / (sty - stp) + dy + dp
        gamma = _gamma(theta, dy, dp, stp > sty)
        r = ((gamma - dp) + theta) / (((gamma - dp) + gamma) + dy)
        stpf = stp + r * (sty - stp)
    else:
        stpf = stpmax if stp > stx else stpmin
    if fp > fx:
        sty, fy, dy = stp, fp, dp
    else:
        if sgnd < 0.0:
            sty, fy, dy = stx, fx, dx
        stx, fx, dx = stp, fp, dp
    return stx, fx, dx, sty, fy, dy, stpf, brackt


class _LineSearch:
    """MINPACK-2's dcsrch (Moré and Thuente 1994) from phi(0) = f, phi'(0) = g < 0 and a
    first trial stp; step(f, g) takes phi and phi' at the trial and returns (stp, done).
    Done also on its warnings (rounding, xtol, stpmax): L-BFGS-B accepts the trial then."""

    def __init__(self, f, g, stp, stpmax):
        self.finit, self.ginit, self.gtest = f, g, FTOL * g
        self.stp, self.stpmin, self.stpmax = stp, 0.0, stpmax
        self.width, self.width1 = stpmax, stpmax / 0.5
        self.brackt, self.stage = False, 1
        self.bracket = (0.0, f, g, 0.0, f, g)          # stx, fx, gx, sty, fy, gy
        self.stmin, self.stmax = 0.0, stp + 4.0 * stp

    def step(self, f, g):
        stp, stmin, stmax, brackt = self.stp, self.stmin, self.stmax, self.brackt
        ftest = self.finit + stp * self.gtest
        if self.stage == 1 and f <= ftest and g >= 0.0:
            self.stage = 2
        if ((brackt and (stp <= stmin or stp >= stmax))
                or (brackt and stmax - stmin <= XTOL * stmax)
                or (stp == self.stpmax and f <= ftest and g <= self.gtest)
                or (stp == self.stpmin and (f > ftest or g >= self.gtest))
                or (f <= ftest and abs(g) <= GTOL * -self.ginit)):
            return stp, True
        stx, fx, gx, sty, fy, gy = self.bracket
        if self.stage == 1 and f <= fx and f > ftest:
            # the modified function psi(stp) = phi(stp) - phi(0) - stp * gtest
            gt = self.gtest
            stx, fxm, gxm, sty, fym, gym, stp, brackt = _dcstep(
                stx, fx - stx * gt, gx - gt, sty, fy - sty * gt, gy - gt, stp,
                f - stp * gt, g - gt, brackt, stmin, stmax)
            fx, fy, gx, gy = fxm + stx * gt, fym + sty * gt, gxm + gt, gym + gt
        else:
            stx, fx, gx, sty, fy, gy, stp, brackt = _dcstep(
                stx, fx, gx, sty, fy, gy, stp, f, g, brackt, stmin, stmax)
        if brackt:
            if abs(sty - stx) >= 0.66 * self.width1:       # bisect if the bracket shrank little
                stp = stx + 0.5 * (sty - stx)
            self.width1, self.width = self.width, abs(sty - stx)
            stmin, stmax = np.fmin(stx, sty), np.fmax(stx, sty)
        else:
            stmin, stmax = stp + 1.1 * (stp - stx), stp + 4.0 * (stp - stx)
        stp = np.fmin(np.fmax(stp, self.stpmin), self.stpmax)
        if brackt and (stp <= stmin or stp >= stmax or stmax - stmin <= XTOL * stmax):
            stp = stx                   # no progress possible: the best step so far
        self.bracket = tuple(float(v) for v in (stx, fx, gx, sty, fy, gy))
        self.stp, self.stmin, self.stmax, self.brackt = float(stp), stmin, stmax, brackt
        return self.stp, False


def _square_in_range(dtd):
    """Whether d'd neither overflowed nor lost d to underflow."""
    return 1e-290 < dtd < np.inf or dtd == 0.0


def _norm(d, dtd=None):
    """||d||_2 without overflow or underflow in d'd (BLAS dnrm2 scales too); dtd: d'd
    when the caller has it."""
    dtd = float(d @ d) if dtd is None else dtd
    if _square_in_range(dtd):
        return float(np.sqrt(dtd))
    scale = float(np.max(np.abs(d)))
    return scale * float(np.sqrt((d / scale) @ (d / scale))) if 0 < scale < np.inf else scale


def _sup_norm(g):
    """L-BFGS-B's projgr without bounds: max |g_i| from 0, NaNs skipped (fmax)."""
    return float(np.fmax(np.fmax(0.0, np.fmax.reduce(g)), -np.fmin.reduce(g)))


def minimize(fun, x0, *, callback=None, gradient_into=False, **options):
    """minimize(fun, x0, jac=True, method="L-BFGS-B", options=...) without bounds; options:
    maxiter, maxfun, gtol, ftol, maxcor, maxls (scipy's defaults), and n_threads for the
    passes over the stored rows (the same results whatever it is). fun(x) returns (f, g),
    or, with gradient_into, fun(x, g) writes the gradient into our float64 buffer g and
    returns f (no copy of it); fun must not keep x (a read-only view of our buffer), nor g.
    callback gets an object with x, the point of fun's last call, and fun at each
    iteration, and may raise StopIteration. Returns an object with x, fun, jac, nit,
    nfev, status, success and message, as scipy's."""
    caller = np.geterr()

    def as_caller(f):       # fun and callback under the caller's floating-point settings
        def call(*args):
            with np.errstate(**caller):
                return f(*args)
        return call

    # our own arithmetic warns of nothing, as L-BFGS-B's C does not (overflow in x'x ...)
    with np.errstate(all="ignore"):
        return _minimize(as_caller(fun), x0, callback and as_caller(callback), gradient_into,
                         **options)


def _minimize(fun, x0, callback, gradient_into, maxiter=15000, maxfun=15000, gtol=1e-5,
              ftol=2.2204460492503131e-09, maxcor=10, maxls=20, n_threads=1):
    if maxls <= 0 or maxcor <= 0:
        raise ValueError("maxls and maxcor must be positive")
    m = maxcor
    tol = ftol / EPS * EPS              # factr * epsmch, as scipy rounds it
    x = np.array(x0, dtype=np.float64).ravel()
    n = x.size
    threads = max(1, int(n_threads))
    passes = core if n >= PARALLEL_MIN else NumPyPasses
    # the stored rows: 0, the iterate's gradient; 1 + 2i and 2 + 2i, the pair s_i, y_i of
    # slot i. Each lies in W's row places[r]; two more of W's rows hold the direction d
    # (d_at: where the next pair's s will be) and the trial gradient (gt_at: the next g).
    # An accepted step moves places, not rows.
    xt = np.empty(n)
    W = np.empty((3 + 2 * m, n))
    places = np.arange(1 + 2 * m, dtype=np.intp)
    d_at, gt_at = 1 + 2 * m, 2 + 2 * m
    d, gt = W[d_at], W[gt_at]
    G = np.zeros((1 + 2 * m, 1 + 2 * m))    # their Gram matrix (row 0 refreshed each time)
    v = np.zeros(1 + 2 * m)             # the rows' products with g (lbfgs_accept)
    sy = np.ones(m)                     # s_i'y_i as L-BFGS-B computes it
    order, theta = [], 1.0              # the pairs' slots, oldest first; B0 = theta I
    nfev, nit = 0, 0

    def evaluate(at, into):
        nonlocal nfev, last
        if gradient_into:
            f = fun(_read_only(at), into)
        else:
            f, g = fun(_read_only(at))
            np.copyto(into, g)
        nfev, last = nfev + 1, float(f)
        return last

    def limit():                        # scipy's status when not converged: 1 a limit, else 2
        return 1 if nfev > maxfun or nit >= maxiter else 2

    last = None

    g = W[places[0]]
    f = evaluate(x, g)
    if _sup_norm(g) <= gtol:
        return _result(x, f, g, 0, nfev, PGTOL, 0)
    pending = None                      # the newest pair's y, whose products need v
    v_old = None
    while True:
        k = len(order)
        if k == 0:
            # steepest descent as L-BFGS-B's Cauchy point gives it: d = (x - t g) - x with
            # t = g'g / g'g, NaN when g'g overflows (then so is d, and the search fails)
            gg = np.float64(g @ g)
            np.multiply(g, -(gg / gg), out=d)
            d += x
            d -= x
            c = np.zeros(1)
            c[0] = -1.0
            gd, dnorm = float(d @ g), _norm(d)
            dtd, tried = dnorm * dnorm, False
        else:
            if pending is not None:     # y_j'w = g'w - g_old'w for the other rows
                j, dr, rr = pending
                others = [r for i in order if i != j for r in (1 + 2 * i, 2 + 2 * i)]
                if others:
                    G[2 + 2 * j, others] = G[others, 2 + 2 * j] = v[others] - v_old[others]
                G[2 + 2 * j, 1 + 2 * j] = G[1 + 2 * j, 2 + 2 * j] = dr
                G[2 + 2 * j, 2 + 2 * j] = rr
                pending = None
            G[0, :1 + 2 * k] = G[:1 + 2 * k, 0] = v[:1 + 2 * k]
            c = _two_loop(G[:1 + 2 * k, :1 + 2 * k], order, sy, theta)
            # the first trial, x + d (a step of 1 after the first iteration), on the way
            tried = nit > 0
            gd, dtd = passes.lbfgs_direction(W, places, c, d_at, x,
                                             xt if tried else NO_TRIAL, threads)
            dnorm = _norm(d, dtd)
            if not _square_in_range(dtd):
                dtd = dnorm * dnorm         # as the scaled norm gives it
            v_old = v[:1 + 2 * k].copy()
        stp = float(np.fmin(1.0 / dnorm, STPMAX)) if nit == 0 else 1.0
        fold, gdold = f, gd
        ok = not gd >= 0.0              # else no line search: as a failed one (NaN searches)
        if ok:
            search = _LineSearch(f, gd, stp, STPMAX)
            for _ in range(maxls):
                if tried:
                    tried = False
                elif stp == 1.0:
                    np.add(x, d, out=xt)
                else:
                    np.multiply(d, stp, out=xt)
                    xt += x
                ft = evaluate(xt, gt)
                gd, sbgnrm = passes.lbfgs_slope(gt, d, threads)
                stp, done = search.step(ft, gd)
                if done:
                    break
            ok = done
        if not ok:
            if k == 0:                  # steepest descent failed too
                # scipy's result has the x and g restored, but the last value evaluated
                return _result(x, last, g, nit, nfev, "ABNORMAL: ", limit())
            order, theta, pending = [], 1.0, None   # forget the pairs, retry from x
            continue
        x, xt, f = xt, x, ft
        nit += 1
        halt = False
        if callback is not None:
            try:
                callback(SimpleNamespace(x=_read_only(x), fun=f))
            except StopIteration:
                halt = True
        if halt or nit >= maxiter or nfev > maxfun:
            if halt:                    # minimize's words for it, over L-BFGS-B's
                return _result(x, f, gt, nit, nfev, "`callback` raised `StopIteration`.", 99)
            what = ("TOTAL NO. OF ITERATIONS REACHED LIMIT" if nit >= maxiter else
                    "TOTAL NO. OF F,G EVALUATIONS EXCEEDS LIMIT")
            return _result(x, f, gt, nit, nfev, "STOP: " + what, limit())
        if sbgnrm <= gtol:
            return _result(x, f, gt, nit, nfev, PGTOL, 0)
        if fold - f <= tol * max(abs(fold), abs(f), 1.0):
            return _result(x, f, gt, nit, nfev, FACTR, 0)
        dr = (gd - gdold) if stp == 1.0 else (gd - gdold) * stp
        if dr > EPS * (-gdold if stp == 1.0 else -gdold * stp):     # else skip the update
            j = (order[-1] + 1) % m if order else 0
            # s_j's products with the old rows from the Gram matrix (s_j = stp * c . rows)
            u = stp * (G[:len(c), :len(c)] @ c)
            if len(order) == m:
                order.pop(0)
            others = [r for i in order for r in (1 + 2 * i, 2 + 2 * i)]
            G[1 + 2 * j, others] = G[others, 1 + 2 * j] = u[others]
            G[1 + 2 * j, 1 + 2 * j] = dtd if stp == 1.0 else stp * stp * dtd
            order.append(j)
            # g = gt and s_j = stp d where they lie, y_j = gt - g over the old y_j (or the
            # free row of a new slot), then v = the rows' products with g; the old g's and
            # s_j's rows are the next trial gradient's and direction's
            g_at, s_at = places[0], places[1 + 2 * j]
            places[0], places[1 + 2 * j] = gt_at, d_at
            rr = passes.lbfgs_accept(W, places, 1 + 2 * len(order), g_at, stp, j, v, threads)
            gt_at, d_at = g_at, s_at
            theta, sy[j], pending = rr / dr, dr, (j, dr, rr)
        else:
            g_at, places[0] = places[0], gt_at
            passes.lbfgs_accept(W, places, 1 + 2 * len(order), g_at, stp, -1, v, threads)
            gt_at = g_at
        g, gt, d = W[places[0]], W[gt_at], W[d_at]


class NumPyPasses:
    """core.lbfgs_direction, lbfgs_accept and lbfgs_slope in NumPy (BLAS), for problems
    under PARALLEL_MIN: there the passes cost nothing next to fun, and their BLAS dots
    round as scipy's L-BFGS-B's do whatever the core's build (our compiled dots round
    differently with and without FMA, which a path along Rosenbrock's valley magnifies
    past 1e-10)."""

    @staticmethod
    def lbfgs_direction(W, rows, c, d_row, x, xt, n_threads):
        d = W[d_row]
        np.dot(c, W[rows[:len(c)]], out=d)
        if xt.size:
            np.add(x, d, out=xt)
        return float(d @ W[rows[0]]), float(d @ d)

    @staticmethod
    def lbfgs_accept(W, rows, n_rows, g_old, stp, slot, v, n_threads):
        rr, g = 0.0, W[rows[0]]
        if slot >= 0:
            if stp != 1.0:
                s = W[rows[1 + 2 * slot]]
                np.multiply(s, stp, out=s)
            y = W[rows[2 + 2 * slot]]
            np.subtract(g, W[g_old], out=y)
            rr = float(y @ y)
        np.dot(W[rows[:n_rows]], g, out=v[:n_rows])
        return rr

    @staticmethod
    def lbfgs_slope(g, d, n_threads):
        return float(g @ d), _sup_norm(g)


def _two_loop(G, order, sy, theta):
    """The coefficients over the rows (g, s_i, y_i) of d = -H g: the two-loop recursion
    with H0 = I / theta, each vector a combination of the rows, each dot from G."""
    c = np.zeros(len(G))
    c[0] = 1.0
    alpha = {}
    for i in reversed(order):
        alpha[i] = (G[1 + 2 * i] @ c) / sy[i]
        c[2 + 2 * i] -= alpha[i]
    c /= theta
    for i in order:
        beta = (G[2 + 2 * i] @ c) / sy[i]
        c[1 + 2 * i] += alpha[i] - beta
    return -c


def _read_only(a):
    view = a.view()
    view.flags.writeable = False
    return view


def _result(x, f, g, nit, nfev, message, status):
    # g: a copy of one of W's rows (whose view would keep all of W alive)
    return SimpleNamespace(x=x, fun=f, jac=g if g.base is None else g.copy(), nit=nit,
                           nfev=nfev, status=status, success=status == 0, message=message)
