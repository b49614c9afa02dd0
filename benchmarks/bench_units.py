"""Hidden units (issue 16): one epoch's time for each unit the core computes, as a ratio to tanh.

Digits (64 -> 30 -> 10, softmax outputs), the training rows of bench_train.digits: online
epochs (batch 1, the derivation's SGD) and Adam epochs (batch 32) for each hidden unit, every
unit's network trained from the same seed; an epoch's time is a fit's over its epochs
(units_epochs of them, so that fit's own set-up, the same for every unit, weighs little).
Then a layer where the unit's own loops weigh most: full-batch cost and gradient of
units_rows x 4 -> 128 -> 1 on one thread (digits' epochs are mostly the products). The units
run interleaved (_common), each timed in its steady state; medians over rounds. Goal: the new
units (leaky_relu, elu, softplus, elliott) cost no more than tanh. Asserts no time.

    env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE PYTHONPATH=src python benchmarks/run.py --only units
"""
import numpy as np

import bench_train as bt
import cbackprop as cb
from _common import SHORT_FIT, interleave, steady, steady_run, timed

UNITS = cb.reference.ACTIVATIONS                 # every hidden unit, tanh the baseline
NEW = ("leaky_relu", "elu", "softplus", "elliott")
SOLVERS = {"online": ("us/sample", 1e6), "adam": ("ms/epoch", 1e3), "layer": ("ms", 1e3)}
LAYER = [4, 128, 1]    # 128: our own products' widest (OWN_MAX_UNITS), cheap next to the unit
RATE_ONLINE = 0.01     # bench_train's 0.1 diverges with the unbounded units (identity, elu)
NOISE = 0.95           # "no more than tanh": within 5%, the spread of repeats on this machine


def epochs(d, unit, solver, n, seed):
    """n epochs of solver for a new network of the unit: {'time': seconds a sample (online)
    or an epoch (adam), 'acc': test accuracy after them}."""
    net = bt.network(d["sizes"], activation=unit, output="softmax", random_state=seed)
    rate = RATE_ONLINE if solver == "online" else bt.LR_ADAM
    t, _ = timed(lambda: net.fit(d["Xtr"], d["ytr"], solver=solver, epochs=n, batch_size=32,
                                 learning_rate=rate, shuffle=False, tol=0.0,
                                 n_iter_no_change=n, random_state=seed))
    per = net.n_iter_ * (len(d["Xtr"]) if solver == "online" else 1)
    return dict(time=t / per, acc=net.score(d["Xte"], d["yte"]))


def layer_cost_gradient(unit, m):
    """A call of full-batch cost and gradient (seconds, steady state) of LAYER on m rows."""
    rng = np.random.default_rng(0)
    X, Y = rng.normal(size=(m, LAYER[0])), rng.integers(0, 2, size=(m, 1)).astype(float)
    net = cb.Network(LAYER, activation=unit, random_state=0)
    net.n_threads = 1
    return lambda r: steady(lambda: net.cost_and_gradient(X, Y))


def units(cfg, make_rows, goal):
    """The workload of run.py (which passes its row and goal helpers)."""
    d = bt.digits()
    rows, goals = [], []
    for solver, (unit, scale) in SOLVERS.items():
        if solver == "layer":
            contenders = {f"{u} layer": layer_cost_gradient(u, cfg["units_rows"]) for u in UNITS}
        else:
            contenders = {f"{u} {solver}": steady_run(
                lambda r, u=u: epochs(d, u, solver, cfg["units_epochs"], 0), **SHORT_FIT)
                for u in UNITS}
        runs = interleave(contenders, cfg["rounds"])
        rows += make_rows("units", runs, unit, scale, lambda name: f"tanh {solver}")
        goals += [goal(rows, "units", f"{u} {solver}: no slower than tanh (5% noise)",
                       f"tanh {solver}", f"{u} {solver}", NOISE) for u in NEW]
    notes = [f"online, adam: digits {d['sizes']}, softmax outputs, {len(d['Xtr'])} training "
             f"rows, {cfg['units_epochs']} epochs a fit; layer: cost and gradient of "
             f"{cfg['units_rows']} x {' -> '.join(map(str, LAYER))}, 1 thread; ratio: the "
             "unit's median over tanh's (the same row kind); accuracy after the epochs"]
    return dict(rows=rows, goals=goals, notes=notes)


if __name__ == "__main__":
    import run
    run.main(["--only", "units"])
